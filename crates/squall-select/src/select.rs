use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use squall_poller::{sys, syscall, util, Event, Events, Interest, Poller, Ready};

/// select's fixed limit: fds must be in `0..FD_SETSIZE`.
pub const FD_SETSIZE: usize = libc::FD_SETSIZE;

/// Longest single wait handed to select (68 years); longer timeouts are clamped, which
/// no caller can tell from waiting forever.
const MAX_WAIT_SECS: u64 = i32::MAX as u64;

/// A level-triggered select(2) poller.
///
/// Tornado's `_Select`. Keeps master read and write `fd_set`s that are copied for each
/// wait, a table of registrations indexed by fd, and a list of registered fds for the
/// result scan. Every fd must be below [`FD_SETSIZE`]: [`register`](Poller::register)
/// refuses others with [`io::ErrorKind::InvalidInput`] before anything touches an
/// `fd_set`, so an out-of-range fd can never corrupt memory.
///
/// See the [crate docs](crate) for how a refused connect becomes ERROR.
#[doc(alias = "_Select")]
#[doc(alias = "select")]
#[derive(Debug)]
pub struct Select {
    /// The read set every wait starts from.
    read: libc::fd_set,
    /// The write set every wait starts from.
    write: libc::fd_set,
    /// Registration per fd number (`None`: not registered); grown up to `FD_SETSIZE`.
    slots: Vec<Option<Slot>>,
    /// The registered fds, in no order; `Slot::pos` is each one's index here.
    list: Vec<RawFd>,
    /// The highest registered fd, or -1.
    max_fd: RawFd,
    /// Where the next result scan starts in `list`, so that no fd is starved.
    cursor: usize,
    /// Scratch for one poll's results, before the error check (reused).
    found: Vec<Event>,
    /// Scratch for the error check's `pollfd`s (reused).
    check: Vec<libc::pollfd>,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    interest: Interest,
    pos: usize,
}

fn empty_set() -> libc::fd_set {
    // SAFETY: fd_set is an array of integers; all zeroes is the empty set (FD_ZERO).
    unsafe { std::mem::zeroed() }
}

/// Adds or removes `fd` in `set`. `fd` must be in `0..FD_SETSIZE`, which `register`
/// guarantees for every fd that reaches here.
fn set_bit(set: &mut libc::fd_set, fd: RawFd, on: bool) {
    debug_assert!((0..FD_SETSIZE as RawFd).contains(&fd));
    if on {
        // SAFETY: `set` is a live fd_set and fd is in 0..FD_SETSIZE (checked in register).
        unsafe { libc::FD_SET(fd, set) };
    } else {
        // SAFETY: as above.
        unsafe { libc::FD_CLR(fd, set) };
    }
}

fn is_set(set: &libc::fd_set, fd: RawFd) -> bool {
    // SAFETY: `set` is a live fd_set and fd is in 0..FD_SETSIZE (checked in register).
    unsafe { libc::FD_ISSET(fd, set) }
}

/// The `timeval` for a wait: microseconds, with a nanosecond remainder rounded **up** so
/// that a wait never ends before the asked time.
fn to_timeval(t: Duration) -> libc::timeval {
    let (mut secs, mut usecs) = (t.as_secs(), t.subsec_nanos().div_ceil(1000));
    if usecs == 1_000_000 {
        secs = secs.saturating_add(1);
        usecs = 0;
    }
    if secs >= MAX_WAIT_SECS {
        (secs, usecs) = (MAX_WAIT_SECS, 0);
    }
    libc::timeval {
        tv_sec: secs as libc::time_t,
        tv_usec: usecs as libc::suseconds_t,
    }
}

impl Select {
    /// An empty poller. It owns no fd, so creating one cannot fail.
    pub fn new() -> Select {
        Select {
            read: empty_set(),
            write: empty_set(),
            slots: Vec::new(),
            list: Vec::new(),
            max_fd: -1,
            cursor: 0,
            found: Vec::new(),
            check: Vec::new(),
        }
    }

