//! The sans-IO HTTP/1.1 server connection: bytes in, events out; responses in, bytes out.
//!
//! [`ServerConn`] is Tornado's `HTTP1Connection` (server side) with the I/O taken out,
//! in the shape of hyper's `proto::h1::Conn`: the caller owns the sockets and the
//! buffers, feeds what it reads, and writes what the connection encodes.
//!
//! # Example
//!
//! A whole pipelined exchange, with the input arriving in two reads:
//!
//! ```
//! use bytes::BytesMut;
//! use http::{HeaderMap, StatusCode};
//! use squall_httputil::h1::{Event, ServerConn};
//! use squall_httputil::Limits;
//!
//! let mut conn = ServerConn::new(Limits::default());
//! let mut input = BytesMut::new();
//! let mut output = BytesMut::new();
//! let mut bodies = Vec::new();
//!
//! for read in [&b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nTrans"[..],
//!              &b"fer-Encoding: chunked\r\n\r\n3\r\nhey\r\n0\r\n\r\n"[..]] {
//!     input.extend_from_slice(read);
//!     while let Some(event) = conn.poll(&mut input) {
//!         match event {
//!             Event::Head(head) => bodies.push((head.path().to_owned(), Vec::new())),
//!             Event::Data(data) => bodies.last_mut().unwrap().1.extend_from_slice(&data),
//!             Event::End => {
//!                 // Answer in order; here each request is answered as soon as it ends.
//!                 let (path, body) = bodies.last().unwrap();
//!                 let reply = if path == "/echo" { body.clone() } else { b"Hello, world!".to_vec() };
//!                 let done = conn.respond(StatusCode::OK, &HeaderMap::new(), &reply, &mut output)?;
//!                 assert!(done.keep_alive);
//!             }
//!             Event::Error(e) => {
//!                 // After finishing the responses already owed: answer, then close.
//!                 squall_httputil::write_error_response(e, &mut output);
//!                 break;
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//! let text = String::from_utf8(output.to_vec()).unwrap();
//! assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2);
//! assert!(text.contains("Content-Length: 13\r\n\r\nHello, world!"));
//! assert!(text.ends_with("Content-Length: 3\r\n\r\nhey"));
//! assert!(!conn.should_close());
//! # Ok::<(), squall_httputil::OutputError>(())
//! ```

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use smallvec::SmallVec;

use crate::chunked::ChunkedDecoder;
use crate::decode::{Decoded, LengthDecoder};
use crate::error::{OutputError, ParseError};
use crate::head::{BodyKind, HeadParser, RequestHead};
use crate::headers::{HeaderCase, HeaderCaseMap};
use crate::limits::Limits;
use crate::response::{BodyFraming, EncodedBuf, HeadStyle, RequestInfo, ResponseEncoder};

/// What [`ServerConn::poll`] found in the input.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A request head, validated, with its body framing, keep-alive and
    /// `Expect: 100-continue` decided. Its body (possibly empty) follows as `Data`
    /// events and one `End`.
    Head(RequestHead),
    /// A piece of the current request's body, split off the input without a copy. For
    /// a chunked body the pieces follow the wire's chunk edges (a chunk may come in
    /// several pieces, never two chunks in one).
    Data(Bytes),
    /// The current request's body is complete. The next request (if the connection is
    /// kept alive) may follow in the same input.
    End,
    /// The input is malformed or over a limit. Nothing more will be parsed: answer the
    /// requests already received, then [`write_error_response`](crate::write_error_response)
    /// (or just close), then close the connection.
    Error(ParseError),
}

/// Whether the connection goes on after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseDone {
    /// `false` when the connection must be closed once the output is flushed: the
    /// request or the response asked for it, the response was close-delimited, or the
    /// request body had not been read to its end.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    version: Version,
    is_head: bool,
    keep_alive: bool,
    body_done: bool,
}

/// What the input is being read for. Small on purpose: the chunked decoder lives in the
/// connection and is reset in place, so a request moves no large state around.
#[derive(Debug)]
enum Read {
    Head,
    Body {
        kind: BodyKind,
        started: bool,
        length: LengthDecoder,
    },
    Done,
    Failed,
}

