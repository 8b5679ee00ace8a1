//! [`ResponseWriter`], the delegates' handle on the response, and the connection state
//! it reaches (`Shared`).

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use http::header::CONNECTION;
use http::{HeaderMap, HeaderValue, StatusCode};
use squall_httputil::h1::ServerConn;
use squall_httputil::OutputError;

use crate::access::AccessLine;
use crate::config::HttpServerConfig;
use crate::detach::{DetachError, OnUpgrade};
use crate::spare;

/// What the response to the current request has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resp {
    NotStarted,
    Started,
    Finished,
}

/// The connection state the delegates reach through their [`ResponseWriter`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) h1: ServerConn,
    pub(crate) out: BytesMut,
    pub(crate) resp: Resp,
    pub(crate) status: StatusCode,
    pub(crate) flush_requested: bool,
    pub(crate) write_failed: Option<io::ErrorKind>,
    /// An output error that leaves the connection unusable (Content-Length broken).
    pub(crate) broken: bool,
    pub(crate) body_limit: u64,
    pub(crate) body_timeout: Option<Duration>,
    /// The current request's body has been read to its end.
    pub(crate) body_done: bool,
    /// Bytes the transport held unsent when last asked: after each write, and before
    /// each delegate poll while it is not 0.
    pub(crate) queued: usize,
    /// `max_write_buffer_size`.
    pub(crate) write_cap: usize,
    /// A write was refused for the cap: the connection closes.
    pub(crate) overflowed: bool,
    /// Set by [`ResponseWriter::detach`]: after this request the connection is handed
    /// over instead of serving HTTP.
    pub(crate) detach: Option<OnUpgrade>,
    /// Whether the access log is on, asked of the logger once per busy period.
    pub(crate) access_log: Option<bool>,
    /// The current request's access line, begun when its head arrives (its buffer is
    /// kept from request to request).
    pub(crate) access: AccessLine,
}

impl Shared {
    /// The state a worker serves busy periods with: its parser (set up as `config`
    /// says) and an output buffer, without an allocation until a response is written.
    pub(crate) fn new(h1: ServerConn, config: &HttpServerConfig) -> Self {
        Shared {
            h1,
            out: BytesMut::new(),
            resp: Resp::NotStarted,
            status: StatusCode::OK,
            flush_requested: false,
            write_failed: None,
            broken: false,
            body_limit: config.max_body_size,
            body_timeout: config.body_timeout,
            body_done: false,
            queued: 0,
            write_cap: config.max_write_buffer_size,
            overflowed: false,
            detach: None,
            access_log: None,
            access: AccessLine::default(),
        }
    }

    /// A connection's busy period begins: nothing of the one before is kept (its parse
    /// state, unsent output, flags) but the parser's settings and the output buffer's
    /// allocation (let go if it grew past what the stash keeps). `no_keep_alive`: the
    /// connection closes after its next response.
    pub(crate) fn begin_busy(&mut self, config: &HttpServerConfig, no_keep_alive: bool) {
        // Every field named, so that a new one cannot be forgotten here.
        let Shared {
            h1,
            out,
            resp,
            status,
            flush_requested,
            write_failed,
            broken,
            body_limit,
            body_timeout,
            body_done,
            queued,
            write_cap,
            overflowed,
            detach,
            access_log,
            access: _,
        } = self;
        h1.reset();
        h1.set_no_keep_alive(no_keep_alive);
        out.clear();
        spare::trim(out);
        *resp = Resp::NotStarted;
        *status = StatusCode::OK;
        *flush_requested = false;
        *write_failed = None;
        *broken = false;
        *body_limit = config.max_body_size;
        *body_timeout = config.body_timeout;
        *body_done = false;
        *queued = 0;
        *write_cap = config.max_write_buffer_size;
        *overflowed = false;
        *detach = None;
        *access_log = None;
    }

