//! The servers' and clients' side of TLS: [`TlsAcceptor`], the [`StreamSetup`] that
//! makes a `TcpServer` or an `HttpServer` speak TLS, and [`TlsConnector`], a TCP
//! connection with a TLS handshake on top.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use squall_iostream::{IoStream, StreamError};
use squall_tcpserver::{SetupFuture, SetupInfo, StreamSetup, TcpClient};

use crate::config::{TlsClientConfig, TlsServerConfig};
use crate::error::TlsError;
use crate::stream::TlsStreamExt;

/// Tornado's `ssl_options` on a server: every accepted connection becomes the server
/// side of a TLS connection, and its handler sees it once the handshake is done (within
/// the configuration's handshake timeout). A client that fails the handshake is
/// closed; one that does not speak TLS or breaks the protocol (plain HTTP to the https
/// port, an unknown CA, no common version or ALPN protocol) is logged as a warning with
/// its address, as Tornado logs its "SSL Error", and one that closes, resets or stalls
/// (a port scan, a health check) at debug level, as Tornado closes those quietly.
///
/// ```no_run
/// use std::sync::Arc;
/// use squall_tcpserver::TcpServer;
/// use squall_tls::{TlsAcceptor, TlsServerConfig};
///
/// # fn serve(server: TcpServer) -> Result<(), Box<dyn std::error::Error>> {
/// let config = TlsServerConfig::from_pem_files("cert.pem", "key.pem")?;
/// server.set_stream_setup(Arc::new(TlsAcceptor::new(config)));
/// # Ok(()) }
/// ```
#[doc(alias = "ssl_options")]
#[derive(Debug, Clone)]
pub struct TlsAcceptor {
    config: TlsServerConfig,
}

impl TlsAcceptor {
    /// An acceptor serving `config`.
    pub fn new(config: TlsServerConfig) -> TlsAcceptor {
        TlsAcceptor { config }
    }

    /// The configuration.
    pub fn config(&self) -> &TlsServerConfig {
        &self.config
    }

    /// Makes `stream` the server side of a TLS connection and waits for the handshake
    /// (at most the configuration's handshake timeout).
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] whose cause carries the [`TlsError`](crate::TlsError)
    /// (not TLS, a failed handshake, the timeout), or the stream's own cause.
    pub async fn accept(&self, stream: IoStream) -> Result<IoStream, StreamError> {
        stream.start_tls_server(&self.config)?;
        // Asked now: a failed handshake closes the fd.
        let peer = stream.peer_addr();
        if let Err(e) = stream.handshake(self.config.handshake_timeout()).await {
            let tls = TlsError::from_stream_error(&e);
            let level = match tls {
                Some(TlsError::NotTls { .. } | TlsError::Protocol(_)) => log::Level::Warn,
                _ => log::Level::Debug,
            };
            match &peer {
                Ok(peer) => log::log!(level, "TLS handshake with {peer} failed: {e}"),
                Err(_) => log::log!(level, "TLS handshake failed: {e}"),
            }
            return Err(e);
        }
        Ok(stream)
    }
}

impl StreamSetup for TlsAcceptor {
    fn setup(&self, stream: IoStream) -> SetupFuture {
        let this = self.clone();
        Box::pin(async move { this.accept(stream).await })
    }

    fn scheme(&self) -> Option<&'static str> {
        Some("https")
    }

    /// The handshake's [`TlsInfo`](crate::TlsInfo): an HTTP handler finds it with
    /// `setup_info::<TlsInfo>()` on its request (the client's certificate under
    /// [`ClientAuth`](crate::ClientAuth)).
    fn setup_info(&self, stream: &IoStream) -> Option<SetupInfo> {
        stream.tls_info().map(|info| Arc::new(info) as SetupInfo)
    }
}

/// A TLS client: Tornado's `TCPClient.connect(..., ssl_options=...,
/// server_hostname=...)`.
#[derive(Debug, Clone)]
pub struct TlsConnector {
    config: TlsClientConfig,
}

impl TlsConnector {
    /// A connector trusting what `config` trusts.
    pub fn new(config: TlsClientConfig) -> TlsConnector {
        TlsConnector { config }
    }

    /// The configuration.
    pub fn config(&self) -> &TlsClientConfig {
        &self.config
    }

    /// Connects to `host:port` with `client` (happy eyeballs and all), then handshakes
    /// with the server, whose certificate must be valid for `host` (or for
    /// `server_name`, if given). `timeout` is one deadline for the whole of it, the TCP
    /// connect and the handshake, as Tornado's `TCPClient.connect(timeout=...)` is; the
    /// configuration's handshake timeout bounds the handshake too, whichever ends first.
    ///
    /// # Errors
    ///
    /// The connect's `io::Error`; for the handshake, an `io::Error` carrying the
    /// [`StreamError`] and its [`TlsError`](crate::TlsError) cause (an unknown issuer,
    /// a name mismatch, the timeout): see [`TlsError::from_io_error`](crate::TlsError::from_io_error).
    pub async fn connect(
        &self,
        client: &TcpClient,
        host: &str,
        port: u16,
        server_name: Option<&str>,
        timeout: Option<Duration>,
    ) -> io::Result<IoStream> {
        let deadline = timeout.map(|t| squall_ioloop::instant_after(Instant::now(), t));
        let stream = client.connect(host, port, timeout).await?;
        let name = server_name.unwrap_or(host);
        stream.start_tls_client(&self.config, name)?;
        let mut limit = self.config.handshake_timeout();
        if let Some(deadline) = deadline {
            limit = limit.min(deadline.saturating_duration_since(Instant::now()));
        }
        stream.handshake(limit).await.map_err(io::Error::from)?;
        Ok(stream)
    }
}
