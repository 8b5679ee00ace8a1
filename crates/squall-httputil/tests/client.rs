//! The client side: responses parsed in any split equal the response parsed whole, and
//! encoded requests read back through the server's own parser.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use proptest::prelude::*;
use squall_httputil::client::{
    encode_request_head, RequestBodyEncoder, RequestFraming, ResponseEvent, ResponseParser,
};
use squall_httputil::{
    encode_chunk, encode_last_chunk, parse_request_head, BodyDecoder, BodyKind, Decoded, Limits,
    ParseError,
};

/// What one response came to: interim statuses, the final status and headers, the
/// body, the trailers, and how it ended (the bytes left over, or the error).
#[derive(Debug, PartialEq)]
struct Outcome {
    interim: Vec<u16>,
    status: Option<u16>,
    headers: Vec<(String, Bytes)>,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    end: Result<usize, ParseError>,
}

/// Feed `input` to a parser in the pieces `cuts` make (the input buffer grows, as a
/// connection's does), then signal the end of the connection if `eof`.
fn feed(method: &Method, input: &[u8], cuts: &[usize], eof: bool) -> Outcome {
    let mut parser = ResponseParser::new(method, Limits::default());
    let mut out = Outcome {
        interim: Vec::new(),
        status: None,
        headers: Vec::new(),
        body: Vec::new(),
        trailers: None,
        end: Ok(0),
    };
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    let mut buf = BytesMut::new();
    let mut at = 0;
    let record = |out: &mut Outcome, ev: ResponseEvent| -> bool {
        match ev {
            ResponseEvent::Interim(h) => out.interim.push(h.status.as_u16()),
            ResponseEvent::Head(h) => {
                out.status = Some(h.status.as_u16());
                out.headers = h
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), Bytes::copy_from_slice(v.as_bytes())))
                    .collect();
            }
            ResponseEvent::Data(d) => out.body.extend_from_slice(&d),
            ResponseEvent::End => return true,
            other => panic!("unexpected {other:?}"),
        }
        false
    };
    for c in cuts {
        buf.extend_from_slice(&input[at..c]);
        at = c;
        loop {
            match parser.poll(&mut buf) {
                Ok(Some(ev)) => {
                    if record(&mut out, ev) {
                        out.trailers = parser.take_trailers();
                        out.end = Ok(buf.len() + input.len() - at);
                        return out;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    out.end = Err(e);
                    return out;
                }
            }
        }
    }
    if eof {
        match parser.eof() {
            Ok(ev) => {
                assert!(record(&mut out, ev), "eof ends the response or fails");
                out.end = Ok(0);
            }
            Err(e) => out.end = Err(e),
        }
    } else {
        out.end = Err(ParseError::IncompleteMessage);
    }
    out
}

/// How a generated response frames its body.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Length,
    Chunked,
    Close,
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::Length),
        Just(Framing::Chunked),
        Just(Framing::Close)
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![0x21u8..0x7f, Just(b' '), Just(b'\t'), 0x80u8..=0xff],
        0..20,
    )
    .prop_map(|mut v| {
        // Leading and trailing whitespace is not part of a field value.
        while matches!(v.first(), Some(b' ' | b'\t')) {
            v.remove(0);
        }
        while matches!(v.last(), Some(b' ' | b'\t')) {
            v.pop();
        }
        v
    })
}

