//! The crate's error types.

use std::any::Any;
use std::fmt;
use std::io;
use std::time::Duration;

/// Why [`IoLoop::start`](crate::IoLoop::start) (or another call that needs a usable
/// loop) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoopError {
    /// The loop is already running (Tornado: `RuntimeError("IOLoop is already running")`).
    AlreadyRunning,
    /// The loop was closed with [`IoLoop::close`](crate::IoLoop::close).
    Closed,
    /// The poller failed (the error of `poll` itself; `EINTR` is retried, never reported).
    Io(io::Error),
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::AlreadyRunning => f.write_str("the IOLoop is already running"),
            LoopError::Closed => f.write_str("the IOLoop is closed"),
            LoopError::Io(e) => write!(f, "the IOLoop's poller failed: {e}"),
        }
    }
}

impl std::error::Error for LoopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoopError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for LoopError {
    fn from(e: io::Error) -> LoopError {
        LoopError::Io(e)
    }
}

impl From<LoopError> for io::Error {
    fn from(e: LoopError) -> io::Error {
        match e {
            LoopError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// A deadline passed before the future finished: the error of
/// [`with_timeout`](crate::with_timeout) (Tornado's `gen.TimeoutError`,
/// `tornado.util.TimeoutError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutError(());

impl TimeoutError {
    pub(crate) fn new() -> TimeoutError {
        TimeoutError(())
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timeout")
    }
}

impl std::error::Error for TimeoutError {}

impl From<TimeoutError> for io::Error {
    fn from(e: TimeoutError) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}

/// Why [`IoLoop::run_sync`](crate::IoLoop::run_sync) returned without the future's
/// output. A panic in the future is not an error here: it is resumed in the caller.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunSyncError {
    /// The timeout passed first; the future was dropped (Tornado: `TimeoutError`).
    Timeout(Duration),
    /// The loop was stopped (by [`IoLoop::stop`](crate::IoLoop::stop) or a
    /// [`RemoteHandle`](crate::RemoteHandle)) before the future finished; the future was
    /// dropped.
    Stopped,
    /// The loop could not run (already running, closed, or its poller failed).
    Loop(LoopError),
}

impl RunSyncError {
    /// Whether this is [`RunSyncError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, RunSyncError::Timeout(_))
    }
}

impl fmt::Display for RunSyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunSyncError::Timeout(d) => write!(f, "operation timed out after {d:?}"),
            RunSyncError::Stopped => f.write_str("the IOLoop stopped before the future completed"),
            RunSyncError::Loop(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RunSyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunSyncError::Loop(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LoopError> for RunSyncError {
    fn from(e: LoopError) -> RunSyncError {
        RunSyncError::Loop(e)
    }
}

impl From<RunSyncError> for io::Error {
    fn from(e: RunSyncError) -> io::Error {
        match e {
            RunSyncError::Timeout(_) => io::Error::new(io::ErrorKind::TimedOut, e),
            RunSyncError::Loop(e) => e.into(),
            other => io::Error::other(other),
        }
    }
}

/// Why a [`JoinHandle`](crate::JoinHandle) or an
/// [`ExecutorFuture`](crate::ExecutorFuture) has no output.
#[non_exhaustive]
pub enum JoinError {
    /// The task panicked; the payload is kept so it can be resumed
    /// ([`into_panic`](JoinError::into_panic)).
    Panicked(Box<dyn Any + Send + 'static>),
    /// The task was dropped before it finished: [`JoinHandle::abort`](crate::JoinHandle::abort),
    /// or the loop was closed or dropped.
    Cancelled,
}

impl JoinError {
    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// The panic payload, for `std::panic::resume_unwind`.
    ///
    /// # Errors
    ///
    /// `self` back if the task was cancelled rather than panicked.
    pub fn into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self {
            JoinError::Panicked(p) => Ok(p),
            other => Err(other),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => {
                write!(f, "Panicked({:?})", crate::fault::panic_message(&**p))
            }
            JoinError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => {
                write!(f, "task panicked: {}", crate::fault::panic_message(&**p))
            }
            JoinError::Cancelled => f.write_str("task was cancelled"),
        }
    }
}

impl std::error::Error for JoinError {}

/// The loop is closed: returned by [`RemoteHandle::add_callback`](crate::RemoteHandle::add_callback)
/// (Tornado 4: `RuntimeError("IOLoop is closing")`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed(());

impl Closed {
    pub(crate) fn new() -> Closed {
        Closed(())
    }
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the IOLoop is closed")
    }
}

impl std::error::Error for Closed {}

/// A [`PeriodicCallback`](crate::PeriodicCallback) setting out of range: a zero period,
/// or a jitter outside `0.0..=1.0`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum PeriodicError {
    /// The period is zero (Tornado: `ValueError("Periodic callback must have a positive callback_time")`).
    ZeroPeriod,
    /// The jitter is not a number in `0.0..=1.0`.
    BadJitter(f64),
}

impl fmt::Display for PeriodicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeriodicError::ZeroPeriod => f.write_str("a periodic callback needs a positive period"),
            PeriodicError::BadJitter(j) => write!(f, "jitter {j} is not in 0.0..=1.0"),
        }
    }
}

impl std::error::Error for PeriodicError {}
