//! TLS configurations: [`TlsServerConfig`] (Tornado's `ssl_options`) with certificates
//! from PEM files, ALPN, an SNI hook and reloading without a restart, and
//! [`TlsClientConfig`] with the system's or a given trust store.
//!
//! Everything is checked when the configuration is built: a missing file, a file
//! without a certificate, a key that does not match its certificate fail here, before
//! any connection (Tornado checks `ssl_options` when the server starts, for the same
//! reason).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::ParsedCertificate;
use rustls::server::{ClientHello, ResolvesServerCert, VerifierBuilderError, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName};
use rustls::{
    ClientConfig, RootCertStore, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsError;

/// How long a handshake may take by default (the peer cannot extend it by trickling
/// bytes): 10 seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider every squall configuration uses: rustls's `ring` provider.
///
/// `ring` builds with a C compiler alone (its build script uses `cc`), in seconds, on any
/// fresh Debian machine; `aws-lc-rs` wants cmake (and a Go or clang toolchain for some
/// builds) and takes minutes. Configurations pass the provider explicitly, so a program
/// that also links `aws-lc-rs` through another crate does not make rustls's process-wide
/// default ambiguous for squall.
///
/// rustls 0.23.48 deprecated `ring::default_provider` because ring has no post-quantum
/// key exchange (X25519MLKEM768): connections use X25519 (or P-256/P-384), which is what
/// most of today's TLS uses. The deprecation is allowed here on purpose: the choice
/// is about building anywhere quickly, and it is this one function.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|e| TlsError::File {
        path: path.to_owned(),
        source: Arc::new(e),
    })
}

fn pem_error(path: &Path, e: rustls_pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Reads every certificate of a PEM file, in order (the end-entity certificate first,
/// then its intermediates).
///
/// # Errors
///
/// [`TlsError::File`], [`TlsError::Pem`], or [`TlsError::NoCertificates`] if the file
/// holds none.
pub fn load_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let path = path.as_ref();
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the CA certificates of a PEM file into a trust store: the roots a client
/// trusts ([`TlsClientConfig::with_roots`]), or those a server checks client
/// certificates against ([`ClientAuth`]). Tornado's `ca_certs`.
///
/// # Errors
///
/// As [`load_certs`]; [`TlsError::Config`] if a certificate is not a valid trust
/// anchor.
pub fn load_roots(path: impl AsRef<Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(TlsError::Config)?;
    }
    Ok(roots)
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// [`TlsError::File`], [`TlsError::Pem`], or [`TlsError::NoPrivateKey`].
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let path = path.as_ref();
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        e => pem_error(path, e),
    })
}

/// A certificate chain with its key, checked: the key is one the provider can sign with
/// and matches the first certificate.
///
/// # Errors
///
/// As [`load_certs`] and [`load_private_key`]; [`TlsError::Config`] for a key of an
/// unsupported type or one that does not match the certificate.
pub fn load_certified_key(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = load_certs(cert_path)?;
    let key = load_private_key(key_path)?;
    certified_key(certs, key)
}

/// [`load_certified_key`] from DER values already in memory.
///
/// # Errors
///
/// [`TlsError::Config`] for a key of an unsupported type or one that does not match the
/// certificate; [`TlsError::NoCertificates`] (with an empty path) for an empty chain.
pub fn certified_key(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: PathBuf::new(),
        });
    }
    CertifiedKey::from_der(certs, key, &provider())
        .map(Arc::new)
        .map_err(TlsError::Config)
}

// ------------------------------------------------------------------ resolvers

/// A certificate that can be replaced while the server runs: handshakes that start after
/// [`reload`](ReloadableCert::reload) use the new certificate, those in progress finish
/// with the old one. Clones share the certificate, so keep one to reload from (a signal
/// handler, an admin endpoint, a timer) and give another to the server.
#[derive(Clone)]
pub struct ReloadableCert {
    current: Arc<RwLock<Arc<CertifiedKey>>>,
    paths: Option<Arc<(PathBuf, PathBuf)>>,
}

