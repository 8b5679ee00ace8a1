//! Request-head parsing: find the end of the head in a growing buffer, parse it with
//! `httparse`, validate it with RFC 9112's rules and decide the body's framing.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Uri, Version};
use smallvec::SmallVec;

use crate::error::ParseError;
use crate::limits::Limits;
use crate::view::{slice, Field, Fields, ParsedUri, View, ViewParts};

/// Header slots kept on the stack; a larger [`Limits::max_headers`] uses the heap.
const STACK_HEADERS: usize = 100;

/// The most empty lines (CRLF or LF) skipped before a request line. RFC 9112 §2.2 asks a
/// server to ignore at least one; a few more cover clients that end a body with an extra
/// CRLF. More is [`ParseError::TooManyEmptyLines`], so a client cannot hold a connection
/// by trickling newlines.
pub const MAX_EMPTY_LINES: usize = 8;

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyKind {
    /// No Content-Length and no Transfer-Encoding: the request has no body.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl BodyKind {
    /// True when the body is known to be empty (`None` or `Length(0)`).
    pub fn is_empty(self) -> bool {
        matches!(self, BodyKind::None | BodyKind::Length(0))
    }
}

/// A parsed and validated request head, with its framing decided.
///
/// The head is a **view into its own bytes**: the request line and header fields stay
/// where they arrived (the connection's read buffer, shared without a copy), and
/// [`path`](Self::path), [`query`](Self::query) and the header lookups
/// ([`header`](Self::header), [`header_bytes`](Self::header_bytes),
/// [`header_values`](Self::header_values), [`fields`](Self::fields)) read them in place.
/// A [`HeaderMap`] ([`headers`](Self::headers)) and a [`Uri`] ([`uri`](Self::uri)) are
/// built the first time someone asks for them, so a request whose handler only looks at
/// its path costs no map.
///
/// Tornado splits this over `RequestStartLine` (method, path, version) and
/// `HTTPHeaders`; the framing fields are what `HTTP1Connection` works out in
/// `_read_message` and `_can_keep_alive`.
///
/// ```
/// use squall_httputil::{parse_request_head, Limits};
///
/// let raw = b"GET /search?q=rust HTTP/1.1\r\nHost: example.com\r\nAccept: text/html\r\n\r\n";
/// let (head, _) = parse_request_head(raw, &Limits::default())?.expect("complete");
/// assert_eq!(head.path(), "/search");
/// assert_eq!(head.query(), "q=rust");
/// assert_eq!(head.header("accept"), Some("text/html"));
/// assert_eq!(head.fields().next(), Some(("Host", &b"example.com"[..])));
/// // The map, when wanted, is built on demand.
/// assert_eq!(head.headers()[http::header::HOST], "example.com");
/// # Ok::<(), squall_httputil::ParseError>(())
/// ```
#[doc(alias = "RequestStartLine")]
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The method (`GET`, `POST`, or any token).
    pub method: Method,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// How the body is framed.
    pub body: BodyKind,
    /// Whether the request allows the connection to stay open after the response:
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`
    /// and a body that is framed (Content-Length) or a GET or HEAD, as Tornado's
    /// `_can_keep_alive`.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request: the client waits for an interim
    /// `100 Continue` before sending the body.
    pub expect_continue: bool,
    view: View,
}

/// The lookups every request type shares, delegated to its [`View`].
macro_rules! view_methods {
    () => {
        /// The request-target as a `Uri` (origin-form `/a?b`, absolute-form, `*`),
        /// built on first use. Bytes the `Uri` grammar refuses but the parser takes
        /// (`"<>`, the backquote, UTF-8 past ASCII) are `%`-escaped in it.
        pub fn uri(&self) -> &http::Uri {
            self.view.uri()
        }

        /// The request-target as sent (Tornado's `uri`: `/a?b`, `*`, or an absolute
        /// URI).
        pub fn target(&self) -> &str {
            self.view.target()
        }

        /// The request-target as sent, as bytes: [`target`](Self::target) without its
        /// UTF-8 check, for a caller that copies it on (a log line, a proxied request).
        pub fn target_raw(&self) -> &[u8] {
            self.view.target_raw()
        }

        /// The request-target as sent, sharing the request's bytes: to keep it past the
        /// request, as an access log does, without a copy.
        pub fn target_bytes(&self) -> bytes::Bytes {
            self.view.target_bytes()
        }

        /// The path of the request-target (`/a/b` for `/a/b?c`), as sent: `%`-escapes
        /// are not decoded, and UTF-8 sent raw stays as it came.
        #[inline]
        pub fn path(&self) -> &str {
            self.view.path()
        }

        /// The query of the request-target without `?`, or `""`.
        pub fn query(&self) -> &str {
            self.view.query()
        }

        /// The header fields as a map, built on first use (values share the request's
        /// bytes). For a lookup or two, [`header`](Self::header) reads the fields in
        /// place instead.
        pub fn headers(&self) -> &http::HeaderMap {
            self.view.headers()
        }

        /// The header map, to change it; from then on every lookup reads the map.
        pub fn headers_mut(&mut self) -> &mut http::HeaderMap {
            self.view.headers_mut()
        }

        /// The first value of the header `name` (any case) as text; `None` when absent
        /// or not UTF-8 (see [`header_bytes`](Self::header_bytes)).
        pub fn header(&self, name: impl AsRef<str>) -> Option<&str> {
            self.header_bytes(name)
                .and_then(|v| std::str::from_utf8(v).ok())
        }

        /// The first value of the header `name` (any case), as sent.
        pub fn header_bytes(&self, name: impl AsRef<str>) -> Option<&[u8]> {
            self.view.first(name.as_ref())
        }

        /// Every value of the header `name` (any case), in order.
        pub fn header_values<'a>(&'a self, name: &'a str) -> crate::view::HeaderValues<'a> {
            self.view.values(name)
        }

        /// Every header field as (name as sent, value), in order. (After
        /// [`headers_mut`](Self::headers_mut), the map's fields, names in lower case.)
        pub fn fields(&self) -> crate::view::FieldIter<'_> {
            self.view.fields()
        }

        /// How many header fields there are.
        pub fn field_count(&self) -> usize {
            self.view.len()
        }
    };
}
pub(crate) use view_methods;

impl RequestHead {
    /// A head from its parts, as a client or a test builds one (no bytes behind it:
    /// lookups read `headers`). The framing is taken as given.
    pub fn from_parts(
        method: Method,
        uri: Uri,
        version: Version,
        headers: HeaderMap,
        body: BodyKind,
        keep_alive: bool,
    ) -> RequestHead {
        RequestHead {
            method,
            version,
            body,
            keep_alive,
            expect_continue: false,
            view: View::built(uri, headers),
        }
    }

    view_methods!();

    /// The view behind the lookups, for the owned request built from this head.
    pub(crate) fn into_view(self) -> (Method, Version, View) {
        (self.method, self.version, self.view)
    }
}

/// Where a complete head sits in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadSpan {
    /// Bytes of leading empty lines skipped before the request line.
    pub start: usize,
    /// One past the empty line that ends the head: the first byte of the body or of the
    /// next request.
    pub end: usize,
}

