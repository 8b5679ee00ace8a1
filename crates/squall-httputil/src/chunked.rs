//! The chunked transfer coding (RFC 9112 §7.1): a strict incremental decoder and the
//! encoder.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::HeaderMap;

use crate::decode::Decoded;
use crate::error::ParseError;
use crate::limits::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a chunk-size line, or in its hex digits.
    Size,
    /// After the digits, before any `;`: only whitespace, `;` or CR may follow.
    AfterSize,
    /// In chunk extensions.
    Ext,
    /// In a quoted-string of an extension.
    ExtQuoted,
    /// After a backslash in a quoted-string.
    ExtQuotedEscape,
    /// CR seen at the end of the size line.
    SizeLf,
    /// Reading chunk data.
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// CR seen at the end of a trailer line.
    TrailerLineLf,
    /// CR seen on the final empty line.
    EndLf,
    /// The body is complete.
    End,
    /// A previous call failed.
    Failed(ParseError),
}

/// An incremental, strict decoder for a chunked body.
///
/// Feed it the connection's input buffer as bytes arrive, split anywhere:
/// [`decode`](ChunkedDecoder::decode) consumes framing bytes and hands out chunk data as
/// [`Bytes`] split off the buffer without a copy. Strict where laxness lets requests be
/// smuggled: hexadecimal digits only (no sign, underscore or leading space), no overflow,
/// CRLF (not a bare LF) after every size line and every chunk's data; chunk extensions
/// are tolerated but bounded per line by [`Limits::max_chunk_line`] and per body by
/// [`Limits::max_chunk_extensions`]; the framing a body may add beyond its data is
/// bounded by [`Limits::max_chunk_overhead`], so a body of many tiny chunks cannot cost
/// far more wire bytes and handler calls than its data; the trailer section is parsed
/// and bounded by [`Limits::max_trailer_size`] and [`Limits::max_headers`]. The sum of
/// chunk sizes is held to a limit as soon as each size line arrives (413), before the
/// data is read.
///
/// ```
/// use bytes::BytesMut;
/// use squall_httputil::{ChunkedDecoder, Decoded, Limits};
///
/// let mut dec = ChunkedDecoder::new(&Limits::default());
/// let mut buf = BytesMut::from(&b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n"[..]);
/// let mut body = Vec::new();
/// loop {
///     match dec.decode(&mut buf)? {
///         Some(Decoded::Data(d)) => body.extend_from_slice(&d),
///         Some(Decoded::End) => break,
///         _ => unreachable!("the whole body is in the buffer"),
///     }
/// }
/// assert_eq!(body, b"Wikipedia");
/// # Ok::<(), squall_httputil::ParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    line_len: usize,
    total: u64,
    limit: u64,
    max_line: usize,
    /// Extension bytes so far in this body, and their cap (u32: the decoder is kept
    /// small; a cap beyond 4 GiB saturates).
    ext_total: u32,
    max_ext: u32,
    /// Framing bytes not yet paid for by data, and their cap.
    overhead: u32,
    max_overhead: u32,
    max_trailer: usize,
    max_trailer_fields: usize,
    trailer: Vec<u8>,
    trailers: Option<HeaderMap>,
}

