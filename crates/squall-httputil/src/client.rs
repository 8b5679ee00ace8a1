//! The client side of HTTP/1.1, sans-IO: the request encoder and a strict response
//! parser. Tornado's `HTTP1Connection` in client mode (`write_headers` for a request,
//! `_read_message` for a response).
//!
//! - [`encode_request_head`] writes a request line and header fields with the body's
//!   framing header; [`RequestBodyEncoder`] holds the body to that framing.
//! - [`ResponseParser`] reads one response to one request, fed the connection's input
//!   split anywhere: interim `1xx` responses, the final head, the body (Content-Length,
//!   chunked with trailers, or delimited by the end of the connection) and its end.
//!
//! The grammar pieces are the server side's where the two sides agree: bodies are read by
//! [`LengthDecoder`] and the [`ChunkedDecoder`] with its caps, and Content-Length and list
//! headers are read by the same functions. The end of a response head is found here
//! (the request side checks the request line as it arrives, which a status line is not).
//!
//! ```
//! use bytes::BytesMut;
//! use http::{HeaderMap, Method, Uri};
//! use squall_httputil::client::{encode_request_head, RequestFraming, ResponseEvent, ResponseParser};
//! use squall_httputil::Limits;
//!
//! let mut out = BytesMut::new();
//! let mut headers = HeaderMap::new();
//! headers.insert("host", "example.com".parse().unwrap());
//! let target: Uri = "/index.html".parse().unwrap();
//! encode_request_head(&mut out, &Method::GET, &target, &headers, RequestFraming::None)?;
//! assert_eq!(&out[..], b"GET /index.html HTTP/1.1\r\nhost: example.com\r\n\r\n");
//!
//! let mut parser = ResponseParser::new(&Method::GET, Limits::default());
//! let mut input = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..]);
//! let mut body = Vec::new();
//! while let Some(event) = parser.poll(&mut input)? {
//!     match event {
//!         ResponseEvent::Head(head) => assert_eq!(head.status, 200),
//!         ResponseEvent::Data(d) => body.extend_from_slice(&d),
//!         ResponseEvent::End => break,
//!         _ => {}
//!     }
//! }
//! assert_eq!(body, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use smallvec::SmallVec;

use crate::chunked::ChunkedDecoder;
use crate::chunked::{encode_chunk, encode_last_chunk};
use crate::decode::{Decoded, LengthDecoder};
use crate::error::{OutputError, ParseError};
use crate::head::{
    framing, later_minor_as_http11, list_items, parse_content_length, Framing, VersionAt,
};
use crate::headers::latin1_text;
use crate::limits::Limits;
use crate::response::{put_u64, BodyFraming};

/// Header slots kept on the stack; a larger [`Limits::max_headers`] uses the heap.
const STACK_HEADERS: usize = 100;

/// How a request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestFraming {
    /// No body, no framing header.
    None,
    /// `Content-Length: n`, then exactly `n` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`: a body of unknown length, sent in chunks.
    Chunked,
}

/// Append a request line (`METHOD target HTTP/1.1`), `headers` and the framing header
/// for `framing` to `out`, with the empty line that ends the head.
///
/// `target` is written as given: origin-form (`/path?query`) for a server,
/// absolute-form (`http://host/path`) for a proxy, authority-form (`host:443`) for
/// `CONNECT`. Nothing is added beyond the framing header: the caller supplies `Host`
/// (required by HTTP/1.1) and anything else. Header names are written in lower case.
///
/// # Errors
/// [`OutputError::InvalidHeaderValue`] for a value holding CR or LF;
/// [`OutputError::FramingHeaderNotAllowed`] if `headers` holds Content-Length or
/// Transfer-Encoding (the framing is `framing`'s to write);
/// [`OutputError::InvalidContentLength`] for an empty target. On error `out` is left as
/// it was.
pub fn encode_request_head(
    out: &mut BytesMut,
    method: &Method,
    target: &Uri,
    headers: &HeaderMap,
    framing: RequestFraming,
) -> Result<(), OutputError> {
    if headers.contains_key(header::CONTENT_LENGTH)
        || headers.contains_key(header::TRANSFER_ENCODING)
    {
        return Err(OutputError::FramingHeaderNotAllowed);
    }
    for value in headers.values() {
        if memchr::memchr2(b'\r', b'\n', value.as_bytes()).is_some() {
            return Err(OutputError::InvalidHeaderValue);
        }
    }
    let start = out.len();
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    match (
        target.scheme_str(),
        target.authority(),
        target.path_and_query(),
    ) {
        (Some(scheme), Some(auth), pq) => {
            out.put_slice(scheme.as_bytes());
            out.put_slice(b"://");
            out.put_slice(auth.as_str().as_bytes());
            out.put_slice(pq.map_or("/", |p| p.as_str()).as_bytes());
        }
        (None, Some(auth), None) => out.put_slice(auth.as_str().as_bytes()),
        (_, _, Some(pq)) if !pq.as_str().is_empty() => out.put_slice(pq.as_str().as_bytes()),
        _ => {
            out.truncate(start);
            return Err(OutputError::InvalidContentLength);
        }
    }
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.reserve(name.as_str().len() + value.len() + 4);
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            out.put_slice(b"content-length: ");
            put_u64(out, n);
            out.put_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.put_slice(b"\r\n");
    Ok(())
}

