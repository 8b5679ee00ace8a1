//! [`IoStream`]: the state, the fd handler, the read engine and the write path.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::mem::{self, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use squall_ioloop::{Interest, IoLoop, Ready};

use crate::error::{CloseCause, StreamError};
use crate::shared::{with_shared, SHARED_LEN};
use crate::wqueue::WriteQueue;

/// Tornado's default `max_buffer_size`: 100 MiB.
pub const DEFAULT_MAX_BUFFER_SIZE: usize = 100 * 1024 * 1024;
/// Tornado's default `read_chunk_size`: 64 KiB (also the per-thread buffer size).
pub const DEFAULT_READ_CHUNK_SIZE: usize = SHARED_LEN;
/// The most slices one `writev` gets (hyper's `MAX_WRITEV_BUFS`).
const MAX_IOV: usize = 64;

// Bits of `Inner::flags`.
/// A read syscall may return data: readiness is unknown or known true.
const READABLE: u16 = 1;
/// A write syscall may go through: we are not waiting for WRITE.
const WRITABLE: u16 = 1 << 1;
/// A non-blocking connect is in progress.
const CONNECTING: u16 = 1 << 2;
/// The stream is closed; `cause` says why.
const CLOSED: u16 = 1 << 3;
/// A read future holds the read slot.
const READ_ACTIVE: u16 = 1 << 4;
/// The fd has a handler on the loop.
const REGISTERED: u16 = 1 << 5;
/// READ interest is armed on the loop.
const ARMED_READ: u16 = 1 << 6;
/// WRITE interest is armed on the loop.
const ARMED_WRITE: u16 = 1 << 7;
/// The fd is known to be a socket (for `SO_ERROR` and `MSG_PEEK`).
const SOCKET: u16 = 1 << 8;
/// Some limit was changed from its default: read the limits from [`Cold`].
const LIMITS: u16 = 1 << 9;
/// Bits 10 to 12: why the stream closed, for the causes that carry nothing (the others
/// are kept in [`Cold`]).
const CAUSE_SHIFT: u16 = 10;
const CAUSE_MASK: u16 = 0b111 << CAUSE_SHIFT;
const CAUSE_EOF: u16 = 1;
const CAUSE_LOCAL: u16 = 2;
const CAUSE_BUFFER_FULL: u16 = 3;
const CAUSE_UNSATISFIABLE: u16 = 4;
/// The cause is in [`Cold::cause`] (it carries an OS error).
const CAUSE_COLD: u16 = 5;
/// `shutdown_write` was called: no more writes are accepted, and the write side is
/// shut down once the queue is empty.
const SHUT_PENDING: u16 = 1 << 13;
/// The write side is shut down (`shutdown(SHUT_WR)` done).
const SHUT_DONE: u16 = 1 << 14;

/// Tornado's `IOStream` (and `PipeIOStream`): a non-blocking fd with async reads and
/// writes on the [`IoLoop`].
///
/// An `IoStream` is a cheap handle (`Rc` inside): clones share one stream, so one task
/// can read while others write. The fd is closed by [`close`](IoStream::close), by
/// end-of-file or an error, or when the last handle is dropped. See the
/// [crate docs](crate) for the read model (one read at a time, served from the buffer
/// first, backpressure) and the differences from Tornado.
#[doc(alias = "IOStream")]
#[doc(alias = "PipeIOStream")]
#[derive(Clone)]
pub struct IoStream {
    pub(crate) inner: Rc<Inner>,
}

/// A stream's state: what every read and write touches is inline (200 bytes with the
/// `Rc` header); what most streams never use is in [`Cold`], allocated on first use.
pub(crate) struct Inner {
    io_loop: IoLoop,
    /// The owned fd (`None` once closed). A `File` because its `&File` reads and
    /// `writev`s any fd kind without `unsafe`.
    file: RefCell<Option<File>>,
    fd: RawFd,
    flags: Cell<u16>,
    /// Bytes received but not yet consumed by a read. Empty with capacity 0 while idle.
    rbuf: RefCell<BytesMut>,
    /// Queued output, in order; the front chunk may be partly written. One chunk is
    /// held inline, so the usual one-chunk write allocates nothing here.
    wbuf: RefCell<WriteQueue>,
    wbuf_len: Cell<usize>,
    /// Bytes ever handed to the OS: a write future waits until `written` reaches the
    /// total queued when it was made (`written + wbuf_len` then).
    written: Cell<u64>,
    read_waker: Cell<Option<Waker>>,
    /// The write future or connect waiter waiting (more of them wait in [`Cold`]).
    write_waker: Cell<Option<Waker>>,
    cold: RefCell<Option<Box<Cold>>>,
}

/// The rarely used part of a stream, boxed on first use: a close callback, a close
/// cause that carries an OS error, limits changed from their defaults, and the wakers
/// of a second and further concurrent write futures.
struct Cold {
    close_callback: Option<Box<dyn FnOnce()>>,
    cause: Option<CloseCause>,
    max_buffer_size: usize,
    read_chunk_size: usize,
    max_write_buffer_size: usize,
    write_wakers: Vec<Waker>,
}

