//! A client that goes away while its request is being handled: the handler's future
//! is dropped (cancelled), a streaming delegate hears `on_connection_close` once, and
//! nothing is logged above debug level (Tornado's close callback on the idle stream,
//! hyper's dropped service future). A pipelined request that arrives meanwhile is kept
//! and answered in order, and a client that closes after its response is complete
//! changes nothing.
//!
//! Log records are captured per thread (the server's loop runs on a thread of its own).

mod common;

use std::future::Future;
use std::io::Write;
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::ThreadId;
use std::time::Duration;

use common::{serve, TestServer};
use http::{HeaderMap, StatusCode};
use log::Level;
use squall_httpserver::{
    handler_fn, ConnectionInfo, Http1Connection, HttpMessageDelegate, HttpServer, HttpServerConfig,
    HttpServerConnectionDelegate, HttpServerRequest, MemoryTransport, RequestStart, Response,
    ResponseWriter,
};
use squall_ioloop::IoLoop;
use squall_testing::{install_logger_at, records_of, wait_until};

/// Generous bound for anything the server does in the background.
const PATIENCE: Duration = Duration::from_secs(30);

type Events = mpsc::Sender<String>;

/// Reports its drop: dropped with the future that holds it, when that is cancelled.
struct DropGuard(Events, &'static str);

impl Drop for DropGuard {
    fn drop(&mut self) {
        let _ = self.0.send(format!("dropped {}", self.1));
    }
}

fn next(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(PATIENCE)
        .expect("an event from the server within the patience")
}

fn records_at_least(thread: ThreadId, level: Level) -> Vec<String> {
    records_of(thread)
        .into_iter()
        .filter(|r| r.level <= level)
        .map(|r| format!("{} {}: {}", r.level, r.target, r.message))
        .collect()
}

/// A whole-request server: `/hang` never answers (its future holds a [`DropGuard`]),
/// anything else is "ok"; and the id of its loop's thread.
fn hanging_handler_server() -> (TestServer, ThreadId, mpsc::Receiver<String>) {
    install_logger_at(log::LevelFilter::Debug);
    let (tx, rx) = mpsc::channel::<String>();
    let (ttx, trx) = mpsc::channel();
    let s = serve(move || {
        ttx.send(std::thread::current().id()).unwrap();
        HttpServer::new(move |req: HttpServerRequest| {
            let tx = tx.clone();
            async move {
                if req.path() == "/hang" {
                    let _guard = DropGuard(tx.clone(), "handler");
                    tx.send(format!("entered {}", req.body.len())).unwrap();
                    std::future::pending::<()>().await;
                }
                Response::text("ok")
            }
        })
    });
    let thread = trx.recv_timeout(PATIENCE).expect("server thread id");
    (s, thread, rx)
}

// (1) A whole-request handler waiting on something that never completes is dropped
// when its client closes (with or without a body, and when the client only shuts down
// its sending side, as hyper's default and Tornado treat it); the connection is gone,
// nothing is logged above debug, and the server goes on.
#[test]
fn a_whole_request_handler_is_dropped_when_its_client_closes() {
    let (s, thread, rx) = hanging_handler_server();
    let cases: [(&[u8], usize, bool); 3] = [
        (b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n", 0, false),
        (
            b"POST /hang HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            5,
            false,
        ),
        (b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n", 0, true),
    ];
    for (request, body, half_close) in cases {
        let mut c = s.client();
        c.send(request);
        assert_eq!(next(&rx), format!("entered {body}"));
        if half_close {
            c.reader.get_ref().shutdown(Shutdown::Write).unwrap();
        } else {
            drop(c);
        }
        assert_eq!(next(&rx), "dropped handler", "half_close: {half_close}");
        assert!(
            wait_until(PATIENCE, || s.stats.open_connections() == 0),
            "the connection is closed"
        );
    }
    assert_eq!(records_at_least(thread, Level::Info), Vec::<String>::new());
    assert_eq!(
        s.client()
            .request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .text(),
        "ok"
    );
}

/// A streaming delegate whose `finish` never returns (`/answered`: not before the
/// test releases it, after writing the whole response); it reports its steps.
#[derive(Clone)]
struct Streaming {
    events: Events,
    release: Arc<AtomicBool>,
}

struct StreamingMsg {
    events: Events,
    release: Arc<AtomicBool>,
    path: String,
}

impl HttpServerConnectionDelegate for Streaming {
    type Message<'a> = StreamingMsg;

    fn start_request(&self, _connection: &ConnectionInfo) -> StreamingMsg {
        StreamingMsg {
            events: self.events.clone(),
            release: self.release.clone(),
            path: String::new(),
        }
    }

    fn on_close(&self, _connection: &ConnectionInfo) {
        let _ = self.events.send("on_close".to_owned());
    }
}

impl HttpMessageDelegate for StreamingMsg {
    async fn headers_received(&mut self, request: RequestStart, _w: &mut ResponseWriter<'_>) {
        self.path = request.head.path().to_owned();
    }

    async fn finish(&mut self, w: &mut ResponseWriter<'_>) {
        let _guard = DropGuard(self.events.clone(), "finish");
        let _ = self.events.send(format!("finish {}", self.path));
        if self.path == "/answered" {
            w.respond(StatusCode::OK, HeaderMap::new(), b"done")
                .unwrap();
            while !self.release.load(Ordering::SeqCst) {
                squall_ioloop::sleep(Duration::from_millis(1)).await;
            }
            let _ = self.events.send("finish returns".to_owned());
            return;
        }
        std::future::pending::<()>().await;
    }

    fn on_connection_close(&mut self) {
        let _ = self.events.send("on_connection_close".to_owned());
    }
}

// (2) A streaming delegate whose `finish` is pending when the client closes: `finish`
// is dropped, `on_connection_close` is called once, then the connection's `on_close`;
// for a request with a body and for one without (the default `request_received`).
#[test]
fn a_streaming_delegate_hears_of_the_close_once() {
    install_logger_at(log::LevelFilter::Debug);
    let (tx, rx) = mpsc::channel::<String>();
    let (ttx, trx) = mpsc::channel();
    let s = serve(move || {
        ttx.send(std::thread::current().id()).unwrap();
        HttpServer::with_delegate(Streaming {
            events: tx,
            release: Arc::default(),
        })
    });
    let thread = trx.recv_timeout(PATIENCE).expect("server thread id");
    for request in [
        &b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"[..],
        b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut c = s.client();
        c.send(request);
        assert_eq!(next(&rx), "finish /up");
        drop(c);
        let mut seen = Vec::new();
        while seen.last().is_none_or(|e| e != "on_close") {
            seen.push(next(&rx));
        }
        assert_eq!(seen, ["dropped finish", "on_connection_close", "on_close"]);
    }
    assert!(wait_until(PATIENCE, || s.stats.open_connections() == 0));
    assert_eq!(
        rx.try_recv().ok(),
        None,
        "nothing after the connection's close"
    );
    assert_eq!(records_at_least(thread, Level::Info), Vec::<String>::new());
}

/// Run `f` on a new loop (bounded by [`PATIENCE`]).
fn run<F: Future<Output = ()> + 'static>(f: F) {
    IoLoop::new().unwrap().run_sync(f, Some(PATIENCE)).unwrap();
}

/// Let the loop turn a few times: what an in-memory peer did is seen by then.
async fn turns(n: usize) {
    for _ in 0..n {
        squall_ioloop::sleep(Duration::ZERO).await;
    }
}

async fn until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        squall_ioloop::sleep(Duration::ZERO).await;
    }
}

