//! [`IoStream`] as a byte stream of the wider ecosystem: `futures-io`'s
//! `AsyncRead`/`AsyncWrite` (cargo feature `futures-io`) and tokio's (cargo feature
//! `tokio`), so codecs and protocol crates written for either run on the squall loop.
//! A TLS stream of `squall-tls` is an `IoStream` with a layer, so it implements them
//! too, carrying plaintext.
//!
//! Both pairs of traits share the poll functions below, which keep the stream's rules:
//!
//! - **Reads** copy what is buffered first, then make one `read(2)` straight into the
//!   caller's buffer; `Ok(0)` is end-of-file. A read future of the stream's own
//!   (`read_until`...) must not be pending at the same time
//!   ([`StreamError::ReadInProgress`] otherwise).
//! - **Writes** are copied into the stream's write queue and handed to the OS at once
//!   when the socket is writable (one `writev` for all that is queued). Backpressure:
//!   a write takes only what keeps the queue within [`COMPAT_WRITE_HIGH_WATER`] bytes
//!   (the caller offers the rest again), once that many are queued it waits until the
//!   queue has drained, and a write never passes `max_write_buffer_size`.
//! - **A write the OS refuses** (a reset peer) fails, and so do a later flush and close:
//!   bytes a close threw away were never accepted. A stream closed with nothing left
//!   to send (at the peer's end of file, say) flushes and closes as done, as a tokio
//!   `TcpStream` does, so `copy` and `Framed` end cleanly.
//! - **Flush** waits until the queue is empty. **Close** (`poll_close`,
//!   `poll_shutdown`) is a half-close, as tokio's `TcpStream::poll_shutdown` and
//!   async-std's `poll_close` are: the queue is flushed (a TLS layer's `close_notify`
//!   after it), then the write side is shut down
//!   ([`shutdown_write`](IoStream::shutdown_write)); the peer reads end-of-file, and
//!   the stream can still read its answer. Later writes fail; dropping the stream, or
//!   [`close`](IoStream::close), closes it.
//!
//! `IoStream`'s own [`write`](IoStream::write), [`flush`](IoStream::flush) and
//! [`close`](IoStream::close) are inherent methods, so they win over the extension
//! traits' methods of the same names: call those as `AsyncWriteExt::flush(&mut
//! stream)` (or hand the stream to a codec, which calls the traits).
//!
//! Errors are `io::Error`s made from [`StreamError`] (its `From` conversion keeps the
//! OS error's kind); a reset peer is `ConnectionReset`, a stream closed here
//! `NotConnected`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::error::{CloseCause, StreamError};
use crate::IoStream;

/// How many bytes the ecosystem traits let queue before a write waits for the queue to
/// drain (64 KiB: four of a typical socket buffer's pages beyond what the kernel holds).
pub const COMPAT_WRITE_HIGH_WATER: usize = 64 * 1024;

impl IoStream {
    /// The read shared by both `AsyncRead`s: at least one byte into `buf`, or `0` at
    /// end-of-file.
    fn compat_poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.reading() {
            return Poll::Ready(Err(StreamError::ReadInProgress.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut filled = 0;
        match self.inner.poll_read_into(cx, buf, &mut filled, true) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(n)) => Poll::Ready(Ok(n)),
            Poll::Ready(Err(StreamError::Closed(CloseCause::Eof))) => Poll::Ready(Ok(0)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
        }
    }

    /// The write shared by both `AsyncWrite`s: queues as much of `buf` as the limits
    /// allow (at least one byte) and starts sending.
    fn compat_poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.closed() {
            return Poll::Ready(Err(self.closed_error().into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.write_buffer_len() >= COMPAT_WRITE_HIGH_WATER {
            match self.poll_flush(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Ready(Ok(())) => {}
            }
        }
        // Take no more than fits under the mark: one large write must not queue a
        // copy of all of itself (the caller keeps the rest and offers it again).
        let mut n = buf
            .len()
            .min(COMPAT_WRITE_HIGH_WATER - self.write_buffer_len());
        loop {
            match self.write_buffered(Bytes::copy_from_slice(&buf[..n])) {
                Ok(()) => break,
                Err(StreamError::WriteBufferFull { limit }) => {
                    let room = limit.saturating_sub(self.write_buffer_len());
                    if room > 0 {
                        n = n.min(room);
                        continue;
                    }
                    // Full: wait for the queue to drain; an empty queue with no room
                    // is a zero limit, which no write can pass.
                    match self.poll_flush(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                        Poll::Ready(Ok(())) if limit == 0 => {
                            return Poll::Ready(Err(StreamError::WriteBufferFull { limit }.into()))
                        }
                        Poll::Ready(Ok(())) => {}
                    }
                }
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        // Hand the queue to the OS now if the socket is writable; what is left goes
        // out when it becomes writable, whether or not anyone flushes.
        drop(self.flush());
        if self.closed() {
            // That write failed (a reset peer) and the close threw the bytes away:
            // they were not accepted.
            return Poll::Ready(Err(self.closed_error().into()));
        }
        Poll::Ready(Ok(n))
    }

    /// A flush (or close) of a stream that has closed: done, unless the close threw away
    /// output that was never sent (a reset peer, an error), which is the close's
    /// error. A stream closed at the peer's end of file with nothing queued has
    /// nothing left to flush, as a tokio `TcpStream`'s flush is then a no-op
    /// (`tokio::io::copy` and `Framed` flush after reading the end).
    fn closed_flush(&self) -> io::Result<()> {
        if self.inner.has(crate::state::LOST_OUTPUT) {
            Err(self.closed_error().into())
        } else {
            Ok(())
        }
    }

    fn compat_poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closed() {
            return Poll::Ready(self.closed_flush());
        }
        self.poll_flush(cx).map_err(io::Error::from)
    }

    fn compat_poll_close(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closed() {
            return Poll::Ready(self.closed_flush());
        }
        if self.write_shut_down() {
            return Poll::Ready(Ok(()));
        }
        // Asking again on a later poll is harmless: the shutdown takes effect once,
        // after the queue (and a layer's goodbye) went out.
        let mut shutdown = self.shutdown_write();
        Pin::new(&mut shutdown).poll(cx).map_err(io::Error::from)
    }
}

#[cfg(feature = "futures-io")]
mod futures_impl {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use crate::IoStream;

    /// `futures-io`'s read (cargo feature `futures-io`); see the [`compat`](crate::compat)
    /// module for the rules.
    impl futures_io::AsyncRead for IoStream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.compat_poll_read(cx, buf)
        }
    }

    /// `futures-io`'s write (cargo feature `futures-io`); `poll_close` flushes, then
    /// shuts the write side down (reads go on).
    impl futures_io::AsyncWrite for IoStream {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.compat_poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.compat_poll_flush(cx)
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.compat_poll_close(cx)
        }
    }
}

#[cfg(feature = "tokio")]
mod tokio_impl {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use crate::IoStream;

    /// tokio's read (cargo feature `tokio`); no tokio runtime is needed, the squall
    /// loop drives the stream.
    impl tokio::io::AsyncRead for IoStream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let dst = buf.initialize_unfilled();
            match self.compat_poll_read(cx, dst) {
                Poll::Ready(Ok(n)) => {
                    buf.advance(n);
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }
    }

    /// tokio's write (cargo feature `tokio`); `poll_shutdown` flushes, then shuts the
    /// write side down (reads go on).
    impl tokio::io::AsyncWrite for IoStream {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.compat_poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.compat_poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.compat_poll_close(cx)
        }
    }
}
