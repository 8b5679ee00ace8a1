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
//! panics at the first that fails; [`CASES`] names them in that order.
//!
//! The cases use loopback sockets, socket pairs and pipes, never fixed ports, and wait
//! with generous timeouts ([`PATIENCE`]): they check behaviour, never speed. The only
//! timing they assert is "no earlier than" for timeouts. A case that must wait forever
//! (`poll(.., None)`) runs under a watchdog that aborts the process with a message after
//! a minute, so a broken backend fails loudly instead of hanging CI.
//!
//! # What the bits mean
//!
//! The suite pins the meaning of [`Ready`] so that every backend agrees (epoll and kqueue
//! differ here, and mio's users trip on it):
//!
//! * **READ**: a read will not block. A peer that writes and then closes gives READ; its
//!   data is still readable, the read after it returns 0, and that end-of-file is **not**
//!   ERROR (`hang_up_when_peer_closes`). Level-triggered: an fd left unread is reported
//!   again by the next poll (`readable_after_peer_writes`).
//! * **WRITE**: a write will not block; a fresh connected socket is writable
//!   (`writable_on_fresh_socket`).
//! * **HUP**: the fd is hung up. A backend *may* add it beside READ when a peer closes
//!   (epoll and poll do for pipes and socket pairs; select only for fds it also found
//!   writable); it never replaces
//!   READ for an fd watched for READ. Callers learn end-of-file from `read() == 0`, not
//!   from HUP.
//! * **ERROR**: the fd has a pending socket error. A refused non-blocking connect,
//!   watched for WRITE as a connecting stream is, is reported ERROR
//!   (`error_for_refused_connect`), and the error is **still pending** afterwards: no
//!   backend consumes it, so the stream can read it with `getsockopt(SO_ERROR)`. (On
//!   macOS and the BSDs, poll(2) and select(2) cannot see a socket error without
//!   consuming it, so squall's select and poll backends run this suite on Linux only;
//!   epoll and kqueue, each platform's default, pass it whole.)
//!
//! Interest is exact: an fd is never reported READ or WRITE unless that direction is in
//! its interest, and an fd registered with [`Interest::NONE`] is never reported READ or
//! WRITE (`modify_switches_interest`). Whether NONE still hears ERROR and HUP depends on
//! the OS (epoll and poll: yes; select and kqueue: nothing at all), so the suite does not
//! pin it and the IOLoop must not rely on it.
//!
//! # Fds and parallel tests
//!
//! `cargo test` runs cases on parallel threads in one process, and fd numbers are
//! process-wide. Cases that need many fds or a particular fd number
//! (`thousand_fds_all_report`, `reused_fd_number_reports_its_own_state`) take a lock
//! that keeps every other case of this suite out meanwhile, so that 1,000 fds stay below
//! select's `FD_SETSIZE` of 1024. `thousand_fds_all_report` raises the soft
//! `RLIMIT_NOFILE` (towards the hard limit) if it has to.
//!
//! `signal_interrupted_poll_is_retried` installs a no-op handler for `SIGURG` (whose
//! default action is to be ignored) without `SA_RESTART`, for the whole process.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Events, Interest, Poller, Ready};

/// What the cases use to make a fresh poller.
pub type MakePoller<'a> = &'a dyn Fn() -> Box<dyn Poller>;

/// How long a case waits for something that must happen (generous: a loaded CI machine
/// must never fail a case by being slow).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How long a case watches for something that must *not* happen (an event for an fd
/// that is not ready, or not watched). A longer window only makes the check stricter.
pub const QUIET: Duration = Duration::from_millis(100);

/// How many fds `thousand_fds_all_report` registers at once.
pub const MANY_FDS: usize = 1000;

/// The one list of cases: hands every case name, in order, to
/// `__conformance_expand!` after the given mode tokens. [`CASES`], [`run_all`] and
/// [`conformance_tests!`](crate::conformance_tests) are all generated from it, so they
/// cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($($mode:tt)*) => {
        $crate::__conformance_expand! { $($mode)* ;
            readable_after_peer_writes,
            writable_on_fresh_socket,
            not_readable_with_nothing_to_read,
            hang_up_when_peer_closes,
            reset_with_read_interest,
            pipe_write_end_after_reader_closes,
            hang_up_with_write_interest,
            error_for_refused_connect,
            modify_switches_interest,
            unregister_stops_events,
            register_twice_is_an_error,
            unknown_fd_is_not_found,
            register_invalid_fd_is_an_error,
            fd_closed_while_registered,
            timeout_none_blocks_until_ready,
            timeout_zero_returns_at_once,
            timeout_is_not_shortened,
            signal_interrupted_poll_is_retried,
            thousand_fds_all_report,
            reused_fd_number_reports_its_own_state,
            small_buffer_reports_every_fd,
            edge_hint_still_reports_changes,
            edge_hint_reports_close_after_short_read,
        }
    };
}

