//! The read engine behind every read: buffered bytes first, then one `read(2)` into the
//! per-thread buffer where the pending read's check sees them in place, and only the
//! leftover kept; the syscall rules (no `read()` after a short one) and the limits.

use std::io;
use std::mem;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use squall_ioloop::Interest;

use crate::error::{CloseCause, StreamError};
use crate::shared::{with_shared, SHARED_LEN};
use crate::state::*;

/// The smallest exact read (`read_bytes`) that [`read_loop`](Inner::read_loop) reads
/// into a buffer of its own, handed to the caller without a copy; smaller ones go
/// through the per-thread buffer, and only what they take is copied out.
const DIRECT_MIN: usize = 16 * 1024;

/// The least room in the caller's buffer that a poll-style read
/// ([`poll_read_chunk`](Inner::poll_read_chunk)) reads into directly: most request
/// heads fit (a browser's are under a KiB or two), and a read that fills it is
/// followed by whole read chunks through the thread's buffer ([`READ_FULL`]).
const DIRECT_READ_ROOM: usize = 1024;

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

impl Inner {
    /// A read syscall failed: `EAGAIN` means drained, `EINTR` try again, anything else
    /// closes the stream with the error as its cause. The read's caller gets the error,
    /// so it is not logged at warn level here.
    fn read_failed(self: &Rc<Self>, e: io::Error) {
        match e.kind() {
            io::ErrorKind::WouldBlock => self.clear(READABLE),
            io::ErrorKind::Interrupted => {}
            _ => self.close_returned(CloseCause::from_io(e)),
        }
    }

    /// After a read that came back short: the fd is drained (its registration is
    /// edge-triggered, so the next read waits for its next report), unless a layer said
    /// it holds more.
    #[inline]
    pub(crate) fn short_read(&self) {
        if self.has(LAYER_MORE) {
            self.clear(LAYER_MORE);
        } else {
            self.clear(READABLE);
        }
    }