impl Default for Cold {
    fn default() -> Cold {
        Cold {
            close_callback: None,
            cause: None,
            max_buffer_size: DEFAULT_MAX_BUFFER_SIZE,
            read_chunk_size: DEFAULT_READ_CHUNK_SIZE,
            max_write_buffer_size: usize::MAX,
            write_wakers: Vec::new(),
        }
    }
}

/// A read's completion test: `(unconsumed bytes, closed) -> bytes to consume`.
pub(crate) type Check<'a, E> = dyn FnMut(&[u8], bool) -> Result<Option<usize>, E> + 'a;

/// How much a pending read wants from the socket.
#[derive(Clone, Copy)]
pub(crate) enum Need {
    /// Exactly this many buffered bytes in total (a `read_bytes` that is not partial).
    Total(usize),
    /// Whatever comes, up to the read chunk size.
    Chunk,
}

/// What the read engine hands back for a satisfied read.
pub(crate) enum Taken {
    /// The consumed bytes, as asked.
    Bytes(Bytes),
    /// The bytes were consumed; the checker kept what it needed.
    Consumed,
}

fn no_loop() -> io::Error {
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

    /// Wraps an fd that is **already non-blocking** (as `accept4(SOCK_NONBLOCK)` returns
    /// it), without a syscall. A blocking fd would block the whole loop.
    pub fn from_nonblocking(io_loop: &IoLoop, fd: impl Into<OwnedFd>) -> IoStream {
        let fd: OwnedFd = fd.into();
        let raw = fd.as_raw_fd();
        IoStream {
            inner: Rc::new(Inner {
                io_loop: io_loop.clone(),
                file: RefCell::new(Some(File::from(fd))),
                fd: raw,
                flags: Cell::new(READABLE | WRITABLE),
                rbuf: RefCell::new(BytesMut::new()),
                wbuf: RefCell::new(WriteQueue::default()),
                wbuf_len: Cell::new(0),
                written: Cell::new(0),
                read_waker: Cell::new(None),
                write_waker: Cell::new(None),
                cold: RefCell::new(None),
            }),
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

    /// Connects to `addr` and resolves to the connected stream. Tornado's
    /// `IOStream.connect`: a non-blocking `connect`, then a wait for the socket to become
    /// writable, then `SO_ERROR`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] whose cause carries the real OS error: a refused
    /// connection gives [`CloseCause::Io`] with `ECONNREFUSED`
    /// ([`StreamError::io_error`]).
    pub async fn connect(addr: SocketAddr) -> Result<IoStream, StreamError> {
        let stream = IoStream::start_connect(addr)?;
        stream.wait_connected().await?;
        Ok(stream)
    }

    /// Starts a non-blocking connect to `addr` and returns the stream at once, still
    /// connecting. Writes are queued until the connection is up (Tornado's
    /// `test_write_while_connecting`); [`wait_connected`](IoStream::wait_connected)
    /// resolves when it is.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] with the OS error if the socket cannot be created or the
    /// connect fails at once; `Other` (as [`CloseCause::Io`]) if no loop is current.
    pub fn start_connect(addr: SocketAddr) -> Result<IoStream, StreamError> {
        let io_err = |e: io::Error| StreamError::Closed(CloseCause::Io(Arc::new(e)));
        let io_loop = IoLoop::current().ok_or_else(|| io_err(no_loop()))?;
        let socket = nonblocking_tcp_socket(Domain::for_address(addr)).map_err(io_err)?;
        let connecting = match socket.connect(&SockAddr::from(addr)) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => return Err(io_err(e)),
        };
        let stream = IoStream::from_nonblocking(&io_loop, OwnedFd::from(socket));
        let inner = &stream.inner;
        inner.set(SOCKET);
        if connecting {
            inner.clear(WRITABLE);
            inner.set(CONNECTING);
            if let Err(e) = inner.arm(Interest::WRITE) {
                inner.close_with(CloseCause::Io(Arc::new(e)));
                return Err(stream.closed_error());
            }
        }
        Ok(stream)
    }

    /// Resolves once a connect started by [`start_connect`](IoStream::start_connect) has
    /// finished (at once for any other stream).
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] with the connect's OS error.
    pub fn wait_connected(
        &self,
    ) -> impl std::future::Future<Output = Result<(), StreamError>> + '_ {
        std::future::poll_fn(move |cx| {
            let inner = &self.inner;
            if inner.has(CONNECTING) {
                inner.add_write_waker(cx.waker());
                return Poll::Pending;
            }
            if inner.has(CLOSED) {
                return Poll::Ready(Err(self.closed_error()));
            }
            Poll::Ready(Ok(()))
        })
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
        self.inner.rbuf.try_borrow().map_or(0, |b| b.len())
    }

    /// The capacity of the stream's own read buffer (0 while idle: reads go through a
    /// per-thread buffer and only leftovers are kept).
    pub fn read_buffer_capacity(&self) -> usize {
        self.inner.rbuf.try_borrow().map_or(0, |b| b.capacity())
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

    /// Sets or clears `TCP_NODELAY`. Tornado's `set_nodelay`.
    ///
    /// # Errors
    ///
    /// The OS error (`EOPNOTSUPP` or `ENOTSOCK` for a stream that is not TCP);
    /// `NotConnected` once the stream is closed.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let file = self.inner.file.borrow();
        let file = file
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        SockRef::from(file).set_tcp_nodelay(nodelay)
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
            if !self.inner.has(CONNECTING) && !self.inner.has(ARMED_READ) {
                if let Err(e) = self.inner.arm(Interest::READ) {
                    self.inner.close_with(CloseCause::Io(Arc::new(e)));
                }
            }
        }
    }

    /// Closes the stream: unregisters and closes the fd, drops queued output, fails
    /// pending futures with [`StreamError::Closed`] ([`CloseCause::Local`]), and
    /// schedules the close callback. Idempotent. Data already buffered stays readable.
    pub fn close(&self) {
        self.inner.close_with(CloseCause::Local);
    }

    pub(crate) fn closed_error(&self) -> StreamError {
        self.inner.closed_error()
    }

    // ------------------------------------------------------------------ writing

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
    /// # Errors
    ///
    /// [`StreamError::ReadInProgress`] while a read future is pending;
    /// [`StreamError::Closed`] for a reset, another OS error or a local close.
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
            let mut rbuf = inner.rbuf.borrow_mut();
            let n = rbuf.len();
            if n > 0 {
                if dst.is_empty() {
                    mem::swap(dst, &mut *rbuf);
                    *rbuf = BytesMut::new();
                } else {
                    dst.extend_from_slice(&rbuf);
                    *rbuf = BytesMut::new();
                }
                return Poll::Ready(Ok(n));
            }
        }
        loop {
            if inner.has(CLOSED) {
                return Poll::Ready(match inner.cause() {
                    Some(CloseCause::Eof) => Ok(0),
                    _ => Err(inner.closed_error()),
                });
            }
            if !inner.has(READABLE) {
                return match inner.wait_readable(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                };
            }
            let want = inner.read_chunk_size();
            let res = with_shared(|shared| {
                let got = inner.read_syscall(&mut shared[..want]);
                if let Ok(n) = got {
                    dst.extend_from_slice(&shared[..n]);
                }
                got
            });
            match res {
                Ok(0) => inner.close_with(CloseCause::Eof),
                Ok(n) => {
                    if n < want {
                        inner.clear(READABLE);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => inner.clear(READABLE),
                    io::ErrorKind::Interrupted => {}
                    _ => inner.close_with(CloseCause::from_io(e)),
                },
            }
        }
    }

    /// Poll-style [`read_parse`](IoStream::read_parse) for hand-written futures: the
    /// same engine and rules, except that `parse` may be called again on the same bytes
    /// after a spurious wake-up (keep it cheap, or remember where it stopped).
    ///
    /// # Errors
    ///
    /// As [`read_parse`](IoStream::read_parse); [`StreamError::ReadInProgress`] while a
    /// read future is pending.
    pub fn poll_read_parse<T, E, P>(
        &self,
        cx: &mut Context<'_>,
        max_bytes: usize,
        parse: &mut P,
    ) -> Poll<Result<T, crate::ReadParseError<E>>>
    where
        P: FnMut(&[u8]) -> Result<Option<(T, usize)>, E>,
    {
        use crate::ReadParseError;
        let inner = &self.inner;
        if inner.has(READ_ACTIVE) {
            return Poll::Ready(Err(ReadParseError::Stream(StreamError::ReadInProgress)));
        }
        let mut out = None;
        let max_bytes = max_bytes.max(1);
        let mut check = |buf: &[u8], _closed: bool| -> Result<Option<usize>, ReadParseError<E>> {
            if !buf.is_empty() {
                match parse(buf) {
                    Ok(Some((t, used))) => {
                        out = Some(t);
                        return Ok(Some(used.min(buf.len())));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(ReadParseError::Parse(e)),
                }
            }
            if buf.len() >= max_bytes {
                return Err(ReadParseError::TooLarge { max_bytes });
            }
            Ok(None)
        };
        match inner.poll_read(cx, Need::Chunk, false, &mut check) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(_)) => match out {
                Some(t) => Poll::Ready(Ok(t)),
                None => Poll::Ready(Err(ReadParseError::Stream(inner.closed_error()))),
            },
        }
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
        if inner.wbuf_len.get() > 0 && inner.has(WRITABLE) {
            inner.handle_write();
        }
        if inner.wbuf_len.get() == 0 {
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
    pub fn take_buffered(&self, max: usize) -> Bytes {
        let Ok(mut rbuf) = self.inner.rbuf.try_borrow_mut() else {
            return Bytes::new();
        };
        let n = max.min(rbuf.len());
        if n == 0 {
            return Bytes::new();
        }
        let out = rbuf.split_to(n).freeze();
        if rbuf.is_empty() {
            *rbuf = BytesMut::new();
        }
        out
    }
}

