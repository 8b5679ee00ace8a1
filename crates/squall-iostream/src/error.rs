//! The errors of a stream: why it closed ([`CloseCause`]), what a read or write returns
//! ([`StreamError`]), and what [`read_parse`](crate::IoStream::read_parse) returns
//! ([`ReadParseError`]).

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

/// Why a stream is closed: Tornado's `StreamClosedError.real_error`, as a value.
///
/// Every read or write on a closed stream fails with
/// [`StreamError::Closed`] carrying this cause, and [`IoStream::error`] returns it.
/// The I/O errors are shared (`Arc`) so that every pending future can get a copy;
/// they are only built when a stream closes, never on the data path.
///
/// [`IoStream::error`]: crate::IoStream::error
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CloseCause {
    /// The peer closed its end (a read returned 0 bytes): end-of-file.
    Eof,
    /// The peer dropped the connection: `ECONNRESET`, `EPIPE` or `ECONNABORTED`. A quiet,
    /// debug-level event, as in Tornado.
    Reset(Arc<io::Error>),
    /// Any other OS error, for instance `ECONNREFUSED` from a connect (read from
    /// `SO_ERROR`), or the error of registering the fd with the loop.
    Io(Arc<io::Error>),
    /// [`IoStream::close`](crate::IoStream::close) was called.
    Local,
    /// A read needed more than `max_buffer_size` bytes buffered (Tornado's
    /// `StreamBufferFullError`).
    BufferFull,
    /// `read_until` did not find its delimiter within `max_bytes` (Tornado's
    /// `UnsatisfiableReadError`).
    Unsatisfiable,
}

impl CloseCause {
    /// The OS error behind the close, if there is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            CloseCause::Reset(e) | CloseCause::Io(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the peer closed or dropped the connection (end-of-file or a reset).
    pub fn is_peer_gone(&self) -> bool {
        matches!(self, CloseCause::Eof | CloseCause::Reset(_))
    }

    /// Classifies an OS error from a read or write.
    pub(crate) fn from_io(e: io::Error) -> CloseCause {
        if is_reset(&e) {
            CloseCause::Reset(Arc::new(e))
        } else {
            CloseCause::Io(Arc::new(e))
        }
    }
}

/// Whether an OS error says the peer dropped the connection: `ECONNRESET`, `EPIPE` or
/// `ECONNABORTED` (Tornado's `_ERRNO_CONNRESET`).
pub(crate) fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

impl fmt::Display for CloseCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseCause::Eof => f.write_str("end of file"),
            CloseCause::Reset(e) => write!(f, "connection reset: {e}"),
            CloseCause::Io(e) => write!(f, "{e}"),
            CloseCause::Local => f.write_str("closed locally"),
            CloseCause::BufferFull => f.write_str("read buffer full"),
            CloseCause::Unsatisfiable => f.write_str("unsatisfiable read"),
        }
    }
}

/// The error of a stream operation. Tornado's `StreamClosedError`,
/// `StreamBufferFullError` and `UnsatisfiableReadError`, plus the errors Tornado raises
/// as plain exceptions (a second concurrent read).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream is closed; the cause says why (end-of-file, reset, an OS error, a limit,
    /// or a local close). Tornado's `StreamClosedError`.
    Closed(CloseCause),
    /// The read would need more than `max_buffer_size` bytes buffered. The stream is
    /// closed (its cause is [`CloseCause::BufferFull`]).
    BufferFull {
        /// The stream's `max_buffer_size`.
        limit: usize,
    },
    /// The data would take the write buffer past `max_write_buffer_size`. Nothing was
    /// queued and the stream stays open.
    WriteBufferFull {
        /// The stream's `max_write_buffer_size`.
        limit: usize,
    },
    /// `read_until` found no delimiter within `max_bytes`. The stream is closed (its
    /// cause is [`CloseCause::Unsatisfiable`]).
    Unsatisfiable {
        /// The read's `max_bytes`.
        max_bytes: usize,
    },
    /// Another read is already pending on this stream: one read at a time, as in Tornado.
    ReadInProgress,
    /// Another task already waits for the same event on this stream (a second
    /// `wait_for_handshake` while the handshake runs: Tornado's `RuntimeError`). The
    /// stream stays open.
    AlreadyWaiting,
    /// [`IoStream::shutdown_write`](crate::IoStream::shutdown_write) was called: the
    /// write side is shut (or about to be) and takes no more data. Nothing was queued;
    /// reads still work.
    WriteShutdown,
}

