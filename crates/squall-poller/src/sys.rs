//! Small fd helpers shared by the backends, the streams and tests. Everything here is
//! safe to call; the `unsafe` stays inside.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

/// A [`Read`] and [`Write`] view of a borrowed fd, for the calls that move a stream's
/// bytes: a read ([`read_some`](Self::read_some), or
/// [`read_append`](Self::read_append) into a `Vec`'s spare capacity), a write
/// ([`write_some`](Self::write_some)) and a gathered write
/// ([`write_vectored_some`](Self::write_vectored_some), `writev`).
///
/// On Linux and Android each is the system call itself, not the C library's wrapper.
/// glibc's `read`, `write` and `writev` are thread-cancellation points: in any process
/// with a second thread each call switches the thread's cancellation type on and off
/// around the syscall, two atomic read-modify-writes that cost as much as the rest of
/// the user-side work of a small request. Rust never cancels a thread, so that work
/// buys nothing. Elsewhere the view calls the C library as `std::fs::File` does.
///
/// A view made with [`socket`](Self::socket) reads with `recv` and writes with `send`
/// (with `MSG_NOSIGNAL` where it exists) instead of `read` and `write`: on Linux those
/// skip the file layer (the position lock, the permission and notification hooks),
/// about 2% of a small request's CPU. On an fd that is not a socket they fail with
/// `ENOTSOCK` ([`is_not_socket`]); the caller then goes on with a [`new`](Self::new)
/// view.
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
/// use squall_poller::sys::FdIo;
///
/// let (a, b) = UnixStream::pair()?;
/// FdIo::socket(a.as_fd()).write_all(b"ping")?;
/// let mut got = [0u8; 4];
/// FdIo::new(b.as_fd()).read_exact(&mut got)?;
/// assert_eq!(&got, b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FdIo<'a> {
    fd: BorrowedFd<'a>,
    socket: bool,
}

/// The most bytes one call moves: POSIX leaves larger counts to the implementation.
const MAX_LEN: usize = isize::MAX as usize;
/// The most slices one `writev` takes (Linux's `UIO_MAXIOV`, POSIX's `IOV_MAX` floor
/// is 16 but every supported OS takes 1,024).
const MAX_IOV: usize = 1024;

/// A growable byte buffer that [`FdIo::read_append`] reads into, straight into its
/// spare capacity: `Vec<u8>`, and `bytes::BytesMut` with the `bytes` feature. Sealed:
/// the read trusts [`commit`](AppendBuf::commit) to extend the buffer over exactly
/// the bytes the kernel wrote.
pub trait AppendBuf: sealed::Sealed {
    /// Make room for at least `n` more bytes.
    fn reserve_room(&mut self, n: usize);
    /// The spare capacity, after the buffer's bytes.
    fn spare(&mut self) -> &mut [std::mem::MaybeUninit<u8>];
    /// Extend the buffer over the first `n` bytes of its spare capacity.
    ///
    /// # Safety
    ///
    /// Those `n` bytes must have been written (they must fit in the spare capacity).
    unsafe fn commit(&mut self, n: usize);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for Vec<u8> {}
    #[cfg(feature = "bytes")]
    impl Sealed for bytes::BytesMut {}
}

