//! The one FFI call this crate makes: `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`, so
//! an accepted connection costs one syscall (socket2's `accept` would add an `fcntl`).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use socket2::SockAddr;
use squall_poller::syscall;

squall_poller::cfg_accept4! {
    /// Accepts one connection from the listening socket `fd`: a non-blocking, close-on-exec
    /// fd and the peer's address.
    pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SockAddr)> {
        // SAFETY: `try_init` hands the closure a zeroed sockaddr_storage and its length,
        // which accept4 fills in (never past `len`) before `try_init` builds the SockAddr.
        let (raw, addr) = unsafe {
            SockAddr::try_init(|storage, len| {
                syscall!(libc::accept4(
                    fd,
                    storage.cast(),
                    len,
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
                ))
            })
        }?;
        // SAFETY: accept4 just returned this fd; nothing else owns it.
        Ok((unsafe { OwnedFd::from_raw_fd(raw) }, addr))
    }
}

squall_poller::cfg_not_accept4! {
    /// Apple has no `accept4`: accept, then set the flags.
    pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SockAddr)> {
        // SAFETY: as above, with accept.
        let (raw, addr) = unsafe {
            SockAddr::try_init(|storage, len| syscall!(libc::accept(fd, storage.cast(), len)))
        }?;
        // SAFETY: accept just returned this fd; nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = socket2::SockRef::from(&owned);
        sock.set_nonblocking(true)?;
        sock.set_cloexec(true)?;
        Ok((owned, addr))
    }
}
