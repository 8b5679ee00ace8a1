//! What an HTTPS handler learns of its connection (`setup_info::<TlsInfo>()`), client
//! certificates (mutual TLS) first: an `HttpServer` that asks for them
//! (`ClientAuth::Required` and `::Optional`) and shows its handler the one presented,
//! against curl and squall's own client; squall's client presenting one to nginx;
//! session resumption seen from both ends. A missing tool skips its test loudly (fails
//! under CI=true).

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{ClientCert, Https, Pki};
use squall_httpserver::{HttpServerRequest, Response};
use squall_ioloop::IoLoop;
use squall_iostream::CloseCause;
use squall_tcpserver::TcpClient;
use squall_testing::{free_port, have_tool, nginx_path, run_nginx, KillOnDrop};
use squall_tls::rustls::{self, RootCertStore};
use squall_tls::{
    load_certified_key, load_roots, ClientAuth, TlsConnector, TlsError, TlsInfo, TlsServerConfig,
    TlsStreamExt,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Answers with the hex DER of the client's certificate, or `anonymous`; at
/// `/resumed`, whether the session was resumed.
fn app(req: HttpServerRequest) -> std::future::Ready<Response> {
    let tls = req
        .setup_info::<TlsInfo>()
        .expect("an HTTPS request has its TlsInfo");
    assert!(tls.handshake_done);
    assert!(tls.cipher_suite.is_some());
    if req.path() == "/resumed" {
        return std::future::ready(Response::text(tls.resumed.to_string()));
    }
    std::future::ready(Response::text(match &tls.peer_certificates {
        Some(chain) => hex(&chain[0]),
        None => "anonymous".to_owned(),
    }))
}

/// An HTTPS server asking for client certificates of `pki`'s CA.
fn https(pki: &Pki, required: bool) -> Https {
    let roots = load_roots(&pki.ca).unwrap();
    let auth = if required {
        ClientAuth::Required(roots)
    } else {
        ClientAuth::Optional(roots)
    };
    let tls = TlsServerConfig::builder()
        .certificate(load_certified_key(&pki.cert, &pki.key).unwrap())
        .client_auth(auth)
        .build()
        .unwrap();
    Https::start(app, tls)
}

fn curl(pki: &Pki, addr: SocketAddr, cert: Option<&ClientCert>) -> Output {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&pki.ca)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())]);
    if let Some(cert) = cert {
        c.arg("--cert").arg(&cert.cert).arg("--key").arg(&cert.key);
    }
    c.arg(format!("https://localhost:{}/", addr.port()))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// One GET of `path` over TLS with squall's client, presenting `cert` if given: the
/// status line and body, or the TLS error that ended the connection (`None`: another
/// error, such as a reset).
fn squall_get(
    pki: &Pki,
    addr: SocketAddr,
    cert: Option<&ClientCert>,
) -> Result<String, Option<TlsError>> {
    let mut config = pki.client_config();
    if let Some(cert) = cert {
        config = config.with_client_cert(load_certified_key(&cert.cert, &cert.key).unwrap());
    }
    get(&TlsConnector::new(config), addr, "/").map(|(reply, _)| reply)
}

/// One GET of `path` through `connector` (whose configuration keeps the sessions it may
/// resume): the reply and whether the client resumed a session, or as [`squall_get`].
fn get(
    connector: &TlsConnector,
    addr: SocketAddr,
    path: &str,
) -> Result<(String, bool), Option<TlsError>> {
    let connector = connector.clone();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let client = TcpClient::new();
                let stream = connector
                    .connect(&client, "127.0.0.1", addr.port(), Some("localhost"), None)
                    .await
                    .map_err(|e| TlsError::from_io_error(&e).cloned())?;
                // As Tornado's, `read_until_close` gives what came before a failure;
                // the failure is the stream's error.
                let reply = match stream.write(request.into_bytes()).await {
                    Ok(()) => stream.read_until_close().await.unwrap_or_default(),
                    Err(_) => Default::default(),
                };
                match stream.error() {
                    None | Some(CloseCause::Eof) => Ok((
                        String::from_utf8_lossy(&reply).into_owned(),
                        stream.tls_info().is_some_and(|i| i.resumed),
                    )),
                    Some(cause) => Err(TlsError::from_close_cause(&cause).cloned()),
                }
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap()
}

/// The body of a reply.
fn body(reply: &str) -> &str {
    reply.rsplit("\r\n\r\n").next().unwrap()
}

#[test]
fn a_required_client_certificate_reaches_the_handler() {
    let pki = Pki::localhost();
    let alice = pki.client_cert("alice");
    let s = https(&pki, true);
    let reply = squall_get(&pki, s.addr, Some(&alice)).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with(&hex(&alice.der)), "{reply}");

    // Without a certificate, or with one another CA signed, no request is served: the
    // server refuses the handshake with an alert (TLS 1.3: after the client thinks it
    // is done, so the client hears of it when it reads). The server reads what the
    // client sent behind its Finished before it closes, so that the close is not a
    // reset that overtakes the alert (a third of the runs before it did); a request
    // that arrives after the close still can, hence either outcome here.
    let refused = |got: Result<String, Option<TlsError>>| match got {
        Err(Some(TlsError::Protocol(rustls::Error::AlertReceived(_))) | None) => {}
        other => panic!("not refused: {other:?}"),
    };
    refused(squall_get(&pki, s.addr, None));
    let other = Pki::localhost();
    let stranger = other.client_cert("mallory");
    refused(squall_get(&pki, s.addr, Some(&stranger)));
}

