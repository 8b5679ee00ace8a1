//! A throw-away PKI for the tests: a CA, and a certificate for `localhost` and
//! `127.0.0.1` that it signed (and client certificates on demand), generated at test
//! time and written to a temporary directory as PEM files.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    SanType,
};
use squall_httpserver::{FnHandler, HttpServer, HttpServerConfig, HttpServerRequest, Response};
use squall_ioloop::IoLoop;
use squall_tls::{TlsAcceptor, TlsClientConfig, TlsServerConfig, TlsSession};

/// The files of a test PKI.
pub(crate) struct Pki {
    pub(crate) dir: PathBuf,
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A client certificate of a test PKI: its PEM files and its DER.
pub(crate) struct ClientCert {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) der: Vec<u8>,
}

impl Pki {
    /// A new CA and a server certificate for `names` (DNS names or IP addresses), in a
    /// fresh temporary directory.
    pub(crate) fn new(names: &[&str]) -> Pki {
        let dir = temp_dir();
        let id = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("squall test CA {id}"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        for name in names {
            params.subject_alt_names.push(match name.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into().unwrap()),
            });
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
            issuer: ca,
        };
        std::fs::write(&pki.ca, pki.issuer.pem()).unwrap();
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }

    /// A self-signed server certificate for `names`, marked as a CA (`CA:TRUE`, as
    /// `openssl req -x509` makes one), which is also the PKI's CA file: trusted as
    /// itself.
    pub(crate) fn self_signed(names: &[&str]) -> Pki {
        let dir = temp_dir();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0].to_owned());
        for name in names {
            params.subject_alt_names.push(match name.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into().unwrap()),
            });
        }
        let key = KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        let issuer = CertifiedIssuer::self_signed(params, key).unwrap();
        let pki = Pki {
            ca: dir.join("cert.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
            issuer,
        };
        std::fs::write(&pki.cert, pki.issuer.pem()).unwrap();
        std::fs::write(&pki.key, key_pem).unwrap();
        pki
    }

    /// A client certificate for `name` (its common name), signed by this PKI's CA, for
    /// client authentication only.
    pub(crate) fn client_cert(&self, name: &str) -> ClientCert {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name.to_owned());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let files = ClientCert {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
            der: cert.der().to_vec(),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    /// The usual one: `localhost` and `127.0.0.1`.
    pub(crate) fn localhost() -> Pki {
        Pki::new(&["localhost", "127.0.0.1"])
    }

    pub(crate) fn server_config(&self) -> TlsServerConfig {
        TlsServerConfig::from_pem_files(&self.cert, &self.key).unwrap()
    }

    pub(crate) fn client_config(&self) -> TlsClientConfig {
        TlsClientConfig::with_ca_file(&self.ca).unwrap()
    }
}

/// A fresh temporary directory for one PKI's files, named `squall-tls-test-<pid>-<n>`.
fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let id = format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(format!("squall-tls-test-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes everything `s` has to send (handshake messages, records, alerts) to `out`.
pub(crate) fn send_all(s: &mut TlsSession, out: &mut dyn std::io::Write) {
    while s.wants_write() {
        s.write_output(out).unwrap();
    }
}

/// A test server's handler: a plain function, so that every server has one type.
pub(crate) type App = fn(HttpServerRequest) -> std::future::Ready<Response>;

/// An HTTPS server on its own thread; stopped gracefully when dropped.
pub(crate) struct Https {
    pub(crate) server: HttpServer<FnHandler<App>>,
    pub(crate) addr: SocketAddr,
}

impl Https {
    /// Serves `app` over TLS with `tls` on a free port of 127.0.0.1.
    pub(crate) fn start(app: App, tls: TlsServerConfig) -> Https {
        let config = HttpServerConfig {
            stream_setup: Some(Arc::new(TlsAcceptor::new(tls))),
            ..HttpServerConfig::default()
        };
        let mut server = HttpServer::new(app).with_config(config);
        let addr = server.bind(0, "127.0.0.1").unwrap();
        server.start(1).unwrap();
        Https { server, addr }
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        // A graceful shutdown stops the server's loops; then its thread ends.
        let done = IoLoop::new().unwrap().run_sync(
            self.server.shutdown(Duration::from_secs(5)),
            Some(Duration::from_secs(20)),
        );
        if done.is_ok() {
            self.server.join();
        }
    }
}
