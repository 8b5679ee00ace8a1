//! The frame layer of RFC 6455 §5.2: opcodes, the frame header, and masking.

use crate::error::ProtocolError;

/// A frame's opcode (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// 0x0: the next fragment of a text or binary message.
    Continuation,
    /// 0x1: the first (or only) frame of a text message.
    Text,
    /// 0x2: the first (or only) frame of a binary message.
    Binary,
    /// 0x8: the close handshake.
    Close,
    /// 0x9: a ping; the peer answers with a pong carrying the same payload.
    Ping,
    /// 0xA: a pong.
    Pong,
}

impl OpCode {
    /// The opcode of the low four bits of `byte`, or the error for an undefined one.
    pub fn from_u8(byte: u8) -> Result<OpCode, ProtocolError> {
        Ok(match byte {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }

    /// The four-bit value on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Whether this is a control opcode (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: the last frame of its message.
    pub fin: bool,
    /// RSV1: with permessage-deflate, "this message is compressed".
    pub rsv1: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub len: u64,
}

/// The longest frame header: 2 bytes, 8 of extended length, 4 of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// How many header bytes a frame needs in total, judged from its first two bytes.
pub fn header_len(first_two: [u8; 2]) -> usize {
    let masked = first_two[1] & 0x80 != 0;
    let extended = match first_two[1] & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + extended + if masked { 4 } else { 0 }
}

/// Parses a frame header from `buf`. Returns `Ok(None)` when `buf` holds less than the
/// whole header, else the header and its length in bytes.
///
/// # Errors
///
/// RSV2 or RSV3 set ([`ProtocolError::ReservedBits`]), an undefined opcode, a control
/// frame that is fragmented or longer than 125 bytes, or a length with the top bit set
/// or not in its shortest form ([`ProtocolError::BadLength`]). Whether RSV1 and the mask
/// fit the connection is the caller's to judge.
pub fn parse_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x30 != 0 {
        return Err(ProtocolError::ReservedBits);
    }
    let opcode = OpCode::from_u8(b0 & 0x0F)?;
    let fin = b0 & 0x80 != 0;
    let need = header_len([b0, b1]);
    if buf.len() < need {
        return Ok(None);
    }
    let short = u64::from(b1 & 0x7F);
    let (len, mut at) = match short {
        126 => {
            let len = u64::from(u16::from_be_bytes([buf[2], buf[3]]));
            if len < 126 {
                return Err(ProtocolError::BadLength);
            }
            (len, 4)
        }
        127 => {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(bytes);
            if len >> 63 != 0 || len <= u64::from(u16::MAX) {
                return Err(ProtocolError::BadLength);
            }
            (len, 10)
        }
        len => (len, 2),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err(ProtocolError::BadControlFrame);
    }
    let mask = if b1 & 0x80 != 0 {
        let key = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(key)
    } else {
        None
    };
    let header = FrameHeader {
        fin,
        rsv1: b0 & 0x40 != 0,
        opcode,
        mask,
        len,
    };
    Ok(Some((header, at)))
}

/// Appends a frame header to `out`, with the length in its shortest form.
pub fn write_header(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    len: usize,
) {
    let b0 = u8::from(fin) << 7 | u8::from(rsv1) << 6 | opcode.as_u8();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(b0);
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// XORs `buf` with the masking `key`, as if `buf` started `offset` bytes into the
/// payload (RFC 6455 §5.3). Masking and unmasking are the same operation.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = [
        key[offset % 4],
        key[(offset + 1) % 4],
        key[(offset + 2) % 4],
        key[(offset + 3) % 4],
    ];
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_examples_parse() {
        // Section 5.7: a single-frame unmasked text message "Hello".
        let (h, n) = parse_header(&[0x81, 0x05, 0x48, 0x65]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.len, n),
            (true, OpCode::Text, None, 5, 2)
        );
        // A single-frame masked text message "Hello".
        let mut frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = parse_header(&frame).unwrap().unwrap();
        assert_eq!(n, 6);
        apply_mask(&mut frame[n..], h.mask.unwrap(), 0);
        assert_eq!(&frame[n..], b"Hello");
        // 256 bytes binary in a single unmasked frame; 64 KiB likewise.
        let (h, n) = parse_header(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.len, n), (256, 4));
        let (h, n) = parse_header(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.len, n), (65536, 10));
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(parse_header(&[0xA1, 0]), Err(ProtocolError::ReservedBits));
        assert_eq!(parse_header(&[0x93, 0]), Err(ProtocolError::ReservedBits));
        assert_eq!(
            parse_header(&[0x83, 0]),
            Err(ProtocolError::UnknownOpcode(3))
        );
        assert_eq!(
            parse_header(&[0x8B, 0]),
            Err(ProtocolError::UnknownOpcode(11))
        );
        assert_eq!(
            parse_header(&[0x09, 0]),
            Err(ProtocolError::BadControlFrame)
        );
        assert_eq!(
            parse_header(&[0x89, 126, 0, 126]),
            Err(ProtocolError::BadControlFrame)
        );
        assert_eq!(
            parse_header(&[0x82, 126, 0, 125]),
            Err(ProtocolError::BadLength)
        );
        assert_eq!(
            parse_header(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            Err(ProtocolError::BadLength)
        );
        assert_eq!(
            parse_header(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::BadLength)
        );
        assert_eq!(parse_header(&[0x82]), Ok(None));
        assert_eq!(parse_header(&[0x82, 0x85, 1, 2]), Ok(None));
    }

    #[test]
    fn headers_round_trip_in_shortest_form() {
        for len in [0, 1, 125, 126, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                write_header(&mut out, true, true, OpCode::Binary, mask, len);
                let (h, n) = parse_header(&out).unwrap().unwrap();
                assert_eq!(n, out.len());
                assert_eq!(
                    (h.len, h.mask, h.rsv1, h.opcode),
                    (len as u64, mask, true, OpCode::Binary)
                );
            }
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_whole() {
        let data: Vec<u8> = (0..100u8).collect();
        let key = [0x12, 0x34, 0x56, 0x78];
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..data.len() {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(pieces, whole);
        }
        for (i, (&m, &d)) in whole.iter().zip(&data).enumerate() {
            assert_eq!(m, d ^ key[i % 4]);
        }
    }
}