/// Holds a request body to its [`RequestFraming`]: counts a Content-Length body, frames
/// a chunked one.
#[derive(Debug, Clone)]
pub struct RequestBodyEncoder {
    framing: RequestFraming,
    written: u64,
    finished: bool,
}

impl RequestBodyEncoder {
    /// An encoder for a body framed as `framing`.
    pub fn new(framing: RequestFraming) -> Self {
        RequestBodyEncoder {
            framing,
            written: 0,
            finished: false,
        }
    }

    /// Body bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Append `data` to `out`, framed (a chunk of a chunked body, or as is).
    ///
    /// # Errors
    /// [`OutputError::BodyNotAllowed`] for bytes when the framing is `None` or after
    /// [`finish`](Self::finish); [`OutputError::ContentLengthExceeded`] past a
    /// Content-Length. Nothing is appended on error.
    pub fn encode(&mut self, data: &[u8], out: &mut BytesMut) -> Result<(), OutputError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.finished {
            return Err(OutputError::BodyNotAllowed);
        }
        match self.framing {
            RequestFraming::None => return Err(OutputError::BodyNotAllowed),
            RequestFraming::Length(n) => {
                if self.written + data.len() as u64 > n {
                    return Err(OutputError::ContentLengthExceeded);
                }
                out.put_slice(data);
            }
            RequestFraming::Chunked => encode_chunk(data, out),
        }
        self.written += data.len() as u64;
        Ok(())
    }

    /// End the body: the last chunk of a chunked body; a check that a Content-Length body
    /// is complete.
    ///
    /// # Errors
    /// [`OutputError::ContentLengthShort`] with the bytes missing.
    pub fn finish(&mut self, out: &mut BytesMut) -> Result<(), OutputError> {
        if self.finished {
            return Ok(());
        }
        match self.framing {
            RequestFraming::Length(n) if self.written < n => {
                return Err(OutputError::ContentLengthShort(n - self.written));
            }
            RequestFraming::Chunked => encode_last_chunk(out),
            _ => {}
        }
        self.finished = true;
        Ok(())
    }
}

/// A parsed response head, with the body's framing decided. Tornado's
/// `ResponseStartLine` with its `HTTPHeaders`.
#[doc(alias = "ResponseStartLine")]
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// `HTTP/1.0` or `HTTP/1.1` (`HTTP/1.2` to `HTTP/1.9` are read as HTTP/1.1, RFC
    /// 9110 §2.5).
    pub version: Version,
    /// The status code (100 to 999).
    pub status: StatusCode,
    /// The reason phrase as sent (possibly empty), decoded as ISO-8859-1 (Latin-1) as
    /// Tornado decodes the head: each byte is one char.
    pub reason: String,
    /// The header fields, in the order received.
    pub headers: HeaderMap,
    /// How the body is delimited: [`BodyFraming::None`] for interim responses, 204, 304,
    /// an answer to HEAD and a successful CONNECT.
    pub body: BodyFraming,
    /// Whether the connection may carry another request after this response: HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`; never
    /// with a body delimited by the end of the connection, nor after `101`.
    pub keep_alive: bool,
}

impl ResponseHead {
    /// True for `1xx` responses other than `101 Switching Protocols`: an interim answer,
    /// with the final one still to come.
    pub fn is_interim(&self) -> bool {
        self.status.is_informational() && self.status != StatusCode::SWITCHING_PROTOCOLS
    }
}