/// A non-blocking TCP socket for `domain`, with `SOCK_NONBLOCK` in the `socket` call
/// where the OS has it (`Socket::new` adds close-on-exec).
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
))]
fn nonblocking_tcp_socket(domain: Domain) -> io::Result<Socket> {
    Socket::new(domain, Type::STREAM.nonblocking(), None)
}

/// A non-blocking TCP socket for `domain`: macOS has no `SOCK_NONBLOCK`, so an `fcntl`
/// follows the `socket` call (`Socket::new` adds close-on-exec).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
)))]
fn nonblocking_tcp_socket(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
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

// ------------------------------------------------------------------ write future

/// The future of [`IoStream::write`] and [`IoStream::flush`]: resolves when the data
/// queued before it has left the stream's buffer (Tornado's write future). Dropping it
/// does not cancel the write.
#[must_use = "the data is queued either way; await this to know it has been sent"]
pub struct WriteFuture<'a> {
    stream: &'a IoStream,
    state: WriteState,
}

enum WriteState {
    Failed(Option<StreamError>),
    Waiting(u64),
    /// Waiting for `shutdown_write` to take effect.
    Shutdown,
}

impl std::future::Future for WriteFuture<'_> {
    type Output = Result<(), StreamError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &self.stream.inner;
        match &mut self.state {
            WriteState::Failed(e) => Poll::Ready(Err(e
                .take()
                .unwrap_or(StreamError::Closed(CloseCause::Local)))),
            WriteState::Waiting(target) => {
                if inner.written.get() >= *target {
                    Poll::Ready(Ok(()))
                } else if inner.has(CLOSED) {
                    Poll::Ready(Err(inner.closed_error()))
                } else {
                    inner.add_write_waker(cx.waker());
                    Poll::Pending
                }
            }
            WriteState::Shutdown => {
                if inner.has(SHUT_DONE) {
                    Poll::Ready(Ok(()))
                } else if inner.has(CLOSED) {
                    Poll::Ready(Err(inner.closed_error()))
                } else {
                    inner.add_write_waker(cx.waker());
                    Poll::Pending
                }
            }
        }
    }
}

