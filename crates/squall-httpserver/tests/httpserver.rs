//! HttpServer over real loopback sockets: Tornado's `httpserver_test.py`, in our words.

mod common;

#[cfg(feature = "gzip")]
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{serve, Client};
use http::{HeaderMap, StatusCode};
use squall_httpserver::{
    ConnectionInfo, HttpMessageDelegate, HttpServer, HttpServerConfig,
    HttpServerConnectionDelegate, HttpServerRequest, RequestStart, Response, ResponseWriter,
};

#[derive(Clone, Default)]
struct Flags {
    entered: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

/// The test application.
fn app(
    flags: Flags,
) -> impl Fn(HttpServerRequest) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response>>>
       + Clone
       + Send
       + 'static {
    move |req: HttpServerRequest| {
        let flags = flags.clone();
        Box::pin(async move {
            match req.path() {
                "/echo" => Response::bytes(req.body),
                "/ip" => Response::text(format!("{} {}", req.remote_ip(), req.protocol())),
                "/panic" => panic!("handler panic (expected by the test)"),
                "/notmod" => Response::new(StatusCode::NOT_MODIFIED),
                "/args" => Response::text(format!("{:?}", req.arguments().get("foo"))),
                p if p.starts_with("/caf") => {
                    Response::text(format!("{p} {} {}", req.query(), req.uri()))
                }
                "/slow" => {
                    flags.entered.store(true, Ordering::SeqCst);
                    while !flags.release.load(Ordering::SeqCst) {
                        squall_ioloop::sleep(Duration::from_millis(1)).await;
                    }
                    Response::text("slow done")
                }
                _ => Response::text("Hello, world!"),
            }
        })
    }
}

fn server_with(config: HttpServerConfig) -> common::TestServer {
    serve(move || HttpServer::new(app(Flags::default())).with_config(config))
}

fn server() -> common::TestServer {
    server_with(HttpServerConfig::default())
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// More keep-alive connections than the count from which a server thread asks the CPU
/// to load the next connections' state ahead of serving them
/// (`squall_poller::sys::PREFETCH_FROM`). Each round writes a request on every
/// connection before reading any answer, so that polls find many ready at once; every
/// request is answered, on its own connection, and the connections stay open.
#[test]
fn many_keep_alive_connections() {
    // Two fds per connection in this process (the client's and the server's).
    squall_testing::set_nofile(!0);
    let s = server();
    let n = squall_poller::sys::PREFETCH_FROM + 64;
    let mut clients: Vec<Client> = (0..n).map(|_| s.client()).collect();
    for round in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.send(format!("GET /args?foo={i}-{round} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let r = c.read_response();
            assert_eq!(r.status, 200);
            assert_eq!(r.text(), format!("Some([b\"{i}-{round}\"])"));
        }
    }
    assert_eq!(s.stats.connections_accepted(), n as u64);
}

// KeepAliveTest.test_two_requests / test_request_close
#[test]
fn keep_alive_http11() {
    let s = server();
    let mut c = s.client();
    for _ in 0..3 {
        let r = c.request(GET);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "Hello, world!");
        assert!(r.header("connection").is_none());
    }
    let r = c.request(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed_by_server());
    assert_eq!(s.stats.connections_accepted(), 1);
}

// KeepAliveTest.test_http10 / test_http10_keepalive / test_http10_keepalive_extra_crlf
#[test]
fn keep_alive_http10() {
    let s = server();
    let mut c = s.client();
    let r = c.request(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.text(), "Hello, world!");
    assert!(c.is_closed_by_server());

    let mut c = s.client();
    for _ in 0..2 {
        let r = c.request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\r\n");
        // Tornado writes the token as `Keep-Alive` and its KeepAliveTest compares it
        // exactly.
        assert_eq!(r.header("connection"), Some("Keep-Alive"));
        assert_eq!(r.text(), "Hello, world!");
    }
}

// test_pipelined_requests: all sent at once, answered in order.
#[test]
fn pipelined_requests_in_order() {
    let s = server();
    let mut c = s.client();
    c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirstPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecondGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let bodies: Vec<String> = (0..4).map(|_| c.read_response().text()).collect();
    assert_eq!(
        bodies,
        ["Hello, world!", "first", "second", "Hello, world!"]
    );
    assert!(c.is_closed_by_server());
}