    /// How many fds are registered.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no fd is registered.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn slot(&self, fd: RawFd) -> Option<Slot> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i).copied().flatten())
    }

    fn set_interest(&mut self, fd: RawFd, interest: Interest) {
        set_bit(&mut self.read, fd, interest.is_readable());
        set_bit(&mut self.write, fd, interest.is_writable());
    }

    /// Adds ERROR (and HUP) to the fds of `found` that select reported writable, by
    /// asking poll(2) with a zero timeout, which reports `POLLERR` for a pending socket
    /// error without clearing it (`getsockopt(SO_ERROR)` would clear it).
    fn check_errors(&mut self) -> io::Result<()> {
        self.check.clear();
        self.check.extend(
            self.found
                .iter()
                .filter(|e| e.ready.is_writable())
                .map(|e| libc::pollfd {
                    fd: e.fd,
                    events: 0,
                    revents: 0,
                }),
        );
        if self.check.is_empty() {
            return Ok(());
        }
        let check = &mut self.check;
        let n = util::retry_eintr(Some(Duration::ZERO), |_| {
            // SAFETY: `check` is a live, initialised slice of `check.len()` pollfds that
            // nothing else touches during the call; the kernel writes only `revents`.
            syscall!(unsafe { libc::poll(check.as_mut_ptr(), check.len() as libc::nfds_t, 0) })
                .map(|n| n as usize)
        })?;
        if n == 0 {
            return Ok(());
        }
        // `check` holds the writable entries of `found` in order: walk both together.
        let mut flagged = self.check.iter();
        for e in self.found.iter_mut().filter(|e| e.ready.is_writable()) {
            let Some(p) = flagged.next() else { break };
            if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
                e.ready |= Ready::ERROR;
            }
            if p.revents & libc::POLLHUP != 0 {
                e.ready |= Ready::HUP;
            }
        }
        Ok(())
    }
}

impl Default for Select {
    fn default() -> Select {
        Select::new()
    }
}

/// The error for an fd select cannot watch.
fn out_of_range(fd: RawFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "fd {fd} cannot be watched by select: fds must be in 0..{FD_SETSIZE} \
             (FD_SETSIZE); use the poll or epoll backend for more fds"
        ),
    )
}

