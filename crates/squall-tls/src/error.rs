//! [`TlsError`]: what goes wrong with a TLS configuration or a TLS connection, with its
//! cause.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use squall_iostream::{CloseCause, StreamError};

/// A TLS error: a configuration that cannot be loaded (reported when the configuration is
/// built, before any connection, as Tornado checks `ssl_options` at start-up), or why a
/// TLS connection failed.
///
/// A stream that fails for a TLS reason closes with [`CloseCause::Io`]; its
/// `io::Error` (kind `InvalidData`, or `TimedOut` for the handshake timeout) carries a
/// `TlsError`, which [`TlsError::from_close_cause`] and [`TlsError::from_stream_error`]
/// give back.
#[doc(alias = "SSLError")]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: Arc<io::Error>,
    },
    /// A file is not valid PEM.
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate file holds no certificate.
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no private key (PKCS#8, PKCS#1 or SEC1).
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The trust store is empty: no root certificate could be loaded.
    NoRoots,
    /// A name that cannot be a TLS server name (an empty string, a malformed name).
    InvalidServerName(String),
    /// rustls refused the configuration (a key that does not match its certificate, an
    /// unsupported key type, no protocol version in common with the provider).
    Config(rustls::Error),
    /// The peer does not speak TLS: its first bytes are not a TLS record (a plain HTTP
    /// request to the TLS port, a plain HTTP server's answer to a TLS client, or
    /// noise).
    NotTls {
        /// The first byte the peer sent.
        first_byte: u8,
    },
    /// The TLS protocol failed: a bad handshake, a certificate the verifier refused (an
    /// unknown issuer, a name mismatch, an expired certificate), a bad record, an alert
    /// from the peer.
    Protocol(rustls::Error),
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// The peer closed the connection during the handshake (an end of file, or its
    /// `close_notify`).
    HandshakeEof,
    /// The connection ended without the peer's `close_notify` where the end of the
    /// stream is the end of the data (an HTTP body read until the connection closes):
    /// anyone on the path can cut a connection so, and the data may be incomplete
    /// (RFC 8446 §6.1, RFC 9112 §9.8). A stream reports it only where it is asked,
    /// through [`TlsStreamExt::truncated`](crate::TlsStreamExt::truncated).
    Truncated,
    /// `wait_for_handshake` was called while another call waits (Tornado raises
    /// `RuntimeError("Already waiting")`).
    AlreadyWaiting,
    /// `start_tls` was called on a stream with a pending read or queued writes, or with
    /// received bytes not yet read (Tornado: `ValueError`).
    StreamNotIdle,
    /// The stream is already TLS.
    AlreadyTls,
}

impl TlsError {
    /// The `TlsError` behind a stream's close cause, if the stream closed for a TLS
    /// reason.
    pub fn from_close_cause(cause: &CloseCause) -> Option<&TlsError> {
        cause.io_error()?.get_ref()?.downcast_ref::<TlsError>()
    }

    /// The `TlsError` behind a stream error, if there is one.
    pub fn from_stream_error(e: &StreamError) -> Option<&TlsError> {
        TlsError::from_close_cause(e.close_cause()?)
    }

    /// The `TlsError` inside an `io::Error` (as [`TlsConnector::connect`] returns it,
    /// wrapping a [`StreamError`], or directly).
    ///
    /// [`TlsConnector::connect`]: crate::TlsConnector::connect
    pub fn from_io_error(e: &io::Error) -> Option<&TlsError> {
        let inner = e.get_ref()?;
        if let Some(t) = inner.downcast_ref::<TlsError>() {
            return Some(t);
        }
        TlsError::from_stream_error(inner.downcast_ref::<StreamError>()?)
    }

    /// The `io::ErrorKind` a stream closed by this error reports: `TimedOut` for the
    /// handshake timeout, `UnexpectedEof` for an end of file during the handshake or a
    /// truncation, `InvalidData` otherwise.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            TlsError::HandshakeTimeout => io::ErrorKind::TimedOut,
            TlsError::HandshakeEof | TlsError::Truncated => io::ErrorKind::UnexpectedEof,
            TlsError::File { source, .. } => source.kind(),
            TlsError::AlreadyWaiting | TlsError::StreamNotIdle | TlsError::AlreadyTls => {
                io::ErrorKind::Other
            }
            _ => io::ErrorKind::InvalidData,
        }
    }

    /// Whether the peer is to blame (not TLS, a protocol failure, a timeout, an end of
    /// file during the handshake, a truncation), as opposed to a configuration or usage error. A
    /// server logs these at debug level.
    pub fn is_peer_error(&self) -> bool {
        matches!(
            self,
            TlsError::NotTls { .. }
                | TlsError::Protocol(_)
                | TlsError::HandshakeTimeout
                | TlsError::HandshakeEof
                | TlsError::Truncated
        )
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::File { path, source } => write!(f, "{}: {source}", path.display()),
            TlsError::Pem { path, reason } => {
                write!(f, "{}: not valid PEM: {reason}", path.display())
            }
            TlsError::NoCertificates { path } => {
                write!(f, "{}: no certificate in the file", path.display())
            }
            TlsError::NoPrivateKey { path } => {
                write!(f, "{}: no private key in the file", path.display())
            }
            TlsError::NoRoots => f.write_str("no root certificate could be loaded"),
            TlsError::InvalidServerName(n) => write!(f, "invalid TLS server name {n:?}"),
            TlsError::Config(e) => write!(f, "TLS configuration refused: {e}"),
            TlsError::NotTls { first_byte } => write!(
                f,
                "the peer does not speak TLS (first byte {first_byte:#04x}{})",
                if first_byte.is_ascii_alphabetic() {
                    ", plain text: HTTP where TLS was expected?"
                } else {
                    ""
                }
            ),
            TlsError::Protocol(e) => write!(f, "TLS error: {e}"),
            TlsError::HandshakeTimeout => f.write_str("TLS handshake timed out"),
            TlsError::HandshakeEof => f.write_str("the peer closed during the TLS handshake"),
            TlsError::Truncated => {
                f.write_str("the connection ended without the peer's TLS close_notify: the data may be cut short")
            }
            TlsError::AlreadyWaiting => f.write_str("already waiting for the TLS handshake"),
            TlsError::StreamNotIdle => {
                f.write_str("start_tls needs an idle stream (no pending read, no queued write, nothing buffered)")
            }
            TlsError::AlreadyTls => f.write_str("the stream is already TLS"),
        }
    }
}

impl Error for TlsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TlsError::File { source, .. } => Some(&**source),
            TlsError::Config(e) | TlsError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> io::Error {
        io::Error::new(e.io_kind(), e)
    }
}

impl From<TlsError> for StreamError {
    /// A closed-stream error whose cause carries the `TlsError`.
    fn from(e: TlsError) -> StreamError {
        StreamError::Closed(CloseCause::Io(Arc::new(e.into())))
    }
}