// test_chunked_request_body / test_chunked_request_uppercase
#[test]
fn chunked_upload() {
    let s = server();
    let mut c = s.client();
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n4\r\nWiki\r\n");
    c.send(b"5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.text(), "Wikipedia in\r\n\r\nchunks.");
    // The connection goes on.
    assert_eq!(c.request(GET).status, 200);
}

/// A streaming delegate: counts body bytes without keeping them, answers chunked.
#[derive(Clone, Default)]
struct Counter {
    peak_chunk: Arc<AtomicUsize>,
}

struct CounterMsg {
    peak_chunk: Arc<AtomicUsize>,
    bytes: u64,
}

impl HttpServerConnectionDelegate for Counter {
    type Message<'a> = CounterMsg;
    fn start_request(&self, _c: &ConnectionInfo) -> CounterMsg {
        CounterMsg {
            peak_chunk: self.peak_chunk.clone(),
            bytes: 0,
        }
    }
}

impl HttpMessageDelegate for CounterMsg {
    async fn headers_received(&mut self, _r: RequestStart, w: &mut ResponseWriter<'_>) {
        w.set_max_body_size(u64::MAX);
        w.set_body_timeout(None);
    }
    async fn data_received(&mut self, chunk: Bytes, _w: &mut ResponseWriter<'_>) {
        self.bytes += chunk.len() as u64;
        self.peak_chunk.fetch_max(chunk.len(), Ordering::Relaxed);
    }
    async fn finish(&mut self, w: &mut ResponseWriter<'_>) {
        w.write_head(StatusCode::OK, HeaderMap::new()).unwrap();
        w.write(b"bytes=").unwrap();
        w.flush().await.unwrap();
        w.write(self.bytes.to_string().as_bytes()).unwrap();
        w.finish().unwrap();
    }
}

// test_chunked_response (our streaming delegate answers chunked).
#[test]
fn chunked_response_from_streaming_delegate() {
    let s = serve(|| HttpServer::with_delegate(Counter::default()));
    let mut c = s.client();
    let r = c.request(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "bytes=3");
    // An HTTP/1.0 client gets a close-delimited body instead.
    let mut c = s.client();
    c.send(b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
    let r = c.read_response();
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(r.text(), "bytes=3");
}

// test_100_continue
#[test]
fn expect_100_continue() {
    let s = server();
    let mut c = s.client();
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read_response();
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello");
}

// HEAD and 304: headers only, the connection stays usable.
#[test]
fn head_and_not_modified() {
    let s = server();
    let mut c = s.client();
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response_to(true);
    assert_eq!(r.header("content-length"), Some("13"));
    let r = c.request(b"GET /notmod HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(c.request(GET).text(), "Hello, world!");
}

// test_malformed_first_line_response / test_malformed_headers / test_invalid_content_length
#[test]
fn malformed_requests() {
    let s = server();
    for bad in [
        &b"asdf\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nasdf\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: foo\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut c = s.client();
        let r = c.request(bad);
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(bad));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed_by_server());
    }
}

// A target with raw UTF-8 (what curl sends for a URL typed with non-ASCII characters)
// reaches the handler as sent, its arguments decoded; one that is not UTF-8 gets 400.
#[test]
fn a_utf8_target_reaches_the_handler() {
    let s = server();
    let mut c = s.client();
    let r = c.request("GET /caf\u{e9}?q=\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n".as_bytes());
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "/caf\u{e9} q=\u{e9} /caf%C3%A9?q=%C3%A9"
    );
    // The arguments are what the escaped query gives.
    let r = c.request("GET /args?foo=\u{e9}t\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n".as_bytes());
    let escaped = c.request(b"GET /args?foo=%C3%A9t%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        r#"Some([b"\xc3\xa9t\xc3\xa9"])"#
    );
    assert_eq!(r.body, escaped.body);
    let r = c.request(b"GET /caf\xc3 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 400);
    assert!(c.is_closed_by_server());
}

// MaxHeaderSizeTest (431) and BodyLimitsTest (413).
#[test]
fn size_limits() {
    let s = server_with(HttpServerConfig {
        max_header_size: 1024,
        max_body_size: 4096,
        ..HttpServerConfig::default()
    });
    let mut c = s.client();
    let r = c.request(
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
            "a".repeat(1100)
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 431);
    assert!(c.is_closed_by_server());

    let mut c = s.client();
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n");
    // The client goes on sending; the server answers and closes without a reset eating
    // the answer.
    let _ = c.try_send(&[b'x'; 10000]);
    let r = c.read_response();
    assert_eq!(r.status, 413);
    assert!(c.is_closed_by_server());

    // A client that reads only once it has sent its whole body (Python's `requests`
    // does) hears the 413 too, for a body of 12 MiB, more than the socket buffers of
    // both ends hold: the server reads and drops it while lingering (it once stopped
    // after 1 MiB, and the client's write met the reset of the close).
    let mut c = s.client();
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12582912\r\n\r\n");
    c.send(&vec![b'x'; 12 << 20]);
    let r = c.read_response();
    assert_eq!(r.status, 413);
    assert!(c.is_closed_by_server());

    let mut c = s.client();
    let r = c.request(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n"
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'y', 4096))
            .collect::<Vec<u8>>()
            .as_slice(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 4096);
}

