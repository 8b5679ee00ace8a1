//! [`IoStream`]: the public API. The state it drives is in `state.rs`, the read engine
//! in `engine.rs`, the write path in `write.rs`, connecting in `connect.rs`, and the fd
//! syscalls in `fdio.rs`.

use std::fmt;
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use socket2::SockRef;
use squall_ioloop::IoLoop;

use crate::error::{CloseCause, StreamError};
use crate::shared::SHARED_LEN;
use crate::state::*;
use crate::write::{WriteFuture, WriteState};

/// Tornado's default `max_buffer_size`: 100 MiB.
pub const DEFAULT_MAX_BUFFER_SIZE: usize = 100 * 1024 * 1024;
/// Tornado's default `read_chunk_size`: 64 KiB (also the per-thread buffer size).
pub const DEFAULT_READ_CHUNK_SIZE: usize = SHARED_LEN;

/// Tornado's `IOStream` (and `PipeIOStream`): a non-blocking fd with async reads and
/// writes on the [`IoLoop`].
///
/// An `IoStream` is a cheap handle (`Rc` inside): clones share one stream, so one task
/// can read while others write. The fd is closed by [`close`](IoStream::close), by
/// end-of-file or an error, or when the last handle is dropped: at once if nothing is
/// queued to write, else once the queue has gone out (within [`DROP_FLUSH_TIMEOUT`],
/// by a task on the stream's loop), so that an unawaited write is not cut short. See the
/// [crate docs](crate) for the read model (one read at a time, served from the buffer
/// first, backpressure) and the differences from Tornado.
#[doc(alias = "IOStream")]
#[doc(alias = "PipeIOStream")]
#[derive(Clone)]
pub struct IoStream {
    pub(crate) inner: Rc<Inner>,
}

/// How long a stream whose last handle was dropped with writes queued keeps sending
/// them before it is closed anyway (a peer that does not read cannot hold the fd for
/// longer).
pub const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

impl Drop for IoStream {
    fn drop(&mut self) {
        let inner = &self.inner;
        if Rc::strong_count(inner) != 1 || inner.has(CLOSED) {
            return;
        }
        // The last handle, with bytes queued on an open stream: they go out first, as
        // they would in Tornado (whose loop keeps a stream with a pending write alive).
        if !inner.unsent() {
            if inner.has(LAYERED) && !inner.has(CONNECTING) {
                // Nothing queued: closed now, with the layer's goodbye (a TLS
                // `close_notify`), so that the end is not taken for a truncation.
                inner.close_dropped();
            }
            return;
        }
        let stream = IoStream {
            inner: inner.clone(),
        };
        let io_loop = inner.io_loop.clone();
        // A closed loop drops the task (and this handle's clone) at once: the stream
        // then closes here, as before.
        drop(io_loop.spawn(async move {
            if squall_ioloop::with_timeout(DROP_FLUSH_TIMEOUT, stream.flush())
                .await
                .is_err()
            {
                log::debug!(
                    "IoStream fd {}: dropped with writes queued that did not go out within {DROP_FLUSH_TIMEOUT:?}",
                    stream.inner.fd
                );
            }
            stream.inner.close_dropped();
        }));
    }
}

pub(crate) fn no_loop() -> io::Error {
    io::Error::other("no current IoLoop on this thread (create streams inside IoLoop::start or run_sync, or pass a loop)")
}

impl IoStream {
    /// Wraps a connected fd (a `TcpStream`, `UnixStream`, an `OwnedFd`, a pipe end...)
    /// on the current thread's loop, and puts it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// `Other` if no [`IoLoop`] is current; the OS error of `fcntl`.
    pub fn new(fd: impl Into<OwnedFd>) -> io::Result<IoStream> {
        let io_loop = IoLoop::current().ok_or_else(no_loop)?;
        IoStream::with_io_loop(&io_loop, fd)
    }

    /// As [`new`](IoStream::new), on the given loop.
    ///
    /// # Errors
    ///
    /// The OS error of `fcntl`.
    pub fn with_io_loop(io_loop: &IoLoop, fd: impl Into<OwnedFd>) -> io::Result<IoStream> {
        let fd = fd.into();
        squall_poller::sys::set_nonblocking(fd.as_raw_fd())?;
        Ok(IoStream::from_nonblocking(io_loop, fd))
    }