    /// Parks the pending read until the fd is readable: arms READ (no syscall if it is
    /// armed already) and keeps the waker.
    pub(crate) fn wait_readable(self: &Rc<Self>, cx: &mut Context<'_>) -> Result<(), StreamError> {
        if let Err(e) = self.arm(Interest::READ) {
            self.close_returned(CloseCause::Io(Arc::new(e)));
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
        self.set(READ_WAIT);
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
        // Work on the buffer outside its RefCell: `check` may be user code. Its box
        // is kept for the leftover, so a reader that keeps some between calls does not
        // allocate one per call.
        let mut boxed = self.rbuf.borrow_mut().take();
        let mut buf = boxed.as_deref_mut().map_or_else(BytesMut::new, mem::take);
        let res = self.read_loop(cx, need, want_bytes, check, &mut buf);
        let mut slot = self.rbuf.borrow_mut();
        if let Some(later) = slot.as_deref() {
            // Not reachable (nothing else appends while a read is pending); keep order.
            buf.extend_from_slice(later);
        }
        // Emptied, box and capacity go: an idle stream owns no buffer.
        *slot = if buf.is_empty() {
            None
        } else if let Some(mut b) = boxed {
            *b = buf;
            Some(b)
        } else {
            Some(Box::new(buf))
        };
        res
    }

    pub(crate) fn read_loop<E: From<StreamError>>(
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
                if self.wait_readable(cx).is_ok() {
                    return Poll::Pending;
                }
                // The fd could not be watched and the stream closed with the error: the
                // check sees the buffer once more, closed (a `read_until_close` still
                // gets every byte received).
                checked = false;
                continue;
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
                    Err(e) => self.read_failed(e),
                }
                continue;
            }
            let want = match need {
                Need::Total(n) => n.saturating_sub(buf.len()).max(1),
                Need::Chunk => self.read_chunk_size(),
            }
            .min(room)
            .min(SHARED_LEN);
            if want_bytes
                && buf.is_empty()
                && matches!(need, Need::Total(n) if n >= DIRECT_MIN)
                && !self.has(LAYERED)
            {
                // A large block is asked for: read it into a buffer of its own, which
                // becomes the caller's `Bytes` without a copy. The read asks for a
                // chunk more than the block, as every read may: when the peer sent
                // exactly the block, the read comes back short, and the stream knows
                // the socket is drained without a `read(2)` that finds nothing.
                let ask = (want + self.read_chunk_size()).min(room);
                match self.read_block(ask) {
                    Ok(block) if block.is_empty() => self.close_with(CloseCause::Eof),
                    Ok(block) => {
                        if block.len() < ask {
                            self.clear(READABLE);
                        }
                        *buf = if block.len() * 4 < block.capacity() {
                            // Only a little came: a `Bytes` of it must not hold the
                            // whole block's allocation (at most 4x what it shows).
                            BytesMut::from(&block[..])
                        } else {
                            block
                        };
                    }
                    Err(e) => self.read_failed(e),
                }
                continue;
            }
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
                    self.short_read();
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
                Step::Err(e) => self.read_failed(e),
            }
        }
    }

    /// With nobody reading and a close callback set, after a READ report: whether the
    /// peer is gone, and why, learnt without taking bytes a later read wants. A socket
    /// is peeked at (`Ok(0)`: end-of-file; a reset is its error); a pipe, which cannot
    /// be peeked at, and a layered stream, whose end (a TLS `close_notify`) a peek at
    /// the socket cannot tell from data, are read ahead into the stream's buffer, as
    /// Tornado reads to its buffer to notice a close.
    pub(crate) fn peer_gone(self: &Rc<Self>) -> Option<CloseCause> {
        if !self.has(LAYERED | NOT_SOCKET) {
            match self.peek() {
                Ok(0) => return Some(CloseCause::Eof),
                Ok(_) => return None,
                Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => self.set(NOT_SOCKET),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    return None
                }
                Err(e) => return Some(CloseCause::from_io(e)),
            }
        }
        self.read_ahead_eof().then_some(CloseCause::Eof)
    }

    /// Reads what has arrived into the stream's buffer (for the next read), at most
    /// `max_buffer_size` ahead, until the fd has nothing more (not just until a short
    /// read: the end may come right behind the data, as a FIN or a reset the poller
    /// reported with it); `true` at end-of-file. A read error closes the stream with
    /// it (returned to a read or write that waits, else logged); a pipe's write end,
    /// which cannot be read, is reported only once its reader is gone, and closes as a
    /// write to it would fail (`EPIPE`).
    pub(crate) fn read_ahead_eof(self: &Rc<Self>) -> bool {
        loop {
            let held = self.rbuf.borrow().as_deref().map_or(0, BytesMut::len);
            if held >= self.max_buffer_size() {
                return false;
            }
            let want = self.read_chunk_size().min(SHARED_LEN);
            let res = with_shared(|shared| {
                let dst = &mut shared[..want];
                let n = self.read_syscall(dst)?;
                if n > 0 {
                    self.rbuf
                        .borrow_mut()
                        .get_or_insert_with(Box::default)
                        .extend_from_slice(&dst[..n]);
                }
                Ok::<_, io::Error>(n)
            });
            match res {
                Ok(0) => return true,
                Ok(_) => self.clear(LAYER_MORE),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.clear(READABLE);
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let cause = if self.has(NOT_SOCKET) && e.raw_os_error() == Some(libc::EBADF) {
                        CloseCause::Reset(Arc::new(io::Error::from_raw_os_error(libc::EPIPE)))
                    } else {
                        CloseCause::from_io(e)
                    };
                    self.close_met_outside(cause);
                    return false;
                }
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
            let mut slot = self.rbuf.borrow_mut();
            if let Some(rbuf) = slot.as_deref_mut() {
                let k = rbuf.len().min(dst.len() - *filled);
                dst[*filled..*filled + k].copy_from_slice(&rbuf[..k]);
                rbuf.advance(k);
                *filled += k;
                if rbuf.is_empty() {
                    *slot = None;
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
                        self.short_read();
                    }
                    *filled += n;
                }
                Err(e) => self.read_failed(e),
            }
        }
    }

    /// The syscall half of [`IoStream::poll_read_buf`](crate::IoStream::poll_read_buf):
    /// with nothing buffered, one `read(2)` of up to the read chunk size appended to
    /// `dst`; `Ok(0)` at end-of-file.
    #[inline(always)]
    pub(crate) fn poll_read_chunk(
        self: &Rc<Self>,
        cx: &mut Context<'_>,
        dst: &mut BytesMut,
    ) -> Poll<Result<usize, StreamError>> {
        loop {
            if self.has(CLOSED) {
                return Poll::Ready(match self.cause() {
                    Some(CloseCause::Eof) => Ok(0),
                    _ => Err(self.closed_error()),
                });
            }
            if !self.has(READABLE) {
                return match self.wait_readable(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                };
            }
            let mut want = self.read_chunk_size();
            let room = dst.capacity() - dst.len();
            let res = if room >= DIRECT_READ_ROOM && !self.has(LAYERED | READ_FULL) {
                // Room enough in the caller's buffer for a request's head: the read
                // lands there, with no copy and no visit to the thread's buffer.
                want = want.min(room);
                self.read_append(dst, want)
            } else {
                with_shared(
                    #[inline(always)]
                    |shared| {
                        let got = self.read_syscall(&mut shared[..want]);
                        if let Ok(n) = got {
                            dst.extend_from_slice(&shared[..n]);
                        }
                        got
                    },
                )
            };
            match res {
                Ok(0) => self.close_with(CloseCause::Eof),
                Ok(n) => {
                    if n < want {
                        self.short_read();
                        self.clear(READ_FULL);
                    } else {
                        self.set(READ_FULL);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) => self.read_failed(e),
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
