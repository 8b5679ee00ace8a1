//! Serving HTTP on a Unix socket (Tornado: `server.add_socket(bind_unix_socket(path))`).

use std::io;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::rc::Rc;

use squall_tcpserver::{bind_unix_socket, DEFAULT_BACKLOG};

use super::{HttpServer, LocalServer};
use crate::delegate::HttpServerConnectionDelegate;

/// The permissions [`HttpServer::listen_unix`] gives the socket file: Tornado's
/// `bind_unix_socket` default, owner only.
pub const DEFAULT_UNIX_SOCKET_MODE: u32 = 0o600;

impl<D: HttpServerConnectionDelegate> HttpServer<D> {
    /// Create a Unix socket at `path` (permissions [`DEFAULT_UNIX_SOCKET_MODE`]) and
    /// serve it on the current thread's loop, beside any TCP listeners: what a server
    /// behind nginx on the same host (`proxy_pass http://unix:/path:`) listens on.
    ///
    /// A stale socket file at `path` is replaced; a live one is `AddrInUse` (see
    /// `squall_tcpserver::bind_unix_socket`). The file stays after the server stops,
    /// as in Tornado; the next `listen_unix` on the path replaces it. Requests on a
    /// Unix socket have no remote address ([`HttpServerRequest::remote_ip`] is `""`
    /// unless `xheaders` supplies one).
    ///
    /// [`HttpServerRequest::remote_ip`]: squall_httputil::HttpServerRequest::remote_ip
    ///
    /// # Errors
    /// The errors of creating the socket; an error if no loop is current.
    pub fn listen_unix(&mut self, path: impl AsRef<Path>) -> io::Result<()>
    where
        D: Clone,
    {
        let listener = bind_unix_socket(path, DEFAULT_UNIX_SOCKET_MODE, DEFAULT_BACKLOG)?;
        self.add_unix_socket(listener)
    }

    /// Serve an already-bound listening Unix socket on the current thread's loop
    /// (Tornado's `add_socket`). To serve one socket from several threads, give each
    /// thread's loop a `try_clone()` of the listener.
    ///
    /// # Errors
    /// An error if no loop is current; the errors of registering the socket.
    pub fn add_unix_socket(&mut self, listener: UnixListener) -> io::Result<()>
    where
        D: Clone,
    {
        let local: Rc<LocalServer<D>> = self.current_local()?;
        local.accept_server().add_unix_socket(listener)
    }
}
