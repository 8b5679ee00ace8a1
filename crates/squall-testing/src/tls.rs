//! The test certificate: Tornado's `AsyncHTTPSTestCase.default_ssl_options`.

use squall_tls::rustls::pki_types::pem::PemObject;
use squall_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use squall_tls::TlsServerConfig;

/// The test certificate, PEM: self-signed (ECDSA P-256, not a CA) for `localhost`,
/// `127.0.0.1` and `::1`, valid from 2020 until 2126. Its key is [`TEST_KEY_PEM`],
/// which is public: serve it in tests only.
pub const TEST_CERT_PEM: &str = include_str!("../certs/test.crt");

/// The test certificate's private key (PKCS#8, PEM). Public: for tests only.
pub const TEST_KEY_PEM: &str = include_str!("../certs/test.key");

/// A server configuration serving [the test certificate](TEST_CERT_PEM) (ALPN
/// `http/1.1` and `http/1.0`, TLS 1.2 and 1.3): what
/// [`AsyncHttpTestCase::start_https`](crate::AsyncHttpTestCase::start_https) serves,
/// and for a `TcpServer` or WebSocket test of your own (with `squall-tls`'s
/// `TlsAcceptor`). Tornado's `AsyncHTTPSTestCase.default_ssl_options()`.
///
/// A client that checks certificates trusts it with
/// `TlsClientConfig::with_roots` holding [`TEST_CERT_PEM`] and names `localhost` or
/// `127.0.0.1`.
pub fn test_tls_server_config() -> TlsServerConfig {
    let cert = CertificateDer::from_pem_slice(TEST_CERT_PEM.as_bytes())
        .expect("the bundled test certificate is valid PEM");
    let key = PrivateKeyDer::from_pem_slice(TEST_KEY_PEM.as_bytes())
        .expect("the bundled test key is valid PEM");
    let key = squall_tls::certified_key(vec![cert], key)
        .expect("the bundled test key matches its certificate");
    TlsServerConfig::builder()
        .certificate(key)
        .build()
        .expect("the ring provider serves TLS 1.2 and 1.3")
}
