//! [`TlsSession`]: a rustls connection (server or client) as a sans-IO byte transform:
//! ciphertext in, plaintext out; plaintext in, ciphertext out. It owns no socket and no
//! loop, so it is unit-tested (and fuzzed) against itself in memory; the stream layer
//! ([`crate::stream`]) is the thin part that moves its bytes to and from an fd.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};

use bytes::{Buf, BytesMut};
use rustls::pki_types::ServerName;
use rustls::{
    CipherSuite, ClientConnection, Connection, HandshakeKind, ProtocolVersion, ServerConnection,
};
use rustls_pki_types::CertificateDer;

use crate::config::{TlsClientConfig, TlsServerConfig};
use crate::error::TlsError;

/// The TLS record content types (change_cipher_spec 20 to heartbeat 24): a peer whose
/// first byte is anything else is not speaking TLS.
const RECORD_TYPES: std::ops::RangeInclusive<u8> = 20..=24;

/// One TLS connection's state, without I/O. Tornado's `SSLObject` (the memory-BIO side
/// of `ssl`), on rustls's `ServerConnection`/`ClientConnection`.
///
/// - [`feed`](TlsSession::feed) takes the ciphertext that arrived; the plaintext it
///   holds comes out of [`read_plaintext`](TlsSession::read_plaintext).
/// - [`write_plaintext`](TlsSession::write_plaintext) takes plaintext to send (nothing
///   while the handshake runs: writes wait for it, as in Tornado); the ciphertext to
///   send, handshake messages and alerts included, comes out of
///   [`write_output`](TlsSession::write_output) while
///   [`wants_write`](TlsSession::wants_write).
pub struct TlsSession {
    conn: Connection,
    /// Ciphertext received but not yet taken by rustls (its buffers were full): fed
    /// again as plaintext is read. Empty, capacity 0, nearly always.
    pending: BytesMut,
    /// The first byte the peer ever sent, to tell "not TLS" from a TLS failure.
    first_byte: Option<u8>,
    /// The failure, once there is one: every later call reports it.
    error: Option<TlsError>,
    /// The transport reached end of file.
    eof: bool,
    /// The peer sent `close_notify`.
    peer_closed: bool,
    /// How many bytes of plaintext rustls holds for [`read_plaintext`]: rustls says so
    /// on every `process_new_packets`, and each read takes its share off, so finding
    /// out whether there is any costs no call into rustls. `UNKNOWN` (a connection made
    /// by hand may hold some) until the first `process_new_packets` or short read.
    ///
    /// [`read_plaintext`]: TlsSession::read_plaintext
    plain: usize,
}

/// [`TlsSession::plain`] before rustls has said: "maybe some", so the reader is asked.
const UNKNOWN: usize = usize::MAX;

impl TlsSession {
    /// The server side of a new connection.
    ///
    /// # Errors
    ///
    /// [`TlsError::Config`] if rustls refuses the configuration.
    pub fn server(config: &TlsServerConfig) -> Result<TlsSession, TlsError> {
        let conn = ServerConnection::new(config.rustls().clone()).map_err(TlsError::Config)?;
        Ok(TlsSession::from_connection(conn.into()))
    }