/// An incremental request-head parser for a buffer that grows.
///
/// Call [`parse`](HeadParser::parse) (or [`parse_bytes`](HeadParser::parse_bytes)) each
/// time more bytes arrive, with the same buffer start, until it returns a head. The
/// search for the end of the head resumes where the previous call stopped, so feeding a
/// head one byte at a time costs linear time, and `httparse` runs once, on the complete
/// head. Leading empty lines (CRLF or LF) before the request line are skipped, as
/// Tornado does between pipelined requests, up to [`MAX_EMPTY_LINES`], and count against
/// [`Limits::max_head_size`].
///
/// The request line is checked as its bytes arrive: the method token, one space, a
/// request-target of visible ASCII without `#`, one space, `HTTP/<digit>.<digit>`, the
/// line end. The first byte that cannot continue a request line is an error at once, so
/// binary noise or a TLS handshake sent to a plain-text port is refused at its first
/// byte instead of waiting for a head that will never end.
#[derive(Debug, Clone, Default)]
pub struct HeadParser {
    /// Leading empty-line bytes already confirmed.
    start: usize,
    /// Leading empty lines skipped so far.
    empty_lines: usize,
    /// Where the search for the end of the head resumes.
    scan_from: usize,
    /// Whether the end of the request line has been seen.
    request_line_done: bool,
    /// The request-line check: where it resumes (0 before it began) and in which part
    /// of the line.
    line_pos: usize,
    line_state: LineState,
}

/// Where the request-line check stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum LineState {
    /// The first byte of the method.
    #[default]
    MethodStart,
    /// In the method token.
    Method,
    /// The first byte of the request-target.
    TargetStart,
    /// In the request-target.
    Target,
    /// The `n`th byte of `HTTP/d.d`.
    Version(u8),
    /// After the version: CR or LF.
    LineEnd,
    /// After CR: LF.
    Lf,
}

/// Token bytes (RFC 9110 §5.6.2): the method's.
const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    t
}
static TOKEN: [bool; 256] = token_table();

/// What a request-target may hold: visible ASCII but `#` (a fragment is never sent),
/// and the bytes past ASCII that UTF-8 uses, which an origin-form target may hold
/// (the whole target is checked as UTF-8 with its end: [`origin_form_query`]).
fn target_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xbf | 0xc2..=0xf4) && b != b'#'
}

impl LineState {
    /// Check `line` (the next bytes of a request line) from this state. `Ok(Some(i))`
    /// when `line[i]` is the LF that ends the request line; `Ok(None)` when all of
    /// `line` fits and more is needed.
    fn scan(&mut self, line: &[u8]) -> Result<Option<usize>, ParseError> {
        use LineState::*;
        let mut i = 0;
        if *self == MethodStart && line.starts_with(b"GET /") {
            // The usual request needs no byte-by-byte walk through its method.
            *self = TargetStart;
            i = 4;
        }
        while i < line.len() {
            let b = line[i];
            match *self {
                MethodStart | Method if TOKEN[usize::from(b)] => *self = Method,
                MethodStart => return Err(ParseError::InvalidMethod),
                Method => match b {
                    b' ' => *self = TargetStart,
                    b'\r' | b'\n' => return Err(ParseError::InvalidRequestLine),
                    _ => return Err(ParseError::InvalidMethod),
                },
                TargetStart | Target if target_byte(b) => {
                    *self = Target;
                    // The rest of the target in one tight loop.
                    let run = line[i + 1..].iter().position(|&b| !target_byte(b));
                    i += run.unwrap_or(line.len() - i - 1);
                }
                Target if b == b' ' => {
                    if line[i + 1..].starts_with(b"HTTP/1.1\r\n") {
                        // The usual version and line end, checked in one comparison.
                        return Ok(Some(i + 10));
                    }
                    *self = Version(0);
                }
                TargetStart | Target => {
                    return Err(match b {
                        b' ' | b'\r' | b'\n' => ParseError::InvalidRequestLine,
                        _ => ParseError::InvalidTarget,
                    })
                }
                Version(n) => {
                    let ok = match n {
                        0..=4 => b == b"HTTP/"[usize::from(n)],
                        5 | 7 => b.is_ascii_digit(),
                        _ => b == b'.',
                    };
                    if !ok {
                        return Err(ParseError::InvalidVersion);
                    }
                    *self = if n == 7 { LineEnd } else { Version(n + 1) };
                }
                LineEnd if b == b'\r' => *self = Lf,
                LineEnd | Lf if b == b'\n' => return Ok(Some(i)),
                LineEnd | Lf => return Err(ParseError::InvalidRequestLine),
            }
            i += 1;
        }
        Ok(None)
    }
}

impl HeadParser {
    /// A parser at the start of a head.
    pub fn new() -> Self {
        HeadParser::default()
    }

    /// Forget any progress: the next call starts a new head.
    pub fn reset(&mut self) {
        *self = HeadParser::default();
    }

