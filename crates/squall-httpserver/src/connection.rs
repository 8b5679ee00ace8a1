//! [`Http1Connection`]: one task per connection, driving the sans-IO
//! [`ServerConn`] over a [`Transport`] and calling the delegates.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::CONNECTION;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use squall_httputil::h1::{Event, ServerConn};
use squall_httputil::{
    write_error_response, GzipInflater, Limits, OutputError, ParseError, RequestHead,
};
use squall_ioloop::Sleep;

use crate::access::{AccessLine, ACCESS_LOG_TARGET};
use crate::config::HttpServerConfig;
use crate::delegate::{
    ConnectionInfo, HttpMessageDelegate, HttpServerConnectionDelegate, RequestStart,
};
use crate::spare;
use crate::transport::Transport;
use crate::xheaders;

/// How long a closing connection keeps reading (and discarding) what the client still
/// sends after a response that ended the connection with part of the request unread,
/// so that the close does not turn into a reset that destroys the response in flight
/// (nginx's lingering close).
const LINGER_TIME: Duration = Duration::from_secs(2);
/// The most bytes discarded while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

/// Settings shared by every connection of a server on one thread.
#[derive(Debug)]
pub(crate) struct Params {
    pub(crate) config: HttpServerConfig,
    /// Shared by the connections' parsers (a pointer each, not a copy).
    pub(crate) limits: Arc<Limits>,
}

impl Params {
    pub(crate) fn new(config: HttpServerConfig) -> Rc<Params> {
        let limits = Arc::new(config.limits());
        Rc::new(Params { config, limits })
    }
}

const RUN: u8 = 0;
const DRAIN: u8 = 1;
const FORCE: u8 = 2;

/// The server's grip on a running connection: graceful and forced close.
#[derive(Debug, Default)]
pub(crate) struct Control {
    state: Cell<u8>,
    waker: RefCell<Option<Waker>>,
}

