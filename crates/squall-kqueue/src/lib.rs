//! The macOS/BSD kqueue backend of squall's [`Poller`](squall_poller::Poller) trait:
//! Tornado's `tornado/platform/kqueue.py` (`_KQueue`).
//!
//! `Kqueue` exists on macOS, iOS, tvOS, watchOS and FreeBSD; elsewhere the crate is
//! empty except for its translation logic, which is plain code over our own small types
//! so that its unit tests run on Linux too: which `kevent` changes an interest
//! transition needs, what a batch of results means per fd, and which change receipts
//! are errors. The syscall glue around it is a few lines per call.
//!
//! Level-triggered: each direction of interest is one filter (`EVFILT_READ`,
//! `EVFILT_WRITE`) added without `EV_CLEAR` or `EV_ONESHOT`, so the kernel keeps
//! reporting an fd while it stays ready, and interest changes cost one `kevent` call
//! that carries only the difference (delete what is no longer wanted, add what is new),
//! with `EV_RECEIPT` so each change's errno comes back on its own. A change that
//! changes nothing costs no syscall.
//!
//! # Example
//!
//! ```
//! # squall_poller::cfg_not_kqueue! { fn main() {} }
//! # squall_poller::cfg_kqueue! { fn main() -> std::io::Result<()> {
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use squall_kqueue::Kqueue;
//! use squall_poller::{Events, Interest, Poller};
//!
//! let mut poller = Kqueue::new()?;
//! let (a, mut b) = UnixStream::pair()?;
//! poller.register(a.as_raw_fd(), Interest::READ)?;
//! b.write_all(b"ping")?;
//! let mut events = Events::with_capacity(64);
//! poller.poll(&mut events, Some(Duration::from_secs(5)))?;
//! assert!(events.get(a.as_raw_fd()).unwrap().is_readable());
//! # Ok(()) } }
//! ```
//!
//! # Readiness mapping
//!
//! kqueue reports each filter of an fd as its own result; a poll merges them into one
//! [`Event`](squall_poller::Event) per fd.
//!
//! | result | [`Ready`](squall_poller::Ready) |
//! | --- | --- |
//! | `EVFILT_READ` | READ |
//! | `EVFILT_READ` + `EV_EOF` | READ: a peer's end-of-file is read as 0 bytes, **not** an error (epoll and kqueue users trip here with mio) |
//! | `EVFILT_READ` + `EV_EOF` + socket error in `fflags` | READ and ERROR |
//! | `EVFILT_WRITE` | WRITE |
//! | `EVFILT_WRITE` + `EV_EOF` + socket error in `fflags` | WRITE and ERROR: a refused connect, as on epoll; nothing is consumed, `SO_ERROR` still holds it |
//! | `EVFILT_WRITE` + `EV_EOF`, `fflags` 0 | WRITE and HUP: the write side is shut |
//! | `EV_ERROR` | ERROR |
//!
//! # Differences from epoll
//!
//! * kqueue has no "already exists" for `EV_ADD`, and no registration without a filter,
//!   so the poller keeps its own map of registered fds: it gives the contract's
//!   `AlreadyExists` and `NotFound`, and an fd registered with
//!   [`Interest::NONE`](squall_poller::Interest::NONE) is in the map only and hears
//!   nothing at all, not even errors (epoll would still report `EPOLLERR`).
//! * Closing an fd removes its filters in the kernel, but not from the map: unregister
//!   before closing, as the contract says. Deleting a filter that is already gone
//!   (`ENOENT`) counts as success.
//! * A pipe whose reader is gone is WRITE and HUP here, ERROR on epoll; the write that
//!   follows fails with `EPIPE` on both. Older macOS refuses to add a write filter to
//!   such a pipe with `EPIPE`: the fd is registered all the same, and while it is
//!   watched for WRITE the poller reports it WRITE and HUP itself (what the filter would
//!   have said), so that its writer is still woken.
//! * A change batch (the delete and the add of a `modify`, the two adds of a `register`
//!   for both directions) that fails halfway is undone: the changes the kernel applied
//!   before the failing one are reversed, so a failed `register` leaves no filter behind
//!   and a failed `modify` keeps the old interest.
//!
//! This crate cannot run on the Linux machines squall is developed on. Its
//! translation logic is unit-tested there; the glue is type-checked and linted for
//! `x86_64-unknown-freebsd`, `x86_64-apple-darwin` and `aarch64-apple-darwin` by the
//! `cross` step of `cargo xtask ci` (see CONTRIBUTING.md), and runs the conformance
//! suite on the macOS and FreeBSD CI jobs.

// Where kqueue has its backend (squall-poller's one list): the glue and its logic.
squall_poller::cfg_kqueue! {
    mod kqueue;
    mod translate;
    pub use kqueue::Kqueue;
}

// Elsewhere only the logic is built, for its unit tests.
squall_poller::cfg_not_kqueue! {
    #[allow(dead_code)]
    mod translate;
}