    /// Find the end of the head in `buf` without parsing it.
    ///
    /// Returns `Ok(None)` when the head is not complete yet. After a `Some`, the parser
    /// is reset for the next head (whose buffer starts at `span.end`).
    ///
    /// # Errors
    /// [`ParseError::HeadTooLarge`] once the unfinished head outgrows
    /// [`Limits::max_head_size`]; [`ParseError::UriTooLong`] once an unfinished request
    /// line outgrows [`Limits::max_uri_len`] plus 64 bytes.
    pub fn find_end(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<HeadSpan>, ParseError> {
        if self.start > buf.len() || self.scan_from > buf.len() || self.line_pos > buf.len() {
            // Not the buffer of the previous call: start over rather than misread it.
            self.reset();
        }
        let mut start = self.start;
        if !self.request_line_done {
            if self.line_pos == 0 {
                // Skip leading empty lines; they are consumed with the head.
                loop {
                    let len = match buf.get(start) {
                        Some(b'\n') => 1,
                        Some(b'\r') => match buf.get(start + 1) {
                            Some(b'\n') => 2,
                            Some(_) => break,
                            None => {
                                self.start = start;
                                return self.incomplete(buf, start, limits);
                            }
                        },
                        _ => break,
                    };
                    self.empty_lines += 1;
                    if self.empty_lines > MAX_EMPTY_LINES {
                        return Err(ParseError::TooManyEmptyLines);
                    }
                    start += len;
                }
                self.start = start;
                if start >= buf.len() {
                    return self.incomplete(buf, start, limits);
                }
                self.line_pos = start;
            }
            let from = self.line_pos;
            match self.line_state.scan(&buf[from..])? {
                None => {
                    crate::count_work!(buf.len() - from);
                    self.line_pos = buf.len();
                    return self.incomplete(buf, start, limits);
                }
                Some(i) => {
                    crate::count_work!(i);
                    let nl = from + i;
                    if nl - start > limits.max_uri_len.saturating_add(64) {
                        return Err(ParseError::UriTooLong);
                    }
                    self.request_line_done = true;
                    self.scan_from = nl;
                }
            }
        }
        let mut pos = self.scan_from.max(start);
        loop {
            let Some(i) = memchr::memchr(b'\n', &buf[pos..]) else {
                crate::count_work!(buf.len() - pos);
                self.scan_from = buf.len();
                return self.incomplete(buf, start, limits);
            };
            crate::count_work!(i + 1);
            let nl = pos + i;
            let end = match buf.get(nl + 1) {
                Some(b'\n') => nl + 2,
                Some(b'\r') => match buf.get(nl + 2) {
                    Some(b'\n') => nl + 3,
                    Some(_) => {
                        pos = nl + 1;
                        continue;
                    }
                    None => {
                        self.scan_from = nl;
                        return self.incomplete(buf, start, limits);
                    }
                },
                Some(_) => {
                    pos = nl + 1;
                    continue;
                }
                None => {
                    self.scan_from = nl;
                    return self.incomplete(buf, start, limits);
                }
            };
            if end > limits.max_head_size {
                return Err(ParseError::HeadTooLarge);
            }
            self.reset();
            return Ok(Some(HeadSpan { start, end }));
        }
    }

    fn incomplete(
        &self,
        buf: &[u8],
        start: usize,
        limits: &Limits,
    ) -> Result<Option<HeadSpan>, ParseError> {
        // An unfinished request line past its limit is named first (414): it is the
        // target that is too long, however much of it arrived in one read.
        if !self.request_line_done && buf.len() - start > limits.max_uri_len.saturating_add(64) {
            return Err(ParseError::UriTooLong);
        }
        if buf.len() > limits.max_head_size {
            return Err(ParseError::HeadTooLarge);
        }
        Ok(None)
    }

    /// Parse a request head from the front of `buf`, copying the head once.
    ///
    /// Returns the head and the number of bytes it took (leading empty lines included);
    /// `Ok(None)` when the head is not complete yet. Between calls that return `None`,
    /// `buf` must keep the same start (it may grow).
    ///
    /// # Errors
    /// Any [`ParseError`] a head can have; see [`parse_request_head`].
    pub fn parse(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<(RequestHead, usize)>, ParseError> {
        let Some((parsed, start, end)) = self.parse_in(buf, limits)? else {
            return Ok(None);
        };
        let raw = Bytes::copy_from_slice(&buf[start..end]);
        Ok(Some((parsed.into_head(raw), end)))
    }

    /// Parse a request head from the front of `buf`, splitting it off without a copy:
    /// the head keeps the buffer's memory (shared), and its lookups read it in place.
    ///
    /// On success the head's bytes (leading empty lines included) have been removed
    /// from `buf`; on `Ok(None)` nothing was removed.
    ///
    /// # Errors
    /// Any [`ParseError`] a head can have; see [`parse_request_head`].
    #[inline]
    pub fn parse_bytes(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<RequestHead>, ParseError> {
        let Some((parsed, start, end)) = self.parse_in(buf, limits)? else {
            return Ok(None);
        };
        let mut raw = buf.split_to(end).freeze();
        if start > 0 {
            let _ = raw.split_to(start);
        }
        Ok(Some(parsed.into_head(raw)))
    }

    /// The head at the front of `buf`, with where it starts (after empty lines) and
    /// ends.
    ///
    /// A head that arrived whole, with no empty line before it, is parsed in one
    /// httparse pass that finds its end and its fields at once. Anything short of
    /// that (a head still arriving, empty lines first, a malformed head) takes the
    /// careful path: the request line checked byte by byte as it grows, the end found
    /// incrementally, then the same analysis on the complete head (which also words
    /// the error).
    #[inline]
    fn parse_in(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<(Analyzed, usize, usize)>, ParseError> {
        if buf.is_empty() {
            // Nothing to parse (the usual end of a batch): no progress is kept for it.
            self.reset();
            return Ok(None);
        }
        if self.is_fresh() && !matches!(buf.first(), Some(b'\r' | b'\n')) {
            if let Ok(Some(parsed)) = analyze(buf, limits, false) {
                let end = parsed.len;
                return Ok(Some((parsed, 0, end)));
            }
        }
        let Some(span) = self.find_end(buf, limits)? else {
            return Ok(None);
        };
        let parsed = analyze(&buf[span.start..span.end], limits, true)?
            .ok_or(ParseError::InvalidRequestLine)?;
        Ok(Some((parsed, span.start, span.end)))
    }

    /// No progress is kept from an earlier call.
    fn is_fresh(&self) -> bool {
        self.start == 0 && self.line_pos == 0 && !self.request_line_done && self.empty_lines == 0
    }
}

/// Parse a request head from the front of `buf` in one call.
///
/// Returns the head and the bytes it took, or `Ok(None)` if the buffer does not hold a
/// whole head yet. This rescans `buf` from its start on every call; when the buffer
/// grows a little at a time, keep a [`HeadParser`] instead.
///
/// # Errors
/// 400 for a malformed request line or header, whitespace before a colon, obsolete line
/// folding, bad bytes, a missing, repeated or invalid Host on HTTP/1.1, both
/// Content-Length and Transfer-Encoding, a malformed or conflicting Content-Length, a
/// Transfer-Encoding that does not end in a single `chunked`, Transfer-Encoding on
/// HTTP/1.0; 414 for a long request-target; 417 for an `Expect` other than
/// `100-continue`; 431 for too many or too large headers; 501 for a transfer coding
/// other than `chunked`; 505 for a version other than HTTP/1 (a later minor version,
/// `HTTP/1.2` to `HTTP/1.9`, is read as HTTP/1.1, RFC 9110 §2.5).
///
/// ```
/// use squall_httputil::{parse_request_head, BodyKind, Limits};
///
/// let buf = b"\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello";
/// let (head, used) = parse_request_head(buf, &Limits::default())?.expect("complete");
/// assert_eq!(head.method, http::Method::POST);
/// assert_eq!(head.path(), "/upload");
/// assert_eq!(head.body, BodyKind::Length(5));
/// assert!(head.keep_alive);
/// assert_eq!(&buf[used..], b"hello");
///
/// let bad = b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
/// let err = parse_request_head(bad, &Limits::default()).unwrap_err();
/// assert_eq!(err.status(), 400);
/// # Ok::<(), squall_httputil::ParseError>(())
/// ```
pub fn parse_request_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    HeadParser::new().parse(buf, limits)
}

/// A head analyzed in place: everything a [`RequestHead`] holds but its bytes.
pub(crate) struct Analyzed {
    method: HeadMethod,
    version: Version,
    body: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
    parts: ViewParts,
    /// The head's length: request line through the empty line.
    len: usize,
}

impl Analyzed {
    /// The head, given its bytes (`len` of them, the offsets' base).
    #[inline]
    fn into_head(self, raw: Bytes) -> RequestHead {
        RequestHead {
            method: self.method.into_method(),
            version: self.version,
            body: self.body,
            keep_alive: self.keep_alive,
            expect_continue: self.expect_continue,
            view: View::parsed(raw, self.parts),
        }
    }
}

/// The offsets of `part` (a slice of `base`) in `base`.
fn span(base: &[u8], part: &[u8]) -> (u32, u32) {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    (start as u32, (start + part.len()) as u32)
}

/// Parse and validate the head at the front of `buf` (the request line first: no
/// empty line before it) in one pass, recording where its target and fields are: the
/// common head by [`scan_common`], any other by `httparse`.
///
/// `Ok(None)` when the head is not complete. With `whole`, `buf` is exactly one head
/// (its end found by [`HeadParser::find_end`]): anything else is an error, worded by
/// [`classify_httparse_error`]. Without it, any httparse error is `Ok(None)`-like
/// for the caller (it falls back to the careful path), reported as `Err`.
pub(crate) fn analyze(
    buf: &[u8],
    limits: &Limits,
    whole: bool,
) -> Result<Option<Analyzed>, ParseError> {
    // With `whole`, the head is all of `buf`.
    let common = scan_common(buf, limits).filter(|l| !whole || l.len == buf.len());
    let line = match common {
        Some(line) => line,
        None => match tokenize(buf, limits, whole) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            // RFC 9110 §2.5: a later minor version of HTTP/1 is served as HTTP/1.1.
            Err(ParseError::UnsupportedVersion) => {
                match later_minor_as_http11(buf, VersionAt::RequestLine) {
                    Some(copy) => match tokenize(&copy, limits, whole)? {
                        Some(line) => line,
                        None => return Ok(None),
                    },
                    None => return Err(ParseError::UnsupportedVersion),
                }
            }
            Err(e) => return Err(e),
        },
    };
    check_fields(buf, line).map(Some)
}

/// Where the first line of a head holds its HTTP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionAt {
    /// At the end of a request line (`GET / HTTP/1.1`).
    RequestLine,
    /// At the start of a status line (`HTTP/1.1 200 OK`).
    StatusLine,
}

/// A copy of `head` whose first line (a request line or a status line, as `at` says)
/// says `HTTP/1.1` where it said `HTTP/1.2` to `HTTP/1.9` (the same length, so every
/// offset found in the copy holds for `head`); `None` for any other version. RFC 9110
/// §2.5: a message of a later minor version of HTTP/1 is processed as one of the
/// highest minor version the recipient supports, which is 1.1 (httparse knows only
/// 1.0 and 1.1).
pub(crate) fn later_minor_as_http11(head: &[u8], at: VersionAt) -> Option<Vec<u8>> {
    let start = head.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let end = start + head[start..].iter().position(|&b| b == b'\n')?;
    let line_end = if end > start && head[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    // The version's first byte: after a space at the end of a request line, before
    // one at the start of a status line.
    let version = match at {
        VersionAt::RequestLine => line_end
            .checked_sub(8)
            .filter(|&v| v > start && head[v - 1] == b' ')?,
        VersionAt::StatusLine => Some(start).filter(|&v| head.get(v + 8) == Some(&b' '))?,
    };
    match head.get(version..version + 8)? {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if (b'2'..=b'9').contains(minor) => {
            let mut copy = head.to_vec();
            copy[version + 7] = b'1';
            Some(copy)
        }
        _ => None,
    }
}

/// `httparse`'s pass over a head: its request line checked and its fields found, for
/// [`analyze`] (which words what it returns).
fn tokenize(buf: &[u8], limits: &Limits, whole: bool) -> Result<Option<Line>, ParseError> {
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap;
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap = Vec::with_capacity(limits.max_headers);
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(n)) if !whole || n == buf.len() => n,
        Ok(httparse::Status::Partial) if !whole => return Ok(None),
        Ok(_) => return Err(ParseError::InvalidRequestLine),
        Err(e) => return Err(classify_httparse_error(e, buf)),
    };
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(ParseError::InvalidRequestLine);
    };
    if !whole {
        // What the careful path checks before it parses: the request line's length
        // and the head's.
        // httparse took single spaces and `HTTP/1.x`: the line's LF follows the
        // version, after an optional CR.
        let version_end = method.len() + 1 + path.len() + 9;
        let line_end = version_end + usize::from(buf.get(version_end) == Some(&b'\r'));
        if line_end > limits.max_uri_len.saturating_add(64) {
            return Err(ParseError::UriTooLong);
        }
        if len > limits.max_head_size {
            return Err(ParseError::HeadTooLarge);
        }
    }
    if path.len() > limits.max_uri_len {
        return Err(ParseError::UriTooLong);
    }
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| ParseError::InvalidMethod)?;
    let version = if version == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let target = span(buf, path.as_bytes());
    let (query, uri) = if path.starts_with('/') && method != Method::CONNECT {
        // Origin-form: checked here against the `Uri` grammar, built only if asked for.
        let q = origin_form_query(path.as_bytes()).ok_or(ParseError::InvalidTarget)?;
        (Some(target.0 + q as u32), None)
    } else {
        if !path.bytes().all(target_byte) {
            return Err(ParseError::InvalidTarget);
        }
        let uri = Uri::try_from(path).map_err(|_| ParseError::InvalidTarget)?;
        check_target_form(&method, path, &uri)?;
        (None, Some(ParsedUri::new(uri)))
    };
    // Absolute-form: its authority replaces Host (RFC 9112 §3.2.2).
    let host_override = uri
        .as_ref()
        .map(ParsedUri::uri)
        .filter(|u| u.scheme().is_some())
        .and_then(|u| u.authority())
        .and_then(|a| {
            let at = path.find(a.as_str())?;
            let a = &path.as_bytes()[at..at + a.as_str().len()];
            Some(span(buf, a))
        });

    let mut fields = Fields::take();
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.len() > MAX_HEADER_NAME_LEN {
            return Err(ParseError::InvalidHeaderName);
        }
        fields.push(Field {
            name: span(buf, name),
            value: span(buf, h.value),
        });
    }
    Ok(Some(Line {
        method: HeadMethod::new(method),
        version,
        parts: ViewParts {
            target,
            query,
            uri,
            host: host_override,
            fields,
        },
        len,
    }))
}

