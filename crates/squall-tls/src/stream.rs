//! TLS on an [`IoStream`]: the [`Layer`] that puts a [`TlsSession`] between the fd and
//! the stream's buffers, and the stream-level API ([`TlsStreamExt`]: `start_tls`,
//! `wait_for_handshake`, what the handshake agreed).

use std::any::Any;
use std::cell::RefCell;
use std::fs::File;
use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::{CipherSuite, ProtocolVersion};
use rustls_pki_types::CertificateDer;
use squall_iostream::{IoStream, Layer, StreamError};
use squall_poller::sys;

use crate::config::{TlsClientConfig, TlsServerConfig};
use crate::error::TlsError;
use crate::session::TlsSession;

/// Ciphertext lands here from the fd, then rustls copies it into its own buffers: one
/// buffer per thread, so an idle TLS stream keeps no read buffer of its own.
const SCRATCH_LEN: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_LEN].into_boxed_slice());
}

/// Runs `f` with the thread's ciphertext buffer (a temporary one if it is in use
/// further up the stack).
fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut f = Some(f);
    let res = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut b) => f.take().map(|f| f(&mut b)),
        Err(_) => None,
    });
    match (res, f) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(&mut vec![0u8; SCRATCH_LEN]),
        // `f` ran and returned `None`? It cannot: `map` gives `Some` when it runs.
        (_, None) => unreachable!("the closure ran but gave nothing back"),
    }
}

fn tls_io(e: TlsError) -> io::Error {
    e.into()
}

/// The [`Layer`] of a TLS stream: a [`TlsSession`] between the fd and the stream.
#[derive(Debug)]
pub(crate) struct TlsLayer {
    pub(crate) session: TlsSession,
    /// A `wait_for_handshake` future is waiting.
    waiting: bool,
    /// `close_notify` was queued.
    closing: bool,
    /// The fd said it is not a socket (`ENOTSOCK`): it is read and written with
    /// `read(2)` and `write(2)` from then on, not `recv` and `send`.
    not_socket: bool,
    /// An error of the fd (a reset) met by a read that had plaintext to return: the
    /// plaintext went first, the error goes to the next read.
    held: Option<io::Error>,
}

impl TlsLayer {
    fn new(session: TlsSession) -> TlsLayer {
        TlsLayer {
            session,
            waiting: false,
            closing: false,
            not_socket: false,
            held: None,
        }
    }

    /// One round with the fd for a read: what the session has to send (a handshake's
    /// next flight), one read of what came, and what that calls for (a handshake's
    /// reply, a key update's).
    fn exchange(&mut self, fd: &File) -> io::Result<Pull> {
        if self.session.wants_write() {
            self.send_some(fd)?;
        }
        let got = self.pull(fd)?;
        if self.session.wants_write() {
            self.send_some(fd)?;
        }
        Ok(got)
    }