/// `AppendBuf` for a type with `reserve`, `spare_capacity_mut` and `set_len` of its own
/// (`Vec<u8>`'s and `BytesMut`'s, which mean the same).
macro_rules! append_buf {
    ($(#[$attr:meta])* $t:ty) => {
        $(#[$attr])*
        impl AppendBuf for $t {
            #[inline(always)]
            fn reserve_room(&mut self, n: usize) {
                self.reserve(n);
            }
            #[inline(always)]
            fn spare(&mut self) -> &mut [std::mem::MaybeUninit<u8>] {
                self.spare_capacity_mut()
            }
            #[inline(always)]
            unsafe fn commit(&mut self, n: usize) {
                // SAFETY: the caller wrote the first `n` bytes of the spare capacity.
                unsafe { self.set_len(self.len() + n) }
            }
        }
    };
}

append_buf!(Vec<u8>);
append_buf!(
    #[cfg(feature = "bytes")]
    bytes::BytesMut
);

/// Whether `e` says the fd is not a socket (`ENOTSOCK`): a [`FdIo::socket`] view was
/// used on a pipe or a file.
pub fn is_not_socket(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSOCK)
}

/// Runs `call` with `fd`'s view: a socket's ([`FdIo::socket`]) while `not_socket` is
/// false, a plain fd's ([`FdIo::new`]) once it is. When the socket view meets an fd
/// that is not a socket, `not_socket` is set, for this call (made again) and every
/// later one: a stream learns what its fd is from its first read or write.
///
/// ```
/// use std::os::fd::AsFd;
/// use squall_poller::sys::{self, on_fd};
///
/// let (r, w) = sys::pipe()?;
/// let mut not_socket = false;
/// assert_eq!(on_fd(w.as_fd(), &mut not_socket, |io| io.write_some(b"x"))?, 1);
/// assert!(not_socket, "a pipe");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `call`'s error, `ENOTSOCK` aside.
// Inlined with `call`'s syscall: a stream's read and write return from the syscall
// straight into the caller's frame (a frame between them is a mispredicted return).
#[inline(always)]
pub fn on_fd<T, F: FnMut(FdIo<'_>) -> io::Result<T>>(
    fd: BorrowedFd<'_>,
    not_socket: &mut bool,
    mut call: F,
) -> io::Result<T> {
    let res = call(FdIo {
        fd,
        socket: !*not_socket,
    });
    match &res {
        Err(e) if !*not_socket && is_not_socket(e) => as_plain_fd(fd, not_socket, &mut call),
        _ => res,
    }
}

/// [`on_fd`]'s way out: the call again, on a plain fd's view. Out of line, so that the
/// common path holds one copy of the call.
#[cold]
#[inline(never)]
fn as_plain_fd<T, F: FnMut(FdIo<'_>) -> io::Result<T>>(
    fd: BorrowedFd<'_>,
    not_socket: &mut bool,
    call: &mut F,
) -> io::Result<T> {
    *not_socket = true;
    call(FdIo::new(fd))
}

impl<'a> FdIo<'a> {
    /// The view of any fd: `read(2)` and `write(2)`.
    pub fn new(fd: BorrowedFd<'a>) -> FdIo<'a> {
        FdIo { fd, socket: false }
    }

    /// The view of a socket: `recv(2)` and `send(2)`.
    pub fn socket(fd: BorrowedFd<'a>) -> FdIo<'a> {
        FdIo { fd, socket: true }
    }

    /// One read into `buf`: how many bytes came (0 at end of file).
    ///
    /// # Errors
    ///
    /// The OS error, `WouldBlock` included; `Interrupted` is returned, not retried.
    #[inline]
    pub fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(MAX_LEN);
        raw::read(self.fd.as_raw_fd(), buf.as_mut_ptr(), len, self.socket)
    }

    /// One read of up to `want` bytes appended to `buf`, straight into its spare
    /// capacity (reserved first): how many bytes came (0 at end of file). The bytes
    /// are not zeroed before the kernel writes them, so a large read costs no more
    /// than the syscall. `buf` is a `Vec<u8>`, or with the `bytes` feature a
    /// `bytes::BytesMut` ([`AppendBuf`]).
    ///
    /// # Errors
    ///
    /// The OS error, `WouldBlock` included; `Interrupted` is returned, not retried.
    /// `buf` is unchanged then, but for its capacity.
    #[inline(always)]
    pub fn read_append<B: AppendBuf>(&self, buf: &mut B, want: usize) -> io::Result<usize> {
        let want = want.min(MAX_LEN);
        buf.reserve_room(want);
        let spare = buf.spare();
        let n = raw::read(
            self.fd.as_raw_fd(),
            spare.as_mut_ptr().cast(),
            want.min(spare.len()),
            self.socket,
        )?;
        // SAFETY: the read returned `n`, so it initialised the first `n` bytes of the
        // spare capacity (it writes no more than the `want` it was given, which fits).
        unsafe { buf.commit(n) };
        Ok(n)
    }

    /// One write of `buf`: how many bytes the fd took.
    ///
    /// # Errors
    ///
    /// The OS error, `WouldBlock` included; `Interrupted` is returned, not retried.
    #[inline]
    pub fn write_some(&self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len().min(MAX_LEN);
        raw::write(self.fd.as_raw_fd(), buf.as_ptr(), len, self.socket)
    }

    /// One `writev(2)` of up to 1,024 of `bufs` (on a socket too: it is one call
    /// either way): how many bytes the fd took.
    ///
    /// # Errors
    ///
    /// The OS error, `WouldBlock` included; `Interrupted` is returned, not retried.
    #[inline]
    pub fn write_vectored_some(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = bufs.len().min(MAX_IOV);
        // `IoSlice` is ABI-compatible with `struct iovec` on Unix (its documented
        // layout).
        raw::writev(self.fd.as_raw_fd(), bufs.as_ptr().cast(), n)
    }
}

impl Read for FdIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_some(buf)
    }
}