/// A sans-IO HTTP/1.1 server connection.
///
/// **Input.** Append what the socket gives to a `BytesMut` and call
/// [`poll`](ServerConn::poll) until it returns `None`; it removes from the front of the
/// buffer what it has used and returns [`Event`]s: `Head`, then `Data`* and `End`, for
/// each request in turn, any split of the input giving the same events. Pipelined
/// requests are parsed as they come, up to [`Limits::max_pipelined`] unanswered ones
/// (then `poll` waits for responses: see [`is_read_blocked`](ServerConn::is_read_blocked)).
/// After a request that does not keep the connection alive, nothing more is parsed, so
/// bytes after it can never be taken for a request. After an `Error` event nothing more
/// is parsed either. When the peer closes, call [`read_eof`](ServerConn::read_eof).
///
/// **Output.** Answer requests in the order received: [`start_response`](ServerConn::start_response),
/// then [`write_body`](ServerConn::write_body) or [`write_body_bytes`](ServerConn::write_body_bytes),
/// then [`finish_response`](ServerConn::finish_response); or [`respond`](ServerConn::respond)
/// for a whole response in one call. A response may start before its request's body has
/// been read (streaming), but if it finishes first the connection closes, as in Tornado.
/// `Expect: 100-continue` is answered with [`write_continue`](ServerConn::write_continue)
/// when the caller wants the body.
///
/// **Closing.** [`should_close`](ServerConn::should_close) says when nothing more will
/// happen on the connection.
///
/// **Memory.** Heads and `Data` pieces share the input buffer's memory (no copies; a
/// head is a view of its bytes, with no header map until one is asked for); while the
/// caller holds them, that part of the buffer is not reused, and `BytesMut` allocates
/// afresh when it must grow. The connection itself holds no
/// buffer: the caller may keep the unparsed rest of its input wherever it likes
/// between calls, as long as the bytes at its front stay the same.
#[doc(alias = "HTTP1Connection")]
#[derive(Debug)]
pub struct ServerConn {
    limits: Arc<Limits>,
    parser: HeadParser,
    read: Read,
    /// In order of arrival. Inline: a server answers in turn, so it is nearly always
    /// one, and a connection rebuilt per busy period should not allocate for it.
    pending: SmallVec<[Pending; 4]>,
    response: Option<ResponseEncoder>,
    server_header: Option<HeaderValue>,
    header_case: HeaderCase,
    spellings: Option<Arc<HeaderCaseMap>>,
    /// Made on the first chunked body, then reset in place for each one; boxed so that
    /// a connection that never sees one (and an idle one) stays small.
    chunked: Option<Box<ChunkedDecoder>>,
    trailers: Option<Box<HeaderMap>>,
    body_limit: u64,
    no_keep_alive: bool,
    closing: bool,
    /// The caller's monotonic clock reading for the next head's `Date`
    /// ([`set_clock`](Self::set_clock)); one-shot.
    clock: Option<Instant>,
}

impl ServerConn {
    /// A connection at the start of its first request. Pass an `Arc<Limits>` to share
    /// one set of limits among many connections (a server does; each connection then
    /// holds a pointer, not a copy), or a plain `Limits`.
    pub fn new(limits: impl Into<Arc<Limits>>) -> Self {
        let limits = limits.into();
        let body_limit = limits.max_body_size;
        ServerConn {
            limits,
            parser: HeadParser::new(),
            read: Read::Head,
            pending: SmallVec::new(),
            response: None,
            server_header: None,
            header_case: HeaderCase::Lower,
            spellings: None,
            chunked: None,
            trailers: None,
            body_limit,
            no_keep_alive: false,
            closing: false,
            clock: None,
        }
    }