    /// Sends what the session holds until it is all gone or the fd is full.
    fn send(&mut self, fd: &File) -> io::Result<()> {
        while self.session.wants_write() {
            let session = &mut self.session;
            let res = sys::on_fd(fd.as_fd(), &mut self.not_socket, |mut io| {
                session.write_output(&mut io)
            });
            match res {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends what it can; a full fd is not an error here (the stream arms WRITE when
    /// the layer still wants to write).
    fn send_some(&mut self, fd: &File) -> io::Result<()> {
        match self.send(fd) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// One `read(2)` (or `recv`) of the fd into `buf`, again if a signal interrupted it.
    fn read_fd(&mut self, fd: &File, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match sys::on_fd(fd.as_fd(), &mut self.not_socket, |io| io.read_some(buf)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// One `read(2)` of ciphertext into the session. `Ok(None)`: the fd has nothing
    /// now; `Ok(Some(true))`: the fd may have more (the read filled the buffer).
    fn pull(&mut self, fd: &File) -> io::Result<Pull> {
        let got = with_scratch(|buf| match self.read_fd(fd, buf) {
            Ok(0) => Ok(Pull::Eof),
            Ok(n) => self
                .session
                .feed(&buf[..n])
                .map(|()| Pull::Got {
                    more: n == buf.len(),
                })
                .map_err(tls_io),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Pull::Nothing),
            Err(e) => Err(e),
        });
        match got {
            Ok(Pull::Eof) => {
                self.session.feed_eof().map_err(tls_io)?;
                Ok(Pull::Eof)
            }
            Err(e) => {
                // rustls may have queued an alert for the peer: one try to send it.
                let _ = self.send_some(fd);
                Err(e)
            }
            other => other,
        }
    }
}

enum Pull {
    Got { more: bool },
    Nothing,
    Eof,
}

impl Layer for TlsLayer {
    fn read(&mut self, fd: &File, dst: &mut [u8]) -> io::Result<usize> {
        let mut filled = self.session.read_plaintext(dst).map_err(tls_io)?;
        loop {
            if filled == dst.len() {
                return Ok(filled);
            }
            // A failure waits behind the plaintext received before it (a read that
            // returned that plaintext said the layer holds more): it is this read's.
            if let Some(e) = self.held.take() {
                if filled > 0 {
                    self.held = Some(e);
                    return Ok(filled);
                }
                return Err(e);
            }
            if let Some(e) = self.session.error() {
                return if filled > 0 {
                    Ok(filled)
                } else {
                    Err(tls_io(e.clone()))
                };
            }
            if self.session.peer_closed() || self.session.transport_eof() {
                return Ok(filled);
            }
            let more = match self.exchange(fd) {
                Ok(Pull::Eof) => return Ok(filled),
                Ok(Pull::Nothing) => false,
                Ok(Pull::Got { more }) => more,
                // What came before the failure (the records before a bad one, the data
                // before a reset) is the peer's: it is read first, and the failure
                // after it (the top of the loop).
                Err(e) => {
                    if self.session.error().is_none() {
                        self.held = Some(e);
                    }
                    filled += self
                        .session
                        .read_plaintext(&mut dst[filled..])
                        .map_err(tls_io)?;
                    continue;
                }
            };
            filled += self
                .session
                .read_plaintext(&mut dst[filled..])
                .map_err(tls_io)?;
            if !more && filled < dst.len() {
                return if filled > 0 || self.session.peer_closed() {
                    Ok(filled)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
        }
    }

    fn write(&mut self, fd: &File, src: &[IoSlice<'_>]) -> io::Result<usize> {
        // Only into an empty outbox: unsent ciphertext stays one batch deep.
        if self.session.wants_write() {
            self.send_some(fd)?;
            if self.session.wants_write() {
                return Ok(0);
            }
        }
        // rustls takes what its limit allows (all of a usual response) and encrypts it;
        // the stream offers the rest again once this has gone.
        let taken = self.session.write_plaintext(src).map_err(tls_io)?;
        if taken > 0 {
            self.send_some(fd)?;
        }
        Ok(taken)
    }

    fn flush(&mut self, fd: &File) -> io::Result<()> {
        self.send(fd)
    }

    fn drive(&mut self, fd: &File) -> io::Result<bool> {
        loop {
            self.send_some(fd)?;
            if !self.session.is_handshaking() {
                return Ok(false);
            }
            match self.pull(fd) {
                Ok(Pull::Eof) => return Ok(true),
                Ok(Pull::Nothing) => return Ok(false),
                Ok(Pull::Got { .. }) => {}
                // The handshake ended in this read, and data came after it, then a
                // failure: the handshake stands, the data is read, then the failure
                // (which the layer holds for that read), as in `read`.
                Err(e) if !self.session.is_handshaking() && self.session.has_buffered_input() => {
                    if self.session.error().is_none() {
                        self.held = Some(e);
                    }
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    fn has_buffered_input(&mut self) -> bool {
        // The end of the stream (the peer's close_notify, or the transport's end of
        // file, read with the last data) or a failure behind the last data is held
        // too: the read that reports it must not wait for the socket, which may say
        // nothing more.
        self.session.has_buffered_input()
            || self.session.peer_closed()
            || self.session.transport_eof()
            || self.session.error().is_some()
            || self.held.is_some()
    }

    fn is_ready(&self) -> bool {
        !self.session.is_handshaking()
    }

    fn close(&mut self) {
        if !self.closing {
            self.closing = true;
            self.session.send_close_notify();
        }
    }

    fn drain(&mut self, fd: &File) {
        // A failed session (a refused handshake: no client certificate, a bad record)
        // has sent its alert; what the peer sent since (a TLS 1.3 client's first
        // request rides right behind its Finished) is worthless, read and dropped
        // unprocessed, since left unread it would turn the close into a reset that
        // can overtake the alert. A live one takes what it reads (session tickets).
        let failed = self.session.error().is_some();
        if self.session.is_handshaking() && !failed {
            return;
        }
        // A few reads at most, errors ignored: the close goes on whatever comes.
        for _ in 0..4 {
            let more = if failed {
                with_scratch(|buf| matches!(self.read_fd(fd, buf), Ok(n) if n == buf.len()))
            } else {
                matches!(self.pull(fd), Ok(Pull::Got { more: true }))
            };
            if !more {
                return;
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

// ------------------------------------------------------------------ the stream API

/// Which side of a handshake a stream takes.
enum Side<'a> {
    Server(&'a TlsServerConfig),
    Client(&'a TlsClientConfig, &'a str),
}

fn start(stream: &IoStream, side: Side<'_>) -> Result<(), TlsError> {
    if stream.has_layer() {
        return Err(TlsError::AlreadyTls);
    }
    let session = match side {
        Side::Server(c) => TlsSession::server(c)?,
        Side::Client(c, name) => TlsSession::client(c, name)?,
    };
    stream
        .set_layer(Box::new(TlsLayer::new(session)))
        .map_err(|_| TlsError::StreamNotIdle)
}

fn with_tls<R>(stream: &IoStream, f: impl FnOnce(&mut TlsLayer) -> R) -> Option<R> {
    stream
        .with_layer(|l| l.as_any_mut().downcast_mut::<TlsLayer>().map(f))
        .flatten()
}

/// TLS on an [`IoStream`]: Tornado's `SSLIOStream` and `IOStream.start_tls`.
///
/// A TLS stream is an `IoStream` with a TLS layer between its fd and its buffers: the
/// same handle, the same reads (`read_until`, `read_bytes`, `read_parse`...), writes,
/// limits and close causes. The handshake starts with `start_tls_*` and runs on the
/// loop whether or not the stream is used (a read, a write or
/// [`wait_for_handshake`](TlsStreamExt::wait_for_handshake) moves it on too); writes
/// made before it ends are queued and sent after it.
#[doc(alias = "SSLIOStream")]
pub trait TlsStreamExt {
    /// Makes this stream the server side of a TLS connection (Tornado's
    /// `start_tls(server_side=True, ...)`, and what `SSLIOStream` does to an accepted
    /// socket). The handshake starts at once and runs on the loop, answering the
    /// client's flights as they arrive with nobody reading or writing, as Tornado's
    /// `SSLIOStream` starts its handshake on the next loop iteration.
    ///
    /// # Errors
    ///
    /// [`TlsError::StreamNotIdle`] if a read is pending, bytes are buffered or writes
    /// queued (Tornado: `ValueError`), or the stream is closed or connecting;
    /// [`TlsError::AlreadyTls`].
    fn start_tls_server(&self, config: &TlsServerConfig) -> Result<(), TlsError>;

    /// Makes this stream the client side of a TLS connection to `server_name`, whose
    /// certificate must be valid for that name: STARTTLS, or a TLS client over a stream
    /// connected by hand. Tornado's `start_tls(server_side=False, ...,
    /// server_hostname=...)`. The client's hello is sent at once (or as soon as the fd
    /// takes it) and the handshake runs on the loop, as for the server side.
    ///
    /// # Errors
    ///
    /// As [`start_tls_server`](TlsStreamExt::start_tls_server);
    /// [`TlsError::InvalidServerName`].
    fn start_tls_client(&self, config: &TlsClientConfig, server_name: &str)
        -> Result<(), TlsError>;

    /// Resolves when the handshake is done (at once if it is). Tornado's
    /// `wait_for_handshake`. It bounds nothing by itself: wrap it in
    /// `IoLoop::with_timeout`, or use [`handshake`](TlsStreamExt::handshake).
    ///
    /// # Errors
    ///
    /// [`StreamError::AlreadyWaiting`] if another call waits for a handshake still
    /// running (the stream stays open; once the handshake is done every call succeeds
    /// at once, even after the stream closed, as in Tornado); [`StreamError::Closed`]
    /// whose cause carries the [`TlsError`] if the handshake fails. A stream that is
    /// not TLS has no handshake to wait for: `Ok` while it is open, `Closed` with its
    /// cause once it is closed.
    fn wait_for_handshake(&self) -> WaitForHandshake<'_>;

    /// Waits for the handshake for at most `timeout`; on timeout the stream is closed
    /// and the error is [`TlsError::HandshakeTimeout`].
    fn handshake(&self, timeout: Duration) -> impl Future<Output = Result<(), StreamError>>;

    /// Whether the stream is TLS.
    fn is_tls(&self) -> bool;

    /// Whether the stream reached its end of file after the handshake without the
    /// peer's `close_notify`: a truncation, which anyone on the path can cause. A
    /// stream takes it as a plain end of file (HTTP frames its messages itself: a
    /// length or a chunked body is complete or not whatever the close); a protocol
    /// whose data ends with the connection (an HTTP body read until close) must treat
    /// it as [`TlsError::Truncated`] (RFC 8446 §6.1, RFC 9112 §9.8). `false` for a
    /// stream that is not TLS or has not reached its end.
    fn truncated(&self) -> bool;

    /// What the handshake agreed so far: `None` for a stream that is not TLS.
    fn tls_info(&self) -> Option<TlsInfo>;
}

/// What a TLS handshake agreed. Tornado's `SSLIOStream` exposes the same through
/// `socket.selected_alpn_protocol()`, `version()` and `getpeercert()`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsInfo {
    /// Whether the handshake is done.
    pub handshake_done: bool,
    /// The ALPN protocol agreed.
    pub alpn_protocol: Option<Vec<u8>>,
    /// The protocol version agreed.
    pub protocol_version: Option<ProtocolVersion>,
    /// The server name the client sent (SNI), on the server side.
    pub server_name: Option<String>,
    /// The peer's certificate chain (a server sees one only if it asked for client
    /// certificates).
    pub peer_certificates: Option<Vec<CertificateDer<'static>>>,
    /// The cipher suite agreed (Python's `SSLSocket.cipher()`).
    pub cipher_suite: Option<CipherSuite>,
    /// Whether the handshake resumed an earlier session instead of a full handshake
    /// (Python's `SSLSocket.session_reused`).
    pub resumed: bool,
}

impl TlsStreamExt for IoStream {
    fn start_tls_server(&self, config: &TlsServerConfig) -> Result<(), TlsError> {
        start(self, Side::Server(config))
    }

    fn start_tls_client(
        &self,
        config: &TlsClientConfig,
        server_name: &str,
    ) -> Result<(), TlsError> {
        start(self, Side::Client(config, server_name))
    }

    fn wait_for_handshake(&self) -> WaitForHandshake<'_> {
        // Not TLS, or its handshake done (nothing to wait for, whoever else waits):
        // answered from the stream's state.
        let state = with_tls(self, |l| {
            if !l.session.is_handshaking() {
                WaitState::Shaken
            } else if std::mem::replace(&mut l.waiting, true) {
                WaitState::Refused
            } else {
                WaitState::Waiting
            }
        })
        .unwrap_or(WaitState::Plain);
        WaitForHandshake {
            stream: self,
            state,
        }
    }

    fn handshake(&self, timeout: Duration) -> impl Future<Output = Result<(), StreamError>> {
        handshake_within(self, timeout)
    }

    fn is_tls(&self) -> bool {
        with_tls(self, |_| ()).is_some()
    }

    fn truncated(&self) -> bool {
        with_tls(self, |l| l.session.truncated()) == Some(true)
    }

    fn tls_info(&self) -> Option<TlsInfo> {
        with_tls(self, |l| {
            let s = &l.session;
            TlsInfo {
                handshake_done: !s.is_handshaking(),
                alpn_protocol: s.alpn_protocol().map(<[u8]>::to_vec),
                protocol_version: s.protocol_version(),
                server_name: s.server_name().map(str::to_owned),
                peer_certificates: s.peer_certificates().map(<[_]>::to_vec),
                cipher_suite: s.cipher_suite(),
                resumed: s.resumed(),
            }
        })
    }
}

async fn handshake_within(stream: &IoStream, timeout: Duration) -> Result<(), StreamError> {
    let wait = stream.wait_for_handshake();
    match stream.io_loop().with_timeout(timeout, wait).await {
        Ok(res) => res,
        Err(_) => {
            abort(stream, TlsError::HandshakeTimeout);
            Err(TlsError::HandshakeTimeout.into())
        }
    }
}

/// Closes a stream because of `e`, which becomes its close cause.
fn abort(stream: &IoStream, e: TlsError) {
    stream.close_with_error(e.into());
}

/// The future of [`TlsStreamExt::wait_for_handshake`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitForHandshake<'a> {
    stream: &'a IoStream,
    state: WaitState,
}

enum WaitState {
    /// This future waits for the handshake.
    Waiting,
    /// Another future waits.
    Refused,
    /// The handshake was done when the future was made: it succeeded, whatever became
    /// of the stream since.
    Shaken,
    /// The stream is not TLS.
    Plain,
    /// The future has given its answer.
    Done,
}

impl Future for WaitForHandshake<'_> {
    type Output = Result<(), StreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.state {
            WaitState::Done => {
                Poll::Ready(Err(StreamError::Closed(squall_iostream::CloseCause::Local)))
            }
            WaitState::Refused => {
                self.state = WaitState::Done;
                Poll::Ready(Err(StreamError::AlreadyWaiting))
            }
            WaitState::Shaken => {
                self.state = WaitState::Done;
                Poll::Ready(Ok(()))
            }
            WaitState::Plain => {
                self.state = WaitState::Done;
                Poll::Ready(if self.stream.closed() {
                    Err(StreamError::Closed(
                        self.stream
                            .error()
                            .unwrap_or(squall_iostream::CloseCause::Local),
                    ))
                } else {
                    Ok(())
                })
            }
            WaitState::Waiting => {
                let res = self.stream.poll_layer_ready(cx);
                if res.is_ready() {
                    self.state = WaitState::Done;
                    with_tls(self.stream, |l| l.waiting = false);
                }
                res
            }
        }
    }
}

impl Drop for WaitForHandshake<'_> {
    fn drop(&mut self) {
        if matches!(self.state, WaitState::Waiting) {
            with_tls(self.stream, |l| l.waiting = false);
        }
    }
}

impl std::fmt::Debug for WaitForHandshake<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitForHandshake").finish_non_exhaustive()
    }
}
