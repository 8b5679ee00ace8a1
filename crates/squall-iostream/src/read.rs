//! The read futures: one generic future over the engine in `engine.rs`, one kind per
//! read, and `read_into`, which reads straight into the caller's buffer.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use memchr::memmem;

use crate::engine::{Need, Taken};
use crate::error::{CloseCause, ReadParseError, StreamError};
use crate::stream::IoStream;

/// One kind of read: what it needs and when it is satisfied.
pub(crate) trait ReadKind {
    type Output;
    type Error: From<StreamError>;
    fn need(&self) -> Need;
    fn want_bytes(&self) -> bool;
    /// Whether the read is satisfied by nothing at all (`read_bytes(0)`, an empty
    /// delimiter): it resolves with `finish(Taken::Consumed)` without looking.
    fn empty_match(&self) -> bool {
        false
    }
    /// How many bytes to consume, once `buf` satisfies the read.
    fn check(&mut self, buf: &[u8], closed: bool) -> Result<Option<usize>, Self::Error>;
    fn finish(&mut self, taken: Taken) -> Self::Output;
    /// Called with the error before it is returned (to close the stream on a limit).
    fn failed(&mut self, _stream: &IoStream, _e: &Self::Error) {}
    /// Whether the read succeeds because the stream closed, whatever closed it
    /// (`read_until_close`): an OS error then reaches nobody, so it is logged.
    fn ends_at_close(&self) -> bool {
        false
    }
}

/// The future of a read: holds the stream's read slot from creation to completion or
/// drop. Nothing is consumed until it completes, so dropping it (a timeout) loses no
/// data.
pub(crate) struct ReadFuture<'a, K: ReadKind> {
    stream: &'a IoStream,
    /// `false` if another read held the slot when this one was made.
    claimed: bool,
    done: bool,
    kind: K,
}

impl<'a, K: ReadKind> ReadFuture<'a, K> {
    pub(crate) fn new(stream: &'a IoStream, kind: K) -> Self {
        let claimed = stream.inner.claim_read();
        ReadFuture {
            stream,
            claimed,
            done: false,
            kind,
        }
    }
}

impl<K: ReadKind + Unpin> Future for ReadFuture<'_, K> {
    type Output = Result<K::Output, K::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.done || !this.claimed {
            this.done = true;
            return Poll::Ready(Err(StreamError::ReadInProgress.into()));
        }
        if this.kind.empty_match() {
            this.done = true;
            this.stream.inner.release_read();
            return Poll::Ready(Ok(this.kind.finish(Taken::Consumed)));
        }
        let kind = &mut this.kind;
        let (need, want_bytes) = (kind.need(), kind.want_bytes());
        let res = this
            .stream
            .inner
            .poll_read(cx, need, want_bytes, &mut |buf, closed| {
                kind.check(buf, closed)
            });
        let res = match res {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        this.done = true;
        this.stream.inner.release_read();
        Poll::Ready(match res {
            Ok(t) => {
                if this.kind.ends_at_close() {
                    if let Some(cause @ CloseCause::Io(_)) = this.stream.error() {
                        log::warn!(
                            "IoStream fd {}: read until close ended by: {cause}",
                            this.stream.inner.fd
                        );
                    }
                }
                Ok(this.kind.finish(t))
            }
            Err(e) => {
                this.kind.failed(this.stream, &e);
                Err(e)
            }
        })
    }
}

impl<K: ReadKind> Drop for ReadFuture<'_, K> {
    fn drop(&mut self) {
        if self.claimed && !self.done {
            self.stream.inner.release_read();
        }
    }
}

pub(crate) fn bytes_of(t: Taken) -> Bytes {
    match t {
        Taken::Bytes(b) => b,
        Taken::Consumed => Bytes::new(),
    }
}

// ---------------------------------------------------------------- read_until

struct Until<'d> {
    finder: memmem::Finder<'d>,
    dlen: usize,
    empty: bool,
    /// Where the next search starts: everything before it has been searched (less the
    /// `dlen - 1` bytes a match could straddle).
    scanned: usize,
    max_bytes: Option<usize>,
}