    /// Start over for another connection with the same settings (limits, `Server`
    /// header, header case; and the chunked decoder's allocation): as
    /// [`new`](Self::new) and the same setters would make it, without building one. A
    /// server that keeps one per worker rather than one per connection calls this as
    /// each connection's turn begins.
    pub fn reset(&mut self) {
        let ServerConn {
            limits,
            parser,
            read,
            pending,
            response,
            server_header: _,
            header_case: _,
            spellings: _,
            chunked: _,
            trailers,
            body_limit,
            no_keep_alive,
            closing,
            clock,
        } = self;
        *parser = HeadParser::new();
        *read = Read::Head;
        pending.clear();
        *response = None;
        *trailers = None;
        *body_limit = limits.max_body_size;
        *no_keep_alive = false;
        *closing = false;
        *clock = None;
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Close after the next response whatever the request says (Tornado's
    /// `no_keep_alive`). Heads parsed from now on report `keep_alive: false`.
    pub fn set_no_keep_alive(&mut self, no_keep_alive: bool) {
        self.no_keep_alive = no_keep_alive;
    }

    /// Change the body limit for the request whose `Head` was just returned (Tornado's
    /// `set_max_body_size`, called from `headers_received`). It applies until the next
    /// head; a Content-Length is checked against it at the next `poll`.
    pub fn set_max_body_size(&mut self, limit: u64) {
        self.body_limit = limit;
        if let Read::Body {
            kind: BodyKind::Chunked,
            started: true,
            ..
        } = self.read
        {
            if let Some(c) = &mut self.chunked {
                c.set_max_body_size(limit);
            }
        }
    }

    /// A `Server` header for every response whose headers have none (Tornado's
    /// `HTTPServer` sends `Server: TornadoServer/x.y`); `None` (the default) adds none.
    pub fn set_server_header(&mut self, value: Option<HeaderValue>) {
        self.server_header = value;
    }

    /// How the names of the caller's headers are spelled in responses (hyper's
    /// `title_case_headers` and `preserve_header_case`): lower case as the `HeaderMap`
    /// holds them (the default), title case, or the spellings of `spellings` (title
    /// case for names it does not list). See [`HeaderCase`].
    pub fn set_header_case(&mut self, case: HeaderCase, spellings: Option<Arc<HeaderCaseMap>>) {
        self.header_case = case;
        self.spellings = spellings;
    }

    /// Give the next response head the caller's reading of the monotonic clock (a
    /// server's loop reads it once per turn): its `Date` then comes from the line this
    /// thread rendered for the current second without reading the wall clock, as long
    /// as `now` falls within that second. Applies to the next head only; without it a
    /// head reads the wall clock (cheap, and the rendering is cached for the second).
    /// Heads given readings older than the moment they are written may carry a `Date`
    /// that lags by as much.
    pub fn set_clock(&mut self, now: Instant) {
        self.clock = Some(now);
    }

    fn style(&mut self) -> HeadStyle<'_> {
        HeadStyle {
            server: self.server_header.as_ref(),
            case: self.header_case,
            spellings: self.spellings.as_deref(),
            now: self.clock.take(),
        }
    }

    /// Parse what `buf` holds and return the next event, or `None` when more input is
    /// needed (or parsing is paused or over: see [`is_read_blocked`](ServerConn::is_read_blocked)
    /// and [`should_close`](ServerConn::should_close)).
    #[inline]
    pub fn poll(&mut self, buf: &mut BytesMut) -> Option<Event> {
        // Between requests with nothing read (the end of every batch): answered where
        // it is asked, without the call.
        if buf.is_empty() && !matches!(self.read, Read::Body { .. }) {
            return None;
        }
        self.poll_input(buf)
    }

    /// [`poll`](Self::poll) past its quick answer.
    fn poll_input(&mut self, buf: &mut BytesMut) -> Option<Event> {
        match &mut self.read {
            Read::Done | Read::Failed => None,
            Read::Head => {
                if buf.is_empty() || self.pending.len() >= self.limits.max_pipelined {
                    // Nothing to parse (the usual end of a batch), or parsing paused.
                    return None;
                }
                match self.parser.parse_bytes(buf, &self.limits) {
                    Ok(None) => None,
                    Err(e) => Some(self.fail(e)),
                    Ok(Some(mut head)) => {
                        if self.no_keep_alive {
                            head.keep_alive = false;
                        }
                        self.pending.push(Pending {
                            version: head.version,
                            is_head: head.method == Method::HEAD,
                            keep_alive: head.keep_alive,
                            body_done: false,
                        });
                        self.body_limit = self.limits.max_body_size;
                        self.trailers = None;
                        let len = match head.body {
                            BodyKind::Length(n) => n,
                            _ => 0,
                        };
                        self.read = Read::Body {
                            kind: head.body,
                            started: false,
                            length: LengthDecoder::new(len),
                        };
                        Some(Event::Head(head))
                    }
                }
            }
            Read::Body {
                kind,
                started,
                length,
            } => {
                let kind = *kind;
                if !*started {
                    *started = true;
                    match kind {
                        BodyKind::Length(n) if n > self.body_limit => {
                            return Some(self.fail(ParseError::BodyTooLarge));
                        }
                        BodyKind::Chunked => {
                            let limits = &self.limits;
                            let c = self
                                .chunked
                                .get_or_insert_with(|| Box::new(ChunkedDecoder::new(limits)));
                            c.reset();
                            c.set_max_body_size(self.body_limit);
                        }
                        _ => {}
                    }
                }
                let decoded = if let (BodyKind::Chunked, Some(c)) = (kind, &mut self.chunked) {
                    c.decode(buf)
                } else {
                    Ok(length.decode(buf))
                };
                match decoded {
                    Ok(None) => None,
                    Ok(Some(Decoded::Data(d))) => Some(Event::Data(d)),
                    Ok(Some(Decoded::End)) => {
                        if kind == BodyKind::Chunked {
                            self.trailers = self
                                .chunked
                                .as_mut()
                                .and_then(|c| c.take_trailers())
                                .map(Box::new);
                        }
                        self.end_body();
                        Some(Event::End)
                    }
                    Err(e) => Some(self.fail(e)),
                }
            }
        }
    }

    /// Right after a [`Event::Head`] whose request has no body (no framing fields, or
    /// `Content-Length: 0`): take its end now, as the [`Event::End`] the next
    /// [`poll`](ServerConn::poll) would return, and return `true`; the request is then
    /// whole. `false`, changing nothing, for a request with a body (or at any other
    /// time). A server uses it to hand a bodyless request over in one step.
    #[inline]
    pub fn skip_empty_body(&mut self) -> bool {
        match self.read {
            Read::Body {
                kind: BodyKind::None | BodyKind::Length(0),
                started: false,
                ..
            } => {
                self.end_body();
                true
            }
            _ => false,
        }
    }

    /// The current request's body is read to its end: parse the next head if the
    /// connection stays open.
    fn end_body(&mut self) {
        let keep_alive = match self.pending.last_mut() {
            Some(current) => {
                current.body_done = true;
                current.keep_alive
            }
            None => false,
        };
        self.read = if keep_alive { Read::Head } else { Read::Done };
    }

    fn fail(&mut self, e: ParseError) -> Event {
        log::debug!("malformed HTTP request: {e}");
        if matches!(self.read, Read::Body { .. }) {
            // The request whose body failed is answered by the error response.
            self.drop_current_request();
        }
        self.read = Read::Failed;
        Event::Error(e)
    }

    /// Forget the request whose body was being read, unless its response is already
    /// under way: then it is finished, and the connection closed after it.
    fn drop_current_request(&mut self) {
        if self.response.is_some() && self.pending.len() == 1 {
            if let Some(p) = self.pending.last_mut() {
                p.keep_alive = false;
            }
        } else {
            self.pending.pop();
        }
    }

    /// Stop parsing input for good (unless it already failed).
    fn stop_reading(&mut self) {
        if !matches!(self.read, Read::Failed) {
            self.read = Read::Done;
        }
    }

    /// The peer closed its side. Returns `Err(IncompleteMessage)` if it did so in the
    /// middle of a request (anything but empty lines after the last complete one); in
    /// any case nothing more will be parsed.
    ///
    /// # Errors
    /// [`ParseError::IncompleteMessage`] for a request cut short.
    pub fn read_eof(&mut self, buf: &BytesMut) -> Result<(), ParseError> {
        let result = match self.read {
            Read::Head if buf.iter().all(|&b| b == b'\r' || b == b'\n') => Ok(()),
            Read::Head | Read::Body { .. } => Err(ParseError::IncompleteMessage),
            Read::Done | Read::Failed => Ok(()),
        };
        if matches!(self.read, Read::Body { .. }) {
            // A request cut short in its body cannot be answered.
            self.drop_current_request();
        }
        self.read = if result.is_ok() {
            Read::Done
        } else {
            Read::Failed
        };
        result
    }

    /// The trailer fields of the chunked body that just ended (after `End`), if any.
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take().map(|t| *t)
    }

