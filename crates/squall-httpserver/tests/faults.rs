//! Faults over real loopback sockets (issue 7): a handler that panics, clients that
//! vanish while a large response is being written, graceful shutdown under load, and a
//! peer that never reads. Running out of fds while accepting has a test binary of its
//! own (`tests/emfile.rs`), since it lowers the process's fd limit.
//!
//! Log records are captured per thread (the server's loop runs on a thread of its own),
//! so the tests can say "logged once" and "no error records".

mod common;

use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::ThreadId;
use std::time::Duration;

use bytes::Bytes;
use common::{serve, TestServer};
use http::{HeaderMap, StatusCode};
use log::Level;
use squall_httpserver::{
    ConnectionInfo, HttpMessageDelegate, HttpServer, HttpServerConfig,
    HttpServerConnectionDelegate, HttpServerRequest, RequestStart, Response, ResponseWriter,
};
use squall_testing::{install_logger_at, records_of, wait_until};

/// Generous bound for anything the server does in the background.
const PATIENCE: Duration = Duration::from_secs(30);

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// The size of the large responses.
const BIG: usize = 32 << 20;

fn big_body() -> Bytes {
    Bytes::from(vec![b'x'; BIG])
}

/// A server answering `/panic` with a panic, `/big` with [`BIG`] bytes, and anything
/// else with "ok"; and the id of its loop's thread.
fn fault_server(config: HttpServerConfig) -> (TestServer, ThreadId) {
    install_logger_at(log::LevelFilter::Info);
    let big = big_body();
    let (tx, rx) = mpsc::channel();
    let s = serve(move || {
        tx.send(std::thread::current().id()).unwrap();
        HttpServer::new(move |req: HttpServerRequest| {
            let big = big.clone();
            async move {
                match req.path() {
                    "/panic" => panic!("handler panic (expected by the faults test)"),
                    "/big" => Response::bytes(big),
                    _ => Response::text("ok"),
                }
            }
        })
        .with_config(config)
    });
    let thread = rx.recv_timeout(PATIENCE).expect("server thread id");
    (s, thread)
}

fn records_at_least(thread: ThreadId, level: Level) -> Vec<String> {
    records_of(thread)
        .into_iter()
        .filter(|r| r.level <= level)
        .map(|r| format!("{} {}: {}", r.level, r.target, r.message))
        .collect()
}

// A handler that panics: the client gets a 500, the connection and the server go on,
// and the panic is logged once, at error level.
#[test]
fn handler_panic_is_500_logged_once_and_the_server_lives() {
    let (s, thread) = fault_server(HttpServerConfig::default());
    let mut c = s.client();
    let r = c.request(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-length"), Some("0"));
    // The same connection serves the next request.
    let r = c.request(GET);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    // And so does a new one.
    assert_eq!(s.client().request(GET).text(), "ok");

    // The panic's record, and the 500's access line, at error level as Tornado's
    // log_request has a 5xx.
    let (access, errors): (Vec<String>, Vec<String>) = records_at_least(thread, Level::Error)
        .into_iter()
        .partition(|r| r.contains(squall_httpserver::ACCESS_LOG_TARGET));
    assert_eq!(
        errors.len(),
        1,
        "one error record for one panic: {errors:#?}"
    );
    assert!(
        errors[0].contains("panicked") && errors[0].contains("expected by the faults test"),
        "{errors:?}"
    );
    assert_eq!(access.len(), 1, "{access:?}");
    assert!(access[0].contains("500 GET /panic"), "{access:?}");
}

// A request refused before any handler sees it is the client's doing, whatever its
// status: its access line is a warning even for a 505 or a 501, so a stream of bad
// requests does not fill the error log; the server goes on.
#[test]
fn bad_requests_log_warnings_not_errors() {
    let (s, thread) = fault_server(HttpServerConfig::default());
    for (raw, status) in [
        (&b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"[..], 505),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
    ] {
        let r = s.client().request(raw);
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(raw));
    }
    assert_eq!(s.client().request(GET).text(), "ok");
    assert_eq!(records_at_least(thread, Level::Error), Vec::<String>::new());
    let warnings: Vec<String> = records_at_least(thread, Level::Warn)
        .into_iter()
        .filter(|r| r.contains(squall_httpserver::ACCESS_LOG_TARGET))
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    for (w, code) in warnings.iter().zip(["505", "501", "400"]) {
        assert!(w.contains(&format!("{code} (bad request: ")), "{w}");
    }
}

/// Reads from `c` until it has `n` bytes or the server stops sending.
fn read_some(c: &mut TcpStream, n: usize) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < n {
        match c.read(&mut buf[..(n - got).min(64 * 1024)]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => panic!("reading the large response: {e}"),
        }
    }
    got
}

