//! https: the client against squall's own HTTPS server (a throw-away certificate made
//! by the test), with each kind of trust, and through a CONNECT proxy.
#![cfg(feature = "tls")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use squall_httpclient::{HttpClient, HttpClientError, HttpRequest, Proxy};
use squall_httpserver::{HttpServer, HttpServerConfig, HttpServerRequest, Response};
use squall_testing::{run_test, TempDir};
use squall_tls::rustls::pki_types::PrivateKeyDer;
use squall_tls::rustls::sign::CertifiedKey;
use squall_tls::rustls::RootCertStore;
use squall_tls::{
    certified_key, ClientAuth, TlsAcceptor, TlsClientConfig, TlsInfo, TlsServerConfig,
};

mod common;

struct Pki {
    server: TlsServerConfig,
    client: TlsClientConfig,
    cert_pem: String,
    key: Arc<CertifiedKey>,
}

fn pki() -> Pki {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der()).unwrap();
    let key = certified_key(vec![generated.cert.der().clone()], key).unwrap();
    let server = TlsServerConfig::builder()
        .certificate(key.clone())
        .build()
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();
    Pki {
        server,
        client: TlsClientConfig::with_roots(roots).unwrap(),
        cert_pem: generated.cert.pem(),
        key,
    }
}

async fn app(req: HttpServerRequest) -> Response {
    Response::text(format!(
        "{} {} over {}",
        req.method,
        req.path(),
        req.protocol()
    ))
}

/// An HTTPS server on this loop, and its address; it serves while the box lives.
fn serve(tls: TlsServerConfig) -> (Box<dyn std::any::Any>, SocketAddr) {
    let config = HttpServerConfig {
        stream_setup: Some(Arc::new(TlsAcceptor::new(tls))),
        ..HttpServerConfig::default()
    };
    let mut server = HttpServer::new(app).with_config(config);
    let addr = server.listen(0, "127.0.0.1").unwrap();
    (Box::new(server), addr)
}

#[test]
fn https_with_each_trust() {
    let pki = pki();
    let dir = TempDir::new("client-https").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.cert_pem).unwrap();
    let ca = ca.to_string_lossy().into_owned();
    run_test("https", Some(Duration::from_secs(60)), move || async move {
        let (_server, addr) = serve(pki.server.clone());
        let url = format!("https://127.0.0.1:{}/x", addr.port());
        let client = HttpClient::new();
        // The test CA given with the request.
        let r = client
            .fetch(HttpRequest::new(url.as_str()).tls_config(pki.client.clone()))
            .await
            .unwrap();
        assert_eq!(r.text(), "GET /x over https");
        // Kept alive and reused.
        client
            .fetch(HttpRequest::new(url.as_str()).tls_config(pki.client.clone()))
            .await
            .unwrap();
        assert_eq!(client.idle_connections(), 1);
        // The test CA from a PEM file (Tornado's ca_certs).
        let r = client
            .fetch(HttpRequest::new(url.as_str()).ca_certs(ca.as_str()))
            .await
            .unwrap();
        assert_eq!(r.text(), "GET /x over https");
        // As the client's default.
        let other = HttpClient::new();
        other.set_tls_config(pki.client.clone());
        assert!(other.fetch(url.as_str()).await.is_ok());
        // No verification (Tornado's validate_cert=False).
        let r = HttpClient::new()
            .fetch(HttpRequest::new(url.as_str()).validate_cert(false))
            .await
            .unwrap();
        assert_eq!(r.code, 200);
        // The system's roots do not know the test CA: refused.
        let e = HttpClient::new().fetch(url.as_str()).await.unwrap_err();
        assert!(
            matches!(
                e,
                HttpClientError::Stream(_) | HttpClientError::InvalidRequest(_)
            ),
            "{e:?}"
        );
        // The name must match the certificate: `localhost` does, and an address that
        // is not in it would not.
        let r = client
            .fetch(
                HttpRequest::new(format!("https://localhost:{}/y", addr.port()))
                    .tls_config(pki.client.clone()),
            )
            .await
            .unwrap();
        assert_eq!(r.text(), "GET /y over https");
    });
}