/// The `head` fuzz target's check of [`scan_common`]: what it accepts, `httparse`'s
/// pass accepts too, with the same request line, fields and length.
#[cfg(feature = "fuzzing")]
pub(crate) fn scan_agrees(buf: &[u8], limits: &Limits) -> Result<(), String> {
    let Some(a) = scan_common(buf, limits) else {
        return Ok(());
    };
    let b = match tokenize(buf, limits, false) {
        Ok(Some(b)) => b,
        other => {
            return Err(format!(
                "scanned, but httparse says {:?}",
                other.map(|o| o.map(|l| l.len))
            ))
        }
    };
    let fields = |l: &Line| -> Vec<(Vec<u8>, Vec<u8>)> {
        l.parts
            .fields
            .as_slice()
            .iter()
            .map(|f| (slice(buf, f.name).to_vec(), slice(buf, f.value).to_vec()))
            .collect()
    };
    let same = a.method == b.method
        && a.version == b.version
        && a.parts.target == b.parts.target
        && a.parts.query == b.parts.query
        && b.parts.uri.is_none()
        && b.parts.host.is_none()
        && a.len == b.len
        && fields(&a) == fields(&b);
    if same {
        Ok(())
    } else {
        Err(format!(
            "scanned {:?} {:?} {:?} {:?} len {}, httparse {:?} {:?} {:?} {:?} len {}",
            a.method,
            a.version,
            a.parts.target,
            fields(&a),
            a.len,
            b.method,
            b.version,
            b.parts.target,
            fields(&b),
            b.len
        ))
    }
}