impl Poller for Select {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let index = match usize::try_from(fd) {
            Ok(i) if i < FD_SETSIZE => i,
            _ => return Err(out_of_range(fd)),
        };
        if self.slot(fd).is_some() {
            return Err(util::already_registered(fd));
        }
        // A closed fd in a set would make every later select fail with EBADF.
        sys::check_fd(fd)?;
        if self.slots.len() <= index {
            self.slots.resize(index + 1, None);
        }
        self.slots[index] = Some(Slot {
            interest,
            pos: self.list.len(),
        });
        self.list.push(fd);
        self.max_fd = self.max_fd.max(fd);
        self.set_interest(fd, interest);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let mut slot = self.slot(fd).ok_or_else(|| util::not_registered(fd))?;
        slot.interest = interest;
        self.slots[fd as usize] = Some(slot);
        self.set_interest(fd, interest);
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        let slot = self.slot(fd).ok_or_else(|| util::not_registered(fd))?;
        self.set_interest(fd, Interest::NONE);
        self.slots[fd as usize] = None;
        self.list.swap_remove(slot.pos);
        if let Some(&moved) = self.list.get(slot.pos) {
            if let Some(s) = self.slots[moved as usize].as_mut() {
                s.pos = slot.pos;
            }
        }
        if fd == self.max_fd {
            self.max_fd = self.list.iter().copied().max().unwrap_or(-1);
        }
        Ok(())
    }

    fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        let (master_read, master_write) = (self.read, self.write);
        let (mut read, mut write) = (master_read, master_write);
        let nfds = self.max_fd + 1;
        let n = util::retry_eintr(timeout, |t| {
            // The kernel rewrites the sets (and leaves them undefined on EINTR): start
            // every try from the masters.
            read = master_read;
            write = master_write;
            let mut tv = t.map(to_timeval);
            let tvp = tv
                .as_mut()
                .map_or(std::ptr::null_mut(), |tv| tv as *mut libc::timeval);
            // SAFETY: both sets and the timeval are live and writable for the call; nfds
            // is at most FD_SETSIZE because every registered fd is below it.
            syscall!(unsafe {
                libc::select(nfds, &mut read, &mut write, std::ptr::null_mut(), tvp)
            })
            .map(|n| n as usize)
        })?;
        if n == 0 {
            return Ok(0);
        }
        self.found.clear();
        let len = self.list.len();
        let start = self.cursor.min(len);
        // `n` counts set bits: an fd in both sets counts twice.
        let mut bits_left = n;
        for pos in (start..len).chain(0..start) {
            let fd = self.list[pos];
            let mut ready = Ready::EMPTY;
            if is_set(&read, fd) {
                ready |= Ready::READ;
                bits_left = bits_left.saturating_sub(1);
            }
            if is_set(&write, fd) {
                ready |= Ready::WRITE;
                bits_left = bits_left.saturating_sub(1);
            }
            if ready.is_empty() {
                continue;
            }
            if self.found.len() == events.capacity() {
                // The rest stay ready (level-triggered): start here next time.
                self.cursor = pos;
                break;
            }
            self.found.push(Event { fd, ready });
            self.cursor = pos + 1;
            if bits_left == 0 {
                break;
            }
        }
        self.check_errors()?;
        for &e in &self.found {
            events.push(e);
        }
        Ok(events.len())
    }

    fn name(&self) -> &'static str {
        "select"
    }

    fn max_fds(&self) -> Option<usize> {
        Some(FD_SETSIZE)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, OwnedFd};

    use super::*;

    #[test]
    fn timeval_rounds_up() {
        let tv = to_timeval(Duration::from_nanos(1));
        assert_eq!((tv.tv_sec, tv.tv_usec), (0, 1));
        let tv = to_timeval(Duration::from_micros(1500));
        assert_eq!((tv.tv_sec, tv.tv_usec), (0, 1500));
        let tv = to_timeval(Duration::new(2, 999_999_001));
        assert_eq!((tv.tv_sec, tv.tv_usec), (3, 0));
        let tv = to_timeval(Duration::MAX);
        assert_eq!(tv.tv_sec as u64, MAX_WAIT_SECS);
    }

    #[test]
    fn fds_out_of_range_are_refused_with_a_clear_error() {
        let mut p = Select::new();
        for fd in [-1, FD_SETSIZE as RawFd, i32::MAX] {
            let err = p.register(fd, Interest::READ).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            let msg = err.to_string();
            assert!(msg.contains(&format!("fd {fd}")), "{msg}");
            assert!(msg.contains("1024") || FD_SETSIZE != 1024, "{msg}");
        }
        assert!(p.is_empty());
        assert_eq!(p.max_fds(), Some(FD_SETSIZE));
    }

    #[test]
    fn a_real_fd_past_the_limit_is_refused() {
        // dup a pipe end to a number at the limit (F_DUPFD picks the lowest free number
        // at or above it), then make sure register refuses it and the sets are intact.
        let (r, _w) = sys::pipe().unwrap();
        // SAFETY: F_DUPFD takes an integer; r is open.
        let high = match syscall!(unsafe {
            libc::fcntl(r.as_raw_fd(), libc::F_DUPFD, FD_SETSIZE as libc::c_int)
        }) {
            // SAFETY: fcntl just returned this fd and nothing else owns it.
            Ok(fd) => unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            // RLIMIT_NOFILE at or below FD_SETSIZE: such an fd cannot exist here.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
            Err(e) => panic!("F_DUPFD: {e}"),
        };
        let mut p = Select::new();
        let err = p.register(high.as_raw_fd(), Interest::READ).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(p.is_empty() && p.max_fd == -1);
    }

    #[test]
    fn bookkeeping_survives_unregister() {
        let pipes: Vec<(OwnedFd, OwnedFd)> = (0..4).map(|_| sys::pipe().unwrap()).collect();
        let mut p = Select::new();
        for (r, _) in &pipes {
            p.register(r.as_raw_fd(), Interest::READ).unwrap();
        }
        let top = pipes.iter().map(|(r, _)| r.as_raw_fd()).max().unwrap();
        assert_eq!(p.max_fd, top);
        p.unregister(top).unwrap();
        assert!(p.max_fd < top);
        assert!(!is_set(&p.read, top));
        for (pos, &fd) in p.list.iter().enumerate() {
            assert_eq!(p.slot(fd).unwrap().pos, pos);
            assert!(is_set(&p.read, fd));
        }
        let first = pipes[0].0.as_raw_fd();
        p.modify(first, Interest::WRITE).unwrap();
        assert!(!is_set(&p.read, first) && is_set(&p.write, first));
        for (r, _) in &pipes {
            let _ = p.unregister(r.as_raw_fd());
        }
        assert!(p.is_empty() && p.max_fd == -1);
        // A closed fd: dup a pipe end high up (where parallel tests, which get the
        // lowest free numbers, will not reuse it), then close it.
        let (r, _w) = sys::pipe().unwrap();
        // SAFETY: F_DUPFD takes an integer; r is open.
        let closed = syscall!(unsafe { libc::fcntl(r.as_raw_fd(), libc::F_DUPFD, 900) }).unwrap();
        // SAFETY: fcntl just returned this fd and nothing else owns it.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(closed) });
        let err = p.register(closed, Interest::READ).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
        assert!(p.is_empty());
    }
}
