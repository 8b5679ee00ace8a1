//! The chunked codec and the body decoders: round trips and arbitrary input in any split.

use bytes::BytesMut;
use proptest::prelude::*;
use squall_httputil::{
    decode_chunked, encode_chunk, encode_last_chunk, parse_request_head, BodyDecoder, BodyKind,
    ChunkedDecoder, Decoded, Limits, ParseError,
};

/// Feed `input` in the given pieces; collect the data and how it ended.
fn decode_in_pieces(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<bool, ParseError>, usize) {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    let mut at = 0;
    for c in cuts {
        buf.extend_from_slice(&input[at..c]);
        at = c;
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(Decoded::Data(d))) => data.extend_from_slice(&d),
                Ok(Some(Decoded::End)) => return (data, Ok(true), buf.len() + (input.len() - at)),
                Ok(None) => break,
                Ok(Some(other)) => panic!("unexpected {other:?}"),
                Err(e) => return (data, Err(e), 0),
            }
        }
    }
    (data, Ok(false), 0)
}

proptest! {
    /// encode then decode is the identity, whatever the chunking and the split.
    #[test]
    fn encode_decode_identity(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        tail in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut wire = BytesMut::new();
        for c in &chunks {
            encode_chunk(c, &mut wire);
        }
        encode_last_chunk(&mut wire);
        let body_len = wire.len();
        wire.extend_from_slice(&tail);
        let (data, end, left) = decode_in_pieces(&wire, &cuts);
        prop_assert_eq!(data, chunks.concat());
        prop_assert_eq!(end, Ok(true));
        prop_assert_eq!(left, tail.len(), "the bytes after the body are left alone");
        let (whole, used) = decode_chunked(&wire, &Limits::default()).unwrap();
        prop_assert_eq!(&whole[..], &chunks.concat()[..]);
        prop_assert_eq!(used, body_len);
    }

    /// Arbitrary bytes never panic and give the same result in any split.
    #[test]
    fn arbitrary_input_any_split(
        input in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let whole = decode_in_pieces(&input, &[]);
        let split = decode_in_pieces(&input, &cuts);
        prop_assert_eq!(whole, split);
    }

    /// Mostly-valid chunked bodies with one byte changed: same result in any split.
    #[test]
    fn corrupted_chunked_any_split(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..50), 1..5),
        flip in (any::<usize>(), any::<u8>()),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut wire = BytesMut::new();
        for c in &chunks {
            encode_chunk(c, &mut wire);
        }
        encode_last_chunk(&mut wire);
        let n = wire.len();
        wire[flip.0 % n] = flip.1;
        prop_assert_eq!(decode_in_pieces(&wire, &[]), decode_in_pieces(&wire, &cuts));
    }

    /// The head parser never panics on arbitrary bytes.
    #[test]
    fn head_parser_never_panics(input in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = parse_request_head(&input, &Limits::default());
        let mut prefixed = b"GET / HTTP/1.1\r\n".to_vec();
        prefixed.extend_from_slice(&input);
        let _ = parse_request_head(&prefixed, &Limits::default());
    }
}

#[test]
fn length_decoder_hands_out_exactly_the_body() {
    let mut dec = BodyDecoder::new(BodyKind::Length(5), &Limits::default());
    let mut buf = BytesMut::from(&b"ab"[..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Decoded::Data("ab".into()))
    );
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b"cdeNEXT");
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Decoded::Data("cde".into()))
    );
    assert!(dec.is_end());
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(Decoded::End));
    assert_eq!(&buf[..], b"NEXT");
    let mut none = BodyDecoder::new(BodyKind::None, &Limits::default());
    assert_eq!(none.decode(&mut buf).unwrap(), Some(Decoded::End));
}

#[test]
fn empty_chunks_are_not_written() {
    let mut out = BytesMut::new();
    encode_chunk(b"", &mut out);
    assert!(out.is_empty());
    encode_chunk(&[7u8; 300], &mut out);
    assert!(out.starts_with(b"12c\r\n"));
    assert!(out.ends_with(b"\r\n"));
}

/// Decode all of `input` at once with `limits`: the data, or the error.
fn decode_all(input: &[u8], limits: &Limits) -> Result<Vec<u8>, ParseError> {
    let mut dec = ChunkedDecoder::new(limits);
    let mut buf = BytesMut::from(input);
    let mut data = Vec::new();
    loop {
        match dec.decode(&mut buf)? {
            Some(Decoded::Data(d)) => data.extend_from_slice(&d),
            Some(Decoded::End) => return Ok(data),
            None => panic!("incomplete body"),
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
}

// Chunk extensions are bounded per body, not only per line: many short lines with
// extensions add up (hyper caps the total at 16 KiB).
#[test]
fn chunk_extensions_are_bounded_per_body() {
    let limits = Limits::default();
    let ext = format!(";name={}", "v".repeat(94)); // 100 bytes per line
    let lines = limits.max_chunk_extensions / ext.len();
    let body = |n: usize| {
        let mut b = format!("1{ext}\r\nx\r\n").repeat(n);
        b.push_str("0\r\n\r\n");
        b
    };
    assert_eq!(
        decode_all(body(lines).as_bytes(), &limits).unwrap().len(),
        lines
    );
    assert_eq!(
        decode_all(body(lines + 1).as_bytes(), &limits),
        Err(ParseError::ChunkExtensionsTooLarge)
    );
    assert_eq!(ParseError::ChunkExtensionsTooLarge.status(), 400);
    // The budget is per body: a reset decoder starts again.
    let mut dec = ChunkedDecoder::new(&limits);
    for _ in 0..2 {
        let mut buf = BytesMut::from(body(lines).as_bytes());
        while !matches!(dec.decode(&mut buf), Ok(Some(Decoded::End))) {}
        dec.reset();
    }
}

// Framing that outweighs the data is refused (Go's CVE-2023-39326 rule): each chunk
// charges its size line and CRLFs, and pays back 16 bytes plus twice its size.
#[test]
fn chunk_framing_overhead_is_bounded() {
    let limits = Limits::default();
    // Size lines padded with leading zeros: about 500 bytes of framing per data byte.
    let padded = format!("{}1\r\nx\r\n", "0".repeat(500));
    let n = limits.max_chunk_overhead / 480;
    let mut ok = padded.repeat(n - 2);
    ok.push_str("0\r\n\r\n");
    assert!(decode_all(ok.as_bytes(), &limits).is_ok());
    let mut over = padded.repeat(n + 2);
    over.push_str("0\r\n\r\n");
    assert_eq!(
        decode_all(over.as_bytes(), &limits),
        Err(ParseError::ChunkOverheadTooLarge)
    );
    // Large chunks pay back earlier framing.
    let mut mixed = String::new();
    for _ in 0..4 * n {
        mixed.push_str(&padded);
        mixed.push_str(&format!("100\r\n{}\r\n", "y".repeat(256)));
    }
    mixed.push_str("0\r\n\r\n");
    assert!(decode_all(mixed.as_bytes(), &limits).is_ok());
    // Ordinary tiny chunks (minimal framing) never trip it.
    let mut tiny = "1\r\nx\r\n".repeat(100_000);
    tiny.push_str("0\r\n\r\n");
    assert_eq!(decode_all(tiny.as_bytes(), &limits).unwrap().len(), 100_000);
}
