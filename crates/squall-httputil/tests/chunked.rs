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
