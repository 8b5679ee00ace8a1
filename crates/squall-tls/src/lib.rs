//! squall's TLS: Tornado's `SSLIOStream`, `start_tls` and `ssl_options`, on rustls.
//!
//! - [`TlsServerConfig`] (Tornado's `ssl_options`): a certificate chain and key from PEM
//!   files, ALPN `http/1.1`, an SNI hook, a certificate that reloads without a restart,
//!   client certificates asked for and verified ([`ClientAuth`], Python's `cert_reqs`);
//!   [`TlsClientConfig`]: the system's roots or a given trust store, with the server's
//!   name verified, and a certificate of its own to present
//!   ([`TlsClientConfig::with_client_cert`]).
//! - TLS streams ([`TlsStreamExt`] on `IoStream`): `start_tls_server`,
//!   `start_tls_client` (STARTTLS, or any stream), `wait_for_handshake`, `tls_info`. A
//!   TLS stream *is* an `IoStream`, with a TLS layer between its fd and its buffers: the
//!   same `read_until`, `read_bytes`, `read_parse`, `write`, limits and close causes.
//! - [`TlsAcceptor`]: the `StreamSetup` that makes a `TcpServer` or an `HttpServer`
//!   speak TLS (Tornado's `ssl_options`), with a handshake timeout; an HTTP handler
//!   finds the handshake's [`TlsInfo`] (the client's certificate: Tornado's
//!   `get_ssl_certificate()`) with `request.setup_info::<TlsInfo>()`;
//!   [`TlsConnector`]: `TcpClient` plus a TLS handshake, the server's name verified.
//! - [`TlsSession`]: one connection as a sans-IO byte transform over rustls's
//!   `ServerConnection`/`ClientConnection`, tested and fuzzed in memory.
//! - [`TlsError`]: typed failures, from a missing certificate file to a peer that sent
//!   plain HTTP to the TLS port (`NotTls`); a stream closed by one carries it in its
//!   close cause ([`TlsError::from_close_cause`]).
//!
//! # Example: a handshake in memory
//!
//! ```
//! use rcgen::generate_simple_self_signed;
//! use squall_tls::{certified_key, TlsClientConfig, TlsServerConfig, TlsSession};
//! use rustls_pki_types::PrivateKeyDer;
//!
//! let generated = generate_simple_self_signed(vec!["localhost".to_string()])?;
//! let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())?;
//! let server_config = TlsServerConfig::builder()
//!     .certificate(certified_key(vec![generated.cert.der().clone()], key)?)
//!     .build()?;
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(generated.cert.der().clone())?;
//! let client_config = TlsClientConfig::with_roots(roots)?;
//!
//! let mut server = TlsSession::server(&server_config)?;
//! let mut client = TlsSession::client(&client_config, "localhost")?;
//! while client.is_handshaking() || server.is_handshaking() {
//!     let mut wire = Vec::new();
//!     while client.wants_write() { client.write_output(&mut wire)?; }
//!     server.feed(&wire)?;
//!     wire.clear();
//!     while server.wants_write() { server.write_output(&mut wire)?; }
//!     client.feed(&wire)?;
//! }
//! assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Differences from Tornado, and why
//!
//! - **`start_tls` converts the stream in place**: the same `IoStream` handle goes on,
//!   now encrypted (Tornado returns a new `SSLIOStream` and the old one is dead).
//! - **`ssl_options` is a [`TlsServerConfig`]** built and checked before the server
//!   starts (rustls: TLS 1.2 and 1.3 only, no `ssl.SSLContext` knobs; a custom
//!   `rustls::ServerConfig` goes in with [`TlsServerConfig::from_rustls`]).
//! - **Handshakes have a timeout** (10 s by default); Tornado has none.
//! - **The client always verifies the server's name**; `TlsClientConfig` has no switch
//!   to turn it off.
//! - **An end of file without `close_notify`** after the handshake is a plain end of
//!   file (HTTP frames its own messages), as in Tornado; [`TlsStreamExt::truncated`]
//!   tells it from a clean end, for data that ends with the connection (squall's HTTP
//!   client fails a body read until close that was cut so: RFC 9112 §9.8).
//!
//! # The crypto provider
//!
//! rustls's `ring` provider: it builds with a C compiler alone, in seconds, on a fresh
//! Debian machine; `aws-lc-rs` needs cmake and takes minutes. See [`provider`].

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod config;
mod error;
mod glue;
mod session;
mod stream;

pub use config::{
    certified_key, load_certified_key, load_certs, load_private_key, load_roots, provider,
    ClientAuth, ReloadableCert, SniResolver, TlsClientConfig, TlsServerConfig,
    TlsServerConfigBuilder, DEFAULT_HANDSHAKE_TIMEOUT,
};
pub use error::TlsError;
pub use glue::{TlsAcceptor, TlsConnector};
/// rustls, for its types in this crate's API (`CertifiedKey`, `RootCertStore`,
/// `ServerConfig`...).
pub use rustls;
pub use session::TlsSession;
pub use stream::{TlsInfo, TlsStreamExt, WaitForHandshake};
