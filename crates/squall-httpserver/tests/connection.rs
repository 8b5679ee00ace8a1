//! The connection driver over the in-memory transport: Tornado's
//! `http1connection_test.py` and the parts of `httpserver_test.py` that need no socket.

use std::cell::RefCell;
#[cfg(feature = "gzip")]
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use squall_httpserver::{
    handler_fn, ConnectionInfo, Http1Connection, HttpMessageDelegate, HttpServerConfig,
    HttpServerConnectionDelegate, MemoryPeer, MemoryTransport, RequestStart, Response,
    ResponseWriter,
};
use squall_ioloop::IoLoop;

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn hello() -> squall_httpserver::FnHandler<
    impl Fn(squall_httpserver::HttpServerRequest) -> std::future::Ready<Response> + Clone,
> {
    handler_fn(|req: squall_httpserver::HttpServerRequest| {
        std::future::ready(match req.path() {
            "/echo" => Response::bytes(req.body),
            "/panic" => panic!("handler panic (expected by the test)"),
            "/notmod" => Response::new(StatusCode::NOT_MODIFIED),
            _ => Response::text("Hello, world!"),
        })
    })
}

/// Feed `input` (each piece one read), then end of file; serve to the end.
fn serve_all<D: HttpServerConnectionDelegate>(
    delegate: D,
    config: HttpServerConfig,
    input: &[&[u8]],
) -> (String, MemoryPeer) {
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    for piece in input {
        peer.send(piece);
    }
    peer.close();
    let conn = Http1Connection::new(transport, Rc::new(delegate), config, None);
    io_loop.run_sync(conn.serve(), TIMEOUT).unwrap();
    (text(&peer.take_output()), peer)
}

/// Feed `input` (each piece one read), wait for `answers` chunked responses to be
/// complete, then end of file; serve to the end. For a delegate whose `finish` waits
/// (a flush): an end of file sent with the request would be the client leaving while
/// its request is handled (a half-close counts as gone), which drops `finish`.
fn serve_answered<D: HttpServerConnectionDelegate>(
    delegate: D,
    config: HttpServerConfig,
    input: &[&[u8]],
    answers: usize,
) -> (String, MemoryPeer) {
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    for piece in input {
        peer.send(piece);
    }
    let conn = Http1Connection::new(transport, Rc::new(delegate), config, None);
    let p = peer.clone();
    let out = io_loop
        .run_sync(
            async move {
                let task = IoLoop::current().unwrap().spawn(conn.serve());
                let mut out = String::new();
                until(|| {
                    out.push_str(&text(&p.take_output()));
                    out.matches("\r\n0\r\n\r\n").count() >= answers
                })
                .await;
                p.close();
                task.await.unwrap();
                out.push_str(&text(&p.take_output()));
                out
            },
            TIMEOUT,
        )
        .unwrap();
    (out, peer)
}

/// Yield to the loop until `cond` holds (bounded by the run_sync timeout).
async fn until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        squall_ioloop::sleep(Duration::ZERO).await;
    }
}

// test_pipelined_requests / the batching rule: every buffered request is answered,
// in order, in one write.
#[test]
fn pipelined_requests_are_answered_in_order_in_one_write() {
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    let (out, peer) = serve_all(hello(), HttpServerConfig::default(), &[req]);
    assert_eq!(peer.write_calls(), 1, "{out}");
    let hello_at = out.find("Hello, world!").unwrap();
    let echo_at = out.find("\r\n\r\nabc").unwrap();
    let last = out.rfind("Hello, world!").unwrap();
    assert!(hello_at < echo_at && echo_at < last, "{out}");
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 3);
    assert!(
        out.to_ascii_lowercase().contains("\r\nserver: squall\r\n"),
        "{out}"
    );
    assert!(out.contains("Date: "));
    assert!(peer.is_closed());
}