impl ReadKind for Until<'_> {
    type Output = Bytes;
    type Error = StreamError;
    fn need(&self) -> Need {
        Need::Chunk
    }
    fn empty_match(&self) -> bool {
        // Every position matches an empty delimiter.
        self.empty
    }
    fn want_bytes(&self) -> bool {
        true
    }
    fn check(&mut self, buf: &[u8], _closed: bool) -> Result<Option<usize>, StreamError> {
        let start = self.scanned.min(buf.len());
        let end = self
            .finder
            .find(&buf[start..])
            .map(|i| start + i + self.dlen);
        if end.is_none() {
            self.scanned = buf.len().saturating_sub(self.dlen - 1);
        }
        within_max(self.max_bytes, end, buf.len())
    }
    fn finish(&mut self, t: Taken) -> Bytes {
        bytes_of(t)
    }
    fn failed(&mut self, stream: &IoStream, e: &StreamError) {
        close_if_unsatisfiable(stream, e);
    }
}

/// A delimited read (`read_until`, `read_until_regex`) held to its `max_bytes`: the
/// match's `end` if it is within the limit; with no match yet, wait until more than
/// `max` bytes are `buffered`. Only past `max`, as Tornado: with exactly `max` (no later
/// match could end within it) the read still waits, and an end-of-file then is a close,
/// not an unsatisfiable read.
pub(crate) fn within_max(
    max_bytes: Option<usize>,
    end: Option<usize>,
    buffered: usize,
) -> Result<Option<usize>, StreamError> {
    match (max_bytes, end) {
        (Some(max), Some(end)) if end > max => Err(StreamError::Unsatisfiable { max_bytes: max }),
        (_, Some(end)) => Ok(Some(end)),
        (Some(max), None) if buffered > max => Err(StreamError::Unsatisfiable { max_bytes: max }),
        (_, None) => Ok(None),
    }
}

/// A delimited read that failed on its limit closes the stream, as Tornado's
/// `UnsatisfiableReadError` does.
pub(crate) fn close_if_unsatisfiable(stream: &IoStream, e: &StreamError) {
    if matches!(e, StreamError::Unsatisfiable { .. }) {
        stream.inner.close_with(CloseCause::Unsatisfiable);
    }
}

// ---------------------------------------------------------------- read_bytes

struct Exactly {
    n: usize,
    partial: bool,
}

impl ReadKind for Exactly {
    type Output = Bytes;
    type Error = StreamError;
    fn need(&self) -> Need {
        Need::Total(self.n)
    }
    fn empty_match(&self) -> bool {
        self.n == 0
    }
    fn want_bytes(&self) -> bool {
        true
    }
    fn check(&mut self, buf: &[u8], _closed: bool) -> Result<Option<usize>, StreamError> {
        if buf.len() >= self.n {
            Ok(Some(self.n))
        } else if self.partial && !buf.is_empty() {
            Ok(Some(buf.len()))
        } else {
            Ok(None)
        }
    }
    fn finish(&mut self, t: Taken) -> Bytes {
        bytes_of(t)
    }
}

// ---------------------------------------------------------------- read_until_close

struct UntilClose;

impl ReadKind for UntilClose {
    type Output = Bytes;
    type Error = StreamError;
    fn need(&self) -> Need {
        Need::Chunk
    }
    fn want_bytes(&self) -> bool {
        true
    }
    fn check(&mut self, buf: &[u8], closed: bool) -> Result<Option<usize>, StreamError> {
        Ok(closed.then_some(buf.len()))
    }
    fn ends_at_close(&self) -> bool {
        true
    }
    fn finish(&mut self, t: Taken) -> Bytes {
        bytes_of(t)
    }
}

// ---------------------------------------------------------------- read_parse

struct Parse<P, T, E> {
    parse: P,
    max_bytes: usize,
    out: Option<T>,
    /// The length `parse` last said "not yet" to: it is not asked again about the same
    /// bytes.
    seen: Option<usize>,
    _e: PhantomData<fn() -> E>,
}

impl<P, T, E> Unpin for Parse<P, T, E> {}