impl fmt::Debug for WriteFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteFuture").finish_non_exhaustive()
    }
}

// ------------------------------------------------------------------ the core

impl Inner {
    #[inline]
    fn has(&self, bit: u16) -> bool {
        self.flags.get() & bit != 0
    }
    #[inline]
    fn set(&self, bit: u16) {
        self.flags.set(self.flags.get() | bit);
    }
    #[inline]
    fn clear(&self, bit: u16) {
        self.flags.set(self.flags.get() & !bit);
    }

    pub(crate) fn closed_error(&self) -> StreamError {
        StreamError::Closed(self.cause().unwrap_or(CloseCause::Local))
    }

    /// Why the stream closed (`None` while open).
    fn cause(&self) -> Option<CloseCause> {
        match (self.flags.get() & CAUSE_MASK) >> CAUSE_SHIFT {
            0 => None,
            CAUSE_EOF => Some(CloseCause::Eof),
            CAUSE_LOCAL => Some(CloseCause::Local),
            CAUSE_BUFFER_FULL => Some(CloseCause::BufferFull),
            CAUSE_UNSATISFIABLE => Some(CloseCause::Unsatisfiable),
            _ => self.cold.borrow().as_ref().and_then(|c| c.cause.clone()),
        }
    }

    /// Records why the stream closed: in the flags, or in [`Cold`] if it carries an OS
    /// error.
    fn set_cause(&self, cause: CloseCause) {
        let code = match cause {
            CloseCause::Eof => CAUSE_EOF,
            CloseCause::Local => CAUSE_LOCAL,
            CloseCause::BufferFull => CAUSE_BUFFER_FULL,
            CloseCause::Unsatisfiable => CAUSE_UNSATISFIABLE,
            other => {
                self.with_cold(|c| c.cause = Some(other));
                CAUSE_COLD
            }
        };
        self.flags
            .set((self.flags.get() & !CAUSE_MASK) | (code << CAUSE_SHIFT));
    }

    /// Runs `f` on the cold part, boxing it first if needed. `f` must not call user
    /// code (the part is borrowed meanwhile).
    fn with_cold<R>(&self, f: impl FnOnce(&mut Cold) -> R) -> R {
        let mut cold = self.cold.borrow_mut();
        f(cold.get_or_insert_with(Box::default))
    }

    fn set_limit(&self, f: impl FnOnce(&mut Cold)) {
        self.with_cold(f);
        self.set(LIMITS);
    }

    /// A limit kept in the cold part, or its default while no limit was ever changed
    /// (the common case: one flag test, no borrow).
    #[inline]
    fn limit(&self, default: usize, pick: fn(&Cold) -> usize) -> usize {
        if !self.has(LIMITS) {
            return default;
        }
        self.cold.borrow().as_deref().map_or(default, pick)
    }

    #[inline]
    fn max_buffer_size(&self) -> usize {
        self.limit(DEFAULT_MAX_BUFFER_SIZE, |c| c.max_buffer_size)
    }

    #[inline]
    fn read_chunk_size(&self) -> usize {
        self.limit(DEFAULT_READ_CHUNK_SIZE, |c| c.read_chunk_size)
    }

