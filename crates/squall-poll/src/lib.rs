//! The poll(2) backend of squall's [`Poller`] trait: portable to every Unix, with no
//! limit on fd numbers (unlike select's `FD_SETSIZE`).
//!
//! Tornado 4.5 had no poll backend (it went from epoll and kqueue straight to select);
//! this one sits beside [`squall-select`] as the portable fallback that scales past 1024
//! fds, and as a second Linux backend that CI runs the upper layers on.
//!
//! The interest set lives in user space: a `Vec<pollfd>` handed to the kernel as is on
//! every wait, plus an fd-to-index map, so `register`, `modify` and `unregister` cost no
//! syscall at all (beyond one `fcntl` check in `register`) and are O(1) (`unregister`
//! swaps the last entry into the hole). Each wait costs O(registered fds) in the kernel
//! and in the scan for results: fine for hundreds of fds, where epoll or kqueue win for
//! tens of thousands.
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use squall_poll::Poll;
//! use squall_poller::{Events, Interest, Poller};
//!
//! let mut poller = Poll::new();
//! let (a, mut b) = UnixStream::pair()?;
//! poller.register(a.as_raw_fd(), Interest::READ)?;
//! b.write_all(b"ping")?;
//! let mut events = Events::with_capacity(64);
//! poller.poll(&mut events, Some(Duration::from_secs(5)))?;
//! assert!(events.get(a.as_raw_fd()).unwrap().is_readable());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Readiness mapping
//!
//! | `revents` | [`Ready`](squall_poller::Ready) |
//! | --- | --- |
//! | `POLLIN`, `POLLPRI` | READ |
//! | `POLLOUT` | WRITE |
//! | `POLLERR` | ERROR (a pending socket error, or a pipe whose reader is gone) |
//! | `POLLHUP` | HUP, and READ too if READ was asked for, so a reader sees end-of-file through a read (as epoll does) |
//! | `POLLNVAL` | ERROR: the fd was closed while still registered (a caller bug: unregister before closing) |
//!
//! The kernel reports `POLLERR` and `POLLHUP` even for [`Interest::NONE`](squall_poller::Interest::NONE)
//! (`events == 0`), so on this backend NONE still hears errors and hang-ups.
//!
//! # Differences from the other backends
//!
//! * `register` checks the fd with one `fcntl(F_GETFD)`, since poll(2) itself would only
//!   answer `POLLNVAL` on every later wait.
//! * When more fds are ready than the [`Events`](squall_poller::Events) buffer holds, the
//!   next poll starts its scan where the last one stopped, so no fd is starved.
//! * The conformance suite runs on Linux. macOS's poll(2) is built on kqueue: it turns
//!   `EV_EOF` into `POLLHUP` (and then drops `POLLOUT`) and never reports a socket error
//!   as `POLLERR`, so there a refused connect is HUP, not ERROR
//!   (`error_for_refused_connect` fails), and devices (ttys) are not supported at all.
//!   Use kqueue on macOS and the BSDs.
//!
//! [`squall-select`]: https://docs.rs/squall-select

mod poll;

pub use poll::Poll;
pub use squall_poller::Poller;
