//! The poller seam of squall: the [`Poller`] trait, the [`Interest`] and [`Ready`] bit
//! sets, the caller-owned [`Events`] buffer, the loop's [`Waker`], and a public
//! conformance suite that every backend runs.
//!
//! This is Tornado's `tornado/platform/interface.py`: the small object the IOLoop asks
//! "which fds are ready?". The contract is level-triggered and keyed by fd, like
//! Tornado's `_impl` (with an [`Interest::EDGE`] hint a backend may honour); see
//! [`Poller`] for every rule. Backends live in their own crates:
//!
//! | crate | syscall | where |
//! | --- | --- | --- |
//! | `squall-epoll` | `epoll(7)` | Linux, Android (the default there) |
//! | `squall-kqueue` | `kqueue(2)` | macOS, iOS, tvOS, watchOS, FreeBSD (the default there) |
//! | `squall-poll` | `poll(2)` | every Unix (the default elsewhere) |
//! | `squall-select` | `select(2)` | every Unix; fds below `FD_SETSIZE` only |
//!
//! A poller of your own proves itself with the conformance suite: the `conformance`
//! feature (off by default; turn it on in your dev-dependency) adds the `conformance`
//! module and the `conformance_tests!` macro, which generates one `#[test]` per case.
//! The `bytes` feature (off by default) lets [`sys::FdIo::read_append`] read into a
//! `bytes::BytesMut` as well as a `Vec<u8>`.
//!
//! # Example
//!
//! Code that waits for an fd works with any backend through `dyn Poller`. Here a toy
//! poller that reports every registered fd as writable stands in for a real one:
//!
//! ```
//! use std::collections::HashMap;
//! use std::io;
//! use std::os::fd::RawFd;
//! use std::time::Duration;
//! use squall_poller::{util, Event, Events, Interest, Poller, Ready};
//!
//! #[derive(Default)]
//! struct AlwaysWritable(HashMap<RawFd, Interest>);
//!
//! impl Poller for AlwaysWritable {
//!     fn register(&mut self, fd: RawFd, i: Interest) -> io::Result<()> {
//!         if self.0.insert(fd, i).is_some() {
//!             return Err(util::already_registered(fd));
//!         }
//!         Ok(())
//!     }
//!     fn modify(&mut self, fd: RawFd, i: Interest) -> io::Result<()> {
//!         *self.0.get_mut(&fd).ok_or_else(|| util::not_registered(fd))? = i;
//!         Ok(())
//!     }
//!     fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
//!         self.0.remove(&fd).map(drop).ok_or_else(|| util::not_registered(fd))
//!     }
//!     fn poll(&mut self, events: &mut Events, _: Option<Duration>) -> io::Result<usize> {
//!         events.clear();
//!         for (&fd, i) in &self.0 {
//!             if i.is_writable() {
//!                 events.push(Event { fd, ready: Ready::WRITE });
//!             }
//!         }
//!         Ok(events.len())
//!     }
//! }
//!
//! fn wait_writable(p: &mut dyn Poller, fd: RawFd) -> io::Result<bool> {
//!     let mut events = Events::with_capacity(16);
//!     p.poll(&mut events, Some(Duration::from_millis(10)))?;
//!     Ok(events.get(fd).is_some_and(|r| r.is_writable()))
//! }
//!
//! let mut p = AlwaysWritable::default();
//! p.register(5, Interest::WRITE)?;
//! assert!(wait_writable(&mut p, 5)?);
//! assert_eq!(p.register(5, Interest::READ).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
//! # Ok::<(), io::Error>(())
//! ```

#![warn(unreachable_pub)]

#[cfg(feature = "conformance")]
pub mod conformance;
mod events;
mod interest;
pub mod os;
mod poller;
pub mod sys;
pub mod util;
mod waker;

pub use events::{Event, Events};
pub use interest::{Interest, Ready};
pub use poller::Poller;
pub use waker::Waker;

#[doc(hidden)]
pub use libc as __libc;