/// A head's request line and field spans, before the fields' meaning is checked.
struct Line {
    method: HeadMethod,
    version: Version,
    parts: ViewParts,
    len: usize,
}

/// What the fields of a tokenized head mean: Host, framing, `Connection`, `Expect`.
fn check_fields(buf: &[u8], line: Line) -> Result<Analyzed, ParseError> {
    let Line {
        method,
        version,
        parts,
        len,
    } = line;
    let mut host_count = 0usize;
    let mut host_valid = true;
    let mut cl: SmallVec<[&[u8]; 2]> = SmallVec::new();
    let mut te: SmallVec<[&[u8]; 2]> = SmallVec::new();
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    let mut expect_other = false;
    for f in parts.fields.as_slice() {
        let name = slice(buf, f.name);
        let raw = slice(buf, f.value);
        // By length first: most fields are none of these.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                host_count += 1;
                host_valid &= valid_host(raw);
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => cl.push(raw),
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => te.push(raw),
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in list_items(raw) {
                    if token.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keep_alive = true;
                    }
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                for token in list_items(raw) {
                    if token.eq_ignore_ascii_case(b"100-continue") {
                        expect_continue = true;
                    } else if !token.is_empty() {
                        expect_other = true;
                    }
                }
            }
            _ => {}
        }
    }

    if host_count > 1 {
        return Err(ParseError::DuplicateHost);
    }
    if host_count == 0 && version == Version::HTTP_11 {
        return Err(ParseError::MissingHost);
    }
    if !host_valid {
        return Err(ParseError::InvalidHost);
    }

    let body = match framing(version, &te, &cl)? {
        Framing::Chunked => BodyKind::Chunked,
        Framing::Length(n) => BodyKind::Length(n),
        Framing::Unframed => BodyKind::None,
    };

    // RFC 9110 §10.1.1: an HTTP/1.0 client cannot expect; ignore its Expect entirely.
    let (expect_continue, expect_other) = if version == Version::HTTP_11 {
        (expect_continue, expect_other)
    } else {
        (false, false)
    };
    if expect_other {
        return Err(ParseError::ExpectationFailed);
    }

    let keep_alive = if version == Version::HTTP_11 {
        !conn_close
    } else {
        conn_keep_alive
            && !conn_close
            && (matches!(body, BodyKind::Length(_))
                || method == HeadMethod::Get
                || method == HeadMethod::Head)
    };

    Ok(Analyzed {
        method,
        version,
        body,
        keep_alive,
        expect_continue,
        parts,
        len,
    })
}

/// The common head, tokenized without `httparse`: a known method, an origin-form
/// target, `HTTP/1.1` or `HTTP/1.0`, CRLF line ends, well-formed fields, all within
/// the limits. `None` for anything else (a head not complete yet, an extension
/// method, another target form, a bare LF, a malformed or oversized head), which then
/// takes `httparse`'s pass: this scanner only ever accepts, so every error is worded
/// by the one path. What it accepts it splits as `httparse` does (field values without
/// the whitespace around them), which the `head` fuzz target checks.
fn scan_common(buf: &[u8], limits: &Limits) -> Option<Line> {
    let (method, start) = common_method(buf)?;
    // The target: path bytes, then after a `?` query bytes, up to the space.
    let target = buf.get(start..)?;
    if target.first() != Some(&b'/') {
        return None;
    }
    let query = start
        + target
            .iter()
            .position(|&b| ORIGIN[usize::from(b)] & 1 == 0)?;
    let mut i = query;
    if buf[i] == b'?' {
        i += 1 + buf[i + 1..]
            .iter()
            .position(|&b| ORIGIN[usize::from(b)] & 2 == 0)?;
    }
    let target_len = i - start;
    if buf[i] != b' ' || target_len > limits.max_uri_len || target_len > usize::from(u16::MAX) - 1 {
        return None;
    }
    // `HTTP/1.` then the minor digit and CRLF, compared as two words.
    let line_end: &[u8; 10] = buf.get(i + 1..i + 11)?.try_into().ok()?;
    let (word, tail) = line_end.split_at(8);
    let version = match (u64::from_le_bytes(word.try_into().ok()?), tail) {
        (HTTP_11, b"\r\n") => Version::HTTP_11,
        (HTTP_10, b"\r\n") => Version::HTTP_10,
        _ => return None,
    };
    // The careful path's limit on the request line (its LF's offset).
    if i + 10 > limits.max_uri_len.saturating_add(64) {
        return None;
    }
    let mut pos = i + 11;
    let mut fields = Fields::take();
    let len = loop {
        let rest = buf.get(pos..)?;
        if rest.starts_with(b"\r\n") {
            break pos + 2;
        }
        let name_len = rest.iter().position(|&b| !TOKEN[usize::from(b)])?;
        if name_len == 0 || rest[name_len] != b':' || name_len > MAX_HEADER_NAME_LEN {
            return None;
        }
        // The value: after the whitespace that follows the colon, up to the CR.
        let after = &rest[name_len + 1..];
        let blank = after.iter().position(|&b| b != b' ' && b != b'\t')?;
        let value = &after[blank..];
        let value_len = field_value_len(value)?;
        if value.get(value_len..value_len + 2)? != b"\r\n" {
            return None;
        }
        let trimmed = value[..value_len]
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |last| last + 1);
        if fields.as_slice().len() == limits.max_headers {
            return None;
        }
        let value_start = pos + name_len + 1 + blank;
        fields.push(Field {
            name: (pos as u32, (pos + name_len) as u32),
            value: (value_start as u32, (value_start + trimmed) as u32),
        });
        pos = value_start + value_len + 2;
    };
    if len > limits.max_head_size {
        return None;
    }
    Some(Line {
        method,
        version,
        parts: ViewParts {
            target: (start as u32, i as u32),
            query: Some(query as u32),
            uri: None,
            host: None,
            fields,
        },
        len,
    })
}

/// `HTTP/1.1` and `HTTP/1.0` as little-endian words.
const HTTP_11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
const HTTP_10: u64 = u64::from_le_bytes(*b"HTTP/1.0");

/// A request's method while its head is analyzed: a standard method as one byte, any
/// other boxed. `http::Method` keeps an extension method's bytes inline, 15 of them at
/// offset 1, so every move of one copies unaligned pieces of a value just written (a
/// store-forwarding stall each, the hottest instructions of the parse under `perf`);
/// the analysis moves its result several times, so it carries this instead and makes
/// the `Method` once, in the head.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HeadMethod {
    Get,
    Put,
    Post,
    Head,
    Delete,
    Patch,
    Options,
    Connect,
    Trace,
    /// An extension method (boxed: rare, and off the common path).
    Other(Box<Method>),
}

impl HeadMethod {
    fn new(m: Method) -> HeadMethod {
        match m {
            Method::GET => HeadMethod::Get,
            Method::PUT => HeadMethod::Put,
            Method::POST => HeadMethod::Post,
            Method::HEAD => HeadMethod::Head,
            Method::DELETE => HeadMethod::Delete,
            Method::PATCH => HeadMethod::Patch,
            Method::OPTIONS => HeadMethod::Options,
            Method::CONNECT => HeadMethod::Connect,
            Method::TRACE => HeadMethod::Trace,
            other => HeadMethod::Other(Box::new(other)),
        }
    }

