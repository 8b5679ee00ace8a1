//! Request-head parsing: every rejection rule with its status code, the smuggling shapes,
//! and the parsing behaviours of Tornado's httpserver_test.py / httputil_test.py.

use http::{Method, Version};
use proptest::prelude::*;
use squall_httputil::{parse_request_head, BodyKind, HeadParser, Limits, ParseError, RequestHead};

use squall_httputil::fuzzing::reference_head;

fn parse(raw: &str) -> Result<RequestHead, ParseError> {
    parse_with(raw, &Limits::default())
}

fn parse_with(raw: &str, limits: &Limits) -> Result<RequestHead, ParseError> {
    match parse_request_head(raw.as_bytes(), limits)? {
        Some((head, used)) => {
            assert_eq!(used, raw.len(), "the whole input is the head");
            Ok(head)
        }
        None => panic!("incomplete head: {raw:?}"),
    }
}

/// `raw` with every `\n` turned into `\r\n`.
fn crlf(raw: &str) -> String {
    raw.replace('\n', "\r\n")
}

fn rejected(raw: &str, err: ParseError, status: u16) {
    let got = parse(raw).map(|h| h.body).unwrap_err();
    assert_eq!(got, err, "{raw:?}");
    assert_eq!(got.status().as_u16(), status, "{raw:?}");
}

#[test]
fn typical_browser_get() {
    let raw = crlf(
        "GET /index.html?q=1 HTTP/1.1\nHost: www.example.com\nUser-Agent: Mozilla/5.0\n\
         Accept: text/html,application/xhtml+xml\nAccept-Language: en-US,en;q=0.5\n\
         Accept-Encoding: gzip, deflate\nConnection: keep-alive\nCookie: a=b; c=d\n\n",
    );
    let h = parse(&raw).unwrap();
    assert_eq!(h.method, Method::GET);
    assert_eq!(h.path(), "/index.html");
    assert_eq!(h.query(), "q=1");
    assert_eq!(h.version, Version::HTTP_11);
    assert_eq!(h.headers().len(), 7);
    assert_eq!(h.headers()["accept-encoding"], "gzip, deflate");
    assert_eq!(h.body, BodyKind::None);
    assert!(h.keep_alive);
}

// Tornado: HTTPServerTest.test_newlines (CRLF and bare LF both work).
#[test]
fn test_newlines() {
    for nl in ["\r\n", "\n"] {
        let raw = format!("GET /hello HTTP/1.0{nl}{nl}");
        let h = parse(&raw).unwrap();
        assert_eq!(h.path(), "/hello");
        assert_eq!(h.version, Version::HTTP_10);
        assert!(!h.keep_alive);
    }
    // Mixed endings in one head.
    let h = parse("GET / HTTP/1.1\nHost: a\r\nX: y\n\r\n").unwrap();
    assert_eq!(h.headers()["x"], "y");
}

// Tornado strips CRLFs between pipelined requests (RFC 9112 §2.2 allows it).
#[test]
fn leading_empty_lines_are_skipped() {
    let raw = "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let (h, used) = parse_request_head(raw.as_bytes(), &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(used, raw.len());
    assert_eq!(h.method, Method::GET);
    // A lone CR is not an empty line.
    assert!(parse("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n").is_err());
}

// Tornado: HTTPServerRawTest.test_malformed_first_line_response.
#[test]
fn test_malformed_first_line() {
    rejected("asdf\r\n\r\n", ParseError::InvalidRequestLine, 400);
    rejected(
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        ParseError::InvalidRequestLine,
        400,
    );
    rejected(
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        ParseError::InvalidRequestLine,
        400,
    );
    rejected("GET /\r\n\r\n", ParseError::InvalidRequestLine, 400);
    rejected(
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        ParseError::InvalidVersion,
        400,
    );
    rejected(
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        ParseError::InvalidMethod,
        400,
    );
}

// Tornado: HTTPServerRawTest.test_malformed_headers ("no colon in header line").
#[test]
fn test_malformed_headers() {
    rejected(
        "GET / HTTP/1.0\r\nasdf\r\n\r\n",
        ParseError::InvalidHeaderName,
        400,
    );
    rejected(
        "GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
        ParseError::InvalidHeaderName,
        400,
    );
    rejected(
        "GET / HTTP/1.1\r\nHost: a\r\nA@B: c\r\n\r\n",
        ParseError::InvalidHeaderName,
        400,
    );
}