proptest! {
    /// A well-formed response, written out and read back in any split, gives back what
    /// was written: interim responses, status, headers, body, trailers, and leaves the
    /// bytes after it alone.
    #[test]
    fn response_round_trip_in_any_split(
        interim in proptest::collection::vec(prop_oneof![Just(100u16), Just(102), Just(103)], 0..3),
        status in prop_oneof![Just(200u16), Just(201), Just(404), Just(500), Just(299)],
        headers in proptest::collection::vec(("x-[a-z]{1,8}", header_value()), 0..6),
        framing in framing(),
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..5),
        http10 in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        tail in proptest::collection::vec(any::<u8>(), 0..10),
    ) {
        let framing = if http10 && matches!(framing, Framing::Chunked) { Framing::Length } else { framing };
        let mut wire = Vec::new();
        for code in &interim {
            wire.extend_from_slice(format!("HTTP/1.1 {code} Interim\r\n\r\n").as_bytes());
        }
        let version = if http10 { "1.0" } else { "1.1" };
        wire.extend_from_slice(format!("HTTP/{version} {status} Some Reason\r\n").as_bytes());
        for (n, v) in &headers {
            wire.extend_from_slice(n.as_bytes());
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(v);
            wire.extend_from_slice(b"\r\n");
        }
        let body = chunks.concat();
        let mut framed = BytesMut::new();
        match framing {
            Framing::Length => {
                wire.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                framed.extend_from_slice(&body);
            }
            Framing::Chunked => {
                wire.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for c in &chunks {
                    encode_chunk(c, &mut framed);
                }
                framed.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
            }
            Framing::Close => {
                wire.extend_from_slice(b"\r\n");
                framed.extend_from_slice(&body);
            }
        }
        wire.extend_from_slice(&framed);
        let close = matches!(framing, Framing::Close);
        if !close {
            wire.extend_from_slice(&tail);
        }
        let got = feed(&Method::GET, &wire, &cuts, close);
        prop_assert_eq!(&got.interim, &interim);
        prop_assert_eq!(got.status, Some(status));
        prop_assert_eq!(&got.body, &body);
        for (n, v) in &headers {
            prop_assert!(got.headers.iter().any(|(gn, gv)| gn == n && gv[..] == v[..]), "{} lost", n);
        }
        if matches!(framing, Framing::Chunked) {
            let t = got.trailers.clone().expect("trailers");
            prop_assert_eq!(&t["x-trailer"], "t");
        }
        let left = if close { 0 } else { tail.len() };
        prop_assert_eq!(got.end, Ok(left));
        // The same bytes in one piece give the same outcome.
        prop_assert_eq!(feed(&Method::GET, &wire, &[], close), got);
    }

    /// Arbitrary bytes never panic, and any split gives the same outcome as the whole.
    #[test]
    fn arbitrary_input_split_invariant(
        input in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        eof in any::<bool>(),
        head in any::<bool>(),
    ) {
        let method = if head { Method::HEAD } else { Method::GET };
        prop_assert_eq!(feed(&method, &input, &cuts, eof), feed(&method, &input, &[], eof));
    }

    /// Response-shaped input with mutations: any split gives the same outcome.
    #[test]
    fn mutated_responses_split_invariant(
        pos in any::<usize>(),
        byte in any::<u8>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: b\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nT: 1\r\n\r\n".to_vec();
        let i = pos % wire.len();
        wire[i] = byte;
        prop_assert_eq!(feed(&Method::GET, &wire, &cuts, true), feed(&Method::GET, &wire, &[], true));
    }

    /// An encoded request reads back through the server's parser as what was encoded.
    #[test]
    fn request_round_trip(
        method in prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::PUT), Just(Method::DELETE)],
        path in "/[a-z0-9/]{0,20}(\\?[a-z=&]{0,10})?",
        headers in proptest::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,10}"), 0..5),
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..4),
        chunked in any::<bool>(),
    ) {
        let mut map = HeaderMap::new();
        map.insert("host", HeaderValue::from_static("example.com"));
        for (n, v) in &headers {
            map.append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v.trim()).unwrap());
        }
        let body = chunks.concat();
        let framing = if chunked { RequestFraming::Chunked } else { RequestFraming::Length(body.len() as u64) };
        let target: Uri = path.parse().unwrap();
        let mut wire = BytesMut::new();
        encode_request_head(&mut wire, &method, &target, &map, framing).unwrap();
        let mut enc = RequestBodyEncoder::new(framing);
        for c in &chunks {
            enc.encode(c, &mut wire).unwrap();
        }
        enc.finish(&mut wire).unwrap();
        let (head, used) = parse_request_head(&wire, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(&head.method, &method);
        prop_assert_eq!(head.uri().to_string(), path);
        for (n, v) in &headers {
            prop_assert!(head.headers().get_all(n.as_str()).iter().any(|x| x == v.trim()));
        }
        let kind = if chunked { BodyKind::Chunked } else { BodyKind::Length(body.len() as u64) };
        prop_assert_eq!(head.body, kind);
        let mut rest = BytesMut::from(&wire[used..]);
        let mut dec = BodyDecoder::new(head.body, &Limits::default());
        let mut got = Vec::new();
        loop {
            match dec.decode(&mut rest).unwrap() {
                Some(Decoded::Data(d)) => got.extend_from_slice(&d),
                Some(Decoded::End) => break,
                _ => panic!("body cut short"),
            }
        }
        prop_assert_eq!(got, body);
        prop_assert!(rest.is_empty());
    }
}

/// Tornado's `test_chunked_with_content_length`: a response with both framings is an
/// error, not a guess.
#[test]
fn chunked_with_content_length() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    assert_eq!(
        feed(&Method::GET, wire, &[], false).end,
        Err(ParseError::ContentLengthAndTransferEncoding)
    );
}