impl Write for FdIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_some(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_some(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The calls, each returning the count or the OS error.
mod raw {
    use std::io;
    use std::os::fd::RawFd;

    crate::cfg_not_epoll! {
        /// A syscall's `-1` as the OS error, anything else as a count.
        fn count(res: isize) -> io::Result<usize> {
            if res < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(res as usize)
            }
        }
    }

    crate::cfg_epoll! {
        /// `syscall(2)`: the raw call `nr` with up to six arguments, its result as the
        /// kernel returns it.
        ///
        /// On x86-64 Linux the `syscall` instruction itself, inlined where the call is
        /// made, rather than the C library's `syscall` wrapper: the kernel's network
        /// path runs calls deeper than the CPU's return-address stack, so after the
        /// syscall every return the user side makes until its next call is
        /// mispredicted (about 8 ns each, measured); the wrapper's own return was one of
        /// them on every read and write. The result is `-errno` on failure.
        ///
        /// # Safety
        ///
        /// The call's own contract: every pointer among `args` must be valid for what
        /// the syscall does with it for the duration of the call, and every fd open.
        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        unsafe fn syscall6(nr: libc::c_long, args: [usize; 6]) -> isize {
            let ret: isize;
            // SAFETY: the Linux x86-64 system-call convention: the number in rax, the
            // arguments in rdi, rsi, rdx, r10, r8 and r9, the result in rax; the kernel
            // clobbers rcx and r11 and nothing else, and does not touch the user stack.
            // The memory the call reads or writes is the caller's contract (above).
            unsafe {
                std::arch::asm!(
                    "syscall",
                    inlateout("rax") nr as isize => ret,
                    in("rdi") args[0],
                    in("rsi") args[1],
                    in("rdx") args[2],
                    in("r10") args[3],
                    in("r8") args[4],
                    in("r9") args[5],
                    lateout("rcx") _,
                    lateout("r11") _,
                    options(nostack, preserves_flags),
                );
            }
            ret
        }

        /// `syscall(2)` through the C library (architectures without the inline form),
        /// its result as `-errno` on failure like the inline form's.
        ///
        /// # Safety
        ///
        /// As the x86-64 form's.
        #[cfg(not(target_arch = "x86_64"))]
        #[inline(always)]
        unsafe fn syscall6(nr: libc::c_long, args: [usize; 6]) -> isize {
            // SAFETY: the caller keeps the call's contract (see the x86-64 form).
            let res = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) } as isize;
            if res < 0 {
                -(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as isize)
            } else {
                res
            }
        }

        /// A raw syscall's result: `-errno` as the OS error, anything else as a count.
        #[inline(always)]
        fn raw_count(res: isize) -> io::Result<usize> {
            if res < 0 {
                Err(io::Error::from_raw_os_error(-res as i32))
            } else {
                Ok(res as usize)
            }
        }

        #[inline(always)]
        pub(super) fn read(fd: RawFd, buf: *mut u8, len: usize, socket: bool) -> io::Result<usize> {
            let (fd, buf) = (fd as usize, buf as usize);
            // SAFETY: the caller passes a buffer valid for writes of `len` bytes for the
            // call and an fd it borrows (open for the call); the kernel writes at most
            // `len` bytes. The raw syscalls have the wrappers' contracts minus
            // cancellation; `recvfrom` with no address buffer is `recv`.
            raw_count(unsafe {
                if socket {
                    syscall6(libc::SYS_recvfrom, [fd, buf, len, 0, 0, 0])
                } else {
                    syscall6(libc::SYS_read, [fd, buf, len, 0, 0, 0])
                }
            })
        }

        #[inline(always)]
        pub(super) fn write(fd: RawFd, buf: *const u8, len: usize, socket: bool) -> io::Result<usize> {
            let (fd, buf) = (fd as usize, buf as usize);
            // SAFETY: the caller passes a buffer valid for reads of `len` bytes for the
            // call and a borrowed, open fd; the kernel only reads the buffer. `sendto`
            // with no address is `send`.
            raw_count(unsafe {
                if socket {
                    syscall6(libc::SYS_sendto, [fd, buf, len, libc::MSG_NOSIGNAL as usize, 0, 0])
                } else {
                    syscall6(libc::SYS_write, [fd, buf, len, 0, 0, 0])
                }
            })
        }

        #[inline(always)]
        pub(super) fn writev(fd: RawFd, iov: *const libc::iovec, n: usize) -> io::Result<usize> {
            // SAFETY: the caller passes `n` iovecs, each describing memory valid for
            // reads for the call, and a borrowed, open fd; the kernel only reads them.
            raw_count(unsafe { syscall6(libc::SYS_writev, [fd as usize, iov as usize, n, 0, 0, 0]) })
        }
    }

    crate::cfg_not_epoll! {
        pub(super) fn read(fd: RawFd, buf: *mut u8, len: usize, socket: bool) -> io::Result<usize> {
            // SAFETY: the caller passes a buffer valid for writes of `len` bytes for the
            // call and a borrowed, open fd; the kernel writes at most `len` bytes.
            count(unsafe {
                if socket {
                    libc::recv(fd, buf.cast(), len, 0)
                } else {
                    libc::read(fd, buf.cast(), len)
                }
            })
        }

        pub(super) fn write(fd: RawFd, buf: *const u8, len: usize, socket: bool) -> io::Result<usize> {
            // SAFETY: the caller passes a buffer valid for reads of `len` bytes for the
            // call and a borrowed, open fd; the kernel only reads the buffer.
            count(unsafe {
                if socket {
                    libc::send(fd, buf.cast(), len, 0)
                } else {
                    libc::write(fd, buf.cast(), len)
                }
            })
        }

        pub(super) fn writev(fd: RawFd, iov: *const libc::iovec, n: usize) -> io::Result<usize> {
            // SAFETY: the caller passes `n` iovecs, each describing memory valid for
            // reads for the call, and a borrowed, open fd; the kernel only reads them.
            count(unsafe { libc::writev(fd, iov, n as libc::c_int) })
        }
    }
}

