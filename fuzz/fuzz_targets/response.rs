//! The client's response parser on arbitrary bytes in arbitrary splits: never a panic,
//! and any split gives the same events and the same verdict as the whole input. The
//! first byte picks the request method (HEAD or CONNECT change the framing) and whether
//! the connection ends after the input; the next few are the split sizes.
#![no_main]

use bytes::BytesMut;
use http::Method;
use libfuzzer_sys::fuzz_target;
use squall_httputil::client::{ResponseEvent, ResponseParser};
use squall_httputil::{Limits, ParseError};

/// Everything a response came to, in order, and how it ended.
fn parse(method: &Method, input: &[u8], cuts: &[u8], eof: bool) -> (Vec<String>, Vec<u8>, Result<usize, ParseError>) {
    let mut p = ResponseParser::new(method, Limits::default());
    let mut buf = BytesMut::new();
    let mut heads = Vec::new();
    let mut body = Vec::new();
    let mut rest = input;
    let mut cuts = cuts.iter().cycle();
    loop {
        let ev = match p.poll(&mut buf) {
            Ok(Some(ev)) => ev,
            Ok(None) if !rest.is_empty() => {
                let n = (usize::from(*cuts.next().unwrap_or(&255)) + 1).min(rest.len());
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                continue;
            }
            Ok(None) if eof => match p.eof() {
                Ok(ev) => ev,
                Err(e) => return (heads, body, Err(e)),
            },
            Ok(None) => return (heads, body, Err(ParseError::IncompleteMessage)),
            Err(e) => return (heads, body, Err(e)),
        };
        match ev {
            ResponseEvent::Interim(h) | ResponseEvent::Head(h) => {
                heads.push(format!("{:?} {} {:?} {:?} {}", h.version, h.status, h.headers, h.body, h.keep_alive));
            }
            ResponseEvent::Data(d) => body.extend_from_slice(&d),
            ResponseEvent::End => return (heads, body, Ok(buf.len() + rest.len())),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let method = match flags % 3 {
        0 => Method::GET,
        1 => Method::HEAD,
        _ => Method::CONNECT,
    };
    let eof = flags & 4 != 0;
    let (cuts, input) = data.split_at(usize::from(flags >> 4).min(data.len()));
    let whole = parse(&method, input, &[255, 255, 255, 255], eof);
    let whole_one = parse(&method, input, &[], eof);
    let split = parse(&method, input, if cuts.is_empty() { &[0] } else { cuts }, eof);
    assert_eq!(whole, split);
    assert_eq!(whole_one, split);
});