    #[inline]
    fn max_write_buffer_size(&self) -> usize {
        self.limit(usize::MAX, |c| c.max_write_buffer_size)
    }

    fn has_close_callback(&self) -> bool {
        self.cold
            .borrow()
            .as_ref()
            .is_some_and(|c| c.close_callback.is_some())
    }

    fn has_read_waker(&self) -> bool {
        let w = self.read_waker.take();
        let some = w.is_some();
        self.read_waker.set(w);
        some
    }

    /// Claims the read slot; `false` if another read holds it.
    pub(crate) fn claim_read(&self) -> bool {
        if self.has(READ_ACTIVE) {
            false
        } else {
            self.set(READ_ACTIVE);
            true
        }
    }

    /// Gives the read slot back (a read finished or was dropped).
    pub(crate) fn release_read(&self) {
        self.clear(READ_ACTIVE);
        drop(self.read_waker.take());
    }

    fn add_write_waker(&self, waker: &Waker) {
        match self.write_waker.take() {
            None => self.write_waker.set(Some(waker.clone())),
            Some(first) => {
                let same = first.will_wake(waker);
                self.write_waker.set(Some(first));
                if !same {
                    // A second concurrent writer: rare, kept in the cold part.
                    self.with_cold(|c| {
                        if !c.write_wakers.iter().any(|w| w.will_wake(waker)) {
                            c.write_wakers.push(waker.clone());
                        }
                    });
                }
            }
        }
    }