    #[inline]
    fn into_method(self) -> Method {
        match self {
            HeadMethod::Get => Method::GET,
            HeadMethod::Put => Method::PUT,
            HeadMethod::Post => Method::POST,
            HeadMethod::Head => Method::HEAD,
            HeadMethod::Delete => Method::DELETE,
            HeadMethod::Patch => Method::PATCH,
            HeadMethod::Options => Method::OPTIONS,
            HeadMethod::Connect => Method::CONNECT,
            HeadMethod::Trace => Method::TRACE,
            HeadMethod::Other(m) => *m,
        }
    }
}

/// The methods [`scan_common`] knows, and where the target starts after them.
fn common_method(buf: &[u8]) -> Option<(HeadMethod, usize)> {
    let (method, len) = match buf.get(..4)? {
        b"GET " => return Some((HeadMethod::Get, 4)),
        b"PUT " => return Some((HeadMethod::Put, 4)),
        b"POST" => (HeadMethod::Post, 4),
        b"HEAD" => (HeadMethod::Head, 4),
        b"DELE" if buf.starts_with(b"DELETE") => (HeadMethod::Delete, 6),
        b"PATC" if buf.starts_with(b"PATCH") => (HeadMethod::Patch, 5),
        b"OPTI" if buf.starts_with(b"OPTIONS") => (HeadMethod::Options, 7),
        _ => return None,
    };
    (buf.get(len) == Some(&b' ')).then_some((method, len + 1))
}

/// The bytes a field value may hold (`httparse`'s set): HTAB, SP, visible ASCII and
/// obs-text.
const fn field_value_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b == 0x09 || (b >= 0x20 && b != 0x7f);
        b += 1;
    }
    t
}
static FIELD_VALUE: [bool; 256] = field_value_table();

/// How many bytes at the start of `v` a field value may hold ([`FIELD_VALUE`]); `None`
/// when all of them may (the value's end has not arrived). Values are most of a
/// browser's head, so they are checked eight bytes at a time: a word with no byte
/// below 0x20 and none equal to 0x7f is all value bytes, and in a word with one the
/// first such byte is found from the word's flags (HTAB is below 0x20 and allowed: from
/// one, the rest is checked byte by byte).
#[inline(always)]
fn field_value_len(v: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let mut words = v.chunks_exact(8);
    let mut clean = 0;
    for word in &mut words {
        // Little-endian: the word's low byte is the first in memory.
        let w = u64::from_le_bytes(word.try_into().expect("chunks of eight"));
        // The high bit of each byte below 0x20, and of each byte equal to 0x7f (a zero
        // byte of `w ^ 0x7f7f…`). A borrow can flag bytes above a flagged one, never
        // below it: the lowest flag is exactly the first such byte.
        let below = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        let del = w ^ (ONES * 0x7f);
        let del = del.wrapping_sub(ONES) & !del & HIGHS;
        let flags = below | del;
        if flags != 0 {
            let at = clean + (flags.trailing_zeros() / 8) as usize;
            if v[at] != b'\t' {
                return Some(at);
            }
            clean = at;
            break;
        }
        clean += 8;
    }
    v[clean..]
        .iter()
        .position(|&b| !FIELD_VALUE[usize::from(b)])
        .map(|i| clean + i)
}

/// The longest header name `http::HeaderName` takes.
const MAX_HEADER_NAME_LEN: usize = (1 << 16) - 1;

/// Byte classes of an origin-form target: bit 0, allowed in the path; bit 1, allowed in
/// the query. Any visible ASCII but `#` (a fragment is never sent), as Tornado and the
/// clients that send `{"a":1}` or `<` unescaped; the few of them the `http` crate's
/// `Uri` refuses are escaped when a `Uri` is asked for (`View::uri`).
const fn origin_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        let c = b as u8;
        let path = !matches!(c, b'#' | b'?');
        let query = c != b'#';
        t[b] = (path as u8) | ((query as u8) << 1);
        b += 1;
    }
    t
}
static ORIGIN: [u8; 256] = origin_table();

/// Check an origin-form target (`/path?query`); the offset of its `?` (or its length
/// when there is none), or `None` for a byte out of place or a target longer than a
/// `Uri` takes.
///
/// Bytes past ASCII are taken if the whole target is UTF-8: what curl and other
/// clients send for a URL typed with non-ASCII characters, and what hyper, nginx and
/// Tornado serve. `path()` and `query()` read them as sent; `uri()` escapes them
/// (`%C3%A9`), as a browser would have.
fn origin_form_query(target: &[u8]) -> Option<usize> {
    // The longest target `http::Uri` takes.
    if target.len() > usize::from(u16::MAX) - 1 {
        return None;
    }
    let allowed = |b: u8, bit: u8| ORIGIN[usize::from(b)] & bit != 0 || !b.is_ascii();
    let q = match target.iter().position(|&b| !allowed(b, 1)) {
        None => target.len(),
        Some(q) if target[q] == b'?' && target[q + 1..].iter().all(|&b| allowed(b, 2)) => q,
        Some(_) => return None,
    };
    std::str::from_utf8(target).ok()?;
    Some(q)
}

/// The request-target's form must fit the method (RFC 9112 §3.2): origin-form (`/path`)
/// for any method but CONNECT; authority-form (`host:port`) for CONNECT and only for
/// it; asterisk-form (`*`) only for OPTIONS; absolute-form (`scheme://authority/path`)
/// for any method but CONNECT, with a host and no userinfo.
fn check_target_form(method: &Method, raw: &str, uri: &Uri) -> Result<(), ParseError> {
    let fits = if *method == Method::CONNECT {
        match uri.authority() {
            Some(a) => {
                uri.scheme().is_none()
                    && a.as_str() == raw
                    && a.port().is_some()
                    && !a.as_str().contains('@')
                    && valid_host(raw.as_bytes())
            }
            None => false,
        }
    } else if raw == "*" {
        *method == Method::OPTIONS
    } else if raw.starts_with('/') {
        true
    } else {
        match (uri.scheme(), uri.authority()) {
            (Some(_), Some(a)) => {
                !a.as_str().contains('@')
                    && !a.host().is_empty()
                    && valid_host(a.as_str().as_bytes())
            }
            _ => false,
        }
    };
    if fits {
        Ok(())
    } else {
        Err(ParseError::InvalidTarget)
    }
}

/// The elements of a comma-separated header list, with optional whitespace trimmed.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// Trim spaces and tabs at both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// What a message's Transfer-Encoding and Content-Length fields say of its body
/// (RFC 9112 §6.3).
pub(crate) enum Framing {
    Chunked,
    Length(u64),
    /// Neither field: a request has no body, a response runs to the close.
    Unframed,
}