#[test]
fn versions() {
    assert_eq!(
        parse("GET / HTTP/1.0\r\n\r\n").unwrap().version,
        Version::HTTP_10
    );
    rejected(
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        ParseError::UnsupportedVersion,
        505,
    );
    // RFC 9110 §2.5: a later minor version of HTTP/1 is served as HTTP/1.1, head
    // whole or arriving byte by byte.
    let head = "GET /a HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n";
    let h = parse(head).unwrap();
    assert_eq!(h.version, Version::HTTP_11);
    assert_eq!(
        (h.path(), h.header("host"), h.keep_alive),
        ("/a", Some("a"), false)
    );
    assert_eq!(
        parse("\r\nGET / HTTP/1.9\r\nHost: a\r\n\r\n")
            .unwrap()
            .version,
        Version::HTTP_11
    );
    let mut p = HeadParser::new();
    let mut got = None;
    let mut buf = bytes::BytesMut::new();
    for b in head.bytes() {
        buf.extend_from_slice(&[b]);
        if let Some(h) = p.parse_bytes(&mut buf, &Limits::default()).unwrap() {
            got = Some(h);
            break;
        }
    }
    assert_eq!(got.unwrap().version, Version::HTTP_11);
    // Still a whole HTTP/1.1 request: Host is required.
    rejected("GET / HTTP/1.2\r\n\r\n", ParseError::MissingHost, 400);
    rejected(
        "GET / HTTP/0.9\r\n\r\n",
        ParseError::UnsupportedVersion,
        505,
    );
    rejected(
        "GET / HTTP/1.10\r\n\r\n",
        ParseError::InvalidRequestLine,
        400,
    );
}

#[test]
fn whitespace_before_colon() {
    rejected(
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        ParseError::WhitespaceBeforeColon,
        400,
    );
    rejected(
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 0\r\n\r\n",
        ParseError::WhitespaceBeforeColon,
        400,
    );
}

// Tornado: HTTPHeadersTest.test_malformed_continuation; here folding is refused outright.
#[test]
fn obsolete_line_folding() {
    rejected(
        "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
        ParseError::ObsoleteLineFolding,
        400,
    );
    rejected(
        "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n",
        ParseError::ObsoleteLineFolding,
        400,
    );
    rejected(
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        ParseError::ObsoleteLineFolding,
        400,
    );
}

#[test]
fn invalid_bytes_in_values() {
    for bad in ["a\0b", "a\x0bb", "a\x7fb", "a\rb", "a\x01b", "\x0bchunked"] {
        let raw = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {bad}\r\n\r\n");
        rejected(&raw, ParseError::InvalidHeaderValue, 400);
    }
    // obs-text is allowed in values (RFC 9110 §5.5).
    let h = parse_request_head(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n",
        &Limits::default(),
    )
    .unwrap()
    .unwrap()
    .0;
    assert_eq!(h.headers()["x"].as_bytes(), b"caf\xe9");
    // Optional whitespace around a value is not part of it.
    let h = parse("GET / HTTP/1.1\r\nHost: a\r\nX: \t v \t\r\n\r\n").unwrap();
    assert_eq!(h.headers()["x"], "v");
}

