//! [`IoStreamTransport`]: the [`Transport`] over squall's `IoStream`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use squall_iostream::{CloseCause, IoStream, ReadParseError, StreamError};

use crate::transport::Transport;

/// A [`Transport`] over an [`IoStream`], as [`HttpServer`](crate::HttpServer) uses.
///
/// **Reads** go through the stream's zero-copy parse hook (`read_parse`): each `read(2)`
/// lands in the thread's shared read buffer and its bytes are appended once to the
/// connection's input buffer, so the stream itself never keeps a buffer. (The sans-IO
/// parser needs the bytes in a `BytesMut` it can split body pieces and header values
/// off without copying, which is why they are copied that once rather than parsed in
/// place.)
///
/// **Writes** hand the connection's whole output buffer to the stream as one `Bytes`
/// (no copy) and flush: one `writev` per batch of responses. When the stream has sent
/// it and dropped its reference, the connection's next response reuses the same
/// allocation.
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

impl Transport for IoStreamTransport {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let read = self.stream.read_parse(usize::MAX, |bytes: &[u8]| {
            if bytes.is_empty() {
                return Ok::<_, Infallible>(None);
            }
            buf.extend_from_slice(bytes);
            Ok(Some((bytes.len(), bytes.len())))
        });
        match read.await {
            Ok(n) => Ok(n),
            Err(ReadParseError::Stream(StreamError::Closed(CloseCause::Eof))) => Ok(0),
            Err(ReadParseError::Stream(e)) => Err(stream_error(e)),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, out: &mut BytesMut) -> Poll<io::Result<()>> {
        if !out.is_empty() {
            self.stream
                .write_buffered(out.split().freeze())
                .map_err(stream_error)?;
        }
        let mut flush = self.stream.flush();
        Pin::new(&mut flush).poll(cx).map_err(stream_error)
    }

    fn close(&mut self) {
        self.stream.close();
    }

    fn buffered_len(&self) -> usize {
        self.stream.read_buffer_capacity() + self.stream.write_buffer_len()
    }
}
