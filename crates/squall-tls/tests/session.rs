//! The sans-IO session against itself in memory, and the configurations: every byte
//! split is tried where it matters, so the stream layer above can trust the session.

mod common;

use std::io::IoSlice;
use std::sync::Arc;

use common::{send_all, Pki};
use squall_tls::{
    load_certified_key, ReloadableCert, TlsClientConfig, TlsError, TlsServerConfig, TlsSession,
};

/// A small deterministic generator for split points.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound.max(1) as u64) as usize
    }
}

/// Moves everything `from` wants to send into `to`, in pieces of random sizes.
fn shuttle(from: &mut TlsSession, to: &mut TlsSession, rng: &mut Rng) -> Result<usize, TlsError> {
    let mut wire = Vec::new();
    send_all(from, &mut wire);
    let mut at = 0;
    while at < wire.len() {
        let n = 1 + rng.next(wire.len() - at);
        to.feed(&wire[at..at + n])?;
        at += n;
    }
    Ok(wire.len())
}

fn handshake(
    client: &mut TlsSession,
    server: &mut TlsSession,
    rng: &mut Rng,
) -> Result<(), TlsError> {
    for _ in 0..20 {
        if !client.is_handshaking() && !server.is_handshaking() {
            // TLS 1.3: the server's session tickets come after its Finished.
            shuttle(server, client, rng)?;
            return Ok(());
        }
        shuttle(client, server, rng)?;
        shuttle(server, client, rng)?;
    }
    panic!("the handshake did not finish");
}

