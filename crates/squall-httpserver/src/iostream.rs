//! [`IoStreamTransport`]: the [`Transport`] over squall's `IoStream`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use squall_iostream::{IoStream, StreamError};

use crate::spare;
use crate::transport::Transport;

/// A [`Transport`] over an [`IoStream`], as [`HttpServer`](crate::HttpServer) uses.
///
/// **Reads** use the stream's poll-style `poll_read_buf`, so the stream itself never
/// keeps a buffer: a `read(2)` lands straight in the connection's input buffer when
/// that has room for a head, and otherwise (or while bytes flow in bulk) in the
/// thread's shared read buffer, whose bytes are then appended once to the input buffer.
/// (The sans-IO parser needs the bytes in a `BytesMut` it can split header values and
/// body pieces off without copying.) A caller holding no input buffer (no allocation)
/// borrows one from a per-thread stash for the read and gives it back if the read must
/// wait; a caller that keeps one (a server's worker, from one busy period to the next)
/// keeps it, and an empty one worn down by the heads split off it is renewed, its
/// allocation reclaimed in place.
///
/// **Writes** go straight from the connection's output buffer to one `write(2)` per
/// batch of responses when the stream has nothing queued
/// ([`IoStream::poll_write_buf`]); what the socket does not take is handed to the
/// stream's queue as one `Bytes` (no copy). Either way the same allocation serves the
/// next responses.
#[derive(Debug, Clone)]
pub struct IoStreamTransport {
    stream: IoStream,
}

impl IoStreamTransport {
    /// Wrap `stream`.
    pub fn new(stream: IoStream) -> Self {
        IoStreamTransport { stream }
    }

    /// The stream.
    pub fn stream(&self) -> &IoStream {
        &self.stream
    }
}

fn stream_error(e: StreamError) -> io::Error {
    io::Error::from(e)
}

/// [`IoStreamTransport::read`]'s future. A type of its own rather than `poll_fn`, so
/// that its `poll` is inlined into the caller's (with the read syscall under it): a
/// `PollFn` stayed a function of its own, one more frame to return through after the
/// syscall, a mispredicted return (ARCHITECTURE.md, "Returns after a syscall").
struct ReadInto<'s, 'b> {
    stream: &'s IoStream,
    buf: &'b mut BytesMut,
}

impl Future for ReadInto<'_, '_> {
    type Output = io::Result<usize>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let buf = &mut *this.buf;
        // A caller holding no buffer borrows one from the stash for the read, and
        // gives it back if the read must wait.
        let borrowed = buf.capacity() == 0;
        if borrowed {
            *buf = spare::take();
        } else if buf.is_empty() && buf.capacity() < spare::MIN_ROOM / 2 {
            // A view worn down by the heads split off it: once they are gone,
            // reserving reclaims its whole allocation in place. Half of it left is
            // room for most heads, which the stream then reads straight into it.
            buf.reserve(spare::MIN_ROOM);
        }
        let read = this.stream.poll_read_buf(cx, buf);
        if borrowed && buf.is_empty() {
            spare::give(buf);
        }
        read.map_err(stream_error)
    }
}

impl Transport for IoStreamTransport {
    #[inline]
    fn prefetch(&self) {
        self.stream.prefetch();
    }

    // Not an `async fn`: that would keep both arguments twice in the future an idle
    // connection waits on.
    #[inline]
    fn read(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> {
        ReadInto {
            stream: &self.stream,
            buf,
        }
    }

    // Inlined, so that the write syscall runs in the caller's frame (ARCHITECTURE.md,
    // "Returns after a syscall").
    #[inline(always)]
    fn poll_write(&mut self, cx: &mut Context<'_>, out: &mut BytesMut) -> Poll<io::Result<()>> {
        self.stream.poll_write_buf(cx, out).map_err(stream_error)
    }

    fn close(&mut self) {
        self.stream.close();
    }

    fn take_stream(&mut self) -> Option<IoStream> {
        Some(self.stream.clone())
    }

    fn poll_shutdown_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The shutdown takes effect at the call (after the queue is flushed); asking
        // again on a later poll is harmless and returns its progress.
        let mut shutdown = self.stream.shutdown_write();
        Pin::new(&mut shutdown).poll(cx).map_err(stream_error)
    }

    fn buffered_len(&self) -> usize {
        self.stream.read_buffer_capacity() + self.stream.write_buffer_len()
    }

    fn write_queued(&self) -> usize {
        self.stream.write_buffer_len()
    }
}
