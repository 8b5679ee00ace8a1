//! The `hello` example serves HTTPS with `--tls-cert FILE --tls-key FILE`, and refuses to
//! start with a certificate it cannot load (Tornado checks `ssl_options` at start-up).
//!
//! The test runs the example binary that `cargo test` builds beside the test
//! (`target/<profile>/examples/hello`); the certificate is made here with rcgen.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use squall_tls::rustls;

mod common;

use common::{hello_binary, Reap};

/// A temporary directory with a self-signed certificate for `localhost`.
struct Certs {
    dir: PathBuf,
    der: rustls::pki_types::CertificateDer<'static>,
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn certs(test: &str) -> Certs {
    let dir = std::env::temp_dir().join(format!("squall-hello-tls-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let g = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), g.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), g.signing_key.serialize_pem()).unwrap();
    Certs {
        dir,
        der: g.cert.der().clone(),
    }
}

#[test]
fn hello_serves_https() {
    let certs = certs("serves");
    let mut child = Command::new(hello_binary())
        .args([
            "--port",
            "0",
            "--address",
            "127.0.0.1",
            "--quiet",
            "--tls-cert",
        ])
        .arg(certs.dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(certs.dir.join("key.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _reap = Reap(Some(child));
    // "squall hello listening on https://127.0.0.1:PORT/ with 1 thread(s)"
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr = first
        .split("https://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs.der.clone()).unwrap();
    let config = squall_tls::TlsClientConfig::with_roots(roots).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::clone(config.rustls()), name).unwrap();
    let mut sock = TcpStream::connect(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    match tls.read_to_end(&mut reply) {
        Ok(_) => {}
        // The server may close without close_notify after `Connection: close`.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("reading the reply: {e}"),
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nHello, world!"), "{reply}");
    assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn hello_refuses_a_bad_certificate_at_start_up() {
    let certs = certs("refuses");
    let out = Command::new(hello_binary())
        .args(["--port", "0", "--tls-cert"])
        .arg(certs.dir.join("missing.pem"))
        .arg("--tls-key")
        .arg(certs.dir.join("key.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");
    // A key without its certificate flag is a usage error.
    let out = Command::new(hello_binary())
        .args(["--tls-key"])
        .arg(certs.dir.join("key.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