impl<P, T, E> ReadKind for Parse<P, T, E>
where
    P: FnMut(&[u8]) -> Result<Option<(T, usize)>, E>,
{
    type Output = T;
    type Error = ReadParseError<E>;
    fn need(&self) -> Need {
        Need::Chunk
    }
    fn want_bytes(&self) -> bool {
        false
    }
    fn check(&mut self, buf: &[u8], _closed: bool) -> Result<Option<usize>, ReadParseError<E>> {
        if self.seen != Some(buf.len()) && !buf.is_empty() {
            match (self.parse)(buf) {
                Ok(Some((t, used))) => {
                    debug_assert!(used <= buf.len(), "read_parse: consumed more than given");
                    self.out = Some(t);
                    return Ok(Some(used.min(buf.len())));
                }
                Ok(None) => self.seen = Some(buf.len()),
                Err(e) => return Err(ReadParseError::Parse(e)),
            }
        }
        if buf.len() >= self.max_bytes {
            return Err(ReadParseError::TooLarge {
                max_bytes: self.max_bytes,
            });
        }
        Ok(None)
    }
    fn finish(&mut self, _t: Taken) -> T {
        match self.out.take() {
            Some(t) => t,
            // `check` stores the value before it reports success.
            None => unreachable!("read_parse finished without a value"),
        }
    }
}

// ---------------------------------------------------------------- the public reads