/// What a [`ResponseParser`] yields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ResponseEvent {
    /// An interim `1xx` response (`100 Continue`, `103 Early Hints`...); the final
    /// response follows.
    Interim(ResponseHead),
    /// The final response's head.
    Head(ResponseHead),
    /// A piece of the body, split off the input without a copy.
    Data(Bytes),
    /// The response is complete. Bytes left in the input do not belong to it.
    End,
}

#[derive(Debug)]
enum State {
    Head,
    Length(LengthDecoder),
    /// Boxed: the chunked decoder is several times the size of the other states.
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
    Done,
    Failed(ParseError),
}

/// A strict, incremental parser for the response to one request.
///
/// Feed it the connection's input with [`poll`](Self::poll) as bytes arrive, and call
/// [`eof`](Self::eof) when the peer closes. It knows the request's method, since the
/// answer to `HEAD` has no body whatever its Content-Length says, and a `2xx` to
/// `CONNECT` turns the connection into a tunnel. Strict where laxness lets responses be
/// smuggled or split: Content-Length and Transfer-Encoding together, a malformed or
/// conflicting Content-Length, a transfer coding other than `chunked`, obsolete line
/// folding and whitespace before a colon are errors, as is body framing on `204`.
/// [`Limits::max_head_size`] bounds the interim heads and the final head together, so
/// that a stream of `1xx` responses ends as a head without end does.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    head_end: HeadEnd,
    limits: Limits,
    is_head: bool,
    is_connect: bool,
    keep_alive: bool,
    trailers: Option<HeaderMap>,
    /// Bytes of a body delimited by the close, so far.
    close_body: u64,
    /// Bytes of the interim heads read so far, which count against the head cap.
    interim_bytes: usize,
}

impl ResponseParser {
    /// A parser for the response to a request with `method`, under the caps of
    /// `limits` (`max_head_size`, `max_headers`, `max_body_size`, the chunk caps).
    pub fn new(method: &Method, limits: Limits) -> Self {
        ResponseParser {
            state: State::Head,
            head_end: HeadEnd::default(),
            is_head: *method == Method::HEAD,
            is_connect: *method == Method::CONNECT,
            limits,
            keep_alive: false,
            trailers: None,
            close_body: 0,
            interim_bytes: 0,
        }
    }

    /// Start over for the response to a new request with `method` on the same
    /// connection.
    pub fn reset(&mut self, method: &Method) {
        self.state = State::Head;
        self.head_end = HeadEnd::default();
        self.is_head = *method == Method::HEAD;
        self.is_connect = *method == Method::CONNECT;
        self.keep_alive = false;
        self.trailers = None;
        self.close_body = 0;
        self.interim_bytes = 0;
    }

    /// True once the final response's head has been read.
    pub fn head_received(&self) -> bool {
        !matches!(self.state, State::Head)
    }

    /// True once the whole response has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// True when the body is delimited by the end of the connection and not over yet.
    pub fn reads_until_close(&self) -> bool {
        matches!(self.state, State::UntilClose)
    }

    /// Whether the connection may be reused once the response is done (see
    /// [`ResponseHead::keep_alive`]); false before the head.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The trailer fields of a chunked body, once it has ended (`None` before, for
    /// other framings, or if taken).
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// Consume what `input` holds: the next event, or `None` when `input` has been used
    /// up without completing one. After [`ResponseEvent::End`] every call returns `End`
    /// again and consumes nothing.
    ///
    /// # Errors
    /// A malformed status line ([`ParseError::InvalidStatusLine`], or
    /// [`InvalidVersion`](ParseError::InvalidVersion) /
    /// [`UnsupportedVersion`](ParseError::UnsupportedVersion)); a head over the caps;
    /// a bad header field; bad framing (see the type's documentation); any error of the
    /// chunked decoder; a body over [`Limits::max_body_size`]. After an error every later
    /// call returns the same error.
    pub fn poll(&mut self, input: &mut BytesMut) -> Result<Option<ResponseEvent>, ParseError> {
        let result = self.poll_inner(input);
        if let Err(e) = result {
            self.state = State::Failed(e);
        }
        result
    }