fn read_all(s: &mut TlsSession) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 700];
    loop {
        let n = s.read_plaintext(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn pair(pki: &Pki, name: &str) -> (TlsSession, TlsSession) {
    (
        TlsSession::client(&pki.client_config(), name).unwrap(),
        TlsSession::server(&pki.server_config()).unwrap(),
    )
}

#[test]
fn handshake_and_data_on_any_split() {
    let pki = Pki::localhost();
    for seed in 1..40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (mut c, mut s) = pair(&pki, "localhost");
        assert!(c.is_handshaking() && s.is_handshaking());
        // Writes wait for the handshake.
        assert_eq!(c.write_plaintext(&[IoSlice::new(b"early")]).unwrap(), 0);
        handshake(&mut c, &mut s, &mut rng).unwrap();
        assert_eq!(s.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(s.server_name(), Some("localhost"));

        let msg = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let slices = [IoSlice::new(&msg[..10]), IoSlice::new(&msg[10..])];
        assert_eq!(c.write_plaintext(&slices).unwrap(), msg.len());
        shuttle(&mut c, &mut s, &mut rng).unwrap();
        assert_eq!(read_all(&mut s), msg);
        assert!(!s.has_buffered_input());

        let reply = vec![b'x'; 1 + rng.next(40_000)];
        let mut sent = 0;
        let mut got = Vec::new();
        while sent < reply.len() {
            sent += s.write_plaintext(&[IoSlice::new(&reply[sent..])]).unwrap();
            shuttle(&mut s, &mut c, &mut rng).unwrap();
            got.extend(read_all(&mut c));
        }
        assert_eq!(got, reply);

        s.send_close_notify();
        shuttle(&mut s, &mut c, &mut rng).unwrap();
        assert!(c.peer_closed());
    }
}

#[test]
fn close_notify_counts_once_the_plaintext_before_it_is_read() {
    let pki = Pki::localhost();
    let (mut c, mut s) = pair(&pki, "localhost");
    handshake(&mut c, &mut s, &mut Rng(11)).unwrap();
    let data = vec![b'y'; 3000];
    assert_eq!(
        s.write_plaintext(&[IoSlice::new(&data)]).unwrap(),
        data.len()
    );
    s.send_close_notify();
    let mut wire = Vec::new();
    send_all(&mut s, &mut wire);
    c.feed(&wire).unwrap();
    // The data and the alert arrived together: the close waits for the data's reader.
    assert!(c.has_buffered_input());
    assert!(!c.peer_closed());
    let mut buf = [0u8; 1000];
    assert_eq!(c.read_plaintext(&mut buf).unwrap(), 1000);
    assert!(!c.peer_closed());
    assert_eq!(read_all(&mut c), &data[1000..]);
    assert!(!c.has_buffered_input());
    assert!(c.peer_closed());
    assert_eq!(c.read_plaintext(&mut buf).unwrap(), 0);
}

/// The records before a bad one were authenticated: their plaintext is still read
/// after the failure (OpenSSL, and so Tornado, gives it before the error).
#[test]
fn plaintext_before_a_bad_record_is_still_read() {
    let pki = Pki::localhost();
    let (mut c, mut s) = pair(&pki, "localhost");
    handshake(&mut c, &mut s, &mut Rng(5)).unwrap();
    let mut wire = Vec::new();
    s.write_plaintext(&[IoSlice::new(b"good")]).unwrap();
    send_all(&mut s, &mut wire);
    let good = wire.len();
    s.write_plaintext(&[IoSlice::new(b"forged")]).unwrap();
    send_all(&mut s, &mut wire);
    // One bit of the second record's tag flipped: it fails authentication.
    *wire.last_mut().unwrap() ^= 1;
    assert!(wire.len() > good);
    let err = c.feed(&wire).unwrap_err();
    assert!(
        matches!(err, TlsError::Protocol(rustls::Error::DecryptError)),
        "{err:?}"
    );
    assert!(c.has_buffered_input());
    assert_eq!(read_all(&mut c), b"good");
    assert!(!c.has_buffered_input());
    assert!(matches!(c.error(), Some(TlsError::Protocol(_))));
}

#[test]
fn more_ciphertext_than_rustls_holds_is_kept_until_read() {
    let pki = Pki::localhost();
    let (mut c, mut s) = pair(&pki, "localhost");
    handshake(&mut c, &mut s, &mut Rng(7)).unwrap();
    // 1 MiB of ciphertext fed at once: rustls takes about 16 KiB of plaintext at a
    // time, the session keeps the rest.
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    let mut sent = 0;
    while sent < data.len() {
        sent += s.write_plaintext(&[IoSlice::new(&data[sent..])]).unwrap();
        send_all(&mut s, &mut wire);
    }
    c.feed(&wire).unwrap();
    assert!(c.has_buffered_input());
    assert_eq!(read_all(&mut c), data);
    assert!(!c.has_buffered_input());
}

#[test]
fn plain_http_to_the_tls_port_is_not_tls() {
    let pki = Pki::localhost();
    let mut s = TlsSession::server(&pki.server_config()).unwrap();
    let err = s.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_err();
    assert!(
        matches!(err, TlsError::NotTls { first_byte: b'G' }),
        "{err}"
    );
    assert!(err.is_peer_error());
    // The failure sticks.
    assert!(matches!(s.feed(b"more"), Err(TlsError::NotTls { .. })));
    assert!(!s.has_buffered_input());
}

#[test]
fn noise_after_a_record_header_is_a_protocol_error() {
    let pki = Pki::localhost();
    let mut s = TlsSession::server(&pki.server_config()).unwrap();
    // A handshake record header, then garbage.
    let mut noise = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    noise.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    let err = s.feed(&noise).unwrap_err();
    assert!(matches!(err, TlsError::Protocol(_)), "{err}");
}

#[test]
fn eof_during_the_handshake() {
    let pki = Pki::localhost();
    let (mut c, mut s) = pair(&pki, "localhost");
    shuttle(&mut c, &mut s, &mut Rng(3)).unwrap();
    assert!(matches!(s.feed_eof(), Err(TlsError::HandshakeEof)));
}

/// `err` is a handshake refused because the certificate is not for the name asked.
fn assert_wrong_name(err: &TlsError) {
    let TlsError::Protocol(rustls::Error::InvalidCertificate(why)) = err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(
            why,
            rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. }
        ),
        "{why:?}"
    );
}

#[test]
fn hostname_is_checked_by_the_client() {
    // Tornado's test_check_hostname: a certificate for another name is refused.
    let pki = Pki::new(&["other.example"]);
    let (mut c, mut s) = pair(&pki, "localhost");
    let err = handshake(&mut c, &mut s, &mut Rng(5)).unwrap_err();
    assert_wrong_name(&err);
}

