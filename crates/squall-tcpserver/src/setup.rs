//! [`StreamSetup`]: a step between accepting a connection and handing its stream to the
//! handler. A TLS handshake is the one squall ships (`squall-tls`'s `TlsAcceptor`); the
//! servers know only this trait, so they do not depend on the TLS crate.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use squall_iostream::{IoStream, StreamError};

/// The future of [`StreamSetup::setup`]: the stream, ready for the handler.
pub type SetupFuture = Pin<Box<dyn Future<Output = Result<IoStream, StreamError>>>>;

/// A step every accepted connection goes through before its handler sees it: Tornado's
/// `TCPServer(ssl_options=...)`, which wraps each accepted socket in an `SSLIOStream`
/// and handshakes before `handle_stream`. Installed with
/// [`TcpServer::set_stream_setup`](crate::TcpServer::set_stream_setup) (and the HTTP
/// server's configuration).
///
/// `Send + Sync` so that one setup serves the loops of every thread; the future it
/// returns runs on the connection's own loop.
pub trait StreamSetup: Send + Sync + 'static {
    /// Prepares an accepted stream. On error the connection is closed and the error
    /// logged at debug level (the setup logs more if it should: squall-tls's
    /// `TlsAcceptor` warns of a client that breaks the TLS protocol, as Tornado does);
    /// the handler never sees it. The setup must bound its own time (a handshake
    /// timeout): the handler's timeouts start only after it.
    fn setup(&self, stream: IoStream) -> SetupFuture;

    /// The URL scheme of connections after this setup (`https` for TLS), if it changes
    /// it: an HTTP server reports it as the request's protocol.
    fn scheme(&self) -> Option<&'static str> {
        None
    }

    /// What the setup agreed with the peer, for the handler, read once the setup is
    /// done (`squall-tls`'s `TlsAcceptor` gives its `TlsInfo`: the protocol version,
    /// ALPN, the server name, the client's certificate). The HTTP server keeps it with
    /// the connection, where every request of the connection finds it (Tornado's
    /// `request.get_ssl_certificate()`). Default: nothing.
    fn setup_info(&self, stream: &IoStream) -> Option<SetupInfo> {
        let _ = stream;
        None
    }
}

/// What a [`StreamSetup`] tells a connection's handler about the setup
/// ([`StreamSetup::setup_info`]); the handler downcasts it to the type the setup
/// documents.
pub type SetupInfo = Arc<dyn Any + Send + Sync>;

impl fmt::Debug for dyn StreamSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSetup")
            .field("scheme", &self.scheme())
            .finish_non_exhaustive()
    }
}