/// What [`__conformance_cases!`] expands to, by mode: `list` for this module's
/// [`CASES`] and [`run_all`], `tests <expr>` for one `#[test]` per case.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_expand {
    (list ; $($case:ident),* $(,)?) => {
        /// The names of every case, in the order [`run_all`] runs them.
        pub const CASES: &[&str] = &[$(stringify!($case)),*];

        /// Runs every case against pollers made by `make`, panicking at the first failure.
        pub fn run_all(make: MakePoller<'_>) {
            $($case(make);)*
        }
    };
    (tests $make:expr ; $($case:ident),* $(,)?) => {
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

crate::__conformance_cases!(list);

/// Generates one `#[test]` per conformance case for the poller made by `$make`.
///
/// `$make` is an expression of any type that implements [`Poller`]; it is evaluated
/// once per case. Needs squall-poller's `conformance` feature (a dev-dependency with
/// `features = ["conformance"]`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__conformance_cases!(tests $make);
    };
}

// ---------------------------------------------------------------------------------------
// The cases.

/// After the peer writes, the fd is reported READ (and not WRITE, which was not asked
/// for), and again on the next poll while the data stays unread (level-triggered).
///
/// Tornado: `ioloop_test.py` `test_read_while_writeable`.
pub fn readable_after_peer_writes(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    b.write_all(b"x").unwrap();
    let mut ev = Events::with_capacity(8);
    let r = wait_for(&mut *p, &mut ev, a.as_raw_fd());
    assert!(r.is_readable(), "{r:?}");
    assert!(!r.is_writable(), "WRITE was not asked for: {r:?}");
    assert!(!r.is_error(), "{r:?}");
    let r = wait_for(&mut *p, &mut ev, a.as_raw_fd());
    assert!(
        r.is_readable(),
        "level-triggered: unread data is reported again: {r:?}"
    );
    let mut buf = [0u8; 4];
    assert_eq!((&a).read(&mut buf).unwrap(), 1);
}

/// A fresh connected socket watched for WRITE is reported WRITE (and not READ).
pub fn writable_on_fresh_socket(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let (a, _b) = tcp_pair();
    p.register(a.as_raw_fd(), Interest::WRITE).unwrap();
    let mut ev = Events::with_capacity(8);
    let r = wait_for(&mut *p, &mut ev, a.as_raw_fd());
    assert!(r.is_writable(), "{r:?}");
    assert!(
        !r.is_readable(),
        "nothing to read and READ not asked: {r:?}"
    );
    assert!(!r.is_error() && !r.is_hup(), "{r:?}");
}

/// With nothing to read, an fd watched for READ gets no event within the window, even
/// though it is writable.
pub fn not_readable_with_nothing_to_read(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let (a, _b) = tcp_pair();
    let (c, _d) = UnixStream::pair().expect("socketpair");
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    p.register(c.as_raw_fd(), Interest::READ).unwrap();
    let mut ev = Events::with_capacity(8);
    expect_quiet(&mut *p, &mut ev, &[a.as_raw_fd(), c.as_raw_fd()]);
}

/// A peer that writes and then closes gives READ (never ERROR), its data is still
/// readable, and the read after it returns 0. The same holds for a TCP peer that closes
/// without writing, a socket pair and a pipe whose writer goes away. HUP may come with
/// READ; it never comes instead of it.
pub fn hang_up_when_peer_closes(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);

    // TCP: data, then FIN.
    let (a, mut b) = tcp_pair();
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    b.write_all(b"bye").unwrap();
    drop(b);
    assert_eq!(
        read_to_eof(&mut *p, &mut ev, &a),
        b"bye",
        "TCP peer wrote then closed"
    );
    p.unregister(a.as_raw_fd()).unwrap();

    // TCP: FIN alone.
    let (a, b) = tcp_pair();
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    drop(b);
    assert_eq!(read_to_eof(&mut *p, &mut ev, &a), b"", "TCP peer closed");
    p.unregister(a.as_raw_fd()).unwrap();

    // A socket pair: data, then close.
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    b.write_all(b"unix").unwrap();
    drop(b);
    assert_eq!(
        read_to_eof(&mut *p, &mut ev, &a),
        b"unix",
        "socket pair peer closed"
    );
    p.unregister(a.as_raw_fd()).unwrap();

    // A pipe: data, then the writer goes away.
    let (r, w) = crate::sys::pipe().expect("pipe");
    let (r, mut w) = (std::fs::File::from(r), std::fs::File::from(w));
    p.register(r.as_raw_fd(), Interest::READ).unwrap();
    w.write_all(b"pipe").unwrap();
    drop(w);
    assert_eq!(
        read_to_eof(&mut *p, &mut ev, &r),
        b"pipe",
        "pipe writer closed"
    );
    p.unregister(r.as_raw_fd()).unwrap();
}

/// A peer that resets the connection (an RST: `SO_LINGER` 0, then close), on an fd
/// watched for READ only, is reported READ, and the read then fails with
/// `ECONNRESET`: a reader is woken and learns of the reset from its read.
///
/// Pinned on Linux: epoll and poll add ERROR and HUP, select reports READ alone.
pub fn reset_with_read_interest(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);
    let (a, b) = tcp_pair();
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    reset_on_close(&b);
    drop(b);
    let r = wait_for(&mut *p, &mut ev, a.as_raw_fd());
    assert!(r.is_readable(), "a reset wakes a reader: {r:?}");
    assert!(!r.is_writable(), "WRITE was not asked for: {r:?}");
    if cfg!(target_os = "linux") {
        match p.name() {
            "epoll" | "poll" => assert_eq!(r, Ready::READ | Ready::ERROR | Ready::HUP),
            "select" => assert_eq!(r, Ready::READ),
            _ => {}
        }
    }
    let err = (&a).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
}

