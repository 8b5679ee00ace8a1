//! [`WebSocket`]: one open connection over an [`IoStream`], for both ends: reading with
//! the control frames answered, writing with a bounded queue, keep-alive pings, and the
//! close handshake with a deadline.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use squall_ioloop::{instant_after, sleep_until, with_timeout};
use squall_iostream::{IoStream, ReadParseError, StreamError};

use crate::deflate::DeflateConfig;
use crate::error::{CloseCode, EncodeError, ProtocolError};
use crate::handshake::HandshakeError;
use crate::protocol::{CloseFrame, Event, Message, Protocol, Role, DEFAULT_MAX_MESSAGE_SIZE};

/// The options of a WebSocket connection, for servers and clients alike (Tornado's
/// `websocket_ping_interval`, `websocket_ping_timeout`, `websocket_max_message_size`
/// and `compression_options`, plus the limits Tornado leaves open).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebSocketConfig {
    /// The largest message accepted (after inflating); a bigger one closes the
    /// connection with 1009. Default 10 MiB, as Tornado.
    pub max_message_size: usize,
    /// Send a ping this often. Default: never. `Some(Duration::ZERO)` is never too, as
    /// `None` (Tornado's `websocket_ping_interval = 0` turns pings off).
    pub ping_interval: Option<Duration>,
    /// Close the connection (code 1000, reason "ping timed out") when no pong arrives
    /// this long after a ping. Default (with `ping_interval` set): the interval itself;
    /// a longer timeout is cut to the interval, and `Some(Duration::ZERO)` turns the
    /// check off (pings still go out, and a silent peer is kept), as Tornado 6.5.
    /// Without pings it means nothing.
    pub ping_timeout: Option<Duration>,
    /// How long to wait for the peer's half of the close handshake before dropping the
    /// connection. Default 5 s, as Tornado.
    pub close_timeout: Duration,
    /// The most bytes queued for a peer that does not read: a write past it fails and
    /// drops the connection. Default 20 MiB (two largest messages).
    pub max_write_buffer_size: usize,
    /// permessage-deflate: `None` (the default, as Tornado) turns it off.
    pub compression: Option<DeflateConfig>,
}

impl Default for WebSocketConfig {
    fn default() -> WebSocketConfig {
        WebSocketConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            ping_interval: None,
            ping_timeout: None,
            close_timeout: Duration::from_secs(5),
            max_write_buffer_size: 2 * DEFAULT_MAX_MESSAGE_SIZE,
            compression: None,
        }
    }
}

impl WebSocketConfig {
    /// The ping interval in effect: `ping_interval`, or `None` (no pings) when it is
    /// unset or zero.
    pub fn effective_ping_interval(&self) -> Option<Duration> {
        self.ping_interval.filter(|interval| !interval.is_zero())
    }

    /// The ping timeout in effect, if pings are on (see
    /// [`effective_ping_interval`](Self::effective_ping_interval)): `ping_timeout`, at
    /// most the interval, the interval when unset; `Some(Duration::ZERO)` means no
    /// check.
    pub fn effective_ping_timeout(&self) -> Option<Duration> {
        let interval = self.effective_ping_interval()?;
        Some(self.ping_timeout.map_or(interval, |t| t.min(interval)))
    }
}

/// What can go wrong with a WebSocket.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebSocketError {
    /// The connection is closed, or this end has sent its close frame (Tornado's
    /// `WebSocketClosedError`).
    Closed,
    /// The write queue would pass `max_write_buffer_size`: the connection was dropped.
    WriteBufferFull,
    /// A ping or close payload over 125 bytes, or a close code that may not be sent.
    Encode(EncodeError),
    /// The opening handshake failed (client side; a refused handshake carries the HTTP
    /// status, as Tornado's `HTTPClientError`).
    Handshake(HandshakeError),
    /// The URL is not a `ws://` URL this client can open.
    BadUrl(String),
    /// `ClientOptions::headers` holds a header the client's handshake sets itself
    /// (`Upgrade`, `Connection`, `Sec-WebSocket-*`, a body's framing); nothing was sent.
    HandshakeHeader(http::HeaderName),
    /// The connection failed: connect error, reset, timeout.
    Io(std::io::Error),
    /// The stream failed.
    Stream(StreamError),
}

