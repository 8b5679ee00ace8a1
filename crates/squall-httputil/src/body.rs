//! Body decoders with one interface: Content-Length, chunked, or none.

use bytes::BytesMut;

use crate::chunked::ChunkedDecoder;
use crate::decode::{Decoded, LengthDecoder};
use crate::error::ParseError;
use crate::head::BodyKind;
use crate::limits::Limits;

/// The decoder for a request body of any [`BodyKind`].
///
/// ```
/// use bytes::BytesMut;
/// use squall_httputil::{BodyDecoder, BodyKind, Decoded, Limits};
///
/// let mut dec = BodyDecoder::new(BodyKind::Length(3), &Limits::default());
/// let mut buf = BytesMut::from(&b"abcGET"[..]);
/// assert_eq!(dec.decode(&mut buf)?, Some(Decoded::Data("abc".into())));
/// assert_eq!(dec.decode(&mut buf)?, Some(Decoded::End));
/// assert_eq!(&buf[..], b"GET");
/// # Ok::<(), squall_httputil::ParseError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BodyDecoder {
    /// Content-Length (an absent body is a length of 0).
    Length(LengthDecoder),
    /// Transfer-Encoding: chunked.
    Chunked(ChunkedDecoder),
}

impl BodyDecoder {
    /// The decoder for `kind`, with the caps of `limits`.
    pub fn new(kind: BodyKind, limits: &Limits) -> Self {
        match kind {
            BodyKind::None => BodyDecoder::Length(LengthDecoder::new(0)),
            BodyKind::Length(n) => BodyDecoder::Length(LengthDecoder::new(n)),
            BodyKind::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new(limits)),
        }
    }

    /// Take the next piece of the body from `buf`; see [`LengthDecoder::decode`] and
    /// [`ChunkedDecoder::decode`].
    ///
    /// # Errors
    /// The chunked decoder's errors; a length-delimited body cannot fail.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, ParseError> {
        match self {
            BodyDecoder::Length(d) => Ok(d.decode(buf)),
            BodyDecoder::Chunked(d) => d.decode(buf),
        }
    }

    /// True once the whole body has been read.
    pub fn is_end(&self) -> bool {
        match self {
            BodyDecoder::Length(d) => d.remaining() == 0,
            BodyDecoder::Chunked(d) => d.is_end(),
        }
    }
}