/// The write end of a pipe whose reader has closed, watched for WRITE, is reported
/// WRITE with HUP or ERROR, and the write then fails with `EPIPE`: a writer is woken
/// and learns from its write. (kqueue reports WRITE and HUP, also when older macOS
/// refuses to add the write filter to such a pipe.)
///
/// Pinned on Linux: epoll, poll and select report WRITE and ERROR.
pub fn pipe_write_end_after_reader_closes(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);
    let (r, w) = crate::sys::pipe().expect("pipe");
    drop(r);
    let w = std::fs::File::from(w);
    p.register(w.as_raw_fd(), Interest::WRITE).unwrap();
    let got = wait_for(&mut *p, &mut ev, w.as_raw_fd());
    assert!(got.is_writable(), "{got:?}");
    assert!(
        got.is_hup() || got.is_error(),
        "the reader is gone: {got:?}"
    );
    assert!(!got.is_readable(), "READ was not asked for: {got:?}");
    if cfg!(target_os = "linux") && matches!(p.name(), "epoll" | "poll" | "select") {
        assert_eq!(got, Ready::WRITE | Ready::ERROR);
    }
    let err = (&w).write(b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    // Level-triggered: reported again while it stays so.
    assert!(wait_for(&mut *p, &mut ev, w.as_raw_fd()).is_writable());
    p.unregister(w.as_raw_fd()).unwrap();
}

/// A socket whose peer has closed, watched for WRITE only, is reported WRITE (so that
/// a writer tries, and its write fails with `EPIPE`), never READ.
///
/// Pinned on Linux: epoll, poll and select report WRITE and HUP for a socket pair.
pub fn hang_up_with_write_interest(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    drop(b);
    p.register(a.as_raw_fd(), Interest::WRITE).unwrap();
    let r = wait_for(&mut *p, &mut ev, a.as_raw_fd());
    assert!(r.is_writable(), "{r:?}");
    assert!(!r.is_readable(), "READ was not asked for: {r:?}");
    if cfg!(target_os = "linux") && matches!(p.name(), "epoll" | "poll" | "select") {
        assert_eq!(r, Ready::WRITE | Ready::HUP);
    }
    let err = (&a).write(b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    p.unregister(a.as_raw_fd()).unwrap();
}

/// A non-blocking connect that is refused is reported ERROR, whether the socket is
/// watched for WRITE alone (as a connecting stream is) or for both directions; and the
/// error is still pending afterwards (`SO_ERROR` gives `ECONNREFUSED`), so the backend
/// did not consume what the stream needs to report.
///
/// The target is a port bound by a socket that never calls `listen()`, so the refusal is
/// certain and no other process can take the port meanwhile.
pub fn error_for_refused_connect(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);
    let (_bound, port) = bound_not_listening();
    for interest in [Interest::WRITE, Interest::BOTH] {
        let s = connect_nonblocking(port);
        let fd = s.as_raw_fd();
        p.register(fd, interest).unwrap();
        let r = wait_for(&mut *p, &mut ev, fd);
        assert!(
            r.is_error(),
            "refused connect watched for {interest:?}: {r:?}"
        );
        assert_eq!(
            socket_error(fd),
            libc::ECONNREFUSED,
            "the pending error must survive the poll (watched for {interest:?})"
        );
        p.unregister(fd).unwrap();
    }
}

/// `modify` replaces the interest, both ways: READ -> WRITE -> READ on an fd that is
/// both readable and writable reports exactly the asked direction each time; NONE hears
/// neither; BOTH hears both.
///
/// Tornado: `ioloop_test.py` `test_read_while_writeable`, and `update_handler`.
pub fn modify_switches_interest(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    b.write_all(b"x").unwrap();
    let fd = a.as_raw_fd();

    p.register(fd, Interest::READ).unwrap();
    let r = wait_for(&mut *p, &mut ev, fd);
    assert!(r.is_readable() && !r.is_writable(), "READ: {r:?}");

    p.modify(fd, Interest::WRITE).unwrap();
    let r = wait_for(&mut *p, &mut ev, fd);
    assert!(r.is_writable() && !r.is_readable(), "READ -> WRITE: {r:?}");

    p.modify(fd, Interest::READ).unwrap();
    let r = wait_for(&mut *p, &mut ev, fd);
    assert!(r.is_readable() && !r.is_writable(), "WRITE -> READ: {r:?}");

    p.modify(fd, Interest::NONE).unwrap();
    let deadline = Instant::now() + QUIET;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        p.poll(&mut ev, Some(left)).unwrap();
        if let Some(r) = ev.get(fd) {
            assert!(
                !r.is_readable() && !r.is_writable(),
                "NONE hears no READ or WRITE: {r:?}"
            );
        }
    }

    p.modify(fd, Interest::BOTH).unwrap();
    let r = wait_for(&mut *p, &mut ev, fd);
    assert!(r.is_readable() && r.is_writable(), "NONE -> BOTH: {r:?}");
}