    fn poll_inner(&mut self, input: &mut BytesMut) -> Result<Option<ResponseEvent>, ParseError> {
        match &mut self.state {
            State::Failed(e) => Err(*e),
            State::Done => Ok(Some(ResponseEvent::End)),
            State::Head => {
                // Interim heads share the cap with the final one: a server sending
                // `100 Continue` without end is held to the same bound as one sending
                // header fields without end.
                let room = self.limits.max_head_size.saturating_sub(self.interim_bytes);
                let Some(end) = self.head_end.find(input, room)? else {
                    return Ok(None);
                };
                self.head_end = HeadEnd::default();
                let head = input.split_to(end).freeze();
                let parse = |head: &Bytes| {
                    parse_response_head(head, &self.limits, self.is_head, self.is_connect)
                };
                let parsed = match parse(&head) {
                    // RFC 9110 §2.5: a later minor version of HTTP/1 is read as HTTP/1.1,
                    // as the server reads a request.
                    Err(ParseError::UnsupportedVersion) => {
                        match later_minor_as_http11(&head, VersionAt::StatusLine) {
                            Some(copy) => parse(&Bytes::from(copy))?,
                            None => return Err(ParseError::UnsupportedVersion),
                        }
                    }
                    parsed => parsed?,
                };
                if parsed.is_interim() {
                    self.interim_bytes += end;
                    return Ok(Some(ResponseEvent::Interim(parsed)));
                }
                self.keep_alive = parsed.keep_alive;
                self.state = match parsed.body {
                    BodyFraming::None | BodyFraming::Length(0) => State::Done,
                    BodyFraming::Length(n) => {
                        if n > self.limits.max_body_size {
                            return Err(ParseError::BodyTooLarge);
                        }
                        State::Length(LengthDecoder::new(n))
                    }
                    BodyFraming::Chunked => {
                        State::Chunked(Box::new(ChunkedDecoder::new(&self.limits)))
                    }
                    _ => State::UntilClose,
                };
                Ok(Some(ResponseEvent::Head(parsed)))
            }
            State::Length(dec) => match dec.decode(input) {
                Some(Decoded::Data(d)) => Ok(Some(ResponseEvent::Data(d))),
                Some(_) => {
                    self.state = State::Done;
                    Ok(Some(ResponseEvent::End))
                }
                None => Ok(None),
            },
            State::Chunked(dec) => match dec.decode(input)? {
                Some(Decoded::Data(d)) => Ok(Some(ResponseEvent::Data(d))),
                Some(_) => {
                    self.trailers = dec.take_trailers();
                    self.state = State::Done;
                    Ok(Some(ResponseEvent::End))
                }
                None => Ok(None),
            },
            State::UntilClose => {
                if input.is_empty() {
                    return Ok(None);
                }
                // The whole body counts against the cap, as for the other framings.
                self.close_body = self.close_body.saturating_add(input.len() as u64);
                if self.close_body > self.limits.max_body_size {
                    return Err(ParseError::BodyTooLarge);
                }
                Ok(Some(ResponseEvent::Data(input.split().freeze())))
            }
        }
    }

    /// The peer closed the connection (end of file), with nothing left in the input:
    /// ends a body delimited by the close, and is an error anywhere else before the end.
    ///
    /// # Errors
    /// [`ParseError::IncompleteMessage`] if the response is not complete (no head yet,
    /// or a Content-Length or chunked body cut short); an earlier error again.
    pub fn eof(&mut self) -> Result<ResponseEvent, ParseError> {
        match self.state {
            State::Done => Ok(ResponseEvent::End),
            State::UntilClose => {
                self.state = State::Done;
                Ok(ResponseEvent::End)
            }
            State::Failed(e) => Err(e),
            _ => {
                self.state = State::Failed(ParseError::IncompleteMessage);
                Err(ParseError::IncompleteMessage)
            }
        }
    }
}

/// Where the search for the end of a head resumes, so that a head fed a byte at a time
/// is scanned once.
#[derive(Debug, Default)]
struct HeadEnd {
    scan_from: usize,
}

