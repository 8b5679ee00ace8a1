//! The portable select(2) backend of squall's [`Poller`] trait: Tornado's
//! `tornado/platform/select.py` (`_Select`).
//!
//! select is everywhere, and it is the last resort: it can only watch fds below
//! [`FD_SETSIZE`] (1024 on Linux, macOS and the BSDs), and each wait costs O(highest fd)
//! in the kernel and O(registered fds) here. Use it where nothing better exists, or to
//! check that code above the poller does not depend on one backend's quirks. For more
//! fds on a system without epoll or kqueue, use `squall-poll`.
//!
//! The interest set lives in user space (two master `fd_set`s, copied for each wait), so
//! `register`, `modify` and `unregister` cost no syscall, except one `fcntl` check in
//! `register`: a closed fd in a set would make every later wait fail with `EBADF`.
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use squall_poller::{Events, Interest, Poller};
//! use squall_select::{Select, FD_SETSIZE};
//!
//! let mut poller = Select::new();
//! let (a, mut b) = UnixStream::pair()?;
//! poller.register(a.as_raw_fd(), Interest::READ)?;
//! b.write_all(b"ping")?;
//! let mut events = Events::with_capacity(64);
//! poller.poll(&mut events, Some(Duration::from_secs(5)))?;
//! assert!(events.get(a.as_raw_fd()).unwrap().is_readable());
//!
//! // An fd select cannot hold is refused up front, never written past the fd_set.
//! let err = poller.register(FD_SETSIZE as i32, Interest::READ).unwrap_err();
//! assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
//! assert_eq!(poller.max_fds(), Some(FD_SETSIZE));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # FD_SETSIZE
//!
//! An `fd_set` is a fixed bit array, and `FD_SET` past its end writes over whatever
//! follows. [`Select::register`](Poller::register) refuses a negative fd or one at or
//! past [`FD_SETSIZE`] with [`std::io::ErrorKind::InvalidInput`] and a message that
//! names the fd and the limit, before any set is touched; every other path only sees
//! fds that passed that check. [`max_fds`](Poller::max_fds) returns the limit, so an
//! IOLoop can refuse or re-route connections before it gets there.
//!
//! # Errors and hang-ups: how a refused connect becomes ERROR
//!
//! select only has "readable" and "writable": a socket with a pending error (a refused
//! connect, a reset) shows up in whichever sets it was asked in, and select cannot say
//! "error" or "hang-up". (The third set, `exceptfds`, means out-of-band data, not
//! errors, so this backend does not pass one.) The usual fix, `getsockopt(SO_ERROR)`,
//! **clears** the error, and the stream needs it afterwards to say why its connect
//! failed.
//!
//! So after each wait that reported some fds **writable**, this backend asks `poll(2)`
//! about just those fds, with no events and a zero timeout. poll reports `POLLERR` for a
//! pending socket error without consuming it, and `POLLHUP` for a hang-up; they become
//! ERROR and HUP beside the WRITE that select gave. The cost is one extra non-blocking
//! syscall on waits where some fd is writable, which on a server means only while a
//! write has backed up (WRITE interest is dropped as soon as the queue drains) or a
//! connect is in flight. A refused connect watched for WRITE, as a connecting stream is,
//! is therefore ERROR here exactly as on epoll, and `SO_ERROR` still holds
//! `ECONNREFUSED` for the stream.
//!
//! The rest differs from epoll, as the [`Ready`](squall_poller::Ready) contract allows:
//!
//! * A peer's end-of-file, and an error on an fd watched for READ only, are READ: the
//!   read that follows returns 0 or the error. HUP is never reported for an fd that was
//!   not writable.
//! * An fd registered with [`Interest::NONE`](squall_poller::Interest::NONE) is in no set
//!   and hears nothing at all, not even errors.
//! * The check relies on poll(2) reporting `POLLERR` for a pending socket error even
//!   when no events are asked, as Linux does. macOS's poll(2) is built on kqueue and
//!   watches nothing for `events == 0` (and reports a socket error as `POLLHUP` at
//!   best), so there, and on BSD kernels that behave alike, a refused connect shows as
//!   plain WRITE: the stream finds the error with `SO_ERROR`, as Tornado's
//!   `_handle_connect` does. This backend therefore passes the whole conformance suite
//!   on Linux only; on macOS and the BSDs use kqueue, which reports it as ERROR.
//!
//! # Fairness
//!
//! When more fds are ready than the [`Events`](squall_poller::Events) buffer holds, the
//! next poll starts its scan after the last fd reported, so no fd is starved.

mod select;

pub use select::{Select, FD_SETSIZE};
pub use squall_poller::Poller;