impl StreamError {
    /// Whether this is [`StreamError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, StreamError::Closed(_))
    }

    /// The close cause, for [`StreamError::Closed`].
    pub fn close_cause(&self) -> Option<&CloseCause> {
        match self {
            StreamError::Closed(c) => Some(c),
            _ => None,
        }
    }

    /// The OS error behind this error, if there is one (a refused connect gives
    /// `ECONNREFUSED` here).
    pub fn io_error(&self) -> Option<&io::Error> {
        self.close_cause().and_then(CloseCause::io_error)
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Closed(c) => write!(f, "stream closed: {c}"),
            StreamError::BufferFull { limit } => {
                write!(f, "reached the maximum read buffer size ({limit} bytes)")
            }
            StreamError::WriteBufferFull { limit } => {
                write!(f, "reached the maximum write buffer size ({limit} bytes)")
            }
            StreamError::Unsatisfiable { max_bytes } => {
                write!(f, "delimiter not found within {max_bytes} bytes")
            }
            StreamError::ReadInProgress => f.write_str("already reading"),
            StreamError::AlreadyWaiting => f.write_str("already waiting"),
            StreamError::WriteShutdown => f.write_str("the write side is shut down"),
        }
    }
}

impl Error for StreamError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self.io_error() {
            Some(e) => Some(e),
            None => None,
        }
    }
}

impl From<StreamError> for io::Error {
    /// Keeps the OS error's kind (`ConnectionRefused`, `ConnectionReset`...); end-of-file
    /// becomes `UnexpectedEof`, limits `InvalidData`, a local close `NotConnected`, a
    /// write after `shutdown_write` `BrokenPipe` (what `write(2)` says then).
    fn from(e: StreamError) -> io::Error {
        let kind = match &e {
            StreamError::Closed(CloseCause::Eof) => io::ErrorKind::UnexpectedEof,
            StreamError::Closed(CloseCause::Local) => io::ErrorKind::NotConnected,
            StreamError::Closed(CloseCause::Reset(x) | CloseCause::Io(x)) => x.kind(),
            StreamError::ReadInProgress | StreamError::AlreadyWaiting => io::ErrorKind::Other,
            StreamError::WriteShutdown => io::ErrorKind::BrokenPipe,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// The error of [`IoStream::read_parse`](crate::IoStream::read_parse).
///
/// None of these closes the stream by itself except a [`StreamError`] that says so:
/// after [`Parse`](ReadParseError::Parse) or [`TooLarge`](ReadParseError::TooLarge) the
/// bytes stay buffered and the caller decides (an HTTP server answers 400 or 431, then
/// closes).
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadParseError<E> {
    /// The parse callback returned an error.
    Parse(E),
    /// `max_bytes` bytes are buffered and the callback still wants more.
    TooLarge {
        /// The read's `max_bytes`.
        max_bytes: usize,
    },
    /// The stream failed or closed before the callback produced a value. After a clean
    /// end-of-file, [`IoStream::buffered_len`](crate::IoStream::buffered_len) tells
    /// whether the peer left a partial message behind.
    Stream(StreamError),
}

impl<E> From<StreamError> for ReadParseError<E> {
    fn from(e: StreamError) -> Self {
        ReadParseError::Stream(e)
    }
}

impl<E: fmt::Display> fmt::Display for ReadParseError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadParseError::Parse(e) => write!(f, "parse error: {e}"),
            ReadParseError::TooLarge { max_bytes } => {
                write!(f, "no complete message within {max_bytes} bytes")
            }
            ReadParseError::Stream(e) => e.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for ReadParseError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ReadParseError::Parse(e) => Some(e),
            ReadParseError::TooLarge { .. } => None,
            ReadParseError::Stream(e) => Some(e),
        }
    }
}