// test_newlines: leading empty lines between pipelined requests are ignored, bare LF ok.
#[test]
fn newlines_between_requests() {
    let (out, _) = serve_all(
        hello(),
        HttpServerConfig::default(),
        &[b"\r\n\r\nGET / HTTP/1.1\nHost: x\n\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    assert_eq!(out.matches("Hello, world!").count(), 2, "{out}");
}

// HTTPConnectionTest.test_multipart_form: an HTTP/1.0 upload whose first field comes
// before the first delimiter, a Latin-1 header, UTF-8 in a field, a file name and a
// file body; every piece reaches the handler.
#[test]
fn multipart_form_as_tornado_sends_it() {
    let handler = handler_fn(|req: squall_httpserver::HttpServerRequest| {
        let header = req
            .header_bytes("x-header-encoding-test")
            .map(squall_httputil::latin1_text);
        let file = &req.files()["files"][0];
        std::future::ready(Response::text(format!(
            "{header:?}|{}|{}|{}",
            text(&req.arguments()["argument"][0]),
            file.filename,
            text(&file.body)
        )))
    });
    let body = "Content-Disposition: form-data; name=argument\r\n\r\n\u{e1}\r\n\
        --1234567890\r\n\
        Content-Disposition: form-data; name=\"files\"; filename=\"\u{f3}\"\r\n\r\n\
        \u{fa}\r\n--1234567890--\r\n";
    let mut req = b"POST /multipart HTTP/1.0\r\n\
        Content-Type: multipart/form-data; boundary=1234567890\r\n\
        X-Header-encoding-test: \xe9\r\n"
        .to_vec();
    req.extend_from_slice(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    let (out, _) = serve_all(handler, HttpServerConfig::default(), &[&req]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.ends_with("\r\n\r\nSome(\"\u{e9}\")|\u{e1}|\u{f3}|\u{fa}"),
        "{out}"
    );
}

// KeepAliveTest.test_http10 / test_http10_keepalive: HTTP/1.0 closes unless asked.
#[test]
fn http10_keep_alive_rules() {
    let (out, peer) = serve_all(
        hello(),
        HttpServerConfig::default(),
        &[b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n"],
    );
    assert_eq!(out.matches("Hello, world!").count(), 1, "{out}");
    assert!(!out.contains("Connection: Keep-Alive"));
    assert!(peer.is_closed());

    let (out, _) = serve_all(
        hello(),
        HttpServerConfig::default(),
        &[b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"],
    );
    assert_eq!(
        out.matches("Connection: Keep-Alive\r\n").count(),
        2,
        "{out}"
    );
    assert_eq!(out.matches("Hello, world!").count(), 2, "{out}");
}

// KeepAliveTest.test_request_close / no_keep_alive.
#[test]
fn connection_close_and_no_keep_alive() {
    let (out, _) = serve_all(
        hello(),
        HttpServerConfig::default(),
        &[b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    assert_eq!(out.matches("Hello, world!").count(), 1, "{out}");
    assert!(out.contains("Connection: close\r\n"));

    let config = HttpServerConfig {
        no_keep_alive: true,
        ..HttpServerConfig::default()
    };
    let (out, _) = serve_all(
        hello(),
        config,
        &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    assert_eq!(out.matches("Hello, world!").count(), 1, "{out}");
    assert!(out.contains("Connection: close\r\n"));
}

// test_keepalive_chunked_head_no_body / HEAD and 304 carry no body.
#[test]
fn head_and_304_have_no_body() {
    let (out, _) = serve_all(
        hello(),
        HttpServerConfig::default(),
        &[b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /notmod HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    let parts: Vec<&str> = out.split("HTTP/1.1 ").filter(|p| !p.is_empty()).collect();
    assert_eq!(parts.len(), 3, "{out}");
    assert!(
        parts[0].starts_with("200")
            && parts[0].contains("Content-Length: 13\r\n")
            && parts[0].ends_with("\r\n\r\n"),
        "{}",
        parts[0]
    );
    assert!(
        parts[1].starts_with("304")
            && !parts[1].contains("Content-Length")
            && parts[1].ends_with("\r\n\r\n"),
        "{}",
        parts[1]
    );
    assert!(parts[2].ends_with("Hello, world!"));
}

// test_malformed_first_line / test_malformed_headers: 400 and close.
#[test]
fn malformed_requests_get_400_and_close() {
    for bad in [
        &b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let (out, peer) = serve_all(hello(), HttpServerConfig::default(), &[bad]);
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("Connection: close\r\n"));
        assert!(peer.is_closed());
    }
    // A good request before a bad one is answered first.
    let (out, _) = serve_all(
        hello(),
        HttpServerConfig::default(),
        &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/9\r\n\r\n"],
    );
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("HTTP/1.1 400 Bad Request"), "{out}");
}

// MaxHeaderSizeTest / BodyLimitsTest: 431 and 413.
#[test]
fn header_and_body_limits() {
    let config = HttpServerConfig {
        max_header_size: 1024,
        max_body_size: 10,
        ..HttpServerConfig::default()
    };
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(2000)
    );
    let (out, peer) = serve_all(hello(), config.clone(), &[big.as_bytes()]);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    assert!(peer.is_closed());

    let (out, _) = serve_all(
        hello(),
        config.clone(),
        &[b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890"],
    );
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");

    let (out, _) = serve_all(
        hello(),
        config,
        &[b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n012345\r\n0\r\n\r\n"],
    );
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
}

// test_chunked_request_body, with a chunk split across reads.
#[test]
fn chunked_upload_to_simple_handler() {
    let (out, _) = serve_all(
        hello(),
        HttpServerConfig::default(),
        &[
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWi",
            b"ki\r\n5\r\npedia\r\n0\r\n\r\n",
        ],
    );
    assert!(out.ends_with("Content-Length: 9\r\n\r\nWikipedia"), "{out}");
}

/// A streaming delegate that records what it is given and streams a chunked answer.
#[derive(Clone, Default)]
struct Recorder {
    log: Rc<RefCell<Vec<String>>>,
    answer_early: Option<StatusCode>,
}

struct RecorderMsg {
    log: Rc<RefCell<Vec<String>>>,
    answer_early: Option<StatusCode>,
    body: usize,
}

impl HttpServerConnectionDelegate for Recorder {
    type Message<'a> = RecorderMsg;
    fn start_request(&self, _c: &ConnectionInfo) -> RecorderMsg {
        RecorderMsg {
            log: self.log.clone(),
            answer_early: self.answer_early,
            body: 0,
        }
    }
}

impl HttpMessageDelegate for RecorderMsg {
    async fn headers_received(&mut self, request: RequestStart, w: &mut ResponseWriter<'_>) {
        self.log
            .borrow_mut()
            .push(format!("head {}", request.head.uri()));
        if let Some(status) = self.answer_early {
            w.respond(status, HeaderMap::new(), b"").unwrap();
        }
    }
    async fn data_received(&mut self, chunk: Bytes, _w: &mut ResponseWriter<'_>) {
        self.body += chunk.len();
        self.log.borrow_mut().push(format!("data {}", chunk.len()));
        // Awaiting here pauses reading.
        squall_ioloop::sleep(Duration::ZERO).await;
    }
    async fn finish(&mut self, w: &mut ResponseWriter<'_>) {
        self.log.borrow_mut().push("finish".into());
        w.write_head(StatusCode::OK, HeaderMap::new()).unwrap();
        w.write(b"got ").unwrap();
        w.flush().await.unwrap();
        w.write(self.body.to_string().as_bytes()).unwrap();
        w.finish().unwrap();
    }
    fn on_connection_close(&mut self) {
        self.log.borrow_mut().push("closed".into());
    }
}

// StreamingChunkSizeTest: pieces are at most chunk_size, wire chunk edges kept; the
// streamed answer is chunked.
#[test]
fn streaming_delegate_chunk_size_and_chunked_response() {
    let rec = Recorder::default();
    let config = HttpServerConfig {
        chunk_size: 4,
        ..HttpServerConfig::default()
    };
    let (out, _) = serve_answered(
        rec.clone(),
        config,
        &[b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n2\r\ngh\r\n0\r\n\r\n"],
        1,
    );
    assert_eq!(
        *rec.log.borrow(),
        ["head /up", "data 4", "data 2", "data 2", "finish"]
    );
    assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
    assert!(
        out.ends_with("\r\n\r\n4\r\ngot \r\n1\r\n8\r\n0\r\n\r\n"),
        "{out}"
    );
}

// test_100_continue: the interim response comes only when the body is wanted.
#[test]
fn expect_100_continue() {
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    let conn = Http1Connection::new(
        transport,
        Rc::new(hello()),
        HttpServerConfig::default(),
        None,
    );
    let p = peer.clone();
    io_loop
        .run_sync(
            async move {
                let task = IoLoop::current().unwrap().spawn(conn.serve());
                p.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
                let mut out = Vec::new();
                until(|| {
                    out.extend_from_slice(&p.take_output());
                    !out.is_empty()
                })
                .await;
                assert_eq!(text(&out), "HTTP/1.1 100 Continue\r\n\r\n");
                p.send(b"body");
                p.close();
                task.await.unwrap();
                out.extend_from_slice(&p.take_output());
                let out = text(&out);
                assert!(out.contains("HTTP/1.1 200 OK\r\n") && out.ends_with("body"), "{out}");
            },
            TIMEOUT,
        )
        .unwrap();

    // A delegate that refuses from the head gets no 100, and the connection closes.
    let rec = Recorder {
        answer_early: Some(StatusCode::UNAUTHORIZED),
        ..Recorder::default()
    };
    let (out, peer) = serve_all(
        rec.clone(),
        HttpServerConfig::default(),
        &[b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"],
    );
    assert!(out.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{out}");
    assert!(!out.contains("100 Continue"));
    assert!(
        out.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{out}"
    );
    assert!(peer.is_closed());
    assert_eq!(*rec.log.borrow(), ["head /x", "closed"]);
}

// A reply before the body was read: the body is never taken for a request.
#[test]
fn early_reply_never_desynchronises() {
    let rec = Recorder {
        answer_early: Some(StatusCode::FORBIDDEN),
        ..Recorder::default()
    };
    let (out, _) = serve_all(
        rec,
        HttpServerConfig::default(),
        &[
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\n",
            b"GET /smuggled HTTP/1.1\r\n\r\n",
        ],
    );
    assert_eq!(out.matches("HTTP/1.1").count(), 1, "{out}");
}

// A bodyless request answered from its head leaves nothing unread: the connection
// stays open for the next one, `finish` is skipped and `on_connection_close` called
// (Tornado's `_read_message`); a request with a body answered early still closes.
#[test]
fn early_reply_to_a_bodyless_request_keeps_the_connection() {
    let rec = Recorder {
        answer_early: Some(StatusCode::FORBIDDEN),
        ..Recorder::default()
    };
    let (out, _) = serve_all(
        rec.clone(),
        HttpServerConfig::default(),
        &[b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /d HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    assert_eq!(
        out.matches("HTTP/1.1 403 Forbidden\r\n").count(),
        3,
        "{out}"
    );
    assert!(!out.contains("/d"), "{out}");
    assert_eq!(
        *rec.log.borrow(),
        ["head /a", "closed", "head /b", "closed", "head /c", "closed"]
    );
    // Without an early answer every step comes, once, in order.
    let rec = Recorder::default();
    let (out, _) = serve_answered(
        rec.clone(),
        HttpServerConfig::default(),
        &[b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"],
        2,
    );
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{out}");
    assert_eq!(
        *rec.log.borrow(),
        ["head /a", "finish", "head /b", "finish"]
    );
}

// A panic in a handler: 500 for it, and the next request on the same connection is
// served.
#[test]
fn handler_panic_gives_500_and_keeps_serving() {
    let (out, _) = serve_all(
        hello(),
        HttpServerConfig::default(),
        &[b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    assert!(
        out.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{out}"
    );
    assert!(out.ends_with("Hello, world!"), "{out}");
}

struct BadLength;
struct BadLengthMsg;
impl HttpServerConnectionDelegate for BadLength {
    type Message<'a> = BadLengthMsg;
    fn start_request(&self, _c: &ConnectionInfo) -> BadLengthMsg {
        BadLengthMsg
    }
}
impl HttpMessageDelegate for BadLengthMsg {
    async fn headers_received(&mut self, _r: RequestStart, _w: &mut ResponseWriter<'_>) {}
    async fn finish(&mut self, w: &mut ResponseWriter<'_>) {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_LENGTH, "10".parse().unwrap());
        w.write_head(StatusCode::OK, h).unwrap();
        w.write(b"short").unwrap();
        assert!(w.write(b"too long!").is_err());
    }
}

// InvalidOutputContentLengthTest: a body that breaks its Content-Length closes the
// connection after what was written; the next request is not served.
#[test]
fn content_length_mismatch_closes() {
    let (out, peer) = serve_all(
        BadLength,
        HttpServerConfig::default(),
        &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    assert_eq!(out.matches("HTTP/1.1 200").count(), 1, "{out}");
    assert!(out.ends_with("short"), "{out}");
    assert!(peer.is_closed());
}

#[cfg(feature = "gzip")]
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

// GzipTest / GzipUnsupportedTest.
#[cfg(feature = "gzip")]
#[test]
fn gzip_request_bodies() {
    let body = gzip(b"foo=bar&x=1");
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: GZIP\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let config = HttpServerConfig {
        decompress_request: true,
        ..HttpServerConfig::default()
    };
    let (out, _) = serve_all(hello(), config, &[&req]);
    assert!(out.ends_with("\r\n\r\nfoo=bar&x=1"), "{out}");

    // Off: a body that is not a form reaches the handler as sent.
    let (out, _) = serve_all(hello(), HttpServerConfig::default(), &[&req]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.ends_with(&*String::from_utf8_lossy(&body))
            && out.contains(&format!("Content-Length: {}\r\n", body.len())),
        "{out}"
    );
    let args = handler_fn(|req: squall_httpserver::HttpServerRequest| {
        std::future::ready(Response::text(format!("{:?}", req.arguments())))
    });
    let mut form = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    form.extend_from_slice(&body);
    // A form the server cannot read is refused (Tornado's GzipUnsupportedTest).
    let (out, _) = serve_all(args, HttpServerConfig::default(), &[&form]);
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(
        out.ends_with("\r\n\r\nunsupported Content-Encoding"),
        "{out}"
    );

    // A bomb: 10 MB of zeros in a few KB is refused at max_body_size, not inflated.
    let bomb = gzip(&vec![0u8; 10 << 20]);
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        bomb.len()
    )
    .into_bytes();
    req.extend_from_slice(&bomb);
    let config = HttpServerConfig {
        decompress_request: true,
        max_body_size: 1 << 20,
        ..HttpServerConfig::default()
    };
    let (out, _) = serve_all(hello(), config.clone(), &[&req]);
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");

    // Not gzip at all: 400.
    let (out, _) = serve_all(
        hello(),
        config,
        &[b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello"],
    );
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
}

// IdleTimeoutTest and the header timeout, on loop timers.
#[test]
fn idle_and_header_timeouts_close() {
    let config = HttpServerConfig {
        idle_connection_timeout: Duration::from_millis(100),
        header_timeout: Duration::from_millis(100),
        ..HttpServerConfig::default()
    };
    for input in [&b""[..], b"GET / HTTP/1.1\r\nHost"] {
        let io_loop = IoLoop::new().unwrap();
        let (transport, peer) = MemoryTransport::pair();
        peer.send(input);
        let conn = Http1Connection::new(transport, Rc::new(hello()), config.clone(), None);
        let started = std::time::Instant::now();
        io_loop.run_sync(conn.serve(), TIMEOUT).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(peer.is_closed());
        assert!(peer.take_output().is_empty());
    }
}

// A peer reset mid-body reaches the delegate as on_connection_close.
#[test]
fn reset_mid_body_calls_on_connection_close() {
    let rec = Recorder::default();
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    peer.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    let conn = Http1Connection::new(
        transport,
        Rc::new(rec.clone()),
        HttpServerConfig::default(),
        None,
    );
    let p = peer.clone();
    io_loop
        .run_sync(
            async move {
                let task = IoLoop::current().unwrap().spawn(conn.serve());
                let log = rec.log.clone();
                until(|| log.borrow().len() >= 2).await;
                p.reset();
                task.await.unwrap();
                assert_eq!(*log.borrow(), ["head /up", "data 3", "closed"]);
            },
            TIMEOUT,
        )
        .unwrap();
    assert!(peer.is_closed());
}

// test_chunked_request_uppercase, split across reads.
#[test]
fn chunked_upload_uppercase_coding() {
    let (out, _) = serve_all(
        hello(),
        HttpServerConfig::default(),
        &[
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n4\r\nWiki\r\n",
            b"5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n",
        ],
    );
    assert!(
        out.ends_with("\r\n\r\nWikipedia in\r\n\r\nchunks."),
        "{out}"
    );
}

/// Writes a head and three 600-byte pieces without yielding, recording each result.
struct Burst(Rc<RefCell<Vec<String>>>);
struct BurstMsg(Rc<RefCell<Vec<String>>>);
impl HttpServerConnectionDelegate for Burst {
    type Message<'a> = BurstMsg;
    fn start_request(&self, _c: &ConnectionInfo) -> BurstMsg {
        BurstMsg(self.0.clone())
    }
}
impl HttpMessageDelegate for BurstMsg {
    async fn headers_received(&mut self, _r: RequestStart, _w: &mut ResponseWriter<'_>) {}
    async fn finish(&mut self, w: &mut ResponseWriter<'_>) {
        let mut log = vec![format!(
            "{:?}",
            w.write_head(StatusCode::OK, HeaderMap::new())
        )];
        for _ in 0..3 {
            log.push(format!("{:?}", w.write(&[b'z'; 600])));
        }
        log.push(format!("{:?}", w.finish()));
        log.push(format!("{:?}", w.flush().await.map_err(|e| e.to_string())));
        *self.0.borrow_mut() = log;
    }
    fn on_connection_close(&mut self) {
        self.0.borrow_mut().push("closed".into());
    }
}

// Tornado's max_write_buffer_size (StreamBufferFullError): once the connection holds
// more than the limit for the peer, writes fail with WriteBufferFull and the connection
// closes without sending the broken response; a whole response given at once to a
// connection under the limit is accepted whatever its size.
#[test]
fn write_buffer_cap_refuses_writes_and_closes() {
    let config = HttpServerConfig {
        max_write_buffer_size: 1000,
        ..HttpServerConfig::default()
    };
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (out, peer) = serve_all(
        Burst(seen.clone()),
        config.clone(),
        &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    let seen = seen.borrow().clone();
    assert_eq!(
        seen[..5],
        [
            "Ok(())",
            "Ok(())",
            "Ok(())",
            "Err(WriteBufferFull)",
            "Err(WriteBufferFull)"
        ],
        "{seen:?}"
    );
    assert!(seen[5].contains("write buffer is full"), "{seen:?}");
    assert_eq!(seen.get(6).map(String::as_str), Some("closed"), "{seen:?}");
    assert_eq!(out, "", "nothing of the broken response is sent");
    assert!(peer.is_closed());

    let big = handler_fn(|_req| async { Response::bytes(vec![b'b'; 5000]) });
    let (out, peer) = serve_all(big, config, &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with(&"b".repeat(5000)), "{}", out.len());
    assert!(peer.is_closed());
}

// Empty lines do not put a connection back to idle: the header timeout, started by the
// first byte, closes a connection that sends only newlines, however long its idle
// timeout; and more than MAX_EMPTY_LINES of them are refused at once.
#[test]
fn empty_lines_start_the_header_timeout() {
    let config = HttpServerConfig {
        idle_connection_timeout: Duration::from_secs(3600),
        header_timeout: Duration::from_millis(100),
        ..HttpServerConfig::default()
    };
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    let conn = Http1Connection::new(transport, Rc::new(hello()), config.clone(), None);
    let started = std::time::Instant::now();
    let sender = peer.clone();
    io_loop
        .run_sync(
            async move {
                let task = IoLoop::current().unwrap().spawn(conn.serve());
                // A newline now and then, each within the header timeout of the last.
                for _ in 0..4 {
                    sender.send(b"\r\n");
                    squall_ioloop::sleep(Duration::from_millis(40)).await;
                }
                task.await.unwrap();
            },
            TIMEOUT,
        )
        .unwrap();
    let elapsed = started.elapsed();
    assert!(peer.is_closed());
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(peer.take_output().is_empty());

    let blank = "\r\n".repeat(squall_httputil::MAX_EMPTY_LINES + 1);
    let (out, peer) = serve_all(hello(), config, &[blank.as_bytes()]);
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(peer.is_closed());
}

// Bytes that cannot begin a request (here a TLS ClientHello) are answered with 400 and
// the connection closed at once, without waiting for the header timeout.
#[test]
fn a_tls_handshake_on_the_plain_port_is_refused_at_once() {
    let config = HttpServerConfig {
        header_timeout: Duration::from_secs(3600),
        idle_connection_timeout: Duration::from_secs(3600),
        ..HttpServerConfig::default()
    };
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    let conn = Http1Connection::new(transport, Rc::new(hello()), config, None);
    // The first bytes of a ClientHello; the peer keeps its side open.
    peer.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    io_loop.run_sync(conn.serve(), TIMEOUT).unwrap();
    let out = text(&peer.take_output());
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(peer.is_write_shut_down(), "half-closed after the response");
    assert!(peer.is_closed(), "closed after lingering (bounded in time)");
}

// Lingering after a rejected request is bounded in bytes: a peer that keeps sending is
// read up to the bound (16 MiB), then left unread, the connection still open, until
// the linger's time (2 s) is up; its output ended with the response.
#[test]
fn lingering_is_bounded_in_bytes() {
    const MIB: usize = 1024 * 1024;
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    let conn = Http1Connection::new(
        transport,
        Rc::new(hello()),
        HttpServerConfig::default(),
        None,
    );
    peer.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n");
    let piece = Bytes::from(vec![b'z'; 64 * 1024]);
    for _ in 0..(20 * MIB / piece.len()) {
        peer.send_bytes(piece.clone()); // 20 MiB the server does not want
    }
    let started = std::time::Instant::now();
    io_loop.run_sync(conn.serve(), TIMEOUT).unwrap();
    let out = text(&peer.take_output());
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(peer.is_write_shut_down());
    assert!(peer.is_closed());
    let read = 20 * MIB - peer.unread();
    assert!(
        (16 * MIB..16 * MIB + 128 * 1024).contains(&read),
        "read {read} bytes before closing"
    );
    // Not closed at the bound: a timer is never early.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1990),
        "closed after {waited:?}"
    );
}

// A whole response whose own Content-Length does not match its body is answered with
// 500, and the connection closes after it (Tornado closes); the request pipelined
// behind it is not served.
#[test]
fn application_content_length_mismatch_answers_500_and_closes() {
    for (declared, body) in [("10", &b"short"[..]), ("2", b"too long")] {
        let handler = handler_fn(move |_req: squall_httpserver::HttpServerRequest| {
            let mut r = Response::bytes(Bytes::from_static(body));
            r.headers
                .insert(http::header::CONTENT_LENGTH, declared.parse().unwrap());
            std::future::ready(r)
        });
        let (out, peer) = serve_all(
            handler,
            HttpServerConfig::default(),
            &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
        );
        assert!(
            out.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{declared}: {out}"
        );
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{declared}: {out}");
        assert!(out.contains("Connection: close\r\n"), "{declared}: {out}");
        assert!(peer.is_closed());
    }
}

// A 204 whose handler set `Content-Length: 0` is answered as a 204 without that field
// (RFC 9110 §8.6 forbids it there), and the connection goes on; a Content-Length that
// claims a body on a 204 is still the application's error (500).
#[test]
fn no_content_with_zero_content_length_is_sent_without_it() {
    for (declared, ok) in [("0", true), ("5", false)] {
        let handler = handler_fn(move |_req: squall_httpserver::HttpServerRequest| {
            let mut r = Response::new(StatusCode::NO_CONTENT);
            r.headers
                .insert(http::header::CONTENT_LENGTH, declared.parse().unwrap());
            std::future::ready(r)
        });
        let (out, _peer) = serve_all(
            handler,
            HttpServerConfig::default(),
            &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
        );
        if ok {
            assert_eq!(
                out.matches("HTTP/1.1 204 No Content\r\n").count(),
                2,
                "{out}"
            );
            assert!(
                !out.to_ascii_lowercase().contains("content-length"),
                "{out}"
            );
        } else {
            assert!(
                out.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
                "{out}"
            );
        }
    }
}

struct StreamsBody;
struct StreamsBodyMsg;
impl HttpServerConnectionDelegate for StreamsBody {
    type Message<'a> = StreamsBodyMsg;
    fn start_request(&self, _c: &ConnectionInfo) -> StreamsBodyMsg {
        StreamsBodyMsg
    }
}
impl HttpMessageDelegate for StreamsBodyMsg {
    async fn headers_received(&mut self, _r: RequestStart, _w: &mut ResponseWriter<'_>) {}
    async fn finish(&mut self, w: &mut ResponseWriter<'_>) {
        // Written the same way for GET and HEAD, unwrapping as a delegate may.
        w.write_head(StatusCode::OK, HeaderMap::new()).unwrap();
        w.write(b"hello ").unwrap();
        w.write(b"world").unwrap();
        w.finish().unwrap();
    }
}

// Tornado's contract: a body written for a HEAD request is dropped and the write
// succeeds; the connection stays usable.
#[test]
fn response_writer_write_on_head_writes_nothing_and_succeeds() {
    let (out, _) = serve_all(
        StreamsBody,
        HttpServerConfig::default(),
        &[b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    let responses: Vec<&str> = out.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
    assert_eq!(responses.len(), 2, "{out}");
    assert!(responses[0].ends_with("\r\n\r\n"), "{out}");
    assert!(!responses[0].contains("hello"), "{out}");
    assert!(
        responses[1].ends_with("6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"),
        "{out}"
    );
}

// Header names in the case the application wants: title case (hyper's
// title_case_headers), or its own spellings (preserve case); lower case by default.
#[test]
fn header_name_case_options() {
    let handler = || {
        handler_fn(|_req: squall_httpserver::HttpServerRequest| {
            let mut r = Response::text("x");
            r.headers
                .insert("x-api-key", http::HeaderValue::from_static("k"));
            r.headers
                .insert("etag", http::HeaderValue::from_static("\"1\""));
            std::future::ready(r)
        })
    };
    let req: &[&[u8]] = &[b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"];
    let (out, _) = serve_all(handler(), HttpServerConfig::default(), req);
    assert!(out.contains("\r\nx-api-key: k\r\n"), "{out}");
    assert!(out.contains("\r\nserver: squall\r\n"), "{out}");

    let title = HttpServerConfig {
        header_case: squall_httputil::HeaderCase::Title,
        ..HttpServerConfig::default()
    };
    let (out, _) = serve_all(handler(), title, req);
    assert!(out.contains("\r\nX-Api-Key: k\r\n"), "{out}");
    assert!(out.contains("\r\nEtag: \"1\"\r\n"), "{out}");
    assert!(out.contains("\r\nContent-Type: "), "{out}");
    assert!(out.contains("\r\nServer: squall\r\n"), "{out}");

    let mut spellings = squall_httputil::HeaderCaseMap::new();
    spellings.insert("X-API-Key");
    spellings.insert("ETag");
    let preserve = HttpServerConfig {
        header_case: squall_httputil::HeaderCase::Preserve,
        header_spellings: spellings,
        ..HttpServerConfig::default()
    };
    let (out, _) = serve_all(handler(), preserve, req);
    assert!(out.contains("\r\nX-API-Key: k\r\n"), "{out}");
    assert!(out.contains("\r\nETag: \"1\"\r\n"), "{out}");
    assert!(out.contains("\r\nContent-Type: "), "{out}");
}

// BodyLimitsTest.test_body_timeout with the idle timeout far longer than the body
// timeout, and a body that keeps trickling: only the body timeout can end it.
#[test]
fn body_timeout_ends_a_trickled_body() {
    let config = HttpServerConfig {
        idle_connection_timeout: Duration::from_secs(3600),
        header_timeout: Duration::from_secs(3600),
        body_timeout: Some(Duration::from_millis(200)),
        ..HttpServerConfig::default()
    };
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    let conn = Http1Connection::new(transport, Rc::new(hello()), config, None);
    peer.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab");
    let sender = peer.clone();
    let started = std::time::Instant::now();
    io_loop
        .run_sync(
            async move {
                let task = IoLoop::current().unwrap().spawn(conn.serve());
                // A byte every 40 ms: each read is far within the idle timeout.
                while !sender.is_closed() && started.elapsed() < Duration::from_secs(5) {
                    sender.send(b"x");
                    squall_ioloop::sleep(Duration::from_millis(40)).await;
                }
                task.await.unwrap();
            },
            TIMEOUT,
        )
        .unwrap();
    let elapsed = started.elapsed();
    assert!(peer.is_closed());
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "not ended by the body timeout: {elapsed:?}"
    );
    assert!(peer.take_output().is_empty(), "closed without a response");
}

/// A streaming delegate that logs each call and panics at the one named `panic_at`
/// ("start", "head", "data", "finish", "closed"); `on_close` is logged as "server
/// closed".
#[derive(Clone, Default)]
struct Panicky {
    log: Rc<RefCell<Vec<&'static str>>>,
    panic_at: &'static str,
}

impl Panicky {
    fn step(&self, name: &'static str) {
        self.log.borrow_mut().push(name);
        if self.panic_at == name {
            panic!("delegate panic at {name} (expected by the test)");
        }
    }
}

impl HttpServerConnectionDelegate for Panicky {
    type Message<'a> = Panicky;
    fn start_request(&self, _c: &ConnectionInfo) -> Panicky {
        self.step("start");
        self.clone()
    }
    fn on_close(&self, _c: &ConnectionInfo) {
        self.log.borrow_mut().push("server closed");
    }
}

impl HttpMessageDelegate for Panicky {
    async fn headers_received(&mut self, _r: RequestStart, _w: &mut ResponseWriter<'_>) {
        self.step("head");
    }
    async fn data_received(&mut self, _chunk: Bytes, _w: &mut ResponseWriter<'_>) {
        self.step("data");
    }
    async fn finish(&mut self, w: &mut ResponseWriter<'_>) {
        self.step("finish");
        w.respond(StatusCode::OK, HeaderMap::new(), b"ok").unwrap();
    }
    fn on_connection_close(&mut self) {
        self.step("closed");
    }
}

/// Serve `input` to a [`Panicky`] that panics at `panic_at`: the output, the peer, and
/// the calls made.
fn serve_panicky(panic_at: &'static str, input: &[u8]) -> (String, MemoryPeer, Vec<&'static str>) {
    let d = Panicky {
        panic_at,
        ..Panicky::default()
    };
    let (out, peer) = serve_all(d.clone(), HttpServerConfig::default(), &[input]);
    let log = d.log.borrow().clone();
    (out, peer, log)
}

// A panic in on_connection_close (the body cut short here) is caught and logged like a
// panic in the other steps: it does not escape the connection's future, which closes
// the connection and tells the server delegate.
#[test]
fn a_panic_in_on_connection_close_is_caught() {
    let (out, peer, log) = serve_panicky(
        "closed",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
    );
    assert_eq!(out, "");
    assert!(peer.is_closed());
    assert_eq!(log, ["start", "head", "data", "closed", "server closed"]);
}

// A panic in the server delegate's start_request is a panicking handler: 500, the
// connection closes (what follows the head is not read as a request) and the server
// delegate hears of it.
#[test]
fn a_panic_in_start_request_is_500_and_close() {
    let (out, peer, log) = serve_panicky(
        "start",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    );
    assert!(
        out.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{out}"
    );
    assert!(out.contains("onnection: close\r\n"), "{out}");
    assert_eq!(out.matches("HTTP/1.1").count(), 1, "{out}");
    assert!(peer.is_closed());
    assert_eq!(log, ["start", "server closed"]);
}

// A panic before the body's end closes the connection before `finish`: the delegate
// hears of it through on_connection_close, once, as for any other early close
// (Tornado's `_read_message` calls it after an exception in either step); the request
// is answered 500 and what follows its head is never read as a request.
#[test]
fn a_panic_before_finish_calls_on_connection_close() {
    for (panic_at, log) in [
        ("head", &["start", "head", "closed", "server closed"][..]),
        (
            "data",
            &["start", "head", "data", "closed", "server closed"][..],
        ),
    ] {
        let (out, peer, calls) = serve_panicky(
            panic_at,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n",
        );
        assert!(
            out.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{out}"
        );
        assert_eq!(out.matches("HTTP/1.1").count(), 1, "{out}");
        assert!(peer.is_closed());
        assert_eq!(calls, log, "panic at {panic_at}");
    }
}

/// A streaming delegate that takes its time over the head (a second), then has the
/// peer send the body 50 ms after it returns; it answers with the body's length, and
/// the peer then ends its side.
#[derive(Clone)]
struct SlowHead {
    peer: MemoryPeer,
    got: Rc<RefCell<usize>>,
}

impl HttpServerConnectionDelegate for SlowHead {
    type Message<'a> = SlowHead;
    fn start_request(&self, _c: &ConnectionInfo) -> SlowHead {
        self.clone()
    }
}

impl HttpMessageDelegate for SlowHead {
    async fn headers_received(&mut self, _r: RequestStart, _w: &mut ResponseWriter<'_>) {
        squall_ioloop::sleep(Duration::from_secs(1)).await;
        let peer = self.peer.clone();
        IoLoop::current()
            .unwrap()
            .call_later(Duration::from_millis(50), move || peer.send(b"0123456789"));
    }
    async fn data_received(&mut self, chunk: Bytes, _w: &mut ResponseWriter<'_>) {
        *self.got.borrow_mut() += chunk.len();
    }
    async fn finish(&mut self, w: &mut ResponseWriter<'_>) {
        let body = self.got.borrow().to_string();
        w.respond(StatusCode::OK, HeaderMap::new(), body.as_bytes())
            .unwrap();
        self.peer.close();
    }
}

// The body timeout starts when the delegate has taken the head, as Tornado's does (its
// `with_timeout` wraps the read of the body, after `headers_received`): a second spent
// on the head is not taken from a body timeout of 800 ms, and a body that comes 50 ms
// after the head was taken is read.
#[test]
fn body_timeout_starts_after_headers_received() {
    let config = HttpServerConfig {
        body_timeout: Some(Duration::from_millis(800)),
        ..HttpServerConfig::default()
    };
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    let d = SlowHead {
        peer: peer.clone(),
        got: Rc::default(),
    };
    peer.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n");
    let conn = Http1Connection::new(transport, Rc::new(d), config, None);
    io_loop.run_sync(conn.serve(), TIMEOUT).unwrap();
    let out = String::from_utf8_lossy(&peer.take_output()).into_owned();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert!(out.ends_with("\r\n\r\n10"), "{out:?}");
}

/// A streaming delegate whose `data_received` never returns (a consumer that died);
/// its calls are logged.
#[derive(Clone, Default)]
struct Stuck {
    log: Rc<RefCell<Vec<&'static str>>>,
}

impl HttpServerConnectionDelegate for Stuck {
    type Message<'a> = Stuck;
    fn start_request(&self, _c: &ConnectionInfo) -> Stuck {
        self.clone()
    }
}

impl HttpMessageDelegate for Stuck {
    async fn headers_received(&mut self, _r: RequestStart, _w: &mut ResponseWriter<'_>) {
        self.log.borrow_mut().push("head");
    }
    async fn data_received(&mut self, _chunk: Bytes, _w: &mut ResponseWriter<'_>) {
        self.log.borrow_mut().push("data");
        std::future::pending::<()>().await;
    }
    async fn finish(&mut self, _w: &mut ResponseWriter<'_>) {
        self.log.borrow_mut().push("finish");
    }
    fn on_connection_close(&mut self) {
        self.log.borrow_mut().push("closed");
    }
}

// The body timeout bounds the whole body, the delegate's time in data_received
// included (Tornado's `with_timeout` around the body's read): a delegate that never
// returns from it does not hold the connection past the timeout.
#[test]
fn body_timeout_fires_while_data_received_is_pending() {
    let config = HttpServerConfig {
        body_timeout: Some(Duration::from_millis(100)),
        ..HttpServerConfig::default()
    };
    let d = Stuck::default();
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    // The peer stays open: only the body timeout can end this.
    peer.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    let conn = Http1Connection::new(transport, Rc::new(d.clone()), config, None);
    io_loop.run_sync(conn.serve(), TIMEOUT).unwrap();
    assert!(peer.is_closed());
    assert!(peer.take_output().is_empty());
    assert_eq!(*d.log.borrow(), ["head", "data", "closed"]);
}

// StreamingChunkSizeTest's compressed bodies: a gzip body reaches a streaming delegate
// inflated, in pieces of at most chunk_size and none empty, whether sent with a
// Content-Length or in wire chunks that split the gzip stream anywhere.
#[cfg(feature = "gzip")]
#[test]
fn streaming_delegate_gets_a_gzip_body_inflated_in_pieces() {
    let body = b"01234567890123456789012345678901234567890123456789";
    let packed = gzip(body);
    let mut by_length = format!(
        "POST /z HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        packed.len()
    )
    .into_bytes();
    by_length.extend_from_slice(&packed);
    let mut chunked =
        b"POST /z HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for part in [&packed[..20], &packed[20..]] {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    for req in [by_length, chunked] {
        let rec = Recorder::default();
        let config = HttpServerConfig {
            chunk_size: 16,
            decompress_request: true,
            ..HttpServerConfig::default()
        };
        let (out, _) = serve_answered(rec.clone(), config, &[&req], 1);
        assert!(out.contains("got \r\n2\r\n50\r\n"), "{out}");
        let log = rec.log.borrow();
        let sizes: Vec<usize> = log
            .iter()
            .filter_map(|l| l.strip_prefix("data ")?.parse().ok())
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), body.len(), "{log:?}");
        assert!(sizes.iter().all(|&n| (1..=16).contains(&n)), "{log:?}");
        assert_eq!(log.first().map(String::as_str), Some("head /z"));
        assert_eq!(log.last().map(String::as_str), Some("finish"));
    }
}
