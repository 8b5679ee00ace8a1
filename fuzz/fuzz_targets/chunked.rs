//! The chunked decoder on arbitrary bytes in arbitrary splits: never a panic, and any
//! split gives the same body and the same verdict as the whole input.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use squall_httputil::{decode_chunked, ChunkedDecoder, Decoded, Limits, ParseError};

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
            Some(other) => panic!("unexpected {other:?}"),
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

fuzz_target!(|data: &[u8]| {
    let (cuts, input) = data.split_at(data.first().map_or(0, |&n| usize::from(n % 8)).min(data.len()));
    let limits = Limits::default();
    let whole = decode_chunked(input, &limits);
    let split = decode_split(input, if cuts.is_empty() { &[0] } else { cuts }, &limits);
    match (whole, split) {
        (Ok((a, _)), Ok(b)) => assert_eq!(&a[..], &b[..]),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("whole {a:?} but split {b:?}"),
    }
});