impl HeadEnd {
    /// One past the empty line that ends the head (CRLF CRLF, or bare LFs as httparse
    /// accepts them), or `None` while the head is incomplete.
    fn find(&mut self, buf: &[u8], max_head_size: usize) -> Result<Option<usize>, ParseError> {
        let mut pos = self.scan_from.min(buf.len());
        loop {
            let Some(i) = memchr::memchr(b'\n', &buf[pos..]) else {
                self.scan_from = buf.len();
                break;
            };
            let nl = pos + i;
            let end = match (buf.get(nl + 1), buf.get(nl + 2)) {
                (Some(b'\n'), _) => Some(nl + 2),
                (Some(b'\r'), Some(b'\n')) => Some(nl + 3),
                (None, _) | (Some(b'\r'), None) => {
                    self.scan_from = nl;
                    break;
                }
                _ => None,
            };
            if let Some(end) = end {
                if end > max_head_size {
                    return Err(ParseError::HeadTooLarge);
                }
                return Ok(Some(end));
            }
            pos = nl + 1;
        }
        if buf.len() > max_head_size {
            return Err(ParseError::HeadTooLarge);
        }
        Ok(None)
    }
}

/// A response field value with each obs-fold (a line break and the whitespace after
/// it) replaced by one space, as Tornado joins continuation lines; the value itself
/// when it has none.
fn unfold(value: Bytes) -> Bytes {
    if memchr::memchr(b'\n', &value).is_none() {
        return value;
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\r' | b'\n' => {
                while i < value.len() && matches!(value[i], b'\r' | b'\n' | b' ' | b'\t') {
                    i += 1;
                }
                while out.last().is_some_and(|b| matches!(b, b' ' | b'\t')) {
                    out.pop();
                }
                out.push(b' ');
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Bytes::from(out)
}

/// Parse a complete response head (status line through the empty line) held in
/// `head`, deciding the body's framing for a request that was (or was not) `HEAD` or
/// `CONNECT`.
fn parse_response_head(
    head: &Bytes,
    limits: &Limits,
    is_head: bool,
    is_connect: bool,
) -> Result<ResponseHead, ParseError> {
    // As many slots as the head has lines (no field takes less than one), within the
    // cap: a head of many fields costs one allocation of its own size, a short one
    // none.
    let lines = memchr::memchr_iter(b'\n', head).count();
    let wanted = limits.max_headers.min(lines);
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap;
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if wanted <= STACK_HEADERS {
        &mut stack[..wanted]
    } else {
        heap = Vec::with_capacity(wanted);
        heap.resize_with(wanted, MaybeUninit::uninit);
        &mut heap
    };
    let mut resp = httparse::Response::new(&mut []);
    // RFC 9112 §5.2: a user agent MUST take an obs-fold in a response as spaces (a
    // server refuses one in a request).
    match httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response_with_uninit_headers(&mut resp, head, slots)
    {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(ParseError::InvalidStatusLine),
        Err(e) => return Err(classify(e, head)),
    }
    let (Some(minor), Some(code)) = (resp.version, resp.code) else {
        return Err(ParseError::InvalidStatusLine);
    };
    let version = if minor == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let status = StatusCode::from_u16(code).map_err(|_| ParseError::InvalidStatusLine)?;
    if code < 100 {
        return Err(ParseError::InvalidStatusLine);
    }
    let reason = match resp.reason {
        Some(r) if !r.is_empty() => latin1_text(r.as_bytes()),
        _ => reason_bytes(head),
    };

    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    let mut cl: SmallVec<[Bytes; 2]> = SmallVec::new();
    let mut te: SmallVec<[Bytes; 2]> = SmallVec::new();
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    for h in resp.headers.iter() {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| ParseError::InvalidHeaderName)?;
        let raw = unfold(head.slice_ref(h.value));
        if name == header::CONTENT_LENGTH {
            cl.push(raw.clone());
        } else if name == header::TRANSFER_ENCODING {
            te.push(raw.clone());
        } else if name == header::CONNECTION {
            for token in list_items(&raw) {
                if token.eq_ignore_ascii_case(b"close") {
                    conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    conn_keep_alive = true;
                }
            }
        }
        let value =
            HeaderValue::from_maybe_shared(raw).map_err(|_| ParseError::InvalidHeaderValue)?;
        headers.append(name, value);
    }

    let no_body_status = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if (status.is_informational() || status == StatusCode::NO_CONTENT)
        && (!te.is_empty() || !cl.is_empty() && parse_content_length(&cl)? != 0)
    {
        // Tornado: "Response with code 204 should not have body".
        return Err(ParseError::UnexpectedBody);
    }
    let tunnel = is_connect && status.is_success();
    let body = if is_head || no_body_status || tunnel {
        // The framing headers describe the representation, not this message; they must
        // still be well-formed, except on a tunnel's 2xx, where RFC 9112 §6.3 says a
        // client MUST ignore them.
        if !cl.is_empty() && te.is_empty() && !tunnel {
            parse_content_length(&cl)?;
        }
        BodyFraming::None
    } else {
        match framing(version, &te, &cl)? {
            Framing::Chunked => BodyFraming::Chunked,
            Framing::Length(n) => BodyFraming::Length(n),
            Framing::Unframed => BodyFraming::CloseDelimited,
        }
    };
    let keep_alive = status != StatusCode::SWITCHING_PROTOCOLS
        && !(is_connect && status.is_success())
        && body != BodyFraming::CloseDelimited
        && if version == Version::HTTP_11 {
            !conn_close
        } else {
            conn_keep_alive && !conn_close
        };
    Ok(ResponseHead {
        version,
        status,
        reason,
        headers,
        body,
        keep_alive,
    })
}