/// After `unregister`, a ready fd is no longer reported, while another registered fd
/// still is.
pub fn unregister_stops_events(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    let (c, mut d) = UnixStream::pair().expect("socketpair");
    b.write_all(b"x").unwrap();
    d.write_all(b"y").unwrap();
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    p.register(c.as_raw_fd(), Interest::READ).unwrap();
    assert!(wait_for(&mut *p, &mut ev, a.as_raw_fd()).is_readable());
    p.unregister(a.as_raw_fd()).unwrap();
    let deadline = Instant::now() + QUIET;
    let mut saw_other = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        p.poll(&mut ev, Some(left)).unwrap();
        assert_eq!(
            ev.get(a.as_raw_fd()),
            None,
            "unregistered fd reported: {ev:?}"
        );
        saw_other |= ev.get(c.as_raw_fd()).is_some_and(|r| r.is_readable());
    }
    assert!(
        saw_other,
        "the fd still registered must go on being reported"
    );
}

/// Registering an fd twice is `AlreadyExists`, and the first registration stays in force.
///
/// Tornado: `ioloop_test.py` `test_multiple_add`.
pub fn register_twice_is_an_error(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    let err = p.register(a.as_raw_fd(), Interest::WRITE).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    b.write_all(b"x").unwrap();
    let mut ev = Events::with_capacity(8);
    let r = wait_for(&mut *p, &mut ev, a.as_raw_fd());
    assert!(
        r.is_readable() && !r.is_writable(),
        "first registration kept: {r:?}"
    );
}

/// Modifying or unregistering an fd that was never registered, or that was already
/// unregistered, is `NotFound`.
///
/// Tornado's `remove_handler` ignores this; the IOLoop decides, the poller reports.
pub fn unknown_fd_is_not_found(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let fd = a.as_raw_fd();
    let kind = |r: io::Result<()>| r.unwrap_err().kind();
    assert_eq!(kind(p.modify(fd, Interest::READ)), io::ErrorKind::NotFound);
    assert_eq!(kind(p.unregister(fd)), io::ErrorKind::NotFound);
    p.register(fd, Interest::READ).unwrap();
    p.unregister(fd).unwrap();
    assert_eq!(kind(p.unregister(fd)), io::ErrorKind::NotFound);
    assert_eq!(kind(p.modify(fd, Interest::WRITE)), io::ErrorKind::NotFound);
    // And it can come back.
    p.register(fd, Interest::READ).unwrap();
}

/// Registering an fd that cannot be open (-1) fails, and the poller works on afterwards.
pub fn register_invalid_fd_is_an_error(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    assert!(p.register(-1, Interest::READ).is_err(), "fd -1 accepted");
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    b.write_all(b"x").unwrap();
    let mut ev = Events::with_capacity(8);
    assert!(wait_for(&mut *p, &mut ev, a.as_raw_fd()).is_readable());
}

/// An fd closed while still registered (the contract says: unregister first) never
/// gets READ or WRITE, and once it is unregistered (whatever that returns) the poller
/// goes on working.
///
/// Pinned on Linux, to show why the rule exists: epoll forgets the fd with it (nothing
/// is reported; `unregister` then fails with `EBADF`), poll reports ERROR for it
/// (`POLLNVAL`) on every poll, and select's whole poll fails with `EBADF`; poll and
/// select `unregister` it without error.
pub fn fd_closed_while_registered(make: MakePoller<'_>) {
    // The closed fd's number must not be reused by another case meanwhile.
    let _fds = exclusive_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    let (c, mut d) = UnixStream::pair().expect("socketpair");
    b.write_all(b"x").unwrap();
    d.write_all(b"y").unwrap();
    let fd = a.as_raw_fd();
    p.register(fd, Interest::READ).unwrap();
    p.register(c.as_raw_fd(), Interest::READ).unwrap();
    assert!(wait_for(&mut *p, &mut ev, fd).is_readable());
    drop(a);
    let res = p.poll(&mut ev, Some(QUIET));
    if res.is_ok() {
        let r = ev.get(fd).unwrap_or(Ready::EMPTY);
        assert!(
            !r.is_readable() && !r.is_writable(),
            "closed fd reported {r:?}"
        );
    }
    if cfg!(target_os = "linux") {
        match p.name() {
            "epoll" => assert_eq!(ev.get(fd), None, "{res:?}"),
            "poll" => assert_eq!(ev.get(fd), Some(Ready::ERROR), "{res:?}"),
            "select" => {
                let err = res.as_ref().unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
            }
            _ => {}
        }
    }
    let unreg = p.unregister(fd);
    if cfg!(target_os = "linux") {
        match p.name() {
            "epoll" => assert_eq!(unreg.unwrap_err().raw_os_error(), Some(libc::EBADF)),
            "poll" | "select" => unreg.unwrap(),
            _ => {}
        }
    }
    // The poller works on: the other fd is still reported, the closed one is not.
    let r = wait_for(&mut *p, &mut ev, c.as_raw_fd());
    assert!(r.is_readable(), "{r:?}");
    assert_eq!(ev.get(fd), None, "{ev:?}");
    drop(b);
}