// XHeaderTest.test_ip_headers / test_trusted_downstream / test_scheme_headers, and a
// request's proxy headers never leak into the next one on the same connection.
#[test]
fn xheaders() {
    let s = server_with(HttpServerConfig {
        xheaders: true,
        trusted_downstream: vec!["10.0.0.9".parse().unwrap()],
        ..HttpServerConfig::default()
    });
    let mut c = s.client();
    let r =
        c.request(b"GET /ip HTTP/1.1\r\nHost: x\r\nX-Real-IP: 4.4.4.4\r\nX-Scheme: https\r\n\r\n");
    assert_eq!(r.text(), "4.4.4.4 https");
    let r = c.request(
        b"GET /ip HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\n\r\n",
    );
    assert_eq!(r.text(), "2.2.2.2 http");
    let r = c.request(b"GET /ip HTTP/1.1\r\nHost: x\r\nX-Real-IP: not-an-ip\r\n\r\n");
    assert_eq!(r.text(), "127.0.0.1 http");
    let r = c.request(b"GET /ip HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.text(), "127.0.0.1 http");

    let off = server();
    let mut c = off.client();
    let r =
        c.request(b"GET /ip HTTP/1.1\r\nHost: x\r\nX-Real-IP: 4.4.4.4\r\nX-Scheme: https\r\n\r\n");
    assert_eq!(r.text(), "127.0.0.1 http");
}

#[cfg(feature = "gzip")]
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

// GzipTest.test_gzip (form arguments from an inflated body) and a bomb.
#[cfg(feature = "gzip")]
#[test]
fn gzip_upload() {
    let s = server_with(HttpServerConfig {
        decompress_request: true,
        max_body_size: 1 << 20,
        ..HttpServerConfig::default()
    });
    let mut c = s.client();
    let body = gzip(b"foo=bar");
    let mut req = format!(
        "POST /args HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    assert_eq!(c.request(&req).text(), "Some([b\"bar\"])");

    let bomb = gzip(&vec![0u8; 64 << 20]);
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        bomb.len()
    )
    .into_bytes();
    req.extend_from_slice(&bomb);
    let mut c = s.client();
    let r = c.request(&req);
    assert_eq!(r.status, 413);
}

// IdleTimeoutTest, the header timeout (slowloris) and BodyLimitsTest.test_body_timeout.
#[test]
fn timeouts() {
    let s = server_with(HttpServerConfig {
        idle_connection_timeout: Duration::from_millis(200),
        header_timeout: Duration::from_millis(200),
        body_timeout: Some(Duration::from_millis(200)),
        ..HttpServerConfig::default()
    });
    // Idle: a fresh connection that says nothing, and one after a request.
    let started = Instant::now();
    let mut idle = s.client();
    assert!(idle.is_closed_by_server());
    assert!(started.elapsed() >= Duration::from_millis(200));
    let mut after = s.client();
    assert_eq!(after.request(GET).status, 200);
    assert!(after.is_closed_by_server());

    // Slowloris: a head trickled a byte at a time, faster than the idle timeout, is cut
    // off by the header timeout.
    let mut slow = s.client();
    let started = Instant::now();
    let mut closed = false;
    for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .iter()
        .chain(std::iter::repeat(&b'a'))
    {
        if slow.try_send(&[*b]).is_err() || started.elapsed() > Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50)); // the trickle itself, not a sync
        slow.reader.get_ref().set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        let r = std::io::Read::read(slow.reader.get_mut(), &mut buf);
        slow.reader.get_ref().set_nonblocking(false).unwrap();
        if matches!(r, Ok(0))
            || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickled head was not cut off within 5 s");

    // Body timeout: a body that stops arriving.
    let mut c = s.client();
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial");
    assert!(c.is_closed_by_server());
}

// A panic in the handler: 500, then the next request is served.
#[test]
fn handler_panic_is_500() {
    let s = server();
    let mut c = s.client();
    let r = c.request(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 500);
    assert_eq!(c.request(GET).text(), "Hello, world!");
}

// Graceful shutdown: the request in flight is answered with Connection: close, the
// idle connection is closed, new connections are refused, then the server is gone.
#[test]
fn graceful_shutdown() {
    let flags = Flags::default();
    let f = flags.clone();
    let s = serve(move || HttpServer::new(app(f)));
    let mut idle = s.client();
    assert_eq!(idle.request(GET).status, 200);
    let mut busy = s.client();
    busy.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    while !flags.entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    s.start_shutdown(Duration::from_secs(30));
    assert!(idle.is_closed_by_server(), "the idle connection is closed");
    flags.release.store(true, Ordering::SeqCst);
    let r = busy.read_response();
    assert_eq!(r.text(), "slow done");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(busy.is_closed_by_server());
    let addr = s.addr;
    s.wait();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}

// Graceful shutdown with a request that never ends: forced after the grace period.
#[test]
fn shutdown_forces_after_grace() {
    let flags = Flags::default();
    let f = flags.clone();
    let s = serve(move || HttpServer::new(app(f)));
    let mut busy = s.client();
    busy.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    while !flags.entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let started = Instant::now();
    s.start_shutdown(Duration::from_millis(200));
    assert!(busy.is_closed_by_server());
    assert!(started.elapsed() >= Duration::from_millis(200));
    s.wait();
}

// test_bind_start: bind + start(2) serves from two threads.
#[test]
fn start_two_threads() {
    let mut server = HttpServer::new(app(Flags::default()));
    let addr = server.bind(0, "127.0.0.1").unwrap();
    server.start(2).unwrap();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                (0..5).map(|_| c.request(GET).status).collect::<Vec<_>>()
            })
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap().iter().all(|&s| s == 200));
    }
    assert_eq!(server.stats().connections_accepted(), 8);
    let io_loop = squall_ioloop::IoLoop::new().unwrap();
    io_loop
        .run_sync(
            server.shutdown(Duration::from_secs(5)),
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    server.join();
    assert!(std::net::TcpStream::connect(addr).is_err());
}