    /// True when `poll` waits for responses before parsing more: as many requests as
    /// [`Limits::max_pipelined`] are unanswered.
    pub fn is_read_blocked(&self) -> bool {
        matches!(self.read, Read::Head) && self.pending.len() >= self.limits.max_pipelined
    }

    /// Requests received (their `Head` returned) and not yet answered to the end.
    pub fn pending_responses(&self) -> usize {
        self.pending.len()
    }

    /// True when the connection has nothing more to do: no more input will be parsed
    /// (a request or response ended keep-alive, the input failed, or the peer closed)
    /// and every response that can still be written has been finished. Flush the output,
    /// then close.
    pub fn should_close(&self) -> bool {
        let reading_over = matches!(self.read, Read::Done | Read::Failed) || self.closing;
        reading_over && self.response.is_none() && (self.closing || self.pending.is_empty())
    }

    /// True while a response has been started and not finished.
    pub fn is_responding(&self) -> bool {
        self.response.is_some()
    }

    /// Append the interim `100 Continue` for a request that sent
    /// `Expect: 100-continue`, when the caller wants its body. Written only while that
    /// body is still to be read, on HTTP/1.1, before the final response has started and
    /// while the connection is not closing; returns whether it was.
    pub fn write_continue(&mut self, out: &mut BytesMut) -> bool {
        let wanted = matches!(self.read, Read::Body { .. })
            && !self.closing
            && self.response.is_none()
            && self
                .pending
                .last()
                .is_some_and(|p| p.version == Version::HTTP_11 && !p.body_done);
        if wanted {
            crate::response::write_continue(out);
        }
        wanted
    }