/// `poll(.., None)` blocks until an fd becomes ready, here a [`Waker`](crate::Waker) woken
/// by another thread, and never returns with nothing.
pub fn timeout_none_blocks_until_ready(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let _dog = Watchdog::new("timeout_none_blocks_until_ready");
    let mut p = make();
    let waker = Arc::new(crate::Waker::new().expect("waker"));
    p.register(waker.fd(), Interest::READ).unwrap();
    let delay = Duration::from_millis(50);
    let start = Instant::now();
    let remote = Arc::clone(&waker);
    let t = thread::spawn(move || {
        thread::sleep(delay);
        remote.wake().unwrap();
    });
    let mut ev = Events::with_capacity(8);
    let n = p.poll(&mut ev, None).unwrap();
    let elapsed = start.elapsed();
    t.join().unwrap();
    assert!(
        n >= 1 && n == ev.len(),
        "poll(None) returned {n} events: {ev:?}"
    );
    assert!(
        ev.get(waker.fd()).is_some_and(|r| r.is_readable()),
        "{ev:?}"
    );
    assert!(
        elapsed >= delay,
        "poll(None) returned after {elapsed:?}, before the wake"
    );
}

/// `poll(.., Some(0))` returns at once: nothing when nothing is ready, and a ready fd
/// when there is one.
pub fn timeout_zero_returns_at_once(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    let mut ev = Events::with_capacity(8);
    let start = Instant::now();
    assert_eq!(p.poll(&mut ev, Some(Duration::ZERO)).unwrap(), 0);
    assert!(ev.is_empty(), "{ev:?}");
    // Not a speed test: only proof that a zero timeout does not mean "forever".
    assert!(start.elapsed() < PATIENCE, "Some(0) blocked");
    b.write_all(b"x").unwrap();
    assert_eq!(p.poll(&mut ev, Some(Duration::ZERO)).unwrap(), 1);
    assert!(
        ev.get(a.as_raw_fd()).is_some_and(|r| r.is_readable()),
        "{ev:?}"
    );
}

/// `poll(.., Some(t))` with nothing ready returns 0 events, no earlier than `t`: for
/// 50 ms, for 1.5 ms (a sub-millisecond remainder is rounded up, never down), and on a
/// poller with no fds at all.
pub fn timeout_is_not_shortened(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut ev = Events::with_capacity(8);
    let mut empty = make();
    for t in [Duration::from_millis(50), Duration::from_micros(1500)] {
        let start = Instant::now();
        assert_eq!(empty.poll(&mut ev, Some(t)).unwrap(), 0);
        let elapsed = start.elapsed();
        assert!(
            elapsed >= t,
            "empty poller: Some({t:?}) returned after {elapsed:?}"
        );
    }
    let mut p = make();
    let (a, _b) = UnixStream::pair().expect("socketpair");
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    for t in [Duration::from_millis(50), Duration::from_micros(1500)] {
        let start = Instant::now();
        assert_eq!(p.poll(&mut ev, Some(t)).unwrap(), 0);
        assert!(ev.is_empty(), "{ev:?}");
        let elapsed = start.elapsed();
        assert!(elapsed >= t, "Some({t:?}) returned after {elapsed:?}");
    }
}

/// A poll interrupted by signals (`EINTR`) is retried: it returns `Ok`, with nothing and
/// no earlier than its timeout when nothing became ready, and with the ready fd when one
/// did, however many signals arrived meanwhile.
///
/// Another thread sends `SIGURG` to the polling thread every millisecond; the handler
/// is a no-op installed without `SA_RESTART`, so every signal that lands inside the
/// wait makes it fail with `EINTR`.
pub fn signal_interrupted_poll_is_retried(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let _dog = Watchdog::new("signal_interrupted_poll_is_retried");
    install_signal_handler();
    let mut p = make();
    let (a, peer) = UnixStream::pair().expect("socketpair");
    p.register(a.as_raw_fd(), Interest::READ).unwrap();
    let phase = Arc::new(AtomicUsize::new(1));
    let killer = Killer::start(Arc::clone(&phase), peer);
    let mut ev = Events::with_capacity(8);

    // Phase 1: nothing becomes ready; the timeout must be honoured in full.
    let timeout = Duration::from_millis(250);
    let before = SIGNALS.load(Ordering::SeqCst);
    let start = Instant::now();
    let n = p
        .poll(&mut ev, Some(timeout))
        .expect("EINTR must be retried");
    let elapsed = start.elapsed();
    assert_eq!(n, 0, "{ev:?}");
    assert!(
        elapsed >= timeout,
        "interrupted poll returned after {elapsed:?}"
    );
    assert!(
        SIGNALS.load(Ordering::SeqCst) > before,
        "no signal arrived during the poll: the case proved nothing"
    );

    // Phase 2: wait forever; the other thread writes after some more signals.
    phase.store(2, Ordering::SeqCst);
    let before = SIGNALS.load(Ordering::SeqCst);
    let n = p.poll(&mut ev, None).expect("EINTR must be retried");
    assert!(n >= 1, "poll(None) returned with nothing");
    assert!(
        ev.get(a.as_raw_fd()).is_some_and(|r| r.is_readable()),
        "{ev:?}"
    );
    assert!(
        SIGNALS.load(Ordering::SeqCst) > before,
        "no signal during the poll"
    );
    drop(killer);
}

