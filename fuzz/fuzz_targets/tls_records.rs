//! squall-tls's record handling on arbitrary splits: a server and a client session
//! handshake and exchange data with every TLS record cut where the input says, and
//! plaintext always comes out whole and in order; a server fed arbitrary bytes, or a
//! real exchange with one byte flipped, fails with a typed error and never panics or
//! yields altered plaintext.
#![no_main]

use std::io::IoSlice;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::PrivateKeyDer;
use squall_tls::{certified_key, TlsClientConfig, TlsServerConfig, TlsSession};

fn configs() -> &'static (TlsServerConfig, TlsClientConfig) {
    static C: OnceLock<(TlsServerConfig, TlsClientConfig)> = OnceLock::new();
    C.get_or_init(|| {
        let g = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key = PrivateKeyDer::try_from(g.signing_key.serialize_der()).unwrap();
        let server = TlsServerConfig::builder()
            .certificate(certified_key(vec![g.cert.der().clone()], key).unwrap())
            .build()
            .unwrap();
        let mut roots = squall_tls::rustls::RootCertStore::empty();
        roots.add(g.cert.der().clone()).unwrap();
        (server, TlsClientConfig::with_roots(roots).unwrap())
    })
}

/// The split sizes: cycled from the input, 1 to 256 bytes each.
struct Cuts<'a> {
    cuts: &'a [u8],
    at: usize,
}

impl Cuts<'_> {
    fn next(&mut self) -> usize {
        if self.cuts.is_empty() {
            return usize::MAX;
        }
        let n = usize::from(self.cuts[self.at % self.cuts.len()]) + 1;
        self.at += 1;
        n
    }
}

/// Everything `from` has to send, fed to `to` in cut pieces, with byte `flip` (counted
/// over the whole run) inverted. `Err` once `to` refuses.
fn shuttle(
    from: &mut TlsSession,
    to: &mut TlsSession,
    cuts: &mut Cuts<'_>,
    sent: &mut usize,
    flip: Option<usize>,
) -> Result<(), squall_tls::TlsError> {
    let mut wire = Vec::new();
    while from.wants_write() {
        from.write_output(&mut wire).unwrap();
    }
    if let Some(f) = flip {
        if f >= *sent && f < *sent + wire.len() {
            wire[f - *sent] ^= 0xff;
        }
    }
    *sent += wire.len();
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let n = cuts.next().min(rest.len());
        to.feed(&rest[..n])?;
        rest = &rest[n..];
    }
    Ok(())
}

fn drain(s: &mut TlsSession, out: &mut Vec<u8>) {
    let mut buf = [0u8; 333];
    loop {
        let n = s.read_plaintext(&mut buf).unwrap();
        if n == 0 {
            return;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn exchange(payload: &[u8], cuts: &[u8], flip: Option<usize>) {
    let (sc, cc) = configs();
    let mut server = TlsSession::server(sc).unwrap();
    let mut client = TlsSession::client(cc, "localhost").unwrap();
    let mut cuts = Cuts { cuts, at: 0 };
    let mut sent = 0;
    let mut got_server = Vec::new();
    let mut got_client = Vec::new();
    let mut taken = 0;
    for _ in 0..64 {
        if !client.is_handshaking() && taken < payload.len() {
            let n = client
                .write_plaintext(&[IoSlice::new(&payload[taken..])])
                .unwrap();
            taken += n;
        }
        if shuttle(&mut client, &mut server, &mut cuts, &mut sent, flip).is_err() {
            assert!(flip.is_some(), "a clean exchange failed");
            return;
        }
        drain(&mut server, &mut got_server);
        // The server echoes what it got.
        if !server.is_handshaking() && !got_server.is_empty() {
            let echo = std::mem::take(&mut got_server);
            let mut at = 0;
            while at < echo.len() {
                let n = server.write_plaintext(&[IoSlice::new(&echo[at..])]).unwrap();
                if n == 0 {
                    // The outbox is full: send it first.
                    if shuttle(&mut server, &mut client, &mut cuts, &mut sent, flip).is_err() {
                        assert!(flip.is_some(), "a clean exchange failed");
                        return;
                    }
                    drain(&mut client, &mut got_client);
                }
                at += n;
            }
        }
        if shuttle(&mut server, &mut client, &mut cuts, &mut sent, flip).is_err() {
            assert!(flip.is_some(), "a clean exchange failed");
            return;
        }
        drain(&mut client, &mut got_client);
        if taken == payload.len() && got_client.len() == payload.len() {
            break;
        }
    }
    // With a flipped byte the exchange may also just stall (a flipped length): but
    // whatever plaintext came out is a prefix of what was sent, never altered bytes.
    assert!(
        payload.starts_with(&got_client),
        "the client got bytes that were not sent"
    );
    if flip.is_none() {
        assert_eq!(got_client.len(), payload.len(), "the echo did not complete");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        // Arbitrary bytes to a server, in arbitrary splits.
        0 => {
            let (sc, _) = configs();
            let mut server = TlsSession::server(sc).unwrap();
            let half = rest.len() / 2;
            let mut cuts = Cuts { cuts: &rest[..half], at: 0 };
            let mut input = &rest[half..];
            let mut buf = [0u8; 512];
            while !input.is_empty() {
                let n = cuts.next().min(input.len());
                if server.feed(&input[..n]).is_err() {
                    return;
                }
                input = &input[n..];
                let _ = server.read_plaintext(&mut buf).unwrap();
            }
        }
        // A clean exchange: the payload is the first half, the cuts the rest.
        1 => {
            let half = rest.len() / 2;
            exchange(&rest[..half], &rest[half..], None);
        }
        // One byte flipped.
        _ => {
            if rest.len() < 2 {
                return;
            }
            let flip = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            let rest = &rest[2..];
            let half = rest.len() / 2;
            exchange(&rest[..half], &rest[half..], Some(flip));
        }
    }
});