    fn next_request(&self) -> Result<RequestInfo, OutputError> {
        if self.closing {
            return Err(OutputError::ConnectionClosing);
        }
        if self.response.is_some() {
            return Err(OutputError::NoRequestPending);
        }
        let p = self.pending.first().ok_or(OutputError::NoRequestPending)?;
        Ok(RequestInfo {
            version: p.version,
            is_head: p.is_head,
            keep_alive: p.keep_alive && !self.no_keep_alive,
        })
    }

    /// Start the response to the oldest unanswered request: append its head to `out`.
    ///
    /// # Errors
    /// [`OutputError::NoRequestPending`] with no request to answer or another response
    /// in progress; [`ConnectionClosing`](OutputError::ConnectionClosing) after a response
    /// that ended the connection; the head errors of [`ResponseEncoder::start`].
    pub fn start_response(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        out: &mut BytesMut,
    ) -> Result<(), OutputError> {
        let info = self.next_request()?;
        let enc = ResponseEncoder::start_inner(&info, status, headers, None, self.style(), out)?;
        self.response = Some(enc);
        Ok(())
    }

    /// Append body bytes of the current response to `out`, framed.
    ///
    /// # Errors
    /// [`OutputError::NoResponseStarted`], and the errors of [`ResponseEncoder::write`];
    /// after [`ContentLengthExceeded`](OutputError::ContentLengthExceeded) the connection
    /// is marked for closing.
    pub fn write_body(&mut self, data: &[u8], out: &mut BytesMut) -> Result<(), OutputError> {
        let enc = self
            .response
            .as_mut()
            .ok_or(OutputError::NoResponseStarted)?;
        let r = enc.write(data, out);
        self.fail_output(r)
    }

    /// Frame body bytes of the current response without copying them; queue the result
    /// for a vectored write.
    ///
    /// # Errors
    /// As [`write_body`](ServerConn::write_body).
    pub fn write_body_bytes(&mut self, data: Bytes) -> Result<EncodedBuf, OutputError> {
        let enc = self
            .response
            .as_mut()
            .ok_or(OutputError::NoResponseStarted)?;
        let r = enc.write_bytes(data);
        self.fail_output(r)
    }

    fn fail_output<T>(&mut self, r: Result<T, OutputError>) -> Result<T, OutputError> {
        if let Err(OutputError::ContentLengthExceeded | OutputError::ContentLengthShort(_)) = r {
            self.closing = true;
            self.response = None;
            self.pending.clear();
            self.stop_reading();
        }
        r
    }