/// 1,000 fds registered at once (dups of one readable pipe end) are all reported.
///
/// For a backend with [`max_fds`](Poller::max_fds) (select), every fd stays below the
/// limit: this case keeps every other case of the suite out while it runs.
pub fn thousand_fds_all_report(make: MakePoller<'_>) {
    let _fds = exclusive_fds();
    raise_nofile_limit(MANY_FDS as libc::rlim_t + 64);
    let mut p = make();
    let (r, w) = crate::sys::pipe().expect("pipe");
    std::fs::File::from(w).write_all(b"x").unwrap();
    let dups: Vec<OwnedFd> = (0..MANY_FDS)
        .map(|i| {
            r.try_clone()
                .unwrap_or_else(|e| panic!("dup #{i} of a pipe end: {e}"))
        })
        .collect();
    if let Some(limit) = p.max_fds() {
        let top = dups.iter().map(AsRawFd::as_raw_fd).max().unwrap_or(0);
        assert!(
            (top as usize) < limit,
            "fd {top} is past this poller's limit of {limit}: the process had too many \
             fds open before the case started"
        );
    }
    for d in &dups {
        p.register(d.as_raw_fd(), Interest::READ).unwrap();
    }
    let mut ev = Events::with_capacity(1024);
    let mut seen = HashSet::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < MANY_FDS {
        assert!(
            Instant::now() < deadline,
            "only {} of {MANY_FDS} fds reported",
            seen.len()
        );
        p.poll(&mut ev, Some(PATIENCE)).unwrap();
        for e in &ev {
            assert!(e.ready.is_readable(), "{e:?}");
            seen.insert(e.fd);
        }
    }
    let all: HashSet<RawFd> = dups.iter().map(AsRawFd::as_raw_fd).collect();
    assert_eq!(seen, all, "reported fds that were not registered");
    for d in &dups {
        p.unregister(d.as_raw_fd()).unwrap();
    }
}

/// An fd number that was unregistered and then reused for another file (here by
/// `dup2`, which closes the old file and reuses the number atomically) can be registered
/// again, and reports only the new file's state: not the old file's unread data.
pub fn reused_fd_number_reports_its_own_state(make: MakePoller<'_>) {
    let _fds = exclusive_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    let fd = a.as_raw_fd();
    p.register(fd, Interest::READ).unwrap();
    b.write_all(b"old").unwrap();
    assert!(wait_for(&mut *p, &mut ev, fd).is_readable());
    p.unregister(fd).unwrap();

    let (c, mut d) = UnixStream::pair().expect("socketpair");
    c.set_nonblocking(true).unwrap();
    // SAFETY: both fds are open and owned by live values; dup2 closes the old file
    // behind `fd` and makes `fd` refer to `c`'s socket, still owned (and later closed)
    // by `a`. `c` keeps its own number.
    crate::syscall!(unsafe { libc::dup2(c.as_raw_fd(), fd) }).expect("dup2");
    drop(c);

    p.register(fd, Interest::READ).unwrap();
    expect_quiet(&mut *p, &mut ev, &[fd]);
    // The old peer's socket is gone with the old file: its write may fail (EPIPE), and
    // either way nothing may reach the new file.
    let _ = b.write_all(b"more old");
    expect_quiet(&mut *p, &mut ev, &[fd]);
    d.write_all(b"new").unwrap();
    assert!(wait_for(&mut *p, &mut ev, fd).is_readable());
    let mut buf = [0u8; 16];
    let n = (&a).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"new");
}

/// With room for 2 events per poll and 5 ready fds, successive polls report every fd
/// (the rest stay ready and come next: no fd is starved).
pub fn small_buffer_reports_every_fd(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let pairs: Vec<(UnixStream, UnixStream)> = (0..5)
        .map(|_| UnixStream::pair().expect("socketpair"))
        .collect();
    for (a, b) in &pairs {
        p.register(a.as_raw_fd(), Interest::READ).unwrap();
        (&*b).write_all(b"x").unwrap();
    }
    let mut ev = Events::with_capacity(2);
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let n = p.poll(&mut ev, Some(PATIENCE)).unwrap();
        assert!(
            n <= 2 && n == ev.len(),
            "returned {n} with capacity 2: {ev:?}"
        );
        for e in &ev {
            assert!(e.ready.is_readable(), "{e:?}");
            seen.insert(e.fd);
        }
        if seen.len() == pairs.len() {
            return;
        }
    }
    panic!("20 polls with capacity 2 reported only {seen:?} of 5 ready fds");
}

