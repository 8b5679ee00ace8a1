//! A poller written outside the backend crates: a wrapper that counts the calls made
//! to another backend (register, modify, unregister, poll), and proves that it keeps
//! the [`Poller`] contract by passing the conformance suite.
//!
//! **This is how you prove your own poller crate.** Implement [`Poller`], then run the
//! suite over it:
//!
//! * in your crate's tests, one line gives one named `#[test]` per case:
//!   `squall_poller::conformance_tests!(MyPoller::new());`
//!   (this example's wrapper gets exactly that in `tests/counting_poller.rs`);
//! * from a binary, as `main` does here, [`conformance::run_all`] runs every case and
//!   panics at the first that fails.
//!
//! Then hand it to the IOLoop with `IoLoop::with_poller(Box::new(MyPoller::new()))`.
//!
//! Counting calls is how squall checks its performance rules ("count syscalls per
//! request"): wrap the real backend, run a workload, read the [`Counts`]. For epoll each
//! call is one syscall (a wait retried after `EINTR` counts once); poll and select
//! spend no syscall in `modify` and `unregister`, and one `fcntl` in `register`.
//!
//! Run it with `cargo run -p squall-poller --example counting_poller`.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use squall_poller::{conformance, Events, Interest, Poller};

/// How many times each [`Poller`] method was called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls to [`Poller::register`].
    pub register: u64,
    /// Calls to [`Poller::modify`].
    pub modify: u64,
    /// Calls to [`Poller::unregister`].
    pub unregister: u64,
    /// Calls to [`Poller::poll`].
    pub poll: u64,
}

/// A [`Poller`] that forwards every call to `inner` and counts it.
///
/// The counts live behind an `Rc<Cell<_>>` so that they can still be read after the
/// poller has been boxed and handed to an IOLoop (which is single-threaded, so no
/// atomics are needed).
#[derive(Debug)]
pub struct Counting<P> {
    inner: P,
    counts: Rc<Cell<Counts>>,
}

impl<P: Poller> Counting<P> {
    /// Wraps `inner`, with every count at zero.
    pub fn new(inner: P) -> Counting<P> {
        Counting {
            inner,
            counts: Rc::default(),
        }
    }

    /// A handle to the counts that outlives moving the poller away.
    pub fn counts(&self) -> Rc<Cell<Counts>> {
        Rc::clone(&self.counts)
    }

    fn bump(&self, f: impl FnOnce(&mut Counts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
    }
}

impl<P: Poller> Poller for Counting<P> {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.bump(|c| c.register += 1);
        self.inner.register(fd, interest)
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.bump(|c| c.modify += 1);
        self.inner.modify(fd, interest)
    }

    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.bump(|c| c.unregister += 1);
        self.inner.unregister(fd)
    }

    fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        self.bump(|c| c.poll += 1);
        self.inner.poll(events, timeout)
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn max_fds(&self) -> Option<usize> {
        self.inner.max_fds()
    }
}

squall_poller::cfg_epoll! {
    /// The backend this example wraps: the platform's own (epoll on Linux, kqueue on
    /// macOS and FreeBSD), else poll(2).
    pub fn platform_backend() -> Box<dyn Poller> {
        Box::new(squall_epoll::Epoll::new().expect("epoll_create1"))
    }
}

squall_poller::cfg_kqueue! {
    /// The backend this example wraps: the platform's own (epoll on Linux, kqueue on
    /// macOS and FreeBSD), else poll(2).
    pub fn platform_backend() -> Box<dyn Poller> {
        Box::new(squall_kqueue::Kqueue::new().expect("kqueue"))
    }
}

squall_poller::cfg_not_epoll! {
    squall_poller::cfg_not_kqueue! {
        /// The backend this example wraps: the platform's own (epoll on Linux, kqueue
        /// on macOS and FreeBSD), else poll(2).
        pub fn platform_backend() -> Box<dyn Poller> {
            Box::new(squall_poll::Poll::new())
        }
    }
}

fn main() -> io::Result<()> {
    // 1. Prove it: every case of the suite, each on a fresh wrapper.
    conformance::run_all(&|| Box::new(Counting::new(platform_backend())));
    println!(
        "Counting<{}> passed all {} conformance cases",
        platform_backend().name(),
        conformance::CASES.len()
    );

    // 2. Use it: count the calls of one read round trip.
    let mut poller = Counting::new(platform_backend());
    let counts = poller.counts();
    let (a, mut b) = UnixStream::pair()?;
    a.set_nonblocking(true)?;
    poller.register(a.as_raw_fd(), Interest::READ)?;
    b.write_all(b"ping")?;
    let mut events = Events::with_capacity(16);
    poller.poll(&mut events, Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 4];
    (&a).read_exact(&mut buf)?;
    poller.unregister(a.as_raw_fd())?;
    println!("one round trip: {:?}", counts.get());
    Ok(())
}
