//! The byte stream under a connection: the [`Transport`] trait, and [`MemoryTransport`],
//! an in-memory one for tests and benchmarks.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

/// A non-blocking byte stream that an [`Http1Connection`](crate::Http1Connection) reads
/// requests from and writes responses to.
///
/// The connection owns its input buffer (a `BytesMut` the sans-IO parser consumes from)
/// and its output buffer (a `BytesMut` of encoded responses); the transport moves bytes
/// between those buffers and the peer. [`IoStreamTransport`](crate::IoStreamTransport)
/// implements it over squall's `IoStream`; [`MemoryTransport`] over in-memory queues.
///
/// The connection polls the read future together with its timers and a shutdown
/// signal (dropping it when one of those wins), so a read must be cancel-safe: bytes
/// are either appended to `buf` or left in the transport. An idle connection makes its
/// read future anew at each poll (so that it keeps none while it waits): a `Pending`
/// read must leave its waker registered with the stream, not in the future. Writes are in the `poll_*`
/// style because the connection sends output while a delegate's future is pending.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Append what the peer sent to `buf` (at least one byte) and return how many bytes
    /// were added; `Ok(0)` means end of file.
    ///
    /// # Errors
    /// The stream's error (a reset peer, a closed stream).
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize>;

    /// Send all of `out` to the peer, taking bytes from its front as they go; `Ready(Ok)`
    /// when `out` is empty and its bytes reached the operating system (or the peer).
    /// Registers `cx`'s waker while the peer is not accepting more.
    ///
    /// # Errors
    /// The stream's error; what was not sent stays in `out`.
    fn poll_write(&mut self, cx: &mut Context<'_>, out: &mut BytesMut) -> Poll<io::Result<()>>;

    /// Close the stream (both directions). Idempotent.
    fn close(&mut self);

    /// A hint that the connection is about to be served: the transport may ask the CPU
    /// to start loading its state ([`IoStream::prefetch`](squall_iostream::IoStream::prefetch)).
    /// It must do nothing observable. Default: nothing.
    fn prefetch(&self) {}

    /// The stream, for a connection handed over after `101 Switching Protocols`
    /// ([`ResponseWriter::detach`](crate::ResponseWriter::detach)). Default: `None`, a
    /// transport that cannot be handed over (the connection is closed instead).
    fn take_stream(&mut self) -> Option<squall_iostream::IoStream> {
        None
    }

    /// Shut down the sending side once everything written has been sent
    /// (`shutdown(SHUT_WR)`): the peer reads end-of-file right after the last byte,
    /// while the connection can still read (and discard) what the peer sends. This is
    /// how a connection that ends closes, as nginx does: half-close, linger reading for
    /// a bounded time, then close, so that unread input never turns the close into a
    /// reset that destroys the response. `Ready(Ok)` once the write side is shut down;
    /// registers `cx`'s waker while output is still being sent.
    ///
    /// The default is `Unsupported`, for a transport without a half-close: the
    /// connection then lingers with the stream fully open and closes it after.
    ///
    /// # Errors
    /// The stream's error; `Unsupported` as above.
    fn poll_shutdown_write(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }

    /// Bytes the transport holds in buffers of its own (read-ahead, queued writes),
    /// for the connection's memory accounting. Default 0.
    fn buffered_len(&self) -> usize {
        0
    }

    /// Response bytes the transport has taken from the output buffer and not yet
    /// sent, counted against
    /// [`max_write_buffer_size`](crate::HttpServerConfig::max_write_buffer_size).
    /// Default 0 (everything taken is sent at once).
    fn write_queued(&self) -> usize {
        0
    }
}

#[derive(Debug, Default)]
struct Pipe {
    input: VecDeque<Bytes>,
    eof: bool,
    reset: bool,
    read_waker: Option<Waker>,
    output: BytesMut,
    write_calls: usize,
    write_shut: bool,
    closed: bool,
}

/// An in-memory [`Transport`]: what the [`MemoryPeer`] sends is read by the connection,
/// and what the connection writes is collected for the peer to take. Single-threaded,
/// for tests and benchmarks of the connection logic without sockets.
///
/// ```
/// use squall_httpserver::MemoryTransport;
///
/// let (transport, peer) = MemoryTransport::pair();
/// peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
/// peer.close();
/// # drop(transport);
/// ```
#[derive(Debug)]
pub struct MemoryTransport {
    pipe: Rc<RefCell<Pipe>>,
}

