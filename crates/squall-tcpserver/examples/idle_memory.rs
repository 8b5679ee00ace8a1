//! Measures the user-space memory an idle connection costs the server: live heap bytes
//! (counted by a wrapping global allocator) with N connections open and each parked in a
//! pending read, divided by N.
//!
//! ```text
//! cargo run --release -p squall-tcpserver --example idle_memory -- [N=10000]
//! ```
//!
//! The clients are plain blocking sockets on the main thread (they allocate nothing per
//! connection); the server runs on its own thread. The soft fd limit is raised to the
//! hard limit first (2 fds per connection).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::TcpStream;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use squall_ioloop::IoLoop;
use squall_iostream::IoStream;
use squall_tcpserver::{PeerAddr, TcpServer};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to the system allocator with the caller's arguments
// unchanged, and only adds bookkeeping on an atomic counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is; `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
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

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    raise_nofile();
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
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n + 16);
    for _ in 0..16 {
        conns.push(TcpStream::connect(addr).expect("connect"));
    }
    wait_for(16);
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..n {
        match TcpStream::connect(addr) {
            Ok(c) => conns.push(c),
            Err(e) => panic!("connect #{i}: {e} (raise the fd limit?)"),
        }
    }
    wait_for(n + 16);
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) as f64 / n as f64;
    println!(
        "{n} idle connections: {} bytes of heap in all, {per:.0} bytes per connection",
        after - before
    );
}
