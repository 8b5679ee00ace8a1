//! The [`Poller`] trait: the one seam between the IOLoop and the operating system.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::{Events, Interest};

/// A level-triggered readiness poller keyed by fd: Tornado's `_impl` object
/// (`tornado/platform/interface.py`), the part of the IOLoop that differs per platform.
///
/// # Contract
///
/// Every implementation keeps these rules, and proves it by running the conformance
/// suite (`conformance_tests!`, behind the `conformance` feature):
///
/// * **Keyed by fd.** An fd is registered at most once. Registering it again fails with
///   [`io::ErrorKind::AlreadyExists`]; modifying or unregistering an fd that is not
///   registered fails with [`io::ErrorKind::NotFound`]. After `unregister` (or after the
///   fd was closed and unregistered) the same number can be registered again.
/// * **Level-triggered.** An fd that stays ready is reported again by every poll until
///   the condition goes away (the data is read, the buffer fills up, interest changes).
///   The one exception is an fd registered with the [`Interest::EDGE`] hint, which a
///   backend may report only when its state changes (every report a level-triggered
///   backend makes is still a correct answer to it, so ignoring the hint is allowed);
///   the conformance case `edge_hint_still_reports_changes` pins what both must do.
/// * **Errors and hang-ups come with either direction**; see [`Ready`](crate::Ready)
///   for what each bit means. End-of-file is READ, not ERROR; a refused non-blocking
///   connect watched for WRITE is ERROR, and the error stays pending for the caller.
///   An fd is reported READ or WRITE only if that direction is in its interest;
///   `Interest::NONE` hears neither (and, on select and kqueue, nothing at all).
/// * **Fair.** When more fds are ready than `events` can hold, successive polls report
///   every one of them: none is starved.
/// * **`poll(events, timeout)`** clears `events`, waits until at least one fd is ready
///   or the timeout passes, and returns how many events it stored (at most
///   `events.capacity()`; the rest stay ready for the next poll). `None` waits forever,
///   `Some(Duration::ZERO)` does not wait, and any other timeout waits no less than
///   asked (round sub-millisecond remainders up, never down). A signal that interrupts
///   the wait (`EINTR`) is retried with the time that remains; a poll never returns early
///   with nothing because of a signal.
/// * An fd reported in `events` is registered at the time `poll` returns; what the
///   caller does with it afterwards (unregister, close) is the caller's business.
///
/// The trait is object-safe: the IOLoop holds a `Box<dyn Poller>`. Wake-ups from other
/// threads need nothing from a backend: the loop registers a [`Waker`](crate::Waker)'s fd
/// like any other.
#[doc(alias = "PollIOLoop")]
#[doc(alias = "_impl")]
pub trait Poller {
    /// Starts watching `fd` for `interest` (plus errors and hang-ups).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AlreadyExists`] if `fd` is already registered; the OS error if the
    /// fd is invalid or the backend cannot take it (for select, an fd at or past
    /// `FD_SETSIZE`).
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;

    /// Replaces the interest of a registered `fd` (not a union: WRITE is dropped if the
    /// new interest lacks it).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if `fd` is not registered, or the OS error.
    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;

    /// Stops watching `fd`. Call it before closing the fd.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if `fd` is not registered, or the OS error.
    fn unregister(&mut self, fd: RawFd) -> io::Result<()>;

    /// Waits for readiness and fills `events`; returns the number of events stored.
    ///
    /// # Errors
    ///
    /// The OS error of the wait itself (never `EINTR`, which is retried).
    fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize>;

    /// A short name for logs and benchmark tables (`"epoll"`, `"select"`, ...).
    fn name(&self) -> &'static str {
        "custom"
    }

    /// The highest fd number plus one this backend can watch, if it has such a limit
    /// (select's `FD_SETSIZE`).
    fn max_fds(&self) -> Option<usize> {
        None
    }
}

impl<P: Poller + ?Sized> Poller for Box<P> {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        (**self).register(fd, interest)
    }
    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        (**self).modify(fd, interest)
    }
    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        (**self).unregister(fd)
    }
    fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        (**self).poll(events, timeout)
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn max_fds(&self) -> Option<usize> {
        (**self).max_fds()
    }
}