/// A new default TLS configuration governs the requests after it: an idle connection
/// verified under the old one is not reused for them. (It was, so a client told to
/// trust less kept talking to a server the new roots refuse.)
#[test]
fn a_new_default_tls_config_drops_connections_made_under_the_old() {
    let pki = pki();
    run_test(
        "https_default",
        Some(Duration::from_secs(60)),
        move || async move {
            let (_server, addr) = serve(pki.server.clone());
            let url = format!("https://127.0.0.1:{}/x", addr.port());
            let client = HttpClient::new();
            client.set_tls_config(pki.client.clone());
            client.fetch(url.as_str()).await.unwrap();
            assert_eq!(client.idle_connections(), 1);
            // Roots of another CA only: the test server's certificate is refused.
            let other = rcgen::generate_simple_self_signed(vec!["elsewhere".into()]).unwrap();
            let mut roots = RootCertStore::empty();
            roots.add(other.cert.der().clone()).unwrap();
            client.set_tls_config(TlsClientConfig::with_roots(roots).unwrap());
            let e = client.fetch(url.as_str()).await.unwrap_err();
            assert!(matches!(e, HttpClientError::Stream(_)), "{e:?}");
            assert_eq!(client.idle_connections(), 0);
        },
    );
}

/// A connection in flight when the default TLS configuration changes is not kept when
/// its request is done: the next request, under the new default, makes its own, which
/// the new roots refuse. (It was checked in under the same key as the new default's
/// and reused, although `set_tls_config` says a connection made under the old default
/// serves no request the new one governs.)
#[test]
fn a_connection_in_flight_under_the_old_default_is_not_kept() {
    let pki = pki();
    run_test(
        "https_default_in_flight",
        Some(Duration::from_secs(60)),
        move || async move {
            let (reached, release) = (common::Gate::default(), common::Gate::default());
            let config = HttpServerConfig {
                stream_setup: Some(Arc::new(TlsAcceptor::new(pki.server.clone()))),
                ..HttpServerConfig::default()
            };
            let (r, g) = (reached.clone(), release.clone());
            let mut server = HttpServer::new(move |_req: HttpServerRequest| {
                let (reached, release) = (r.clone(), g.clone());
                async move {
                    reached.open();
                    release.wait().await;
                    Response::text("held")
                }
            })
            .with_config(config);
            let addr = server.listen(0, "127.0.0.1").unwrap();
            let url = format!("https://127.0.0.1:{}/", addr.port());
            let client = HttpClient::new();
            client.set_tls_config(pki.client.clone());
            let in_flight = {
                let (client, url) = (client.clone(), url.clone());
                squall_ioloop::IoLoop::current()
                    .unwrap()
                    .spawn(async move { client.fetch(url.as_str()).await.map(|r| r.code) })
            };
            reached.wait().await;
            // Roots of another CA only: the test server's certificate is refused.
            let other = rcgen::generate_simple_self_signed(vec!["elsewhere".into()]).unwrap();
            let mut roots = RootCertStore::empty();
            roots.add(other.cert.der().clone()).unwrap();
            client.set_tls_config(TlsClientConfig::with_roots(roots).unwrap());
            release.open();
            assert_eq!(in_flight.await.unwrap().unwrap(), 200);
            assert_eq!(client.idle_connections(), 0);
            let e = client.fetch(url.as_str()).await.unwrap_err();
            assert!(matches!(e, HttpClientError::Stream(_)), "{e:?}");
            drop(server);
        },
    );
}