impl Control {
    fn register(&self, waker: &Waker) {
        let mut w = self.waker.borrow_mut();
        match &*w {
            Some(old) if old.will_wake(waker) => {}
            _ => *w = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        let w = self.waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Finish the request in flight with `Connection: close`; close when idle.
    pub(crate) fn drain(&self) {
        if self.state.get() == RUN {
            self.state.set(DRAIN);
            self.wake();
        }
    }

    /// Close now, whatever is in flight.
    pub(crate) fn force(&self) {
        self.state.set(FORCE);
        self.wake();
    }

    fn draining(&self) -> bool {
        self.state.get() != RUN
    }

    fn forced(&self) -> bool {
        self.state.get() == FORCE
    }
}

/// A high-water mark of the bytes a connection holds in buffers (input, output, the
/// transport's own), shared by the connections of a server for tests and monitoring.
/// Updated only when a connection's own mark grows, so it costs nothing per request.
#[derive(Debug, Clone, Default)]
pub(crate) struct HighWater(pub(crate) Arc<AtomicUsize>);

impl HighWater {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the response to the current request has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resp {
    NotStarted,
    Started,
    Finished,
}

/// The connection state the delegates reach through their [`ResponseWriter`].
#[derive(Debug)]
pub(crate) struct Shared {
    h1: ServerConn,
    out: BytesMut,
    resp: Resp,
    status: StatusCode,
    flush_requested: bool,
    write_failed: Option<io::ErrorKind>,
    /// An output error that leaves the connection unusable (Content-Length broken).
    broken: bool,
    body_limit: u64,
    body_timeout: Option<Duration>,
    /// The current request's body has been read to its end.
    body_done: bool,
    /// Bytes the transport held unsent when last asked: after each write, and before
    /// each delegate poll while it is not 0.
    queued: usize,
    /// `max_write_buffer_size`.
    write_cap: usize,
    /// A write was refused for the cap: the connection closes.
    overflowed: bool,
}

/// Writes the response to the current request: passed to every
/// [`HttpMessageDelegate`] method. Tornado's `HTTPConnection` (`write_headers`,
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
    fn add_headers(s: &Shared, headers: &mut HeaderMap) {
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
            if s.out.is_empty() {
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

    /// Bytes written and not yet sent.
    pub fn buffered(&self) -> usize {
        self.shared.borrow().out.len()
    }
}

fn panic_message(p: &(dyn Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

/// One timer per connection, reused across waits: it is replaced only when a wait needs
/// an earlier deadline; when it fires early for a later deadline, it is re-armed. A
/// kept-alive connection serving a request a millisecond costs one timer a minute, not
/// one per request.
#[derive(Debug, Default)]
struct LazyTimer {
    sleep: Option<Sleep>,
}

impl LazyTimer {
    fn poll(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        loop {
            match &mut self.sleep {
                Some(s) if s.deadline() <= deadline => match Pin::new(s).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => {
                        self.sleep = None;
                        if Instant::now() >= deadline {
                            return Poll::Ready(());
                        }
                    }
                },
                _ => self.sleep = Some(squall_ioloop::sleep_until(deadline)),
            }
        }
    }
}

/// Why the connection stops serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Not an end: no request is in flight and nothing is buffered (but blank lines);
    /// the connection waits for the next request without its serving state.
    Idle,
    /// Nothing more to read: send what is queued, then close.
    Done,
    /// Part of the request is unread: send what is queued, read and discard for a
    /// while, then close.
    Linger,
    /// Stop now: the peer is gone, timed out, or the server forces the close.
    Dead,
}

enum ReadOutcome {
    Data,
    Eof,
    Timeout,
    Shutdown,
    Error(io::Error),
}

/// After a request: go on to the next one, or close.
enum Flow {
    Next,
    Close(End),
}

fn log_io_error(context: &str, e: &io::Error) {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected | UnexpectedEof => {
            log::debug!("{context}: {e}");
        }
        _ => log::warn!("{context}: {e}"),
    }
}

/// One HTTP/1.x server connection: Tornado's `HTTP1ServerConnection` and
/// `HTTP1Connection`, server side.
///
/// [`serve`](Self::serve) is the connection's whole life as one future: spawn it once
/// per connection and it serves request after request until the connection closes. It
/// is generic over the transport and the delegate, so nothing is dynamically
/// dispatched. Between requests the connection is *idle* and holds only itself and a
/// wait for the next bytes; the state of serving (the parser, the output buffer, the
/// request in flight with its delegate's futures) lives in one box made when bytes
/// arrive and freed when the connection is idle again: one allocation per busy period,
/// so per pipelined batch, not per request.
///
/// Requests are handled in order; for each the delegate's methods are awaited in turn.
/// **Pipelining is batching**: every request already buffered is parsed and answered
/// before anything is sent, the responses accumulating in one output buffer, which is
/// sent in one write when the input is exhausted (or while a delegate waits).
///
/// ```
/// use std::rc::Rc;
/// use squall_httpserver::{handler_fn, Http1Connection, HttpServerConfig, MemoryTransport, Response};
/// use squall_ioloop::IoLoop;
///
/// let io_loop = IoLoop::new()?;
/// let (transport, peer) = MemoryTransport::pair();
/// let handler = handler_fn(|_req| async { Response::text("Hello, world!") });
/// let conn = Http1Connection::new(transport, Rc::new(handler), HttpServerConfig::default(), None);
/// peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
/// io_loop.run_sync(conn.serve(), None)?;
/// let out = peer.take_output();
/// assert_eq!(peer.write_calls(), 1, "both responses in one write");
/// assert_eq!(String::from_utf8_lossy(&out).matches("Hello, world!").count(), 2);
/// assert!(peer.is_closed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "HTTP1Connection")]
#[doc(alias = "HTTP1ServerConnection")]
pub struct Http1Connection<T: Transport, D: HttpServerConnectionDelegate> {
    transport: T,
    delegate: Rc<D>,
    params: Rc<Params>,
    info: ConnectionInfo,
    control: Rc<Control>,
    timer: LazyTimer,
    high_water: Option<HighWater>,
    own_high: usize,
}

impl<T: Transport, D: HttpServerConnectionDelegate> std::fmt::Debug for Http1Connection<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Connection")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<T: Transport, D: HttpServerConnectionDelegate> Http1Connection<T, D> {
    /// A connection over `transport` from `peer_addr`, handing requests to `delegate`.
    pub fn new(
        transport: T,
        delegate: Rc<D>,
        config: HttpServerConfig,
        peer_addr: Option<std::net::SocketAddr>,
    ) -> Self {
        Self::with_params(
            transport,
            delegate,
            Params::new(config),
            ConnectionInfo::new(peer_addr, 0),
            Rc::new(Control::default()),
            None,
        )
    }

    pub(crate) fn with_params(
        transport: T,
        delegate: Rc<D>,
        params: Rc<Params>,
        info: ConnectionInfo,
        control: Rc<Control>,
        high_water: Option<HighWater>,
    ) -> Self {
        Http1Connection {
            transport,
            delegate,
            params,
            info,
            control,
            timer: LazyTimer::default(),
            high_water,
            own_high: 0,
        }
    }

    /// Serve requests until the connection closes; the transport is closed on return.
    /// Tornado's `HTTP1ServerConnection.start_serving`.
    ///
    /// # Panics
    /// The future panics if polled on a thread without a current `IoLoop` (its
    /// timeouts are loop timers).
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn stores its arguments twice"
    )]
    pub fn serve(mut self) -> impl Future<Output = ()> {
        // An `async` block rather than an `async fn`: the connection is captured once,
        // where an `async fn` keeps its arguments twice (as passed and as locals), which
        // every idle connection would pay for.
        async move {
            let mut inbuf = BytesMut::new();
            while self.wait_next(&mut inbuf).await {
                // Allocating first and writing the future into the box builds it in
                // place: `Box::pin(f)` would build it on the stack and copy its ~4 KB
                // in (about 330 instructions, measured with callgrind).
                let slot = Box::new_uninit();
                let idle = Box::into_pin(Box::write(slot, self.busy(&mut inbuf))).await;
                if !idle {
                    break;
                }
            }
            self.delegate.on_close(&self.info);
        }
    }

