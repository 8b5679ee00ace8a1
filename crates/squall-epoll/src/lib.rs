//! The Linux epoll backend of squall's [`Poller` trait](squall_poller::Poller): Tornado's
//! `tornado/platform/epoll.py`.
//!
//! Level-triggered (no `EPOLLONESHOT`), so an fd is registered once and touched again
//! only when its interest changes: the loop pays one `epoll_ctl` per transition, never
//! one per wait. An fd registered with the [`Interest::EDGE`](squall_poller::Interest::EDGE)
//! hint is edge-triggered (`EPOLLET`): the kernel then does not look at it again on the
//! next wait after reporting it, which is what a stream that tracks readiness itself
//! (squall's `IoStream`) asks for. The kernel keeps the interest set, so `register`,
//! `modify` and `unregister` are one syscall each and need no table of our own.
//!
//! On other platforms the crate is empty.
//!
//! # Example
//!
//! ```
//! # squall_poller::cfg_not_epoll! { fn main() {} }
//! # squall_poller::cfg_epoll! { fn main() -> std::io::Result<()> {
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use squall_epoll::Epoll;
//! use squall_poller::{Events, Interest, Poller};
//!
//! let mut poller = Epoll::new()?;
//! let (a, mut b) = UnixStream::pair()?;
//! poller.register(a.as_raw_fd(), Interest::READ)?;
//! b.write_all(b"ping")?;
//! let mut events = Events::with_capacity(64);
//! poller.poll(&mut events, Some(Duration::from_secs(5)))?;
//! assert!(events.get(a.as_raw_fd()).unwrap().is_readable());
//! # Ok(()) } }
//! ```

// Where epoll exists (squall-poller's one list); empty elsewhere.
squall_poller::cfg_epoll! {
    mod epoll;
    pub use epoll::Epoll;
    pub use squall_poller::Poller;
}
