//! squall-httpserver: a full request/response round trip through `Http1Connection`
//! over the in-memory transport, so parsing, the driver, the handler call and response
//! encoding are measured without syscalls.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use squall_httpserver::{
    handler_fn, Http1Connection, HttpServerConfig, MemoryPeer, MemoryTransport, Response,
};
use squall_ioloop::IoLoop;

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// One long-lived connection, polled by hand after each send.
struct Rig {
    _io_loop: IoLoop,
    peer: MemoryPeer,
    conn: Pin<Box<dyn Future<Output = ()>>>,
    waker: Waker,
}

impl Rig {
    fn new() -> Rig {
        let io_loop = IoLoop::new().unwrap();
        io_loop.make_current();
        let (transport, peer) = MemoryTransport::pair();
        let handler = handler_fn(|req| async move {
            if req.path() == "/echo" {
                Response::bytes(req.body)
            } else {
                Response::text("Hello, world!")
            }
        });
        let conn = Http1Connection::new(
            transport,
            Rc::new(handler),
            HttpServerConfig::default(),
            None,
        );
        Rig {
            _io_loop: io_loop,
            peer,
            conn: Box::pin(conn.serve()),
            waker: Waker::from(Arc::new(Noop)),
        }
    }

    /// Send `request`, run the connection until it waits again, return the output size.
    fn round_trip(&mut self, request: &'static [u8]) -> usize {
        self.peer.send_bytes(bytes::Bytes::from_static(request));
        let mut cx = Context::from_waker(&self.waker);
        assert!(matches!(self.conn.as_mut().poll(&mut cx), Poll::Pending));
        let out = self.peer.take_output();
        assert!(!out.is_empty());
        out.len()
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("httpserver");
    let get: &'static [u8] =
        b"GET / HTTP/1.1\r\nHost: localhost:8888\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n";
    g.throughput(Throughput::Elements(1));
    let mut rig = Rig::new();
    g.bench_function("round_trip_get_hello", |b| b.iter(|| rig.round_trip(get)));

    let post: &'static [u8] = Box::leak(
        [
            &b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1024\r\n\r\n"[..],
            &[b'x'; 1024][..],
        ]
        .concat()
        .into_boxed_slice(),
    );
    let mut rig = Rig::new();
    g.bench_function("round_trip_post_echo_1k", |b| {
        b.iter(|| rig.round_trip(post))
    });

    let pipelined: &'static [u8] = Box::leak(get.repeat(16).into_boxed_slice());
    g.throughput(Throughput::Elements(16));
    let mut rig = Rig::new();
    g.bench_function("pipelined_16_get_hello", |b| {
        b.iter(|| rig.round_trip(pipelined))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