#[test]
fn an_optional_client_certificate() {
    let pki = Pki::localhost();
    let bob = pki.client_cert("bob");
    let s = https(&pki, false);
    let reply = squall_get(&pki, s.addr, None).unwrap();
    assert!(reply.ends_with("\r\n\r\nanonymous"), "{reply}");
    let reply = squall_get(&pki, s.addr, Some(&bob)).unwrap();
    assert!(reply.ends_with(&hex(&bob.der)), "{reply}");
    // Optional is not unchecked: a certificate that does not verify fails.
    let other = Pki::localhost();
    let stranger = other.client_cert("mallory");
    assert!(squall_get(&pki, s.addr, Some(&stranger)).is_err());
}

#[test]
fn client_auth_needs_roots() {
    let pki = Pki::localhost();
    let built = TlsServerConfig::builder()
        .certificate(load_certified_key(&pki.cert, &pki.key).unwrap())
        .client_auth(ClientAuth::Required(RootCertStore::empty()))
        .build();
    assert!(matches!(built, Err(TlsError::NoRoots)), "{built:?}");
}

#[test]
fn curl_with_and_without_a_client_certificate() {
    if !have_tool("curl") {
        return;
    }
    let pki = Pki::localhost();
    let carol = pki.client_cert("carol");
    let s = https(&pki, true);
    let out = curl(&pki, s.addr, Some(&carol));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), hex(&carol.der));
    let out = curl(&pki, s.addr, None);
    assert!(
        !out.status.success(),
        "served without a certificate: {out:?}"
    );

    let optional = https(&pki, false);
    let out = curl(&pki, optional.addr, None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "anonymous");
}

/// nginx asking for a client certificate of the test CA (`ssl_verify_client on`).
fn start_nginx(pki: &Pki) -> (KillOnDrop, u16) {
    let dir = pki.dir.join("nginx-mtls");
    let port = free_port();
    let (cert, key, ca) = (pki.cert.display(), pki.key.display(), pki.ca.display());
    let http = format!(
        r#"    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {ca};
        ssl_verify_client on;
        location / {{
            return 200 "nginx verified $ssl_client_verify $ssl_client_s_dn";
        }}
    }}"#
    );
    (run_nginx(&dir, &http, &[port]), port)
}

#[test]
fn squall_client_certificate_to_nginx() {
    if !have_tool(nginx_path()) {
        return;
    }
    let pki = Pki::localhost();
    let dave = pki.client_cert("dave");
    let (_nginx, port) = start_nginx(&pki);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let reply = squall_get(&pki, addr, Some(&dave)).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("nginx verified SUCCESS CN=dave"), "{reply}");
    // nginx answers a client without one with its 400 page.
    let reply = squall_get(&pki, addr, None).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

/// A second connection of the same client resumes the first one's session (TLS 1.3
/// tickets, which the client reads with its first response), and both ends say so.
#[test]
fn both_ends_see_a_resumed_session() {
    let pki = Pki::localhost();
    let s = https(&pki, false);
    let connector = TlsConnector::new(pki.client_config());
    let seen: Vec<(String, bool)> = (0..2)
        .map(|_| {
            let (reply, resumed) = get(&connector, s.addr, "/resumed").unwrap();
            (body(&reply).to_owned(), resumed)
        })
        .collect();
    assert_eq!(
        seen,
        [("false".to_owned(), false), ("true".to_owned(), true)]
    );
}

/// A session resumed is authenticated as the client that made it (the server takes
/// the certificate from the session): a configuration with a client certificate
/// shares its session store with the one it was made from, and rustls resumes only
/// between configurations with the same certificate resolver, so a connection without
/// the certificate is never served as its owner.
#[test]
fn a_client_certificates_sessions_are_its_own() {
    let pki = Pki::localhost();
    let erin = pki.client_cert("erin");
    let s = https(&pki, false);
    let anonymous = TlsConnector::new(pki.client_config());
    let as_erin = TlsConnector::new(
        anonymous
            .config()
            .clone()
            .with_client_cert(load_certified_key(&erin.cert, &erin.key).unwrap()),
    );
    for (connector, expected) in [
        (&as_erin, hex(&erin.der)),
        (&anonymous, "anonymous".to_owned()),
        (&as_erin, hex(&erin.der)),
        (&anonymous, "anonymous".to_owned()),
    ] {
        let (reply, _) = get(connector, s.addr, "/").unwrap();
        assert_eq!(body(&reply), expected);
    }
}