// (3) A request pipelined behind one whose handler is pending is read (the watch for
// the client's close takes it into the input buffer, where it waits), and answered
// in order once the first is; the watch is armed again for the next request, whose
// client's close then drops its handler.
#[test]
fn a_request_pipelined_while_a_handler_waits_is_answered_in_order() {
    let (tx, rx) = mpsc::channel::<String>();
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let handler = handler_fn(move |req: HttpServerRequest| {
        let (tx, release) = (tx.clone(), r.clone());
        async move {
            let _guard = DropGuard(tx.clone(), "handler");
            let path = req.path().to_owned();
            tx.send(format!("entered {path}")).unwrap();
            match path.as_str() {
                "/first" => {
                    while !release.load(Ordering::SeqCst) {
                        squall_ioloop::sleep(Duration::from_millis(1)).await;
                    }
                }
                "/hang" => std::future::pending::<()>().await,
                _ => {}
            }
            Response::text(path)
        }
    });
    let (transport, peer) = MemoryTransport::pair();
    let conn = Http1Connection::new(
        transport,
        Rc::new(handler),
        HttpServerConfig::default(),
        None,
    );
    run(async move {
        let task = IoLoop::current().unwrap().spawn(conn.serve());
        peer.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
        until(|| matches!(rx.try_recv().as_deref(), Ok("entered /first"))).await;
        peer.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
        until(|| peer.unread() == 0).await;
        assert_eq!(peer.take_output().len(), 0, "nothing answered yet");
        release.store(true, Ordering::SeqCst);
        until(|| peer.take_output().ends_with(b"/second")).await;
        peer.send(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
        until(|| matches!(rx.try_recv().as_deref(), Ok("entered /hang"))).await;
        peer.close();
        task.await.unwrap();
        let events: Vec<String> = rx.try_iter().collect();
        assert_eq!(events, ["dropped handler"]);
        assert!(peer.is_closed());
    });
}

// (3) The same over a socket: the second request, sent while the first handler waits,
// is answered after it, on the same connection.
#[test]
fn pipelined_over_a_socket_while_a_handler_waits() {
    let (tx, rx) = mpsc::channel::<String>();
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let s = serve(move || {
        HttpServer::new(move |req: HttpServerRequest| {
            let (tx, release) = (tx.clone(), r.clone());
            async move {
                let path = req.path().to_owned();
                if path == "/first" {
                    tx.send(path.clone()).unwrap();
                    while !release.load(Ordering::SeqCst) {
                        squall_ioloop::sleep(Duration::from_millis(1)).await;
                    }
                }
                Response::text(path)
            }
        })
    });
    let mut c = s.client();
    c.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(next(&rx), "/first");
    c.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
    c.reader.get_mut().flush().unwrap();
    release.store(true, Ordering::SeqCst);
    assert_eq!(c.read_response_to(false).text(), "/first");
    assert_eq!(c.read_response_to(false).text(), "/second");
    assert_eq!(
        c.request(b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n").text(),
        "/third"
    );
}

// (4) A client that closes once its response is complete changes nothing for a
// `finish` still running after it (Tornado clears the close callback when the
// response is finished): it is not dropped, `on_connection_close` is not called, and
// the connection then closes as any whose client left.
#[test]
fn a_client_that_closes_after_its_response_is_unaffected() {
    let (tx, rx) = mpsc::channel::<String>();
    let release = Arc::new(AtomicBool::new(false));
    let delegate = Streaming {
        events: tx,
        release: release.clone(),
    };
    let (transport, peer) = MemoryTransport::pair();
    let conn = Http1Connection::new(
        transport,
        Rc::new(delegate),
        HttpServerConfig::default(),
        None,
    );
    run(async move {
        let task = IoLoop::current().unwrap().spawn(conn.serve());
        peer.send(b"POST /answered HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx");
        until(|| peer.take_output().ends_with(b"done")).await;
        peer.close();
        // Time for the close to be seen, were anything watching for it.
        turns(10).await;
        release.store(true, Ordering::SeqCst);
        task.await.unwrap();
        let events: Vec<String> = rx.try_iter().collect();
        assert_eq!(
            events,
            [
                "finish /answered",
                "finish returns",
                "dropped finish",
                "on_close"
            ]
        );
    });
}
