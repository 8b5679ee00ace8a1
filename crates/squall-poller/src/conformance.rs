//! The conformance suite: the behaviours every [`Poller`] must show, as plain functions
//! plus a macro that turns each into a named `#[test]`.
//!
//! A backend's whole test file is one line:
//!
//! ```ignore
//! squall_poller::conformance_tests!(squall_epoll::Epoll::new().unwrap());
//! ```
//!
//! The expression is evaluated afresh for every case, so each case gets its own poller.
//! Outside `cargo test` (an example, a binary), [`run_all`] runs every case in turn and
//! panics at the first that fails.
//!
//! The cases use loopback sockets, socket pairs and pipes, never fixed ports, and wait
//! with generous timeouts: they check behaviour, never speed.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::{Events, Interest, Poller};

/// What the cases use to make a fresh poller.
pub type MakePoller<'a> = &'a dyn Fn() -> Box<dyn Poller>;

/// How long a case waits for something that must happen (generous: a loaded CI machine
/// must never fail a case by being slow).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The names of every case, in the order [`run_all`] runs them.
pub const CASES: &[&str] = &["readable_after_peer_writes", "register_twice_is_an_error"];

/// Runs every case against pollers made by `make`, panicking at the first failure.
pub fn run_all(make: MakePoller<'_>) {
    readable_after_peer_writes(make);
    register_twice_is_an_error(make);
}

/// Generates one `#[test]` per conformance case for the poller made by `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            readable_after_peer_writes,
            register_twice_is_an_error,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&|| -> ::std::boxed::Box<dyn $crate::Poller> {
                    ::std::boxed::Box::new($make)
                });
            }
        )*
    };
}

/// After the peer writes, the fd is reported READ, and again on the next poll while
/// the data stays unread (level-triggered).
pub fn readable_after_peer_writes(make: MakePoller<'_>) {
    let mut p = make();
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    b.write_all(b"x").unwrap();
    let mut ev = Events::with_capacity(8);
    p.poll(&mut ev, Some(PATIENCE)).unwrap();
    assert!(
        ev.get(a.as_raw_fd()).is_some_and(|r| r.is_readable()),
        "{ev:?}"
    );
    p.poll(&mut ev, Some(PATIENCE)).unwrap();
    assert!(
        ev.get(a.as_raw_fd()).is_some_and(|r| r.is_readable()),
        "level: {ev:?}"
    );
    let mut buf = [0u8; 4];
    assert_eq!((&a).read(&mut buf).unwrap(), 1);
}

/// Registering an fd twice is `AlreadyExists`.
pub fn register_twice_is_an_error(make: MakePoller<'_>) {
    let mut p = make();
    let (a, _b) = UnixStream::pair().expect("socketpair");
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    let err = p.register(a.as_raw_fd(), Interest::WRITE).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
}
