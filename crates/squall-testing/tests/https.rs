//! Tornado's `AsyncHTTPSTestCase`: an application served over TLS with the bundled test
//! certificate, its URLs in `https`, and a client that fetches from it.

use std::sync::Arc;

use squall_httpclient::HttpRequest;
use squall_httpserver::{HttpServer, HttpServerConfig, HttpServerRequest, Response};
use squall_testing::{gen_test, AsyncHttpTestCase, TEST_CERT_PEM};
use squall_tls::rustls::pki_types::pem::PemObject;
use squall_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use squall_tls::rustls::RootCertStore;
use squall_tls::{TlsAcceptor, TlsClientConfig, TlsServerConfig};

async fn scheme(req: HttpServerRequest) -> Response {
    Response::text(format!("{} {}", req.protocol(), req.path()))
}

#[gen_test(timeout = 30)]
async fn test_https_case_serves_over_tls() {
    let case = AsyncHttpTestCase::start_https(scheme).unwrap();
    assert_eq!(case.get_protocol(), "https");
    let url = case.get_url("/path");
    assert_eq!(
        url,
        format!("https://127.0.0.1:{}/path", case.get_http_port())
    );
    // The handler sees the TLS connection's scheme; the client took the self-signed
    // certificate (Tornado's test client has validate_cert=False).
    let response = case.fetch("/path").await.unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(response.text(), "https /path");
    assert_eq!(response.effective_url, url);
    // A full URL is fetched as it is (testing_test's test_fetch_full_http_url).
    let response = case.fetch(&url).await.unwrap();
    assert_eq!(response.text(), "https /path");
}

fn trusting(cert: CertificateDer<'static>) -> TlsClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    TlsClientConfig::with_roots(roots).unwrap()
}

fn test_cert() -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(TEST_CERT_PEM.as_bytes()).unwrap()
}

// The bundled certificate names 127.0.0.1 and localhost: a client that verifies it
// against itself as the only root is satisfied too, so tests can check verification.
#[gen_test(timeout = 30)]
async fn test_test_certificate_verifies_for_loopback() {
    let case = AsyncHttpTestCase::start_https(scheme).unwrap();
    let request = HttpRequest::new(case.get_url("/v")).tls_config(trusting(test_cert()));
    let response = case.fetch_request(request).await.unwrap();
    assert_eq!(response.text(), "https /v");
}

// A server that brings its own TLS setup keeps it (Tornado's overridden
// get_ssl_options), through either constructor, and is served as https; the case's
// client accepts its certificate, and a request's own trust still wins over that.
#[gen_test(timeout = 30)]
async fn test_server_with_its_own_tls_is_https() {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let own_cert = generated.cert.der().clone();
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der()).unwrap();
    let key = squall_tls::certified_key(vec![own_cert.clone()], key).unwrap();
    let tls = TlsServerConfig::builder().certificate(key).build().unwrap();
    let own = || {
        let config = HttpServerConfig {
            stream_setup: Some(Arc::new(TlsAcceptor::new(tls.clone()))),
            ..HttpServerConfig::default()
        };
        HttpServer::new(scheme).with_config(config)
    };
    for case in [
        AsyncHttpTestCase::with_server(own()).unwrap(),
        AsyncHttpTestCase::with_https_server(own()).unwrap(),
    ] {
        assert_eq!(case.get_protocol(), "https");
        assert_eq!(case.fetch("/own").await.unwrap().text(), "https /own");
        // The server's own certificate, not the bundled one, is served.
        let own_trust = HttpRequest::new(case.get_url("/t")).tls_config(trusting(own_cert.clone()));
        assert_eq!(
            case.fetch_request(own_trust).await.unwrap().text(),
            "https /t"
        );
        let bundled = HttpRequest::new(case.get_url("/b")).tls_config(trusting(test_cert()));
        assert!(case.fetch_request(bundled).await.is_err());
    }
}

/// A stream setup that is not TLS: the stream as it came (a setup that sets a socket
/// option, reads a PROXY header...).
struct PassThrough;

impl squall_tcpserver::StreamSetup for PassThrough {
    fn setup(&self, stream: squall_iostream::IoStream) -> squall_tcpserver::SetupFuture {
        Box::pin(async move { Ok(stream) })
    }
}

// Only a setup whose scheme is `https` (TLS) makes the case https (Tornado's
// get_protocol is "https" for AsyncHTTPSTestCase only): a server whose setup leaves the
// stream plain is served, and fetched, over http.
#[gen_test(timeout = 30)]
async fn test_server_with_a_plain_setup_is_http() {
    let config = HttpServerConfig {
        stream_setup: Some(Arc::new(PassThrough)),
        ..HttpServerConfig::default()
    };
    let case = AsyncHttpTestCase::with_server(HttpServer::new(scheme).with_config(config)).unwrap();
    assert_eq!(case.get_protocol(), "http");
    assert!(case.get_url("/").starts_with("http://127.0.0.1:"));
    assert_eq!(case.fetch("/plain").await.unwrap().text(), "http /plain");
    // Asked for https, such a server is refused rather than served plain.
    let config = HttpServerConfig {
        stream_setup: Some(Arc::new(PassThrough)),
        ..HttpServerConfig::default()
    };
    let err = AsyncHttpTestCase::with_https_server(HttpServer::new(scheme).with_config(config))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}

// A plain case stays plain.
#[gen_test(timeout = 30)]
async fn test_plain_case_is_http() {
    let case = AsyncHttpTestCase::start(scheme).unwrap();
    assert_eq!(case.get_protocol(), "http");
    assert!(case.get_url("/").starts_with("http://127.0.0.1:"));
    assert_eq!(case.fetch("/p").await.unwrap().text(), "http /p");
}

// The bundled certificate is valid from long before any machine running the tests
// (2020) to 2126, as Tornado's test.crt dates from years before its tests run: one
// issued with "now" as its start is refused as not yet valid by a verifying client on
// a machine whose clock is behind the one that made it. (It started on the minute it
// was made.)
#[test]
fn test_test_certificate_is_valid_from_2020_to_2126() {
    use squall_tls::rustls::client::danger::ServerCertVerifier;
    use squall_tls::rustls::client::WebPkiServerVerifier;
    use squall_tls::rustls::pki_types::{ServerName, UnixTime};

    let mut roots = RootCertStore::empty();
    roots.add(test_cert()).unwrap();
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), squall_tls::provider())
            .build()
            .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let verify_at = |unix_seconds: u64| {
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(unix_seconds));
        verifier.verify_server_cert(&test_cert(), &[], &name, &[], at)
    };
    // 2020-06-01, 2025-01-01, now, 2126-01-01.
    for at in [
        1_590_969_600,
        1_735_689_600,
        UnixTime::now().as_secs(),
        4_923_792_000,
    ] {
        verify_at(at).unwrap_or_else(|e| panic!("at {at}: {e}"));
    }
    // And not before 2020 or after 2126: the dates are really checked.
    assert!(verify_at(1_262_304_000).is_err(), "2010");
    assert!(verify_at(4_986_950_400).is_err(), "2128");
}
