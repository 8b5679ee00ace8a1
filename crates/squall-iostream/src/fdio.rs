//! The fd edge: every syscall that moves bytes through a stream's fd (`read`, `write`
//! and `writev`, `shutdown`) and the socket queries (`SO_ERROR`, `MSG_PEEK`). Nothing
//! else in the crate touches the fd, so a byte transform (TLS: ciphertext from the fd
//! decrypted into the read buffer, plaintext writes encrypted into the queue) has one
//! place to sit between the engine and the OS.

use std::fs::File;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use socket2::SockRef;
use squall_poller::sys::{self, AppendBuf, FdIo};

use crate::state::{Inner, LAYERED, NOT_SOCKET, UNREAD_REPORT};
use crate::wqueue::queued;

/// The most slices one `writev` gets (hyper's `MAX_WRITEV_BUFS`).
const MAX_IOV: usize = 64;

impl Inner {
    /// One `read(2)` into `buf` (or, with a [`Layer`](crate::Layer), the layer's read).
    // Inlined with the syscall, as `IoStream::poll_read_buf`.
    #[inline(always)]
    pub(crate) fn read_syscall(self: &Rc<Self>, buf: &mut [u8]) -> io::Result<usize> {
        self.clear(UNREAD_REPORT);
        if self.has(LAYERED) {
            return self.layer_read(buf);
        }
        let file = self.file.borrow();
        match file.as_ref() {
            Some(f) => self.on_fd(f, |io| io.read_some(buf)),
            None => Ok(0),
        }
    }

    /// One `read(2)` of up to `want` bytes appended to `dst`, straight into its spare
    /// capacity, unzeroed (reserved first if it is short: see [`FdIo::read_append`]).
    /// Only for a stream without a [`Layer`](crate::Layer), whose reads are the fd's.
    #[inline(always)]
    pub(crate) fn read_append<B: AppendBuf>(&self, dst: &mut B, want: usize) -> io::Result<usize> {
        debug_assert!(!self.has(LAYERED));
        self.clear(UNREAD_REPORT);
        let file = self.file.borrow();
        match file.as_ref() {
            Some(f) => self.on_fd(f, |io| io.read_append(dst, want)),
            None => Ok(0),
        }
    }

    /// Runs `call` with the fd's view: a socket's (`recv`, `send`) until the fd says it
    /// is not a socket, then, for this call and every later one, a plain fd's (`read`,
    /// `write`).
    #[inline(always)]
    fn on_fd<T>(&self, f: &File, call: impl FnMut(FdIo<'_>) -> io::Result<T>) -> io::Result<T> {
        let mut not_socket = self.has(NOT_SOCKET);
        let res = sys::on_fd(f.as_fd(), &mut not_socket, call);
        if not_socket {
            self.set(NOT_SOCKET);
        }
        res
    }

    /// One read of up to `want` bytes into a buffer of their own ([`read_append`]
    /// a new `Vec`). Only for a stream without a [`Layer`](crate::Layer).
    ///
    /// [`read_append`]: Inner::read_append
    pub(crate) fn read_block(&self, want: usize) -> io::Result<BytesMut> {
        let mut block = Vec::new();
        self.read_append(&mut block, want)?;
        // Both conversions take the allocation over (the `Bytes` is its only owner):
        // no copy.
        Ok(BytesMut::from(Bytes::from(block)))
    }

    /// One `write` (one chunk queued) or `writev` (up to [`MAX_IOV`] chunks) of the
    /// front of the write queue: what it wrote, and how many bytes it offered. `None`
    /// once the fd is closed.
    pub(crate) fn write_fd(&self) -> Option<(io::Result<usize>, usize)> {
        let file = self.file.borrow();
        let file = file.as_ref()?;
        let wbuf = self.wbuf.borrow();
        Some(match queued(&wbuf) {
            // The usual case (a server's batch of responses is one chunk): a
            // plain write, without filling an array of MAX_IOV slices first.
            [only] => (self.on_fd(file, |io| io.write_some(only)), only.len()),
            chunks => {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let mut n = 0;
                let mut total = 0;
                for chunk in chunks.iter().take(MAX_IOV) {
                    slices[n] = IoSlice::new(chunk);
                    total += chunk.len();
                    n += 1;
                }
                let slices = &slices[..n];
                (FdIo::new(file.as_fd()).write_vectored_some(slices), total)
            }
        })
    }

    /// One `write(2)` of `data`, straight from the caller's buffer. `None` once the fd
    /// is closed.
    #[inline(always)]
    pub(crate) fn write_slice(&self, data: &[u8]) -> Option<io::Result<usize>> {
        let file = self.file.borrow();
        let file = file.as_ref()?;
        Some(self.on_fd(file, |io| io.write_some(data)))
    }

    /// `shutdown(SHUT_WR)`. `None` once the fd is closed.
    pub(crate) fn shutdown_fd(&self) -> Option<io::Result<()>> {
        let file = self.file.borrow();
        let file = file.as_ref()?;
        Some(SockRef::from(file).shutdown(Shutdown::Write))
    }

    pub(crate) fn take_socket_error(&self) -> Option<io::Error> {
        let file = self.file.borrow();
        let file = file.as_ref()?;
        match SockRef::from(file).take_error() {
            Ok(e) => e,
            Err(e) => Some(e),
        }
    }

    /// `MSG_PEEK` one byte: `Ok(0)` when the peer has closed with nothing left to read,
    /// the error of a reset peer, `ENOTSOCK` for a pipe.
    pub(crate) fn peek(&self) -> io::Result<usize> {
        let file = self.file.borrow();
        let file = file
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let mut b = [MaybeUninit::<u8>::uninit(); 1];
        SockRef::from(file).peek(&mut b)
    }
}
