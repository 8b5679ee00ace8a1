//! The little epoll wrapper that the floor and the load generator share: raw libc,
//! level-triggered, a `u64` key per fd.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use squall_poller::syscall;

/// Readable (`EPOLLIN`).
pub const IN: u32 = libc::EPOLLIN as u32;
/// Writable (`EPOLLOUT`).
pub const OUT: u32 = libc::EPOLLOUT as u32;
/// Hang-up or error (`EPOLLHUP | EPOLLERR`), always reported.
pub const HUP_ERR: u32 = (libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// A level-triggered epoll instance and its event buffer.
#[derive(Debug)]
pub struct Epoll {
    epfd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// A new epoll instance that returns at most `capacity` events per wait.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_create1`.
    pub fn new(capacity: usize) -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag word and has no memory preconditions.
        let fd = syscall!(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: epoll_create1 just returned this fd and nothing else owns it.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll {
            epfd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, key: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: key };
        // SAFETY: `ev` is a live epoll_event for the duration of the call; the epoll fd
        // is owned by self; a bad `fd` is reported by the kernel as EBADF.
        syscall!(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Registers `fd` for `events` (level-triggered) under `key`.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl` (`EEXIST`, `EBADF`, `ENOMEM`).
    pub fn add(&self, fd: RawFd, events: u32, key: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, key)
    }

    /// Changes the interest of a registered `fd`.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl` (`ENOENT`, `EBADF`).
    pub fn modify(&self, fd: RawFd, events: u32, key: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, key)
    }

    /// Removes `fd`.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl` (`ENOENT`, `EBADF`).
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits at most `timeout` (`None`: for ever) and returns the ready `(key, events)`
    /// pairs. An interrupted wait returns no events.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_wait` other than `EINTR`.
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
    ) -> io::Result<impl Iterator<Item = (u64, u32)> + '_> {
        let ms = squall_poller::util::timeout_millis(timeout);
        // SAFETY: `events` is a live buffer of `len` epoll_events owned by self, and the
        // epoll fd is owned by self.
        let n = match syscall!(unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                ms,
            )
        }) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        Ok(self.events[..n].iter().map(|e| {
            let ev = *e;
            (ev.u64, ev.events)
        }))
    }
}