/// RFC 9110 §2.5: a status line of `HTTP/1.2` to `HTTP/1.9` is read as HTTP/1.1 (kept
/// alive, its fields and reason as sent), in one piece or split anywhere, interim
/// heads included; `HTTP/2.0`, `HTTP/0.9` and `HTTP/1.10` stay errors. (httparse knows
/// 1.0 and 1.1 only, and every later minor version was `UnsupportedVersion`.)
#[test]
fn later_minor_versions_are_http11() {
    let wire =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.2 200 Fine\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok";
    for cut in 0..=wire.len() {
        let out = feed(&Method::GET, wire, &[cut], false);
        assert_eq!(out.interim, [100], "cut at {cut}");
        assert_eq!(out.status, Some(200), "cut at {cut}");
        assert_eq!(out.body, b"ok", "cut at {cut}");
        assert_eq!(out.end, Ok(0), "cut at {cut}");
    }
    for minor in b'2'..=b'9' {
        let wire = [
            &b"HTTP/1."[..],
            &[minor],
            b" 404 Not Here\r\nContent-Length: 0\r\n\r\n",
        ]
        .concat();
        let mut p = ResponseParser::new(&Method::GET, Limits::default());
        let Ok(Some(ResponseEvent::Head(h))) = p.poll(&mut BytesMut::from(&wire[..])) else {
            panic!("HTTP/1.{}", char::from(minor));
        };
        assert_eq!(
            (h.version, h.status, h.reason.as_str(), h.keep_alive),
            (
                http::Version::HTTP_11,
                StatusCode::NOT_FOUND,
                "Not Here",
                true
            )
        );
    }
    let interim = b"HTTP/1.5 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    assert_eq!(feed(&Method::GET, interim, &[], false).interim, [103]);
    for wire in [
        &b"HTTP/2.0 200 OK\r\n\r\n"[..],
        b"HTTP/0.9 200 OK\r\n\r\n",
        b"HTTP/3.1 200 OK\r\n\r\n",
    ] {
        assert_eq!(
            feed(&Method::GET, wire, &[], false).end,
            Err(ParseError::UnsupportedVersion),
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
    assert_eq!(
        feed(&Method::GET, b"HTTP/1.10 200 OK\r\n\r\n", &[], false).end,
        Err(ParseError::InvalidVersion)
    );
}

/// The reason phrase is ISO-8859-1, as Tornado decodes the head: one char per byte,
/// whether or not the bytes happen to be UTF-8. (It was decoded as UTF-8, lossily.)
#[test]
fn reason_is_latin1() {
    for (wire, reason) in [
        (&b"HTTP/1.1 200 \xc4rger\r\n\r\n"[..], "\u{c4}rger"),
        (b"HTTP/1.1 200 caf\xc3\xa9\r\n\r\n", "caf\u{c3}\u{a9}"),
        (b"HTTP/1.1 200 OK\r\n\r\n", "OK"),
    ] {
        let mut p = ResponseParser::new(&Method::HEAD, Limits::default());
        let Ok(Some(ResponseEvent::Head(h))) = p.poll(&mut BytesMut::from(wire)) else {
            panic!("{wire:?}");
        };
        assert_eq!(h.reason, reason);
    }
}

/// A body over the cap is refused as soon as its length is known, and a close-delimited
/// one as soon as it passes the cap.
#[test]
fn body_caps() {
    let limits = Limits {
        max_body_size: 4,
        ..Limits::default()
    };
    let mut p = ResponseParser::new(&Method::GET, limits.clone());
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"[..]);
    assert_eq!(p.poll(&mut buf).unwrap_err(), ParseError::BodyTooLarge);
    let mut p = ResponseParser::new(&Method::GET, limits);
    let mut buf = BytesMut::from(&b"HTTP/1.0 200 OK\r\n\r\nabc"[..]);
    assert!(matches!(p.poll(&mut buf), Ok(Some(ResponseEvent::Head(_)))));
    assert!(matches!(p.poll(&mut buf), Ok(Some(ResponseEvent::Data(_)))));
    buf.extend_from_slice(b"de");
    assert_eq!(p.poll(&mut buf).unwrap_err(), ParseError::BodyTooLarge);
}

/// The parser serves the next response on the same connection after `reset`.
#[test]
fn reset_for_keep_alive() {
    let mut p = ResponseParser::new(&Method::HEAD, Limits::default());
    let mut buf =
        BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc"[..]);
    assert!(matches!(p.poll(&mut buf), Ok(Some(ResponseEvent::Head(_)))));
    assert!(p.is_done() && p.keep_alive());
    p.reset(&Method::GET);
    match p.poll(&mut buf) {
        Ok(Some(ResponseEvent::Head(h))) => assert_eq!(h.status, StatusCode::NOT_FOUND),
        other => panic!("{other:?}"),
    }
    assert!(matches!(p.poll(&mut buf), Ok(Some(ResponseEvent::Data(_)))));
    assert!(matches!(p.poll(&mut buf), Ok(Some(ResponseEvent::End))));
    assert!(buf.is_empty());
}

#[test]
fn last_chunk_helper_matches_parser() {
    let mut wire = BytesMut::from(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..]);
    encode_chunk(b"abc", &mut wire);
    encode_last_chunk(&mut wire);
    let got = feed(&Method::GET, &wire, &[7, 30, 50], false);
    assert_eq!(got.body, b"abc");
    assert_eq!(got.end, Ok(0));
}