/// Stream `total` bytes through the counting delegate; return the server's high-water
/// mark of buffered bytes.
fn streamed_upload(total: u64) -> usize {
    let s = serve(|| {
        HttpServer::with_delegate(Counter::default()).with_config(HttpServerConfig {
            max_body_size: u64::MAX,
            body_timeout: None,
            ..HttpServerConfig::default()
        })
    });
    let mut c = s.client();
    c.send(format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n").as_bytes());
    let block = vec![b'z'; 256 * 1024];
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(block.len() as u64) as usize;
        c.send(&block[..n]);
        sent += n as u64;
    }
    let r = c.read_response();
    assert_eq!(r.text(), format!("bytes={total}"));
    let peak = s.stats.buffer_high_water();
    eprintln!("streamed {total} bytes; the server held at most {peak} bytes at once");
    peak
}

/// The memory-flat upload: 64 MiB through the streaming delegate while the server
/// never holds more than a few read chunks. (The 1 GiB run is `streamed_upload_1gib`.)
#[test]
fn streamed_upload_memory_is_flat() {
    let peak = streamed_upload(64 << 20);
    assert!(peak > 0);
    assert!(peak <= 512 * 1024, "server held {peak} bytes at once");
}

/// The 1 GiB version of the memory-flat upload (`cargo test -p squall-httpserver
/// --release -- --ignored streamed_upload_1gib`); ignored by default for its run time.
#[test]
#[ignore]
fn streamed_upload_1gib() {
    let peak = streamed_upload(1 << 30);
    assert!(peak <= 512 * 1024, "server held {peak} bytes at once");
}

/// Read until end-of-file: everything received, and how long after the last byte the
/// end-of-file came. A reset (which would destroy a response in flight) fails the test.
fn read_to_eof(c: &mut Client) -> (String, Duration) {
    let mut all = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut last = Instant::now();
    loop {
        match std::io::Read::read(&mut c.reader, &mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&all).into_owned(), last.elapsed()),
            Ok(n) => {
                all.extend_from_slice(&buf[..n]);
                last = Instant::now();
            }
            Err(e) => panic!(
                "reading the response failed ({e}) after {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
    }
}

/// End-of-file must follow the last response byte within this (issue: nginx-style close).
/// The failure it catches is an end-of-file held back for the whole linger (2 s); half
/// of that leaves a loaded machine (a parallel build, 2 cores) room to schedule the
/// server late, where 100 ms did not.
const PROMPT_EOF: Duration = Duration::from_secs(1);