/// The reason phrase when httparse gave none: it leaves it empty when the phrase holds
/// bytes that are not UTF-8 (obs-text), which RFC 9112 allows.
fn reason_bytes(head: &[u8]) -> String {
    let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let line = &head[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // "HTTP/1.1 200 " is 13 bytes.
    line.get(13..).map(latin1_text).unwrap_or_default()
}

/// httparse's coarse error as a precise cause; runs only on the error path.
fn classify(e: httparse::Error, head: &[u8]) -> ParseError {
    match e {
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::HeaderValue => ParseError::InvalidHeaderValue,
        httparse::Error::HeaderName => {
            // Whitespace before a colon and obsolete folding get their own names.
            for line in head.split(|&b| b == b'\n').skip(1) {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    break;
                }
                if matches!(line[0], b' ' | b'\t') {
                    return ParseError::ObsoleteLineFolding;
                }
                if let Some(colon) = line.iter().position(|&b| b == b':') {
                    if matches!(line[..colon].last(), Some(b' ' | b'\t')) {
                        return ParseError::WhitespaceBeforeColon;
                    }
                }
            }
            ParseError::InvalidHeaderName
        }
        httparse::Error::Version => {
            let version = head.split(|&b| b == b' ').next().unwrap_or(b"");
            match version {
                [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                    if major.is_ascii_digit() && minor.is_ascii_digit() =>
                {
                    ParseError::UnsupportedVersion
                }
                _ => ParseError::InvalidVersion,
            }
        }
        _ => ParseError::InvalidStatusLine,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse a whole response held in `input` (ended by the close if `eof`).
    fn parse_all(
        method: &Method,
        input: &[u8],
        eof: bool,
    ) -> Result<(Vec<ResponseHead>, ResponseHead, Vec<u8>, usize), ParseError> {
        let mut p = ResponseParser::new(method, Limits::default());
        let mut buf = BytesMut::from(input);
        let mut interim = Vec::new();
        let mut head = None;
        let mut body = Vec::new();
        loop {
            let ev = match p.poll(&mut buf)? {
                Some(ev) => ev,
                None if eof => p.eof()?,
                None => return Err(ParseError::IncompleteMessage),
            };
            match ev {
                ResponseEvent::Interim(h) => interim.push(h),
                ResponseEvent::Head(h) => head = Some(h),
                ResponseEvent::Data(d) => body.extend_from_slice(&d),
                ResponseEvent::End => break,
            }
        }
        Ok((interim, head.expect("a head"), body, buf.len()))
    }

    #[test]
    fn content_length_body_and_leftover() {
        let (_, h, body, left) = parse_all(
            &Method::GET,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcXY",
            false,
        )
        .unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.reason, "OK");
        assert_eq!(h.body, BodyFraming::Length(3));
        assert!(h.keep_alive);
        assert_eq!(body, b"abc");
        assert_eq!(left, 2);
    }

    #[test]
    fn no_body_for_head_204_304() {
        let (_, h, body, left) = parse_all(
            &Method::HEAD,
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!((h.body, body.len(), left), (BodyFraming::None, 0, 0));
        let (_, h, _, _) = parse_all(
            &Method::GET,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.body, BodyFraming::None);
        let (_, h, _, _) =
            parse_all(&Method::GET, b"HTTP/1.1 204 No Content\r\n\r\n", false).unwrap();
        assert_eq!(h.body, BodyFraming::None);
        assert_eq!(
            parse_all(
                &Method::GET,
                b"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\n\r\nx",
                false
            )
            .unwrap_err(),
            ParseError::UnexpectedBody
        );
    }

    #[test]
    fn framing_fields_of_a_tunnel_are_ignored() {
        for fields in [
            "Content-Length: 5\r\n",
            "Content-Length: nonsense\r\n",
            "Content-Length: 1\r\nContent-Length: 2\r\n",
        ] {
            let wire = format!("HTTP/1.1 200 Connection established\r\n{fields}\r\ntunnel bytes");
            let mut p = ResponseParser::new(&Method::CONNECT, Limits::default());
            let mut buf = BytesMut::from(wire.as_bytes());
            match p.poll(&mut buf) {
                Ok(Some(ResponseEvent::Head(h))) => assert_eq!(h.body, BodyFraming::None),
                other => panic!("{fields:?}: {other:?}"),
            }
            assert!(matches!(p.poll(&mut buf), Ok(Some(ResponseEvent::End))));
            assert_eq!(&buf[..], b"tunnel bytes");
        }
        // A refusal is an ordinary response, its framing checked.
        let mut p = ResponseParser::new(&Method::CONNECT, Limits::default());
        let mut buf = BytesMut::from(&b"HTTP/1.1 407 No\r\nContent-Length: x\r\n\r\n"[..]);
        assert_eq!(
            p.poll(&mut buf).unwrap_err(),
            ParseError::InvalidContentLength
        );
    }

    #[test]
    fn interim_heads_share_the_head_cap() {
        let limits = Limits {
            max_head_size: 1000,
            ..Limits::default()
        };
        // 25 bytes each: 40 fill the cap exactly, the 41st goes past it.
        let storm = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(41);
        let mut p = ResponseParser::new(&Method::GET, limits);
        let mut buf = BytesMut::from(&storm[..]);
        let mut interim = 0;
        let e = loop {
            match p.poll(&mut buf) {
                Ok(Some(ResponseEvent::Interim(_))) => interim += 1,
                Ok(other) => panic!("{other:?}"),
                Err(e) => break e,
            }
        };
        assert_eq!(e, ParseError::HeadTooLarge);
        assert_eq!(interim, 40);
        // A response to the next request starts with the whole cap again.
        p.reset(&Method::GET);
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"[..]);
        assert!(matches!(
            p.poll(&mut buf),
            Ok(Some(ResponseEvent::Interim(_)))
        ));
        assert!(matches!(p.poll(&mut buf), Ok(Some(ResponseEvent::Head(_)))));
    }

    #[test]
    fn interim_then_final() {
        let (interim, h, body, _) = parse_all(
            &Method::POST,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(interim.len(), 2);
        assert_eq!(interim[1].headers["link"], "</a>");
        assert_eq!(h.status, 201);
        assert_eq!(body, b"ok");
    }

    #[test]
    fn close_delimited_and_http10() {
        let (_, h, body, _) = parse_all(
            &Method::GET,
            b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nhello world",
            true,
        )
        .unwrap();
        assert_eq!(h.version, Version::HTTP_10);
        assert_eq!(h.body, BodyFraming::CloseDelimited);
        assert!(!h.keep_alive);
        assert_eq!(body, b"hello world");
        let (_, h, _, _) = parse_all(
            &Method::GET,
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(h.keep_alive);
    }

    #[test]
    fn short_body_is_incomplete() {
        assert_eq!(
            parse_all(
                &Method::GET,
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                true
            )
            .unwrap_err(),
            ParseError::IncompleteMessage
        );
        assert_eq!(
            parse_all(
                &Method::GET,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                true
            )
            .unwrap_err(),
            ParseError::IncompleteMessage
        );
        assert_eq!(
            parse_all(&Method::GET, b"HTTP/1.1 200 O", true).unwrap_err(),
            ParseError::IncompleteMessage
        );
    }

    #[test]
    fn strict_framing() {
        let cases: &[(&[u8], ParseError)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                ParseError::ContentLengthAndTransferEncoding,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
                ParseError::ConflictingContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                ParseError::InvalidContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                ParseError::TransferEncodingNotChunked,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                ParseError::UnsupportedTransferEncoding,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                ParseError::TransferEncodingNotChunked,
            ),
            (
                b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                ParseError::TransferEncodingInHttp10,
            ),
            (
                b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n",
                ParseError::WhitespaceBeforeColon,
            ),
            (b"HTTP/2.0 200 OK\r\n\r\n", ParseError::UnsupportedVersion),
            (b"HTTX/1.1 200 OK\r\n\r\n", ParseError::InvalidVersion),
            (b"HTTP/1.1 20 OK\r\n\r\n", ParseError::InvalidStatusLine),
            (b"HTTP/1.1 099 OK\r\n\r\n", ParseError::InvalidStatusLine),
            (b"garbage\r\n\r\n", ParseError::InvalidVersion),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_all(&Method::GET, input, true).unwrap_err(),
                *want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// RFC 9112 §5.2: a user agent takes each obs-fold as a space (Tornado's
    /// `test_multi_line_headers`), and a head may hold more fields than the stack's
    /// slots, within the cap.
    #[test]
    fn folded_and_many_fields() {
        let (_, h, _, _) = parse_all(
            &Method::GET,
            b"HTTP/1.1 200 OK\r\nX-XSS-Protection: 1;\r\n\tmode=block\r\nA: b \r\n  c\r\n d\r\nContent-Length: 0\r\n\r\n",
            true,
        )
        .unwrap();
        assert_eq!(h.headers["x-xss-protection"], "1; mode=block");
        assert_eq!(h.headers["a"], "b c d");
        let mut many = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n".to_vec();
        for i in 0..150 {
            many.extend_from_slice(format!("Set-Cookie: c{i}=v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let limits = Limits {
            max_headers: 1000,
            ..Limits::default()
        };
        let h = parse_response_head(&Bytes::from(many.clone()), &limits, false, false).unwrap();
        assert_eq!(h.headers.get_all("set-cookie").iter().count(), 150);
        // The cap still holds.
        let err =
            parse_response_head(&Bytes::from(many), &Limits::default(), false, false).unwrap_err();
        assert_eq!(err, ParseError::TooManyHeaders);
    }

    #[test]
    fn connect_success_is_a_tunnel() {
        let (_, h, _, left) = parse_all(
            &Method::CONNECT,
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03",
            false,
        )
        .unwrap();
        assert_eq!(h.body, BodyFraming::None);
        assert!(!h.keep_alive);
        assert_eq!(left, 2);
    }

    #[test]
    fn encoder_frames_bodies() {
        let mut out = BytesMut::new();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("a"));
        let proxy_target: Uri = "http://a:8080/x?y".parse().unwrap();
        encode_request_head(
            &mut out,
            &Method::POST,
            &proxy_target,
            &headers,
            RequestFraming::Chunked,
        )
        .unwrap();
        assert_eq!(
            &out[..],
            b"POST http://a:8080/x?y HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        out.clear();
        let connect: Uri = "a:443".parse().unwrap();
        encode_request_head(
            &mut out,
            &Method::CONNECT,
            &connect,
            &headers,
            RequestFraming::None,
        )
        .unwrap();
        assert!(out.starts_with(b"CONNECT a:443 HTTP/1.1\r\n"));
        headers.insert("content-length", HeaderValue::from_static("1"));
        assert_eq!(
            encode_request_head(
                &mut out,
                &Method::GET,
                &connect,
                &headers,
                RequestFraming::None
            ),
            Err(OutputError::FramingHeaderNotAllowed)
        );

        let mut enc = RequestBodyEncoder::new(RequestFraming::Length(3));
        let mut body = BytesMut::new();
        enc.encode(b"ab", &mut body).unwrap();
        assert_eq!(
            enc.finish(&mut body),
            Err(OutputError::ContentLengthShort(1))
        );
        assert_eq!(
            enc.encode(b"cd", &mut body),
            Err(OutputError::ContentLengthExceeded)
        );
        enc.encode(b"c", &mut body).unwrap();
        enc.finish(&mut body).unwrap();
        assert_eq!(&body[..], b"abc");
        let mut enc = RequestBodyEncoder::new(RequestFraming::Chunked);
        body.clear();
        enc.encode(b"hello", &mut body).unwrap();
        enc.finish(&mut body).unwrap();
        assert_eq!(&body[..], b"5\r\nhello\r\n0\r\n\r\n");
    }
}