/// The framing of a message of `version` from its Transfer-Encoding fields `te` and
/// Content-Length fields `cl`: both at once, or Transfer-Encoding on HTTP/1.0, is an
/// error, as is either field malformed.
pub(crate) fn framing<V: AsRef<[u8]>>(
    version: Version,
    te: &[V],
    cl: &[V],
) -> Result<Framing, ParseError> {
    if !te.is_empty() {
        if version == Version::HTTP_10 {
            return Err(ParseError::TransferEncodingInHttp10);
        }
        if !cl.is_empty() {
            return Err(ParseError::ContentLengthAndTransferEncoding);
        }
        check_transfer_encoding(te)?;
        Ok(Framing::Chunked)
    } else if !cl.is_empty() {
        Ok(Framing::Length(parse_content_length(cl)?))
    } else {
        Ok(Framing::Unframed)
    }
}

/// Transfer-Encoding across all its fields must be exactly one `chunked`: a final coding
/// other than chunked, an empty element or chunked applied twice is a 400; another coding
/// before chunked (`gzip, chunked`) is a 501, since this server implements none.
pub(crate) fn check_transfer_encoding<V: AsRef<[u8]>>(values: &[V]) -> Result<(), ParseError> {
    let items: SmallVec<[&[u8]; 4]> = values.iter().flat_map(|v| list_items(v.as_ref())).collect();
    // No coding at all (`Transfer-Encoding: ,`) names no framing either.
    let Some((last, before)) = items.split_last() else {
        return Err(ParseError::TransferEncodingNotChunked);
    };
    if !last.eq_ignore_ascii_case(b"chunked")
        || before
            .iter()
            .any(|i| i.is_empty() || i.eq_ignore_ascii_case(b"chunked"))
    {
        return Err(ParseError::TransferEncodingNotChunked);
    }
    if before.is_empty() {
        Ok(())
    } else {
        Err(ParseError::UnsupportedTransferEncoding)
    }
}

/// Content-Length across all its fields: every element decimal digits only, all equal
/// (Tornado accepts `5, 5` and refuses `5, 6`), and within 64 bits.
pub(crate) fn parse_content_length<V: AsRef<[u8]>>(values: &[V]) -> Result<u64, ParseError> {
    let mut first: Option<&[u8]> = None;
    let mut conflict = false;
    for item in values.iter().flat_map(|v| list_items(v.as_ref())) {
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::InvalidContentLength);
        }
        match first {
            None => first = Some(item),
            Some(f) if f != item => conflict = true,
            Some(_) => {}
        }
    }
    if conflict {
        return Err(ParseError::ConflictingContentLength);
    }
    let digits = first.ok_or(ParseError::InvalidContentLength)?;
    parse_decimal(digits).ok_or(ParseError::InvalidContentLength)
}

/// Decimal digits to `u64`, `None` on anything else or on overflow.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

/// The usual Host (`example.com`, `127.0.0.1`, either with a `:port`): plain reg-name
/// bytes ([`HOST_BYTES`] 1), then an optional `:` and digits. Four bytes a step while
/// all four are plain (the table's values are 0, 1 and 2, so the four ANDed are 1 only
/// then), then byte by byte from the step that found one that is not.
fn plain_host(v: &[u8]) -> bool {
    let mut start = 0;
    for four in v.chunks_exact(4) {
        let class = |i: usize| HOST_BYTES[usize::from(four[i])];
        if class(0) & class(1) & class(2) & class(3) != 1 {
            break;
        }
        start += 4;
    }
    v[start..]
        .iter()
        .position(|&b| HOST_BYTES[usize::from(b)] != 1)
        .is_none_or(|i| v[start + i] == b':' && port(&v[start + i + 1..]))
}

/// A Host's port: digits only (none is allowed).
fn port(p: &[u8]) -> bool {
    p.iter().all(u8::is_ascii_digit)
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2); empty is allowed.
pub(crate) fn valid_host(v: &[u8]) -> bool {
    if let Some(rest) = v.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let (inside, after) = (&rest[..close], &rest[close + 1..]);
        let inside_ok = !inside.is_empty()
            && inside
                .iter()
                .all(|&b| HOST_BYTES[usize::from(b)] != 0 || b == b':');
        let after_ok = after.is_empty() || after.strip_prefix(b":").is_some_and(port);
        return inside_ok && after_ok;
    }
    if plain_host(v) {
        return true;
    }
    // Reg-name bytes up to an optional `:port`; a `%` sends the host to the check of
    // its escapes.
    let mut escapes = false;
    let mut i = 0;
    while i < v.len() {
        match HOST_BYTES[usize::from(v[i])] {
            0 if v[i] == b':' => break,
            0 => return false,
            2 => escapes = true,
            _ => {}
        }
        i += 1;
    }
    let (host, port_part) = (&v[..i], v.get(i + 1..));
    if !port_part.is_none_or(port) {
        return false;
    }
    !escapes || valid_escapes(host)
}

/// Bytes of a Host's reg-name (RFC 3986 §3.2.2): 1, or 2 for `%` (an escape follows).
/// The sub-delimiter `,` is left out, as Tornado does: a Host with a comma is most
/// likely two Host fields a proxy joined into one, which RFC 9112 §3.2 answers with
/// 400, and a proxy and a backend must not disagree on which host was meant.
const fn host_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c == b'%' {
            2
        } else if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b';'
                    | b'='
            )
        {
            1
        } else {
            0
        };
        b += 1;
    }
    t
}
static HOST_BYTES: [u8; 256] = host_table();