// Every path that ends a connection closes like nginx: the write side is shut down right
// after the last response byte, so the client reads the whole response and then
// end-of-file at once, never a reset; the server lingers reading what is still coming.
#[test]
fn connection_ends_with_prompt_eof_and_no_reset() {
    let s = server();
    let cases: Vec<(&str, Vec<u8>, &str, usize)> = vec![
        (
            "framing error with a request behind it",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 400 ",
            1,
        ),
        (
            "TLS handshake on the plain port",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
            "HTTP/1.1 400 ",
            1,
        ),
        (
            "rejected request with its body still coming",
            {
                let mut r = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 900000000\r\n\r\n".to_vec();
                r.extend_from_slice(&vec![b'a'; 64 * 1024]);
                r
            },
            "HTTP/1.1 413 ",
            1,
        ),
        (
            "Connection: close with a request pipelined behind it",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 200 OK\r\n",
            1,
        ),
        (
            "HTTP/1.0",
            b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            "HTTP/1.1 200 OK\r\n",
            1,
        ),
        (
            "keep-alive requests, then Connection: close",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            "HTTP/1.1 200 OK\r\n",
            2,
        ),
    ];
    for (what, request, status, responses) in cases {
        let mut c = s.client();
        c.send(&request);
        let (out, eof_after) = read_to_eof(&mut c);
        assert!(out.starts_with(status), "{what}: {out}");
        assert_eq!(out.matches("HTTP/1.1 ").count(), responses, "{what}: {out}");
        assert!(
            eof_after < PROMPT_EOF,
            "{what}: end-of-file {eof_after:?} after the last byte"
        );
    }
}

// The drain path: a request in flight when the server shuts down is answered with
// `Connection: close`, and end-of-file follows at once.
#[test]
fn drained_connection_ends_with_prompt_eof() {
    let flags = Flags::default();
    let f = flags.clone();
    let s = serve(move || HttpServer::new(app(f)));
    let mut idle = s.client();
    assert_eq!(idle.request(GET).status, 200);
    let mut busy = s.client();
    busy.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    while !flags.entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    s.start_shutdown(Duration::from_secs(30));
    // `start_shutdown` only queues the shutdown on the server's loop: the idle
    // connection's end shows the drain has begun, so the slow request is released
    // into it (released earlier, its response could go out before the drain).
    assert!(idle.is_closed_by_server(), "the idle connection is closed");
    flags.release.store(true, Ordering::SeqCst);
    let (out, eof_after) = read_to_eof(&mut busy);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(out.ends_with("slow done"), "{out}");
    assert!(
        eof_after < PROMPT_EOF,
        "end-of-file {eof_after:?} after the last byte"
    );
    s.wait();
}

// A client that half-closes right after its request (`printf ... | nc`, some HTTP/1.0
// clients) still gets the whole response, then end-of-file.
#[test]
fn a_half_closed_client_gets_its_response() {
    let s = server();
    for request in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut c = s.client();
        c.send(request);
        c.reader
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
            .unwrap();
        let (out, eof_after) = read_to_eof(&mut c);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("Hello, world!"), "{out}");
        assert!(
            eof_after < PROMPT_EOF,
            "end-of-file {eof_after:?} after the last byte"
        );
    }
}

// A timeout of `Duration::MAX` means "never", not an `Instant` overflow: a keep-alive
// wait, a head in two pieces (the header timeout), a body in two (the body timeout),
// and a response written under the write timeout all pass on a server whose every
// timeout is `Duration::MAX` (each panicked before).
#[test]
fn timeouts_of_duration_max_mean_never() {
    let s = server_with(HttpServerConfig {
        idle_connection_timeout: Duration::MAX,
        header_timeout: Duration::MAX,
        body_timeout: Some(Duration::MAX),
        ..HttpServerConfig::default()
    });
    let mut c = s.client();
    assert_eq!(c.request(GET).status, 200);
    // The first request, and the start of the next head behind it.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHo");
    assert_eq!(c.read_response().status, 200);
    c.send(b"st: x\r\nContent-Length: 4\r\n\r\nab");
    c.send(b"cd");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"abcd");
    let big = vec![b'z'; 8 << 20];
    let mut upload = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n".to_vec();
    upload.extend_from_slice(&big);
    c.send(&upload);
    let r = c.read_response();
    assert_eq!(r.body.len(), big.len());
}
