//! `HttpServer::shutdown_on_signal`: SIGINT drains (idle connections closed, the
//! request in flight answered), and a second SIGINT during the drain closes what is
//! left at once. One test, in phases: signals are process-wide.

mod common;

use std::io::Read;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Client, READ_TIMEOUT};
use squall_httpserver::{HttpServer, HttpServerRequest, Response};
use squall_ioloop::signal::{raise, SIGINT};
use squall_ioloop::IoLoop;

fn app(req: HttpServerRequest) -> std::future::Ready<Response> {
    std::future::ready(Response::bytes(req.body))
}

/// A server on its own thread that shuts down on a signal; the join handle gives the
/// signal's number.
fn serve_until_signal(grace: Duration) -> (std::net::SocketAddr, thread::JoinHandle<i32>) {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let io_loop = IoLoop::new().unwrap();
        io_loop
            .run_sync(
                async move {
                    let mut server = HttpServer::new(app);
                    let addr = server.listen(0, "127.0.0.1").unwrap();
                    let wait = server.shutdown_on_signal(grace).unwrap();
                    // The handlers are in: the test may signal now.
                    tx.send(addr).unwrap();
                    wait.await
                },
                Some(Duration::from_secs(60)),
            )
            .unwrap()
    });
    (rx.recv_timeout(READ_TIMEOUT).unwrap(), t)
}

/// A keep-alive connection that has had one answer and now idles.
fn idle_client(addr: std::net::SocketAddr) -> Client {
    let mut c = Client::connect(addr);
    let r = c.request(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(r.status, 200);
    c
}

/// A connection whose request is in flight: head parsed (100 Continue seen), body not
/// sent.
fn in_flight_client(addr: std::net::SocketAddr) -> Client {
    let mut c = Client::connect(addr);
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let mut interim = [0u8; 25];
    c.reader.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c
}

#[test]
fn test_sigint_drains_then_a_second_sigint_forces() {
    // Phase 1: one signal, a graceful drain.
    let (addr, server) = serve_until_signal(Duration::from_secs(60));
    let mut idle = idle_client(addr);
    let mut busy = in_flight_client(addr);
    raise(SIGINT).unwrap();
    // The idle connection is closed by the drain...
    assert!(idle.read_to_close().is_empty());
    // ...and the request in flight is answered in full.
    busy.send(b"ping");
    let r = busy.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ping");
    assert_eq!(
        r.header("connection"),
        Some("close"),
        "the drain is announced"
    );
    assert!(busy.read_to_close().is_empty());
    assert_eq!(server.join().unwrap(), SIGINT);

    // Phase 2: a second signal during the drain closes the request in flight.
    let (addr, server) = serve_until_signal(Duration::from_secs(60));
    let mut idle = idle_client(addr);
    let mut busy = in_flight_client(addr);
    raise(SIGINT).unwrap();
    assert!(idle.read_to_close().is_empty(), "the drain has begun");
    raise(SIGINT).unwrap();
    assert!(
        busy.read_to_close().is_empty(),
        "forced: closed without an answer"
    );
    assert_eq!(server.join().unwrap(), SIGINT);
}