/// `validate_cert`, `ca_certs` and `tls_config` mean the same in any order (Tornado
/// reads `validate_cert` and `ca_certs` apart): a `tls_config` wins; else
/// `validate_cert(false)` verifies nothing, whatever CA file is named; else the CA
/// file is used. (Each setter overwrote one field: `ca_certs(..).validate_cert(true)`
/// dropped the file, `validate_cert(false).ca_certs(..)` turned checking back on, and
/// `tls_config(..).validate_cert(false)` dropped the configuration.)
#[test]
fn trust_setters_in_any_order() {
    let pki = pki();
    let dir = TempDir::new("client-trust").unwrap();
    let right = dir.path().join("right.pem");
    std::fs::write(&right, &pki.cert_pem).unwrap();
    let right = right.to_string_lossy().into_owned();
    // Another CA, which does not know the test server's certificate.
    let other = rcgen::generate_simple_self_signed(vec!["elsewhere".into()]).unwrap();
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, other.cert.pem()).unwrap();
    let wrong = wrong.to_string_lossy().into_owned();
    let mut roots = RootCertStore::empty();
    roots.add(other.cert.der().clone()).unwrap();
    let wrong_config = TlsClientConfig::with_roots(roots).unwrap();
    run_test(
        "https_trust",
        Some(Duration::from_secs(60)),
        move || async move {
            let (_server, addr) = serve(pki.server.clone());
            let url = format!("https://127.0.0.1:{}/", addr.port());
            let new = || HttpRequest::new(url.as_str());
            let cases = [
                (
                    "ca_certs(right).validate_cert(true)",
                    new().ca_certs(&right).validate_cert(true),
                    true,
                ),
                (
                    "validate_cert(true).ca_certs(right)",
                    new().validate_cert(true).ca_certs(&right),
                    true,
                ),
                (
                    "validate_cert(false).ca_certs(wrong)",
                    new().validate_cert(false).ca_certs(&wrong),
                    true,
                ),
                (
                    "ca_certs(wrong).validate_cert(false)",
                    new().ca_certs(&wrong).validate_cert(false),
                    true,
                ),
                ("ca_certs(wrong)", new().ca_certs(&wrong), false),
                (
                    "tls_config(wrong).validate_cert(false)",
                    new().tls_config(wrong_config.clone()).validate_cert(false),
                    false,
                ),
                (
                    "validate_cert(false).tls_config(wrong)",
                    new().validate_cert(false).tls_config(wrong_config.clone()),
                    false,
                ),
                (
                    "tls_config(right).ca_certs(wrong)",
                    new().tls_config(pki.client.clone()).ca_certs(&wrong),
                    true,
                ),
                (
                    "ca_certs(wrong).tls_config(right)",
                    new().ca_certs(&wrong).tls_config(pki.client.clone()),
                    true,
                ),
            ];
            for (what, request, passes) in cases {
                // A client of its own each: no kept connection answers for another trust.
                let result = HttpClient::new().fetch(request).await;
                match (passes, result) {
                    (true, Ok(r)) => assert_eq!(r.code, 200, "{what}"),
                    (false, Err(HttpClientError::Stream(_))) => {}
                    (_, other) => panic!("{what}: {other:?}"),
                }
            }
        },
    );
}

/// Over TLS too, an answer that comes before the request body is sent is heard while
/// the body goes out, from a server that then reads no more.
#[test]
fn https_answer_before_the_body_is_sent() {
    let pki = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server_config = pki.server.rustls().clone();
    let (done, release) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let session = squall_tls::rustls::ServerConnection::new(server_config).unwrap();
        let mut tls = squall_tls::rustls::StreamOwned::new(session, socket);
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tls.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        tls.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo much")
            .unwrap();
        tls.flush().unwrap();
        // Read no more until the client is done.
        let _ = release.recv();
    });
    run_test(
        "https_early",
        Some(Duration::from_secs(60)),
        move || async move {
            let request = HttpRequest::new(format!("https://127.0.0.1:{port}/upload"))
                .tls_config(pki.client.clone());
            common::upload_answered_early(&HttpClient::new(), request).await;
            drop(done);
        },
    );
    server.join().unwrap();
}