/// An fd registered with the [`Interest::EDGE`] hint is reported for every change that
/// comes after the caller drained it (new data, after the old was read to `EAGAIN`), and
/// a `modify` makes the backend look at it afresh (the room to write, which was there
/// all along). Whether it is reported again *without* a change is the backend's choice.
pub fn edge_hint_still_reports_changes(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    let fd = a.as_raw_fd();
    p.register(fd, Interest::READ | Interest::EDGE).unwrap();
    let mut ev = Events::with_capacity(8);
    let mut buf = [0u8; 64];
    for round in [&b"first"[..], b"second", b"third"] {
        (&b).write_all(round).unwrap();
        let r = wait_for(&mut *p, &mut ev, fd);
        assert!(r.is_readable() && !r.is_writable(), "{r:?}");
        let mut got = Vec::new();
        loop {
            match (&a).read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        assert_eq!(got, round);
    }
    p.modify(fd, Interest::BOTH | Interest::EDGE).unwrap();
    let r = wait_for(&mut *p, &mut ev, fd);
    assert!(r.is_writable() && !r.is_readable(), "{r:?}");
    // Interest stays exact with the hint: nothing asked, nothing reported.
    p.modify(fd, Interest::EDGE).unwrap();
    (&b).write_all(b"unasked").unwrap();
    expect_quiet(&mut *p, &mut ev, &[fd]);
    p.unregister(fd).unwrap();
}

/// A peer writes and closes before the reader looks: one read (short, since it asks
/// for more than came) takes the data, and the fd is still reported, so the reader
/// learns of the end-of-file from the read after it, with the [`Interest::EDGE`] hint
/// as without it (the hint's promise stops at a short read, which does not see the
/// close queued behind the data). The same for a TCP half-close.
pub fn edge_hint_reports_close_after_short_read(make: MakePoller<'_>) {
    let _fds = shared_fds();
    let mut p = make();
    let mut ev = Events::with_capacity(8);
    let (a, b) = UnixStream::pair().expect("socketpair");
    let (c, d) = tcp_pair();
    for (reader, writer) in [
        (OwnedFd::from(a), OwnedFd::from(b)),
        (OwnedFd::from(c), OwnedFd::from(d)),
    ] {
        let reader = std::fs::File::from(reader);
        let mut writer = std::fs::File::from(writer);
        let fd = reader.as_raw_fd();
        p.register(fd, Interest::READ | Interest::EDGE).unwrap();
        writer.write_all(b"last words").unwrap();
        drop(writer);
        let r = wait_for(&mut *p, &mut ev, fd);
        assert!(r.is_readable(), "{r:?}");
        let mut buf = [0u8; 64];
        let n = (&reader).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"last words");
        let r = wait_for(&mut *p, &mut ev, fd);
        assert!(r.is_readable(), "the close after a short read: {r:?}");
        assert_eq!((&reader).read(&mut buf).unwrap(), 0);
        p.unregister(fd).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// Serialises the cases that need many fds or a given fd number against all others.
static FDS: RwLock<()> = RwLock::new(());

fn shared_fds() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive_fds() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(PoisonError::into_inner)
}

/// Polls until `fd` is reported, and returns what was reported for it.
#[track_caller]
fn wait_for(p: &mut dyn Poller, ev: &mut Events, fd: RawFd) -> Ready {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("fd {fd} not reported within {PATIENCE:?}"));
        let n = p.poll(ev, Some(left)).expect("poll");
        assert_eq!(n, ev.len(), "poll's count disagrees with the buffer");
        if let Some(r) = ev.get(fd) {
            return r;
        }
    }
}

/// Polls for [`QUIET`] and fails if any of `fds` is reported.
#[track_caller]
fn expect_quiet(p: &mut dyn Poller, ev: &mut Events, fds: &[RawFd]) {
    let deadline = Instant::now() + QUIET;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        p.poll(ev, Some(left)).expect("poll");
        for &fd in fds {
            assert_eq!(ev.get(fd), None, "fd {fd} reported: {ev:?}");
        }
    }
}

/// Reads `src` (registered for READ) to end-of-file, polling whenever it would block;
/// checks that every report is READ and none is ERROR. Returns the bytes read.
#[track_caller]
fn read_to_eof<S>(p: &mut dyn Poller, ev: &mut Events, src: &S) -> Vec<u8>
where
    S: AsRawFd,
    for<'a> &'a S: Read,
{
    let fd = src.as_raw_fd();
    let mut data = Vec::new();
    loop {
        let r = wait_for(p, ev, fd);
        assert!(r.is_readable(), "a peer's close must be READ: {r:?}");
        assert!(!r.is_error(), "end-of-file is not an error: {r:?}");
        let mut buf = [0u8; 64];
        loop {
            let mut reader = src;
            match reader.read(&mut buf) {
                Ok(0) => return data,
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read after READ: {e}"),
            }
        }
    }
}

/// Makes closing `s` send an RST instead of a FIN (`SO_LINGER` on, 0 seconds).
fn reset_on_close(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a live linger struct and the length says so.
    crate::syscall!(unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    })
    .expect("setsockopt(SO_LINGER)");
}

/// A connected, non-blocking loopback TCP pair.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let a = TcpStream::connect(l.local_addr().unwrap()).expect("connect");
    let (b, _) = l.accept().expect("accept");
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

fn loopback(port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data; all zeroes is a valid (unspecified) value.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_port = port.to_be();
    addr.sin_addr = libc::in_addr {
        s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
    };
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "tvos",
        target_os = "watchos",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd",
        target_os = "netbsd"
    ))]
    {
        addr.sin_len = std::mem::size_of::<libc::sockaddr_in>() as u8;
    }
    addr
}

fn tcp_socket() -> OwnedFd {
    // SAFETY: socket takes three integers and has no memory preconditions.
    let fd = crate::syscall!(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) })
        .expect("socket");
    // SAFETY: socket just returned this fd and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