    /// Wait for the first bytes of the next request, holding nothing else. `false` once
    /// the connection is closed: end of file, the idle timeout, a shutdown, an error.
    async fn wait_next(&mut self, inbuf: &mut BytesMut) -> bool {
        let deadline = Instant::now() + self.params.config.idle_connection_timeout;
        match self.read(inbuf, 0, deadline, true).await {
            ReadOutcome::Data => return true,
            ReadOutcome::Eof | ReadOutcome::Shutdown => {}
            ReadOutcome::Timeout => {
                log::debug!("closing connection from {}: idle timeout", Peer(&self.info));
            }
            ReadOutcome::Error(e) => log_io_error("error reading from HTTP connection", &e),
        }
        self.transport.close();
        false
    }

    /// Serve what `inbuf` holds and what follows, until the connection is idle again
    /// (`true`) or closed (`false`).
    async fn busy(&mut self, inbuf: &mut BytesMut) -> bool {
        let config = &self.params.config;
        let mut h1 = ServerConn::new(self.params.limits.clone());
        // Draining: the request that woke an idle connection is answered with
        // `Connection: close`.
        h1.set_no_keep_alive(config.no_keep_alive || self.control.draining());
        h1.set_server_header(config.server_header.clone());
        let shared = RefCell::new(Shared {
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
        });
        match self.run(&shared, inbuf).await {
            End::Idle => {
                release_output(&shared);
                true
            }
            end => {
                self.close(&shared, inbuf, end).await;
                false
            }
        }
    }

    fn note_memory(&mut self, buffers: usize) {
        if let Some(hw) = &self.high_water {
            let held = buffers + self.transport.buffered_len();
            if held > self.own_high {
                self.own_high = held;
                hw.0.fetch_max(held, Ordering::Relaxed);
            }
        }
    }