/// Tornado's TestIOStreamCheckHostname trusts a self-signed certificate as its own CA,
/// as OpenSSL does. `openssl req -x509` marks such a certificate `CA:TRUE`, which
/// webpki alone refuses as a CA used as an end entity; trusted as itself, it still has
/// its name checked, and another self-signed certificate is still refused.
#[test]
fn a_self_signed_ca_certificate_is_trusted_as_itself() {
    let pki = Pki::self_signed(&["localhost"]);
    let (mut c, mut s) = pair(&pki, "localhost");
    handshake(&mut c, &mut s, &mut Rng(21)).unwrap();
    // Another name: refused for the name.
    let (mut c, mut s) = pair(&pki, "other.example");
    let err = handshake(&mut c, &mut s, &mut Rng(22)).unwrap_err();
    assert_wrong_name(&err);
    // Another self-signed certificate for the same name: not trusted.
    let other = Pki::self_signed(&["localhost"]);
    let mut c = TlsSession::client(&other.client_config(), "localhost").unwrap();
    let mut s = TlsSession::server(&pki.server_config()).unwrap();
    let err = handshake(&mut c, &mut s, &mut Rng(23)).unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::Protocol(rustls::Error::InvalidCertificate(_))
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_issuer_is_refused() {
    let pki = Pki::localhost();
    let other = Pki::localhost();
    let mut c = TlsSession::client(&other.client_config(), "localhost").unwrap();
    let mut s = TlsSession::server(&pki.server_config()).unwrap();
    let err = handshake(&mut c, &mut s, &mut Rng(9)).unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::Protocol(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn ip_address_server_name() {
    let pki = Pki::localhost();
    let (mut c, mut s) = pair(&pki, "127.0.0.1");
    handshake(&mut c, &mut s, &mut Rng(11)).unwrap();
    assert_eq!(s.server_name(), None, "no SNI for an IP address");
    // An IPv6 address, bare or in brackets (as URLs and TcpClient::connect write it,
    // and TlsConnector::connect passes it on).
    let pki = Pki::new(&["::1"]);
    for name in ["::1", "[::1]"] {
        let (mut c, mut s) = pair(&pki, name);
        handshake(&mut c, &mut s, &mut Rng(3)).unwrap();
    }
    assert!(TlsSession::client(&pki.client_config(), "[localhost]").is_err());
}

#[test]
fn bad_server_name() {
    let pki = Pki::localhost();
    let err = TlsSession::client(&pki.client_config(), "not a name").unwrap_err();
    assert!(matches!(err, TlsError::InvalidServerName(_)));
}

// ------------------------------------------------------------------ configuration

#[test]
fn bad_ssl_options_fail_at_build_time() {
    // Tornado's test_missing_arguments / test_missing_key: errors at start-up.
    let pki = Pki::localhost();
    let missing = pki.dir.join("missing.pem");
    assert!(matches!(
        TlsServerConfig::from_pem_files(&missing, &pki.key),
        Err(TlsError::File { .. })
    ));
    assert!(matches!(
        TlsServerConfig::from_pem_files(&pki.cert, &missing),
        Err(TlsError::File { .. })
    ));
    // The key file as the certificate: no certificate in it.
    assert!(matches!(
        TlsServerConfig::from_pem_files(&pki.key, &pki.key),
        Err(TlsError::NoCertificates { .. })
    ));
    assert!(matches!(
        TlsServerConfig::from_pem_files(&pki.cert, &pki.cert),
        Err(TlsError::NoPrivateKey { .. })
    ));
    // Another certificate's key.
    let other = Pki::localhost();
    let err = TlsServerConfig::from_pem_files(&pki.cert, &other.key).unwrap_err();
    assert!(matches!(err, TlsError::Config(_)), "{err}");
    // Garbage.
    let junk = pki.dir.join("junk.pem");
    std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\n!!!\n").unwrap();
    assert!(matches!(
        TlsServerConfig::from_pem_files(&junk, &pki.key),
        Err(TlsError::Pem { .. })
    ));
    assert!(matches!(
        TlsServerConfig::builder().build(),
        Err(TlsError::NoCertificates { .. })
    ));
    assert!(matches!(
        TlsClientConfig::with_roots(rustls::RootCertStore::empty()),
        Err(TlsError::NoRoots)
    ));
}

#[test]
fn reloaded_certificate_is_used_by_new_handshakes() {
    let first = Pki::localhost();
    let second = Pki::localhost();
    let cert = ReloadableCert::from_pem_files(&first.cert, &first.key).unwrap();
    let config = TlsServerConfig::builder()
        .reloadable(cert.clone())
        .build()
        .unwrap();
    let connect = |pki: &Pki| {
        let mut c = TlsSession::client(&pki.client_config(), "localhost").unwrap();
        let mut s = TlsSession::server(&config).unwrap();
        handshake(&mut c, &mut s, &mut Rng(13))
    };
    connect(&first).unwrap();
    assert!(connect(&second).is_err());
    // Replace the files, reload: new handshakes present the new certificate.
    std::fs::copy(&second.cert, &first.cert).unwrap();
    std::fs::copy(&second.key, &first.key).unwrap();
    cert.reload().unwrap();
    connect(&second).unwrap();
    assert!(connect(&first).is_err());
    // A broken file keeps the old certificate in use.
    std::fs::write(&first.cert, "nothing").unwrap();
    assert!(cert.reload().is_err());
    connect(&second).unwrap();
}

#[test]
fn sni_picks_the_certificate() {
    let a = Pki::new(&["a.test"]);
    let b = Pki::new(&["b.test"]);
    let key_a = load_certified_key(&a.cert, &a.key).unwrap();
    let key_b = load_certified_key(&b.cert, &b.key).unwrap();
    let config = TlsServerConfig::builder()
        .sni(move |name| match name {
            Some("a.test") => Some(Arc::clone(&key_a)),
            Some("b.test") => Some(Arc::clone(&key_b)),
            _ => None,
        })
        .build()
        .unwrap();
    for (pki, name) in [(&a, "a.test"), (&b, "b.test")] {
        let mut c = TlsSession::client(&pki.client_config(), name).unwrap();
        let mut s = TlsSession::server(&config).unwrap();
        handshake(&mut c, &mut s, &mut Rng(17)).unwrap();
        assert_eq!(s.server_name(), Some(name));
    }
    // An unknown name: the hook says no, the handshake fails on both sides.
    let mut c = TlsSession::client(&a.client_config(), "c.test").unwrap();
    let mut s = TlsSession::server(&config).unwrap();
    assert!(handshake(&mut c, &mut s, &mut Rng(19)).is_err());
}

#[test]
fn protocol_versions_and_alpn_are_configurable() {
    let pki = Pki::localhost();
    let key = load_certified_key(&pki.cert, &pki.key).unwrap();
    let config = TlsServerConfig::builder()
        .certificate(key)
        .versions(&[&rustls::version::TLS12])
        .alpn(["h2", "http/1.1"])
        .build()
        .unwrap();
    let mut c = TlsSession::client(&pki.client_config(), "localhost").unwrap();
    let mut s = TlsSession::server(&config).unwrap();
    handshake(&mut c, &mut s, &mut Rng(23)).unwrap();
    assert_eq!(s.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    // The client offered only http/1.1.
    assert_eq!(s.alpn_protocol(), Some(&b"http/1.1"[..]));
    let client = pki.client_config().with_alpn(["h3"]);
    let mut c = TlsSession::client(&client, "localhost").unwrap();
    let mut s = TlsSession::server(&config).unwrap();
    // No ALPN protocol in common: rustls refuses (RFC 7301 no_application_protocol).
    assert!(handshake(&mut c, &mut s, &mut Rng(29)).is_err());
}

// The server's default ALPN list is http/1.1 then http/1.0: a client offering only
// http/1.0 (`curl --http1.0`) is served (it got no_application_protocol), and one
// offering both gets http/1.1.
#[test]
fn a_client_offering_only_http10_is_served() {
    let pki = Pki::localhost();
    for (offer, chosen) in [
        (&["http/1.0"][..], &b"http/1.0"[..]),
        (&["http/1.0", "http/1.1"][..], &b"http/1.1"[..]),
    ] {
        let client = pki.client_config().with_alpn(offer.iter().copied());
        let mut c = TlsSession::client(&client, "localhost").unwrap();
        let mut s = TlsSession::server(&pki.server_config()).unwrap();
        handshake(&mut c, &mut s, &mut Rng(31)).unwrap();
        assert_eq!(s.alpn_protocol(), Some(chosen), "{offer:?}");
    }
}

#[test]
fn system_roots_load_or_say_why() {
    match TlsClientConfig::with_system_roots() {
        Ok(_) => {}
        Err(TlsError::NoRoots) => eprintln!("no system roots on this machine"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}