    /// Finish the current response (last chunk, Content-Length check) and say whether
    /// the connection goes on.
    ///
    /// # Errors
    /// [`OutputError::NoResponseStarted`]; [`ContentLengthShort`](OutputError::ContentLengthShort),
    /// after which the connection must be closed.
    pub fn finish_response(&mut self, out: &mut BytesMut) -> Result<ResponseDone, OutputError> {
        let mut enc = self.response.take().ok_or(OutputError::NoResponseStarted)?;
        let r = enc.finish(out);
        self.fail_output(r)?;
        Ok(self.response_done(enc.keep_alive()))
    }

    /// The bookkeeping at the end of a response: the request is answered, and the
    /// connection goes on if both sides allow it.
    fn response_done(&mut self, response_keep_alive: bool) -> ResponseDone {
        // Nearly always the only one: `pop` then, not `remove(0)`'s shifting.
        let answered = if self.pending.len() == 1 {
            self.pending.pop()
        } else if self.pending.is_empty() {
            None
        } else {
            Some(self.pending.remove(0))
        };
        let req_ok = answered.is_some_and(|r| r.body_done && r.keep_alive);
        let keep_alive = response_keep_alive && req_ok && !self.no_keep_alive && !self.closing;
        if !keep_alive {
            self.closing = true;
            self.pending.clear();
            self.stop_reading();
        }
        ResponseDone { keep_alive }
    }