/// The other end of a [`MemoryTransport`].
#[derive(Debug, Clone)]
pub struct MemoryPeer {
    pipe: Rc<RefCell<Pipe>>,
}

impl MemoryTransport {
    /// A transport and its peer.
    pub fn pair() -> (MemoryTransport, MemoryPeer) {
        let pipe = Rc::new(RefCell::new(Pipe::default()));
        (MemoryTransport { pipe: pipe.clone() }, MemoryPeer { pipe })
    }
}

impl MemoryPeer {
    /// Queue bytes for the connection to read (one read returns at most one `send`).
    pub fn send(&self, data: &[u8]) {
        self.send_bytes(Bytes::copy_from_slice(data));
    }

    /// Queue bytes without copying them.
    pub fn send_bytes(&self, data: Bytes) {
        let mut p = self.pipe.borrow_mut();
        if !data.is_empty() {
            p.input.push_back(data);
        }
        if let Some(w) = p.read_waker.take() {
            w.wake();
        }
    }

    /// End of file after what was sent.
    pub fn close(&self) {
        let mut p = self.pipe.borrow_mut();
        p.eof = true;
        if let Some(w) = p.read_waker.take() {
            w.wake();
        }
    }

    /// The next read fails with `ConnectionReset`.
    pub fn reset(&self) {
        let mut p = self.pipe.borrow_mut();
        p.reset = true;
        if let Some(w) = p.read_waker.take() {
            w.wake();
        }
    }

    /// Take what the connection has written so far.
    pub fn take_output(&self) -> BytesMut {
        self.pipe.borrow_mut().output.split()
    }

    /// How many `poll_write` calls sent bytes (each one would be a `write(2)`).
    pub fn write_calls(&self) -> usize {
        self.pipe.borrow().write_calls
    }

    /// Whether the connection closed its transport.
    pub fn is_closed(&self) -> bool {
        self.pipe.borrow().closed
    }

    /// Whether the connection shut down its sending side
    /// ([`Transport::poll_shutdown_write`]): the peer has read end-of-file after the
    /// output, whether or not the transport is closed yet.
    pub fn is_write_shut_down(&self) -> bool {
        self.pipe.borrow().write_shut
    }

    /// Bytes sent by the peer and not read by the connection yet.
    pub fn unread(&self) -> usize {
        self.pipe.borrow().input.iter().map(Bytes::len).sum()
    }

    /// Take the waker of the connection's pending read, if it waits: a test can then
    /// send bytes that wake nobody, and wake the reader itself (from another thread).
    #[cfg(test)]
    pub(crate) fn take_read_waker(&self) -> Option<std::task::Waker> {
        self.pipe.borrow_mut().read_waker.take()
    }
}

impl Transport for MemoryTransport {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    fn poll_write(&mut self, _cx: &mut Context<'_>, out: &mut BytesMut) -> Poll<io::Result<()>> {
        let mut p = self.pipe.borrow_mut();
        if p.closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "transport closed",
            )));
        }
        if p.write_shut && !out.is_empty() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown_write",
            )));
        }
        if !out.is_empty() {
            p.write_calls += 1;
            if p.output.is_empty() {
                p.output = out.split();
            } else {
                p.output.extend_from_slice(out);
                out.clear();
            }
        }
        Poll::Ready(Ok(()))
    }

    fn close(&mut self) {
        self.pipe.borrow_mut().closed = true;
    }

    fn poll_shutdown_write(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut p = self.pipe.borrow_mut();
        if p.closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "transport closed",
            )));
        }
        p.write_shut = true;
        Poll::Ready(Ok(()))
    }
}

impl MemoryTransport {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        let mut p = self.pipe.borrow_mut();
        if p.closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "transport closed",
            )));
        }
        if p.reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if let Some(data) = p.input.pop_front() {
            buf.extend_from_slice(&data);
            return Poll::Ready(Ok(data.len()));
        }
        if p.eof {
            return Poll::Ready(Ok(0));
        }
        match &p.read_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => p.read_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
