//! Response encoding: the status line and headers, the body framing, and a checker that
//! holds the body to its declared Content-Length.

use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use smallvec::SmallVec;

use crate::chunked::{encode_chunk, encode_last_chunk, ChunkHeader};
use crate::date::DATE_LINE_LEN;
use crate::error::{OutputError, ParseError};
use crate::head::{list_items, parse_decimal};
use crate::headers::{put_name, HeaderCase, HeaderCaseMap};

/// What a response needs to know about the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestInfo {
    /// The request's version: chunked output needs HTTP/1.1; an HTTP/1.0 keep-alive
    /// answer says `Connection: keep-alive`.
    pub version: Version,
    /// A HEAD request gets headers only.
    pub is_head: bool,
    /// Whether the request allows keep-alive ([`RequestHead::keep_alive`](crate::RequestHead::keep_alive)).
    pub keep_alive: bool,
}

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyFraming {
    /// No body may follow (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes, as the response's Content-Length says.
    Length(u64),
    /// Chunked: an HTTP/1.1 request, a status with a body, no Content-Length.
    Chunked,
    /// An HTTP/1.0 request and no Content-Length: the body ends when the connection
    /// closes, so keep-alive is off.
    CloseDelimited,
}

/// Appends `n` in decimal.
pub(crate) fn put_u64(out: &mut BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&buf[i..]);
}

/// What a connection adds to every response head it writes, and how it spells names.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HeadStyle<'a> {
    /// A `Server` value for responses without one.
    pub(crate) server: Option<&'a HeaderValue>,
    /// The spelling of names from the `HeaderMap`.
    pub(crate) case: HeaderCase,
    /// The spellings [`HeaderCase::Preserve`] uses.
    pub(crate) spellings: Option<&'a HeaderCaseMap>,
    /// The caller's reading of the monotonic clock, for the `Date` (see
    /// [`ServerConn::set_clock`](crate::h1::ServerConn::set_clock)).
    pub(crate) now: Option<std::time::Instant>,
}