    /// The client side of a new connection to `server_name` (a DNS name, or an IP
    /// address in text form, an IPv6 one bare or in brackets as a URL and
    /// `TcpClient::connect` take it), whose certificate must be valid for that name.
    ///
    /// # Errors
    ///
    /// [`TlsError::InvalidServerName`]; [`TlsError::Config`] if rustls refuses the
    /// configuration.
    pub fn client(config: &TlsClientConfig, server_name: &str) -> Result<TlsSession, TlsError> {
        let bare = server_name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .filter(|n| n.parse::<std::net::Ipv6Addr>().is_ok())
            .unwrap_or(server_name);
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|_| TlsError::InvalidServerName(server_name.to_owned()))?;
        let conn =
            ClientConnection::new(config.rustls().clone(), name).map_err(TlsError::Config)?;
        Ok(TlsSession::from_connection(conn.into()))
    }

    /// Wraps a rustls connection made by hand.
    pub fn from_connection(conn: Connection) -> TlsSession {
        TlsSession {
            conn,
            pending: BytesMut::new(),
            first_byte: None,
            error: None,
            eof: false,
            peer_closed: false,
            plain: UNKNOWN,
        }
    }

    /// Takes ciphertext that arrived from the peer and decrypts what it completes.
    /// Everything is taken: what rustls cannot hold yet (its plaintext buffer is full
    /// until [`read_plaintext`](TlsSession::read_plaintext) drains it) is kept here.
    ///
    /// # Errors
    ///
    /// [`TlsError::NotTls`] if the peer's first byte cannot start a TLS record;
    /// [`TlsError::Protocol`] for any TLS failure. rustls queues an alert for the
    /// peer: send [`write_output`](TlsSession::write_output) before closing.
    pub fn feed(&mut self, cipher: &[u8]) -> Result<(), TlsError> {
        self.check()?;
        if cipher.is_empty() {
            return Ok(());
        }
        if self.first_byte.is_none() {
            self.first_byte = Some(cipher[0]);
            if !RECORD_TYPES.contains(&cipher[0]) {
                return Err(self.fail(TlsError::NotTls {
                    first_byte: cipher[0],
                }));
            }
        }
        if self.pending.is_empty() {
            let mut rest = cipher;
            self.pump(&mut rest)?;
            if !rest.is_empty() {
                self.pending.extend_from_slice(rest);
            }
            Ok(())
        } else {
            self.pending.extend_from_slice(cipher);
            self.pump_pending()
        }
    }

    /// Feeds `rest` to rustls until it is all taken or rustls is full; every byte
    /// taken is processed (one `process_new_packets` per `read_tls`: what one read
    /// delivers is usually all there is).
    fn pump(&mut self, rest: &mut &[u8]) -> Result<(), TlsError> {
        while !rest.is_empty() {
            match self.conn.read_tls(rest) {
                // close_notify was received (and processed): rustls reads nothing more,
                // and nothing after it counts.
                Ok(0) => {
                    *rest = &[];
                    break;
                }
                Ok(_) => {}
                // rustls's buffers are full: the plaintext must be read first.
                Err(_) => {
                    self.process()?;
                    if self.plain > 0 {
                        break;
                    }
                    // Full with no plaintext to drain: a handshake message past
                    // rustls's 64 KiB limit.
                    match self.conn.read_tls(rest) {
                        Ok(_) => {}
                        Err(e) => {
                            return Err(self
                                .fail(TlsError::Protocol(rustls::Error::General(e.to_string()))))
                        }
                    }
                }
            }
            self.process()?;
        }
        Ok(())
    }

    fn pump_pending(&mut self) -> Result<(), TlsError> {
        let mut pending = std::mem::take(&mut self.pending);
        let mut rest = &pending[..];
        let res = self.pump(&mut rest);
        let used = pending.len() - rest.len();
        pending.advance(used);
        if pending.is_empty() {
            pending = BytesMut::new();
        }
        self.pending = pending;
        res
    }

    fn process(&mut self) -> Result<(), TlsError> {
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.peer_closed |= state.peer_has_closed();
                self.plain = state.plaintext_bytes_to_read();
                Ok(())
            }
            // A goodbye before the handshake ends is a peer that went away (a client
            // that gave up), as an end of file there is, not a protocol failure.
            Err(rustls::Error::AlertReceived(rustls::AlertDescription::CloseNotify))
                if self.conn.is_handshaking() =>
            {
                Err(self.fail(TlsError::HandshakeEof))
            }
            Err(e) => Err(self.fail(TlsError::Protocol(e))),
        }
    }

    fn fail(&mut self, e: TlsError) -> TlsError {
        if self.error.is_none() {
            log::debug!("TLS session failed: {e}");
            self.error = Some(e.clone());
            // The records before the bad one were authenticated and decrypted: their
            // plaintext stays readable (rustls keeps it), in an amount the failed call
            // did not report: if there is any, the reader is asked. Ciphertext after
            // it is worthless.
            let held = matches!(self.conn.reader().into_first_chunk(), Ok(c) if !c.is_empty());
            self.plain = if held { UNKNOWN } else { 0 };
            self.pending = BytesMut::new();
        }
        e
    }

    fn check(&self) -> Result<(), TlsError> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Tells the session that the transport reached end of file.
    ///
    /// # Errors
    ///
    /// [`TlsError::HandshakeEof`] if the handshake had not finished. After it, an end of
    /// file without the peer's `close_notify` is taken as a plain end of file, as every
    /// HTTP client and server does: HTTP frames its messages itself. Where the end of
    /// the stream is the end of the data, [`truncated`](TlsSession::truncated) tells.
    pub fn feed_eof(&mut self) -> Result<(), TlsError> {
        self.eof = true;
        self.check()?;
        if self.conn.is_handshaking() {
            return Err(self.fail(TlsError::HandshakeEof));
        }
        Ok(())
    }

    /// Copies decrypted plaintext into `dst` and returns how many bytes; 0 when none is
    /// there (or `dst` is empty). After a failure, the plaintext of the records that
    /// came before the bad one is still given, as OpenSSL gives it before its error.
    #[inline]
    pub fn read_plaintext(&mut self, dst: &mut [u8]) -> Result<usize, TlsError> {
        if self.plain == 0 && self.pending.is_empty() {
            return Ok(0);
        }
        self.read_held(dst)
    }

    fn read_held(&mut self, dst: &mut [u8]) -> Result<usize, TlsError> {
        let mut filled = 0;
        loop {
            if self.plain > 0 && filled < dst.len() {
                let want = dst.len() - filled;
                // An error is WouldBlock (nothing decrypted) or the end of the stream:
                // nothing to give either way.
                let n = self
                    .conn
                    .reader()
                    .read(&mut dst[filled..])
                    .unwrap_or_default();
                filled += n;
                // rustls's read drains every chunk it holds into `dst`: a short one
                // leaves nothing behind.
                self.plain = if n < want {
                    0
                } else {
                    self.plain.saturating_sub(n)
                };
            }
            if filled == dst.len() || self.pending.is_empty() || self.error.is_some() {
                break;
            }
            // rustls had no room: now that plaintext was drained, feed the rest.
            self.pump_pending()?;
            if self.plain == 0 {
                break;
            }
        }
        Ok(filled)
    }

    /// Whether decrypted plaintext, or ciphertext not yet decrypted, is held here: a
    /// reader must come back without waiting for the socket.
    pub fn has_buffered_input(&mut self) -> bool {
        !self.pending.is_empty() || self.plain > 0
    }

    /// Takes plaintext to encrypt and send; returns how much was taken. Nothing is taken
    /// while the handshake runs, or while rustls holds its limit of unsent ciphertext
    /// (64 KiB): send [`write_output`](TlsSession::write_output) first.
    ///
    /// # Errors
    ///
    /// The session's failure, if it failed.
    pub fn write_plaintext(&mut self, src: &[IoSlice<'_>]) -> Result<usize, TlsError> {
        self.check()?;
        if self.conn.is_handshaking() {
            return Ok(0);
        }
        match self.conn.writer().write_vectored(src) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(TlsError::Protocol(rustls::Error::General(e.to_string())))),
        }
    }

    /// Whether ciphertext waits to be sent.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes waiting ciphertext to `out` (one `write` call on it); returns how many
    /// bytes went.
    ///
    /// # Errors
    ///
    /// `out`'s error (`WouldBlock` when a socket is full).
    pub fn write_output(&mut self, out: &mut dyn Write) -> io::Result<usize> {
        self.conn.write_tls(out)
    }

    /// Whether the handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the peer sent `close_notify` (and all plaintext before it was read).
    pub fn peer_closed(&mut self) -> bool {
        self.peer_closed && self.plain == 0
    }

    /// Whether the transport reached end of file.
    pub fn transport_eof(&self) -> bool {
        self.eof
    }

    /// Whether the transport reached end of file after the handshake without the
    /// peer's `close_notify`: a truncation, which anyone on the path can cause. The
    /// session takes it as a plain end of file (HTTP frames its messages itself); a
    /// protocol whose data ends with the connection must refuse it (RFC 8446 §6.1).
    pub fn truncated(&self) -> bool {
        self.eof && !self.peer_closed && self.error.is_none() && !self.conn.is_handshaking()
    }

    /// The failure, if the session failed.
    pub fn error(&self) -> Option<&TlsError> {
        self.error.as_ref()
    }

    /// Queues a `close_notify` alert (send it with
    /// [`write_output`](TlsSession::write_output)).
    pub fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// The ALPN protocol agreed, once the handshake is done.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The protocol version agreed, once known.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The cipher suite agreed, once known (Python's `SSLSocket.cipher()`).
    pub fn cipher_suite(&self) -> Option<CipherSuite> {
        self.conn.negotiated_cipher_suite().map(|s| s.suite())
    }

    /// Whether the handshake resumed an earlier session (Python's
    /// `SSLSocket.session_reused`); `false` until the handshake is done.
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// The peer's certificate chain, once the handshake is done (a server sees one only
    /// if it asked for client certificates).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The server name the client asked for (SNI), on the server side.
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(s) => s.server_name(),
            Connection::Client(_) => None,
        }
    }

    /// Whether this is the server side.
    pub fn is_server(&self) -> bool {
        matches!(self.conn, Connection::Server(_))
    }

    /// The rustls connection inside.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("server", &self.is_server())
            .field("handshaking", &self.is_handshaking())
            .field("pending", &self.pending.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}
