//! `h1::ServerConn` end to end, sans IO: Tornado's KeepAliveTest, HTTPServerRawTest and
//! friends in our own words, plus properties over any split of the input.

use bytes::BytesMut;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};
use proptest::prelude::*;
use squall_httputil::h1::{Event, ServerConn};
use squall_httputil::{write_error_response, BodyKind, Limits, OutputError, ParseError};

/// Events with consecutive `Data` merged, so that any split compares equal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Head {
        method: Method,
        uri: String,
        version: Version,
        headers: Vec<(String, Vec<u8>)>,
        body: BodyKind,
        keep_alive: bool,
        expect: bool,
    },
    Data(Vec<u8>),
    End,
    Error(ParseError),
}

/// A tiny server: answers each request when its body ends, echoing the body.
struct Harness {
    conn: ServerConn,
    input: BytesMut,
    output: BytesMut,
    events: Vec<Ev>,
    body: Vec<u8>,
}

impl Harness {
    fn new(limits: Limits) -> Self {
        Harness {
            conn: ServerConn::new(limits),
            input: BytesMut::new(),
            output: BytesMut::new(),
            events: Vec::new(),
            body: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        while let Some(e) = self.conn.poll(&mut self.input) {
            match e {
                Event::Head(h) => self.events.push(Ev::Head {
                    method: h.method.clone(),
                    uri: h.uri().to_string(),
                    version: h.version,
                    headers: h
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                        .collect(),
                    body: h.body,
                    keep_alive: h.keep_alive,
                    expect: h.expect_continue,
                }),
                Event::Data(d) => {
                    self.body.extend_from_slice(&d);
                    match self.events.last_mut() {
                        Some(Ev::Data(prev)) => prev.extend_from_slice(&d),
                        _ => self.events.push(Ev::Data(d.to_vec())),
                    }
                }
                Event::End => {
                    self.events.push(Ev::End);
                    let body = std::mem::take(&mut self.body);
                    self.conn
                        .respond(StatusCode::OK, &HeaderMap::new(), &body, &mut self.output)
                        .unwrap();
                }
                Event::Error(e) => {
                    self.events.push(Ev::Error(e));
                    write_error_response(e, &mut self.output);
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

fn run(input: &[u8]) -> Harness {
    let mut h = Harness::new(Limits::default());
    h.feed(input);
    h
}

fn heads(h: &Harness) -> usize {
    h.events
        .iter()
        .filter(|e| matches!(e, Ev::Head { .. }))
        .count()
}

// Tornado: KeepAliveTest.test_two_requests.
#[test]
fn test_two_requests() {
    let h = run(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(heads(&h), 2);
    assert_eq!(h.output().matches("HTTP/1.1 200 OK").count(), 2);
    assert!(!h.output().contains("Connection: close"));
    assert!(!h.conn.should_close());
}

// Tornado: KeepAliveTest.test_request_close.
#[test]
fn test_request_close() {
    let h = run(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(heads(&h), 1, "nothing after a closing request is parsed");
    assert!(h.output().contains("Connection: close\r\n"));
    assert!(h.conn.should_close());
}

// Tornado: KeepAliveTest.test_http10 (no keep-alive: close after the response).
#[test]
fn test_http10() {
    let h = run(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    assert_eq!(heads(&h), 1);
    assert!(!h.output().contains("Connection:"));
    assert!(h.conn.should_close());
}

// Tornado: KeepAliveTest.test_http10_keepalive and test_http10_keepalive_extra_crlf.
#[test]
fn test_http10_keepalive() {
    for sep in ["", "\r\n", "\r\n\r\n\n"] {
        let raw = format!("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n{sep}GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let h = run(raw.as_bytes());
        assert_eq!(heads(&h), 2, "{sep:?}");
        assert_eq!(h.output().matches("Connection: Keep-Alive\r\n").count(), 2);
        assert!(!h.conn.should_close());
    }
}

// Tornado: KeepAliveTest.test_pipelined_requests and test_pipelined_cancel.
#[test]
fn test_pipelined_requests() {
    let one = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = run(one.repeat(16).as_bytes());
    assert_eq!(heads(&h), 16);
    assert_eq!(h.output().matches("HTTP/1.1 200 OK").count(), 16);
    // A client that goes away mid-pipeline: the partial request is reported on EOF.
    let mut h = run(format!("{one}{}", &one[..10]).as_bytes());
    assert_eq!(heads(&h), 1);
    assert_eq!(
        h.conn.read_eof(&h.input),
        Err(ParseError::IncompleteMessage)
    );
    assert!(h.conn.should_close());
}

// Tornado: KeepAliveTest.test_keepalive_chunked.
#[test]
fn test_keepalive_chunked() {
    let h = run(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(heads(&h), 2);
    assert!(!h.conn.should_close());
}

// Tornado: KeepAliveTest.test_keepalive_chunked_head_no_body.
#[test]
fn test_keepalive_chunked_head_no_body() {
    let mut conn = ServerConn::new(Limits::default());
    let mut input =
        BytesMut::from(&b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
    let mut out = BytesMut::new();
    assert!(matches!(conn.poll(&mut input), Some(Event::Head(_))));
    assert!(matches!(conn.poll(&mut input), Some(Event::End)));
    conn.start_response(StatusCode::OK, &HeaderMap::new(), &mut out)
        .unwrap();
    // The body written for a HEAD request is dropped, and the write succeeds.
    let head_len = out.len();
    conn.write_body(b"body", &mut out).unwrap();
    assert_eq!(out.len(), head_len);
    assert!(conn.finish_response(&mut out).unwrap().keep_alive);
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("Transfer-Encoding"), "{text}");
    assert!(text.ends_with("\r\n\r\n"));
    // respond() on HEAD announces the length and sends no body.
    assert!(matches!(conn.poll(&mut input), Some(Event::Head(_))));
    assert!(matches!(conn.poll(&mut input), Some(Event::End)));
    out.clear();
    let mut head_conn = ServerConn::new(Limits::default());
    let mut head_in = BytesMut::from(&b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
    while head_conn.poll(&mut head_in).is_some() {}
    head_conn
        .respond(StatusCode::OK, &HeaderMap::new(), b"hello", &mut out)
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.ends_with("Content-Length: 5\r\n\r\n"), "{text}");
}

// Tornado: HTTPServerRawTest.test_100_continue, sans IO.
#[test]
fn test_100_continue() {
    let mut conn = ServerConn::new(Limits::default());
    let mut input = BytesMut::from(
        &b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"[..],
    );
    let mut out = BytesMut::new();
    let Some(Event::Head(head)) = conn.poll(&mut input) else {
        panic!("no head")
    };
    assert!(head.expect_continue);
    assert!(
        conn.poll(&mut input).is_none(),
        "the body has not been sent"
    );
    conn.write_continue(&mut out);
    assert_eq!(&out[..], b"HTTP/1.1 100 Continue\r\n\r\n");
    input.extend_from_slice(b"abcd");
    assert!(matches!(conn.poll(&mut input), Some(Event::Data(d)) if d == "abcd"));
    assert!(matches!(conn.poll(&mut input), Some(Event::End)));
}

// Tornado: HTTPServerRawTest.test_chunked_request_body / _uppercase / _invalid_size.
#[test]
fn test_chunked_request_body() {
    for te in ["chunked", "Chunked"] {
        let raw = format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n4\r\nfoo=\r\n3\r\nbar\r\n0\r\n\r\n");
        let h = run(raw.as_bytes());
        assert!(
            h.events.contains(&Ev::Data(b"foo=bar".to_vec())),
            "{:?}",
            h.events
        );
        assert!(h.output().ends_with("Content-Length: 7\r\n\r\nfoo=bar"));
    }
    let h = run(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1_a\r\n1234567890abcdef1234567890\r\n0\r\n\r\n");
    assert_eq!(
        h.events.last(),
        Some(&Ev::Error(ParseError::InvalidChunkSize))
    );
    assert!(h.output().starts_with("HTTP/1.1 400 Bad Request\r\n"));
}

// Tornado: HTTPServerRawTest.test_invalid_content_length, through the connection.
#[test]
fn test_invalid_content_length() {
    for value in ["foo", "+10", "1_0"] {
        let raw = format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\nConnection: close\r\n\r\n1234567890\r\n");
        let h = run(raw.as_bytes());
        assert_eq!(h.events, [Ev::Error(ParseError::InvalidContentLength)]);
        assert!(h.conn.should_close());
    }
}

// Tornado: MaxHeaderSizeTest and BodyLimitsTest (with 431 and 413 instead of 400).
#[test]
fn size_limits() {
    let limits = Limits {
        max_head_size: 1024,
        max_body_size: 10,
        ..Limits::default()
    };
    let mut h = Harness::new(limits.clone());
    h.feed(
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(2000)
        )
        .as_bytes(),
    );
    assert_eq!(h.events, [Ev::Error(ParseError::HeadTooLarge)]);
    assert!(h
        .output()
        .starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));

    let mut h = Harness::new(limits.clone());
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n");
    assert!(matches!(
        h.events[..],
        [Ev::Head { .. }, Ev::Error(ParseError::BodyTooLarge)]
    ));
    assert!(h.output().starts_with("HTTP/1.1 413 Payload Too Large\r\n"));

    let mut h = Harness::new(limits);
    h.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n");
    assert!(matches!(h.events[..], [Ev::Head { .. }, Ev::Data(_)]));
    h.feed(b"6\r\n");
    assert_eq!(h.events.last(), Some(&Ev::Error(ParseError::BodyTooLarge)));
}

/// After a rejected request nothing more is parsed, whatever follows: no desync.
#[test]
fn smuggled_request_is_never_parsed() {
    let attacks: &[&str] = &[
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n\r\n5c\r\nGET /admin HTTP/1.1\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    for raw in attacks {
        let mut h = run(raw.as_bytes());
        assert!(
            matches!(h.events.last(), Some(Ev::Error(_))),
            "{raw:?}: {:?}",
            h.events
        );
        assert!(
            !h.events
                .iter()
                .any(|e| matches!(e, Ev::Head { uri, .. } if uri == "/admin")),
            "{raw:?}"
        );
        h.feed(b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(
            !h.events
                .iter()
                .any(|e| matches!(e, Ev::Head { uri, .. } if uri == "/admin")),
            "{raw:?}"
        );
        assert!(h.conn.should_close());
    }
}

// Tornado: InvalidOutputContentLengthTest.
#[test]
fn output_content_length_is_checked() {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
    for (body, err) in [
        (&b"0123456789abc"[..], OutputError::ContentLengthExceeded),
        (&b"01234"[..], OutputError::ContentLengthShort(5)),
    ] {
        let mut conn = ServerConn::new(Limits::default());
        let mut input = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
        while conn.poll(&mut input).is_some() {}
        let mut out = BytesMut::new();
        assert_eq!(
            conn.respond(StatusCode::OK, &headers, body, &mut out),
            Err(err)
        );
        assert!(out.is_empty(), "nothing of the broken response is written");
        // The request is still owed its answer (a 500), and that answer ends the
        // connection.
        assert!(!conn.should_close());
        let done = conn
            .respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                &HeaderMap::new(),
                b"",
                &mut out,
            )
            .unwrap();
        assert!(!done.keep_alive);
        assert!(conn.should_close(), "a broken response ends the connection");
    }
    let mut conn = ServerConn::new(Limits::default());
    let mut input = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
    while conn.poll(&mut input).is_some() {}
    let mut bad = HeaderMap::new();
    bad.insert(header::CONTENT_LENGTH, HeaderValue::from_static("x"));
    let mut out = BytesMut::new();
    assert_eq!(
        conn.start_response(StatusCode::OK, &bad, &mut out),
        Err(OutputError::InvalidContentLength)
    );
    assert!(out.is_empty());
    // The request is still owed a response.
    conn.respond(StatusCode::OK, &HeaderMap::new(), b"ok", &mut out)
        .unwrap();
}

#[test]
fn responses_need_requests_in_order() {
    let mut conn = ServerConn::new(Limits::default());
    let mut out = BytesMut::new();
    assert_eq!(
        conn.start_response(StatusCode::OK, &HeaderMap::new(), &mut out),
        Err(OutputError::NoRequestPending)
    );
    assert_eq!(
        conn.finish_response(&mut out),
        Err(OutputError::NoResponseStarted)
    );
    let mut input = BytesMut::from(
        &b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
    );
    while conn.poll(&mut input).is_some() {}
    assert_eq!(conn.pending_responses(), 2);
    conn.start_response(StatusCode::OK, &HeaderMap::new(), &mut out)
        .unwrap();
    assert_eq!(
        conn.start_response(StatusCode::OK, &HeaderMap::new(), &mut out),
        Err(OutputError::NoRequestPending)
    );
    conn.write_body(b"streamed", &mut out).unwrap();
    conn.finish_response(&mut out).unwrap();
    conn.respond(StatusCode::OK, &HeaderMap::new(), b"", &mut out)
        .unwrap();
    assert_eq!(conn.pending_responses(), 0);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("Transfer-Encoding: chunked\r\n\r\n8\r\nstreamed\r\n0\r\n\r\n"),
        "{text}"
    );
    assert!(text.contains("Date: "));
}

#[test]
fn no_keep_alive_option() {
    let mut conn = ServerConn::new(Limits::default());
    conn.set_no_keep_alive(true);
    let mut input =
        BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
    let Some(Event::Head(h)) = conn.poll(&mut input) else {
        panic!()
    };
    assert!(!h.keep_alive);
    assert!(matches!(conn.poll(&mut input), Some(Event::End)));
    assert!(conn.poll(&mut input).is_none());
    let mut out = BytesMut::new();
    assert!(
        !conn
            .respond(StatusCode::OK, &HeaderMap::new(), b"", &mut out)
            .unwrap()
            .keep_alive
    );
    assert!(String::from_utf8_lossy(&out).contains("Connection: close"));
}

#[test]
fn trailers_reach_the_caller() {
    let mut conn = ServerConn::new(Limits::default());
    let mut input = BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Checksum: 9\r\n\r\n"[..]);
    let mut ended = false;
    while let Some(e) = conn.poll(&mut input) {
        ended |= matches!(e, Event::End);
    }
    assert!(ended);
    assert_eq!(conn.take_trailers().unwrap()["x-checksum"], "9");
}

#[test]
fn heads_are_read_in_place() {
    let mut conn = ServerConn::new(Limits::default());
    let mut input = BytesMut::from(
        &b"GET /a?b=1 HTTP/1.1\r\nHost: a\r\nX-Two: 1\r\nx-two: 2\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n"[..],
    );
    let Some(Event::Head(first)) = conn.poll(&mut input) else {
        panic!()
    };
    assert_eq!((first.path(), first.query()), ("/a", "b=1"));
    assert_eq!(first.header("X-TWO"), Some("1"));
    let all: Vec<&[u8]> = first.header_values("x-two").collect();
    assert_eq!(all, [&b"1"[..], b"2"]);
    let names: Vec<&str> = first.fields().map(|(n, _)| n).collect();
    assert_eq!(names, ["Host", "X-Two", "x-two"], "names as sent, in order");
    // The map, built on demand, agrees.
    assert_eq!(first.headers().get_all("x-two").iter().count(), 2);
    conn.poll(&mut input);
    let Some(Event::Head(second)) = conn.poll(&mut input) else {
        panic!()
    };
    assert_eq!(second.field_count(), 1);
    assert_eq!(second.header("host"), Some("b"));
}

// ---- properties -------------------------------------------------------------------

#[derive(Debug, Clone)]
enum GenBody {
    None,
    Length(Vec<u8>),
    Chunked(Vec<Vec<u8>>, bool),
}

#[derive(Debug, Clone)]
struct GenRequest {
    method: &'static str,
    path: String,
    http10: bool,
    headers: Vec<(String, String)>,
    body: GenBody,
    leading_crlf: usize,
    bare_lf: bool,
}

fn request_strategy() -> impl Strategy<Value = GenRequest> {
    let body = prop_oneof![
        Just(GenBody::None),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(GenBody::Length),
        (
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..5),
            any::<bool>()
        )
            .prop_map(|(c, t)| GenBody::Chunked(c, t)),
    ];
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        "/[a-z0-9/._-]{0,12}(\\?[a-z0-9=&%+]{0,12})?",
        any::<bool>(),
        proptest::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,20}"), 0..4),
        body,
        0usize..3,
        any::<bool>(),
    )
        .prop_map(
            |(method, path, http10, headers, body, leading_crlf, bare_lf)| {
                // HTTP/1.0 cannot carry a chunked body.
                let http10 = http10 && !matches!(body, GenBody::Chunked(..));
                let headers = headers
                    .into_iter()
                    .map(|(k, v)| (k, v.trim().to_owned()))
                    .collect();
                GenRequest {
                    method,
                    path,
                    http10,
                    headers,
                    body,
                    leading_crlf,
                    bare_lf,
                }
            },
        )
}

fn serialize(r: &GenRequest) -> Vec<u8> {
    let nl = if r.bare_lf { "\n" } else { "\r\n" };
    let mut s = "\r\n".repeat(r.leading_crlf);
    let version = if r.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    s.push_str(&format!(
        "{} {} {version}{nl}Host: example.com{nl}",
        r.method, r.path
    ));
    if r.http10 {
        s.push_str(&format!("Connection: keep-alive{nl}"));
    }
    for (k, v) in &r.headers {
        s.push_str(&format!("{k}: {v}{nl}"));
    }
    let mut out;
    match &r.body {
        GenBody::None => {
            if r.http10 {
                s.push_str(&format!("Content-Length: 0{nl}"));
            }
            s.push_str(nl);
            out = s.into_bytes();
        }
        GenBody::Length(b) => {
            s.push_str(&format!("Content-Length: {}{nl}{nl}", b.len()));
            out = s.into_bytes();
            out.extend_from_slice(b);
        }
        GenBody::Chunked(chunks, trailer) => {
            s.push_str(&format!("Transfer-Encoding: chunked{nl}{nl}"));
            out = s.into_bytes();
            let mut body = BytesMut::new();
            for c in chunks {
                squall_httputil::encode_chunk(c, &mut body);
            }
            if *trailer {
                body.extend_from_slice(b"0;end=1\r\nX-T: v\r\n\r\n");
            } else {
                squall_httputil::encode_last_chunk(&mut body);
            }
            out.extend_from_slice(&body);
        }
    }
    out
}

fn expected_body(r: &GenRequest) -> Vec<u8> {
    match &r.body {
        GenBody::None => Vec::new(),
        GenBody::Length(b) => b.clone(),
        GenBody::Chunked(c, _) => c.concat(),
    }
}

/// `out` with the value of every `Date:` header blanked: two runs of the same input may
/// straddle a second boundary, and then only the clock differs.
fn dates_blanked(out: &[u8]) -> Vec<u8> {
    const NAME: &[u8] = b"\r\nDate: ";
    const LEN: usize = "Sun, 06 Nov 1994 08:49:37 GMT".len();
    let mut v = out.to_vec();
    let mut i = 0;
    while let Some(at) = v[i..].windows(NAME.len()).position(|w| w == NAME) {
        let start = i + at + NAME.len();
        let end = (start + LEN).min(v.len());
        v[start..end].fill(b'#');
        i = end;
    }
    v
}

fn feed_in_pieces(input: &[u8], cuts: &[usize]) -> Harness {
    let mut h = Harness::new(Limits::default());
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut at = 0;
    for c in cuts {
        h.feed(&input[at..c]);
        at = c;
    }
    h.feed(&input[at..]);
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any pipelined sequence of valid requests, fed whole, in random pieces or byte by
    /// byte, gives the same events, and each body arrives intact.
    #[test]
    fn any_split_gives_the_same_events(
        reqs in proptest::collection::vec(request_strategy(), 1..5),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let input: Vec<u8> = reqs.iter().flat_map(serialize).collect();
        let whole = run(&input);
        prop_assert!(!whole.events.iter().any(|e| matches!(e, Ev::Error(_))), "{:?}", whole.events);
        prop_assert_eq!(heads(&whole), reqs.len());
        // Bodies, in order.
        let mut bodies = Vec::new();
        for e in &whole.events {
            match e {
                Ev::Head { .. } => bodies.push(Vec::new()),
                Ev::Data(d) => bodies.last_mut().unwrap().extend_from_slice(d),
                _ => {}
            }
        }
        let expected: Vec<Vec<u8>> = reqs.iter().map(expected_body).collect();
        prop_assert_eq!(bodies, expected);
        let pieces = feed_in_pieces(&input, &cuts);
        prop_assert_eq!(&pieces.events, &whole.events);
        prop_assert_eq!(dates_blanked(&pieces.output), dates_blanked(&whole.output));
        let mut bytewise = Harness::new(Limits::default());
        for b in &input {
            bytewise.feed(std::slice::from_ref(b));
        }
        prop_assert_eq!(&bytewise.events, &whole.events);
        prop_assert!(whole.input.is_empty());
    }

    /// Arbitrary bytes, in arbitrary splits: never a panic, the same events as whole,
    /// and after an error nothing more.
    #[test]
    fn arbitrary_bytes_any_split(
        input in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = run(&input);
        let pieces = feed_in_pieces(&input, &cuts);
        prop_assert_eq!(&pieces.events, &whole.events);
        if let Some(i) = whole.events.iter().position(|e| matches!(e, Ev::Error(_))) {
            prop_assert_eq!(i, whole.events.len() - 1);
        }
    }

    /// Valid requests with garbage spliced in: the same events in any split.
    #[test]
    fn corrupted_requests_any_split(
        reqs in proptest::collection::vec(request_strategy(), 1..4),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut input: Vec<u8> = reqs.iter().flat_map(serialize).collect();
        for (at, b) in flips {
            let n = input.len();
            input[at % n] = b;
        }
        let whole = run(&input);
        let pieces = feed_in_pieces(&input, &cuts);
        prop_assert_eq!(&pieces.events, &whole.events);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Feed(Vec<u8>),
    Start(u16, Option<u8>),
    Write(u8),
    Finish,
    Respond(u16, u8),
    Continue,
    Eof,
    MaxBody(u16),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let valid = request_strategy().prop_map(|r| serialize(&r));
    prop_oneof![
        4 => valid.prop_map(Op::Feed),
        2 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Feed),
        2 => (prop::sample::select(vec![100u16, 101, 200, 204, 304, 404, 500]), proptest::option::of(0u8..20)).prop_map(|(s, l)| Op::Start(s, l)),
        2 => (0u8..30).prop_map(Op::Write),
        2 => Just(Op::Finish),
        3 => (prop::sample::select(vec![200u16, 204, 304, 413]), 0u8..10).prop_map(|(s, l)| Op::Respond(s, l)),
        1 => Just(Op::Continue),
        1 => Just(Op::Eof),
        1 => any::<u16>().prop_map(Op::MaxBody),
    ]
}

proptest! {
    /// The connection driven by any sequence of inputs and calls, correct or not: no
    /// panic, no event after an error or EOF, and `should_close` is final.
    #[test]
    fn any_driver_never_panics(ops in proptest::collection::vec(op_strategy(), 1..30)) {
        let mut conn = ServerConn::new(Limits { max_pipelined: 4, ..Limits::default() });
        let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
        let mut stopped = false;
        // Once `should_close` holds it holds for good: no more events, no more output.
        let mut closed = false;
        for op in ops {
            let out_before = out.len();
            match op {
                Op::Feed(bytes) => {
                    input.extend_from_slice(&bytes);
                    while let Some(e) = conn.poll(&mut input) {
                        prop_assert!(!closed, "event after should_close: {:?}", e);
                        prop_assert!(!stopped, "event after an error or EOF: {:?}", e);
                        if let Event::Error(_) = e {
                            stopped = true;
                        }
                    }
                }
                Op::Start(status, len) => {
                    let mut h = HeaderMap::new();
                    if let Some(l) = len {
                        h.insert(header::CONTENT_LENGTH, HeaderValue::from(u16::from(l)));
                    }
                    let _ = conn.start_response(StatusCode::from_u16(status).unwrap(), &h, &mut out);
                }
                Op::Write(n) => {
                    let _ = conn.write_body(&vec![b'x'; n.into()], &mut out);
                }
                Op::Finish => {
                    let _ = conn.finish_response(&mut out);
                }
                Op::Respond(status, n) => {
                    let _ = conn.respond(StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), &vec![b'y'; n.into()], &mut out);
                }
                Op::Continue => {
                    conn.write_continue(&mut out);
                }
                Op::Eof => {
                    let _ = conn.read_eof(&input);
                    stopped = true;
                }
                Op::MaxBody(n) => conn.set_max_body_size(n.into()),
            }
            if closed {
                prop_assert!(conn.should_close(), "should_close went back to false");
                prop_assert_eq!(out.len(), out_before, "output after should_close");
                prop_assert!(!conn.is_responding());
            }
            closed |= conn.should_close();
        }
    }
}

// A whole response whose Content-Length disagrees with its body is refused before any
// byte is written; the request stays owed, and the answer it then gets (a 500) closes
// the connection.
#[test]
fn respond_with_a_wrong_content_length_writes_nothing_and_closes_after_the_answer() {
    for (declared, body, err) in [
        ("10", &b"short"[..], OutputError::ContentLengthShort(5)),
        ("2", b"too long", OutputError::ContentLengthExceeded),
    ] {
        let mut conn = ServerConn::new(Limits::default());
        let mut input = BytesMut::from(
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        );
        while conn.poll(&mut input).is_some() {}
        assert_eq!(conn.pending_responses(), 2);
        let mut out = BytesMut::from(&b"earlier"[..]);
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static(declared));
        assert_eq!(conn.respond(StatusCode::OK, &h, body, &mut out), Err(err));
        assert_eq!(&out[..], b"earlier", "nothing written");
        let done = conn
            .respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                &HeaderMap::new(),
                b"",
                &mut out,
            )
            .unwrap();
        assert!(!done.keep_alive);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("HTTP/1.1 500 Internal Server Error\r\n"),
            "{text}"
        );
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(conn.should_close());
        // A HEAD response announces a length and sends no body: not a mismatch.
        let mut conn = ServerConn::new(Limits::default());
        let mut input = BytesMut::from(&b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
        while conn.poll(&mut input).is_some() {}
        let mut out = BytesMut::new();
        assert!(
            conn.respond(StatusCode::OK, &h, b"", &mut out)
                .unwrap()
                .keep_alive
        );
    }
}