/// Asks the CPU to start loading the cache line at `p` (and nothing else): a hint for a
/// caller that knows which memory it is about to touch, so that the load's wait overlaps
/// other work instead of stalling it. A server with a thousand connections touches a
/// few lines of each connection's state per request, lines that the requests of the
/// others (and the kernel's work for them) have evicted since; loaded when they are
/// needed, each is a wait of its own.
///
/// Nothing observable happens: no memory is read into the program, `p` may point
/// anywhere (dangling, null, unmapped) and the instruction never faults. On a
/// processor without a prefetch instruction this does nothing.
///
/// ```
/// let v = vec![1u8; 4096];
/// squall_poller::sys::prefetch(v.as_ptr().wrapping_add(2048));
/// squall_poller::sys::prefetch(std::ptr::null::<u8>());
/// ```
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only hints the cache; it reads nothing into the program and
    // does not fault on any address. The intrinsic is `unsafe` only for its
    // `target_feature` (SSE, which every x86-64 processor has).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM only hints the cache; it reads nothing into the program, does not
    // fault on any address, and touches no register but its operand.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// How many connections (or registered fds) a thread serves before [`prefetch`]ing
/// their state pays: below this, what their requests touch stays in the CPU's caches
/// between requests, and the hints would cost instructions for nothing. (Measured on
/// squall's HTTP server: at 64 keep-alive connections the hints added some 150
/// instructions to a request's 3,900 and saved no time; at 1,024 they took a sixth off
/// its user time per request.)
pub const PREFETCH_FROM: usize = 256;

/// [`prefetch`] for each cache line of the `size` bytes at `p` (64-byte lines).
#[inline(always)]
pub fn prefetch_bytes<T>(p: *const T, size: usize) {
    let p = p.cast::<u8>();
    let mut off = 0;
    while off < size {
        prefetch(p.wrapping_add(off));
        off += 64;
    }
    // The last line, when `p` is not on a line's start.
    if size > 0 {
        prefetch(p.wrapping_add(size - 1));
    }
}