impl fmt::Display for WebSocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebSocketError::Closed => f.write_str("the WebSocket is closed"),
            WebSocketError::WriteBufferFull => {
                f.write_str("write buffer full: the peer does not read")
            }
            WebSocketError::Encode(e) => e.fmt(f),
            WebSocketError::Handshake(e) => write!(f, "WebSocket handshake failed: {e}"),
            WebSocketError::BadUrl(url) => write!(f, "not a ws:// URL: {url}"),
            WebSocketError::HandshakeHeader(name) => write!(
                f,
                "the {name} header is the WebSocket handshake's own: ClientOptions::headers may not set it \
                 (subprotocols go in ClientOptions::subprotocols, compression in WebSocketConfig::compression)"
            ),
            WebSocketError::Io(e) => e.fmt(f),
            WebSocketError::Stream(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WebSocketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebSocketError::Encode(e) => Some(e),
            WebSocketError::Handshake(e) => Some(e),
            WebSocketError::Io(e) => Some(e),
            WebSocketError::Stream(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EncodeError> for WebSocketError {
    fn from(e: EncodeError) -> WebSocketError {
        match e {
            EncodeError::Closed => WebSocketError::Closed,
            other => WebSocketError::Encode(other),
        }
    }
}

/// What the keep-alive task read while the application was not reading, in order, for
/// the next reads to deliver.
#[derive(Debug)]
enum Backlog {
    /// A message, ping or pong (a ping was answered, a pong noted, when read).
    Item(Incoming),
    /// The peer's close frame (echoed when read).
    Closed,
    /// The peer broke the protocol.
    Failed(ProtocolError),
    /// End-of-file or a read error, with no close handshake.
    Eof,
}

/// What the reading side saw, for the handler driver.
#[derive(Debug)]
pub(crate) enum Incoming {
    Message(Message),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

/// The most input a server that failed a connection reads and drops before it closes;
/// past it the server waits, reading no more, until `close_timeout` (as the HTTP
/// server's lingering close, whose bound this is).
const LINGER_BYTES: usize = 16 << 20;

struct Shared {
    stream: IoStream,
    protocol: RefCell<Protocol>,
    /// Bytes read past the handshake before this connection took the stream.
    pending: Cell<Option<Box<Bytes>>>,
    /// What the handshake settled beyond the protocol: boxed, since most connections
    /// have neither a subprotocol nor (a server's) response headers to keep.
    negotiated: Option<Box<Negotiated>>,
    /// `close_timeout` in milliseconds (four bytes, not a `Duration`'s sixteen: every
    /// idle connection carries this).
    close_timeout_ms: u32,
    max_write_buffer_size: usize,
    /// The peer's close frame, once it came.
    close_frame: RefCell<Option<Box<CloseFrame>>>,
    /// The connection is over: no more events.
    finished: Cell<bool>,
    /// A pong arrived since the keep-alive task last pinged.
    heard: Cell<bool>,
    /// What the keep-alive task read while nobody was reading (boxed: most
    /// connections never have one; a `Cell`, taken and put back, to keep an idle
    /// connection's state small).
    #[expect(
        clippy::box_collection,
        reason = "a pointer where every idle connection would carry an empty VecDeque's 32 bytes"
    )]
    backlog: Cell<Option<Box<VecDeque<Backlog>>>>,
}

impl Drop for Shared {
    /// The application let go of the connection (its task returned, every handle is
    /// gone) in the middle of a close handshake: this end's close frame is out, so the
    /// peer's answer is coming, and nobody would read it. Closed with it unread, the
    /// connection would be reset (after `close_timeout`, by [`WebSocket::close`]'s
    /// deadline); a task reads for it instead ([`WebSocket::await_peer_close`]).
    fn drop(&mut self) {
        let protocol = self.protocol.get_mut();
        if self.finished.get() || self.stream.closed() || !protocol.sent_close() {
            return;
        }
        let role = protocol.role();
        let protocol = std::mem::replace(protocol, Protocol::new(role, None, 0));
        let closing = WebSocket {
            shared: Rc::new(Shared {
                stream: self.stream.clone(),
                protocol: RefCell::new(protocol),
                pending: Cell::new(self.pending.take()),
                negotiated: None,
                close_timeout_ms: self.close_timeout_ms,
                max_write_buffer_size: self.max_write_buffer_size,
                close_frame: RefCell::new(None),
                // Finished already: this state is never handed on again, even when the
                // task is dropped before its first poll (a loop closing drops what it
                // has not run, and a handed-on state handing itself on recursed until
                // the stack overflowed).
                finished: Cell::new(true),
                heard: Cell::new(false),
                backlog: Cell::new(None),
            }),
        };
        drop(self.stream.io_loop().spawn(closing.await_peer_close()));
    }
}

/// The handshake's outcome a connection keeps: the subprotocol, and on a client's
/// connection the server's response headers.
struct Negotiated {
    subprotocol: Option<Box<str>>,
    response_headers: Option<HeaderMap>,
}

/// An open WebSocket connection: Tornado's `WebSocketHandler` and
/// `WebSocketClientConnection` methods, as a cheap handle (clones share one connection).
///
/// Read with [`next`](WebSocket::next) (or let a [`WebSocketHandler`](crate::WebSocketHandler)
/// driver call `on_message`); write with [`write_message`](WebSocket::write_message),
/// or [`send`](WebSocket::send) to wait until the peer has taken the bytes; end with
/// [`close`](WebSocket::close). Pings are answered and close frames echoed while
/// reading; with pings on (`ping_interval` set, not zero), also while the application is not reading (the
/// keep-alive task reads then, and keeps what it read for the next reads, up to
/// `max_message_size` bytes of messages).
#[doc(alias = "WebSocketClientConnection")]
#[derive(Clone)]
pub struct WebSocket {
    shared: Rc<Shared>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.shared.protocol.borrow().role())
            .field("subprotocol", &self.selected_subprotocol())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl WebSocket {
    /// Takes over `stream` after a completed handshake. `pending` holds bytes already
    /// read past the handshake (they are decoded first); `protocol` carries the role and
    /// the negotiated compression. Starts the keep-alive pings if configured (on the
    /// stream's loop).
    pub fn from_stream(
        stream: IoStream,
        pending: Bytes,
        protocol: Protocol,
        subprotocol: Option<String>,
        config: &WebSocketConfig,
    ) -> WebSocket {
        WebSocket::from_handshake(stream, pending, protocol, subprotocol, None, config)
    }

    /// [`from_stream`](Self::from_stream), keeping the server's handshake response
    /// headers (the client).
    pub(crate) fn from_handshake(
        stream: IoStream,
        pending: Bytes,
        protocol: Protocol,
        subprotocol: Option<String>,
        response_headers: Option<HeaderMap>,
        config: &WebSocketConfig,
    ) -> WebSocket {
        let negotiated = (subprotocol.is_some() || response_headers.is_some()).then(|| {
            Box::new(Negotiated {
                subprotocol: subprotocol.map(String::into_boxed_str),
                response_headers,
            })
        });
        let ws = WebSocket {
            shared: Rc::new(Shared {
                stream,
                protocol: RefCell::new(protocol),
                pending: Cell::new((!pending.is_empty()).then(|| Box::new(pending))),
                negotiated,
                max_write_buffer_size: config.max_write_buffer_size,
                close_timeout_ms: u32::try_from(config.close_timeout.as_millis())
                    .unwrap_or(u32::MAX),
                close_frame: RefCell::new(None),
                finished: Cell::new(false),
                heard: Cell::new(false),
                backlog: Cell::new(None),
            }),
        };
        if let (Some(interval), Some(timeout)) = (
            config.effective_ping_interval(),
            config.effective_ping_timeout(),
        ) {
            let pinger = Rc::downgrade(&ws.shared);
            ws.shared
                .stream
                .io_loop()
                .spawn(WebSocket::keep_alive(pinger, interval, timeout));
        }
        ws
    }

    fn close_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.shared.close_timeout_ms))
    }

    /// The subprotocol both ends agreed on (Tornado's `selected_subprotocol`).
    pub fn selected_subprotocol(&self) -> Option<&str> {
        self.shared.negotiated.as_ref()?.subprotocol.as_deref()
    }

    /// The headers of the server's `101` handshake response, on a connection opened
    /// by [`websocket_connect`](crate::websocket_connect) (Tornado's
    /// `WebSocketClientConnection.headers`); `None` on a server's connection.
    pub fn response_headers(&self) -> Option<&HeaderMap> {
        self.shared.negotiated.as_ref()?.response_headers.as_ref()
    }

    /// The code of the peer's close frame, once it arrived (Tornado's `close_code`).
    pub fn close_code(&self) -> Option<CloseCode> {
        self.shared.close_frame.borrow().as_ref().map(|f| f.code)
    }

    /// The reason of the peer's close frame (Tornado's `close_reason`): `None` when the
    /// frame carried no reason (or no frame came), as Tornado, which sets it only for a
    /// frame longer than its code.
    pub fn close_reason(&self) -> Option<String> {
        self.shared
            .close_frame
            .borrow()
            .as_ref()
            .filter(|f| !f.reason.is_empty())
            .map(|f| f.reason.clone())
    }

    /// Whether the connection is over, or this end has sent its close frame.
    pub fn is_closed(&self) -> bool {
        self.shared.finished.get()
            || self.shared.stream.closed()
            || self.shared.protocol.borrow().sent_close()
    }

    /// The stream underneath (for its addresses, or `set_nodelay`).
    pub fn stream(&self) -> &IoStream {
        &self.shared.stream
    }

    /// Queues bytes for the peer; past the write limit the connection is dropped.
    fn queue(&self, bytes: Vec<u8>) -> Result<(), WebSocketError> {
        // The limit is checked here rather than set on the stream, which would give every
        // connection the stream's out-of-line limits block.
        let queued = self.shared.stream.write_buffer_len();
        if queued + bytes.len() > self.shared.max_write_buffer_size {
            log::info!(
                "WebSocket peer does not read: {queued} bytes queued; dropping the connection"
            );
            self.abort();
            return Err(WebSocketError::WriteBufferFull);
        }
        match self.shared.stream.write_buffered(bytes) {
            Ok(()) => {
                // Hand the bytes to the OS now if it can take them; the future need not
                // be awaited (dropping it does not cancel the write).
                drop(self.shared.stream.flush());
                Ok(())
            }
            Err(_) => {
                self.abort();
                Err(WebSocketError::Closed)
            }
        }
    }

    fn encode(
        &self,
        f: impl FnOnce(&mut Protocol, &mut Vec<u8>) -> Result<(), EncodeError>,
    ) -> Result<(), WebSocketError> {
        if self.shared.finished.get() || self.shared.stream.closed() {
            return Err(WebSocketError::Closed);
        }
        let mut out = Vec::new();
        f(&mut self.shared.protocol.borrow_mut(), &mut out)?;
        self.queue(out)
    }

    /// Sends a text (`String`, `&str`) or binary (`Vec<u8>`, `&[u8]`) message (Tornado's
    /// `write_message`). The bytes are queued at once; [`send`](WebSocket::send) waits
    /// for them to leave.
    ///
    /// # Errors
    ///
    /// [`WebSocketError::Closed`] once the connection is closed or closing (Tornado's
    /// `WebSocketClosedError`); [`WebSocketError::WriteBufferFull`] when the peer has
    /// left more than `max_write_buffer_size` unread (the connection is dropped).
    pub fn write_message(&self, message: impl Into<Message>) -> Result<(), WebSocketError> {
        let message = message.into();
        self.encode(|p, out| p.encode_message(&message, out))
    }

    /// Sends a message and waits until it has left this process's buffer: the
    /// back-pressure of the async form. A task that sends with `send().await` never
    /// queues more than one message ahead of a slow peer.
    ///
    /// # Errors
    ///
    /// As [`write_message`](WebSocket::write_message), and [`WebSocketError::Closed`]
    /// if the connection drops before the bytes are out.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), WebSocketError> {
        self.write_message(message)?;
        self.shared
            .stream
            .flush()
            .await
            .map_err(|_| WebSocketError::Closed)
    }

    /// Sends a ping (Tornado's `ping`); the pong comes to `on_pong`.
    ///
    /// # Errors
    ///
    /// [`WebSocketError::Closed`]; [`WebSocketError::Encode`] for data over 125 bytes.
    pub fn ping(&self, data: &[u8]) -> Result<(), WebSocketError> {
        self.encode(|p, out| p.encode_ping(data, out))
    }

    /// Starts the close handshake (Tornado's `close(code, reason)`): sends a close frame,
    /// then drops the connection when the peer answers, or after `close_timeout`.
    /// Closing twice does nothing. The answer is read by the application's reads
    /// ([`next`](Self::next), a handler's driver); once the application has dropped
    /// every handle (its task returned), by a task of the connection's own, which drops
    /// what comes before it, so that the connection closes with nothing unread.
    ///
    /// # Errors
    ///
    /// [`WebSocketError::Encode`] for a code that may not be sent or a reason over 123
    /// bytes (nothing is sent then).
    pub fn close(&self, code: Option<CloseCode>, reason: &str) -> Result<(), WebSocketError> {
        if self.is_closed() {
            return Ok(());
        }
        self.encode(|p, out| p.encode_close(code, reason, out))?;
        let stream = self.shared.stream.clone();
        let timeout = self.close_timeout();
        self.shared.stream.io_loop().spawn(async move {
            // The peer's answer (or end-of-file) ends the read loop, which drops the
            // connection; this is the deadline for a peer that never answers.
            squall_ioloop::sleep(timeout).await;
            stream.close();
        });
        Ok(())
    }

    /// Drops the connection at once, without a close handshake.
    pub fn abort(&self) {
        self.shared.finished.set(true);
        self.shared.stream.close();
    }

    /// The next message, or `None` once the connection is closed (the async form of
    /// `on_message`). Pings are answered, pongs noted and the peer's close frame
    /// answered on the way; messages come in the order they were sent.
    pub async fn next(&self) -> Option<Message> {
        loop {
            match self.next_incoming().await? {
                Incoming::Message(message) => return Some(message),
                Incoming::Ping(_) | Incoming::Pong(_) => {}
            }
        }
    }

    /// Decodes the next event from what is pending or the stream.
    async fn read_event(&self) -> Result<Option<Event>, ProtocolError> {
        let shared = &self.shared;
        // In a block of its own, so that the future does not keep `pending` across the
        // read below.
        {
            let pending = shared.pending.take();
            if let Some(pending) = pending {
                let mut input = &pending[..];
                let event = shared.protocol.borrow_mut().decode(&mut input)?;
                if !input.is_empty() {
                    let rest = pending.slice(pending.len() - input.len()..);
                    shared.pending.set(Some(Box::new(rest)));
                }
                if event.is_some() {
                    return Ok(event);
                }
            }
        }
        loop {
            let read = shared
                .stream
                .read_parse(usize::MAX, |buf: &[u8]| {
                    let mut input = buf;
                    let event = shared.protocol.borrow_mut().decode(&mut input)?;
                    Ok::<_, ProtocolError>(Some((event, buf.len() - input.len())))
                })
                .await;
            match read {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => continue,
                Err(ReadParseError::Parse(e)) => return Err(e),
                Err(_) => return Ok(None),
            }
        }
    }

    /// The next message or control frame for the handler; `None` when the connection is
    /// over (closed by either end, failed, or dropped).
    pub(crate) async fn next_incoming(&self) -> Option<Incoming> {
        if self.shared.finished.get() {
            return None;
        }
        // Checked apart, so that nothing of the backlog is kept across the read below.
        let mut failed = false;
        if self.has_backlog() {
            match self.take_backlog() {
                Some(Backlog::Item(incoming)) => return Some(incoming),
                // The peer's close frame: echoed when it was read.
                Some(Backlog::Closed) | None => {}
                Some(Backlog::Failed(e)) => {
                    self.fail(e);
                    failed = true;
                }
                Some(Backlog::Eof) => {
                    self.abort();
                    return None;
                }
            }
        } else {
            match self.read_event().await {
                Ok(Some(event)) => {
                    if let Some(incoming) = self.take_event(event) {
                        return Some(incoming);
                    }
                }
                Ok(None) => {
                    // End-of-file or a reset without a close handshake.
                    self.abort();
                    return None;
                }
                Err(e) => {
                    self.fail(e);
                    failed = true;
                }
            }
        }
        // Both close frames are out. Boxed: only a closing connection pays for the close
        // handshake's timers, not every idle one's future.
        Box::pin(self.finish(failed)).await;
        None
    }

    /// The peer broke the protocol: this end's close frame says how (with Tornado's
    /// reason, "message too big", for a message over `max_message_size`).
    fn fail(&self, e: ProtocolError) {
        log::debug!(
            "WebSocket protocol error from the peer: {e}; failing with {}",
            e.close_code()
        );
        let reason = match e {
            ProtocolError::MessageTooBig => "message too big",
            ProtocolError::IdleFragments => "too many empty fragments",
            _ => "",
        };
        let _ = self.encode(|p, out| p.encode_close(Some(e.close_code()), reason, out));
    }

    /// Answers what needs an answer (a ping's pong, a close frame's echo); `None` once
    /// the peer's close frame came.
    fn take_event(&self, event: Event) -> Option<Incoming> {
        let shared = &self.shared;
        match event {
            Event::Message(message) => Some(Incoming::Message(message)),
            Event::Ping(data) => {
                if !shared.protocol.borrow().sent_close() {
                    let _ = self.encode(|p, out| p.encode_pong(&data, out));
                }
                Some(Incoming::Ping(data))
            }
            Event::Pong(data) => {
                shared.heard.set(true);
                Some(Incoming::Pong(data))
            }
            Event::Close(frame) => {
                let code = frame.as_ref().map(|f| f.code);
                *shared.close_frame.borrow_mut() = frame.map(Box::new);
                if !shared.protocol.borrow().sent_close() {
                    let _ = self.encode(|p, out| p.encode_close(code, "", out));
                }
                None
            }
        }
    }

    /// Ends the connection once both close frames are out: the server closes the TCP
    /// connection when its frame has left (RFC 6455 §7.1.1); the client waits for the
    /// server to, for at most `close_timeout`.
    ///
    /// A server that `failed` the connection (the peer broke the protocol, or sent a
    /// message over `max_message_size`) may leave the peer's input unread: closing then
    /// would make the kernel answer with a reset, which can destroy the close frame
    /// before the peer reads it (Node's `ws` then reports 1006, not 1009). So it shuts
    /// its write side down after the frame and reads and drops what the peer still
    /// sends, its close frame included, until the peer's end-of-file or `close_timeout`
    /// (nginx's lingering close; the HTTP server closes the same way). Past
    /// [`LINGER_BYTES`] it reads no more but still waits: a peer that reads while it
    /// sends gets the time to read the close frame before the close resets.
    async fn finish(&self, failed: bool) {
        let shared = &self.shared;
        shared.finished.set(true);
        let timeout = self.close_timeout();
        let _ = with_timeout(timeout, shared.stream.flush()).await;
        if failed && shared.protocol.borrow().role() == Role::Server {
            let stream = &shared.stream;
            let _ = with_timeout(timeout, async {
                if stream.shutdown_write().await.is_err() {
                    return;
                }
                let mut dropped = 0;
                while dropped < LINGER_BYTES {
                    match stream.read_bytes(64 * 1024, true).await {
                        Ok(bytes) if !bytes.is_empty() => dropped += bytes.len(),
                        _ => return,
                    }
                }
                // Ended by the timeout around it.
                std::future::pending::<()>().await;
            })
            .await;
        }
        if shared.protocol.borrow().role() == Role::Client {
            let _ = with_timeout(timeout, shared.stream.read_until_close()).await;
        }
        shared.stream.close();
    }

    /// The end of a close handshake nobody reads for (see `Shared`'s `Drop`): reads
    /// until the peer's close frame, dropping what comes before it and answering
    /// nothing, or its end-of-file, for at most `close_timeout`, then ends the
    /// connection as [`finish`](Self::finish) does (the server closes; the client waits
    /// for the server to), so that it closes with no input unread (RFC 6455 §7.1.1).
    async fn await_peer_close(self) {
        // Made finished by the drop that spawned this (so that it is never handed on
        // again); set here too for any other caller.
        self.shared.finished.set(true);
        let timeout = self.close_timeout();
        let _ = with_timeout(timeout, async {
            while !self.shared.protocol.borrow().received_close() {
                match self.read_event().await {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return,
                }
            }
        })
        .await;
        self.finish(false).await;
    }

    /// Whether the keep-alive task read something for the application.
    fn has_backlog(&self) -> bool {
        let queue = self.shared.backlog.take();
        let has = queue.is_some();
        self.shared.backlog.set(queue);
        has
    }

    /// The first of what the keep-alive task read for the application, if anything.
    fn take_backlog(&self) -> Option<Backlog> {
        let mut queue = self.shared.backlog.take()?;
        let first = queue.pop_front();
        if !queue.is_empty() {
            self.shared.backlog.set(Some(queue));
        }
        first
    }

    /// What the backlog holds: message bytes, and whether it ends the connection.
    fn backlog_state(&self) -> (usize, bool) {
        let queue = self.shared.backlog.take();
        let state = queue.as_ref().map_or((0, false), |q| {
            let bytes = q
                .iter()
                .map(|b| match b {
                    Backlog::Item(Incoming::Message(m)) => m.as_bytes().len(),
                    _ => 0,
                })
                .sum();
            let ended = matches!(
                q.back(),
                Some(Backlog::Closed | Backlog::Failed(_) | Backlog::Eof)
            );
            (bytes, ended)
        });
        self.shared.backlog.set(queue);
        state
    }

    /// While the application is not reading: reads what has arrived, without waiting,
    /// answering pings, noting pongs and echoing a close frame as a read would, and
    /// keeps it all in order for the application's next reads. Stops once the backlog
    /// holds `max_message_size` bytes of messages (a peer that sends that much is
    /// alive: its pong may wait behind them, so it counts as heard).
    fn read_for_the_application(&self) {
        let shared = &self.shared;
        // The application's read (`next`, the handler driver) holds the stream's read
        // while it waits: it answers what comes itself.
        if shared.stream.reading() || shared.finished.get() {
            return;
        }
        let (mut held, ended) = self.backlog_state();
        if ended {
            return;
        }
        let limit = shared.protocol.borrow().max_message_size();
        let mut buf = BytesMut::new();
        loop {
            if held >= limit {
                shared.heard.set(true);
                return;
            }
            // Bytes read past the handshake come first, as for a read.
            let mut input = match shared.pending.take() {
                Some(pending) => *pending,
                None => {
                    buf.clear();
                    // One poll: what is there now, or nothing. Nobody waits on it: the
                    // application's next read brings its own waker.
                    let mut cx = Context::from_waker(Waker::noop());
                    let polled = shared.stream.poll_read_buf(&mut cx, &mut buf);
                    match polled {
                        Poll::Pending | Poll::Ready(Err(StreamError::ReadInProgress)) => return,
                        Poll::Ready(Ok(n)) if n > 0 => buf.split().freeze(),
                        Poll::Ready(_) => {
                            self.push_backlog(Backlog::Eof);
                            return;
                        }
                    }
                }
            };
            while !input.is_empty() {
                let mut rest = &input[..];
                let decoded = shared.protocol.borrow_mut().decode(&mut rest);
                let used = input.len() - rest.len();
                let _ = input.split_to(used);
                match decoded {
                    Ok(Some(event)) => match self.take_event(event) {
                        Some(incoming) => {
                            if let Incoming::Message(m) = &incoming {
                                held += m.as_bytes().len();
                            }
                            self.push_backlog(Backlog::Item(incoming));
                        }
                        None => {
                            self.push_backlog(Backlog::Closed);
                            return;
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        self.push_backlog(Backlog::Failed(e));
                        return;
                    }
                }
            }
        }
    }

    fn push_backlog(&self, item: Backlog) {
        let mut queue = self.shared.backlog.take().unwrap_or_default();
        queue.push_back(item);
        self.shared.backlog.set(Some(queue));
    }

    /// Pings every `interval`; when no pong came within `timeout` of a ping, closes
    /// the connection with 1000 and "ping timed out" (Tornado 6.5). While the
    /// application is not reading, reads for it (see
    /// [`read_for_the_application`](Self::read_for_the_application)) so that pings are
    /// answered and pongs seen all the same.
    ///
    /// Holds the connection only while it runs, not while it sleeps: once the
    /// application has dropped every handle (its task ended, or its handler panicked),
    /// the connection is dropped with them, as it is without pings.
    async fn keep_alive(connection: Weak<Shared>, interval: Duration, timeout: Duration) {
        let mut next_ping = instant_after(Instant::now(), interval);
        let mut deadline: Option<Instant> = None;
        loop {
            let wake = deadline.map_or(next_ping, |d| d.min(next_ping));
            sleep_until(wake).await;
            let Some(shared) = connection.upgrade() else {
                return;
            };
            let ws = WebSocket { shared };
            let shared = &ws.shared;
            if ws.is_closed() {
                return;
            }
            ws.read_for_the_application();
            let now = Instant::now();
            if let Some(at) = deadline {
                if shared.heard.get() {
                    deadline = None;
                } else if now >= at {
                    log::info!("WebSocket peer sent no pong within {timeout:?} of a ping; closing");
                    if ws.close(Some(CloseCode::NORMAL), "ping timed out").is_err() {
                        ws.abort();
                    }
                    return;
                }
            }
            if now >= next_ping {
                if ws.ping(b"").is_err() {
                    return;
                }
                if deadline.is_none() && !timeout.is_zero() {
                    shared.heard.set(false);
                    deadline = Some(instant_after(now, timeout));
                }
                next_ping = instant_after(now, interval);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle WebSocket costs its `Shared` and its task's future (plus the stream and
    /// the loop's slots): these bounds keep it under 1 KiB in all (941 bytes of RSS per
    /// idle connection measured with `cargo xtask wsbench` when the task's bound was
    /// 192 bytes; `run_handler`'s catching of a handler's panic, so that `on_close` still
    /// runs, added 32).
    #[test]
    fn an_idle_websocket_stays_small() {
        struct Echo;
        impl crate::WebSocketHandler for Echo {
            async fn on_message(&mut self, ws: &WebSocket, message: Message) {
                let _ = ws.write_message(message);
            }
        }
        assert!(
            std::mem::size_of::<Protocol>() <= 128,
            "{}",
            std::mem::size_of::<Protocol>()
        );
        assert!(
            std::mem::size_of::<Shared>() <= 208,
            "{}",
            std::mem::size_of::<Shared>()
        );
        let io_loop = squall_ioloop::IoLoop::new().unwrap();
        io_loop.make_current();
        let (a, _b) = IoStream::pipe().unwrap();
        let protocol = Protocol::new(Role::Server, None, 100);
        let ws =
            WebSocket::from_stream(a, Bytes::new(), protocol, None, &WebSocketConfig::default());
        eprintln!(
            "next_incoming {}",
            std::mem::size_of_val(&ws.next_incoming())
        );
        eprintln!("read_event {}", std::mem::size_of_val(&ws.read_event()));
        let task = crate::run_handler(ws, Echo);
        assert!(
            std::mem::size_of_val(&task) <= 224,
            "{}",
            std::mem::size_of_val(&task)
        );
    }
}