impl ReloadableCert {
    /// Loads the certificate chain and key from PEM files, remembering the paths for
    /// [`reload`](ReloadableCert::reload).
    ///
    /// # Errors
    ///
    /// As [`load_certified_key`].
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<ReloadableCert, TlsError> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let key = load_certified_key(cert_path, key_path)?;
        Ok(ReloadableCert {
            current: Arc::new(RwLock::new(key)),
            paths: Some(Arc::new((cert_path.to_owned(), key_path.to_owned()))),
        })
    }

    /// A reloadable certificate that starts with `key` and has no files to reload from
    /// (replace it with [`set`](ReloadableCert::set)).
    pub fn new(key: Arc<CertifiedKey>) -> ReloadableCert {
        ReloadableCert {
            current: Arc::new(RwLock::new(key)),
            paths: None,
        }
    }

    /// Reads the PEM files again and, if they load and match, uses them for every new
    /// handshake. On error the old certificate stays in use.
    ///
    /// # Errors
    ///
    /// As [`load_certified_key`]; [`TlsError::NoCertificates`] (with an empty path) if
    /// this certificate was not made from files.
    pub fn reload(&self) -> Result<(), TlsError> {
        let Some(paths) = &self.paths else {
            return Err(TlsError::NoCertificates {
                path: PathBuf::new(),
            });
        };
        let key = load_certified_key(&paths.0, &paths.1)?;
        self.set(key);
        Ok(())
    }

    /// Uses `key` for every new handshake.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        // A poisoned lock only means a panic elsewhere while swapping an Arc: the value
        // is whole either way.
        let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
        *slot = key;
    }

    /// The certificate new handshakes use.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// An SNI hook: a function from the server name the client asked for (`None` if it
/// sent none, as an IP-address client does) to the certificate to present, or `None` to
/// refuse the handshake. Tornado's `SSLContext.sni_callback`.
pub struct SniResolver<F>(pub F);

impl<F> fmt::Debug for SniResolver<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SniResolver")
    }
}

impl<F> ResolvesServerCert for SniResolver<F>
where
    F: Fn(Option<&str>) -> Option<Arc<CertifiedKey>> + Send + Sync,
{
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        (self.0)(hello.server_name())
    }
}

// ------------------------------------------------------------------ server config

