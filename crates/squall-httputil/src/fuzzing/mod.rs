//! The checks behind the fuzz targets of `fuzz/`, as plain functions: each target is
//! one line that calls one of these, and `tests/fuzz_regressions.rs` runs the same
//! checks on stable over every seed and every kept crash input, so CI exercises them on
//! every run. A check panics when an invariant breaks.

use crate::h1::{Event, ServerConn};
use crate::{
    decode_chunked, parse_body_arguments, parse_cookie, parse_qs_bytes, parse_request_head,
    write_error_response, Arguments, ChunkedDecoder, Decoded, Files, HeadParser, Limits,
    MultipartConfig, ParseError,
};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Version};

pub mod reference_head;

/// The input layout of the split targets: the first byte, modulo 8, is the number of
/// cut bytes that follow it; the rest is the input proper. Each cut byte `c` feeds the
/// next `c + 1` bytes, cycling through the cut bytes; with none, the input is fed in
/// pieces of 256. The count byte is never part of the input, so a seed that is a count
/// byte of 0 followed by a request is that request, whole.
pub fn split_layout(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return (&[255], &[]);
    };
    let (cuts, input) = rest.split_at(usize::from(count % 8).min(rest.len()));
    (if cuts.is_empty() { &[255] } else { cuts }, input)
}

/// The `head` target: squall against the independent reference, and the
/// byte-by-byte parser against the one-shot one.
pub fn head(data: &[u8]) {
    let limits = Limits::default();
    let whole = parse_request_head(data, &limits);
    if let Err(why) = reference_head::compare(data, &whole) {
        panic!("{why}");
    }
    // The common-head scanner splits what it accepts as httparse does.
    if let Err(why) = crate::head::scan_agrees(data, &limits) {
        panic!("{why}");
    }
    // Byte by byte, the incremental parser reaches the same verdict, and never refuses
    // a prefix of what it accepts whole (it refuses at the first impossible byte).
    let mut p = HeadParser::new();
    let mut verdict = Ok(None);
    for n in 1..=data.len().min(512) {
        verdict = p
            .parse(&data[..n], &limits)
            .map(|r| r.map(|(_, used)| used));
        if !matches!(verdict, Ok(None)) {
            break;
        }
    }
    if data.len() <= 512 {
        match (&whole, &verdict) {
            (Ok(Some((_, a))), Ok(Some(b))) => assert_eq!(a, b),
            (Ok(None), Ok(None)) => {}
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!(
                "whole {:?} but byte by byte {b:?}",
                a.as_ref().map(|o| o.as_ref().map(|x| x.1))
            ),
        }
    }
}

fn decode_split(input: &[u8], cuts: &[u8], limits: &Limits) -> Result<Vec<u8>, ParseError> {
    let mut dec = ChunkedDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut rest = input;
    let mut cuts = cuts.iter().cycle();
    loop {
        match dec.decode(&mut buf)? {
            Some(Decoded::Data(d)) => body.extend_from_slice(&d),
            Some(Decoded::End) => return Ok(body),
            None => {
                if rest.is_empty() {
                    return Err(ParseError::IncompleteMessage);
                }
                let n = (usize::from(*cuts.next().unwrap_or(&255)) + 1).min(rest.len());
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
        }
    }
}

/// The `chunked` target: any split gives the same body and verdict as the whole input.
pub fn chunked(data: &[u8]) {
    let (cuts, input) = split_layout(data);
    let limits = Limits::default();
    let whole = decode_chunked(input, &limits);
    let split = decode_split(input, cuts, &limits);
    match (whole, split) {
        (Ok((a, _)), Ok(b)) => assert_eq!(&a[..], &b[..]),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("whole {a:?} but split {b:?}"),
    }
}

/// What the target remembers of each request whose head was parsed.
struct Seen {
    head: bool,
    http11: bool,
    keep_alive: bool,
}

/// The `h1_conn` target: the whole server connection, answered as a server would.
pub fn h1_conn(data: &[u8]) {
    let (cuts, input) = split_layout(data);
    let limits = Limits {
        max_head_size: 4096,
        max_body_size: 1 << 20,
        max_pipelined: 4,
        ..Limits::default()
    };
    let bound = limits.max_head_size + 256;
    let mut conn = ServerConn::new(limits);
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let mut rest = input;
    let mut cut = cuts.iter().cycle();
    let mut seen: Vec<Seen> = Vec::new();
    let (mut answered, mut rejected, mut ended_by_request) = (0usize, false, false);

    'feed: loop {
        while let Some(event) = conn.poll(&mut buf) {
            match event {
                Event::Head(head) => seen.push(Seen {
                    head: head.method == Method::HEAD,
                    http11: head.version == Version::HTTP_11,
                    keep_alive: head.keep_alive,
                }),
                Event::Data(d) => assert!(!d.is_empty()),
                Event::End => {
                    let done = conn
                        .respond(StatusCode::OK, &HeaderMap::new(), b"ok", &mut out)
                        .expect("a complete request can be answered");
                    let request = &seen[answered];
                    answered += 1;
                    assert_eq!(
                        done.keep_alive, request.keep_alive,
                        "the response's keep-alive differs from the request's"
                    );
                    if !done.keep_alive {
                        ended_by_request = true;
                        break 'feed;
                    }
                }
                Event::Error(e) => {
                    assert!(
                        e.status().is_client_error() || e.status().is_server_error(),
                        "{e}"
                    );
                    write_error_response(e, &mut out);
                    rejected = true;
                    assert!(
                        conn.poll(&mut buf).is_none(),
                        "parsing goes on after an error"
                    );
                    break 'feed;
                }
            }
        }
        assert!(buf.len() <= bound, "unparsed input grew to {}", buf.len());
        if rest.is_empty() {
            let _ = conn.read_eof(&buf);
            break;
        }
        let n = (usize::from(*cut.next().unwrap()) + 1).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }

    if ended_by_request || rejected {
        // Nothing after the end is parsed, whatever else arrives.
        buf.extend_from_slice(rest);
        buf.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            conn.poll(&mut buf).is_none(),
            "a request parsed after the connection ended"
        );
        assert!(conn.should_close(), "the connection must close");
    }

    // Every response in the output is complete and well-formed.
    let mut wire = &out[..];
    let mut responses = 0;
    while !wire.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut fields);
        let head_len = match resp.parse(wire).expect("malformed response") {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("truncated response head"),
        };
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| std::str::from_utf8(h.value).unwrap().to_owned())
        };
        let request = seen.get(responses).filter(|_| responses < answered);
        let len: usize = header("content-length")
            .expect("every response here has a Content-Length")
            .parse()
            .unwrap();
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        match request {
            Some(r) => {
                // HTTP/1.1 says close out loud; HTTP/1.0 closes unless it says keep-alive.
                if r.http11 {
                    assert_eq!(
                        close, !r.keep_alive,
                        "Connection: close must match keep-alive"
                    );
                }
                let body = if r.head { 0 } else { len };
                assert!(wire.len() >= head_len + body, "truncated response body");
                wire = &wire[head_len + body..];
            }
            None => {
                // The error response to a rejected request.
                assert!(close, "an error response must announce the close");
                assert!(wire.len() >= head_len + len, "truncated error response");
                wire = &wire[head_len + len..];
            }
        }
        responses += 1;
    }
    assert_eq!(responses, answered + usize::from(rejected));
}

