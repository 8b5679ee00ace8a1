//! Free ports on loopback.

use std::io;
use std::net::TcpListener;

/// A listening socket on `127.0.0.1` with a port the OS chose, and that port. Tornado's
/// `bind_unused_port`. The socket stays bound while it lives, so the port cannot be
/// taken by anyone else; hand it to a server (`HttpServer::add_sockets`,
/// `TcpServer::add_sockets`) rather than closing it and binding again.
///
/// # Errors
/// The OS error of `bind`/`listen`.
pub fn bind_unused_port() -> io::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// A port that was free a moment ago, for an outside program that must bind it itself
/// (nginx, Python): bind port 0, read the port, close. Another process may take it in
/// between; prefer [`bind_unused_port`] when the socket can be passed on.
///
/// # Panics
/// If loopback cannot be bound at all (a broken test machine).
pub fn free_port() -> u16 {
    bind_unused_port().expect("bind 127.0.0.1:0").1
}
