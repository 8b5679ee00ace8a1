//! The write path: queueing, handing the queue to the OS, the half-close, and the
//! future that waits for it all.

use std::fmt;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use squall_ioloop::Interest;

use crate::error::{CloseCause, StreamError};
use crate::layer::LayeredWrite;
use crate::state::*;
use crate::stream::IoStream;

/// The future of [`IoStream::write`] and [`IoStream::flush`]: resolves when the data
/// queued before it has left the stream's buffer (Tornado's write future). Dropping it
/// does not cancel the write.
#[must_use = "the data is queued either way; await this to know it has been sent"]
pub struct WriteFuture<'a> {
    pub(crate) stream: &'a IoStream,
    pub(crate) state: WriteState,
}

/// What one write to the fd did ([`Inner::wrote`]).
enum Wrote {
    /// All it was offered, this many bytes.
    All(usize),
    /// Part of it: the socket is full (WRITE is armed).
    Part(usize),
    /// Nothing, the socket is full (WRITE is armed).
    Blocked,
    /// Interrupted by a signal: try again.
    Again,
    /// The stream is closed (it was, or the write failed).
    Closed,
}

pub(crate) enum WriteState {
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
                // Through a layer, the bytes are out once its ciphertext is too (a TLS
                // record rustls holds is not on the socket yet).
                if inner.written.get() >= *target && !inner.layer_wants_write() {
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

impl Inner {
    pub(crate) fn queue(self: &Rc<Self>, data: Bytes) -> Result<(), StreamError> {
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
        self.wbuf
            .borrow_mut()
            .get_or_insert_with(Box::default)
            .push_back(data);
        self.wbuf_len.set(self.wbuf_len.get() + len);
        Ok(())
    }

    /// Writes the front of `buf` straight to the socket, when nothing is queued before
    /// it and the socket is known to be writable, advancing `buf` past what the socket
    /// took. `Ok(true)` when all of it went; `Ok(false)` when the caller must queue the
    /// rest (the direct path did not apply, or the socket is full: then WRITE is armed,
    /// as after a short `writev`).
    #[inline(always)]
    pub(crate) fn write_direct(self: &Rc<Self>, buf: &mut BytesMut) -> Result<bool, StreamError> {
        if self.has(CLOSED) {
            return Err(self.closed_error());
        }
        if self.has(SHUT_PENDING) {
            return Err(StreamError::WriteShutdown);
        }
        if self.wbuf_len.get() != 0
            || self.has(LAYERED | CONNECTING | ARMED_WRITE)
            || !self.has(WRITABLE)
        {
            return Ok(false);
        }
        while !buf.is_empty() {
            let res = self.write_slice(buf);
            match self.wrote(res, buf.len()) {
                Wrote::All(w) => {
                    self.written.set(self.written.get() + w as u64);
                    // Cleared where it starts, not advanced: the whole allocation serves
                    // the next batch.
                    buf.clear();
                }
                Wrote::Part(w) => {
                    self.written.set(self.written.get() + w as u64);
                    buf.advance(w);
                    return Ok(false);
                }
                Wrote::Blocked => return Ok(false),
                Wrote::Again => {}
                Wrote::Closed => return Err(self.closed_error()),
            }
        }
        Ok(true)
    }

    /// What one `write`/`writev` of `offered` bytes did (`None`: the fd is closed), with
    /// the stream updated for it: WRITE armed when the socket is full (after a short
    /// write too: the next `writev` would say `EAGAIN`), the stream closed on an error
    /// or a write of nothing.
    fn wrote(self: &Rc<Self>, res: Option<io::Result<usize>>, offered: usize) -> Wrote {
        match res {
            None => Wrote::Closed,
            Some(Ok(0)) => {
                self.close_with(CloseCause::Io(Arc::new(io::Error::from(
                    io::ErrorKind::WriteZero,
                ))));
                Wrote::Closed
            }
            Some(Ok(w)) if w < offered => {
                self.wait_writable();
                Wrote::Part(w)
            }
            Some(Ok(w)) => Wrote::All(w),
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.wait_writable();
                Wrote::Blocked
            }
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Wrote::Again,
            Some(Err(e)) => {
                self.close_with(CloseCause::from_io(e));
                Wrote::Closed
            }
        }
    }

    /// Hands queued data to the OS with `writev` until it is all gone or the socket is
    /// full; arms WRITE only in the second case, disarms it in the first.
    pub(crate) fn handle_write(self: &Rc<Self>) {
        let before = self.written.get();
        let layer_idle = if self.has(LAYERED) {
            self.handle_layered_write()
        } else {
            self.write_queue();
            true
        };
        let idle = self.wbuf_len.get() == 0 && layer_idle;
        if idle && self.has(ARMED_WRITE) && !self.has(CLOSED) {
            self.disarm(Interest::WRITE);
        }
        // Through a layer a write is done when the layer's ciphertext is out too, which
        // may be long after its bytes were counted.
        if self.written.get() != before || (layer_idle && self.has(LAYERED)) {
            self.wake_writers();
        }
        self.maybe_shutdown();
    }

    /// [`handle_write`](Inner::handle_write) through a layer: what the layer holds goes
    /// first, then the queue, taken by the layer as it can. Whether the layer is left
    /// holding nothing to send.
    fn handle_layered_write(self: &Rc<Self>) -> bool {
        match self.layer_write_queue() {
            LayeredWrite::Done => true,
            LayeredWrite::Blocked(on) => {
                self.layer_blocked(on);
                false
            }
            LayeredWrite::Failed(e) => {
                self.close_with(CloseCause::from_io(e));
                true
            }
        }
    }

    /// The plain write path: `write`/`writev` until the queue is empty or the fd full.
    fn write_queue(self: &Rc<Self>) {
        while self.wbuf_len.get() != 0 {
            let (res, offered) = match self.write_fd() {
                Some((res, offered)) => (Some(res), offered),
                None => (None, 0),
            };
            match self.wrote(res, offered) {
                Wrote::All(w) => self.consume_written(w),
                Wrote::Part(w) => {
                    self.consume_written(w);
                    break;
                }
                Wrote::Again => {}
                Wrote::Blocked | Wrote::Closed => break,
            }
        }
    }

    /// Shuts the write side down if [`IoStream::shutdown_write`] asked for it and the
    /// queue is empty (and the stream connected). A non-socket fd (a pipe's write end)
    /// has no half-close: it is closed, which is what its reader sees as the same
    /// end-of-file.
    pub(crate) fn maybe_shutdown(self: &Rc<Self>) {
        if !self.has(SHUT_PENDING)
            || self.has(SHUT_DONE | CLOSED | CONNECTING)
            || self.wbuf_len.get() > 0
        {
            return;
        }
        if self.has(LAYERED) {
            // The layer's goodbye (TLS close_notify) goes before the half-close.
            self.with_layer(|l| l.close());
            match self.layer_flush() {
                Ok(true) => {}
                Ok(false) => {
                    self.wait_writable();
                    return;
                }
                Err(e) => {
                    self.close_with(CloseCause::from_io(e));
                    return;
                }
            }
        }
        let Some(res) = self.shutdown_fd() else {
            return;
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

    pub(crate) fn wait_writable(self: &Rc<Self>) {
        self.clear(WRITABLE);
        if let Err(e) = self.arm(Interest::WRITE) {
            self.close_with(CloseCause::Io(Arc::new(e)));
        }
    }

    pub(crate) fn consume_written(&self, w: usize) {
        self.written.set(self.written.get() + w as u64);
        self.wbuf_len.set(self.wbuf_len.get() - w);
        if let Some(q) = self.wbuf.borrow_mut().as_deref_mut() {
            q.consume(w);
        }
    }
}