    async fn run(&mut self, shared: &RefCell<Shared>, inbuf: &mut BytesMut) -> End {
        let idle = self.params.config.idle_connection_timeout;
        let header_timeout = self.params.config.header_timeout;
        let mut head_started: Option<Instant> = None;
        loop {
            let event = shared.borrow_mut().h1.poll(inbuf);
            match event {
                Some(Event::Head(head)) => {
                    head_started = None;
                    if let Flow::Close(end) = self.request(head, shared, inbuf).await {
                        return end;
                    }
                }
                Some(Event::Error(e)) => {
                    log::info!("bad HTTP request from {}: {e}", Peer(&self.info));
                    let s = &mut *shared.borrow_mut();
                    if !s.h1.is_responding() {
                        write_error_response(e, &mut s.out);
                        log_access_error(&self.info, e);
                    }
                    return End::Linger;
                }
                Some(_) => {
                    log::error!("HTTP/1 connection state machine out of step; closing");
                    return End::Done;
                }
                None => {
                    if shared.borrow().h1.should_close() {
                        return if inbuf.is_empty() {
                            End::Done
                        } else {
                            End::Linger
                        };
                    }
                    // The input is exhausted: send the batch.
                    if !shared.borrow().out.is_empty() {
                        if let Err(end) = self.flush(shared, inbuf).await {
                            return end;
                        }
                    }
                    if inbuf.iter().all(|&b| b == b'\r' || b == b'\n') {
                        // Between requests: the caller lets this state go and waits.
                        return End::Idle;
                    }
                    // Part of a head: wait for the rest, within the header timeout.
                    let now = Instant::now();
                    let deadline =
                        (now + idle).min(*head_started.get_or_insert(now) + header_timeout);
                    let out_cap = release_output(shared);
                    match self.read(inbuf, out_cap, deadline, false).await {
                        ReadOutcome::Data => {
                            if self.control.draining() {
                                // Answered, with `Connection: close`, then closed.
                                shared.borrow_mut().h1.set_no_keep_alive(true);
                            }
                        }
                        ReadOutcome::Eof => {
                            if shared.borrow_mut().h1.read_eof(inbuf).is_err() {
                                log::debug!(
                                    "connection from {} closed in the middle of a request head",
                                    Peer(&self.info)
                                );
                                return End::Dead;
                            }
                            return End::Done;
                        }
                        ReadOutcome::Timeout => {
                            log::debug!(
                                "closing connection from {}: header timeout",
                                Peer(&self.info)
                            );
                            return End::Dead;
                        }
                        ReadOutcome::Shutdown => {
                            return if self.control.forced() {
                                End::Dead
                            } else {
                                End::Done
                            };
                        }
                        ReadOutcome::Error(e) => {
                            log_io_error("error reading from HTTP connection", &e);
                            return End::Dead;
                        }
                    }
                }
            }
        }
    }