// Clients that close while a 32 MiB response is being written, at several points: no
// error or warning records (a vanished peer is a debug-level event), every connection
// is gone afterwards, and the server goes on serving.
#[test]
fn client_closes_during_a_large_response() {
    let (s, thread) = fault_server(HttpServerConfig::default());
    let req = b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    for (i, read_first) in [0usize, 1, 64 * 1024, 1 << 20, 8 << 20]
        .into_iter()
        .enumerate()
    {
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
        c.write_all(req).unwrap();
        if read_first > 0 {
            assert_eq!(read_some(&mut c, read_first), read_first, "client {i}");
        }
        if i % 2 == 1 {
            // A half-close first: the server sees end-of-file, then the reset.
            c.shutdown(std::net::Shutdown::Write).unwrap();
        }
        drop(c);
    }
    // A pipelined pair whose client vanishes before reading anything.
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.write_all(&[&req[..], &req[..]].concat()).unwrap();
    drop(c);

    // All six accepted, not only none open: the last client may still be in the listen
    // queue when the first five are gone.
    assert!(
        wait_until(PATIENCE, || s.stats.connections_accepted() == 6
            && s.stats.open_connections() == 0),
        "accepted {} of 6, {} left open",
        s.stats.connections_accepted(),
        s.stats.open_connections()
    );
    let noisy = records_at_least(thread, Level::Warn);
    assert!(
        noisy.is_empty(),
        "vanishing clients were logged loudly: {noisy:#?}"
    );
    // The server is fine.
    let mut c = s.client();
    assert_eq!(c.request(GET).text(), "ok");
    let r = c.request(req);
    assert_eq!(r.body.len(), BIG);
}

/// One response read by a client that tolerates the server closing: `None` on a
/// clean end-of-file (or a reset) before the first byte of a response.
enum Reply {
    Complete { close: bool },
    Closed,
}

fn read_reply(r: &mut BufReader<TcpStream>) -> Result<Reply, String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => return Ok(Reply::Closed),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Reply::Closed),
        Err(e) => return Err(format!("reading a status line: {e}")),
    }
    if !line.starts_with("HTTP/1.1 200 ") {
        return Err(format!("unexpected status line {line:?}"));
    }
    let (mut len, mut close) = (None, false);
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return Err("the response head was cut short".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading a response head: {e}")),
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| format!("bad header {l:?}"))?;
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("connection") {
            close = v.trim().eq_ignore_ascii_case("close");
        }
    }
    let len = len.ok_or("a response without Content-Length")?;
    let mut body = vec![0; len];
    r.read_exact(&mut body)
        .map_err(|e| format!("the response body was cut short: {e}"))?;
    if body != b"ok" {
        return Err(format!("unexpected body {body:?}"));
    }
    Ok(Reply::Complete { close })
}