/// [`prefetch_bytes`] for `size` bytes of a value behind an `Rc` or `Arc` (`value` from
/// `Rc::as_ptr`, `Weak::as_ptr`, …), and the allocation's two reference counts just
/// before it, which an upgrade or a clone touches first. Like every hint here, a wrong
/// guess about the layout costs a wasted prefetch, nothing else.
#[inline(always)]
pub fn prefetch_counted<T: ?Sized>(value: *const T, size: usize) {
    const COUNTS: usize = 2 * std::mem::size_of::<usize>();
    prefetch_bytes(value.cast::<u8>().wrapping_sub(COUNTS), COUNTS + size);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    /// Both views of an fd: every test runs with each.
    fn views(fd: BorrowedFd<'_>) -> [FdIo<'_>; 2] {
        [FdIo::new(fd), FdIo::socket(fd)]
    }

    #[test]
    fn writev_sends_every_slice_in_order() {
        let (a, b) = UnixStream::pair().unwrap();
        let parts = [
            IoSlice::new(b"one "),
            IoSlice::new(b""),
            IoSlice::new(b"two"),
        ];
        for (w, r) in views(a.as_fd()).into_iter().zip(views(b.as_fd())) {
            assert_eq!(w.write_vectored_some(&parts).unwrap(), 7);
            let mut got = [0u8; 16];
            let n = r.read_some(&mut got).unwrap();
            assert_eq!(&got[..n], b"one two");
        }
    }

    #[test]
    fn an_empty_non_blocking_read_is_would_block_and_a_closed_peer_is_end_of_file() {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut got = [0u8; 4];
        for r in views(b.as_fd()) {
            let err = r.read_some(&mut got).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        }
        drop(a);
        for r in views(b.as_fd()) {
            assert_eq!(r.read_some(&mut got).unwrap(), 0);
        }
    }

    #[test]
    fn read_append_adds_what_came_after_what_was_there() {
        let (a, b) = UnixStream::pair().unwrap();
        for (w, r) in views(a.as_fd()).into_iter().zip(views(b.as_fd())) {
            w.write_some(b"spare").unwrap();
            let mut buf = b"kept ".to_vec();
            assert_eq!(r.read_append(&mut buf, 64).unwrap(), 5);
            assert_eq!(buf, b"kept spare");
            assert!(buf.capacity() >= 5 + 64);
            // Fewer wanted than there is: the rest stays in the socket.
            w.write_some(b"abcdef").unwrap();
            let mut short = Vec::new();
            assert_eq!(r.read_append(&mut short, 2).unwrap(), 2);
            assert_eq!(short, b"ab");
            b.set_nonblocking(true).unwrap();
            let mut rest = Vec::new();
            assert_eq!(r.read_append(&mut rest, 64).unwrap(), 4);
            let err = r.read_append(&mut rest, 64).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            assert_eq!(rest, b"cdef");
            b.set_nonblocking(false).unwrap();
        }
    }

    #[test]
    fn os_errors_keep_their_errno() {
        let (a, b) = UnixStream::pair().unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        for w in views(a.as_fd()) {
            let err = w.write_some(b"late").unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
        }
        // The view is the same calls behind the std traits.
        b.shutdown(std::net::Shutdown::Read).unwrap();
        let mut view = FdIo::new(b.as_fd());
        assert_eq!(view.read(&mut [0u8; 4]).unwrap(), 0);
    }

    #[test]
    fn a_socket_view_of_a_pipe_says_so_and_a_plain_view_works() {
        let (r, w) = pipe().unwrap();
        let err = FdIo::socket(w.as_fd()).write_some(b"x").unwrap_err();
        assert!(is_not_socket(&err), "{err:?}");
        assert_eq!(FdIo::new(w.as_fd()).write_some(b"x").unwrap(), 1);
        let mut got = [0u8; 1];
        let err = FdIo::socket(r.as_fd()).read_some(&mut got).unwrap_err();
        assert!(is_not_socket(&err), "{err:?}");
        assert_eq!(FdIo::new(r.as_fd()).read_some(&mut got).unwrap(), 1);
    }
}
