//! The connection's log lines: the access log, I/O errors at their level, peers.

use std::io;

use squall_httputil::ParseError;

use crate::delegate::ConnectionInfo;

pub use crate::access::ACCESS_LOG_TARGET;

/// Displays a peer address for logs.
pub(super) struct Peer<'a>(pub(super) &'a ConnectionInfo);

impl std::fmt::Display for Peer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.peer_addr {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("(no address)"),
        }
    }
}

/// The access line of a request refused before any handler saw it: at warning level
/// whatever its status (a 501 or a 505 answers what the client sent, not a fault of
/// the server, so a stream of bad requests does not fill the error log).
pub(super) fn log_access_error(info: &ConnectionInfo, e: ParseError) {
    let level = log::Level::Warn;
    if log::log_enabled!(target: ACCESS_LOG_TARGET, level) {
        log::log!(target: ACCESS_LOG_TARGET, level, "{} (bad request: {e}) ({})", e.status().as_u16(), Peer(info));
    }
}

pub(super) fn log_io_error(context: &str, e: &io::Error) {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected | UnexpectedEof => {
            log::debug!("{context}: {e}");
        }
        _ => log::warn!("{context}: {e}"),
    }
}

/// Run a delegate's notification (`on_connection_close`, `on_close`): they return
/// nothing and cannot answer, so a panic in one is caught and logged as an error, and
/// the connection's own ending goes on (a panic let through would end the connection's
/// task there, skipping its close and the server delegate's `on_close`).
pub(crate) fn notify(what: &str, info: &ConnectionInfo, f: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        log::error!(
            "HTTP delegate panicked in {what} for a connection from {}: {}",
            Peer(info),
            squall_ioloop::panic_message(&*p)
        );
    }
}