#[derive(Default)]
struct LoadCounts {
    /// Requests whose bytes were all written before shutdown began.
    sent_before: AtomicU64,
    /// ... and that got a complete response.
    answered_before: AtomicU64,
    /// Requests sent after shutdown began that got a complete response anyway.
    answered_after: AtomicU64,
    /// Requests sent after shutdown began that found the connection closed.
    refused_after: AtomicU64,
    /// Complete responses per client, to know the load is on.
    warm: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

// Graceful shutdown under load: several keep-alive clients send requests back to back;
// `shutdown(grace)` begins; every request whose bytes were all sent before it began
// gets a complete response, responses after it say `Connection: close`, and the server
// thread exits.
#[test]
fn graceful_shutdown_under_load_answers_every_request_sent_before() {
    const CLIENTS: usize = 8;
    let (s, _thread) = fault_server(HttpServerConfig::default());
    let begun = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(LoadCounts::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (addr, begun, counts) = (s.addr, begun.clone(), counts.clone());
            std::thread::spawn(move || {
                let c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(PATIENCE)).unwrap();
                c.set_nodelay(true).unwrap();
                let mut r = BufReader::new(c);
                let req = format!("GET /?client={i} HTTP/1.1\r\nHost: x\r\n\r\n");
                let mut warmed = false;
                loop {
                    if let Err(e) = r.get_mut().write_all(req.as_bytes()) {
                        // The server closed the connection after a `Connection: close`
                        // answer we have not read yet, or reset it.
                        assert!(begun.load(Ordering::SeqCst), "client {i}: write failed before shutdown: {e}");
                        counts.refused_after.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    // Read after the write returned: if shutdown had not begun by now,
                    // the whole request was sent before it began.
                    let before = !begun.load(Ordering::SeqCst);
                    if before {
                        counts.sent_before.fetch_add(1, Ordering::SeqCst);
                    }
                    match read_reply(&mut r) {
                        Ok(Reply::Complete { close }) => {
                            if before {
                                counts.answered_before.fetch_add(1, Ordering::SeqCst);
                            } else {
                                counts.answered_after.fetch_add(1, Ordering::SeqCst);
                            }
                            if !warmed {
                                warmed = true;
                                counts.warm.fetch_add(1, Ordering::SeqCst);
                            }
                            if close {
                                return;
                            }
                        }
                        Ok(Reply::Closed) => {
                            if before {
                                counts.failures.lock().unwrap().push(format!(
                                    "client {i}: a request sent before shutdown found the connection closed"
                                ));
                            } else {
                                counts.refused_after.fetch_add(1, Ordering::SeqCst);
                            }
                            return;
                        }
                        Err(e) => {
                            counts.failures.lock().unwrap().push(format!("client {i}: {e}"));
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    // Every client has had a response, and some thousands of requests went through.
    assert!(wait_until(PATIENCE, || counts.warm.load(Ordering::SeqCst)
        == CLIENTS
        && counts.answered_before.load(Ordering::SeqCst) >= 2000));
    begun.store(true, Ordering::SeqCst);
    s.start_shutdown(PATIENCE);
    for c in clients {
        c.join().unwrap();
    }
    s.wait();
    let failures = counts.failures.lock().unwrap().clone();
    let sent = counts.sent_before.load(Ordering::SeqCst);
    let answered = counts.answered_before.load(Ordering::SeqCst);
    eprintln!(
        "graceful shutdown under load: {sent} requests sent before shutdown, {answered} answered; \
         after it began: {} answered, {} found the connection closed",
        counts.answered_after.load(Ordering::SeqCst),
        counts.refused_after.load(Ordering::SeqCst)
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(answered, sent, "requests lost in the shutdown");
}

// A peer that never reads a large response: the server's memory stays at the response
// (no copy of it per write attempt), and once the write has made no progress for
// `idle_connection_timeout` the connection is closed and forgotten.
#[test]
fn peer_that_never_reads_a_large_response_is_closed() {
    let config = HttpServerConfig {
        idle_connection_timeout: Duration::from_secs(1),
        ..HttpServerConfig::default()
    };
    let (s, thread) = fault_server(config);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(wait_until(PATIENCE, || s.stats.connections_accepted() == 1));
    assert!(
        wait_until(PATIENCE, || s.stats.open_connections() == 0),
        "the stalled connection was never closed"
    );
    let high = s.stats.buffer_high_water();
    assert!(
        high <= BIG + (1 << 20),
        "a 32 MiB response held {high} bytes of buffers"
    );
    // The client gets part of the response, then the end of the connection.
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the cut response: {e}"),
        }
    }
    assert!(
        got < BIG,
        "the whole response went through a peer that never read"
    );
    let noisy = records_at_least(thread, Level::Error);
    assert!(noisy.is_empty(), "{noisy:#?}");
}

/// Reads `c` to its end in `step`-byte pieces, pausing `pause` between them (a slow
/// but steady reader); the bytes read.
fn read_slowly(c: &mut TcpStream, step: usize, pause: Duration) -> usize {
    let mut buf = vec![0u8; step];
    let mut got = 0;
    loop {
        match c.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got += n,
            Err(e) => panic!("reading slowly after {got} bytes: {e}"),
        }
        std::thread::sleep(pause);
    }
}

// A peer that reads a large response slowly but steadily is never cut off, however long
// the whole takes: the idle timeout bounds a write that makes no progress, not the
// response (Tornado has no write timeout). Here the 32 MiB take about three idle
// timeouts, and no pause is longer than a hundredth of one.
#[test]
fn slow_steady_reader_gets_the_whole_large_response() {
    let config = HttpServerConfig {
        idle_connection_timeout: Duration::from_secs(2),
        ..HttpServerConfig::default()
    };
    let (s, _thread) = fault_server(config);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    let got = read_slowly(&mut c, 64 * 1024, Duration::from_millis(10));
    assert!(got > BIG, "{got} bytes of a {BIG}-byte body (and its head)");
    // The run is only a test of the rule if it outlasted the idle timeout.
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A streaming delegate that answers with `total` bytes in 64 KiB writes, never/// A streaming delegate that answers with `total` bytes in 64 KiB writes, never
/// calling `flush` (yielding to the loop between writes), and stops at the first
/// write error. `written` counts what its writes accepted.
/// With `flushes`, it awaits `flush` after each write instead (backpressure).
#[derive(Clone)]
struct Firehose {
    total: u64,
    written: Arc<AtomicU64>,
    refused: Arc<AtomicBool>,
    flushes: bool,
    /// Each flush is woken once meanwhile by something else (as a delegate awaiting a
    /// flush alongside other work is).
    nudged: bool,
}

struct FirehoseMsg {
    total: u64,
    written: Arc<AtomicU64>,
    refused: Arc<AtomicBool>,
    flushes: bool,
    nudged: bool,
}

impl HttpServerConnectionDelegate for Firehose {
    type Message<'a> = FirehoseMsg;
    fn start_request(&self, _c: &ConnectionInfo) -> FirehoseMsg {
        FirehoseMsg {
            total: self.total,
            written: self.written.clone(),
            refused: self.refused.clone(),
            flushes: self.flushes,
            nudged: self.nudged,
        }
    }
}

impl HttpMessageDelegate for FirehoseMsg {
    async fn headers_received(&mut self, _r: RequestStart, _w: &mut ResponseWriter<'_>) {}
    async fn data_received(&mut self, _chunk: Bytes, _w: &mut ResponseWriter<'_>) {}
    async fn finish(&mut self, w: &mut ResponseWriter<'_>) {
        if w.write_head(StatusCode::OK, HeaderMap::new()).is_err() {
            return;
        }
        let piece = vec![b'y'; 64 * 1024];
        let mut sent = 0;
        while sent < self.total {
            if w.write(&piece).is_err() {
                self.refused.store(true, Ordering::SeqCst);
                return;
            }
            sent += piece.len() as u64;
            self.written.store(sent, Ordering::SeqCst);
            if self.flushes {
                let flushed = if self.nudged {
                    nudged(w.flush()).await
                } else {
                    w.flush().await
                };
                if flushed.is_err() {
                    self.refused.store(true, Ordering::SeqCst);
                    return;
                }
            } else {
                squall_ioloop::sleep(Duration::ZERO).await;
            }
        }
        let _ = w.finish();
    }
}

// The same rule for a streaming delegate that flushes after each write: a slow but
// steady reader gets all of it, though it takes about twice the idle timeout, and no
// write is refused (its flush waits until the bytes have left the stream).
#[test]
fn slow_steady_reader_gets_a_whole_streamed_response() {
    install_logger_at(log::LevelFilter::Info);
    const TOTAL: u64 = 24 << 20;
    let delegate = Firehose {
        total: TOTAL,
        written: Arc::default(),
        refused: Arc::default(),
        flushes: true,
        nudged: false,
    };
    let refused = delegate.refused.clone();
    let config = HttpServerConfig {
        idle_connection_timeout: Duration::from_secs(2),
        ..HttpServerConfig::default()
    };
    let s = serve(move || HttpServer::with_delegate(delegate).with_config(config));
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    let got = read_slowly(&mut c, 64 * 1024, Duration::from_millis(10));
    assert!(
        got as u64 > TOTAL,
        "{got} bytes of a {TOTAL}-byte chunked body"
    );
    assert!(!refused.load(Ordering::SeqCst), "a write was refused");
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

// A peer that never reads, answered by a streaming delegate that writes without
// flushing: the bytes the connection holds for the peer must stay bounded (Tornado's
// `max_write_buffer_size`), the delegate's writes must start failing, and the
// connection must close with that limit error rather than buffer the whole response.
#[test]
fn peer_that_never_reads_a_streaming_delegate_is_capped() {
    install_logger_at(log::LevelFilter::Info);
    let (s, held, refused) = to_a_peer_that_never_reads(false, false);
    assert!(
        refused,
        "the delegate's writes never failed ({held} bytes accepted for a peer that never reads)"
    );
    assert!(
        held <= 32 << 20,
        "{held} bytes accepted for a peer that never reads"
    );
    let high = s.stats.buffer_high_water();
    assert!(high <= 32 << 20, "the connection held {high} bytes");
}

/// `fut`, with the task woken once by a timer of its own while it waits.
async fn nudged<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut nudge = Some(Box::pin(squall_ioloop::sleep(Duration::ZERO)));
    std::future::poll_fn(|cx| {
        if let Some(n) = &mut nudge {
            if n.as_mut().poll(cx).is_ready() {
                nudge = None;
            }
        }
        fut.as_mut().poll(cx)
    })
    .await
}

// A streaming delegate that awaits flush between writes, for a peer that never reads:
// flush waits until the bytes have left the stream, whatever else wakes the delegate
// meanwhile, so its writes are never refused for the write-buffer limit; the
// connection is closed by the write stall instead. (Flush used to resolve as soon as
// the stream had taken the bytes into its own queue, at the first wake-up.)
#[test]
fn flush_waits_for_the_stream_s_queue() {
    install_logger_at(log::LevelFilter::Info);
    let (_s, held, refused) = to_a_peer_that_never_reads(true, true);
    assert!(
        !refused,
        "a write after an awaited flush was refused ({held} bytes accepted)"
    );
}

/// A [`Firehose`] of 128 MiB (flushing and nudged as told) for a peer that sends a
/// request and never reads, with a 2 s idle timeout: once the connection has closed,
/// the server, the bytes the delegate wrote, and whether a write was refused.
fn to_a_peer_that_never_reads(flushes: bool, nudged: bool) -> (TestServer, u64, bool) {
    let delegate = Firehose {
        total: 128 << 20,
        written: Arc::default(),
        refused: Arc::default(),
        flushes,
        nudged,
    };
    let (written, refused) = (delegate.written.clone(), delegate.refused.clone());
    let config = HttpServerConfig {
        idle_connection_timeout: Duration::from_secs(2),
        ..HttpServerConfig::default()
    };
    let s = serve(move || HttpServer::with_delegate(delegate).with_config(config));
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.write_all(GET).unwrap();
    assert!(wait_until(PATIENCE, || s.stats.connections_accepted() == 1));
    assert!(
        wait_until(Duration::from_secs(120), || s.stats.open_connections() == 0),
        "the stalled connection was never closed"
    );
    drop(c);
    let held = written.load(Ordering::SeqCst);
    (s, held, refused.load(Ordering::SeqCst))
}
