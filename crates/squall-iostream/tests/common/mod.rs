//! Shared test support (squall-iostream's tests, and squall-tcpserver's through `#[path]`):
//! run an async test on a loop over a named backend, and make
//! connected stream pairs.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use squall_ioloop::IoLoop;
use squall_iostream::IoStream;

/// The backends this platform has, native first: epoll on Linux, kqueue on macOS and
/// FreeBSD; then poll(2) and select(2), which exist everywhere.
///
/// poll and select pass the poller conformance suite on Linux only: on macOS (and BSD
/// kernels that behave alike) they cannot report a refused connect as ERROR without
/// consuming the socket error. No stream-level test here relies on that: a connecting
/// stream reads `SO_ERROR` on any readiness of its socket (WRITE, ERROR or HUP), as
/// Tornado's `_handle_connect` does, so the refused-connect tests hold on every backend.
pub const BACKENDS: &[&str] = &[NATIVE, "poll", "select"];

squall_poller::cfg_epoll! {
    const NATIVE: &str = "epoll";
}
squall_poller::cfg_kqueue! {
    const NATIVE: &str = "kqueue";
}
squall_poller::cfg_not_epoll! {
    squall_poller::cfg_not_kqueue! {
        const NATIVE: &str = "poll";
    }
}

/// A loop over the named backend (`"epoll"`, `"kqueue"`, `"poll"` or `"select"`).
pub fn new_loop(poller: &str) -> IoLoop {
    let p = squall_ioloop::poller_by_name(poller).unwrap_or_else(|e| panic!("{poller}: {e}"));
    IoLoop::with_poller(p).expect("loop")
}

/// Runs `f()` to completion on a fresh loop over `poller`, with a generous timeout.
pub fn run<F, Fut>(poller: &str, f: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let io_loop = new_loop(poller);
    let fut = f();
    io_loop
        .run_sync(fut, Some(Duration::from_secs(30)))
        .expect("test timed out or the loop failed");
    io_loop.close(true).expect("close");
}

/// A connected TCP pair on loopback: `(server side, client side)`.
pub async fn tcp_pair() -> (IoStream, IoStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = IoStream::connect(addr).await.expect("connect");
    let (conn, _) = listener.accept().unwrap();
    (IoStream::new(conn).unwrap(), client)
}

/// A TCP stream on our side and a plain blocking std socket as the peer.
pub async fn tcp_with_std_peer() -> (IoStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = IoStream::connect(addr).await.expect("connect");
    let (conn, _) = listener.accept().unwrap();
    (client, conn)
}

/// Instantiates every listed `async fn` test once per backend of [`BACKENDS`].
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        squall_poller::cfg_epoll! {
            mod epoll {
                $( #[test] fn $name() { $crate::common::run("epoll", super::$name) } )*
            }
        }
        squall_poller::cfg_kqueue! {
            mod kqueue {
                $( #[test] fn $name() { $crate::common::run("kqueue", super::$name) } )*
            }
        }
        mod poll {
            $( #[test] fn $name() { $crate::common::run("poll", super::$name) } )*
        }
        mod select {
            $( #[test] fn $name() { $crate::common::run("select", super::$name) } )*
        }
    };
}