impl ChunkedDecoder {
    /// A decoder with the chunk-line, trailer and body caps of `limits`.
    pub fn new(limits: &Limits) -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            line_len: 0,
            total: 0,
            limit: limits.max_body_size,
            max_line: limits.max_chunk_line,
            ext_total: 0,
            max_ext: u32::try_from(limits.max_chunk_extensions).unwrap_or(u32::MAX),
            overhead: 0,
            max_overhead: u32::try_from(limits.max_chunk_overhead).unwrap_or(u32::MAX),
            max_trailer: limits.max_trailer_size,
            max_trailer_fields: limits.max_headers,
            trailer: Vec::new(),
            trailers: None,
        }
    }

    /// Start a new body with the same caps, keeping the trailer buffer's allocation.
    pub fn reset(&mut self) {
        self.state = State::Size;
        self.size = 0;
        self.line_len = 0;
        self.total = 0;
        self.ext_total = 0;
        self.overhead = 0;
        self.trailer.clear();
        self.trailers = None;
    }

    /// Change the cap on the sum of chunk sizes (for the chunks not yet announced).
    pub fn set_max_body_size(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// Data bytes announced so far by chunk-size lines.
    pub fn announced(&self) -> u64 {
        self.total
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_end(&self) -> bool {
        self.state == State::End
    }

    /// The trailer fields, once the body has ended (`None` before, or if taken).
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// Consume what `buf` holds: returns the next piece of data, [`Decoded::End`] once
    /// the body is complete (and on every later call), or `None` when `buf` has been used
    /// up without completing either.
    ///
    /// # Errors
    /// [`ParseError::InvalidChunkSize`], [`ChunkSizeOverflow`](ParseError::ChunkSizeOverflow),
    /// [`ChunkLineTooLong`](ParseError::ChunkLineTooLong),
    /// [`InvalidChunkExtension`](ParseError::InvalidChunkExtension),
    /// [`MissingChunkCrlf`](ParseError::MissingChunkCrlf),
    /// [`TrailersTooLarge`](ParseError::TrailersTooLarge),
    /// [`InvalidTrailer`](ParseError::InvalidTrailer),
    /// [`BodyTooLarge`](ParseError::BodyTooLarge). After an error every later call
    /// returns the same error.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, ParseError> {
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::End => return Ok(Some(Decoded::End)),
                State::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    return Ok(Some(Decoded::Data(data)));
                }
                _ => {}
            }
            let mut used = 0;
            let mut result = Ok(());
            for &b in buf.iter() {
                used += 1;
                result = self.step(b);
                if result.is_err() || matches!(self.state, State::Data(_) | State::End) {
                    break;
                }
            }
            crate::count_work!(used);
            buf.advance(used);
            if let Err(e) = result {
                self.state = State::Failed(e);
                return Err(e);
            }
            if !matches!(self.state, State::Data(_) | State::End) {
                return Ok(None);
            }
        }
    }

    fn size_line_byte(&mut self) -> Result<(), ParseError> {
        self.line_len += 1;
        if self.line_len > self.max_line {
            return Err(ParseError::ChunkLineTooLong);
        }
        Ok(())
    }

    /// A byte of a size line after its digits: counted against the line and the
    /// body's extension budget.
    fn ext_byte(&mut self) -> Result<(), ParseError> {
        self.size_line_byte()?;
        self.ext_total = self.ext_total.saturating_add(1);
        if self.ext_total > self.max_ext {
            return Err(ParseError::ChunkExtensionsTooLarge);
        }
        Ok(())
    }

    /// A size line ended (its CRLF read) announcing `size` bytes: its framing (the line,
    /// its CRLF and the CRLF after the data) is charged, and the data pays 16 bytes
    /// plus twice its size back (Go's rule).
    fn charge_framing(&mut self, size: u64) -> Result<(), ParseError> {
        let framing = self.line_len as u64 + 4;
        let credit = size.saturating_mul(2).saturating_add(16);
        let overhead = (u64::from(self.overhead) + framing).saturating_sub(credit);
        if overhead > u64::from(self.max_overhead) {
            return Err(ParseError::ChunkOverheadTooLarge);
        }
        // At most max_overhead, which is a u32.
        self.overhead = overhead as u32;
        Ok(())
    }

    fn step(&mut self, b: u8) -> Result<(), ParseError> {
        match self.state {
            State::Size => {
                if let Some(d) = hex_value(b) {
                    self.size_line_byte()?;
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(d)))
                        .ok_or(ParseError::ChunkSizeOverflow)?;
                } else if self.line_len == 0 {
                    return Err(ParseError::InvalidChunkSize);
                } else {
                    self.state = State::AfterSize;
                    return self.step(b);
                }
            }
            State::AfterSize => match b {
                b'\r' => self.state = State::SizeLf,
                b' ' | b'\t' => self.ext_byte()?,
                b';' => {
                    self.ext_byte()?;
                    self.state = State::Ext;
                }
                _ => return Err(ParseError::InvalidChunkSize),
            },
            State::Ext => match b {
                b'\r' => self.state = State::SizeLf,
                b'"' => {
                    self.ext_byte()?;
                    self.state = State::ExtQuoted;
                }
                b' ' | b'\t' | b';' | b'=' => self.ext_byte()?,
                _ if is_token(b) => self.ext_byte()?,
                _ => return Err(ParseError::InvalidChunkExtension),
            },
            State::ExtQuoted => match b {
                b'"' => {
                    self.ext_byte()?;
                    self.state = State::Ext;
                }
                b'\\' => {
                    self.ext_byte()?;
                    self.state = State::ExtQuotedEscape;
                }
                b'\t' | b' '..=b'~' | 0x80..=0xff => self.ext_byte()?,
                _ => return Err(ParseError::InvalidChunkExtension),
            },
            State::ExtQuotedEscape => match b {
                b'\t' | b' '..=b'~' | 0x80..=0xff => {
                    self.ext_byte()?;
                    self.state = State::ExtQuoted;
                }
                _ => return Err(ParseError::InvalidChunkExtension),
            },
            State::SizeLf => {
                if b != b'\n' {
                    return Err(ParseError::MissingChunkCrlf);
                }
                let size = self.size;
                self.charge_framing(size)?;
                self.size = 0;
                self.line_len = 0;
                if size == 0 {
                    self.state = State::TrailerStart;
                } else {
                    self.total = self
                        .total
                        .checked_add(size)
                        .ok_or(ParseError::BodyTooLarge)?;
                    if self.total > self.limit {
                        return Err(ParseError::BodyTooLarge);
                    }
                    self.state = State::Data(size);
                }
            }
            State::DataCr => {
                if b != b'\r' {
                    return Err(ParseError::MissingChunkCrlf);
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if b != b'\n' {
                    return Err(ParseError::MissingChunkCrlf);
                }
                self.state = State::Size;
            }
            State::TrailerStart => {
                if b == b'\r' {
                    self.state = State::EndLf;
                } else {
                    self.trailer_byte(b)?;
                    self.state = State::TrailerLine;
                }
            }
            State::TrailerLine => match b {
                b'\r' => self.state = State::TrailerLineLf,
                b'\n' => return Err(ParseError::MissingChunkCrlf),
                _ => self.trailer_byte(b)?,
            },
            State::TrailerLineLf => {
                if b != b'\n' {
                    return Err(ParseError::InvalidTrailer);
                }
                self.trailer_byte(b'\r')?;
                self.trailer_byte(b'\n')?;
                self.state = State::TrailerStart;
            }
            State::EndLf => {
                if b != b'\n' {
                    return Err(ParseError::MissingChunkCrlf);
                }
                self.trailers = Some(self.parse_trailers()?);
                self.trailer.clear();
                self.state = State::End;
            }
            State::Data(_) | State::End | State::Failed(_) => unreachable!("not a framing state"),
        }
        Ok(())
    }

    fn trailer_byte(&mut self, b: u8) -> Result<(), ParseError> {
        if self.trailer.len() >= self.max_trailer {
            return Err(ParseError::TrailersTooLarge);
        }
        self.trailer.push(b);
        Ok(())
    }

    fn parse_trailers(&mut self) -> Result<HeaderMap, ParseError> {
        let mut map = HeaderMap::new();
        if self.trailer.is_empty() {
            return Ok(map);
        }
        self.trailer.extend_from_slice(b"\r\n");
        let mut slots = vec![httparse::EMPTY_HEADER; self.max_trailer_fields];
        match httparse::parse_headers(&self.trailer, &mut slots) {
            Ok(httparse::Status::Complete((n, fields))) if n == self.trailer.len() => {
                for f in fields.iter() {
                    let name = http::HeaderName::from_bytes(f.name.as_bytes())
                        .map_err(|_| ParseError::InvalidTrailer)?;
                    let value = http::HeaderValue::from_bytes(f.value)
                        .map_err(|_| ParseError::InvalidTrailer)?;
                    map.append(name, value);
                }
                Ok(map)
            }
            Err(httparse::Error::TooManyHeaders) => Err(ParseError::TrailersTooLarge),
            _ => Err(ParseError::InvalidTrailer),
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The size line of one chunk (`<hex>\r\n`), kept inline for zero-copy writes.
#[derive(Debug, Clone, Copy)]
pub struct ChunkHeader {
    buf: [u8; 18],
    len: u8,
}

impl ChunkHeader {
    /// The size line for a chunk of `len` bytes.
    pub fn new(len: usize) -> Self {
        let mut buf = [0u8; 18];
        let digits = if len == 0 {
            1
        } else {
            (usize::BITS - len.leading_zeros()).div_ceil(4) as usize
        };
        for (i, slot) in buf[..digits].iter_mut().enumerate() {
            let shift = 4 * (digits - 1 - i);
            *slot = b"0123456789abcdef"[(len >> shift) & 0xf];
        }
        buf[digits] = b'\r';
        buf[digits + 1] = b'\n';
        ChunkHeader {
            buf,
            len: (digits + 2) as u8,
        }
    }

    /// The bytes of the line, CRLF included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// Append `data` as one chunk (`<hex>\r\n<data>\r\n`) to `out`.
///
/// Empty `data` appends nothing: an empty chunk would end the body (Tornado skips them
/// too).
pub fn encode_chunk(data: &[u8], out: &mut BytesMut) {
    if data.is_empty() {
        return;
    }
    let header = ChunkHeader::new(data.len());
    out.reserve(header.as_bytes().len() + data.len() + 2);
    out.put_slice(header.as_bytes());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Append the last chunk and an empty trailer section (`0\r\n\r\n`) to `out`.
pub fn encode_last_chunk(out: &mut BytesMut) {
    out.put_slice(b"0\r\n\r\n");
}

/// Decode a whole chunked body held in one slice, for tests and tools.
///
/// # Errors
/// As [`ChunkedDecoder::decode`], plus [`ParseError::IncompleteMessage`] if the input
/// ends before the last chunk.
pub fn decode_chunked(input: &[u8], limits: &Limits) -> Result<(Bytes, usize), ParseError> {
    let mut dec = ChunkedDecoder::new(limits);
    let mut buf = BytesMut::from(input);
    let mut out = BytesMut::new();
    loop {
        match dec.decode(&mut buf)? {
            Some(Decoded::Data(d)) => out.extend_from_slice(&d),
            Some(Decoded::End) => return Ok((out.freeze(), input.len() - buf.len())),
            None => return Err(ParseError::IncompleteMessage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &[u8]) -> Result<Bytes, ParseError> {
        decode_chunked(s, &Limits::default()).map(|(b, _)| b)
    }

    #[test]
    fn headers_render_hex() {
        assert_eq!(ChunkHeader::new(0).as_bytes(), b"0\r\n");
        assert_eq!(ChunkHeader::new(10).as_bytes(), b"a\r\n");
        assert_eq!(ChunkHeader::new(0x10).as_bytes(), b"10\r\n");
        assert_eq!(
            ChunkHeader::new(usize::MAX).as_bytes().len(),
            2 * std::mem::size_of::<usize>() + 2
        );
    }

    #[test]
    fn strict_sizes() {
        assert_eq!(&dec(b"3\r\nabc\r\n0\r\n\r\n").unwrap()[..], b"abc");
        assert_eq!(
            &dec(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap()[..],
            b"0123456789"
        );
        assert_eq!(
            &dec(b"03 ; a=b ;c=\"x\\\"y\"\r\nabc\r\n0\r\n\r\n").unwrap()[..],
            b"abc"
        );
        assert_eq!(dec(b"1_a\r\n").unwrap_err(), ParseError::InvalidChunkSize);
        assert_eq!(
            dec(b"+3\r\nabc\r\n0\r\n\r\n").unwrap_err(),
            ParseError::InvalidChunkSize
        );
        assert_eq!(
            dec(b" 3\r\nabc\r\n0\r\n\r\n").unwrap_err(),
            ParseError::InvalidChunkSize
        );
        assert_eq!(
            dec(b"0x3\r\nabc\r\n0\r\n\r\n").unwrap_err(),
            ParseError::InvalidChunkSize
        );
        assert_eq!(
            dec(b"3\nabc\r\n0\r\n\r\n").unwrap_err(),
            ParseError::InvalidChunkSize
        );
        assert_eq!(
            dec(b"3\r\nabcX\r\n").unwrap_err(),
            ParseError::MissingChunkCrlf
        );
        assert_eq!(
            dec(b"3\r\nabc\n0\r\n\r\n").unwrap_err(),
            ParseError::MissingChunkCrlf
        );
        assert_eq!(
            dec(b"3\r\r\nabc").unwrap_err(),
            ParseError::MissingChunkCrlf
        );
        assert_eq!(
            dec(b"10000000000000000\r\n").unwrap_err(),
            ParseError::ChunkSizeOverflow
        );
        assert_eq!(
            dec(b"3;a\x00\r\nabc").unwrap_err(),
            ParseError::InvalidChunkExtension
        );
        let long = format!("3;{}\r\nabc\r\n0\r\n\r\n", "a".repeat(2000));
        assert_eq!(
            dec(long.as_bytes()).unwrap_err(),
            ParseError::ChunkLineTooLong
        );
        // Leading zeros are fine as long as the line stays short.
        assert_eq!(
            &dec(b"00000000000000000000003\r\nabc\r\n0\r\n\r\n").unwrap()[..],
            b"abc"
        );
    }

    #[test]
    fn trailers_are_parsed_and_bounded() {
        let mut d = ChunkedDecoder::new(&Limits::default());
        let mut buf = BytesMut::from(&b"1\r\na\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\nNEXT"[..]);
        assert!(matches!(d.decode(&mut buf), Ok(Some(Decoded::Data(_)))));
        assert!(matches!(d.decode(&mut buf), Ok(Some(Decoded::End))));
        assert_eq!(&buf[..], b"NEXT");
        let t = d.take_trailers().unwrap();
        assert_eq!(t["x-sum"], "1");
        assert_eq!(t["x-b"], "2");
        assert_eq!(
            dec(b"0\r\nBad Name: 1\r\n\r\n").unwrap_err(),
            ParseError::InvalidTrailer
        );
        assert_eq!(
            dec(b"0\r\nA: 1\n\r\n").unwrap_err(),
            ParseError::MissingChunkCrlf
        );
        let big = format!("0\r\nX: {}\r\n\r\n", "v".repeat(20_000));
        assert_eq!(
            dec(big.as_bytes()).unwrap_err(),
            ParseError::TrailersTooLarge
        );
    }

    #[test]
    fn body_limit_checked_at_size_line() {
        let limits = Limits {
            max_body_size: 10,
            ..Limits::default()
        };
        let mut d = ChunkedDecoder::new(&limits);
        let mut buf = BytesMut::from(&b"8\r\n12345678\r\n3\r\n"[..]);
        assert!(matches!(d.decode(&mut buf), Ok(Some(Decoded::Data(_)))));
        assert_eq!(d.decode(&mut buf).unwrap_err(), ParseError::BodyTooLarge);
        assert_eq!(d.decode(&mut buf).unwrap_err(), ParseError::BodyTooLarge);
    }
}
