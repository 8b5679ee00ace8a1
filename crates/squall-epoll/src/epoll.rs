use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use squall_poller::{syscall, util, Event, Events, Interest, Poller, Ready};

/// A level-triggered epoll instance (edge-triggered, `EPOLLET`, for an fd registered
/// with the [`Interest::EDGE`] hint).
///
/// Tornado's `_EPoll`. Readiness maps as follows: `EPOLLIN`, `EPOLLPRI` and `EPOLLRDHUP`
/// give READ (a peer's end-of-file is readable, never an error); `EPOLLOUT` gives WRITE;
/// `EPOLLERR` gives ERROR; `EPOLLHUP` gives HUP, and also READ when READ was asked for,
/// so a reader always sees end-of-file through a read.
#[doc(alias = "_EPoll")]
#[doc(alias = "epoll")]
#[derive(Debug)]
pub struct Epoll {
    epfd: OwnedFd,
    /// Raw events for `epoll_wait`, grown to the caller's `Events` capacity once.
    buf: Vec<libc::epoll_event>,
}

impl Epoll {
    /// Creates an epoll instance (close-on-exec).
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_create1` (`EMFILE`, `ENOMEM`).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag word and has no memory preconditions.
        let fd = syscall!(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: epoll_create1 just returned this fd and nothing else owns it.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll {
            epfd,
            buf: Vec::new(),
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, interest: Interest) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: interest_to_epoll(interest),
            // The interest rides along in the high half so that `poll` can tell a
            // reader about a hang-up without a table of its own.
            u64: (fd as u32 as u64) | (u64::from(interest.bits()) << 32),
        };
        // SAFETY: `ev` is a live epoll_event for the duration of the call; the epoll fd
        // is owned by self; a bad `fd` is reported by the kernel as EBADF.
        syscall!(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }
}

/// What epoll says when the peer has closed its side (or the fd has failed): an
/// edge-triggered fd turns level-triggered at this report.
const PEER_GONE: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// The epoll mask for an interest. `EPOLLERR` and `EPOLLHUP` are always reported by the
/// kernel; `EPOLLRDHUP` is asked with READ so a half-close is seen as readable; the
/// [`EDGE`](Interest::EDGE) hint is `EPOLLET`.
fn interest_to_epoll(interest: Interest) -> u32 {
    let mut bits = if interest.is_edge() { libc::EPOLLET } else { 0 };
    if interest.is_readable() {
        bits |= libc::EPOLLIN | libc::EPOLLRDHUP;
    }
    if interest.is_writable() {
        bits |= libc::EPOLLOUT;
    }
    bits as u32
}

/// What an epoll event means in the contract's terms.
fn epoll_to_ready(bits: u32) -> Ready {
    let bits = bits as libc::c_int;
    let mut ready = Ready::EMPTY;
    if bits & (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP) != 0 {
        ready |= Ready::READ;
    }
    if bits & libc::EPOLLOUT != 0 {
        ready |= Ready::WRITE;
    }
    if bits & libc::EPOLLERR != 0 {
        ready |= Ready::ERROR;
    }
    if bits & libc::EPOLLHUP != 0 {
        ready |= Ready::HUP;
    }
    ready
}

fn map_ctl_error(err: io::Error, fd: RawFd) -> io::Error {
    match err.raw_os_error() {
        Some(libc::EEXIST) => util::already_registered(fd),
        Some(libc::ENOENT) => util::not_registered(fd),
        _ => err,
    }
}

impl Poller for Epoll {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest)
            .map_err(|e| map_ctl_error(e, fd))
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest)
            .map_err(|e| map_ctl_error(e, fd))
    }

    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        // A non-null event pointer keeps pre-2.6.9 kernels happy; it is ignored.
        self.ctl(libc::EPOLL_CTL_DEL, fd, Interest::NONE)
            .map_err(|e| map_ctl_error(e, fd))
    }

    fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        let cap = events.capacity().min(i32::MAX as usize);
        if self.buf.len() < cap {
            self.buf
                .resize(cap, libc::epoll_event { events: 0, u64: 0 });
        }
        let epfd = self.epfd.as_raw_fd();
        let buf = &mut self.buf;
        let n = util::retry_eintr(timeout, |t| {
            // The syscall itself, not glibc's wrapper: the wrapper is a cancellation
            // point, which in a process with a second thread costs two atomic
            // read-modify-writes per wait (see `squall_poller::sys::FdIo`).
            // `epoll_pwait` with no signal mask is `epoll_wait`, and exists on every
            // architecture (arm64 has no `epoll_wait`).
            // SAFETY: `buf` holds at least `cap` initialised epoll_events and is not
            // touched elsewhere during the call; the kernel writes at most `cap`. A null
            // mask pointer tells the kernel to leave the signal mask alone (and to
            // ignore the mask's size).
            syscall!(unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait,
                    epfd,
                    buf.as_mut_ptr(),
                    cap as libc::c_int,
                    util::timeout_millis(t),
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            })
            .map(|n| n as usize)
        })?;
        for i in 0..n {
            let (bits, data) = (self.buf[i].events, self.buf[i].u64);
            let fd = data as u32 as RawFd;
            let interest = Interest::from_bits_truncate((data >> 32) as u8);
            if interest.is_edge() && bits & PEER_GONE != 0 {
                // The peer closed (or the fd failed): from now on the fd is
                // level-triggered. Its end-of-file stays readable after the data, and
                // a reader that stops at a short read (as the hint allows) would never
                // hear of it again from an edge that has already passed. The failure
                // of this `epoll_ctl` needs a caller that closed the fd without
                // unregistering it (ENOENT, EBADF), which the contract rules out.
                let _ = self.ctl(libc::EPOLL_CTL_MOD, fd, interest - Interest::EDGE);
            }
            let mut ready = epoll_to_ready(bits);
            // A hung-up pipe or socket with READ interest must be read to see the
            // end-of-file: report it as readable too.
            if ready.is_hup() && interest.is_readable() {
                ready |= Ready::READ;
            }
            events.push(Event { fd, ready });
        }
        Ok(n)
    }

    fn name(&self) -> &'static str {
        "epoll"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(interest_to_epoll(Interest::NONE), 0);
        let r = interest_to_epoll(Interest::READ) as libc::c_int;
        assert!(r & libc::EPOLLIN != 0 && r & libc::EPOLLOUT == 0);
        let w = interest_to_epoll(Interest::WRITE) as libc::c_int;
        assert!(w & libc::EPOLLOUT != 0 && w & libc::EPOLLIN == 0);
        let hup = epoll_to_ready((libc::EPOLLHUP | libc::EPOLLERR) as u32);
        assert!(hup.is_hup() && hup.is_error() && !hup.is_readable());
        assert!(epoll_to_ready(libc::EPOLLRDHUP as u32).is_readable());
        let e = interest_to_epoll(Interest::READ | Interest::EDGE) as libc::c_int;
        assert!(e & libc::EPOLLET != 0 && e & libc::EPOLLIN != 0);
        assert_eq!(r & libc::EPOLLET, 0);
    }

    /// With the EDGE hint an fd left unread is not reported again until something
    /// changes: new data, or a `modify`, which looks at the fd afresh.
    #[test]
    fn edge_hint_reports_changes_only() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;

        let mut p = Epoll::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        p.register(fd, Interest::READ | Interest::EDGE).unwrap();
        let mut ev = Events::with_capacity(8);
        b.write_all(b"one").unwrap();
        p.poll(&mut ev, Some(Duration::from_secs(10))).unwrap();
        assert!(ev.get(fd).unwrap().is_readable());
        p.poll(&mut ev, Some(Duration::ZERO)).unwrap();
        assert_eq!(ev.get(fd), None, "an edge is reported once");
        b.write_all(b"two").unwrap();
        p.poll(&mut ev, Some(Duration::from_secs(10))).unwrap();
        assert!(ev.get(fd).unwrap().is_readable(), "new data is a new edge");
        p.modify(fd, Interest::BOTH | Interest::EDGE).unwrap();
        p.poll(&mut ev, Some(Duration::from_secs(10))).unwrap();
        let r = ev.get(fd).unwrap();
        assert!(r.is_readable() && r.is_writable(), "modify looks afresh: {r:?}");
        p.modify(fd, Interest::READ).unwrap();
        for _ in 0..2 {
            p.poll(&mut ev, Some(Duration::from_secs(10))).unwrap();
            assert!(ev.get(fd).unwrap().is_readable(), "level-triggered again");
        }
    }
}