/// A CONNECT proxy on a thread: reads the request head, connects to the target, answers
/// 200 and relays both ways until either side closes. Each CONNECT's
/// `Proxy-Authorization` (or `none`) is logged before the answer.
fn connect_proxy() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let connects = log.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { return };
            let connects = connects.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head.split(' ').nth(1).unwrap_or("").to_owned();
                assert!(head.starts_with("CONNECT "), "{head}");
                let auth = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
                    .map_or("none", |(_, value)| value.trim());
                connects.lock().unwrap().push(auth.to_owned());
                let Ok(upstream) = TcpStream::connect(&target) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (mut c1, mut u1) = (client, upstream);
                let up = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut u1);
                    let _ = u1.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut u2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
                let _ = up.join();
            });
        }
    });
    (addr, log)
}

#[test]
fn https_through_a_connect_proxy() {
    let pki = pki();
    let (proxy, _) = connect_proxy();
    run_test(
        "https_proxy",
        Some(Duration::from_secs(60)),
        move || async move {
            let (_server, addr) = serve(pki.server.clone());
            let r = HttpClient::new()
                .fetch(
                    HttpRequest::new(format!("https://127.0.0.1:{}/tunnel", addr.port()))
                        .tls_config(pki.client.clone())
                        .proxy(Proxy::new("127.0.0.1", proxy.port())),
                )
                .await
                .unwrap();
            assert_eq!(r.text(), "GET /tunnel over https");
        },
    );
}

/// A `CONNECT` tunnel is kept for the proxy credentials it was opened with: a request
/// with other credentials, or none, opens its own tunnel (RFC 9110 §11.7), and the same
/// credentials again reuse theirs. (A tunnel authorised for alice carried bob's
/// requests, and anonymous ones.)
#[test]
fn a_tunnel_serves_only_its_proxy_credentials() {
    let pki = pki();
    let (proxy, connects) = connect_proxy();
    run_test(
        "https_proxy_auth",
        Some(Duration::from_secs(60)),
        move || async move {
            let (_server, addr) = serve(pki.server.clone());
            let client = HttpClient::new();
            let via = |auth: Option<(&str, &str)>| {
                let mut through = Proxy::new("127.0.0.1", proxy.port());
                through.auth = auth.map(|(u, p)| (u.to_owned(), p.to_owned()));
                HttpRequest::new(format!("https://127.0.0.1:{}/t", addr.port()))
                    .tls_config(pki.client.clone())
                    .proxy(through)
            };
            let alice = Some(("alice", "a-secret"));
            let bob = Some(("bob", "b-secret"));
            for auth in [alice, bob, None, alice, bob, None] {
                let r = client.fetch(via(auth)).await.unwrap();
                assert_eq!(r.text(), "GET /t over https");
            }
            let (a, b) = (
                squall_httputil::basic_auth_value("alice", "a-secret"),
                squall_httputil::basic_auth_value("bob", "b-secret"),
            );
            assert_eq!(*connects.lock().unwrap(), [a, b, "none".to_owned()]);
            assert_eq!(client.idle_connections(), 3);
        },
    );
}

/// squall's server refuses an upload over its `max_body_size` with 413 as soon as it
/// has the head, then lingers reading what still comes: the client, reading while it
/// uploads, hears the 413 over TLS as over plain TCP, however much of the body its
/// socket buffers had taken (the server once stopped lingering after 1 MiB, and over
/// TLS the reset of that close came before the client had read the answer).
#[test]
fn an_early_413_from_squall_is_heard_over_tls() {
    let pki = pki();
    for tls in [false, true] {
        let server_tls = pki.server.clone();
        let client_tls = pki.client.clone();
        run_test(
            "early_413",
            Some(Duration::from_secs(60)),
            move || async move {
                let config = HttpServerConfig {
                    stream_setup: tls.then(|| Arc::new(TlsAcceptor::new(server_tls)) as _),
                    max_body_size: 1024,
                    ..HttpServerConfig::default()
                };
                let mut server = HttpServer::new(app).with_config(config);
                let addr = server.listen(0, "127.0.0.1").unwrap();
                let scheme = if tls { "https" } else { "http" };
                let e = HttpClient::new()
                    .fetch(
                        HttpRequest::new(format!("{scheme}://127.0.0.1:{}/up", addr.port()))
                            .tls_config(client_tls)
                            .method(http::Method::POST)
                            .body(vec![b'x'; 16 << 20])
                            .request_timeout(Duration::from_secs(20)),
                    )
                    .await
                    .unwrap_err();
                let code = e.response().map(|r| r.code);
                assert_eq!(code.map(|c| c.as_u16()), Some(413), "tls: {tls}: {e:?}");
            },
        );
    }
}