#[test]
fn invalid_targets() {
    rejected(
        "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        ParseError::InvalidVersion,
        400,
    );
    let err = parse_request_head(b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", &Limits::default())
        .unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(
        parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .uri(),
        "*"
    );
    let h = parse("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n").unwrap();
    assert_eq!(h.uri().host(), Some("example.com"));
    assert_eq!(h.path(), "/x");
    // Tornado: HTTPServerTest.test_double_slash (not a protocol-relative URL).
    assert_eq!(
        parse("GET //doubleslash HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .path(),
        "//doubleslash"
    );
}

#[test]
fn host_rules() {
    rejected("GET / HTTP/1.1\r\n\r\n", ParseError::MissingHost, 400);
    rejected(
        "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        ParseError::DuplicateHost,
        400,
    );
    rejected(
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        ParseError::InvalidHost,
        400,
    );
    rejected(
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        ParseError::InvalidHost,
        400,
    );
    rejected(
        "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n",
        ParseError::InvalidHost,
        400,
    );
    rejected(
        "GET / HTTP/1.0\r\nHost: a@b\r\n\r\n",
        ParseError::InvalidHost,
        400,
    );
    // Tornado: HTTPServerRawTest.test_invalid_host_header_with_whitespace.
    rejected(
        "GET / HTTP/1.1\r\nHost: foo bar\r\n\r\n",
        ParseError::InvalidHost,
        400,
    );
    for ok in [
        "",
        "example.com",
        "example.com:8080",
        "[::1]:80",
        "127.0.0.1",
    ] {
        parse(&format!("GET / HTTP/1.1\r\nHost: {ok}\r\n\r\n")).unwrap();
    }
    // HTTP/1.0 may omit Host.
    parse("GET / HTTP/1.0\r\n\r\n").unwrap();
}

// Tornado: HTTPServerRawTest.test_invalid_content_length (alphabetic, leading plus,
// internal underscore) and the other ways a length can lie.
#[test]
fn test_invalid_content_length() {
    for bad in [
        "foo",
        "+10",
        "1_0",
        "-1",
        "0x10",
        "1.0",
        "1e3",
        " ",
        "",
        "1 0",
        "18446744073709551616",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {bad}\r\n\r\n");
        rejected(&raw, ParseError::InvalidContentLength, 400);
    }
    rejected(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n",
        ParseError::InvalidContentLength,
        400,
    );
    rejected(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
        ParseError::ConflictingContentLength,
        400,
    );
    rejected(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        ParseError::ConflictingContentLength,
        400,
    );
    // Equal duplicates are accepted, as Tornado (RFC 9112 §6.3 allows it).
    for ok in [
        "Content-Length: 5, 5",
        "Content-Length: 5\r\nContent-Length: 5",
        "Content-Length: 5,5 ,5",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\n{ok}\r\n\r\n");
        assert_eq!(parse(&raw).unwrap().body, BodyKind::Length(5), "{ok}");
    }
    // Leading zeros are digits.
    assert_eq!(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n")
            .unwrap()
            .body,
        BodyKind::Length(7)
    );
    assert_eq!(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n")
            .unwrap()
            .body,
        BodyKind::Length(u64::MAX)
    );
}

// Tornado: test_chunked_request_uppercase (the coding name is case-insensitive).
#[test]
fn transfer_encoding_rules() {
    for ok in ["chunked", "Chunked", "CHUNKED"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {ok}\r\n\r\n");
        assert_eq!(parse(&raw).unwrap().body, BodyKind::Chunked);
    }
    let te = |v: &str| format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {v}\r\n\r\n");
    rejected(&te("gzip"), ParseError::TransferEncodingNotChunked, 400);
    rejected(&te("identity"), ParseError::TransferEncodingNotChunked, 400);
    rejected(
        &te("chunked, gzip"),
        ParseError::TransferEncodingNotChunked,
        400,
    );
    rejected(
        &te("chunked, chunked"),
        ParseError::TransferEncodingNotChunked,
        400,
    );
    rejected(&te("chunked,"), ParseError::TransferEncodingNotChunked, 400);
    rejected(&te(",chunked"), ParseError::TransferEncodingNotChunked, 400);
    rejected(&te("chunkedx"), ParseError::TransferEncodingNotChunked, 400);
    rejected(
        &te("\"chunked\""),
        ParseError::TransferEncodingNotChunked,
        400,
    );
    rejected(&te(""), ParseError::TransferEncodingNotChunked, 400);
    rejected(
        &te("gzip, chunked"),
        ParseError::UnsupportedTransferEncoding,
        501,
    );
    rejected(
        &te("deflate,chunked"),
        ParseError::UnsupportedTransferEncoding,
        501,
    );
    rejected(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        ParseError::TransferEncodingNotChunked,
        400,
    );
    rejected(
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ParseError::TransferEncodingInHttp10,
        400,
    );
}

/// The request smuggling shapes (CL.TE, TE.CL, TE.TE and the obfuscations that
/// front-ends and back-ends have disagreed on): each is refused outright.
#[test]
fn smuggling_shapes_are_refused() {
    let cases: &[(&str, u16)] = &[
        // CL.TE and TE.CL: both headers, either order.
        ("Content-Length: 6\r\nTransfer-Encoding: chunked", 400),
        ("Transfer-Encoding: chunked\r\nContent-Length: 6", 400),
        ("Content-Length: 0\r\nTransfer-Encoding: chunked", 400),
        // TE.TE: obfuscated or doubled Transfer-Encoding.
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: x", 400),
        ("Transfer-Encoding: x\r\nTransfer-Encoding: chunked", 501),
        ("Transfer-Encoding: chunked, chunked", 400),
        (
            "Transfer-Encoding:\tchunked\r\nTransfer-Encoding: identity",
            400,
        ),
        ("Transfer-Encoding : chunked", 400),
        ("Transfer-Encoding: xchunked", 400),
        ("Transfer-Encoding: chunked\x0b", 400),
        ("Transfer-Encoding: \x0bchunked", 400),
        ("Transfer-Encoding: \x0cchunked", 400),
        ("Transfer-Encoding:\r\n chunked", 400),
        ("Transfer_Encoding: chunked\r\nContent-Length: 3", 400),
        (
            "X: a\r\nTransfer-Encoding: chunked\r\n\tContent-Length: 3",
            400,
        ),
        // Lengths that a lax int() would take.
        ("Content-Length: +5", 400),
        ("Content-Length: 1_0", 400),
        ("Content-Length: 0x5", 400),
        ("Content-Length: 5\x00", 400),
        ("Content-Length: 5 5", 400),
        ("Content-Length: 5\r\nContent-Length: 50", 400),
        ("Content-Length : 5", 400),
        ("Content-Length:\r\n 5", 400),
    ];
    for (headers, status) in cases {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\n{headers}\r\n\r\n");
        match parse(&raw) {
            Ok(h) if h.headers().contains_key("transfer_encoding") => {
                // An unknown header name is just a header; only its Content-Length counts.
                assert_eq!(h.body, BodyKind::Length(3), "{headers:?}");
            }
            Ok(h) => panic!("accepted {headers:?} as {:?}", h.body),
            Err(e) => assert_eq!(e.status().as_u16(), *status, "{headers:?}: {e}"),
        }
    }
}

#[test]
fn keep_alive_rules() {
    let ka = |raw: &str| parse(raw).unwrap().keep_alive;
    assert!(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!ka(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n"
    ));
    assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
    assert!(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert!(ka("HEAD / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(ka(
        "POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    ));
    // An HTTP/1.0 POST without a length cannot keep the connection (Tornado's rule).
    assert!(!ka("POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
}

// Tornado: HTTPServerRawTest.test_100_continue; other expectations get 417.
#[test]
fn expect_rules() {
    let h =
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            .unwrap();
    assert!(h.expect_continue);
    assert!(
        parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n")
            .unwrap()
            .expect_continue
    );
    rejected(
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n",
        ParseError::ExpectationFailed,
        417,
    );
    // HTTP/1.0 clients cannot expect: the header is ignored.
    assert!(
        !parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
            .unwrap()
            .expect_continue
    );
    assert!(parse("POST / HTTP/1.0\r\nExpect: whatever\r\n\r\n").is_ok());
}

#[test]
fn size_caps() {
    let limits = Limits::default();
    // 414: a long target, found once the line is complete and while it is still arriving.
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
        "a".repeat(limits.max_uri_len)
    );
    rejected(&long, ParseError::UriTooLong, 414);
    let partial = format!("GET /{}", "a".repeat(limits.max_uri_len + 100));
    assert_eq!(
        parse_request_head(partial.as_bytes(), &limits).unwrap_err(),
        ParseError::UriTooLong
    );
    // Still 414 when the unfinished line arrives past the whole head's limit at once.
    let huge = format!("GET /{}", "a".repeat(limits.max_head_size + 100));
    assert_eq!(
        parse_request_head(huge.as_bytes(), &limits).unwrap_err(),
        ParseError::UriTooLong
    );
    // 431: too many headers.
    let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..limits.max_headers {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    rejected(&many, ParseError::TooManyHeaders, 431);
    // Exactly at the cap is fine.
    let at_cap = Limits {
        max_headers: limits.max_headers + 1,
        ..Limits::default()
    };
    parse_with(&many, &at_cap).unwrap();
    // And a bigger cap than the stack array works too.
    let big = Limits {
        max_headers: 500,
        ..Limits::default()
    };
    parse_with(&many, &big).unwrap();
    // 431: a head larger than max_head_size, complete or not.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(limits.max_head_size)
    );
    rejected(&huge, ParseError::HeadTooLarge, 431);
    let partial = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}",
        "v".repeat(limits.max_head_size)
    );
    assert_eq!(
        parse_request_head(partial.as_bytes(), &limits).unwrap_err(),
        ParseError::HeadTooLarge
    );
    // Endless empty lines are refused long before the head limit.
    let blank = "\r\n".repeat(limits.max_head_size);
    assert_eq!(
        parse_request_head(blank.as_bytes(), &limits).unwrap_err(),
        ParseError::TooManyEmptyLines
    );
}

// RFC 9112 §2.2: at least one empty line before a request line is ignored; a bounded
// number, so that trickled newlines cannot hold a connection.
#[test]
fn leading_empty_lines_are_bounded() {
    let ok = format!(
        "{}\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n".repeat(squall_httputil::MAX_EMPTY_LINES - 2)
    );
    assert_eq!(parse(&ok).unwrap().method, Method::GET);
    let over = format!("\r\n{ok}");
    rejected(&over, ParseError::TooManyEmptyLines, 400);
    // Refused as the extra line arrives, before any request line.
    let blank = "\n".repeat(squall_httputil::MAX_EMPTY_LINES);
    assert!(parse_request_head(blank.as_bytes(), &Limits::default())
        .unwrap()
        .is_none());
    assert_eq!(
        parse_request_head(format!("{blank}\n").as_bytes(), &Limits::default()).unwrap_err(),
        ParseError::TooManyEmptyLines
    );
}

/// Feed `raw` one byte at a time: every prefix before `bad_at` is an incomplete head,
/// and the prefix that ends with `raw[bad_at]` is refused with `err`.
fn refused_at(raw: &[u8], bad_at: usize, err: ParseError) {
    let limits = Limits::default();
    let mut p = HeadParser::new();
    for n in 1..=bad_at {
        assert!(
            matches!(p.parse(&raw[..n], &limits), Ok(None)),
            "{raw:?} cut at {n}"
        );
    }
    assert_eq!(
        p.parse(&raw[..=bad_at], &limits).map(|_| ()),
        Err(err),
        "{raw:?}"
    );
    // The one-shot parser agrees.
    assert_eq!(
        parse_request_head(&raw[..=bad_at], &limits).map(|_| ()),
        Err(err),
        "{raw:?}"
    );
}

// Bytes that cannot begin a request are refused at the first impossible one, without
// waiting for the end of a head that may never come.
#[test]
fn request_line_is_refused_at_its_first_bad_byte() {
    // A TLS ClientHello: record type 0x16.
    refused_at(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        0,
        ParseError::InvalidMethod,
    );
    refused_at(b"\0\0\0\0", 0, ParseError::InvalidMethod);
    refused_at(b" GET / HTTP/1.1\r\n", 0, ParseError::InvalidMethod);
    refused_at(b"GE(T / HTTP/1.1\r\n", 2, ParseError::InvalidMethod);
    refused_at(b"GET\r\n", 3, ParseError::InvalidRequestLine);
    refused_at(b"GET  / HTTP/1.1\r\n", 4, ParseError::InvalidRequestLine);
    refused_at(b"GET /a\x01b HTTP/1.1\r\n", 6, ParseError::InvalidTarget);
    // Bytes UTF-8 never uses.
    refused_at(b"GET /\xff HTTP/1.1\r\n", 5, ParseError::InvalidTarget);
    refused_at(b"GET /a\xc0\x80 HTTP/1.1\r\n", 6, ParseError::InvalidTarget);
    refused_at(b"GET /a\tb HTTP/1.1\r\n", 6, ParseError::InvalidTarget);
    refused_at(b"GET /a#frag HTTP/1.1\r\n", 6, ParseError::InvalidTarget);
    refused_at(b"GET /\r\n", 5, ParseError::InvalidRequestLine);
    refused_at(b"GET / HTTPS/1.1\r\n", 10, ParseError::InvalidVersion);
    refused_at(b"GET / HTTP/x.1\r\n", 11, ParseError::InvalidVersion);
    refused_at(b"GET / HTTP/1,1\r\n", 12, ParseError::InvalidVersion);
    refused_at(b"GET / HTTP/1.1 \r\n", 14, ParseError::InvalidRequestLine);
    refused_at(b"GET / HTTP/1.1\rX", 15, ParseError::InvalidRequestLine);
    refused_at(
        b"\r\n\r\nGET / HTTP/1.1\r\r",
        19,
        ParseError::InvalidRequestLine,
    );
    // A lone CR is not an empty line, and cannot begin a method.
    refused_at(b"\rGET", 1, ParseError::InvalidMethod);
}

// A target typed with non-ASCII characters comes raw from curl and others (browsers
// escape it): served when it is UTF-8, as hyper, nginx and Tornado serve it. The path
// and query read as sent; `uri()` holds the escaped form a browser would have sent.
#[test]
fn a_utf8_target_is_taken_and_its_uri_escaped() {
    let limits = Limits::default();
    let raw = "GET /caf\u{e9}/\u{1f600}?q=\u{e9}t\u{e9}&a=<b> HTTP/1.1\r\nHost: h\r\n\r\n";
    let (head, used) = parse_request_head(raw.as_bytes(), &limits)
        .unwrap()
        .unwrap();
    assert_eq!(used, raw.len());
    assert_eq!(head.path(), "/caf\u{e9}/\u{1f600}");
    assert_eq!(head.query(), "q=\u{e9}t\u{e9}&a=<b>");
    assert_eq!(head.target(), "/caf\u{e9}/\u{1f600}?q=\u{e9}t\u{e9}&a=<b>");
    assert_eq!(
        head.uri().to_string(),
        "/caf%C3%A9/%F0%9F%98%80?q=%C3%A9t%C3%A9&a=%3Cb%3E"
    );
    // Byte by byte too.
    let mut p = HeadParser::new();
    let mut done = None;
    for n in 1..=raw.len() {
        if let Some((h, used)) = p.parse(&raw.as_bytes()[..n], &limits).unwrap() {
            done = Some((h.path().to_owned(), used, n));
            break;
        }
    }
    assert_eq!(done, Some((head.path().to_owned(), raw.len(), raw.len())));
    // Not UTF-8 (a sequence cut short, a lone continuation byte, an overlong form's
    // lead is refused at once above): 400 once the head is in.
    for bad in [
        &b"/caf\xc3"[..],
        b"/\x80a",
        b"/a?\xe2\x82",
        b"/\xed\xa0\x80",
    ] {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(bad);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            parse_request_head(&raw, &limits).map(|_| ()),
            Err(ParseError::InvalidTarget),
            "{bad:?}"
        );
    }
    // An absolute-form target too, its path read from its `Uri`.
    let raw = "GET http://h/caf\u{e9}?q=\u{e9} HTTP/1.1\r\nHost: h\r\n\r\n";
    let (head, _) = parse_request_head(raw.as_bytes(), &limits)
        .unwrap()
        .unwrap();
    assert_eq!(head.target(), "http://h/caf\u{e9}?q=\u{e9}");
    let raw = b"GET http://h/caf\xc3 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert!(parse_request_head(raw, &limits).is_err());
    // An authority or `*` stays ASCII.
    let raw = "OPTIONS \u{e9} HTTP/1.1\r\nHost: h\r\n\r\n";
    assert!(parse_request_head(raw.as_bytes(), &limits).is_err());
}

#[test]
fn incremental_parser_matches_one_shot() {
    let raw = crlf("\nPOST /p?q=1 HTTP/1.1\nHost: h\nContent-Length: 3\nX-A: 1\nX-A: 2\n\nabc");
    let whole = parse_request_head(raw.as_bytes(), &Limits::default())
        .unwrap()
        .unwrap();
    let mut p = HeadParser::new();
    let mut got = None;
    for n in 0..=raw.len() {
        if let Some(r) = p.parse(&raw.as_bytes()[..n], &Limits::default()).unwrap() {
            got = Some((r, n));
            break;
        }
    }
    let ((head, used), n) = got.expect("parsed");
    assert_eq!(used, whole.1);
    assert_eq!(n, used, "complete as soon as the empty line is in");
    assert_eq!(head.headers(), whole.0.headers());
    assert_eq!(head.uri(), whole.0.uri());
    let values: Vec<_> = head.headers().get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
}

#[test]
fn errors_display_their_cause() {
    assert_eq!(
        ParseError::InvalidContentLength.to_string(),
        "only integer Content-Length is allowed"
    );
    assert_eq!(
        ParseError::ContentLengthAndTransferEncoding.to_string(),
        "message with both Transfer-Encoding and Content-Length"
    );
    assert_eq!(
        ParseError::InvalidHeaderName.to_string(),
        "invalid header name or no colon in header line"
    );
}

// RFC 9112 §3.2: each form of request-target with the methods it belongs to.
#[test]
fn request_target_forms() {
    // Absolute-form: accepted; its authority replaces Host (§3.2.2).
    let h = parse("GET http://example.com:8080/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n").unwrap();
    assert_eq!(h.headers()["host"], "example.com:8080");
    assert_eq!(h.headers().get_all("host").iter().count(), 1);
    assert_eq!(h.path(), "/x");
    assert_eq!(h.query(), "y=1");
    // HTTP/1.0 needs no Host; the target's authority becomes it.
    let h = parse("GET http://example.com/ HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(h.headers()["host"], "example.com");
    // Userinfo, or no host, is refused.
    for bad in [
        "http://user@example.com/",
        "http:///x",
        "http:x",
        "example.com/x",
    ] {
        rejected(
            &format!("GET {bad} HTTP/1.1\r\nHost: a\r\n\r\n"),
            ParseError::InvalidTarget,
            400,
        );
    }
    // Authority-form: only CONNECT, and CONNECT only with it.
    let h = parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").unwrap();
    assert_eq!(h.method, Method::CONNECT);
    assert_eq!(h.uri().authority().unwrap(), "example.com:443");
    for bad in [
        "CONNECT / HTTP/1.1",
        "CONNECT /x HTTP/1.1",
        "CONNECT example.com HTTP/1.1",
        "CONNECT http://example.com:443/ HTTP/1.1",
        "CONNECT u@example.com:443 HTTP/1.1",
        "GET example.com:443 HTTP/1.1",
    ] {
        rejected(
            &format!("{bad}\r\nHost: a\r\n\r\n"),
            ParseError::InvalidTarget,
            400,
        );
    }
    // Asterisk-form: only OPTIONS.
    assert_eq!(
        parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .uri(),
        "*"
    );
    rejected(
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        ParseError::InvalidTarget,
        400,
    );
    rejected(
        "OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n",
        ParseError::InvalidTarget,
        400,
    );
    // A fragment is never sent.
    rejected(
        "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
        ParseError::InvalidTarget,
        400,
    );
}

// Any visible ASCII but `#` in an origin-form target, as Tornado (`curl -g` sends
// `{"a":1}` as it is); the bytes the `http` crate's `Uri` refuses are escaped in `uri()`
// only. With CRLF (the scanner) and with bare LF (the careful path) alike.
#[test]
fn origin_form_takes_any_visible_ascii() {
    for eol in ["\r\n", "\n"] {
        let h = parse(&format!(
            "GET /a<b>`c\"{{}}|^\\?filter={{\"a\":1}}&q=a<b>`? HTTP/1.1{eol}Host: a{eol}{eol}"
        ))
        .unwrap();
        assert_eq!(h.path(), "/a<b>`c\"{}|^\\");
        assert_eq!(h.query(), "filter={\"a\":1}&q=a<b>`?");
        assert_eq!(h.target(), "/a<b>`c\"{}|^\\?filter={\"a\":1}&q=a<b>`?");
        let uri = h.uri();
        assert_eq!(uri.path(), "/a%3Cb%3E%60c%22{}|^\\");
        assert_eq!(uri.query(), Some("filter={%22a%22:1}&q=a%3Cb%3E%60?"));
    }
}

// host() and full_url() follow an absolute-form target's authority.
#[test]
fn absolute_form_host_and_full_url() {
    let head =
        parse("GET http://example.com:8080/a?b=1 HTTP/1.1\r\nHost: elsewhere\r\n\r\n").unwrap();
    let req =
        squall_httputil::HttpServerRequest::new(head, bytes::Bytes::new(), "10.0.0.1", "http");
    assert_eq!(req.host(), "example.com:8080");
    assert_eq!(req.host_name(), "example.com");
    assert_eq!(req.full_url(), "http://example.com:8080/a?b=1");
    let head = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let req =
        squall_httputil::HttpServerRequest::new(head, bytes::Bytes::new(), "10.0.0.1", "http");
    assert_eq!(req.full_url(), "http://h*");
}

/// Heads built from pieces that are each right or wrong in the ways that matter
/// (methods, targets, versions, field names and values, line endings), with one byte
/// sometimes replaced by an arbitrary one.
fn head_strategy() -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec![
        "GET", "POST", "OPTIONS", "CONNECT", "HEAD", "G(T", "", "get",
    ]);
    let target = prop::sample::select(vec![
        "/",
        "/a?b=c",
        "*",
        "http://h.example/x?y",
        "http://u@h/",
        "h.example:443",
        "/a#f",
        "/\x7f",
        "//x",
        "/%41",
        "",
        "/a b",
    ]);
    let version = prop::sample::select(vec![
        "HTTP/1.1",
        "HTTP/1.0",
        "HTTP/2.0",
        "HTTP/1.10",
        "http/1.1",
    ]);
    let eol = prop::sample::select(vec!["\r\n", "\n", "\r"]);
    let name = prop::sample::select(vec![
        "Host",
        "X-A",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Expect",
        "Bad Name",
        "",
        "X:Y",
        " Folded",
    ]);
    let value = prop::collection::vec(
        prop::sample::select(vec![
            b'a', b' ', b'\t', b':', b'\r', 0x80, 0, b'5', b',', b'x',
        ]),
        0..6,
    );
    let field = (name, value, eol.clone());
    (
        0usize..10,
        method,
        target,
        version,
        eol,
        prop::collection::vec(field, 0..6),
        prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(|(blank, m, t, v, e, fields, flip)| {
            let mut out = "\r\n".repeat(blank).into_bytes();
            out.extend_from_slice(format!("{m} {t} {v}{e}").as_bytes());
            for (n, val, e) in fields {
                out.extend_from_slice(n.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(&val);
                out.extend_from_slice(e.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            if let Some((at, byte)) = flip {
                let i = at.index(out.len());
                out[i] = byte;
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]
    /// Differential: whatever squall accepts, the independent reference accepts with the
    /// same method, target, version and fields; the byte-by-byte parser agrees with the
    /// one-shot parser.
    #[test]
    fn squall_agrees_with_the_reference(data in head_strategy()) {
        let limits = Limits::default();
        let whole = parse_request_head(&data, &limits);
        if let Err(why) = reference_head::compare(&data, &whole) {
            prop_assert!(false, "{}: {:?}", why, String::from_utf8_lossy(&data));
        }
        let mut p = HeadParser::new();
        let mut verdict = Ok(None);
        for n in 1..=data.len() {
            verdict = p.parse(&data[..n], &limits).map(|r| r.map(|(_, used)| used));
            if !matches!(verdict, Ok(None)) {
                break;
            }
        }
        let whole = whole.map(|r| r.map(|(_, used)| used));
        prop_assert_eq!(whole, verdict, "{:?}", String::from_utf8_lossy(&data));
    }
}

mod common_scanner {
    use proptest::prelude::*;
    use squall_httputil::fuzzing as fuzz_checks;

    fn piece(
        alphabet: &'static [u8],
        len: std::ops::Range<usize>,
    ) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(alphabet), len)
    }

    /// Mostly nothing; now and then one of `alphabet`'s bytes (a flaw in a head).
    fn flaw(alphabet: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![6 => Just(Vec::new()), 1 => piece(alphabet, 1..2)]
    }

    proptest! {
        /// Heads of the common shape, most of them well-formed and some with a flaw
        /// (another method, version or line end, a byte out of place): whatever the
        /// scanner accepts, httparse's pass splits the same way, and the whole parser
        /// agrees with the reference grammar and with itself byte by byte.
        #[test]
        fn agrees_with_httparse_and_the_reference(
            method in prop_oneof![
                6 => proptest::sample::select(&["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"][..]),
                1 => proptest::sample::select(&["get", "CONNECT", "BREW", "GETX"][..]),
            ],
            target in piece(b"/az09?=&%", 0..12),
            odd_target in flaw(b"#* \"<>`{}"),
            version in prop_oneof![
                6 => Just("HTTP/1.1"),
                2 => Just("HTTP/1.0"),
                1 => proptest::sample::select(&["HTTP/1.2", "http/1.1", "HTTP/1.1 "][..]),
            ],
            eol in prop_oneof![6 => Just("\r\n"), 1 => Just("\n"), 1 => Just("\r")],
            fields in proptest::collection::vec(
                (
                    piece(b"Hostabc-!", 1..6),
                    piece(b"xy \t:\x80\xff", 0..8),
                    flaw(b" :\x7f\r\n\0"),
                ),
                0..4,
            ),
            host in prop_oneof![6 => Just(true), 1 => Just(false)],
        ) {
            let mut head = format!("{method} /").into_bytes();
            head.extend_from_slice(&target);
            head.extend_from_slice(&odd_target);
            head.extend_from_slice(format!(" {version}{eol}").as_bytes());
            if host {
                head.extend_from_slice(b"Host: h\r\n");
            }
            for (name, value, odd) in &fields {
                head.extend_from_slice(name);
                head.push(b':');
                head.extend_from_slice(value);
                head.extend_from_slice(odd);
                head.extend_from_slice(eol.as_bytes());
            }
            head.extend_from_slice(eol.as_bytes());
            fuzz_checks::head(&head);
        }
    }
}

#[test]
fn every_method_comes_through_as_sent() {
    // The scanner's methods, the ones only httparse's pass takes, and extension
    // methods (one that fits `Method`'s inline bytes, one that does not), each with
    // an origin-form target (the scanner) and with a bare LF (httparse's pass).
    let long = "X".repeat(40);
    let methods = [
        "GET", "PUT", "POST", "HEAD", "DELETE", "PATCH", "OPTIONS", "TRACE", "PURGE", &long,
    ];
    for m in methods {
        for eol in ["\r\n", "\n"] {
            let raw = format!("{m} /x?y HTTP/1.1{eol}Host: a{eol}{eol}");
            let head = parse(&raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(head.method.as_str(), m, "{raw:?}");
            assert_eq!(head.method, Method::from_bytes(m.as_bytes()).unwrap());
            assert_eq!(head.path(), "/x");
        }
    }
    let head = parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").unwrap();
    assert_eq!(head.method, Method::CONNECT);
    // HTTP/1.0 keep-alive holds for GET and HEAD without a body length, not for POST.
    for (m, kept) in [
        ("GET", true),
        ("HEAD", true),
        ("POST", false),
        ("PURGE", false),
    ] {
        let raw = format!("{m} / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(parse(&raw).unwrap().keep_alive, kept, "{m}");
    }
}

// A head's parts live in a box the thread's pool hands to the next head once the last
// one is dropped: whatever a request left in it (an absolute-form authority, a built
// map or `Uri`, its scheme, parsed body arguments, its finish time) must not show
// through the next head or request that gets the box.
#[test]
fn a_reused_view_box_carries_nothing_over() {
    use squall_httputil::HttpServerRequest;
    for round in 0..3 {
        let head = parse(
            "POST http://a.example/x?q=1 HTTP/1.1\r\nHost: b\r\nX-One: 1\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap();
        let mut req =
            HttpServerRequest::new(head, bytes::Bytes::from_static(b"k=v"), "10.0.0.9", "wss");
        req.parse_body().unwrap();
        assert_eq!(req.body_arguments()["k"], ["v"]);
        assert_eq!(req.arguments()["q"], ["1"]);
        assert_eq!(req.headers()["x-one"], "1");
        assert_eq!(req.host(), "a.example");
        assert_eq!(req.remote_ip(), "10.0.0.9");
        req.finish();
        drop(req);

        let head = parse("GET /y HTTP/1.1\r\nHost: c\r\n\r\n").unwrap();
        assert_eq!(head.header("host"), Some("c"), "round {round}");
        assert_eq!(head.header("x-one"), None);
        assert_eq!(head.path(), "/y");
        assert_eq!(head.uri(), "/y");
        assert_eq!(head.fields().count(), 1);
        let req = HttpServerRequest::from_connection(
            head,
            bytes::Bytes::new(),
            None,
            "http",
            std::time::Instant::now(),
        );
        assert_eq!(req.protocol(), "http");
        assert_eq!(req.host(), "c");
        assert_eq!(req.full_url(), "http://c/y");
        assert!(req.body_arguments().is_empty());
        assert!(req.arguments().is_empty());
        assert!(req.cookies().is_empty());
        assert_eq!(req.remote_ip(), "");
        drop(req);

        // A head built from parts, after parsed ones: its target is its `Uri`'s.
        let built = RequestHead::from_parts(
            Method::GET,
            "/z?w=2".parse().unwrap(),
            Version::HTTP_11,
            http::HeaderMap::new(),
            BodyKind::None,
            true,
        );
        assert_eq!(built.path(), "/z");
        assert_eq!(built.query(), "w=2");
        assert_eq!(built.header("host"), None);
        assert_eq!(built.fields().count(), 0);
    }
}
