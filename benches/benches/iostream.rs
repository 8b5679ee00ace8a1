//! squall's IOStream and TCPServer, with a tokio echo server beside it in the same run:
//!
//! - `read_until_64k`: a 64 KiB message written into a pipe and read back with
//!   `read_until(b"\r\n\r\n")`, the delimiter at its very end (the search cost plus one
//!   write and one read);
//! - `echo_round_trip/{squall,tokio}/{1,100}`: an echo server on its own thread (squall's
//!   `TcpServer` on an `IoLoop`; tokio's current-thread runtime with one task per
//!   connection), and the bench thread as the client: one round writes 64 bytes on each
//!   of 1 or 100 blocking connections and reads them all back. The client work is the
//!   same for both servers.
//!
//! After the criterion groups, a best-of-5 run of each echo case prints round trips per
//! second and the ratio squall / tokio (above 1 means squall is faster).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use squall_ioloop::IoLoop;
use squall_iostream::{IoStream, StreamError};
use squall_tcpserver::{PeerAddr, ServerThreads};

const MSG: usize = 64;

fn bench_read_until(c: &mut Criterion) {
    let io_loop = IoLoop::new().expect("loop");
    let mut message = vec![b'a'; 64 * 1024 - 4];
    message.extend_from_slice(b"\r\n\r\n");
    let message = bytes::Bytes::from(message);
    let mut g = c.benchmark_group("iostream");
    g.throughput(Throughput::Bytes(message.len() as u64));
    g.bench_function("read_until_64k", |b| {
        b.iter_custom(|iters| {
            let m = message.clone();
            io_loop
                .run_sync(
                    async move {
                        let (r, w) = IoStream::pipe().expect("pipe");
                        let t0 = Instant::now();
                        for _ in 0..iters {
                            let wf = w.write(m.clone());
                            let got = r.read_until(b"\r\n\r\n", None).await.expect("read");
                            assert_eq!(got.len(), m.len());
                            wf.await.expect("write");
                        }
                        t0.elapsed()
                    },
                    None,
                )
                .expect("run")
        })
    });
    g.finish();
}

async fn squall_echo(stream: IoStream, _addr: PeerAddr) -> Result<(), StreamError> {
    stream.set_nodelay(true).ok();
    loop {
        let data = match stream.read_bytes(64 * 1024, true).await {
            Ok(d) => d,
            Err(StreamError::Closed(c)) if c.is_peer_gone() => return Ok(()),
            Err(e) => return Err(e),
        };
        stream.write(data).await?;
    }
}

fn start_squall() -> (ServerThreads, SocketAddr) {
    let s = ServerThreads::start(1, 0, "127.0.0.1", || squall_echo).expect("squall echo");
    let a = s.local_addrs()[0];
    (s, a)
}

fn start_tokio() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(l.local_addr().expect("addr")).expect("send");
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    continue;
                };
                s.set_nodelay(true).ok();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
    });
    rx.recv().expect("tokio address")
}

fn clients(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let c = TcpStream::connect(addr).expect("connect");
            c.set_nodelay(true).expect("nodelay");
            c.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            c
        })
        .collect()
}

/// One round: MSG bytes out on every connection, then all of them back.
fn round(conns: &mut [TcpStream], buf: &mut [u8; MSG]) {
    let msg = [b'e'; MSG];
    for c in conns.iter_mut() {
        c.write_all(&msg).expect("write");
    }
    for c in conns.iter_mut() {
        c.read_exact(buf).expect("read");
    }
}

fn bench_echo(c: &mut Criterion) {
    let (_squall, squall_addr) = start_squall();
    let tokio_addr = start_tokio();
    let mut g = c.benchmark_group("echo_round_trip");
    for n in [1usize, 100] {
        g.throughput(Throughput::Elements(n as u64));
        for (name, addr) in [("squall", squall_addr), ("tokio", tokio_addr)] {
            let mut conns = clients(addr, n);
            let mut buf = [0u8; MSG];
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| round(&mut conns, &mut buf))
            });
        }
    }
    g.finish();

    // The ratio, best of 5 short runs each.
    for n in [1usize, 100] {
        let rate = |addr: SocketAddr| {
            let mut conns = clients(addr, n);
            let mut buf = [0u8; MSG];
            let mut best = 0.0f64;
            for _ in 0..5 {
                let t0 = Instant::now();
                let mut trips = 0u64;
                while t0.elapsed() < Duration::from_millis(200) {
                    round(&mut conns, &mut buf);
                    trips += n as u64;
                }
                best = best.max(trips as f64 / t0.elapsed().as_secs_f64());
            }
            best
        };
        let s = rate(squall_addr);
        let t = rate(tokio_addr);
        println!(
            "echo round trips, {n} connection(s): squall {s:.0}/s, tokio {t:.0}/s, squall/tokio = {:.3}",
            s / t
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_read_until(&mut c);
    bench_echo(&mut c);
    c.final_summary();
}