/// An HTTPS server on a thread (rustls through squall-tls's session, blocking) that
/// answers each connection's request with a body that ends with the connection, and
/// closes with `close_notify` or (`clean` false) without it, as an attacker cutting
/// the connection would.
fn close_delimited_server(config: TlsServerConfig, clean: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut s = squall_tls::TlsSession::server(&config).unwrap();
        let (mut buf, mut plain, mut request) = (vec![0u8; 65536], vec![0u8; 65536], Vec::new());
        while !request.ends_with(b"\r\n\r\n") {
            while s.wants_write() {
                s.write_output(&mut sock).unwrap();
            }
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed");
            s.feed(&buf[..n]).unwrap();
            let n = s.read_plaintext(&mut plain).unwrap();
            request.extend_from_slice(&plain[..n]);
        }
        let answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe whole body";
        s.write_plaintext(&[std::io::IoSlice::new(answer)]).unwrap();
        if clean {
            s.send_close_notify();
        }
        while s.wants_write() {
            s.write_output(&mut sock).unwrap();
        }
    });
    addr
}

/// RFC 9112 §9.8: a response with neither a length nor chunks is complete over TLS
/// only if the server closed with `close_notify`; one cut without it is an error,
/// not a shorter body (RFC 8446 §6.1).
#[test]
fn a_body_read_until_close_needs_close_notify() {
    let pki = pki();
    run_test(
        "https_truncation",
        Some(Duration::from_secs(60)),
        move || async move {
            for clean in [true, false] {
                let addr = close_delimited_server(pki.server.clone(), clean);
                let r = HttpClient::new()
                    .fetch(
                        HttpRequest::new(format!("https://127.0.0.1:{}/", addr.port()))
                            .tls_config(pki.client.clone()),
                    )
                    .await;
                if clean {
                    assert_eq!(r.unwrap().text(), "the whole body");
                    continue;
                }
                let e = r.unwrap_err();
                let HttpClientError::Stream(s) = &e else {
                    panic!("{e:?}")
                };
                assert!(
                    matches!(
                        squall_tls::TlsError::from_stream_error(s),
                        Some(squall_tls::TlsError::Truncated)
                    ),
                    "{e:?}"
                );
            }
        },
    );
}

/// A CA, and a client certificate it signed for `name`, as PEM files in `dir`: the CA,
/// the certificate, its key, both in one file; and the certificate's DER.
struct ClientFiles {
    ca: String,
    cert: String,
    key: String,
    both: String,
    der: Vec<u8>,
}

fn client_files(dir: &std::path::Path, name: &str) -> ClientFiles {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name}'s CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name.to_owned());
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let path = |file: &str| {
        dir.join(format!("{name}-{file}"))
            .to_string_lossy()
            .into_owned()
    };
    let files = ClientFiles {
        ca: path("ca.pem"),
        cert: path("cert.pem"),
        key: path("key.pem"),
        both: path("both.pem"),
        der: cert.der().to_vec(),
    };
    std::fs::write(&files.ca, ca.pem()).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    std::fs::write(&files.both, cert.pem() + &key.serialize_pem()).unwrap();
    files
}