    /// Whether the access log is on (for warnings at least: 4xx and 5xx lines are
    /// warnings and errors): the logger is asked once per busy period.
    pub(crate) fn access_log(&mut self) -> bool {
        *self.access_log.get_or_insert_with(|| {
            squall_ioloop::logger::enabled_static(log::Level::Warn, crate::ACCESS_LOG_TARGET)
                .unwrap_or_else(
                    || log::log_enabled!(target: crate::ACCESS_LOG_TARGET, log::Level::Warn),
                )
        })
    }

    /// Reset the per-request state for the next request, and take an output buffer if
    /// the connection holds none.
    pub(crate) fn begin_request(&mut self, config: &HttpServerConfig) {
        self.resp = Resp::NotStarted;
        self.status = StatusCode::OK;
        self.body_limit = config.max_body_size;
        self.body_timeout = config.body_timeout;
        self.body_done = false;
        if self.out.capacity() == 0 {
            self.out = spare::take();
        }
    }
}

/// Writes the response to the current request: passed to every
/// [`HttpMessageDelegate`](crate::HttpMessageDelegate) method. Tornado's `HTTPConnection` (`write_headers`,
/// `write`, `finish`) as seen from a delegate.
///
/// The head is written with [`write_head`](Self::write_head), the body with
/// [`write`](Self::write), and the response ended with [`finish`](Self::finish); or all
/// at once with [`respond`](Self::respond). Bytes are appended to the connection's
/// output buffer and sent when the connection next waits (or at once with
/// [`flush`](Self::flush)), so pipelined responses go out together.
///
/// Framing follows Tornado's rules: without a Content-Length an HTTP/1.1 response is
/// chunked (an HTTP/1.0 one is delimited by closing the connection); HEAD, 1xx, 204 and
/// 304 responses have no body; `Connection: close` is announced when the connection will
/// close. A body that does not match its Content-Length is an [`OutputError`], logged,
/// and the connection is closed after what was written.
pub struct ResponseWriter<'a> {
    shared: &'a RefCell<Shared>,
}

impl<'a> ResponseWriter<'a> {
    /// The writer for the request `shared` is serving.
    pub(crate) fn new(shared: &'a RefCell<Shared>) -> Self {
        ResponseWriter { shared }
    }
}

impl std::fmt::Debug for ResponseWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.borrow();
        f.debug_struct("ResponseWriter")
            .field("started", &(s.resp != Resp::NotStarted))
            .field("finished", &(s.resp == Resp::Finished))
            .finish()
    }
}

