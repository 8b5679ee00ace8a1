//! The loop's own wake-up fd: an eventfd on Linux, a non-blocking pipe elsewhere.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// A wake-up fd the IOLoop registers with its poller like any other fd.
///
/// Tornado's `Waker` (the self-pipe in `tornado/platform/posix.py`). [`wake`](Waker::wake)
/// makes the fd readable and may be called from any thread, and from a signal handler:
/// it is a single `write(2)`, which is async-signal-safe, and it never fails on a full
/// pipe or a saturated counter (the fd is already readable then).
/// [`drain`](Waker::drain) makes it unreadable again. Both ends are non-blocking and
/// close-on-exec.
#[derive(Debug)]
pub struct Waker {
    read: OwnedFd,
    /// The pipe's write end; `None` for an eventfd, whose one fd serves both.
    write: Option<OwnedFd>,
}

impl Waker {
    /// Creates a waker.
    ///
    /// # Errors
    ///
    /// The OS error if the eventfd or pipe cannot be created (for instance `EMFILE`).
    pub fn new() -> io::Result<Waker> {
        new_waker()
    }

    /// The fd to register for READ.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Makes the fd readable. Async-signal-safe; never blocks.
    ///
    /// # Errors
    ///
    /// Only an unexpected OS error; a full pipe or counter counts as success, since the
    /// fd is already readable.
    pub fn wake(&self) -> io::Result<()> {
        let fd = self.write.as_ref().unwrap_or(&self.read).as_raw_fd();
        let one: u64 = 1;
        // SAFETY: `one` lives across the call and is 8 bytes long, as eventfd requires;
        // a pipe takes any length. `fd` is owned by self and open.
        let res = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
        if res >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock => Ok(()),
            io::ErrorKind::Interrupted => self.wake(),
            _ => Err(err),
        }
    }

    /// Consumes every pending wake-up so the fd is no longer readable.
    ///
    /// # Errors
    ///
    /// Only an unexpected OS error; "nothing to read" is success.
    pub fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: buf is a live, writable 64-byte buffer; the fd is owned by self.
            let res =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if res > 0 {
                // An eventfd is drained by one read; a pipe may hold more.
                if self.write.is_none() {
                    return Ok(());
                }
                continue;
            }
            if res == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(()),
                io::ErrorKind::Interrupted => continue,
                _ => return Err(err),
            }
        }
    }
}

impl AsFd for Waker {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

impl AsRawFd for Waker {
    fn as_raw_fd(&self) -> RawFd {
        self.fd()
    }
}

// An eventfd where the kernel has one (the epoll systems, squall-poller's `os` list),
// a pipe elsewhere.
crate::cfg_epoll! {
    fn new_waker() -> io::Result<Waker> {
        use std::os::fd::FromRawFd;
        // SAFETY: eventfd takes two integers and has no memory preconditions.
        let fd = crate::syscall!(unsafe {
            libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)
        })?;
        // SAFETY: eventfd just returned this fd and nothing else owns it.
        let read = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Waker { read, write: None })
    }
}

crate::cfg_not_epoll! {
    fn new_waker() -> io::Result<Waker> {
        let (read, write) = crate::sys::pipe()?;
        Ok(Waker {
            read,
            write: Some(write),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n == 1 && p.revents & libc::POLLIN != 0
    }

    #[test]
    fn wake_then_drain() {
        let w = Waker::new().unwrap();
        assert!(!readable(w.fd()));
        for _ in 0..100_000 {
            w.wake().unwrap();
        }
        assert!(readable(w.fd()));
        w.drain().unwrap();
        assert!(!readable(w.fd()));
        w.drain().unwrap();
    }

    #[test]
    fn wake_from_other_threads() {
        let w = std::sync::Arc::new(Waker::new().unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let w = w.clone();
                std::thread::spawn(move || w.wake().unwrap())
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(readable(w.fd()));
    }
}
