//! `read_until_regex`, on the `regex` crate's bytes API (the `regex` feature).

use std::future::Future;

use bytes::Bytes;
use regex::bytes::Regex;

use crate::engine::{Need, Taken};
use crate::error::StreamError;
use crate::read::{bytes_of, close_if_unsatisfiable, within_max, ReadFuture, ReadKind};
use crate::stream::IoStream;

struct UntilRegex<'r> {
    regex: &'r Regex,
    max_bytes: Option<usize>,
}

impl ReadKind for UntilRegex<'_> {
    type Output = Bytes;
    type Error = StreamError;
    fn need(&self) -> Need {
        Need::Chunk
    }
    fn want_bytes(&self) -> bool {
        true
    }
    fn check(&mut self, buf: &[u8], _closed: bool) -> Result<Option<usize>, StreamError> {
        // A match can grow or move as bytes arrive, so every search starts at the
        // front (as Tornado's does); `max_bytes` bounds what that costs.
        let end = self.regex.find(buf).map(|m| m.end());
        within_max(self.max_bytes, end, buf.len())
    }
    fn finish(&mut self, t: Taken) -> Bytes {
        bytes_of(t)
    }
    fn failed(&mut self, stream: &IoStream, e: &StreamError) {
        close_if_unsatisfiable(stream, e);
    }
}

impl IoStream {
    /// Reads up to and including the first match of `regex`. Tornado's
    /// `read_until_regex`.
    ///
    /// The search runs over the buffered bytes as they arrive, from the front each
    /// time (a match may start earlier once more bytes are there), and the read resolves
    /// with every byte up to the end of the first match found; a pattern that could
    /// match longer with more input (`a+`) ends where the buffered bytes end, as in
    /// Tornado. It needs at least one byte: a pattern that matches the empty string
    /// resolves with nothing once a byte is buffered. Pass `max_bytes` for input from a
    /// peer: it bounds both the buffer and the repeated searches.
    ///
    /// Needs the `regex` feature (on by default).
    ///
    /// ```
    /// # use squall_ioloop::IoLoop;
    /// # use squall_iostream::IoStream;
    /// use squall_iostream::regex::bytes::Regex;
    /// # let io_loop = IoLoop::new()?;
    /// # io_loop.run_sync(async {
    /// let (r, w) = IoStream::pipe()?;
    /// w.write(&b"HTTP/1.1 200 OK\r\n\r\nbody"[..]).await?;
    /// let head = r.read_until_regex(&Regex::new(r"\r?\n\r?\n").unwrap(), Some(1024)).await?;
    /// assert_eq!(&head[..], b"HTTP/1.1 200 OK\r\n\r\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }, None)??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StreamError::Unsatisfiable`] if no match ends within `max_bytes` (the stream
    /// is closed, as in Tornado); [`StreamError::Closed`] if the stream closes first;
    /// [`StreamError::BufferFull`]; [`StreamError::ReadInProgress`].
    pub fn read_until_regex<'a>(
        &'a self,
        regex: &'a Regex,
        max_bytes: Option<usize>,
    ) -> impl Future<Output = Result<Bytes, StreamError>> + 'a {
        ReadFuture::new(self, UntilRegex { regex, max_bytes })
    }
}