    /// One request, from its head to the end of its response.
    ///
    /// This and [`request_inner`](Self::request_inner) are plain functions returning
    /// `async move` blocks: an `async fn` would keep its arguments twice, and copy the
    /// request head (about 230 bytes) and `RequestStart` (about 330) once more per
    /// request.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn stores its arguments twice"
    )]
    fn request<'a>(
        &'a mut self,
        mut head: RequestHead,
        shared: &'a RefCell<Shared>,
        inbuf: &'a mut BytesMut,
    ) -> impl Future<Output = Flow> + 'a {
        async move {
            let start_time = Instant::now();
            let access = log::log_enabled!(target: ACCESS_LOG_TARGET, log::Level::Info)
                .then(|| (head.method.clone(), head.uri.clone()));
            let params = self.params.clone();
            let config = &params.config;
            let (remote_ip, protocol) =
                xheaders::resolve(config, &head.headers, self.info.peer_addr);
            let gzip = config.decompress_request && xheaders::take_gzip(&mut head.headers);
            let expect_continue = head.expect_continue;
            {
                let mut s = shared.borrow_mut();
                s.resp = Resp::NotStarted;
                s.status = StatusCode::OK;
                s.body_limit = config.max_body_size;
                s.body_timeout = config.body_timeout;
                s.body_done = false;
                if s.out.capacity() == 0 {
                    s.out = spare::take();
                }
            }
            let delegate = self.delegate.clone();
            let mut msg = delegate.start_request(&self.info);
            let mut w = ResponseWriter { shared };
            let start = RequestStart {
                head,
                remote_ip,
                protocol,
                connection: self.info.clone(),
                start_time,
            };
            let flow = self
                .request_inner(
                    &mut msg,
                    &mut w,
                    start,
                    gzip,
                    expect_continue,
                    shared,
                    inbuf,
                )
                .await;
            if let Some((method, uri)) = access {
                let s = shared.borrow();
                if s.resp != Resp::NotStarted {
                    log_access(s.status, &method, &uri, remote_ip, start_time);
                }
            }
            flow
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn stores its arguments twice"
    )]
    fn request_inner<'a, 'm, 'w>(
        &'a mut self,
        msg: &'a mut D::Message<'m>,
        w: &'a mut ResponseWriter<'w>,
        start: RequestStart,
        gzip: bool,
        expect_continue: bool,
        shared: &'a RefCell<Shared>,
        inbuf: &'a mut BytesMut,
    ) -> impl Future<Output = Flow> + use<'a, 'm, 'w, T, D> {
        async move {
            let chunk_size = self.params.config.chunk_size.max(1);
            let start_time = start.start_time;
            let started = self
                .drive(shared, pin!(msg.headers_received(start, w)))
                .await;
            if let Some(flow) = self.step_ended(msg, shared, started, false) {
                return flow;
            }
            let body_deadline = shared.borrow().body_timeout.map(|t| start_time + t);
            let idle = self.params.config.idle_connection_timeout;
            let mut inflater: Option<GzipInflater> = None;
            let mut continue_sent = false;
            loop {
                if shared.borrow().resp == Resp::Finished {
                    // Answered before the body was read: the rest of the body cannot be
                    // skipped safely, so the connection closes after the response.
                    msg.on_connection_close();
                    return Flow::Close(End::Linger);
                }
                let event = shared.borrow_mut().h1.poll(inbuf);
                match event {
                    Some(Event::Data(mut data)) => {
                        if gzip {
                            let limit = shared.borrow().body_limit;
                            let inf = inflater.get_or_insert_with(|| GzipInflater::new(limit));
                            let mut pos = 0;
                            loop {
                                let mut piece = Vec::new();
                                match inf.inflate(&data[pos..], &mut piece, chunk_size) {
                                    Ok(used) => pos += used,
                                    Err(e) => return self.body_error(msg, shared, e),
                                }
                                let full = piece.len() >= chunk_size;
                                if !piece.is_empty() {
                                    if let Some(flow) =
                                        self.deliver(msg, w, shared, Bytes::from(piece)).await
                                    {
                                        return flow;
                                    }
                                }
                                if pos >= data.len() && !full {
                                    break;
                                }
                            }
                        } else {
                            while !data.is_empty() {
                                let piece = data.split_to(chunk_size.min(data.len()));
                                if let Some(flow) = self.deliver(msg, w, shared, piece).await {
                                    return flow;
                                }
                            }
                        }
                    }
                    Some(Event::End) => {
                        if let Some(inf) = &inflater {
                            if let Err(e) = inf.finish() {
                                return self.body_error(msg, shared, e);
                            }
                        }
                        shared.borrow_mut().body_done = true;
                        break;
                    }
                    Some(Event::Error(e)) => return self.body_error(msg, shared, e),
                    Some(_) => {
                        log::error!("HTTP/1 connection state machine out of step; closing");
                        msg.on_connection_close();
                        return Flow::Close(End::Done);
                    }
                    None => {
                        if expect_continue
                            && !continue_sent
                            && shared.borrow().resp == Resp::NotStarted
                        {
                            // The delegate did not answer from the head: it wants the body.
                            let s = &mut *shared.borrow_mut();
                            s.h1.write_continue(&mut s.out);
                            continue_sent = true;
                        }
                        if !shared.borrow().out.is_empty() {
                            if let Err(end) = self.flush(shared, inbuf).await {
                                msg.on_connection_close();
                                return Flow::Close(end);
                            }
                        }
                        let mut deadline = Instant::now() + idle;
                        if let Some(b) = body_deadline {
                            deadline = deadline.min(b);
                        }
                        let out_cap = release_output(shared);
                        let outcome = self.read(inbuf, out_cap, deadline, false).await;
                        match outcome {
                            ReadOutcome::Data => continue,
                            ReadOutcome::Eof => {
                                let _ = shared.borrow_mut().h1.read_eof(inbuf);
                                log::debug!(
                                    "connection from {} closed in the middle of a request body",
                                    Peer(&self.info)
                                );
                            }
                            ReadOutcome::Timeout => {
                                log::debug!(
                                    "closing connection from {}: body timeout",
                                    Peer(&self.info)
                                );
                            }
                            ReadOutcome::Shutdown => {}
                            ReadOutcome::Error(e) => {
                                log_io_error("error reading a request body", &e)
                            }
                        }
                        msg.on_connection_close();
                        return Flow::Close(End::Dead);
                    }
                }
            }
            let finished = self.drive(shared, pin!(msg.finish(w))).await;
            if let Some(flow) = self.step_ended(msg, shared, finished, true) {
                return flow;
            }
            let resp = shared.borrow().resp;
            match resp {
                Resp::NotStarted => {
                    log::error!(
                        "HTTP delegate finished a request without a response; answering 500"
                    );
                    let _ = w.respond(StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), b"");
                }
                Resp::Started => {
                    if w.finish().is_err() {
                        return Flow::Close(End::Done);
                    }
                }
                Resp::Finished => {}
            }
            if shared.borrow().broken {
                return Flow::Close(End::Done);
            }
            Flow::Next
        }
    }

    /// Hand one piece of the body to the delegate; `Some(flow)` if the request is over.
    async fn deliver(
        &mut self,
        msg: &mut D::Message<'_>,
        w: &mut ResponseWriter<'_>,
        shared: &RefCell<Shared>,
        piece: Bytes,
    ) -> Option<Flow> {
        let received = self.drive(shared, pin!(msg.data_received(piece, w))).await;
        self.step_ended(msg, shared, received, false)
    }

    /// What a delegate step's outcome (from [`drive`](Self::drive)) means for the
    /// request: `None` to go on; the request's end after a panic (answered by
    /// [`after_panic`](Self::after_panic); `body_done` once the body was read to its
    /// end) or when the connection must close (the delegate is told).
    #[inline]
    fn step_ended(
        &mut self,
        msg: &mut D::Message<'_>,
        shared: &RefCell<Shared>,
        outcome: Result<Result<(), Box<dyn Any + Send>>, End>,
        body_done: bool,
    ) -> Option<Flow> {
        match outcome {
            Ok(Ok(())) => None,
            Ok(Err(p)) => Some(self.after_panic(shared, &*p, body_done)),
            Err(end) => {
                msg.on_connection_close();
                Some(Flow::Close(end))
            }
        }
    }

    /// A malformed or oversized body: answer its status if no response started, close.
    fn body_error(
        &mut self,
        msg: &mut D::Message<'_>,
        shared: &RefCell<Shared>,
        e: ParseError,
    ) -> Flow {
        log::info!("bad HTTP request body from {}: {e}", Peer(&self.info));
        msg.on_connection_close();
        let s = &mut *shared.borrow_mut();
        if s.resp == Resp::NotStarted {
            write_error_response(e, &mut s.out);
            s.resp = Resp::Finished;
            s.status = e.status();
        }
        Flow::Close(End::Linger)
    }

    fn after_panic(
        &mut self,
        shared: &RefCell<Shared>,
        payload: &(dyn Any + Send),
        body_done: bool,
    ) -> Flow {
        log::error!(
            "HTTP delegate panicked on a request from {}: {}",
            Peer(&self.info),
            panic_message(payload)
        );
        let s = &mut *shared.borrow_mut();
        match s.resp {
            Resp::NotStarted => {
                let mut headers = HeaderMap::new();
                ResponseWriter::add_headers(s, &mut headers);
                match s
                    .h1
                    .respond(StatusCode::INTERNAL_SERVER_ERROR, &headers, b"", &mut s.out)
                {
                    Ok(done) => {
                        s.resp = Resp::Finished;
                        s.status = StatusCode::INTERNAL_SERVER_ERROR;
                        if done.keep_alive && body_done {
                            Flow::Next
                        } else {
                            Flow::Close(if body_done { End::Done } else { End::Linger })
                        }
                    }
                    Err(_) => Flow::Close(End::Done),
                }
            }
            Resp::Started => Flow::Close(End::Done),
            Resp::Finished if body_done => Flow::Next,
            Resp::Finished => Flow::Close(End::Linger),
        }
    }

    /// Poll a delegate future (pinned where the caller made it, so it is never moved),
    /// turning a panic into `Ok(Err(payload))`; while it is pending, send what has been
    /// written, and watch for a forced close.
    async fn drive<F: Future>(
        &mut self,
        shared: &RefCell<Shared>,
        mut fut: Pin<&mut F>,
    ) -> Result<Result<F::Output, Box<dyn Any + Send>>, End> {
        let idle = self.params.config.idle_connection_timeout;
        let mut stalled: Option<(Instant, usize)> = None;
        poll_fn(|cx| loop {
            if self.control.forced() {
                return Poll::Ready(Err(End::Dead));
            }
            {
                // The transport's backlog, for the write-buffer cap: asked only while
                // it had one (0 after a write that sent everything).
                let s = &mut *shared.borrow_mut();
                if s.queued != 0 {
                    s.queued = self.transport.write_queued();
                }
            }
            let polled = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
            let s = &mut *shared.borrow_mut();
            if s.overflowed {
                // A write was refused for the cap: the peer is not reading.
                log::info!(
                    "closing connection from {}: {} ({} bytes held, max_write_buffer_size {})",
                    Peer(&self.info),
                    OutputError::WriteBufferFull,
                    s.out.len() + s.queued,
                    s.write_cap
                );
                return Poll::Ready(Err(End::Dead));
            }
            match polled {
                Ok(Poll::Ready(v)) => return Poll::Ready(Ok(Ok(v))),
                Ok(Poll::Pending) => {}
                Err(p) => return Poll::Ready(Ok(Err(p))),
            }
            if self.control.draining() {
                s.h1.set_no_keep_alive(true);
            }
            self.control.register(cx.waker());
            if s.out.is_empty() || s.write_failed.is_some() {
                return Poll::Pending;
            }
            match self.transport.poll_write(cx, &mut s.out) {
                Poll::Ready(Ok(())) => {
                    s.queued = 0;
                    stalled = None;
                    if std::mem::take(&mut s.flush_requested) {
                        continue;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => {
                    log_io_error("error writing an HTTP response", &e);
                    s.write_failed = Some(e.kind());
                    return Poll::Ready(Err(End::Dead));
                }
                Poll::Pending => {
                    s.queued = self.transport.write_queued();
                    // A peer that stops reading cannot hold the connection forever.
                    let left = s.out.len();
                    let since = match stalled {
                        Some((t, n)) if n == left => t,
                        _ => {
                            let now = Instant::now();
                            stalled = Some((now, left));
                            now
                        }
                    };
                    if self.timer.poll(cx, since + idle).is_ready() {
                        log::debug!(
                            "closing connection from {}: write timeout",
                            Peer(&self.info)
                        );
                        return Poll::Ready(Err(End::Dead));
                    }
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// Send everything queued, bounded by the idle timeout.
    async fn flush(&mut self, shared: &RefCell<Shared>, inbuf: &BytesMut) -> Result<(), End> {
        let idle = self.params.config.idle_connection_timeout;
        // The clock is read only if the write has to wait.
        let mut deadline: Option<Instant> = None;
        {
            let held = inbuf.capacity() + shared.borrow().out.capacity();
            self.note_memory(held);
        }
        poll_fn(|cx| {
            if self.control.forced() {
                return Poll::Ready(Err(End::Dead));
            }
            let s = &mut *shared.borrow_mut();
            match self.transport.poll_write(cx, &mut s.out) {
                Poll::Ready(Ok(())) => {
                    s.queued = 0;
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => {
                    log_io_error("error writing an HTTP response", &e);
                    s.write_failed = Some(e.kind());
                    Poll::Ready(Err(End::Dead))
                }
                Poll::Pending => {
                    s.queued = self.transport.write_queued();
                    self.control.register(cx.waker());
                    let deadline = *deadline.get_or_insert_with(|| Instant::now() + idle);
                    if self.timer.poll(cx, deadline).is_ready() {
                        log::debug!(
                            "closing connection from {}: write timeout",
                            Peer(&self.info)
                        );
                        return Poll::Ready(Err(End::Dead));
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Wait for input until `deadline`. `idle`: between requests, where a graceful
    /// shutdown ends the wait.
    ///
    /// A plain function returning an `async move` block, not an `async fn` (which
    /// would keep its five arguments twice): this future is most of what an idle
    /// connection holds.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn stores its arguments twice"
    )]
    fn read<'a>(
        &'a mut self,
        inbuf: &'a mut BytesMut,
        out_cap: usize,
        deadline: Instant,
        idle: bool,
    ) -> impl Future<Output = ReadOutcome> + 'a {
        async move {
            // A connection waiting with nothing buffered holds no input buffer (the
            // transport takes one when bytes arrive).
            spare::give(inbuf);
            let outcome = {
                let Self {
                    transport,
                    timer,
                    control,
                    ..
                } = self;
                let mut fut = pin!(transport.read(inbuf));
                poll_fn(|cx| {
                    if control.forced() {
                        return Poll::Ready(ReadOutcome::Shutdown);
                    }
                    // The transport first: a request that arrived on an idle connection
                    // as the server began to drain is served, not dropped.
                    match fut.as_mut().poll(cx) {
                        Poll::Ready(Ok(0)) => return Poll::Ready(ReadOutcome::Eof),
                        Poll::Ready(Ok(_)) => return Poll::Ready(ReadOutcome::Data),
                        Poll::Ready(Err(e)) => return Poll::Ready(ReadOutcome::Error(e)),
                        Poll::Pending => {}
                    }
                    if idle && control.draining() {
                        return Poll::Ready(ReadOutcome::Shutdown);
                    }
                    if timer.poll(cx, deadline).is_ready() {
                        return Poll::Ready(ReadOutcome::Timeout);
                    }
                    control.register(cx.waker());
                    Poll::Pending
                })
                .await
            };
            self.note_memory(inbuf.capacity() + out_cap);
            outcome
        }
    }

    async fn close(&mut self, shared: &RefCell<Shared>, inbuf: &mut BytesMut, end: End) {
        debug_assert!(end != End::Idle, "an idle connection is not closed here");
        if end != End::Dead
            && !shared.borrow().out.is_empty()
            && self.flush(shared, inbuf).await.is_err()
        {
            self.transport.close();
            return;
        }
        if end == End::Linger {
            let deadline = Instant::now() + LINGER_TIME;
            let mut discarded = 0;
            while discarded < LINGER_BYTES {
                inbuf.clear();
                match self.read(inbuf, 0, deadline, false).await {
                    ReadOutcome::Data => discarded += inbuf.len(),
                    _ => break,
                }
            }
        }
        self.transport.close();
    }
}

/// Give the output buffer back to the thread's stash if it is empty (everything was
/// sent): a waiting connection holds none. Returns the capacity it keeps.
fn release_output(shared: &RefCell<Shared>) -> usize {
    let s = &mut *shared.borrow_mut();
    spare::give(&mut s.out);
    s.out.capacity()
}

/// Displays a peer address for logs.
struct Peer<'a>(&'a ConnectionInfo);

impl std::fmt::Display for Peer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.peer_addr {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("(no address)"),
        }
    }
}

fn log_access(status: StatusCode, method: &Method, uri: &Uri, ip: Option<IpAddr>, start: Instant) {
    AccessLine {
        status,
        method,
        uri,
        ip,
        elapsed: start.elapsed(),
    }
    .log();
}

fn log_access_error(info: &ConnectionInfo, e: ParseError) {
    if log::log_enabled!(target: ACCESS_LOG_TARGET, log::Level::Info) {
        log::info!(target: ACCESS_LOG_TARGET, "{} (bad request: {e}) ({})", e.status().as_u16(), Peer(info));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{handler_fn, MemoryTransport, Response};
    use squall_ioloop::IoLoop;

    async fn until(mut cond: impl FnMut() -> bool) {
        while !cond() {
            squall_ioloop::sleep(Duration::ZERO).await;
        }
    }

    /// A request that reaches an idle keep-alive connection in the same turn as the
    /// server's drain is answered (with `Connection: close`), then the connection
    /// closes; an idle connection with nothing to read just closes.
    #[test]
    fn a_request_racing_a_drain_is_answered() {
        for racing in [true, false] {
            let io_loop = IoLoop::new().unwrap();
            let (transport, peer) = MemoryTransport::pair();
            let control = Rc::new(Control::default());
            let handler = Rc::new(handler_fn(|_req| async { Response::text("hi") }));
            let conn = Http1Connection::with_params(
                transport,
                handler,
                Params::new(HttpServerConfig::default()),
                ConnectionInfo::new(None, 0),
                control.clone(),
                None,
            );
            let out = io_loop
                .run_sync(
                    async move {
                        let task = IoLoop::current().unwrap().spawn(conn.serve());
                        peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                        until(|| peer.write_calls() == 1).await;
                        if racing {
                            peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                        }
                        control.drain();
                        task.await.unwrap();
                        assert!(peer.is_closed());
                        String::from_utf8(peer.take_output().to_vec()).unwrap()
                    },
                    Some(Duration::from_secs(30)),
                )
                .unwrap();
            let answers: Vec<&str> = out.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
            assert_eq!(answers.len(), if racing { 2 } else { 1 }, "{out}");
            assert!(!answers[0].contains("Connection: close"), "{out}");
            if racing {
                assert!(answers[1].contains("Connection: close\r\n"), "{out}");
            }
        }
    }
}
