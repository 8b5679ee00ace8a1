//! The sans-IO protocol against RFC 6455 and RFC 7692: frames built by hand, split in
//! every way, and the errors each rule breach must give.

use flate2::{Compress, Compression, FlushCompress};
use proptest::prelude::*;
use squall_websocket::frame::{apply_mask, write_header, OpCode};
use squall_websocket::{
    CloseCode, DeflateParams, EncodeError, Event, Message, Protocol, ProtocolError, Role,
};

const MAX: usize = 1 << 16;

fn deflate_params() -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    }
}

/// One frame as a client sends it (masked).
fn frame(fin: bool, rsv1: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let key = [0x5A, 0xC3, 0x01, 0xFE];
    let mut out = Vec::new();
    write_header(&mut out, fin, rsv1, opcode, Some(key), payload.len());
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
    out
}

/// Raw deflate with a sync flush, the tail stripped (RFC 7692 §7.2.1).
fn compress(compress: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut input = data;
    loop {
        out.reserve(input.len() + 1024);
        let before = compress.total_in();
        compress
            .compress_vec(input, &mut out, FlushCompress::Sync)
            .unwrap();
        input = &input[(compress.total_in() - before) as usize..];
        // Done once the input is taken and the flush fitted with room to spare.
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    if out.is_empty() {
        // zlib writes no second flush marker for no new input: an empty message is one
        // 0x00 byte (RFC 7692 §7.2.3.6).
        return vec![0];
    }
    assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
    out.truncate(out.len() - 4);
    out
}

/// Decodes `wire` fed in pieces cut at `cuts`, collecting every event (or the error).
fn decode_split(
    proto: &mut Protocol,
    wire: &[u8],
    cuts: &[usize],
) -> Result<Vec<Event>, ProtocolError> {
    let mut events = Vec::new();
    let mut at = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(wire.len());
    for end in ends {
        let mut piece = &wire[at.min(end)..end];
        at = at.max(end);
        while let Some(event) = proto.decode(&mut piece)? {
            events.push(event);
        }
        assert!(piece.is_empty());
    }
    Ok(events)
}

fn server(compressed: bool) -> Protocol {
    Protocol::new(Role::Server, compressed.then(|| (deflate_params(), 6)), MAX)
}

#[derive(Debug, Clone)]
struct Msg {
    text: bool,
    data: Vec<u8>,
    /// Fragment sizes; a ping goes between fragments when `ping` is set.
    fragments: Vec<usize>,
    ping: bool,
    compressed: bool,
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        any::<bool>(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            "[a-zé€😀 ]{0,200}".prop_map(String::into_bytes)
        ],
        proptest::collection::vec(1usize..64, 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(text, data, fragments, ping, compressed)| {
            let text = text && std::str::from_utf8(&data).is_ok();
            Msg {
                text,
                data,
                fragments,
                ping,
                compressed,
            }
        })
}

/// The wire bytes of `msgs` and the events a server must give for them.
fn build(msgs: &[Msg], deflate: bool) -> (Vec<u8>, Vec<Event>) {
    let mut compressor = Compress::new(Compression::default(), false);
    let mut wire = Vec::new();
    let mut events = Vec::new();
    for m in msgs {
        let compressed = deflate && m.compressed;
        let payload = if compressed {
            compress(&mut compressor, &m.data)
        } else {
            m.data.clone()
        };
        let mut rest = &payload[..];
        let mut first = true;
        for &size in &m.fragments {
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            let opcode = match (first, m.text) {
                (false, _) => OpCode::Continuation,
                (true, true) => OpCode::Text,
                (true, false) => OpCode::Binary,
            };
            wire.extend(frame(false, first && compressed, opcode, piece));
            if m.ping {
                wire.extend(frame(true, false, OpCode::Ping, b"between"));
                events.push(Event::Ping(b"between".to_vec()));
            }
            first = false;
            rest = tail;
        }
        let opcode = match (first, m.text) {
            (false, _) => OpCode::Continuation,
            (true, true) => OpCode::Text,
            (true, false) => OpCode::Binary,
        };
        wire.extend(frame(true, first && compressed, opcode, rest));
        events.push(Event::Message(if m.text {
            Message::Text(String::from_utf8(m.data.clone()).unwrap())
        } else {
            Message::Binary(m.data.clone())
        }));
    }
    (wire, events)
}

proptest! {
    #[test]
    fn any_split_of_fragmented_messages_decodes_the_same(
        msgs in proptest::collection::vec(msg(), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        deflate in any::<bool>(),
    ) {
        let (wire, expected) = build(&msgs, deflate);
        prop_assert_eq!(decode_split(&mut server(deflate), &wire, &cuts).unwrap(), expected.clone());
        // One byte at a time.
        let every: Vec<usize> = (0..wire.len()).collect();
        prop_assert_eq!(decode_split(&mut server(deflate), &wire, &every).unwrap(), expected);
    }

    #[test]
    fn what_one_end_encodes_the_other_decodes(
        texts in proptest::collection::vec("\\PC{0,300}", 1..5),
        deflate in any::<bool>(),
        nct in any::<bool>(),
        bits in 8u8..=15,
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let params = DeflateParams {
            server_no_context_takeover: nct,
            client_no_context_takeover: !nct,
            server_max_window_bits: bits,
            client_max_window_bits: 23 - bits,
        };
        for (from, to) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
            let mut tx = Protocol::new(from, deflate.then_some((params, 6)), MAX);
            let mut rx = Protocol::new(to, deflate.then_some((params, 6)), MAX);
            let mut wire = Vec::new();
            for text in &texts {
                tx.encode_text(text, &mut wire).unwrap();
                tx.encode_binary(text.as_bytes(), &mut wire).unwrap();
            }
            tx.encode_ping(b"p", &mut wire).unwrap();
            tx.encode_close(Some(CloseCode(4000)), "done", &mut wire).unwrap();
            let events = decode_split(&mut rx, &wire, &cuts).unwrap();
            let mut expected: Vec<Event> = texts
                .iter()
                .flat_map(|t| [Event::Message(Message::Text(t.clone())), Event::Message(Message::Binary(t.clone().into_bytes()))])
                .collect();
            expected.push(Event::Ping(b"p".to_vec()));
            expected.push(Event::Close(Some(squall_websocket::CloseFrame { code: CloseCode(4000), reason: "done".into() })));
            prop_assert_eq!(events, expected);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        deflate in any::<bool>(),
    ) {
        for role in [Role::Server, Role::Client] {
            let mut proto = Protocol::new(role, deflate.then(|| (deflate_params(), 6)), 1000);
            let _ = decode_split(&mut proto, &bytes, &cuts);
        }
    }
}

fn decode_all(proto: &mut Protocol, wire: &[u8]) -> Result<Vec<Event>, ProtocolError> {
    decode_split(proto, wire, &[])
}

// A message of endless empty fragments is framing without data, which
// max_message_size never bounds: refused with 1008 after 4,096 fragments that added
// nothing (an attacker's 280 million empty fragments ran unanswered). Fragments that
// carry bytes, however small, and a few empty ones, are fine.
#[test]
fn endless_empty_fragments_are_refused() {
    let mut wire = frame(false, false, OpCode::Binary, b"");
    for _ in 0..5000 {
        wire.extend(frame(false, false, OpCode::Continuation, b""));
    }
    let err = decode_all(&mut server(false), &wire).unwrap_err();
    assert_eq!(err, ProtocolError::IdleFragments);
    assert_eq!(err.close_code(), CloseCode::POLICY_VIOLATION);
    // 4,096 empty fragments, then data: one message.
    let mut wire = frame(false, false, OpCode::Binary, b"");
    for _ in 0..4095 {
        wire.extend(frame(false, false, OpCode::Continuation, b""));
    }
    wire.extend(frame(true, false, OpCode::Continuation, b"end"));
    assert_eq!(
        decode_all(&mut server(false), &wire),
        Ok(vec![Event::Message(Message::Binary(b"end".to_vec()))])
    );
    // Ten thousand one-byte fragments: every one adds to the message.
    let mut wire = frame(false, false, OpCode::Binary, b"x");
    for _ in 0..10_000 {
        wire.extend(frame(false, false, OpCode::Continuation, b"x"));
    }
    wire.extend(frame(true, false, OpCode::Continuation, b"x"));
    assert_eq!(
        decode_all(&mut server(false), &wire),
        Ok(vec![Event::Message(Message::Binary(vec![b'x'; 10_002]))])
    );
}

#[test]
fn invalid_utf8_fails_fast_inside_a_frame_and_across_fragments() {
    // 0xCE 0xBA is κ; 0xF4 0x90 can never start valid UTF-8 (past U+10FFFF).
    let mut wire = frame(true, false, OpCode::Text, b"\xCE\xBA\xF4\x90\x80\x80hello");
    wire.truncate(wire.len() - 5); // the frame's end has not arrived yet
    assert_eq!(
        decode_all(&mut server(false), &wire),
        Err(ProtocolError::InvalidUtf8)
    );
    let mut wire = frame(false, false, OpCode::Text, b"\xCE\xBA\xE2");
    wire.extend(frame(false, false, OpCode::Continuation, b"\x28"));
    assert_eq!(
        decode_all(&mut server(false), &wire),
        Err(ProtocolError::InvalidUtf8)
    );
    // A sequence split over fragments is fine.
    let mut wire = frame(false, false, OpCode::Text, b"\xE2\x82");
    wire.extend(frame(true, false, OpCode::Continuation, b"\xAC"));
    assert_eq!(
        decode_all(&mut server(false), &wire),
        Ok(vec![Event::Message("€".into())])
    );
    // An incomplete sequence at the end of the message is not.
    assert_eq!(
        decode_all(
            &mut server(false),
            &frame(true, false, OpCode::Text, b"\xE2\x82")
        ),
        Err(ProtocolError::InvalidUtf8)
    );
}

#[test]
fn oversized_messages_fail_with_1009_before_their_payload() {
    let mut proto = Protocol::new(Role::Server, None, 100);
    let mut wire = Vec::new();
    write_header(&mut wire, true, false, OpCode::Binary, Some([0; 4]), 101);
    let err = decode_all(&mut proto, &wire).unwrap_err();
    assert_eq!(
        (err, err.close_code()),
        (ProtocolError::MessageTooBig, CloseCode::MESSAGE_TOO_BIG)
    );
    // Over several fragments.
    let mut proto = Protocol::new(Role::Server, None, 100);
    let mut wire = frame(false, false, OpCode::Binary, &[0; 60]);
    wire.extend(frame(true, false, OpCode::Continuation, &[0; 60]));
    assert_eq!(
        decode_all(&mut proto, &wire),
        Err(ProtocolError::MessageTooBig)
    );
    // Compressed: the cap is on the inflated size.
    let mut proto = Protocol::new(Role::Server, Some((deflate_params(), 6)), 1000);
    let payload = compress(
        &mut Compress::new(Compression::best(), false),
        &[b'a'; 100_000],
    );
    assert!(payload.len() < 1000);
    assert_eq!(
        decode_all(&mut proto, &frame(true, true, OpCode::Text, &payload)),
        Err(ProtocolError::MessageTooBig)
    );
}

#[test]
fn framing_rules_are_enforced() {
    let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
        // A server must refuse unmasked frames.
        (vec![0x81, 0x00], ProtocolError::Masking),
        (
            frame(true, true, OpCode::Text, b"x"),
            ProtocolError::ReservedBits,
        ),
        (
            frame(true, false, OpCode::Continuation, b"x"),
            ProtocolError::UnexpectedContinuation,
        ),
        (
            [
                frame(false, false, OpCode::Text, b"x"),
                frame(true, false, OpCode::Text, b"y"),
            ]
            .concat(),
            ProtocolError::ExpectedContinuation,
        ),
        (
            frame(false, false, OpCode::Ping, b"x"),
            ProtocolError::BadControlFrame,
        ),
        (
            frame(true, false, OpCode::Ping, &[0; 126]),
            ProtocolError::BadControlFrame,
        ),
        (
            frame(true, false, OpCode::Close, &[3]),
            ProtocolError::BadClosePayload,
        ),
        (
            frame(true, false, OpCode::Close, &[0x03, 0xED]),
            ProtocolError::InvalidCloseCode(1005),
        ),
        (
            frame(true, false, OpCode::Close, &[0x03, 0xE7]),
            ProtocolError::InvalidCloseCode(999),
        ),
        (
            frame(true, false, OpCode::Close, &[0x13, 0x88]),
            ProtocolError::InvalidCloseCode(5000),
        ),
        (
            frame(true, false, OpCode::Close, b"\x03\xe8\xff"),
            ProtocolError::InvalidUtf8,
        ),
    ];
    for (wire, error) in cases {
        let mut proto = server(false);
        assert_eq!(decode_all(&mut proto, &wire), Err(error), "{wire:?}");
        // The protocol stays failed.
        assert_eq!(proto.decode(&mut &b""[..]), Err(error));
    }
    // RSV1 on a continuation or control frame is an error even with compression on.
    let wire = [
        frame(false, true, OpCode::Text, b""),
        frame(true, true, OpCode::Continuation, b""),
    ]
    .concat();
    assert_eq!(
        decode_all(&mut server(true), &wire),
        Err(ProtocolError::ReservedBits)
    );
    assert_eq!(
        decode_all(&mut server(true), &frame(true, true, OpCode::Ping, b"")),
        Err(ProtocolError::ReservedBits)
    );
    // A client must refuse masked frames.
    let mut client = Protocol::new(Role::Client, None, MAX);
    assert_eq!(
        decode_all(&mut client, &frame(true, false, OpCode::Text, b"x")),
        Err(ProtocolError::Masking)
    );
}

#[test]
fn the_close_handshake() {
    let mut proto = server(false);
    let mut wire = frame(true, false, OpCode::Close, b"\x03\xe8bye");
    wire.extend(frame(true, false, OpCode::Text, b"ignored after close"));
    let events = decode_all(&mut proto, &wire).unwrap();
    assert_eq!(
        events,
        vec![Event::Close(Some(squall_websocket::CloseFrame {
            code: CloseCode::NORMAL,
            reason: "bye".into()
        }))]
    );
    assert!(proto.received_close());
    let mut out = Vec::new();
    proto
        .encode_close(Some(CloseCode::NORMAL), "", &mut out)
        .unwrap();
    assert_eq!(out, [0x88, 0x02, 0x03, 0xE8]);
    assert!(proto.sent_close());
    assert_eq!(
        proto.encode_text("late", &mut out),
        Err(EncodeError::Closed)
    );
    assert_eq!(proto.encode_ping(b"", &mut out), Err(EncodeError::Closed));
    // An empty close frame has no code.
    assert_eq!(
        decode_all(&mut server(false), &frame(true, false, OpCode::Close, b"")).unwrap(),
        vec![Event::Close(None)]
    );
    let mut proto = server(false);
    assert_eq!(
        proto.encode_close(Some(CloseCode(1005)), "", &mut out),
        Err(EncodeError::InvalidCloseCode(1005))
    );
    assert_eq!(
        proto.encode_close(Some(CloseCode::NORMAL), &"x".repeat(124), &mut out),
        Err(EncodeError::ControlTooLong)
    );
    assert_eq!(
        proto.encode_ping(&[0; 126], &mut out),
        Err(EncodeError::ControlTooLong)
    );
}

#[test]
fn server_frames_are_unmasked_and_client_frames_masked() {
    let mut out = Vec::new();
    server(false).encode_text("Hello", &mut out).unwrap();
    assert_eq!(out, b"\x81\x05Hello");
    let mut out = Vec::new();
    Protocol::new(Role::Client, None, MAX)
        .encode_text("Hello", &mut out)
        .unwrap();
    assert_eq!(out[..2], [0x81, 0x85]);
    let mut payload = out[6..].to_vec();
    apply_mask(&mut payload, [out[2], out[3], out[4], out[5]], 0);
    assert_eq!(payload, b"Hello");
}

#[test]
fn rfc_7692_examples_decode() {
    // Section 7.2.3.1: "Hello" compressed, unfragmented, then in two fragments.
    let mut client = Protocol::new(Role::Client, Some((deflate_params(), 6)), MAX);
    let mut one = &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..];
    assert_eq!(
        client.decode(&mut one),
        Ok(Some(Event::Message("Hello".into())))
    );
    let mut two = &[
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ][..];
    assert_eq!(
        client.decode(&mut two),
        Ok(Some(Event::Message("Hello".into())))
    );
    // Section 7.2.3.2: the second "Hello" uses the first one's window.
    let mut client = Protocol::new(Role::Client, Some((deflate_params(), 6)), MAX);
    let mut shared = &[
        0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00,
        0x00,
    ][..];
    assert_eq!(
        client.decode(&mut shared),
        Ok(Some(Event::Message("Hello".into())))
    );
    assert_eq!(
        client.decode(&mut shared),
        Ok(Some(Event::Message("Hello".into())))
    );
    // Section 7.2.3.3: a stored block; 7.2.3.5: two deflate blocks in one message.
    let mut client = Protocol::new(Role::Client, Some((deflate_params(), 6)), MAX);
    let mut stored = &[
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ][..];
    assert_eq!(
        client.decode(&mut stored),
        Ok(Some(Event::Message("Hello".into())))
    );
    let mut blocks = &[
        0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ][..];
    assert_eq!(
        client.decode(&mut blocks),
        Ok(Some(Event::Message("Hello".into())))
    );
}

#[test]
fn the_verdict_on_a_compressed_message_does_not_depend_on_the_split() {
    // Bad UTF-8 that inflates before the deflate stream turns corrupt: whole or split,
    // the bad UTF-8 is what is reported.
    let mut payload = compress(
        &mut Compress::new(Compression::default(), false),
        b"ab\xFFcd",
    );
    payload.extend_from_slice(&[0xFF; 8]);
    let wire = frame(true, true, OpCode::Text, &payload);
    let every: Vec<usize> = (0..wire.len()).collect();
    assert_eq!(
        decode_all(&mut server(true), &wire),
        Err(ProtocolError::InvalidUtf8)
    );
    assert_eq!(
        decode_split(&mut server(true), &wire, &every),
        Err(ProtocolError::InvalidUtf8)
    );
}