    /// A whole response in one call: head, body and finish. A Content-Length is added
    /// when `headers` has none (and the status allows a body); for a HEAD request the
    /// length is announced and the body not sent.
    ///
    /// # Errors
    /// As [`start_response`](ServerConn::start_response); a non-empty `body` on a 1xx,
    /// 204 or 304 is [`OutputError::BodyNotAllowed`]; a `body` that disagrees with the
    /// Content-Length of `headers` is [`ContentLengthShort`](OutputError::ContentLengthShort)
    /// or [`ContentLengthExceeded`](OutputError::ContentLengthExceeded), found before
    /// anything is written: the request stays unanswered, so the caller can answer it
    /// (with a 500), and the connection closes after that answer (Tornado closes).
    pub fn respond(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        out: &mut BytesMut,
    ) -> Result<ResponseDone, OutputError> {
        let info = self.next_request()?;
        let code = status.as_u16();
        if !body.is_empty() && ((100..200).contains(&code) || code == 204 || code == 304) {
            return Err(OutputError::BodyNotAllowed);
        }
        let mark = out.len();
        let len = body.len() as u64;
        let enc =
            ResponseEncoder::start_inner(&info, status, headers, Some(len), self.style(), out)?;
        // With a length to add, the framing is `Length` or `None` (1xx, 204, 304, HEAD):
        // never chunked or close-delimited, so the body is the bytes as they are.
        match enc.framing() {
            BodyFraming::Length(n) if n != len => {
                out.truncate(mark);
                // The peer must not wait for a body that will never match: whatever
                // answers this request closes the connection.
                self.no_keep_alive = true;
                return Err(if n > len {
                    OutputError::ContentLengthShort(n - len)
                } else {
                    OutputError::ContentLengthExceeded
                });
            }
            BodyFraming::Length(_) => out.extend_from_slice(body),
            // No body: a non-empty one was refused above, except for a HEAD request,
            // whose length is announced and body dropped.
            _ => {}
        }
        Ok(self.response_done(enc.keep_alive()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(conn: &mut ServerConn, buf: &mut BytesMut) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(e) = conn.poll(buf) {
            out.push(match e {
                Event::Head(h) => format!("head {} {}", h.method, h.uri()),
                Event::Data(d) => format!("data {}", String::from_utf8_lossy(&d)),
                Event::End => "end".into(),
                Event::Error(e) => format!("error {}", e.status().as_u16()),
            });
        }
        out
    }

    #[test]
    fn server_header_added_unless_given() {
        let mut conn = ServerConn::new(Limits::default());
        conn.set_server_header(Some(HeaderValue::from_static("squall")));
        let mut buf = BytesMut::from(
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        );
        assert_eq!(events(&mut conn, &mut buf).len(), 4);
        let mut out = BytesMut::new();
        conn.respond(StatusCode::OK, &HeaderMap::new(), b"x", &mut out)
            .unwrap();
        let mut own = HeaderMap::new();
        own.insert(http::header::SERVER, HeaderValue::from_static("mine"));
        conn.respond(StatusCode::OK, &own, b"y", &mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("server: squall\r\n").count(), 1, "{text}");
        assert_eq!(text.matches("server: mine\r\n").count(), 1, "{text}");
    }

    #[test]
    fn a_clock_reading_lasts_one_head() {
        let mut conn = ServerConn::new(Limits::default());
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..].repeat(3)[..]);
        assert_eq!(events(&mut conn, &mut buf).len(), 6);
        let mut out = BytesMut::new();
        conn.set_clock(Instant::now());
        conn.respond(StatusCode::OK, &HeaderMap::new(), b"", &mut out)
            .unwrap();
        assert!(conn.clock.is_none(), "one-shot");
        // A head with its own Date takes the reading and writes no other.
        let mut dated = HeaderMap::new();
        dated.insert(
            http::header::DATE,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        conn.set_clock(Instant::now());
        conn.respond(StatusCode::OK, &dated, b"", &mut out).unwrap();
        assert!(conn.clock.is_none());
        conn.respond(StatusCode::OK, &HeaderMap::new(), b"", &mut out)
            .unwrap();
        let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
        assert_eq!(text.matches("\r\ndate: ").count(), 3, "{text}");
        assert_eq!(text.matches("date: sun, 06 nov 1994").count(), 1, "{text}");
    }

    /// `reset` forgets a connection left in any state (a body half read, a response
    /// under way, closing) and keeps the settings: the next connection's requests are
    /// parsed and answered as on a new `ServerConn`.
    #[test]
    fn reset_starts_a_new_connection_with_the_same_settings() {
        let mut conn = ServerConn::new(Limits::default());
        conn.set_server_header(Some(HeaderValue::from_static("squall")));
        let mut buf = BytesMut::from(
            &b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhalf"
                [..],
        );
        assert_eq!(events(&mut conn, &mut buf), ["head POST /a", "data half"]);
        let mut out = BytesMut::new();
        conn.start_response(StatusCode::OK, &HeaderMap::new(), &mut out)
            .unwrap();
        conn.set_no_keep_alive(true);
        conn.reset();
        let mut buf = BytesMut::from(&b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
        assert_eq!(events(&mut conn, &mut buf), ["head GET /b", "end"]);
        let mut out = BytesMut::new();
        let done = conn
            .respond(StatusCode::OK, &HeaderMap::new(), b"x", &mut out)
            .unwrap();
        assert!(done.keep_alive, "no close carried over");
        assert!(!conn.should_close());
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("server: squall\r\n"), "{text}");
    }

    /// `skip_empty_body` takes the end of a bodyless request (as `End` would) and
    /// touches nothing else: a request with a body, or a call at another time, gives
    /// `false` and the events that would have come anyway; `Connection: close` still
    /// stops parsing after the skipped end.
    #[test]
    fn skip_empty_body_is_the_end_event() {
        let mut conn = ServerConn::new(Limits::default());
        assert!(!conn.skip_empty_body(), "no request yet");
        let mut buf = BytesMut::from(
            &b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\
               POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n\
               POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\
               POST /4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
               GET /5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\
               GET /6 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        );
        let mut seen = Vec::new();
        while let Some(e) = conn.poll(&mut buf) {
            match e {
                Event::Head(h) => {
                    let skipped = conn.skip_empty_body();
                    seen.push(format!("head {} {skipped}", h.uri()));
                    assert!(!conn.skip_empty_body(), "once per request");
                }
                Event::Data(d) => seen.push(format!("data {}", d.len())),
                Event::End => seen.push("end".into()),
                Event::Error(e) => seen.push(format!("error {e}")),
            }
        }
        assert_eq!(
            seen,
            [
                "head /1 true",
                "head /2 true",
                "head /3 false",
                "data 2",
                "end",
                "head /4 false",
                "end",
                "head /5 true",
            ]
        );
        assert_eq!(conn.pending.len(), 5);
        assert!(conn.pending.iter().all(|p| p.body_done));
    }

    #[test]
    fn connection_close_stops_parsing() {
        let mut conn = ServerConn::new(Limits::default());
        let mut buf = BytesMut::from(&b"GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
        assert_eq!(events(&mut conn, &mut buf), ["head GET /1", "end"]);
        assert!(!conn.should_close(), "a response is still owed");
        let mut out = BytesMut::new();
        let done = conn
            .respond(StatusCode::OK, &HeaderMap::new(), b"x", &mut out)
            .unwrap();
        assert!(!done.keep_alive);
        assert!(conn.should_close());
        assert!(String::from_utf8_lossy(&out).contains("Connection: close\r\n"));
        assert_eq!(
            conn.start_response(StatusCode::OK, &HeaderMap::new(), &mut out),
            Err(OutputError::ConnectionClosing)
        );
    }

    #[test]
    fn early_response_closes() {
        let mut conn = ServerConn::new(Limits::default());
        let mut buf =
            BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"[..]);
        assert_eq!(events(&mut conn, &mut buf), ["head POST /", "data abc"]);
        let mut out = BytesMut::new();
        let done = conn
            .respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                &HeaderMap::new(),
                b"",
                &mut out,
            )
            .unwrap();
        assert!(!done.keep_alive);
        assert!(conn.should_close());
        buf.extend_from_slice(b"defghijGET / HTTP/1.1\r\n\r\n");
        assert!(conn.poll(&mut buf).is_none());
    }

    #[test]
    fn pipelining_is_bounded() {
        let limits = Limits {
            max_pipelined: 2,
            ..Limits::default()
        };
        let mut conn = ServerConn::new(limits);
        let one = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut buf = BytesMut::new();
        for _ in 0..3 {
            buf.extend_from_slice(one);
        }
        assert_eq!(events(&mut conn, &mut buf).len(), 4);
        assert!(conn.is_read_blocked());
        let mut out = BytesMut::new();
        conn.respond(StatusCode::OK, &HeaderMap::new(), b"", &mut out)
            .unwrap();
        assert!(!conn.is_read_blocked());
        assert_eq!(events(&mut conn, &mut buf).len(), 2);
        assert!(buf.is_empty());
    }

    #[test]
    fn eof_rules() {
        let mut conn = ServerConn::new(Limits::default());
        assert_eq!(conn.read_eof(&BytesMut::from(&b"\r\n"[..])), Ok(()));
        let mut conn = ServerConn::new(Limits::default());
        assert_eq!(
            conn.read_eof(&BytesMut::from(&b"GET"[..])),
            Err(ParseError::IncompleteMessage)
        );
        let mut conn = ServerConn::new(Limits::default());
        let mut buf =
            BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"[..]);
        events(&mut conn, &mut buf);
        assert_eq!(conn.read_eof(&buf), Err(ParseError::IncompleteMessage));
    }

    #[test]
    fn eof_while_answering_a_streaming_request() {
        let mut conn = ServerConn::new(Limits::default());
        let mut buf =
            BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"[..]);
        events(&mut conn, &mut buf);
        let mut out = BytesMut::new();
        conn.start_response(StatusCode::OK, &HeaderMap::new(), &mut out)
            .unwrap();
        assert_eq!(conn.read_eof(&buf), Err(ParseError::IncompleteMessage));
        conn.write_body(b"partial", &mut out).unwrap();
        assert!(!conn.finish_response(&mut out).unwrap().keep_alive);
        assert!(conn.should_close());
    }

    #[test]
    fn broken_response_stops_input() {
        let mut conn = ServerConn::new(Limits::default());
        let mut buf =
            BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab"[..]);
        events(&mut conn, &mut buf);
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("1"),
        );
        let mut out = BytesMut::new();
        conn.start_response(StatusCode::OK, &h, &mut out).unwrap();
        assert_eq!(
            conn.write_body(b"xx", &mut out),
            Err(OutputError::ContentLengthExceeded)
        );
        buf.extend_from_slice(b"cdGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(conn.poll(&mut buf).is_none());
        assert!(conn.should_close());
        assert_eq!(
            conn.finish_response(&mut out),
            Err(OutputError::NoResponseStarted)
        );
    }

    #[test]
    fn body_limit_override() {
        let mut conn = ServerConn::new(Limits::default());
        let mut buf = BytesMut::from(
            &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"[..],
        );
        assert!(matches!(conn.poll(&mut buf), Some(Event::Head(_))));
        conn.set_max_body_size(5);
        assert!(matches!(
            conn.poll(&mut buf),
            Some(Event::Error(ParseError::BodyTooLarge))
        ));
        assert!(conn.poll(&mut buf).is_none());
    }
}