impl IoStream {
    /// Reads up to and including `delimiter`. Tornado's `read_until`.
    ///
    /// The search is `memchr`/`memmem` and resumes where the last one stopped: no byte
    /// is scanned twice however the data arrives.
    ///
    /// # Errors
    ///
    /// [`StreamError::Unsatisfiable`] if the delimiter does not end within `max_bytes`,
    /// known once more than `max_bytes` bytes have arrived without it or with it ending
    /// past them (the stream is closed, as in Tornado); [`StreamError::Closed`] if the stream
    /// closes first (end-of-file before a match is `Closed(Eof)`, not unsatisfiable);
    /// [`StreamError::BufferFull`]; [`StreamError::ReadInProgress`].
    pub fn read_until<'a>(
        &'a self,
        delimiter: &'a [u8],
        max_bytes: Option<usize>,
    ) -> impl Future<Output = Result<Bytes, StreamError>> + 'a {
        // A named future, not an `async` block around it: a block would hold the read
        // future twice (captured, then awaited), and so would every task that awaits it.
        ReadFuture::new(
            self,
            Until {
                finder: memmem::Finder::new(delimiter),
                dlen: delimiter.len().max(1),
                empty: delimiter.is_empty(),
                scanned: 0,
                max_bytes,
            },
        )
    }

    /// Reads `n` bytes; with `partial`, resolves as soon as at least one byte (and at
    /// most `n`) is there. Tornado's `read_bytes`. `n == 0` resolves at once with
    /// nothing. Only what the read needs is pulled from the socket (at most `n` minus
    /// what is buffered per syscall): backpressure.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream closes before `n` bytes (or, with
    /// `partial`, any byte) arrived; [`StreamError::BufferFull`] if `n` is over
    /// `max_buffer_size`; [`StreamError::ReadInProgress`].
    pub fn read_bytes(
        &self,
        n: usize,
        partial: bool,
    ) -> impl Future<Output = Result<Bytes, StreamError>> + '_ {
        ReadFuture::new(self, Exactly { n, partial })
    }

    /// Reads everything until the stream closes. Tornado's `read_until_close`: it
    /// resolves with every byte received, whatever closed the stream (end-of-file, a
    /// reset, a local close; [`error`](IoStream::error) tells which), and on an already
    /// closed stream with what is buffered (possibly nothing).
    ///
    /// # Errors
    ///
    /// [`StreamError::BufferFull`] past `max_buffer_size` (the stream is closed);
    /// [`StreamError::ReadInProgress`].
    pub fn read_until_close(&self) -> impl Future<Output = Result<Bytes, StreamError>> + '_ {
        ReadFuture::new(self, UntilClose)
    }

    /// The zero-copy parse hook: calls `parse` on the received bytes (the leftover of
    /// earlier reads followed by fresh ones) until it returns `Some((value,
    /// consumed))`, then drops the `consumed` bytes and resolves with `value`.
    ///
    /// This is how a server reads requests without a buffer per connection. When the
    /// stream has no leftover (the common case: an idle keep-alive connection), `parse`
    /// sees the bytes **in place in the per-thread read buffer**, and only the bytes it
    /// did not consume (the start of a pipelined request, or body bytes) are copied into
    /// the stream. `parse` returns `Ok(None)` for "need more bytes"; it is not called
    /// again until more arrive. It must not consume more than it was given.
    ///
    /// After it resolves, [`buffered_len`](IoStream::buffered_len) tells whether another
    /// message is already buffered; [`take_buffered`](IoStream::take_buffered) and
    /// [`read_bytes`](IoStream::read_bytes) take body bytes from the leftover without a
    /// syscall.
    ///
    /// `parse` runs inside the stream's read: it must not use this stream (its buffer
    /// looks empty from inside).
    ///
    /// # Errors
    ///
    /// [`ReadParseError::Parse`] with `parse`'s error and
    /// [`ReadParseError::TooLarge`] once `max_bytes` are buffered without a value: both
    /// leave the stream open and the bytes buffered, for the caller to answer (400 or
    /// 431) and close. [`ReadParseError::Stream`] if the stream closes or fails first
    /// (end-of-file is `Closed(Eof)`; `buffered_len() > 0` then means the peer left a
    /// partial message).
    ///
    /// # Example
    ///
    /// ```
    /// # use squall_ioloop::IoLoop;
    /// # use squall_iostream::IoStream;
    /// # let io_loop = IoLoop::new()?;
    /// # io_loop.run_sync(async {
    /// let (r, w) = IoStream::pipe()?;
    /// w.write(&b"12:hello world|next"[..]).await?;
    /// // A length-prefixed frame: "<len>:<payload>".
    /// let frame = r
    ///     .read_parse(1024, |buf: &[u8]| {
    ///         let Some(colon) = buf.iter().position(|&b| b == b':') else {
    ///             return Ok(None);
    ///         };
    ///         let len: usize = std::str::from_utf8(&buf[..colon])
    ///             .ok()
    ///             .and_then(|s| s.parse().ok())
    ///             .ok_or("bad length")?;
    ///         let end = colon + 1 + len;
    ///         Ok::<_, &str>((buf.len() >= end).then(|| (buf[colon + 1..end].to_vec(), end)))
    ///     })
    ///     .await
    ///     .map_err(|e| e.to_string())?;
    /// assert_eq!(frame, b"hello world|");
    /// assert_eq!(r.buffered_len(), 4); // "next" stays for the next read
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }, None)??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_parse<'a, T, E, P>(
        &'a self,
        max_bytes: usize,
        parse: P,
    ) -> impl Future<Output = Result<T, ReadParseError<E>>> + 'a
    where
        P: FnMut(&[u8]) -> Result<Option<(T, usize)>, E> + 'a,
        T: 'a,
        E: 'a,
    {
        ReadFuture::new(
            self,
            Parse {
                parse,
                max_bytes: max_bytes.max(1),
                out: None,
                seen: None,
                _e: PhantomData,
            },
        )
    }

    /// Reads into `buf` and resolves with the number of bytes read: `buf.len()`, or with
    /// `partial` at least one. Tornado's `read_into`. Buffered bytes are copied first;
    /// the rest is read from the fd straight into `buf`.
    ///
    /// Unlike the other reads, a non-partial `read_into` that is dropped before it
    /// completes loses the bytes it had already put into `buf`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream closes first;
    /// [`StreamError::ReadInProgress`].
    pub fn read_into<'a>(
        &'a self,
        buf: &'a mut [u8],
        partial: bool,
    ) -> impl Future<Output = Result<usize, StreamError>> + 'a {
        let claimed = self.inner.claim_read();
        ReadInto {
            stream: self,
            buf,
            filled: 0,
            partial,
            claimed,
            done: false,
        }
    }
}

struct ReadInto<'a> {
    stream: &'a IoStream,
    buf: &'a mut [u8],
    filled: usize,
    partial: bool,
    claimed: bool,
    done: bool,
}

impl Future for ReadInto<'_> {
    type Output = Result<usize, StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.done || !this.claimed {
            this.done = true;
            return Poll::Ready(Err(StreamError::ReadInProgress));
        }
        if this.buf.is_empty() {
            this.done = true;
            this.stream.inner.release_read();
            return Poll::Ready(Ok(0));
        }
        match this
            .stream
            .inner
            .poll_read_into(cx, this.buf, &mut this.filled, this.partial)
        {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.done = true;
                this.stream.inner.release_read();
                Poll::Ready(r)
            }
        }
    }
}

impl Drop for ReadInto<'_> {
    fn drop(&mut self) {
        if self.claimed && !self.done {
            self.stream.inner.release_read();
        }
    }
}

impl IoStream {
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
        if inner.has(crate::state::READ_ACTIVE) {
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
}