    fn wake_writers(&self) {
        let first = self.write_waker.take();
        let more = match self.cold.try_borrow_mut() {
            Ok(mut c) => c
                .as_mut()
                .map(|c| mem::take(&mut c.write_wakers))
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        if let Some(w) = first {
            w.wake();
        }
        for w in more {
            w.wake();
        }
    }

    fn wake_reader(&self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
    }

    /// Adds `add` to the interest the loop watches, registering the fd on first use.
    /// No syscall if it is already armed.
    pub(crate) fn arm(self: &Rc<Self>, add: Interest) -> io::Result<()> {
        let mut want = Interest::NONE;
        if self.has(ARMED_READ) {
            want |= Interest::READ;
        }
        if self.has(ARMED_WRITE) {
            want |= Interest::WRITE;
        }
        if want.contains(add) && self.has(REGISTERED) {
            return Ok(());
        }
        want |= add;
        if self.has(REGISTERED) {
            self.io_loop.update_handler(self.fd, want)?;
        } else {
            let weak: Weak<Inner> = Rc::downgrade(self);
            self.io_loop.add_handler(self.fd, want, move |_fd, ready| {
                if let Some(inner) = weak.upgrade() {
                    inner.on_event(ready);
                }
            })?;
            self.set(REGISTERED);
        }
        if want.is_readable() {
            self.set(ARMED_READ);
        }
        if want.is_writable() {
            self.set(ARMED_WRITE);
        }
        Ok(())
    }

    /// Removes `rm` from the watched interest (one `epoll_ctl`).
    fn disarm(&self, rm: Interest) {
        if !self.has(REGISTERED) {
            return;
        }
        let mut want = Interest::NONE;
        if self.has(ARMED_READ) && !rm.is_readable() {
            want |= Interest::READ;
        }
        if self.has(ARMED_WRITE) && !rm.is_writable() {
            want |= Interest::WRITE;
        }
        match self.io_loop.update_handler(self.fd, want) {
            Ok(()) => {
                if rm.is_readable() {
                    self.clear(ARMED_READ);
                }
                if rm.is_writable() {
                    self.clear(ARMED_WRITE);
                }
            }
            Err(e) => log::debug!("IoStream fd {}: update_handler failed: {e}", self.fd),
        }
    }

    /// Takes the fd off the loop entirely (after a hang-up or error nobody waits for:
    /// even a NONE registration would keep reporting it).
    fn park(&self) {
        if self.has(REGISTERED) {
            self.io_loop.discard_handler(self.fd);
            self.clear(REGISTERED | ARMED_READ | ARMED_WRITE);
        }
        self.set(READABLE | WRITABLE);
    }

    /// The fd's handler.
    fn on_event(self: &Rc<Self>, ready: Ready) {
        if self.has(CLOSED) {
            return;
        }
        if self.has(CONNECTING) {
            if ready.is_writable() || ready.is_error() || ready.is_hup() {
                self.finish_connect();
            }
            if self.has(CLOSED) || !ready.is_readable() {
                return;
            }
        }
        if ready.is_error() && self.has(SOCKET) {
            // A pending socket error: read it (this consumes it; the select backend
            // does not) and close with it, as Tornado's `_handle_events` does.
            if let Some(e) = self.take_socket_error() {
                self.close_with(CloseCause::from_io(e));
                return;
            }
        }
        let trouble = ready.is_error() || ready.is_hup();
        if (ready.is_writable() || trouble) && self.wbuf_len.get() > 0 {
            self.set(WRITABLE);
            self.handle_write();
            if self.has(CLOSED) {
                return;
            }
        }
        if ready.is_readable() || trouble {
            self.set(READABLE);
            if self.has_read_waker() {
                self.wake_reader();
            } else if self.has_close_callback() && self.peek_eof() {
                // Nobody reads, but someone wants to hear about a close.
                self.close_with(CloseCause::Eof);
            } else if trouble && !(self.has(ARMED_WRITE) && self.wbuf_len.get() > 0) {
                self.park();
            } else if self.has(ARMED_READ) {
                // Nobody is waiting: stop level-triggered repeats; the next read tries
                // the syscall at once.
                self.disarm(Interest::READ);
            }
        }
    }

    fn take_socket_error(&self) -> Option<io::Error> {
        let file = self.file.borrow();
        let file = file.as_ref()?;
        match SockRef::from(file).take_error() {
            Ok(e) => e,
            Err(e) => Some(e),
        }
    }

    /// `MSG_PEEK` one byte: whether the peer has closed with nothing left to read.
    fn peek_eof(&self) -> bool {
        let file = self.file.borrow();
        let Some(file) = file.as_ref() else {
            return false;
        };
        let mut b = [MaybeUninit::<u8>::uninit(); 1];
        matches!(SockRef::from(file).peek(&mut b), Ok(0))
    }

    fn finish_connect(self: &Rc<Self>) {
        self.clear(CONNECTING);
        if let Some(e) = self.take_socket_error() {
            log::debug!("IoStream fd {}: connect failed: {e}", self.fd);
            self.close_with(CloseCause::from_io(e));
            return;
        }
        self.set(WRITABLE);
        if self.wbuf_len.get() > 0 {
            self.handle_write();
        } else {
            self.disarm(Interest::WRITE);
            self.maybe_shutdown();
        }
        self.wake_writers();
    }

    /// Closes with `cause`; see [`IoStream::close`].
    pub(crate) fn close_with(&self, cause: CloseCause) {
        if self.has(CLOSED) {
            return;
        }
        match &cause {
            CloseCause::Eof | CloseCause::Reset(_) | CloseCause::Local => {
                log::debug!("IoStream fd {} closed: {cause}", self.fd)
            }
            CloseCause::BufferFull | CloseCause::Unsatisfiable => {
                log::info!("IoStream fd {} closed: {cause}", self.fd)
            }
            CloseCause::Io(_) => log::warn!("IoStream fd {} closed: {cause}", self.fd),
        }
        self.set(CLOSED);
        self.clear(CONNECTING | READABLE | WRITABLE);
        self.set_cause(cause);
        if self.has(REGISTERED) {
            self.io_loop.discard_handler(self.fd);
            self.clear(REGISTERED | ARMED_READ | ARMED_WRITE);
        }
        let file = self.file.borrow_mut().take();
        drop(file);
        let queued = self.wbuf.borrow_mut().take();
        self.wbuf_len.set(0);
        drop(queued);
        self.wake_reader();
        self.wake_writers();
        let cb = match self.cold.borrow_mut().as_mut() {
            Some(c) => c.close_callback.take(),
            None => None,
        };
        if let Some(cb) = cb {
            self.io_loop.add_callback(cb);
        }
    }

    // -------------------------------------------------------------- write path

    fn queue(self: &Rc<Self>, data: Bytes) -> Result<(), StreamError> {
        if self.has(CLOSED) {
            return Err(self.closed_error());
        }
        if self.has(SHUT_PENDING) {
            return Err(StreamError::WriteShutdown);
        }
        let len = data.len();
        if len == 0 {
            return Ok(());
        }
        let limit = self.max_write_buffer_size();
        if self.wbuf_len.get().saturating_add(len) > limit {
            return Err(StreamError::WriteBufferFull { limit });
        }
        self.wbuf.borrow_mut().push_back(data);
        self.wbuf_len.set(self.wbuf_len.get() + len);
        Ok(())
    }

    /// Hands queued data to the OS with `writev` until it is all gone or the socket is
    /// full; arms WRITE only in the second case, disarms it in the first.
    fn handle_write(self: &Rc<Self>) {
        let before = self.written.get();
        loop {
            if self.wbuf_len.get() == 0 {
                break;
            }
            let res = {
                let file = self.file.borrow();
                let Some(file) = file.as_ref() else { break };
                let wbuf = self.wbuf.borrow();
                match wbuf.as_slice() {
                    // The usual case (a server's batch of responses is one chunk): a
                    // plain write, without filling an array of MAX_IOV slices first.
                    [only] => (&*file).write(only).map(|w| (w, only.len())),
                    chunks => {
                        let mut slices = [IoSlice::new(&[]); MAX_IOV];
                        let mut n = 0;
                        let mut total = 0;
                        for chunk in chunks.iter().take(MAX_IOV) {
                            slices[n] = IoSlice::new(chunk);
                            total += chunk.len();
                            n += 1;
                        }
                        (&*file).write_vectored(&slices[..n]).map(|w| (w, total))
                    }
                }
            };
            match res {
                Ok((0, _)) => {
                    self.close_with(CloseCause::Io(Arc::new(io::Error::from(
                        io::ErrorKind::WriteZero,
                    ))));
                    break;
                }
                Ok((w, offered)) => {
                    self.consume_written(w);
                    if w < offered {
                        // A short write: assume the socket buffer is full and wait for
                        // WRITE instead of a writev that would return EAGAIN.
                        self.wait_writable();
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_writable();
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close_with(CloseCause::from_io(e));
                    break;
                }
            }
        }
        if self.wbuf_len.get() == 0 && self.has(ARMED_WRITE) && !self.has(CLOSED) {
            self.disarm(Interest::WRITE);
        }
        if self.written.get() != before {
            self.wake_writers();
        }
        self.maybe_shutdown();
    }

    /// Shuts the write side down if [`IoStream::shutdown_write`] asked for it and the
    /// queue is empty (and the stream connected). A non-socket fd (a pipe's write end)
    /// has no half-close: it is closed, which is what its reader sees as the same
    /// end-of-file.
    fn maybe_shutdown(&self) {
        if !self.has(SHUT_PENDING)
            || self.has(SHUT_DONE | CLOSED | CONNECTING)
            || self.wbuf_len.get() > 0
        {
            return;
        }
        let res = match self.file.borrow().as_ref() {
            Some(file) => SockRef::from(file).shutdown(std::net::Shutdown::Write),
            None => return,
        };
        match res {
            Ok(()) => {}
            // The peer is gone already (BSDs say ENOTCONN after a reset): nothing is
            // left to shut; the next read reports how it went.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                log::debug!("IoStream fd {}: shutdown(SHUT_WR): {e}", self.fd);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                self.set(SHUT_DONE);
                self.close_with(CloseCause::Local);
                return;
            }
            Err(e) => {
                self.close_with(CloseCause::from_io(e));
                return;
            }
        }
        self.set(SHUT_DONE);
        self.clear(WRITABLE);
        if self.has(ARMED_WRITE) {
            self.disarm(Interest::WRITE);
        }
        self.wake_writers();
    }

    fn wait_writable(self: &Rc<Self>) {
        self.clear(WRITABLE);
        if let Err(e) = self.arm(Interest::WRITE) {
            self.close_with(CloseCause::Io(Arc::new(e)));
        }
    }

    fn consume_written(&self, w: usize) {
        self.written.set(self.written.get() + w as u64);
        self.wbuf_len.set(self.wbuf_len.get() - w);
        self.wbuf.borrow_mut().consume(w);
    }

    // -------------------------------------------------------------- read engine

    /// One `read(2)` into `buf`.
    fn read_syscall(&self, buf: &mut [u8]) -> io::Result<usize> {
        let file = self.file.borrow();
        match file.as_ref() {
            Some(f) => (&*f).read(buf),
            None => Ok(0),
        }
    }

    /// Parks the pending read until the fd is readable: arms READ (no syscall if it is
    /// armed already) and keeps the waker.
    fn wait_readable(self: &Rc<Self>, cx: &mut Context<'_>) -> Result<(), StreamError> {
        if let Err(e) = self.arm(Interest::READ) {
            self.close_with(CloseCause::Io(Arc::new(e)));
            return Err(self.closed_error());
        }
        let old = self.read_waker.take();
        match old {
            Some(w) if w.will_wake(cx.waker()) => self.read_waker.set(Some(w)),
            _ => {
                self.read_waker.set(Some(cx.waker().clone()));
                drop(old);
            }
        }
        Ok(())
    }

    /// The read engine behind every read but `read_into`.
    ///
    /// `check(buf, closed)` looks at every unconsumed byte in order (`buf` only grows
    /// between calls while the read is pending) and returns how many to consume once the
    /// read is satisfied. Bytes come from the stream's buffer first; then one `read(2)`
    /// into the per-thread buffer, where `check` sees them in place if the stream had no
    /// leftover, and only what it did not consume is copied into the stream's buffer.
    /// After a short read the socket is taken as drained and the read parks without
    /// another syscall.
    pub(crate) fn poll_read<E: From<StreamError>>(
        self: &Rc<Self>,
        cx: &mut Context<'_>,
        need: Need,
        want_bytes: bool,
        check: &mut Check<'_, E>,
    ) -> Poll<Result<Taken, E>> {
        // Work on the buffer outside its RefCell: `check` may be user code.
        let mut buf = mem::take(&mut *self.rbuf.borrow_mut());
        let res = self.read_loop(cx, need, want_bytes, check, &mut buf);
        if buf.is_empty() {
            // Free the capacity: an idle stream owns no buffer.
            buf = BytesMut::new();
        }
        let mut slot = self.rbuf.borrow_mut();
        if slot.is_empty() {
            *slot = buf;
        } else {
            // Not reachable (nothing else appends while a read is pending); keep order.
            buf.extend_from_slice(&slot);
            *slot = buf;
        }
        res
    }

    fn read_loop<E: From<StreamError>>(
        self: &Rc<Self>,
        cx: &mut Context<'_>,
        need: Need,
        want_bytes: bool,
        check: &mut Check<'_, E>,
        buf: &mut BytesMut,
    ) -> Poll<Result<Taken, E>> {
        let mut checked = false;
        loop {
            let closed = self.has(CLOSED);
            if !checked && (!buf.is_empty() || closed) {
                match check(buf, closed) {
                    Err(e) => return Poll::Ready(Err(e)),
                    Ok(Some(n)) => return Poll::Ready(Ok(take(buf, n, want_bytes))),
                    Ok(None) => {}
                }
            }
            checked = false;
            if closed {
                return Poll::Ready(Err(self.closed_error().into()));
            }
            if !self.has(READABLE) {
                return match self.wait_readable(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e.into())),
                };
            }
            let limit = self.max_buffer_size();
            let room = limit.saturating_sub(buf.len());
            if room == 0 {
                // Full. One more byte decides, as in Tornado, which fails only past the
                // limit: end of file means the buffered bytes are all there is (the
                // check above then sees them with the stream closed); a byte means the
                // limit is passed.
                let mut probe = [0u8; 1];
                match self.read_syscall(&mut probe) {
                    Ok(0) => self.close_with(CloseCause::Eof),
                    Ok(_) => {
                        self.close_with(CloseCause::BufferFull);
                        return Poll::Ready(Err(StreamError::BufferFull { limit }.into()));
                    }
                    Err(e) => match e.kind() {
                        io::ErrorKind::WouldBlock => self.clear(READABLE),
                        io::ErrorKind::Interrupted => {}
                        _ => self.close_with(CloseCause::from_io(e)),
                    },
                }
                continue;
            }
            let want = match need {
                Need::Total(n) => n.saturating_sub(buf.len()).max(1),
                Need::Chunk => self.read_chunk_size(),
            }
            .min(room)
            .min(SHARED_LEN);
            let step = with_shared(|shared| {
                let dst = &mut shared[..want];
                let n = match self.read_syscall(dst) {
                    Ok(n) => n,
                    Err(e) => return Step::Err(e),
                };
                if n == 0 {
                    return Step::Eof;
                }
                if n < want {
                    self.clear(READABLE);
                }
                let got = &dst[..n];
                if buf.is_empty() {
                    // Straight from the shared buffer: keep only the leftover.
                    match check(got, false) {
                        Err(e) => {
                            buf.extend_from_slice(got);
                            Step::Failed(e)
                        }
                        Ok(Some(k)) => {
                            let k = k.min(n);
                            let out = if want_bytes {
                                Taken::Bytes(Bytes::copy_from_slice(&got[..k]))
                            } else {
                                Taken::Consumed
                            };
                            buf.extend_from_slice(&got[k..]);
                            Step::Done(out)
                        }
                        Ok(None) => {
                            buf.extend_from_slice(got);
                            Step::Checked
                        }
                    }
                } else {
                    buf.extend_from_slice(got);
                    Step::Appended
                }
            });
            match step {
                Step::Done(t) => return Poll::Ready(Ok(t)),
                Step::Failed(e) => return Poll::Ready(Err(e)),
                Step::Checked => checked = true,
                Step::Appended => {}
                Step::Eof => self.close_with(CloseCause::Eof),
                Step::Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => self.clear(READABLE),
                    io::ErrorKind::Interrupted => {}
                    _ => self.close_with(CloseCause::from_io(e)),
                },
            }
        }
    }

    /// `read_into`: buffered bytes first, then `read(2)` straight into `dst`.
    pub(crate) fn poll_read_into(
        self: &Rc<Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
        filled: &mut usize,
        partial: bool,
    ) -> Poll<Result<usize, StreamError>> {
        {
            let mut rbuf = self.rbuf.borrow_mut();
            if !rbuf.is_empty() {
                let k = rbuf.len().min(dst.len() - *filled);
                dst[*filled..*filled + k].copy_from_slice(&rbuf[..k]);
                rbuf.advance(k);
                *filled += k;
                if rbuf.is_empty() {
                    *rbuf = BytesMut::new();
                }
            }
        }
        loop {
            if *filled == dst.len() || (partial && *filled > 0) {
                return Poll::Ready(Ok(*filled));
            }
            if self.has(CLOSED) {
                return Poll::Ready(Err(self.closed_error()));
            }
            if !self.has(READABLE) {
                return match self.wait_readable(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                };
            }
            let want = dst.len() - *filled;
            match self.read_syscall(&mut dst[*filled..]) {
                Ok(0) => self.close_with(CloseCause::Eof),
                Ok(n) => {
                    if n < want {
                        self.clear(READABLE);
                    }
                    *filled += n;
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => self.clear(READABLE),
                    io::ErrorKind::Interrupted => {}
                    _ => self.close_with(CloseCause::from_io(e)),
                },
            }
        }
    }
}

enum Step<E> {
    Done(Taken),
    Failed(E),
    Checked,
    Appended,
    Eof,
    Err(io::Error),
}

fn take(buf: &mut BytesMut, n: usize, want_bytes: bool) -> Taken {
    let n = n.min(buf.len());
    if want_bytes {
        Taken::Bytes(buf.split_to(n).freeze())
    } else {
        buf.advance(n);
        Taken::Consumed
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.has(REGISTERED) {
            self.io_loop.discard_handler(self.fd);
        }
    }
}