/// Every `%` in `host` is followed by two hex digits.
fn valid_escapes(host: &[u8]) -> bool {
    let mut i = 0;
    while i < host.len() {
        if host[i] == b'%' {
            if !(i + 2 < host.len()
                && host[i + 1].is_ascii_hexdigit()
                && host[i + 2].is_ascii_hexdigit())
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Turn httparse's coarse error into a precise cause; runs only on the error path.
fn classify_httparse_error(e: httparse::Error, head: &[u8]) -> ParseError {
    let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let line = &head[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match e {
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::HeaderValue => ParseError::InvalidHeaderValue,
        httparse::Error::HeaderName => {
            for field in head[line_end.min(head.len())..]
                .split(|&b| b == b'\n')
                .skip(1)
            {
                let field = field.strip_suffix(b"\r").unwrap_or(field);
                if field.is_empty() {
                    break;
                }
                if matches!(field[0], b' ' | b'\t') {
                    return ParseError::ObsoleteLineFolding;
                }
                let name_len = field
                    .iter()
                    .position(|&b| !is_token(b))
                    .unwrap_or(field.len());
                let rest = &field[name_len..];
                let ws = rest
                    .iter()
                    .position(|&b| !matches!(b, b' ' | b'\t'))
                    .unwrap_or(rest.len());
                if name_len > 0 && ws > 0 && rest.get(ws) == Some(&b':') {
                    return ParseError::WhitespaceBeforeColon;
                }
            }
            ParseError::InvalidHeaderName
        }
        httparse::Error::Version => {
            let version = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or(b"");
            match version {
                [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                    if major.is_ascii_digit() && minor.is_ascii_digit() =>
                {
                    ParseError::UnsupportedVersion
                }
                _ => ParseError::InvalidVersion,
            }
        }
        httparse::Error::Token => {
            let method_len = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
            if method_len == 0 || !line[..method_len].iter().all(|&b| is_token(b)) {
                ParseError::InvalidMethod
            } else if line.split(|&b| b == b' ').count() < 3
                || line.get(method_len + 1).is_none_or(|&b| b == b' ')
            {
                // Too few parts, or an empty target (two spaces in a row).
                ParseError::InvalidRequestLine
            } else {
                ParseError::InvalidTarget
            }
        }
        _ => ParseError::InvalidRequestLine,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heads the common scanner takes, at its edges; each is split as httparse splits
    /// it, and no prefix of it is taken.
    #[test]
    fn scan_common_agrees_with_httparse() {
        let limits = Limits::default();
        let heads: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"HEAD /a/b?c=d&e=?/ HTTP/1.0\r\n\r\n",
            b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            b"PUT /x HTTP/1.1\r\nhost:x\r\nX-Empty:\r\nX-Spaces: \t \r\n\r\n",
            b"DELETE /x HTTP/1.1\r\nHost: x \t\r\nX-A: a b\tc \r\n\r\n",
            b"PATCH /x? HTTP/1.1\r\nHost: x\r\nX-Obs: caf\xc3\xa9 \xff\r\n\r\n",
            b"OPTIONS /x HTTP/1.1\r\nHost: x\r\n!#$%&'*+-.^_`|~0aZ: v\r\n\r\n",
        ];
        for head in heads {
            let line = scan_common(head, &limits).expect("a common head");
            scan_agrees(head, &limits).unwrap();
            for n in 0..line.len {
                assert!(scan_common(&head[..n], &limits).is_none(), "prefix {n}");
            }
        }
        // Values lose the whitespace around them, as httparse's do.
        let line = scan_common(heads[4], &limits).unwrap();
        let values: Vec<&[u8]> = line
            .parts
            .fields
            .as_slice()
            .iter()
            .map(|f| slice(heads[4], f.value))
            .collect();
        assert_eq!(values, [&b"x"[..], b"a b\tc"]);
    }

    /// Heads the scanner leaves to httparse: each is parsed (or refused) exactly as
    /// before it existed.
    #[test]
    fn scan_common_declines_the_rest() {
        let limits = Limits {
            max_headers: 2,
            max_uri_len: 16,
            ..Limits::default()
        };
        for head in [
            &b"get / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /# HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\n: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\x7f\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
            b"GET /0123456789abcdef HTTP/1.1\r\nHost: x\r\n\r\n",
            b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert!(
                scan_common(head, &limits).is_none(),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    /// The word-at-a-time value scan finds what the byte-by-byte one finds, at every
    /// offset and length, for every byte class.
    #[test]
    fn field_value_len_agrees_with_the_table() {
        let bytewise = |v: &[u8]| v.iter().position(|&b| !FIELD_VALUE[usize::from(b)]);
        let mut v = [b'a'; 24];
        assert_eq!(field_value_len(&v), None);
        for stop in 0..=255u8 {
            for at in 0..v.len() {
                for len in at + 1..=v.len() {
                    v = [b'a'; 24];
                    v[at] = stop;
                    assert_eq!(
                        field_value_len(&v[..len]),
                        bytewise(&v[..len]),
                        "byte {stop:#x} at {at} of {len}"
                    );
                }
            }
        }
        // Bytes around the class edges, mixed within a word.
        let edges = [
            0x00, 0x08, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xff,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut w = [0u8; 19];
            for b in &mut w {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = if seed.is_multiple_of(5) {
                    edges[(seed >> 8) as usize % edges.len()]
                } else {
                    0x20 + (seed >> 16) as u8 % 0x5f
                };
            }
            assert_eq!(field_value_len(&w), bytewise(&w), "{w:?}");
        }
    }

    fn parse(s: &[u8]) -> Result<RequestHead, ParseError> {
        parse_request_head(s, &Limits::default()).map(|o| o.expect("complete head").0)
    }

    #[test]
    fn target_raw_is_the_target_as_sent() {
        for target in [
            "/",
            "/a/b?c=d&e",
            "*",
            "http://example.com:8080/x?y",
            "example.com:443",
        ] {
            let method = if target.contains(':') && !target.starts_with("http") {
                "CONNECT"
            } else {
                "OPTIONS"
            };
            let text = format!("{method} {target} HTTP/1.1\r\nHost: example.com\r\n\r\n");
            let mut h = parse(text.as_bytes()).unwrap();
            assert_eq!(h.target_raw(), target.as_bytes());
            assert_eq!(h.target(), target);
            // Once the map is the head's, the target is still the one sent.
            h.headers_mut()
                .insert("x-added", http::HeaderValue::from_static("1"));
            assert_eq!(h.target_raw(), h.target().as_bytes());
        }
    }

    #[test]
    fn minimal_get() {
        let h = parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.uri(), "/");
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.headers()["host"], "x");
        assert_eq!(h.body, BodyKind::None);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
    }

    #[test]
    fn incremental_is_linear() {
        let mut head = b"GET /x HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..500 {
            head.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(20)).as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let limits = Limits {
            max_headers: 1000,
            max_head_size: 1 << 20,
            ..Limits::default()
        };
        crate::work::take();
        let mut p = HeadParser::new();
        for n in 1..head.len() {
            assert!(
                p.parse(&head[..n], &limits).unwrap().is_none(),
                "early at {n}"
            );
        }
        let scanned = crate::work::take();
        assert!(
            scanned < 3 * head.len() as u64,
            "scanned {scanned} for {}",
            head.len()
        );
        let (h, used) = p.parse(&head, &limits).unwrap().unwrap();
        assert_eq!(used, head.len());
        assert_eq!(h.headers().len(), 501);
    }

    /// The four-byte steps of `plain_host` find what a byte-by-byte scan finds, for
    /// every byte at every place of hosts up to 13 bytes long.
    #[test]
    fn plain_host_agrees_with_a_byte_scan() {
        let bytewise = |v: &[u8]| {
            v.iter()
                .position(|&b| HOST_BYTES[usize::from(b)] != 1)
                .is_none_or(|i| v[i] == b':' && port(&v[i + 1..]))
        };
        let base = *b"a1.-b2c3d4e5f";
        for len in 0..=base.len() {
            assert_eq!(plain_host(&base[..len]), bytewise(&base[..len]));
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = base;
                    v[at] = b;
                    assert_eq!(
                        plain_host(&v[..len]),
                        bytewise(&v[..len]),
                        "{b:#x} at {at} of {len}"
                    );
                    // A port after a colon, wherever the colon is.
                    v[at] = b':';
                    v[len - 1] = b;
                    assert_eq!(
                        plain_host(&v[..len]),
                        bytewise(&v[..len]),
                        "colon at {at}, {b:#x} last"
                    );
                }
            }
        }
    }

    #[test]
    fn host_validation() {
        for ok in [
            "",
            "example.com",
            "example.com:80",
            "[::1]",
            "[::1]:8080",
            "1.2.3.4:",
            "a%20b",
            "localhost:8443",
            "127.0.0.1:65535",
            "a%20b:80",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "a b", "a/b", "[::1", "[::1]x", "a:b", "a@b", "%zz", "a%2", "x:80:80", "x:8a", "x: 80",
            "%zz:80", "a,b", "a:80,b", "a,b:80",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad}");
        }
    }
}
