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