    /// A hint that this stream is about to be used: asks the CPU to start loading the
    /// stream's state into its cache ([`squall_poller::sys::prefetch`]), so that a
    /// caller that knows which stream it serves next can overlap that wait with its
    /// current work. Nothing observable happens.
    #[inline]
    pub fn prefetch(&self) {
        self.inner.prefetch();
    }

    /// Wraps an fd that is **already non-blocking** (as `accept4(SOCK_NONBLOCK)` returns
    /// it), without a syscall. A blocking fd would block the whole loop.
    pub fn from_nonblocking(io_loop: &IoLoop, fd: impl Into<OwnedFd>) -> IoStream {
        IoStream {
            inner: Rc::new(Inner::new(io_loop, fd.into())),
        }
    }

    /// A pipe as two streams, `(read end, write end)`, on the current loop. Tornado's
    /// `PipeIOStream` over `os.pipe()`.
    ///
    /// # Errors
    ///
    /// `Other` if no [`IoLoop`] is current; the OS error of `pipe2`.
    pub fn pipe() -> io::Result<(IoStream, IoStream)> {
        let io_loop = IoLoop::current().ok_or_else(no_loop)?;
        let (r, w) = squall_poller::sys::pipe()?;
        Ok((
            IoStream::from_nonblocking(&io_loop, r),
            IoStream::from_nonblocking(&io_loop, w),
        ))
    }

    /// The loop this stream runs on.
    pub fn io_loop(&self) -> &IoLoop {
        &self.inner.io_loop
    }

    /// Whether the stream is closed. Tornado's `closed()`.
    pub fn closed(&self) -> bool {
        self.inner.has(CLOSED)
    }

    /// Why the stream closed, once it has. Tornado's `error` attribute (which is `None`
    /// for a clean close; here a clean close is [`CloseCause::Eof`] or
    /// [`CloseCause::Local`]).
    pub fn error(&self) -> Option<CloseCause> {
        self.inner.cause()
    }

    /// Whether a read is pending. Tornado's `reading()`.
    pub fn reading(&self) -> bool {
        self.inner.has(READ_ACTIVE)
    }

    /// Whether written data is still queued. Tornado's `writing()`.
    pub fn writing(&self) -> bool {
        self.inner.wbuf_len.get() > 0
    }

    /// How many received bytes are buffered and not yet read: a pipelining server asks
    /// this to know whether another request is already here (answer the batch with one
    /// [`flush`](IoStream::flush) when it is 0).
    pub fn buffered_len(&self) -> usize {
        self.read_ahead(BytesMut::len)
    }

    /// The capacity of the stream's own read buffer (0 while idle: reads go through a
    /// per-thread buffer and only leftovers are kept).
    pub fn read_buffer_capacity(&self) -> usize {
        self.read_ahead(BytesMut::capacity)
    }

    /// `measure` of the read-ahead buffer: 0 when there is none (nothing is buffered)
    /// or a read holds it at the moment.
    fn read_ahead(&self, measure: fn(&BytesMut) -> usize) -> usize {
        self.inner
            .rbuf
            .try_borrow()
            .map_or(0, |b| b.as_deref().map_or(0, measure))
    }

    /// How many written bytes are queued and not yet handed to the OS.
    pub fn write_buffer_len(&self) -> usize {
        self.inner.wbuf_len.get()
    }

    /// Sets the most bytes the read buffer may hold (default 100 MiB, Tornado's
    /// `max_buffer_size`). A read that needs more fails with
    /// [`StreamError::BufferFull`] and closes the stream.
    pub fn set_max_buffer_size(&self, limit: usize) {
        self.inner.set_limit(|c| c.max_buffer_size = limit.max(1));
    }

    /// Sets the most bytes one read syscall asks for (default 64 KiB, Tornado's
    /// `read_chunk_size`; at most 64 KiB, the per-thread buffer).
    pub fn set_read_chunk_size(&self, size: usize) {
        self.inner
            .set_limit(|c| c.read_chunk_size = size.clamp(1, SHARED_LEN));
    }

    /// Sets the most bytes the write queue may hold (default: unlimited, as in
    /// Tornado). A write past it fails with [`StreamError::WriteBufferFull`], queues
    /// nothing, and leaves the stream open.
    pub fn set_max_write_buffer_size(&self, limit: Option<usize>) {
        self.inner
            .set_limit(|c| c.max_write_buffer_size = limit.unwrap_or(usize::MAX));
    }

