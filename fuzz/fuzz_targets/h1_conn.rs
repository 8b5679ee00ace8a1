//! The whole sans-IO HTTP/1.1 server connection fed arbitrary bytes in arbitrary
//! splits, answered as a server would. Invariants: no panic; the unparsed input stays
//! bounded; every response is well-formed and there is exactly one per request
//! answered (plus one for a rejected request); after a rejection or a non-kept request
//! nothing more is parsed and the connection closes.
#![no_main]

use bytes::BytesMut;
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;
use squall_httputil::h1::{Event, ServerConn};
use squall_httputil::{write_error_response, Limits};

fuzz_target!(|data: &[u8]| {
    let (cuts, input) = data.split_at(data.first().map_or(0, |&n| usize::from(n % 8)).min(data.len()));
    let cuts: &[u8] = if cuts.is_empty() { &[255] } else { cuts };
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
    let (mut answered, mut heads, mut rejected) = (0usize, Vec::new(), false);

    'feed: loop {
        while let Some(event) = conn.poll(&mut buf) {
            match event {
                Event::Head(head) => heads.push(head.method == http::Method::HEAD),
                Event::Data(d) => assert!(!d.is_empty()),
                Event::End => {
                    let done = conn
                        .respond(StatusCode::OK, &HeaderMap::new(), b"ok", &mut out)
                        .expect("a complete request can be answered");
                    answered += 1;
                    if !done.keep_alive {
                        break 'feed;
                    }
                }
                Event::Error(e) => {
                    assert!(e.status().is_client_error() || e.status().is_server_error(), "{e}");
                    write_error_response(e, &mut out);
                    rejected = true;
                    assert!(conn.poll(&mut buf).is_none(), "parsing goes on after an error");
                    break 'feed;
                }
                _ => {}
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

    // Every response in the output is complete and well-formed.
    let mut wire = &out[..];
    let mut responses = 0;
    let mut request = 0;
    while !wire.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut fields);
        let head_len = match resp.parse(wire).expect("malformed response") {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("truncated response head"),
        };
        let is_head = request < answered && heads.get(request).copied().unwrap_or(false);
        let len = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| std::str::from_utf8(h.value).unwrap().parse::<usize>().unwrap())
            .expect("every response here has a Content-Length");
        let body = if is_head { 0 } else { len };
        assert!(wire.len() >= head_len + body, "truncated response body");
        wire = &wire[head_len + body..];
        responses += 1;
        request += 1;
    }
    assert_eq!(responses, answered + usize::from(rejected));
    if rejected {
        assert!(conn.should_close(), "a rejected request must close the connection");
    }
});
