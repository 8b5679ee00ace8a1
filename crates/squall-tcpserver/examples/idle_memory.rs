//! Measures the user-space memory an idle connection costs the server: live heap bytes
//! (counted by a wrapping global allocator) with N connections open and each parked in a
//! pending read, divided by N.
//!
//! ```text
//! cargo run --release -p squall-tcpserver --example idle_memory -- [N=10000]
//! ```
//!
//! The clients are plain blocking sockets in a child process (this program again, run
//! with `--clients ADDR N`), so the server's fds are numbered as a real server's are
//! (per-fd tables are not stretched by the clients' fds); the server runs on a thread
//! of its own. The soft fd limit is raised to the hard limit first.
//!
//! It also prints where the bytes go: the live allocations that appeared per
//! connection, by requested size, with what glibc's malloc really spends on each (the
//! chunk: the size plus an 8-byte header, rounded up to 16, at least 32 bytes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use squall_ioloop::IoLoop;
use squall_iostream::IoStream;
use squall_tcpserver::{PeerAddr, TcpServer};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Live bytes in allocations of 4 KiB and more (tables).
static LARGE: AtomicIsize = AtomicIsize::new(0);

/// Live allocations by requested size (the last bucket holds every larger size).
const SIZES: usize = 4097;
static BY_SIZE: [AtomicIsize; SIZES] = [const { AtomicIsize::new(0) }; SIZES];

/// Counts one allocation of `size` bytes appearing (`sign` 1) or going (-1).
fn count(size: isize, sign: isize) {
    let i = (size as usize).min(SIZES - 1);
    BY_SIZE[i].fetch_add(sign, Ordering::Relaxed);
    if i == SIZES - 1 {
        LARGE.fetch_add(sign * size, Ordering::Relaxed);
    }
}

/// What glibc's malloc spends on a `size`-byte request on a 64-bit target.
fn glibc_chunk(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

// SAFETY: every method forwards to the system allocator with the caller's arguments
// unchanged, and only adds bookkeeping on an atomic counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        count(layout.size() as isize, 1);
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        count(layout.size() as isize, -1);
        // SAFETY: forwarded as is; `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        count(layout.size() as isize, -1);
        count(new_size as isize, 1);
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one valid rlimit; raising the soft limit up to the
        // hard limit is always allowed.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

/// The client process: opens `n` connections to `addr`, says so on stdout, and holds
/// them until its stdin closes.
fn clients(addr: &str, n: usize) {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        match TcpStream::connect(addr) {
            Ok(c) => conns.push(c),
            Err(e) => panic!("connect #{i}: {e} (raise the fd limit?)"),
        }
    }
    println!("connected {n}");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

fn main() {
    raise_nofile();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--clients") {
        let n = args
            .get(3)
            .and_then(|a| a.parse().ok())
            .expect("--clients ADDR N");
        clients(&args[2], n);
        return;
    }
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let accepted = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let acc = accepted.clone();
    std::thread::spawn(move || {
        let io_loop = IoLoop::new().expect("loop");
        let server = TcpServer::with_io_loop(&io_loop, move |stream: IoStream, _addr: PeerAddr| {
            acc.fetch_add(1, Ordering::Relaxed);
            // An idle connection: a read is pending, nothing has arrived.
            async move {
                let _ = stream.read_bytes(1, false).await;
            }
        });
        let addr = server.listen(0, "127.0.0.1").expect("listen")[0];
        tx.send(addr).expect("send");
        io_loop.start().expect("loop");
    });
    let addr = rx.recv().expect("server address");
    let wait_for = |count: usize| {
        let t0 = Instant::now();
        while accepted.load(Ordering::Relaxed) < count {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "server accepted too few"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Let the new connections' tasks run to their pending read.
        std::thread::sleep(Duration::from_millis(300));
    };
    // Warm up: the per-thread read buffer, the loop's first slab pages.
    let mut conns: Vec<TcpStream> = Vec::with_capacity(16);
    for _ in 0..16 {
        conns.push(TcpStream::connect(addr).expect("connect"));
    }
    wait_for(16);
    let before = LIVE.load(Ordering::Relaxed);
    let sizes_before: Vec<isize> = BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let large_before = LARGE.load(Ordering::Relaxed);
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--clients", &addr.to_string(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("client process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("client output");
    assert!(line.starts_with("connected"), "client process: {line:?}");
    wait_for(n + 16);
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) as f64 / n as f64;
    println!(
        "{n} idle connections: {} bytes of heap in all, {per:.0} bytes per connection",
        after - before
    );
    // Where they go: size classes whose live count grew by at least one in ten
    // connections (less is a one-off: a table that doubled, a warm-up leftover).
    println!(
        "{:>8} {:>10} {:>14} {:>14}",
        "size", "per conn", "bytes/conn", "glibc B/conn"
    );
    let (mut small_total, mut glibc_total) = (0.0, 0.0);
    for (size, c) in BY_SIZE.iter().enumerate() {
        let grew = c.load(Ordering::Relaxed) - sizes_before[size];
        let count = grew as f64 / n as f64;
        if size < SIZES - 1 && count.abs() >= 0.1 {
            let bytes = count * size as f64;
            let chunk = count * glibc_chunk(size) as f64;
            small_total += bytes;
            glibc_total += chunk;
            println!("{size:>8} {count:>10.2} {bytes:>14.1} {chunk:>14.1}");
        } else if size == SIZES - 1 && grew != 0 {
            let bytes = (LARGE.load(Ordering::Relaxed) - large_before) as f64 / n as f64;
            println!(
                "  >=4096 {:>10} {bytes:>14.1}   (tables that grew: {grew} allocations)",
                ""
            );
        }
    }
    println!(
        "{:>8} {:>10} {small_total:>14.1} {glibc_total:>14.1}",
        "total", ""
    );
    drop(child.stdin.take());
    let _ = child.wait();
    drop(conns);
}