    /// Sets or clears `TCP_NODELAY`. Tornado's `set_nodelay`: defined for TCP streams
    /// only, and a no-op, as in Tornado, on any other stream (a pipe, a Unix socket),
    /// on a closed one, and on a socket the peer has reset (`EINVAL` on some systems).
    ///
    /// # Errors
    ///
    /// Any other OS error of `setsockopt`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let file = self.inner.file.borrow();
        let Some(file) = file.as_ref() else {
            return Ok(());
        };
        match SockRef::from(file).set_tcp_nodelay(nodelay) {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTSOCK | libc::EOPNOTSUPP | libc::ENOPROTOOPT | libc::EINVAL)
                ) || crate::error::is_reset(&e) =>
            {
                Ok(())
            }
            res => res,
        }
    }

    /// The address of the peer, for a socket stream.
    ///
    /// # Errors
    ///
    /// The OS error; `NotConnected` once closed; `Unsupported` for a Unix socket.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock_addr(true)
    }

    /// The local address, for a socket stream.
    ///
    /// # Errors
    ///
    /// As [`peer_addr`](IoStream::peer_addr).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock_addr(false)
    }

    fn sock_addr(&self, peer: bool) -> io::Result<SocketAddr> {
        let file = self.inner.file.borrow();
        let file = file
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let s = SockRef::from(file);
        let a = if peer {
            s.peer_addr()?
        } else {
            s.local_addr()?
        };
        a.as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "not an IP socket"))
    }

    /// Calls `callback` once, on a later loop turn, when the stream closes (at once on
    /// the next turn if it is already closed). Tornado's `set_close_callback`. A new
    /// callback replaces one not yet fired. Dropping the last handle is not a close:
    /// the callback is dropped unrun.
    ///
    /// With nobody reading, the stream watches for the close: a socket is peeked at (a
    /// reset closes it with the reset as its cause); a pipe, which cannot be peeked
    /// at, is read ahead into the stream's buffer (at most `max_buffer_size`), as
    /// Tornado does, and its write end closes when its reader is gone. Bytes that
    /// arrived before the close stay readable.
    #[track_caller]
    pub fn set_close_callback<F: FnOnce() + 'static>(&self, callback: F) {
        if self.inner.has(CLOSED) {
            self.inner.io_loop.add_callback(callback);
        } else {
            let old = self
                .inner
                .with_cold(|c| c.close_callback.replace(Box::new(callback)));
            drop(old);
            // With nobody reading, READ interest is how a peer's close is noticed.
            self.inner.watch_for_close();
        }
    }

    /// Drops the close callback, if one is set and has not been scheduled yet
    /// (Tornado's `set_close_callback(None)`): it will not run, and what it holds (a
    /// clone of this stream, say, which would keep the fd open) is released now.
    /// `true` if there was one to drop.
    pub fn clear_close_callback(&self) -> bool {
        // Dropped with no borrow held: the callback's captures may touch the stream.
        self.inner.take_close_callback().is_some()
    }

    /// Closes the stream: unregisters and closes the fd, drops queued output, fails
    /// pending futures with [`StreamError::Closed`] ([`CloseCause::Local`]), and
    /// schedules the close callback. Idempotent. Data already buffered stays readable.
    ///
    /// With a [`Layer`](crate::Layer), its goodbye (a TLS `close_notify`) is sent
    /// first; if the fd has no room for it and what the layer queued before it, the
    /// loop keeps the fd until they have gone, for at most [`GOODBYE_TIMEOUT`](crate::GOODBYE_TIMEOUT),
    /// while the stream is closed for its users at once.
    pub fn close(&self) {
        self.inner.close_with(CloseCause::Local);
    }

    pub(crate) fn closed_error(&self) -> StreamError {
        self.inner.closed_error()
    }

    /// Queues `data` without trying to send it: a server answering a pipelined batch
    /// queues every response, then calls [`flush`](IoStream::flush) once.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream is closed, and
    /// [`StreamError::WriteBufferFull`] if it would pass `max_write_buffer_size`
    /// (nothing is queued then).
    pub fn write_buffered(&self, data: impl Into<Bytes>) -> Result<(), StreamError> {
        self.inner.queue(data.into())
    }

    /// Queues `data` and, if the socket is known to be writable, hands the queue to the
    /// OS at once (one `writev`). Tornado's `write`. Not an `async fn`: the data is
    /// queued when this returns, whether or not the future is awaited; the future
    /// resolves when this data (and everything before it) has left the stream's buffer.
    ///
    /// Writing while a connect is in progress queues the data until it is up.
    pub fn write(&self, data: impl Into<Bytes>) -> WriteFuture<'_> {
        match self.inner.queue(data.into()) {
            Ok(()) => self.flush(),
            Err(e) => WriteFuture {
                stream: self,
                state: WriteState::Failed(Some(e)),
            },
        }
    }

    /// Sends `buf` after everything queued before it: `Ready(Ok(()))` once all of it
    /// has left the stream (`buf` is then empty), else `Pending`, with `cx`'s waker
    /// woken when it has. Poll-style, for a caller that keeps its output in a
    /// `BytesMut` it refills (a server's batch of responses).
    ///
    /// When nothing is queued and the socket is known to be writable, the bytes go
    /// straight from `buf` to one `write(2)`: nothing is queued, split or counted
    /// twice, and `buf` keeps its allocation for the next batch. Whatever the socket
    /// does not take is split off `buf` (no copy) into the queue, and sent as
    /// [`flush`](IoStream::flush) sends it.
    ///
    /// # Errors
    ///
    /// As [`write`](IoStream::write): [`StreamError::Closed`] once the stream is
    /// closed (with the OS error of a failed write as its cause),
    /// [`StreamError::WriteShutdown`] after [`shutdown_write`](IoStream::shutdown_write),
    /// [`StreamError::WriteBufferFull`] if the rest would pass
    /// `max_write_buffer_size` (nothing is queued then).
    // Inlined with the write syscall, as `poll_read_buf`.
    #[inline(always)]
    pub fn poll_write_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<(), StreamError>> {
        if !buf.is_empty() {
            if self.inner.write_direct(buf)? {
                return Poll::Ready(Ok(()));
            }
            if !buf.is_empty() {
                self.inner.queue(buf.split().freeze())?;
            }
        }
        let mut flush = self.flush();
        std::future::Future::poll(std::pin::Pin::new(&mut flush), cx)
    }

    /// Hands queued data to the OS now if the socket is known to be writable, and
    /// returns a future that resolves when everything queued so far has left the
    /// stream's buffer.
    pub fn flush(&self) -> WriteFuture<'_> {
        let inner = &self.inner;
        if inner.has(CLOSED) {
            return WriteFuture {
                stream: self,
                state: WriteState::Failed(Some(inner.closed_error())),
            };
        }
        let target = inner.written.get() + inner.wbuf_len.get() as u64;
        if inner.wbuf_len.get() > 0 && inner.has(WRITABLE) {
            inner.handle_write();
        }
        WriteFuture {
            stream: self,
            state: WriteState::Waiting(target),
        }
    }

    /// Half-closes the stream: sends what is queued, then shuts the write side down
    /// (`shutdown(SHUT_WR)`), so the peer reads end-of-file after the last byte while
    /// this side can still read what the peer sends, until its end-of-file (which
    /// closes the stream, as every end-of-file does). This is how a server closes
    /// politely with unread input: shut down writing, then drain for a bounded time
    /// (nginx's lingering close).
    ///
    /// Like [`write`](IoStream::write), it takes effect whether or not the returned
    /// future is awaited; the future resolves once the write side is shut down. From
    /// the call on, [`write`](IoStream::write) and
    /// [`write_buffered`](IoStream::write_buffered) fail with
    /// [`StreamError::WriteShutdown`]. Calling it again is harmless. While a connect is
    /// in progress the shutdown waits for the connection, like queued writes.
    ///
    /// A stream that is not a socket (a pipe's write end) has no half-close: it is
    /// closed once the queue is flushed ([`CloseCause::Local`]), which its reader sees as
    /// the same end-of-file.
    ///
    /// # Errors
    ///
    /// The future fails with [`StreamError::Closed`] if the stream is closed before the
    /// shutdown happens (queued data is then lost), with the OS error of a failed write
    /// or `shutdown` as its cause.
    pub fn shutdown_write(&self) -> WriteFuture<'_> {
        let inner = &self.inner;
        if inner.has(CLOSED) {
            return WriteFuture {
                stream: self,
                state: WriteState::Failed(Some(inner.closed_error())),
            };
        }
        inner.set(SHUT_PENDING);
        if inner.wbuf_len.get() > 0 {
            if inner.has(WRITABLE) {
                inner.handle_write();
            }
        } else {
            inner.maybe_shutdown();
        }
        WriteFuture {
            stream: self,
            state: WriteState::Shutdown,
        }
    }

    /// Whether the write side is shut down ([`shutdown_write`](IoStream::shutdown_write)
    /// has taken effect).
    pub fn write_shut_down(&self) -> bool {
        self.inner.has(SHUT_DONE)
    }

    /// Poll-style read for callers that keep their own input buffer (a sans-IO
    /// connection driven by hand): appends what is buffered, or else what one `read(2)`
    /// returns, to `dst` and returns how many bytes were added; `Ready(Ok(0))` means
    /// end-of-file. When nothing is there it registers `cx`'s waker and returns
    /// `Pending`, with the same syscall rules as every read (no `read()` after a short
    /// one). If `dst` is empty and the stream has a leftover, the leftover is moved
    /// into `dst` without a copy.
    ///
    /// With 1 KiB or more of spare capacity in `dst`, the read asks for that much and
    /// lands there directly; with less, or after a read that filled what it asked for
    /// (bytes flowing in bulk), it asks for a whole read chunk
    /// ([`set_read_chunk_size`](IoStream::set_read_chunk_size)) and copies what came
    /// into `dst`, which grows as needed.
    ///
    /// # Errors
    ///
    /// [`StreamError::ReadInProgress`] while a read future is pending;
    /// [`StreamError::Closed`] for a reset, another OS error or a local close.
    // Inlined into the caller's frame, with the read syscall: every frame between the
    // syscall and the caller's own is a mispredicted return after it (ARCHITECTURE.md,
    // "Returns after a syscall").
    #[inline(always)]
    pub fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        dst: &mut BytesMut,
    ) -> Poll<Result<usize, StreamError>> {
        let inner = &self.inner;
        if inner.has(READ_ACTIVE) {
            return Poll::Ready(Err(StreamError::ReadInProgress));
        }
        {
            let mut slot = inner.rbuf.borrow_mut();
            if let Some(mut rbuf) = slot.take() {
                let n = rbuf.len();
                if dst.is_empty() {
                    mem::swap(dst, &mut *rbuf);
                } else {
                    dst.extend_from_slice(&rbuf);
                }
                return Poll::Ready(Ok(n));
            }
        }
        inner.poll_read_chunk(cx, dst)
    }

    /// Poll-style [`flush`](IoStream::flush): sends what is queued if the socket is
    /// known to be writable, and is `Ready(Ok(()))` once the queue is empty; otherwise it
    /// registers `cx`'s waker.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream is closed (queued data is lost).
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<(), StreamError>> {
        let inner = &self.inner;
        if inner.has(CLOSED) {
            return Poll::Ready(Err(inner.closed_error()));
        }
        // What a layer holds for the socket (TLS records) counts as queued.
        if inner.unsent() && inner.has(WRITABLE) {
            inner.handle_write();
        }
        if !inner.unsent() {
            return Poll::Ready(Ok(()));
        }
        if inner.has(CLOSED) {
            return Poll::Ready(Err(inner.closed_error()));
        }
        inner.add_write_waker(cx.waker());
        Poll::Pending
    }

    /// The bytes buffered so far, up to `max`, taken at once without a syscall
    /// (possibly empty): how a caller takes body bytes that arrived with a head.
    ///
    /// It is a read, and one read at a time holds: while a read future holds the read
    /// slot (a pending [`read_until`](IoStream::read_until) remembers how far it has
    /// searched these bytes), nothing is taken.
    pub fn take_buffered(&self, max: usize) -> Bytes {
        if self.inner.has(READ_ACTIVE) {
            return Bytes::new();
        }
        let Ok(mut slot) = self.inner.rbuf.try_borrow_mut() else {
            return Bytes::new();
        };
        let Some(rbuf) = slot.as_deref_mut() else {
            return Bytes::new();
        };
        let n = max.min(rbuf.len());
        if n == 0 {
            return Bytes::new();
        }
        let out = rbuf.split_to(n).freeze();
        if rbuf.is_empty() {
            *slot = None;
        }
        out
    }
}

impl AsRawFd for IoStream {
    /// The fd number (still returned after close, when it no longer refers to this
    /// stream).
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd
    }
}

impl fmt::Debug for IoStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoStream")
            .field("fd", &self.inner.fd)
            .field("closed", &self.closed())
            .field("reading", &self.reading())
            .field("buffered", &self.buffered_len())
            .field("queued", &self.write_buffer_len())
            .field("error", &self.inner.cause())
            .finish()
    }
}
