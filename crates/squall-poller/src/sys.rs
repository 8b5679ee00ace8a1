//! Small fd helpers shared by the backends and by tests. Everything here is safe to
//! call; the `unsafe` stays inside.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
///
/// # Errors
///
/// The OS error, for instance `EMFILE`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    raw_pipe(&mut fds)?;
    // SAFETY: pipe just returned two fresh fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

crate::cfg_accept4! {
    fn raw_pipe(fds: &mut [RawFd; 2]) -> io::Result<()> {
        // SAFETY: fds points at two writable c_ints, as pipe2 requires.
        crate::syscall!(unsafe {
            libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC)
        })?;
        Ok(())
    }
}

crate::cfg_not_accept4! {
    /// No `pipe2` (Apple's systems): create, then set the flags (the window is harmless for the
    /// loop's own waker, which is created before any fork).
    fn raw_pipe(fds: &mut [RawFd; 2]) -> io::Result<()> {
        // SAFETY: fds points at two writable c_ints, as pipe requires.
        crate::syscall!(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        for &fd in fds.iter() {
            let set = set_nonblocking(fd).and_then(|()| {
                // SAFETY: F_SETFD takes an integer argument; fd was just created here.
                crate::syscall!(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
            });
            if let Err(e) = set {
                // SAFETY: both fds were just created here and are not shared yet.
                unsafe {
                    libc::close(fds[0]);
                    libc::close(fds[1]);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Puts `fd` in non-blocking mode.
///
/// # Errors
///
/// The OS error (`EBADF` for a closed fd).
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer; a bad fd is reported as EBADF.
    let flags = crate::syscall!(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: F_SETFL takes an integer argument; a bad fd is reported as EBADF.
        crate::syscall!(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    }
    Ok(())
}

/// Checks that `fd` is open, with one `fcntl(F_GETFD)`.
///
/// Backends whose kernel does not check fds at registration (select, poll) call it in
/// `register`, so that a bad fd fails there, as the [`Poller`](crate::Poller) contract
/// says, instead of breaking (select: `EBADF` for the whole wait) or haunting (poll:
/// `POLLNVAL` on every wait) each later poll.
///
/// # Errors
///
/// `EBADF` (as an [`io::Error`]) if `fd` is not an open fd.
pub fn check_fd(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD takes no argument; a bad fd is reported as EBADF.
    crate::syscall!(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    Ok(())
}
