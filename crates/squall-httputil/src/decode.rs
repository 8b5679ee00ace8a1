//! What every body decoder yields ([`Decoded`]), and the simplest decoder, for a body
//! delimited by Content-Length ([`LengthDecoder`]). The chunked decoder and
//! [`BodyDecoder`](crate::BodyDecoder) build on these.

use bytes::{Bytes, BytesMut};

/// What a body decoder yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decoded {
    /// A piece of the body, split off the input buffer without a copy.
    Data(Bytes),
    /// The body is complete; bytes left in the buffer belong to the next message.
    End,
}

/// A body delimited by Content-Length.
#[derive(Debug, Clone)]
pub struct LengthDecoder {
    remaining: u64,
}

impl LengthDecoder {
    /// A decoder for a body of `len` bytes.
    pub fn new(len: u64) -> Self {
        LengthDecoder { remaining: len }
    }

    /// Bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Take the next piece of the body from `buf` (as much as it holds, up to the end of
    /// the body); [`Decoded::End`] once all bytes were handed out; `None` if `buf` is empty.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded> {
        if self.remaining == 0 {
            return Some(Decoded::End);
        }
        if buf.is_empty() {
            return None;
        }
        let n = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.remaining -= n as u64;
        Some(Decoded::Data(buf.split_to(n).freeze()))
    }
}
