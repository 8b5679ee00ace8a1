//! Connecting: a non-blocking `connect`, the wait for the socket to become writable,
//! and `SO_ERROR` (Tornado's `IOStream.connect` and `_handle_connect`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use socket2::{Domain, SockAddr, Socket, Type};
use squall_ioloop::{Interest, IoLoop};

use crate::error::{CloseCause, StreamError};
use crate::state::*;
use crate::stream::{no_loop, IoStream};

impl IoStream {
    /// Connects to `addr` and resolves to the connected stream. Tornado's
    /// `IOStream.connect`: a non-blocking `connect`, then a wait for the socket to become
    /// writable, then `SO_ERROR`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] whose cause carries the real OS error: a refused
    /// connection gives [`CloseCause::Io`] with `ECONNREFUSED`
    /// ([`StreamError::io_error`]).
    pub async fn connect(addr: SocketAddr) -> Result<IoStream, StreamError> {
        let stream = IoStream::start_connect(addr)?;
        stream.wait_connected().await?;
        Ok(stream)
    }

    /// Starts a non-blocking connect to `addr` and returns the stream at once, still
    /// connecting. Writes are queued until the connection is up (Tornado's
    /// `test_write_while_connecting`); [`wait_connected`](IoStream::wait_connected)
    /// resolves when it is.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] with the OS error if the socket cannot be created or the
    /// connect fails at once; `Other` (as [`CloseCause::Io`]) if no loop is current.
    pub fn start_connect(addr: SocketAddr) -> Result<IoStream, StreamError> {
        IoStream::start_connect_from(addr, None)
    }

    /// As [`start_connect`](IoStream::start_connect), from a chosen local address:
    /// the socket is bound to `source` before it connects (Tornado's `source_ip` and
    /// `source_port`; port 0 lets the OS pick the port, an unspecified IP the
    /// interface).
    ///
    /// # Errors
    ///
    /// As [`start_connect`](IoStream::start_connect), and the OS error of `bind`
    /// (`EADDRNOTAVAIL` for an address this host does not have, `EADDRINUSE` for a port
    /// in use, `EINVAL`/`EAFNOSUPPORT` for a source of the other family).
    pub fn start_connect_from(
        addr: SocketAddr,
        source: Option<SocketAddr>,
    ) -> Result<IoStream, StreamError> {
        let io_err = |e: io::Error| StreamError::Closed(CloseCause::Io(Arc::new(e)));
        let io_loop = IoLoop::current().ok_or_else(|| io_err(no_loop()))?;
        let socket = nonblocking_tcp_socket(Domain::for_address(addr)).map_err(io_err)?;
        if let Some(source) = source {
            socket.bind(&SockAddr::from(source)).map_err(io_err)?;
        }
        let connecting = match socket.connect(&SockAddr::from(addr)) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => return Err(io_err(e)),
        };
        let stream = IoStream::from_nonblocking(&io_loop, OwnedFd::from(socket));
        let inner = &stream.inner;
        inner.set(SOCKET);
        if connecting {
            inner.clear(WRITABLE);
            inner.set(CONNECTING);
            if let Err(e) = inner.arm(Interest::WRITE) {
                inner.close_with(CloseCause::Io(Arc::new(e)));
                return Err(stream.closed_error());
            }
        }
        Ok(stream)
    }

    /// Resolves once a connect started by [`start_connect`](IoStream::start_connect) has
    /// finished (at once for any other stream).
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] with the connect's OS error.
    pub fn wait_connected(
        &self,
    ) -> impl std::future::Future<Output = Result<(), StreamError>> + '_ {
        std::future::poll_fn(move |cx| {
            let inner = &self.inner;
            if inner.has(CONNECTING) {
                inner.add_write_waker(cx.waker());
                return Poll::Pending;
            }
            if inner.has(CLOSED) {
                return Poll::Ready(Err(self.closed_error()));
            }
            Poll::Ready(Ok(()))
        })
    }
}

impl Inner {
    pub(crate) fn finish_connect(self: &Rc<Self>) {
        self.clear(CONNECTING);
        if let Some(e) = self.take_socket_error() {
            log::debug!("IoStream fd {}: connect failed: {e}", self.fd);
            // Tornado's `_handle_connect`: the error goes to whoever waits on the
            // connect (or a write queued behind it), unlogged; with nobody waiting it
            // is logged, as nobody else would hear of it.
            if self.has_write_waker() || self.has_read_waker() {
                self.close_returned(CloseCause::from_io(e));
            } else {
                self.close_with(CloseCause::from_io(e));
            }
            return;
        }
        self.set(WRITABLE);
        if self.has_close_callback() {
            // Set while connecting, when there was nothing to watch yet.
            self.watch_for_close();
        }
        if self.wbuf_len.get() > 0 {
            self.handle_write();
        } else {
            self.disarm(Interest::WRITE);
            self.maybe_shutdown();
        }
        self.wake_writers();
    }
}

squall_poller::cfg_accept4! {
    /// A non-blocking TCP socket for `domain`, with `SOCK_NONBLOCK` in the `socket` call
    /// where the OS has it (`Socket::new` adds close-on-exec).
    fn nonblocking_tcp_socket(domain: Domain) -> io::Result<Socket> {
        Socket::new(domain, Type::STREAM.nonblocking(), None)
    }
}

squall_poller::cfg_not_accept4! {
    /// A non-blocking TCP socket for `domain`: macOS has no `SOCK_NONBLOCK`, so an `fcntl`
    /// follows the `socket` call (`Socket::new` adds close-on-exec).
    fn nonblocking_tcp_socket(domain: Domain) -> io::Result<Socket> {
        let socket = Socket::new(domain, Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }
}