/// An HTTPS server that requires a client certificate of `roots` and answers with
/// the DER of the one presented (at `/resumed`, whether the session was resumed).
fn serve_mtls(pki: &Pki, roots: RootCertStore) -> (Box<dyn std::any::Any>, SocketAddr) {
    let tls = TlsServerConfig::builder()
        .certificate(pki.key.clone())
        .client_auth(ClientAuth::Required(roots))
        .build()
        .unwrap();
    let config = HttpServerConfig {
        stream_setup: Some(Arc::new(TlsAcceptor::new(tls))),
        ..HttpServerConfig::default()
    };
    let mut server = HttpServer::new(|req: HttpServerRequest| async move {
        let tls = req
            .setup_info::<TlsInfo>()
            .expect("TlsInfo on an HTTPS request");
        let chain = tls
            .peer_certificates
            .as_ref()
            .expect("a client certificate");
        if req.path() == "/resumed" {
            return Response::text(tls.resumed.to_string());
        }
        Response::bytes(Bytes::copy_from_slice(&chain[0]))
    })
    .with_config(config);
    let addr = server.listen(0, "127.0.0.1").unwrap();
    (Box::new(server), addr)
}

/// Tornado's `client_cert` and `client_key`: the certificate reaches the server's
/// handler, from two files or one; a connection made with a certificate never serves a
/// request made without one (or with another); bad files are the request's error.
#[test]
fn client_certificates() {
    let pki = pki();
    let dir = TempDir::new("client-mtls").unwrap();
    let alice = client_files(dir.path(), "alice");
    let bob = client_files(dir.path(), "bob");
    let mut roots = RootCertStore::empty();
    for ca in [&alice.ca, &bob.ca] {
        roots
            .roots
            .extend(squall_tls::load_roots(ca).unwrap().roots);
    }
    run_test(
        "https_mtls",
        Some(Duration::from_secs(60)),
        move || async move {
            let (_server, addr) = serve_mtls(&pki, roots);
            let url = format!("https://127.0.0.1:{}/", addr.port());
            let client = HttpClient::new();
            client.set_tls_config(pki.client.clone());
            // The same identity twice: the second fetch reuses the connection.
            let as_alice = |url: &str| {
                HttpRequest::new(url)
                    .client_cert(&alice.cert)
                    .client_key(&alice.key)
            };
            for _ in 0..2 {
                let r = client.fetch(as_alice(&url)).await.unwrap();
                assert_eq!(r.body.as_ref(), alice.der.as_slice());
                assert_eq!(client.idle_connections(), 1);
            }
            // Another identity, from one file holding both: a connection of its own.
            let r = client
                .fetch(HttpRequest::new(url.as_str()).client_cert(&bob.both))
                .await
                .unwrap();
            assert_eq!(r.body.as_ref(), bob.der.as_slice());
            assert_eq!(client.idle_connections(), 2);
            // No certificate: alice's and bob's connections are not for this request, and
            // the server refuses a new one.
            let e = client.fetch(url.as_str()).await.unwrap_err();
            assert!(matches!(e, HttpClientError::Stream(_)), "{e:?}");
            // Files that do not make a client certificate.
            for bad in [
                HttpRequest::new(url.as_str()).client_key(&alice.key),
                HttpRequest::new(url.as_str())
                    .client_cert(dir.path().join("missing.pem").to_string_lossy()),
                HttpRequest::new(url.as_str())
                    .client_cert(&alice.cert)
                    .client_key(&bob.key),
            ] {
                let e = client.fetch(bad).await.unwrap_err();
                assert!(matches!(e, HttpClientError::InvalidRequest(_)), "{e:?}");
            }
            // A new connection as alice resumes her session: her configuration is made
            // once (rustls resumes only with the same certificate resolver). By the
            // server's other name, whose sessions (tickets) are hers alone.
            let by_name = format!("https://localhost:{}/resumed", addr.port());
            for resumed in ["false", "true"] {
                let r = client
                    .fetch(as_alice(&by_name).header("Connection", "close"))
                    .await
                    .unwrap();
                assert_eq!(r.text(), resumed);
            }
        },
    );
}