/// A server's TLS configuration: Tornado's `ssl_options`. Cheap to clone (an `Arc`
/// inside); one configuration serves every connection of every thread.
///
/// Built from PEM files with [`from_pem_files`](TlsServerConfig::from_pem_files) (ALPN
/// `http/1.1`, TLS 1.2 and 1.3), or with [`TlsServerConfig::builder`] for an SNI hook,
/// a reloadable certificate, other ALPN protocols or protocol versions; or from any
/// `rustls::ServerConfig` with [`from_rustls`](TlsServerConfig::from_rustls).
#[doc(alias = "ssl_options")]
#[doc(alias = "SSLContext")]
#[derive(Clone, Debug)]
pub struct TlsServerConfig {
    rustls: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl TlsServerConfig {
    /// A configuration serving the certificate chain and key in two PEM files, with
    /// ALPN `http/1.1` and TLS 1.2 and 1.3. Tornado's
    /// `ssl_options={"certfile": ..., "keyfile": ...}`.
    ///
    /// # Errors
    ///
    /// As [`load_certified_key`]: a missing or unreadable file, no certificate, no key, a
    /// key that does not match, all reported here rather than at the first connection.
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<TlsServerConfig, TlsError> {
        let key = load_certified_key(cert_path, key_path)?;
        TlsServerConfig::builder().certificate(key).build()
    }

    /// A builder, to choose the certificate source, ALPN protocols, protocol versions and
    /// the handshake timeout.
    pub fn builder() -> TlsServerConfigBuilder {
        TlsServerConfigBuilder {
            resolver: None,
            client_auth: None,
            alpn: vec![b"http/1.1".to_vec(), b"http/1.0".to_vec()],
            versions: rustls::DEFAULT_VERSIONS.to_vec(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Wraps a `rustls::ServerConfig` built by hand (client certificates, session
    /// tickets, another provider).
    pub fn from_rustls(config: Arc<ServerConfig>) -> TlsServerConfig {
        TlsServerConfig {
            rustls: config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Sets how long a handshake may take (default 10 s); a peer that does not finish
    /// in time is closed with [`TlsError::HandshakeTimeout`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsServerConfig {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The rustls configuration inside.
    pub fn rustls(&self) -> &Arc<ServerConfig> {
        &self.rustls
    }
}

/// Builds a [`TlsServerConfig`]; see [`TlsServerConfig::builder`].
#[must_use = "call build() to get the configuration"]
pub struct TlsServerConfigBuilder {
    resolver: Option<Arc<dyn ResolvesServerCert>>,
    client_auth: Option<ClientAuth>,
    alpn: Vec<Vec<u8>>,
    versions: Vec<&'static SupportedProtocolVersion>,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsServerConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfigBuilder")
            .field("resolver", &self.resolver)
            .field("client_auth", &self.client_auth)
            .field("alpn", &self.alpn)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsServerConfigBuilder {
    /// Serves one certificate to every client.
    pub fn certificate(mut self, key: Arc<CertifiedKey>) -> Self {
        self.resolver = Some(Arc::new(rustls::sign::SingleCertAndKey::from(key)));
        self
    }

    /// Serves a certificate that can be reloaded while the server runs.
    pub fn reloadable(mut self, cert: ReloadableCert) -> Self {
        self.resolver = Some(Arc::new(cert));
        self
    }

    /// Picks the certificate per handshake from the server name the client sent (SNI).
    pub fn sni<F>(mut self, pick: F) -> Self
    where
        F: Fn(Option<&str>) -> Option<Arc<CertifiedKey>> + Send + Sync + 'static,
    {
        self.resolver = Some(Arc::new(SniResolver(pick)));
        self
    }

    /// Any rustls certificate resolver.
    pub fn resolver(mut self, resolver: Arc<dyn ResolvesServerCert>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Asks clients for a certificate and checks it against the given roots: mutual
    /// TLS (default: no client certificates asked for). Tornado's `ssl_options` with
    /// `cert_reqs` and `ca_certs`. A handler sees the certificate a client presented in
    /// [`TlsInfo::peer_certificates`](crate::TlsInfo::peer_certificates).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = Some(auth);
        self
    }

    /// The ALPN protocols offered, in order of preference (default: `http/1.1`, then
    /// `http/1.0`, which `curl --http1.0` offers alone and the server speaks; empty:
    /// no ALPN).
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// The protocol versions accepted (default: TLS 1.3 and 1.2).
    pub fn versions(mut self, versions: &[&'static SupportedProtocolVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// The handshake timeout (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Builds the configuration.
    ///
    /// # Errors
    ///
    /// [`TlsError::NoCertificates`] (with an empty path) if no certificate source was
    /// given; [`TlsError::NoRoots`] for client authentication with an empty trust
    /// store; [`TlsError::Config`] if rustls refuses the versions.
    pub fn build(self) -> Result<TlsServerConfig, TlsError> {
        let resolver = self.resolver.ok_or(TlsError::NoCertificates {
            path: PathBuf::new(),
        })?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&self.versions)
            .map_err(TlsError::Config)?;
        let builder = match self.client_auth {
            None => builder.with_no_client_auth(),
            Some(auth) => builder.with_client_cert_verifier(auth.verifier()?),
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = self.alpn;
        Ok(TlsServerConfig {
            rustls: Arc::new(config),
            handshake_timeout: self.handshake_timeout,
        })
    }
}

/// Which client certificates a server asks for and accepts
/// ([`TlsServerConfigBuilder::client_auth`]): Python's `ssl.CERT_REQUIRED` and
/// `ssl.CERT_OPTIONAL`, each with the roots (`ca_certs`, see [`load_roots`]) a
/// certificate must chain to. Either way a certificate that does not verify fails the
/// handshake.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// Every client must present a certificate that chains to these roots; a client
    /// without one fails the handshake (Python's `CERT_REQUIRED`).
    Required(RootCertStore),
    /// A client may present a certificate, which must then chain to these roots; a
    /// client without one is served anonymously (Python's `CERT_OPTIONAL`).
    Optional(RootCertStore),
}

impl ClientAuth {
    fn verifier(self) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let (roots, optional) = match self {
            ClientAuth::Required(roots) => (roots, false),
            ClientAuth::Optional(roots) => (roots, true),
        };
        let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
        if optional {
            builder = builder.allow_unauthenticated();
        }
        builder.build().map_err(|e| match e {
            VerifierBuilderError::NoRootAnchors => TlsError::NoRoots,
            e => TlsError::Config(rustls::Error::General(e.to_string())),
        })
    }
}

// ------------------------------------------------------------------ client config

/// A client's TLS configuration: the roots it trusts and the ALPN protocols it offers.
/// The server's certificate is verified against the roots and the name the client
/// connects to (Tornado's `ssl.create_default_context()` with `check_hostname`).
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct TlsClientConfig {
    rustls: Arc<ClientConfig>,
    handshake_timeout: Duration,
}

impl TlsClientConfig {
    /// Trusts the operating system's root certificates (read once, here).
    ///
    /// # Errors
    ///
    /// [`TlsError::NoRoots`] if none could be loaded (each file that failed is logged).
    pub fn with_system_roots() -> Result<TlsClientConfig, TlsError> {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            log::warn!("loading the system's root certificates: {e}");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        if ignored > 0 {
            log::debug!("{ignored} system root certificates could not be parsed");
        }
        if added == 0 {
            return Err(TlsError::NoRoots);
        }
        TlsClientConfig::with_roots(roots)
    }

    /// Trusts the CA certificates of a PEM file (a private CA, a test CA).
    ///
    /// # Errors
    ///
    /// As [`load_certs`]; [`TlsError::Config`] if a certificate is not a valid trust
    /// anchor.
    ///
    /// A self-signed server certificate in the file is trusted as itself, as OpenSSL
    /// (so Tornado, Python's `ssl` and curl) trusts it, even when it is marked as a CA
    /// (`openssl req -x509` marks it so by default), which webpki alone refuses as a
    /// CA used as an end entity: the name and validity are still checked.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<TlsClientConfig, TlsError> {
        let certs = load_certs(path)?;
        let mut roots = RootCertStore::empty();
        for cert in &certs {
            roots.add(cert.clone()).map_err(TlsError::Config)?;
        }
        TlsClientConfig::with_verifier(Arc::new(TrustedAsThemselves {
            webpki: webpki_verifier(roots)?,
            certs,
        }))
    }

    /// Trusts the given roots, with ALPN `http/1.1` and TLS 1.2 and 1.3.
    ///
    /// # Errors
    ///
    /// [`TlsError::NoRoots`] for an empty store.
    pub fn with_roots(roots: RootCertStore) -> Result<TlsClientConfig, TlsError> {
        TlsClientConfig::with_verifier(webpki_verifier(roots)?)
    }

    /// A configuration whose server certificates `verifier` checks (a rustls
    /// `ServerCertVerifier` of your own: pinning, or none for a test), with ALPN
    /// `http/1.1` and TLS 1.2 and 1.3.
    ///
    /// # Errors
    ///
    /// [`TlsError::Config`] if the provider supports none of the protocol versions.
    pub fn with_verifier(
        verifier: Arc<dyn ServerCertVerifier>,
    ) -> Result<TlsClientConfig, TlsError> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsClientConfig::from_rustls(Arc::new(config)))
    }

    /// A configuration that accepts any server certificate, whatever its name, issuer
    /// or dates: Tornado's `validate_cert=False`, for tests and private networks only.
    /// The connection is encrypted but not authenticated; the handshake's signatures are
    /// still checked, so the peer holds the key of the certificate it sent.
    ///
    /// # Errors
    ///
    /// As [`with_verifier`](Self::with_verifier).
    pub fn accept_any_certificate() -> Result<TlsClientConfig, TlsError> {
        TlsClientConfig::with_verifier(Arc::new(AcceptAny(provider())))
    }

    /// Wraps a `rustls::ClientConfig` built by hand (a client certificate, a custom
    /// verifier, other ALPN protocols).
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsClientConfig {
        TlsClientConfig {
            rustls: config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Sets the ALPN protocols offered (default `http/1.1`; empty: no ALPN).
    pub fn with_alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        let mut config = (*self.rustls).clone();
        config.alpn_protocols = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self.rustls = Arc::new(config);
        self
    }

    /// Presents `key` (a certificate chain and its private key, from
    /// [`load_certified_key`]) when a server asks for a client certificate: mutual TLS.
    /// Tornado's `client_cert` and `client_key`. A server that asks for none never sees
    /// it. Make it once and clone the result: a session is resumed only by a
    /// configuration with the same certificate (rustls compares the resolver this sets,
    /// so a second call makes a configuration that resumes none of the first's).
    pub fn with_client_cert(mut self, key: Arc<CertifiedKey>) -> Self {
        let mut config = (*self.rustls).clone();
        config.client_auth_cert_resolver = Arc::new(ClientCert(key));
        self.rustls = Arc::new(config);
        self
    }

    /// Sets how long a handshake may take (default 10 s).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The rustls configuration inside.
    pub fn rustls(&self) -> &Arc<ClientConfig> {
        &self.rustls
    }
}

/// webpki's check of server certificates against `roots`, with squall's provider's
/// algorithms: what `ClientConfig`'s `with_root_certificates` would make.
///
/// # Errors
///
/// [`TlsError::NoRoots`] for an empty store.
fn webpki_verifier(roots: RootCertStore) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))
}

/// The server verifier of [`TlsClientConfig::with_ca_file`]: webpki's, and a
/// certificate of the file presented as the server's own is trusted as itself when
/// webpki refuses it only for being a CA (a self-signed certificate marked `CA:TRUE`).
/// webpki has checked its validity period before it looks at that mark; its name is
/// checked here, and the handshake's signatures by webpki's rules as for any other.
#[derive(Debug)]
struct TrustedAsThemselves {
    webpki: Arc<WebPkiServerVerifier>,
    /// The file's certificates, as they were read.
    certs: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for TrustedAsThemselves {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        let ca_as_end_entity = matches!(
            &refused,
            rustls::Error::InvalidCertificate(CertificateError::Other(other))
                if other.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
        );
        if !ca_as_end_entity || !self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return Err(refused);
        }
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&cert, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}

/// The verifier of [`TlsClientConfig::accept_any_certificate`]: every certificate
/// passes; the signatures of the handshake are checked with the provider's algorithms.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client certificate of [`TlsClientConfig::with_client_cert`]: the same chain to
/// every server that asks (rustls checks that the key can sign with a scheme the server
/// accepts, and sends no certificate if it cannot).
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0
            .key
            .choose_scheme(sigschemes)
            .is_some()
            .then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