impl ResponseWriter<'_> {
    /// The headers the connection adds to a response's own. (The `Server` header is
    /// added by the encoder, without touching the map.)
    pub(crate) fn add_headers(s: &Shared, headers: &mut HeaderMap) {
        if !s.body_done {
            // Answering before the body was read: the connection will close after
            // this response, and the client must be told so.
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }

    /// Refuse a write once the connection holds more than `max_write_buffer_size` bytes
    /// for the peer (in the output buffer and queued in the transport). Sticky: the
    /// connection closes after the first refusal.
    fn room(s: &mut Shared) -> Result<(), OutputError> {
        if s.overflowed || s.out.len() + s.queued > s.write_cap {
            s.overflowed = true;
            return Err(OutputError::WriteBufferFull);
        }
        Ok(())
    }

    /// Give the head about to be written the loop's clock reading for this turn: the
    /// heads written in one turn share it for their `Date`, with no clock read each.
    fn give_clock(s: &mut Shared) {
        s.h1.set_clock(squall_ioloop::turn_time());
    }

    fn check(s: &mut Shared, r: Result<(), OutputError>) -> Result<(), OutputError> {
        if let Err(e) = r {
            if matches!(
                e,
                OutputError::ContentLengthExceeded | OutputError::ContentLengthShort(_)
            ) {
                log::error!("HTTP response error, closing the connection: {e}");
                s.broken = true;
            }
        }
        r
    }

    /// Write the status line and headers (Tornado's `write_headers`). A `Date` header
    /// is added unless present, and a `Server` header as configured. The map's
    /// allocation goes back to the thread's [`pool`](squall_httputil::pool) afterwards.
    ///
    /// # Errors
    /// [`OutputError::NoRequestPending`] if a response was already started for this
    /// request; the header errors of `ResponseEncoder::start` (CR or LF in a value, a
    /// malformed Content-Length, a Transfer-Encoding of the caller's);
    /// [`OutputError::WriteBufferFull`] when the connection already holds more than
    /// [`max_write_buffer_size`](crate::HttpServerConfig::max_write_buffer_size) bytes
    /// for the peer (the connection then closes).
    pub fn write_head(
        &mut self,
        status: StatusCode,
        mut headers: HeaderMap,
    ) -> Result<(), OutputError> {
        let s = &mut *self.shared.borrow_mut();
        if s.resp != Resp::NotStarted {
            return Err(OutputError::NoRequestPending);
        }
        Self::room(s)?;
        Self::add_headers(s, &mut headers);
        Self::give_clock(s);
        let started = s.h1.start_response(status, &headers, &mut s.out);
        squall_httputil::pool::recycle_headers(headers);
        started?;
        s.resp = Resp::Started;
        s.status = status;
        Ok(())
    }

    /// Write body bytes (a chunk when the response is chunked; nothing for a HEAD
    /// request).
    ///
    /// # Errors
    /// [`OutputError::NoResponseStarted`] before `write_head` or after `finish`;
    /// [`OutputError::ContentLengthExceeded`] past the declared Content-Length (nothing
    /// is written, the connection will close); [`OutputError::BodyNotAllowed`] for a
    /// 1xx, 204 or 304 response; [`OutputError::WriteBufferFull`] when the connection
    /// already holds more than
    /// [`max_write_buffer_size`](crate::HttpServerConfig::max_write_buffer_size) bytes
    /// for a peer that is not reading (nothing is written, the connection closes; await
    /// [`flush`](Self::flush) between large writes to wait for the peer instead).
    pub fn write(&mut self, data: &[u8]) -> Result<(), OutputError> {
        let s = &mut *self.shared.borrow_mut();
        if s.resp != Resp::Started {
            return Err(OutputError::NoResponseStarted);
        }
        Self::room(s)?;
        let r = s.h1.write_body(data, &mut s.out);
        Self::check(s, r)
    }

    /// End the response (Tornado's `finish`): the last chunk when chunked, and the
    /// Content-Length check.
    ///
    /// # Errors
    /// [`OutputError::NoResponseStarted`]; [`OutputError::ContentLengthShort`] when less
    /// was written than declared (the connection will close);
    /// [`OutputError::WriteBufferFull`] after a write was refused for the write-buffer
    /// limit.
    pub fn finish(&mut self) -> Result<(), OutputError> {
        let s = &mut *self.shared.borrow_mut();
        if s.resp != Resp::Started {
            return Err(OutputError::NoResponseStarted);
        }
        if s.overflowed {
            return Err(OutputError::WriteBufferFull);
        }
        s.resp = Resp::Finished;
        let r = s.h1.finish_response(&mut s.out).map(drop);
        Self::check(s, r)
    }

    /// A whole response at once: head, body, end. A Content-Length is added unless
    /// `headers` has one; for a HEAD request the body is not sent. The map's allocation
    /// goes back to the thread's [`pool`](squall_httputil::pool) afterwards.
    ///
    /// # Errors
    /// As [`write_head`](Self::write_head); [`OutputError::BodyNotAllowed`] for a
    /// non-empty body on a 1xx, 204 or 304; the Content-Length errors of `write` and
    /// `finish` if `headers` declares a length that `body` does not match;
    /// [`OutputError::WriteBufferFull`] as for `write_head` (a body of any size is
    /// accepted into a connection under the limit).
    pub fn respond(
        &mut self,
        status: StatusCode,
        mut headers: HeaderMap,
        body: &[u8],
    ) -> Result<(), OutputError> {
        let s = &mut *self.shared.borrow_mut();
        if s.resp != Resp::NotStarted {
            return Err(OutputError::NoRequestPending);
        }
        Self::room(s)?;
        Self::add_headers(s, &mut headers);
        let mark = s.out.len();
        Self::give_clock(s);
        let result = s.h1.respond(status, &headers, body, &mut s.out);
        // The map's allocation serves the next request or response of this thread.
        squall_httputil::pool::recycle_headers(headers);
        match result {
            Ok(_) => {
                s.resp = Resp::Finished;
                s.status = status;
                Ok(())
            }
            Err(e) => {
                if s.h1.is_responding() {
                    // The head went out and the body broke the declared length.
                    s.resp = Resp::Started;
                    s.status = status;
                } else if !s.broken {
                    s.out.truncate(mark);
                }
                Self::check(s, Err(e))
            }
        }
    }

    /// Wait until everything written so far has been handed to the operating system:
    /// the backpressure point for a delegate streaming a large response.
    ///
    /// # Errors
    /// The transport's error once writing has failed, or an error holding
    /// [`OutputError::WriteBufferFull`] after a write was refused for the write-buffer
    /// limit (the connection is then closing).
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|_cx| {
            let mut s = self.shared.borrow_mut();
            if let Some(kind) = s.write_failed {
                return Poll::Ready(Err(io::Error::new(kind, "writing the response failed")));
            }
            if s.overflowed {
                return Poll::Ready(Err(io::Error::other(OutputError::WriteBufferFull)));
            }
            // Both the output buffer and what the transport took from it and still
            // holds: a transport may take the whole buffer into a queue of its own.
            if s.out.is_empty() && s.queued == 0 {
                return Poll::Ready(Ok(()));
            }
            // The connection task polls this future and flushes while it is pending.
            s.flush_requested = true;
            Poll::Pending
        })
        .await
    }

    /// Change the body limit for this request (Tornado's `set_max_body_size`); call it
    /// from `headers_received`. Over it: 413 and close.
    pub fn set_max_body_size(&mut self, limit: u64) {
        let mut s = self.shared.borrow_mut();
        s.body_limit = limit;
        s.h1.set_max_body_size(limit);
    }

    /// Change the body timeout for this request (Tornado's `set_body_timeout`); call it
    /// from `headers_received`.
    pub fn set_body_timeout(&mut self, timeout: Option<Duration>) {
        self.shared.borrow_mut().body_timeout = timeout;
    }

    /// Whether a response head has been written.
    pub fn is_started(&self) -> bool {
        self.shared.borrow().resp != Resp::NotStarted
    }

    /// Whether the response has been finished.
    pub fn is_finished(&self) -> bool {
        self.shared.borrow().resp == Resp::Finished
    }

    /// Hands the connection over after this request (Tornado's
    /// `HTTP1Connection.detach()`): once the `101 Switching Protocols` response written
    /// for it has been flushed, the connection stops serving HTTP and `on_upgrade`
    /// receives its stream with the bytes read past the request head
    /// ([`Detached`](crate::Detached)). Bytes pipelined behind the upgrade request go to
    /// the new owner, never to the HTTP parser. A transport without a stream to give
    /// (such as [`MemoryTransport`](crate::MemoryTransport)) closes instead, with an error
    /// logged.
    ///
    /// # Errors
    ///
    /// [`DetachError::NotSwitchingProtocols`] unless a 101 response head was written
    /// for this request.
    pub fn detach(&mut self, on_upgrade: OnUpgrade) -> Result<(), DetachError> {
        let s = &mut *self.shared.borrow_mut();
        if s.resp == Resp::NotStarted || s.status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(DetachError::NotSwitchingProtocols);
        }
        s.detach = Some(on_upgrade);
        Ok(())
    }

    /// Whether [`detach`](Self::detach) was called for this request: the connection
    /// is handed over once the response is out.
    pub fn is_detached(&self) -> bool {
        self.shared.borrow().detach.is_some()
    }

    /// Bytes written and not yet sent.
    pub fn buffered(&self) -> usize {
        self.shared.borrow().out.len()
    }
}
/// Give the output buffer back to the thread's stash if it is empty (everything was
/// sent): a waiting connection holds none. Returns the capacity it keeps.
pub(crate) fn release_output(shared: &RefCell<Shared>) -> usize {
    let s = &mut *shared.borrow_mut();
    spare::give(&mut s.out);
    s.out.capacity()
}