const BOUNDARY: &str = "squallB";

/// Fields and files parsed, together.
fn count(args: &Arguments, files: &Files) -> usize {
    args.values().map(Vec::len).sum::<usize>() + files.values().map(Vec::len).sum::<usize>()
}

/// The `body_args` target: form bodies, query strings and cookies, with their caps.
pub fn body_args(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let config = MultipartConfig {
        max_parts: 8,
        max_fields: 8,
        ..MultipartConfig::default()
    };
    let (mut args, mut files) = (Arguments::default(), Files::default());
    match mode % 5 {
        0 => {
            // The boundary is the input up to the first newline, the body the rest.
            let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let boundary = String::from_utf8_lossy(&rest[..cut]).into_owned();
            let body = Bytes::copy_from_slice(rest.get(cut + 1..).unwrap_or_default());
            let content_type = format!("multipart/form-data; boundary={boundary}");
            let off = MultipartConfig {
                enabled: false,
                ..config.clone()
            };
            assert_eq!(
                parse_body_arguments(&content_type, &body, &mut args, &mut files, None, &off),
                Err(ParseError::MultipartDisabled)
            );
            if parse_body_arguments(&content_type, &body, &mut args, &mut files, None, &config)
                .is_ok()
            {
                let parts = count(&args, &files);
                assert!(parts <= config.max_parts, "{parts} parts parsed");
            }
        }
        1 => {
            // One part per 0xff-separated piece; a piece starting with 'F' is a file.
            let pieces: Vec<&[u8]> = rest.split(|&b| b == 0xff).collect();
            let mut body = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"f{i}\"").as_bytes(),
                );
                if piece.first() == Some(&b'F') {
                    body.extend_from_slice(b"; filename=\"x.bin\"");
                }
                body.extend_from_slice(b"\r\n\r\n");
                body.extend_from_slice(piece);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
            let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
            let body = Bytes::from(body);
            let r =
                parse_body_arguments(&content_type, &body, &mut args, &mut files, None, &config);
            if let Ok(()) = r {
                assert!(
                    count(&args, &files) <= config.max_parts,
                    "the part cap did not hold"
                );
            }
            // Pieces that cannot be mistaken for framing give exactly their parts.
            let plain = pieces.iter().all(|p| {
                !p.windows(BOUNDARY.len() + 2)
                    .any(|w| w == format!("--{BOUNDARY}").as_bytes())
            });
            if plain {
                if pieces.len() > config.max_parts {
                    assert_eq!(r, Err(ParseError::TooManyParts));
                } else {
                    assert_eq!(r, Ok(()), "{} well-formed parts refused", pieces.len());
                    assert_eq!(count(&args, &files), pieces.len());
                    for (i, piece) in pieces.iter().enumerate() {
                        let name = format!("f{i}");
                        let got = match piece.first() {
                            Some(b'F') => &files[&name][0].body,
                            _ => &args[&name][0],
                        };
                        assert_eq!(&got[..], *piece, "part {i} changed");
                    }
                }
            }
        }
        2 => {
            let body = Bytes::copy_from_slice(rest);
            let r = parse_body_arguments(
                "application/x-www-form-urlencoded",
                &body,
                &mut args,
                &mut files,
                None,
                &config,
            );
            // Refused only past the field cap, counted as `&`-separated pieces.
            let pieces = rest.split(|&b| b == b'&').count();
            if pieces
                > config
                    .max_fields
                    .max(rest.len() / crate::URLENCODED_BYTES_PER_FIELD)
            {
                assert_eq!(r, Err(ParseError::TooManyFields));
                assert!(args.is_empty());
                return;
            }
            r.expect("urlencoded bodies within the cap are never rejected");
            assert!(files.is_empty());
            let fields = rest.split(|&b| b == b'&').filter(|f| !f.is_empty()).count();
            assert_eq!(
                count(&args, &files),
                fields,
                "one argument per non-empty field"
            );
        }
        3 => {
            let _ = parse_qs_bytes(rest, mode & 8 != 0);
        }
        _ => {
            let _ = parse_cookie(&String::from_utf8_lossy(rest));
        }
    }
}