/// One `name: value` line of a caller's header, spelled as `style` says.
#[inline]
fn put_line(out: &mut BytesMut, name: &HeaderName, value: &[u8], style: HeadStyle<'_>) {
    if style.case == HeaderCase::Lower {
        put_header_line(out, name.as_str().as_bytes(), value);
    } else {
        put_name(out, name, style.case, style.spellings);
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
}

/// Appends one header line, `name: value` and CRLF.
#[inline]
fn put_header_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Whether `v` holds CR or LF, which would end the header line early (a response
/// splitting attack). Eight bytes at a time: a word with no byte below 14 (CR is 13, LF
/// 10) cannot hold either, and most values have none; a word with one (a tab, say) sends
/// the value to `memchr2`.
#[inline]
fn has_cr_or_lf(v: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = v.chunks_exact(8);
    let mut low = false;
    for w in &mut words {
        let mut b = [0; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b);
        // Non-zero exactly when some byte of `x` is below 14.
        if x.wrapping_sub(ONES * 14) & !x & HIGH != 0 {
            low = true;
            break;
        }
    }
    if low {
        return memchr::memchr2(b'\r', b'\n', v).is_some();
    }
    words.remainder().iter().any(|&b| b == b'\r' || b == b'\n')
}

fn put_status_line(out: &mut BytesMut, status: StatusCode) {
    if status == StatusCode::OK {
        out.put_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\n");
}

fn put_date(out: &mut BytesMut) {
    let mut line = [0; DATE_LINE_LEN];
    crate::date::date_line(&mut line, None);
    out.put_slice(&line);
}

/// The most bytes of a `Server` value that go through [`Tail`]; a longer one is written
/// to the output on its own.
const SERVER_INLINE: usize = 40;

/// Room for what the encoder adds after the caller's headers: `Server`, `Date`,
/// `Content-Length` (up to 38 bytes) or `Transfer-Encoding` (28), `Connection` (up to
/// 24) and the empty line.
const TAIL_CAP: usize = 8 + SERVER_INLINE + 2 + DATE_LINE_LEN + 38 + 24 + 2;

/// `00` to `99`, two bytes each.
static DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// The end of a head, gathered on the stack and appended to the output in one copy:
/// the fixed pieces are copied in a few moves each, with one bounds check, instead of
/// one capacity check and one `memcpy` call per piece.
struct Tail {
    buf: [u8; TAIL_CAP],
    len: usize,
}

impl Tail {
    /// The next `N` bytes, to be filled in place.
    #[inline(always)]
    fn next_array<const N: usize>(&mut self) -> &mut [u8; N] {
        let at = self.len;
        self.len += N;
        let slot: &mut [u8] = &mut self.buf[at..at + N];
        slot.try_into().expect("N bytes")
    }

    #[inline(always)]
    fn push(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// `n` in decimal, written in place from its last digits, two at a time.
    #[inline]
    fn push_u64(&mut self, n: u64) {
        let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut i = self.len + digits;
        self.len = i;
        let mut n = n;
        while n >= 100 {
            let d = (n % 100) as usize * 2;
            n /= 100;
            i -= 2;
            self.buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
        }
        if n >= 10 {
            let d = n as usize * 2;
            self.buf[i - 2..i].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
        } else {
            self.buf[i - 1] = b'0' + n as u8;
        }
    }
}

/// Append a status line and `headers` to `out`, with nothing added: no Date, no
/// framing headers, no final empty line. The status line always says `HTTP/1.1`, the
/// highest version this server speaks (RFC 9110 §2.5); `HTTP/1.1 200 OK` is a literal.
///
/// # Errors
/// [`OutputError::InvalidHeaderValue`] if a value holds CR or LF; `out` may then hold a
/// partial head and must be truncated by the caller.
pub fn write_head_lines(
    out: &mut BytesMut,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<(), OutputError> {
    put_status_line(out, status);
    for (name, value) in headers {
        let v = value.as_bytes();
        if has_cr_or_lf(v) {
            return Err(OutputError::InvalidHeaderValue);
        }
        put_header_line(out, name.as_str().as_bytes(), v);
    }
    Ok(())
}

/// Append `HTTP/1.1 100 Continue` and its empty line: the interim answer to
/// `Expect: 100-continue`, sent before reading the body.
pub fn write_continue(out: &mut BytesMut) {
    out.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Append the answer to a request that failed to parse: its status, `Connection: close`,
/// `Content-Length: 0`. Tornado sends a bare `HTTP/1.1 400 Bad Request`; the connection
/// must be closed after it.
pub fn write_error_response(err: ParseError, out: &mut BytesMut) {
    put_status_line(out, err.status());
    put_date(out);
    out.put_slice(b"Connection: close\r\nContent-Length: 0\r\n\r\n");
}

/// The encoder for one response: writes the head, then frames and counts body bytes.
///
/// [`start`](ResponseEncoder::start) applies Tornado's `HTTP1Connection.write_headers`
/// rules: chunked when the request is HTTP/1.1, not HEAD, the status has a body and no
/// Content-Length was given; `Connection: close` on HTTP/1.1 when the connection will
/// not be kept; `Connection: keep-alive` on a kept HTTP/1.0 connection; a `Date` header
/// unless one is given. Then [`write`](ResponseEncoder::write) refuses more bytes than
/// Content-Length and [`finish`](ResponseEncoder::finish) refuses fewer.
///
/// ```
/// use bytes::BytesMut;
/// use http::{HeaderMap, StatusCode, Version};
/// use squall_httputil::{BodyFraming, RequestInfo, ResponseEncoder};
///
/// let req = RequestInfo { version: Version::HTTP_11, is_head: false, keep_alive: true };
/// let mut out = BytesMut::new();
/// let mut enc = ResponseEncoder::start(&req, StatusCode::OK, &HeaderMap::new(), &mut out)?;
/// assert_eq!(enc.framing(), BodyFraming::Chunked);
/// enc.write(b"hello", &mut out)?;
/// enc.finish(&mut out)?;
/// let text = String::from_utf8_lossy(&out);
/// assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(text.ends_with("Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
/// # Ok::<(), squall_httputil::OutputError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResponseEncoder {
    framing: BodyFraming,
    remaining: u64,
    keep_alive: bool,
    finished: bool,
    /// The answer to a HEAD request: body writes are accepted and dropped.
    head: bool,
}

/// What a head written for a prefilled map (see [`Prefilled`](crate::pool::Prefilled))
/// depends on, besides its `Date` line and `Server` value: the status, the map's kind,
/// the request's version, method and keep-alive, and the length to announce.
#[derive(Clone, Copy, PartialEq, Eq)]
struct HeadKey {
    status: StatusCode,
    kind: crate::pool::Prefilled,
    version: Version,
    is_head: bool,
    keep_alive: bool,
    auto_length: Option<u64>,
}

/// The most bytes of a head [`HeadCache`] keeps.
const HEAD_CACHE_CAP: usize = 256;

/// A thread's last head written for a prefilled map, with what it was written for (its
/// key, the generation of its `Date` line) and the encoder it gave. A server answering
/// `Response::text` with the same status and length again and again (a health check,
/// a fixed reply, the benchmarks' hello world) writes each head in one copy instead of
/// piece by piece: about 100 instructions fewer a response.
struct HeadCache {
    key: Option<HeadKey>,
    generation: u64,
    /// The `Server` value it was written with (its first `server_len` bytes; `None`
    /// when written without one).
    server_len: Option<u8>,
    server: [u8; SERVER_INLINE],
    /// The encoder the head gave, as it was before any body was written.
    enc: ResponseEncoder,
    len: usize,
    bytes: [u8; HEAD_CACHE_CAP],
}

impl HeadCache {
    /// Appends the kept head to `out` and returns its encoder, if it was written for
    /// `key` with a `Date` line of `generation`.
    #[inline]
    fn reuse(
        &self,
        key: &HeadKey,
        server: Option<&[u8]>,
        generation: u64,
        out: &mut BytesMut,
    ) -> Option<ResponseEncoder> {
        if self.key.as_ref() != Some(key) || self.generation != generation {
            return None;
        }
        let kept = self.server_len.map(|n| &self.server[..usize::from(n)]);
        if kept != server {
            return None;
        }
        out.extend_from_slice(self.bytes.get(..self.len)?);
        Some(self.enc.clone())
    }

    /// Keeps `head`, written for `key` with a `Date` line of `generation`.
    fn keep(
        &mut self,
        key: HeadKey,
        server: Option<&[u8]>,
        generation: u64,
        head: &[u8],
        enc: &ResponseEncoder,
    ) {
        self.key = None;
        let server_len = match server {
            Some(v) => match self.server.get_mut(..v.len()) {
                Some(dst) => {
                    dst.copy_from_slice(v);
                    Some(v.len() as u8)
                }
                None => return,
            },
            None => None,
        };
        let Some(dst) = self.bytes.get_mut(..head.len()) else {
            return;
        };
        dst.copy_from_slice(head);
        self.server_len = server_len;
        self.len = head.len();
        self.key = Some(key);
        self.generation = generation;
        self.enc = enc.clone();
    }
}

thread_local! {
    static HEADS: std::cell::RefCell<HeadCache> = const {
        std::cell::RefCell::new(HeadCache {
            key: None,
            generation: 0,
            server_len: None,
            server: [0; SERVER_INLINE],
            enc: ResponseEncoder {
                framing: BodyFraming::None,
                remaining: 0,
                keep_alive: false,
                finished: false,
                head: false,
            },
            len: 0,
            bytes: [0; HEAD_CACHE_CAP],
        })
    };
}

impl ResponseEncoder {
    /// Write the head of a response to `req` into `out` and return the encoder for its
    /// body.
    ///
    /// # Errors
    /// [`OutputError::InvalidHeaderValue`] for CR or LF in a value;
    /// [`InvalidContentLength`](OutputError::InvalidContentLength) for a Content-Length
    /// that is not one decimal number; [`FramingHeaderNotAllowed`](OutputError::FramingHeaderNotAllowed)
    /// for a Transfer-Encoding header, or a Content-Length other than 0 on a 1xx or 204
    /// (a `Content-Length: 0` there is left out of the head). On error nothing is left
    /// in `out`.
    pub fn start(
        req: &RequestInfo,
        status: StatusCode,
        headers: &HeaderMap,
        out: &mut BytesMut,
    ) -> Result<ResponseEncoder, OutputError> {
        Self::start_inner(req, status, headers, None, HeadStyle::default(), out)
    }

    /// `start`, with a Content-Length to add when `headers` has none, and the
    /// connection's `style` (a Server value to add when `headers` has none, the
    /// spelling of names).
    pub(crate) fn start_inner(
        req: &RequestInfo,
        status: StatusCode,
        headers: &HeaderMap,
        auto_length: Option<u64>,
        style: HeadStyle<'_>,
        out: &mut BytesMut,
    ) -> Result<ResponseEncoder, OutputError> {
        let mark = out.len();
        let result = Self::start_unguarded(req, status, headers, auto_length, style, out);
        if result.is_err() {
            out.truncate(mark);
        }
        result
    }

    fn start_unguarded(
        req: &RequestInfo,
        status: StatusCode,
        headers: &HeaderMap,
        auto_length: Option<u64>,
        style: HeadStyle<'_>,
        out: &mut BytesMut,
    ) -> Result<ResponseEncoder, OutputError> {
        // The map of `Response::text` and `html` (a pooled one holding only its
        // `Content-Type`): its line is written as it always reads, without walking the
        // map, and the whole head is a function of a few values, so the thread's last
        // such head is reused when they are the same (see [`HeadCache`]).
        let prefilled = match style.case {
            HeaderCase::Lower => crate::pool::Prefilled::of(headers),
            _ => None,
        };
        let Some(kind) = prefilled else {
            return Self::write_head(req, status, headers, None, auto_length, style, out);
        };
        let key = HeadKey {
            status,
            kind,
            version: req.version,
            is_head: req.is_head,
            keep_alive: req.keep_alive,
            auto_length,
        };
        let server = style.server.map(HeaderValue::as_bytes);
        let generation = crate::date::date_generation(style.now);
        let hit = HEADS
            .try_with(|h| h.borrow().reuse(&key, server, generation, out))
            .ok()
            .flatten();
        if let Some(enc) = hit {
            return Ok(enc);
        }
        let mark = out.len();
        let enc = Self::write_head(req, status, headers, prefilled, auto_length, style, out)?;
        let head = &out[mark..];
        let _ = HEADS.try_with(|h| h.borrow_mut().keep(key, server, generation, head, &enc));
        Ok(enc)
    }

    /// Writes the head: `prefilled` is the kind of `headers` when it is a prefilled map
    /// written as lower case.
    fn write_head(
        req: &RequestInfo,
        status: StatusCode,
        headers: &HeaderMap,
        prefilled: Option<crate::pool::Prefilled>,
        auto_length: Option<u64>,
        style: HeadStyle<'_>,
        out: &mut BytesMut,
    ) -> Result<ResponseEncoder, OutputError> {
        let code = status.as_u16();
        if (100..200).contains(&code) && code != 101 {
            // An interim answer leaves the request waiting for its final one (RFC 9110
            // §15.2): as the response, it would answer the next request's place.
            return Err(OutputError::InterimStatus);
        }
        let no_content = (100..200).contains(&code) || code == 204;
        let bodyless = no_content || code == 304 || req.is_head;
        // One pass over the caller's headers: each line is written as it is checked and
        // the framing fields are noted on the way (no hash lookups). Errors are judged
        // after the pass, in a fixed order; the caller truncates `out` on error.
        if status == StatusCode::OK {
            out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        } else {
            put_status_line(out, status);
        }
        let mut transfer_encoding = false;
        let mut length_invalid = false;
        let mut content_length: Option<u64> = None;
        let mut user_close = false;
        // The caller's `Connection` values, written after the pass, once it is known
        // whether the connection stays open.
        let mut user_connection: SmallVec<[&[u8]; 1]> = SmallVec::new();
        let mut length_fields = 0usize;
        let mut has_date = false;
        let mut has_server = false;
        let mut bad_value = false;
        // A prefilled map sets none of the flags below.
        if let Some(kind) = prefilled {
            out.extend_from_slice(kind.header_line());
        } else {
            for (name, value) in headers {
                let v = value.as_bytes();
                let spelled = name.as_str().as_bytes();
                // The five names that matter here all differ in length: one comparison
                // of the length rules out the rest, and picks the one name to compare.
                match spelled.len() {
                    14 if *name == header::CONTENT_LENGTH => {
                        // One field of one decimal number: a sender never sends a list
                        // (`5, 5`) or a second field (RFC 9110 §8.6), which some
                        // clients read as no length at all.
                        length_fields += 1;
                        match parse_decimal(v) {
                            Some(n) if length_fields == 1 => content_length = Some(n),
                            _ => length_invalid = true,
                        }
                    }
                    17 if *name == header::TRANSFER_ENCODING => transfer_encoding = true,
                    10 if *name == header::CONNECTION => {
                        user_close |= list_items(v).any(|t| t.eq_ignore_ascii_case(b"close"));
                        bad_value |= has_cr_or_lf(v);
                        user_connection.push(v);
                        continue;
                    }
                    4 if *name == header::DATE => has_date = true,
                    6 if *name == header::SERVER => has_server = true,
                    _ => {}
                }
                bad_value |= has_cr_or_lf(v);
                if no_content && spelled.len() == 14 && *name == header::CONTENT_LENGTH {
                    // Never sent on a 1xx or 204 (RFC 9110 §8.6); a zero one says what
                    // the status says and is dropped, any other is an error below.
                    continue;
                }
                put_line(out, name, v, style);
            }
        }
        if transfer_encoding {
            return Err(OutputError::FramingHeaderNotAllowed);
        }
        if length_invalid {
            return Err(OutputError::InvalidContentLength);
        }
        if no_content && content_length.is_some_and(|n| n != 0) {
            return Err(OutputError::FramingHeaderNotAllowed);
        }
        if bad_value {
            return Err(OutputError::InvalidHeaderValue);
        }
        let mut write_length = None;
        if content_length.is_none() && !no_content && code != 304 {
            if let Some(n) = auto_length {
                content_length = Some(n);
                write_length = Some(n);
            }
        }
        let framing = if bodyless {
            BodyFraming::None
        } else if let Some(n) = content_length {
            BodyFraming::Length(n)
        } else if req.version == Version::HTTP_11 {
            BodyFraming::Chunked
        } else {
            BodyFraming::CloseDelimited
        };
        let keep_alive = req.keep_alive && !user_close && framing != BodyFraming::CloseDelimited;
        // A 101 switches the connection to another protocol (its `Connection: Upgrade`
        // is the handshake's), so keep-alive does not apply to it.
        let switching = code == 101;
        if keep_alive || user_close || switching {
            // The caller's values stand: they agree with what the server will do.
            for v in &user_connection {
                put_line(out, &header::CONNECTION, v, style);
            }
        } else if !user_connection.is_empty() {
            // The server closes: `close` (RFC 9112 §9.6) in place of the caller's
            // `keep-alive`, which would promise the client a connection that ends; the
            // caller's other options (`Upgrade` on a 426) stay.
            out.put_slice(b"Connection: close");
            for v in &user_connection {
                for token in list_items(v) {
                    if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                        out.put_slice(b", ");
                        out.put_slice(token);
                    }
                }
            }
            out.put_slice(b"\r\n");
        }
        let mut tail = Tail {
            buf: [0; TAIL_CAP],
            len: 0,
        };
        if let Some(v) = style.server.filter(|_| !has_server) {
            // Spelled as a name from a `HeaderMap` is.
            let v = v.as_bytes();
            let spelled = style.case == HeaderCase::Preserve
                && style
                    .spellings
                    .is_some_and(|m| m.spelling(&header::SERVER).is_some());
            if spelled || v.len() > SERVER_INLINE {
                put_name(out, &header::SERVER, style.case, style.spellings);
                out.put_slice(b": ");
                out.put_slice(v);
                out.put_slice(b"\r\n");
            } else {
                tail.push(if style.case == HeaderCase::Lower {
                    b"server: "
                } else {
                    b"Server: "
                });
                tail.push(v);
                tail.push(b"\r\n");
            }
        }
        if !has_date {
            crate::date::date_line(tail.next_array(), style.now);
        }
        if let Some(n) = write_length {
            tail.push(b"Content-Length: ");
            tail.push_u64(n);
            tail.push(b"\r\n");
        }
        if !keep_alive
            && !switching
            && user_connection.is_empty()
            && req.version == Version::HTTP_11
        {
            // The server closes: said so (RFC 9112 §9.6).
            tail.push(b"Connection: close\r\n");
        } else if keep_alive && req.version == Version::HTTP_10 && user_connection.is_empty() {
            tail.push(b"Connection: Keep-Alive\r\n");
        }
        if framing == BodyFraming::Chunked {
            tail.push(b"Transfer-Encoding: chunked\r\n");
        }
        tail.push(b"\r\n");
        out.extend_from_slice(&tail.buf[..tail.len]);
        let remaining = match framing {
            BodyFraming::Length(n) => n,
            _ => 0,
        };
        Ok(ResponseEncoder {
            framing,
            remaining,
            keep_alive,
            finished: false,
            head: req.is_head,
        })
    }

    /// How the body is framed.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the connection may serve another request after this response (before
    /// the caller's own reasons to close, such as an unread request body).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Body bytes still owed under a Content-Length (0 for other framings).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    fn account(&mut self, len: usize) -> Result<(), OutputError> {
        if self.finished {
            return Err(OutputError::NoResponseStarted);
        }
        match self.framing {
            // A HEAD response announces the body it would have had and sends none: the
            // application writes it as for GET, and it is dropped here.
            BodyFraming::None if self.head => Ok(()),
            BodyFraming::None if len > 0 => Err(OutputError::BodyNotAllowed),
            BodyFraming::Length(_) => {
                let len = len as u64;
                if len > self.remaining {
                    return Err(OutputError::ContentLengthExceeded);
                }
                self.remaining -= len;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Append `data` to `out`, framed (a chunk when chunked). For the answer to a HEAD
    /// request nothing is written and the call succeeds.
    ///
    /// # Errors
    /// [`OutputError::ContentLengthExceeded`] past Content-Length (nothing is written);
    /// [`BodyNotAllowed`](OutputError::BodyNotAllowed) for a 1xx, 204 or 304 response;
    /// [`NoResponseStarted`](OutputError::NoResponseStarted) after `finish`.
    pub fn write(&mut self, data: &[u8], out: &mut BytesMut) -> Result<(), OutputError> {
        self.account(data.len())?;
        match self.framing {
            BodyFraming::Chunked => encode_chunk(data, out),
            BodyFraming::None => {}
            _ => out.put_slice(data),
        }
        Ok(())
    }

    /// Frame `data` without copying it: the result is a [`Buf`] of the chunk header (if
    /// any), `data` and the chunk's CRLF, ready for a vectored write.
    ///
    /// # Errors
    /// As [`write`](ResponseEncoder::write).
    pub fn write_bytes(&mut self, data: Bytes) -> Result<EncodedBuf, OutputError> {
        self.account(data.len())?;
        Ok(match self.framing {
            BodyFraming::Chunked if !data.is_empty() => EncodedBuf::chunk(data),
            BodyFraming::Chunked | BodyFraming::None => EncodedBuf::plain(Bytes::new()),
            _ => EncodedBuf::plain(data),
        })
    }

    /// End the body: append the last chunk when chunked, and check that Content-Length
    /// was met.
    ///
    /// # Errors
    /// [`OutputError::ContentLengthShort`] when fewer bytes were written than declared
    /// (the connection must then be closed); [`NoResponseStarted`](OutputError::NoResponseStarted)
    /// when called twice.
    pub fn finish(&mut self, out: &mut BytesMut) -> Result<(), OutputError> {
        if self.finished {
            return Err(OutputError::NoResponseStarted);
        }
        self.finished = true;
        match self.framing {
            BodyFraming::Length(_) if self.remaining > 0 => {
                Err(OutputError::ContentLengthShort(self.remaining))
            }
            BodyFraming::Chunked => {
                encode_last_chunk(out);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A body piece framed without a copy: chunk header, data, CRLF; a [`Buf`] that a
/// vectored write can send as up to three slices.
#[derive(Debug, Clone)]
pub struct EncodedBuf {
    header: ChunkHeader,
    header_pos: usize,
    header_len: usize,
    data: Bytes,
    tail: &'static [u8],
}

impl EncodedBuf {
    fn plain(data: Bytes) -> Self {
        EncodedBuf {
            header: ChunkHeader::new(0),
            header_pos: 0,
            header_len: 0,
            data,
            tail: b"",
        }
    }

    fn chunk(data: Bytes) -> Self {
        let header = ChunkHeader::new(data.len());
        let header_len = header.as_bytes().len();
        EncodedBuf {
            header,
            header_pos: 0,
            header_len,
            data,
            tail: b"\r\n",
        }
    }
}

impl Buf for EncodedBuf {
    fn remaining(&self) -> usize {
        (self.header_len - self.header_pos) + self.data.len() + self.tail.len()
    }

    fn chunk(&self) -> &[u8] {
        if self.header_pos < self.header_len {
            &self.header.as_bytes()[self.header_pos..]
        } else if !self.data.is_empty() {
            &self.data
        } else {
            self.tail
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        let h = (self.header_len - self.header_pos).min(cnt);
        self.header_pos += h;
        cnt -= h;
        let d = self.data.len().min(cnt);
        self.data.advance(d);
        cnt -= d;
        assert!(
            cnt <= self.tail.len(),
            "advance past the end of an EncodedBuf"
        );
        self.tail = &self.tail[cnt..];
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let pieces: [&'a [u8]; 3] = [
            &self.header.as_bytes()[self.header_pos..],
            &self.data,
            self.tail,
        ];
        for piece in pieces {
            if n == dst.len() {
                break;
            }
            if !piece.is_empty() {
                dst[n] = IoSlice::new(piece);
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_numbers_in_decimal() {
        for n in [
            0,
            7,
            9,
            10,
            13,
            99,
            100,
            101,
            999,
            1000,
            12_345,
            1 << 40,
            u64::MAX,
        ] {
            let mut tail = Tail {
                buf: [0; TAIL_CAP],
                len: 0,
            };
            tail.push(b"x");
            tail.push_u64(n);
            assert_eq!(&tail.buf[..tail.len], format!("x{n}").as_bytes());
        }
    }
    use http::HeaderValue;

    fn info(version: Version, is_head: bool, keep_alive: bool) -> RequestInfo {
        RequestInfo {
            version,
            is_head,
            keep_alive,
        }
    }

    fn text(b: &BytesMut) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn numbers() {
        let mut b = BytesMut::new();
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            b.clear();
            put_u64(&mut b, n);
            assert_eq!(text(&b), n.to_string());
        }
    }

    #[test]
    fn length_checked_both_ways() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        let mut out = BytesMut::new();
        let mut enc = ResponseEncoder::start(
            &info(Version::HTTP_11, false, true),
            StatusCode::OK,
            &h,
            &mut out,
        )
        .unwrap();
        assert_eq!(enc.framing(), BodyFraming::Length(3));
        assert_eq!(
            enc.write(b"abcd", &mut out),
            Err(OutputError::ContentLengthExceeded)
        );
        enc.write(b"ab", &mut out).unwrap();
        assert_eq!(
            enc.finish(&mut out),
            Err(OutputError::ContentLengthShort(1))
        );
    }

    #[test]
    fn bodyless_statuses_and_head() {
        let mut out = BytesMut::new();
        for (status, head) in [(204, false), (304, false), (200, true), (101, false)] {
            let status = StatusCode::from_u16(status).unwrap();
            let mut enc = ResponseEncoder::start(
                &info(Version::HTTP_11, head, true),
                status,
                &HeaderMap::new(),
                &mut out,
            )
            .unwrap();
            assert_eq!(enc.framing(), BodyFraming::None);
            let before = out.len();
            if head {
                // HEAD: the body is dropped, not refused.
                enc.write(b"x", &mut out).unwrap();
                assert_eq!(
                    enc.write_bytes(Bytes::from_static(b"x"))
                        .unwrap()
                        .remaining(),
                    0
                );
            } else {
                assert_eq!(enc.write(b"x", &mut out), Err(OutputError::BodyNotAllowed));
            }
            assert_eq!(out.len(), before);
            enc.write(b"", &mut out).unwrap();
            enc.finish(&mut out).unwrap();
        }
        assert!(!text(&out).contains("chunked"));
        // A Content-Length on a 1xx or 204 is never sent (RFC 9110 §8.6): a zero one is
        // left out, any other is refused.
        for status in [StatusCode::NO_CONTENT, StatusCode::SWITCHING_PROTOCOLS] {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            h.insert(header::ETAG, HeaderValue::from_static("\"x\""));
            out.clear();
            let mut enc =
                ResponseEncoder::start(&info(Version::HTTP_11, false, true), status, &h, &mut out)
                    .unwrap();
            assert_eq!(enc.framing(), BodyFraming::None);
            enc.finish(&mut out).unwrap();
            let head = text(&out).to_ascii_lowercase();
            assert!(!head.contains("content-length"), "{head}");
            assert!(head.contains("etag: \"x\"\r\n"), "{head}");
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
            out.clear();
            let e =
                ResponseEncoder::start(&info(Version::HTTP_11, false, true), status, &h, &mut out);
            assert_eq!(e.unwrap_err(), OutputError::FramingHeaderNotAllowed);
            assert!(out.is_empty());
        }
        // A 304 keeps its Content-Length: the length of what a 200 would have sent.
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        out.clear();
        ResponseEncoder::start(
            &info(Version::HTTP_11, false, true),
            StatusCode::NOT_MODIFIED,
            &h,
            &mut out,
        )
        .unwrap();
        assert!(text(&out)
            .to_ascii_lowercase()
            .contains("content-length: 12\r\n"));
    }

    #[test]
    fn http10_keep_alive_and_close_delimited() {
        let mut out = BytesMut::new();
        let enc = ResponseEncoder::start(
            &info(Version::HTTP_10, false, true),
            StatusCode::OK,
            &HeaderMap::new(),
            &mut out,
        )
        .unwrap();
        assert_eq!(enc.framing(), BodyFraming::CloseDelimited);
        assert!(!enc.keep_alive());
        assert!(!text(&out).contains("Connection"));
        out.clear();
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
        let enc = ResponseEncoder::start(
            &info(Version::HTTP_10, false, true),
            StatusCode::OK,
            &h,
            &mut out,
        )
        .unwrap();
        assert!(enc.keep_alive());
        assert!(text(&out).contains("Connection: Keep-Alive\r\n"));
    }

    // RFC 9112 §9.6: a server that closes says so. A caller's `Connection: keep-alive`
    // on a connection the server will close gives way to `close` (it promised the
    // client a connection that ends); one that agrees with the server stands.
    #[test]
    fn a_callers_keep_alive_gives_way_when_the_server_closes() {
        let ka = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONNECTION, HeaderValue::from_static(v));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            h
        };
        for (version, request_keep_alive) in [(Version::HTTP_11, false), (Version::HTTP_10, false)]
        {
            let mut out = BytesMut::new();
            let enc = ResponseEncoder::start(
                &info(version, false, request_keep_alive),
                StatusCode::OK,
                &ka("keep-alive"),
                &mut out,
            )
            .unwrap();
            assert!(!enc.keep_alive());
            let t = text(&out).to_ascii_lowercase();
            assert!(!t.contains("keep-alive"), "{t}");
            assert_eq!(t.matches("connection: close\r\n").count(), 1, "{t}");
        }
        // Kept: the caller's value goes out as it was.
        let mut out = BytesMut::new();
        let enc = ResponseEncoder::start(
            &info(Version::HTTP_10, false, true),
            StatusCode::OK,
            &ka("keep-alive"),
            &mut out,
        )
        .unwrap();
        assert!(enc.keep_alive());
        let t = text(&out).to_ascii_lowercase();
        assert_eq!(t.matches("connection:").count(), 1, "{t}");
        assert!(t.contains("connection: keep-alive\r\n"), "{t}");
        // A 101 keeps the handshake's `Connection: Upgrade` whatever keep-alive says
        // (a server with no_keep_alive, or draining, still switches protocols); a 426
        // on a closing connection keeps its `Upgrade` option beside `close`.
        let upgrade = |status| {
            let mut h = HeaderMap::new();
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            let mut out = BytesMut::new();
            ResponseEncoder::start(&info(Version::HTTP_11, false, false), status, &h, &mut out)
                .unwrap();
            text(&out).to_ascii_lowercase()
        };
        let t = upgrade(StatusCode::SWITCHING_PROTOCOLS);
        assert!(
            t.contains("connection: upgrade\r\n") && !t.contains("close"),
            "{t}"
        );
        let t = upgrade(StatusCode::UPGRADE_REQUIRED);
        assert!(t.contains("connection: close, upgrade\r\n"), "{t}");
        assert_eq!(t.matches("connection:").count(), 1, "{t}");
        // The caller's own close stands, once.
        let mut out = BytesMut::new();
        let enc = ResponseEncoder::start(
            &info(Version::HTTP_11, false, true),
            StatusCode::OK,
            &ka("close"),
            &mut out,
        )
        .unwrap();
        assert!(!enc.keep_alive());
        assert_eq!(
            text(&out)
                .to_ascii_lowercase()
                .matches("connection:")
                .count(),
            1
        );
    }

    // RFC 9110 §8.6: a sender's Content-Length is one decimal number in one field; a
    // list (`5, 5`) or a second field is refused, as some clients read them as no
    // length at all.
    #[test]
    fn a_content_length_list_or_second_field_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5, 5"));
        let mut out = BytesMut::new();
        let r = ResponseEncoder::start(
            &info(Version::HTTP_11, false, true),
            StatusCode::OK,
            &h,
            &mut out,
        );
        assert_eq!(r.err(), Some(OutputError::InvalidContentLength));
        assert!(out.is_empty());
        let mut h = HeaderMap::new();
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        let r = ResponseEncoder::start(
            &info(Version::HTTP_11, false, true),
            StatusCode::OK,
            &h,
            &mut out,
        );
        assert_eq!(r.err(), Some(OutputError::InvalidContentLength));
        assert!(out.is_empty());
    }

    // RFC 9110 §15.2: a 1xx is interim and a final response must follow it; as the
    // response it would answer the next request's place. 101 stays (an upgrade).
    #[test]
    fn an_interim_status_is_not_a_response() {
        for code in [100, 102, 103, 199] {
            let mut out = BytesMut::new();
            let r = ResponseEncoder::start(
                &info(Version::HTTP_11, false, true),
                StatusCode::from_u16(code).unwrap(),
                &HeaderMap::new(),
                &mut out,
            );
            assert_eq!(r.err(), Some(OutputError::InterimStatus), "{code}");
            assert!(out.is_empty());
        }
        let mut out = BytesMut::new();
        assert!(ResponseEncoder::start(
            &info(Version::HTTP_11, false, true),
            StatusCode::SWITCHING_PROTOCOLS,
            &HeaderMap::new(),
            &mut out,
        )
        .is_ok());
    }

    #[test]
    fn close_is_announced_on_http11() {
        let mut out = BytesMut::new();
        let enc = ResponseEncoder::start(
            &info(Version::HTTP_11, false, false),
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            &mut out,
        )
        .unwrap();
        assert!(!enc.keep_alive());
        let t = text(&out);
        assert!(t.starts_with("HTTP/1.1 404 Not Found\r\n"), "{t}");
        assert!(t.contains("Connection: close\r\n"));
        // A response that says close itself ends keep-alive.
        out.clear();
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        let enc = ResponseEncoder::start(
            &info(Version::HTTP_11, false, true),
            StatusCode::OK,
            &h,
            &mut out,
        )
        .unwrap();
        assert!(!enc.keep_alive());
        assert_eq!(text(&out).matches("close").count(), 1);
    }

    #[test]
    fn zero_copy_chunks() {
        let mut out = BytesMut::new();
        let mut enc = ResponseEncoder::start(
            &info(Version::HTTP_11, false, true),
            StatusCode::OK,
            &HeaderMap::new(),
            &mut out,
        )
        .unwrap();
        let mut buf = enc.write_bytes(Bytes::from_static(b"hello world")).unwrap();
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(buf.chunks_vectored(&mut slices), 3);
        let mut flat = Vec::new();
        while buf.has_remaining() {
            let c = buf.chunk().len().min(4);
            flat.extend_from_slice(&buf.chunk()[..c]);
            buf.advance(c);
        }
        assert_eq!(flat, b"b\r\nhello world\r\n");
    }

    #[test]
    fn cr_and_lf_found_anywhere() {
        assert!(!has_cr_or_lf(b""));
        assert!(!has_cr_or_lf(b"text/plain; charset=utf-8"));
        assert!(!has_cr_or_lf(b"a\tb\tc\td\te\tf\tg\th"), "tabs are allowed");
        for len in 1..40 {
            for at in 0..len {
                for bad in [b'\r', b'\n'] {
                    let mut v = vec![b'x'; len];
                    v[at] = bad;
                    assert!(has_cr_or_lf(&v), "{len} {at}");
                }
            }
        }
    }

    /// A pooled `Response::text`/`html` map is written from its ready line: the head
    /// is byte for byte the one the map walk writes (a map built by hand with the
    /// same field), in lower case; in the other styles it is walked.
    #[test]
    fn prefilled_maps_write_what_the_walk_writes() {
        use crate::pool::{take_headers_with, Prefilled};
        let req = info(Version::HTTP_11, false, true);
        let head = |headers: &HeaderMap, case: HeaderCase| {
            let mut out = BytesMut::new();
            let style = HeadStyle {
                server: None,
                case,
                spellings: None,
                now: None,
            };
            ResponseEncoder::start_inner(&req, StatusCode::OK, headers, Some(5), style, &mut out)
                .unwrap();
            text(&out)
        };
        for kind in [Prefilled::TextPlain, Prefilled::TextHtml] {
            let pooled = take_headers_with(kind);
            assert!(Prefilled::of(&pooled).is_some());
            let mut by_hand = HeaderMap::new();
            by_hand.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_str(kind.content_type()).unwrap(),
            );
            let mut other = by_hand.clone();
            other.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain"),
            );
            assert!(Prefilled::of(&other).is_none());
            for case in [HeaderCase::Lower, HeaderCase::Title] {
                let t = head(&pooled, case);
                assert_eq!(t, head(&by_hand, case));
                let line = format!("{}: {}\r\n", "content-type", kind.content_type());
                if case == HeaderCase::Lower {
                    assert!(t.contains(&line), "{t}");
                } else {
                    assert!(
                        t.contains(&format!("Content-Type: {}\r\n", kind.content_type())),
                        "{t}"
                    );
                }
                assert!(t.ends_with("Content-Length: 5\r\n\r\n"), "{t}");
            }
            let walked = head(&other, HeaderCase::Lower);
            assert!(walked.contains("content-type: text/plain\r\n"), "{walked}");
        }
    }

    #[test]
    fn added_lines_in_every_style() {
        let req = info(Version::HTTP_11, false, true);
        let server = HeaderValue::from_static("squall");
        let long = HeaderValue::from_str(&"s".repeat(SERVER_INLINE + 1)).unwrap();
        let mut spellings = HeaderCaseMap::new();
        spellings.insert("SERVER");
        let head = |style: HeadStyle<'_>, length: Option<u64>| {
            let mut out = BytesMut::new();
            ResponseEncoder::start_inner(
                &req,
                StatusCode::OK,
                &HeaderMap::new(),
                length,
                style,
                &mut out,
            )
            .unwrap();
            text(&out)
        };
        let style = |server, case, spellings| HeadStyle {
            server,
            case,
            spellings,
            now: None,
        };
        let t = head(style(Some(&server), HeaderCase::Lower, None), Some(0));
        assert!(
            t.starts_with("HTTP/1.1 200 OK\r\nserver: squall\r\nDate: "),
            "{t}"
        );
        assert!(t.ends_with(" GMT\r\nContent-Length: 0\r\n\r\n"), "{t}");
        let t = head(
            style(Some(&server), HeaderCase::Title, None),
            Some(u64::MAX),
        );
        assert!(
            t.starts_with("HTTP/1.1 200 OK\r\nServer: squall\r\nDate: "),
            "{t}"
        );
        assert!(
            t.ends_with(&format!("Content-Length: {}\r\n\r\n", u64::MAX)),
            "{t}"
        );
        let t = head(
            style(Some(&server), HeaderCase::Preserve, Some(&spellings)),
            None,
        );
        assert!(t.contains("\r\nSERVER: squall\r\nDate: "), "{t}");
        assert!(t.ends_with("Transfer-Encoding: chunked\r\n\r\n"), "{t}");
        let t = head(style(Some(&long), HeaderCase::Preserve, None), Some(10));
        assert!(
            t.contains(&format!("\r\nServer: {}\r\nDate: ", long.to_str().unwrap())),
            "{t}"
        );
        assert!(t.ends_with("Content-Length: 10\r\n\r\n"), "{t}");
        let t = head(style(None, HeaderCase::Lower, None), Some(7));
        assert!(!t.to_ascii_lowercase().contains("server"), "{t}");
        // A head that shares its batch's Date still has one.
        let t = head(
            HeadStyle {
                now: None,
                ..style(None, HeaderCase::Lower, None)
            },
            Some(1),
        );
        assert!(
            t.contains("\r\nDate: ") && t.ends_with(" GMT\r\nContent-Length: 1\r\n\r\n"),
            "{t}"
        );
    }

    #[test]
    fn error_response() {
        let mut out = BytesMut::new();
        write_error_response(ParseError::UriTooLong, &mut out);
        let t = text(&out);
        assert!(t.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{t}");
        assert!(t.ends_with("Connection: close\r\nContent-Length: 0\r\n\r\n"));
    }

    /// The thread's kept head is reused only for the same head: every change of what a
    /// prefilled head depends on (status, kind, version, HEAD, keep-alive, length, the
    /// `Server` value, including one of the same length, the `Date` second) writes the
    /// head the map walk writes, and the same response twice writes it twice the same.
    #[test]
    fn kept_heads_are_reused_only_for_the_same_head() {
        use crate::pool::{take_headers_with, Prefilled};
        let squall = HeaderValue::from_static("squall");
        let other = HeaderValue::from_static("gusty!");
        let long = HeaderValue::from_str(&"s".repeat(SERVER_INLINE + 1)).unwrap();
        let write = |req: &RequestInfo,
                     status: StatusCode,
                     map: &HeaderMap,
                     len: Option<u64>,
                     server: Option<&HeaderValue>,
                     now: Option<std::time::Instant>| {
            let mut out = BytesMut::from(&b"earlier bytes"[..]);
            let style = HeadStyle {
                server,
                case: HeaderCase::Lower,
                spellings: None,
                now,
            };
            let enc = ResponseEncoder::start_inner(req, status, map, len, style, &mut out).unwrap();
            assert!(out.starts_with(b"earlier bytes"));
            (
                String::from_utf8_lossy(&out[13..]).into_owned(),
                enc.framing(),
                enc.keep_alive(),
                enc.remaining(),
            )
        };
        let mut cases = Vec::new();
        for kind in [Prefilled::TextPlain, Prefilled::TextHtml] {
            for status in [
                StatusCode::OK,
                StatusCode::NOT_FOUND,
                StatusCode::NO_CONTENT,
            ] {
                for (version, head, keep) in [
                    (Version::HTTP_11, false, true),
                    (Version::HTTP_11, false, false),
                    (Version::HTTP_11, true, true),
                    (Version::HTTP_10, false, true),
                    (Version::HTTP_10, false, false),
                ] {
                    for len in [Some(13), Some(14), None] {
                        for server in [Some(&squall), Some(&other), Some(&long), None] {
                            cases.push((kind, status, info(version, head, keep), len, server));
                        }
                    }
                }
            }
        }
        for (kind, status, req, len, server) in cases {
            let pooled = take_headers_with(kind);
            let mut by_hand = HeaderMap::new();
            by_hand.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_str(kind.content_type()).unwrap(),
            );
            // By hand: a map the cache does not take (not the pool's value), walked.
            let walked = {
                let mut by_hand = by_hand.clone();
                by_hand.append(http::header::VARY, HeaderValue::from_static("x"));
                let w = write(&req, status, &by_hand, len, server, None);
                (w.0.replace("vary: x\r\n", ""), w.1, w.2, w.3)
            };
            for _ in 0..2 {
                assert_eq!(write(&req, status, &pooled, len, server, None), walked);
                assert_eq!(write(&req, status, &by_hand, len, server, None), walked);
            }
        }
        // A new second: a kept head is not reused past its Date line's second.
        let req = info(Version::HTTP_11, false, true);
        let map = take_headers_with(Prefilled::TextPlain);
        let first = write(&req, StatusCode::OK, &map, Some(5), None, None).0;
        crate::date::mark_new_second();
        let next = write(&req, StatusCode::OK, &map, Some(5), None, None).0;
        assert_ne!(first, next);
        assert!(next.contains("Date: #"), "{next}");
    }
}