const SOCKADDR_IN_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_in>() as _;

/// A TCP socket bound to 127.0.0.1 on a fresh port that never listens, and the port:
/// a connect to it is refused (RST), and nobody else can take the port meanwhile.
fn bound_not_listening() -> (OwnedFd, u16) {
    let s = tcp_socket();
    let mut addr = loopback(0);
    // SAFETY: `addr` is a valid sockaddr_in and the length says so.
    crate::syscall!(unsafe {
        libc::bind(
            s.as_raw_fd(),
            (&addr as *const libc::sockaddr_in).cast(),
            SOCKADDR_IN_LEN,
        )
    })
    .expect("bind 127.0.0.1:0");
    let mut len = SOCKADDR_IN_LEN;
    // SAFETY: `addr` and `len` are live and writable; len gives the room in addr.
    crate::syscall!(unsafe {
        libc::getsockname(
            s.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    })
    .expect("getsockname");
    (s, u16::from_be(addr.sin_port))
}

/// A non-blocking socket whose connect to `port` is in progress (`EINPROGRESS`).
fn connect_nonblocking(port: u16) -> OwnedFd {
    let addr = loopback(port);
    for _ in 0..100 {
        let s = tcp_socket();
        crate::sys::set_nonblocking(s.as_raw_fd()).expect("O_NONBLOCK");
        // SAFETY: `addr` is a valid sockaddr_in and the length says so.
        let res = crate::syscall!(unsafe {
            libc::connect(
                s.as_raw_fd(),
                (&addr as *const libc::sockaddr_in).cast(),
                SOCKADDR_IN_LEN,
            )
        });
        match res {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => return s,
            // Refused before connect even returned: nothing left for a poller to
            // see, so try again with a fresh socket.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => continue,
            other => panic!("non-blocking connect to a closed port: {other:?}"),
        }
    }
    panic!("every non-blocking connect was refused at once; cannot test ERROR")
}

/// Reads `SO_ERROR` (which clears it).
fn socket_error(fd: RawFd) -> libc::c_int {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are live and writable, and len is the size of err.
    crate::syscall!(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    })
    .expect("getsockopt(SO_ERROR)");
    err
}

/// Raises the soft `RLIMIT_NOFILE` to `want` if it is lower (capped at the hard limit).
fn raise_nofile_limit(want: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live, writable rlimit.
    crate::syscall!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }).expect("getrlimit");
    if lim.rlim_cur < want && lim.rlim_cur != lim.rlim_max {
        // Not the hard limit itself: macOS refuses RLIM_INFINITY as a soft limit.
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: `lim` is a live rlimit whose soft limit does not exceed the hard one.
        crate::syscall!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })
            .expect("setrlimit(RLIMIT_NOFILE)");
    }
}

/// Signals seen by the no-op handler.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    // Async-signal-safe: one lock-free atomic add.
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Installs [`count_signal`] for `SIGURG`, without `SA_RESTART`, once per process.
fn install_signal_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction is plain old data; all zeroes means no flags (in particular
        // no SA_RESTART) and is overwritten below where it matters.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        let handler: extern "C" fn(libc::c_int) = count_signal;
        sa.sa_sigaction = handler as libc::sighandler_t;
        // SAFETY: sa_mask is a live, writable sigset_t.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: `sa` is a fully initialised sigaction whose handler only touches an
        // atomic; a null old-action pointer is allowed.
        crate::syscall!(unsafe { libc::sigaction(libc::SIGURG, &sa, std::ptr::null_mut()) })
            .expect("sigaction(SIGURG)");
    });
}

/// A thread that sends `SIGURG` to the thread that started it every millisecond, and
/// writes to `peer` once phase 2 has begun and 20 more signals went out. Dropping it
/// stops and joins the thread, so the target thread outlives every signal.
struct Killer {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Killer {
    fn start(phase: Arc<AtomicUsize>, mut peer: UnixStream) -> Killer {
        // SAFETY: pthread_self has no preconditions.
        let target = unsafe { libc::pthread_self() } as usize;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + 3 * PATIENCE;
            let mut in_phase_2 = 0;
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                // SAFETY: `target` is the thread that owns this Killer; it joins this
                // thread (on drop, also when unwinding) before it can exit, so the id
                // stays valid for every call.
                unsafe { libc::pthread_kill(target as libc::pthread_t, libc::SIGURG) };
                if phase.load(Ordering::SeqCst) == 2 {
                    in_phase_2 += 1;
                    if in_phase_2 == 20 {
                        peer.write_all(b"!").expect("write to the polled socket");
                    }
                }
                // Pacing between signals, not synchronisation.
                thread::sleep(Duration::from_millis(1));
            }
        });
        Killer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Killer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Aborts the process if a case that waits forever is still running after a minute, so
/// that a backend whose `poll(None)` never returns fails CI instead of hanging it.
struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    fn new(case: &'static str) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(6 * PATIENCE) {
                // tidy: allow(print) the last word before abort(); a test may have no logger
                eprintln!("conformance case {case} still running after 60 s: aborting");
                std::process::abort();
            }
        });
        Watchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
