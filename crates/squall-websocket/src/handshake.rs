//! The opening handshake (RFC 6455 §4): checking a client's upgrade request and writing
//! the server's `101 Switching Protocols`; writing a client's request and checking the
//! server's answer.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use sha1::{Digest, Sha1};

use crate::deflate::{DeflateConfig, DeflateParams, PERMESSAGE_DEFLATE};
use crate::extensions::parse_extensions_strict;
use crate::rng::Rng;

/// The GUID RFC 6455 §1.3 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Key`.
pub const SEC_WEBSOCKET_KEY: &str = "sec-websocket-key";
/// `Sec-WebSocket-Accept`.
pub const SEC_WEBSOCKET_ACCEPT: &str = "sec-websocket-accept";
/// `Sec-WebSocket-Version`.
pub const SEC_WEBSOCKET_VERSION: &str = "sec-websocket-version";
/// `Sec-WebSocket-Protocol`.
pub const SEC_WEBSOCKET_PROTOCOL: &str = "sec-websocket-protocol";
/// `Sec-WebSocket-Extensions`.
pub const SEC_WEBSOCKET_EXTENSIONS: &str = "sec-websocket-extensions";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(
///     squall_websocket::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    BASE64.encode(sha1.finalize())
}

/// A fresh `Sec-WebSocket-Key`: 16 unpredictable bytes, base64-encoded.
pub fn generate_key() -> String {
    let mut rng = Rng::new();
    let mut nonce = [0; 16];
    nonce[..8].copy_from_slice(&rng.next_u64().to_ne_bytes());
    nonce[8..].copy_from_slice(&rng.next_u64().to_ne_bytes());
    BASE64.encode(nonce)
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request is not a GET. 405 (Tornado answers every GET-only refusal with 400).
    NotGet,
    /// The request is older than HTTP/1.1 (RFC 6455 §4.1 asks for 1.1 or later). 400.
    NotHttp11,
    /// No `Upgrade: websocket`. 400.
    NotUpgrade,
    /// No `upgrade` token in `Connection`. 400.
    NotConnectionUpgrade,
    /// `Sec-WebSocket-Version` missing or other than 13. 426, with
    /// `Sec-WebSocket-Version: 13`.
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` missing, repeated, or not 16 bytes in base64. 400.
    BadKey,
    /// The `Origin` was refused by `check_origin`. 403.
    OriginRefused,
    /// Client side: the server answered with this status instead of 101.
    Status(StatusCode),
    /// Client side: the 101 lacks `Upgrade: websocket` or `Connection: upgrade`.
    BadUpgradeResponse,
    /// Client side: `Sec-WebSocket-Accept` missing or wrong for the key sent.
    BadAccept,
    /// Client side: the server chose a subprotocol that was not offered.
    UnexpectedSubprotocol,
    /// Client side: the server answered with an extension that was not offered, with
    /// parameters the offer does not allow, or with a `Sec-WebSocket-Extensions` value
    /// that does not parse (the reason says which).
    BadExtension(&'static str),
}

impl HandshakeError {
    /// The status a server answers a refused request with.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::NotGet => StatusCode::METHOD_NOT_ALLOWED,
            HandshakeError::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            HandshakeError::OriginRefused => StatusCode::FORBIDDEN,
            HandshakeError::Status(status) => *status,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::NotGet => f.write_str("a WebSocket handshake must be a GET"),
            HandshakeError::NotHttp11 => {
                f.write_str("a WebSocket handshake must be HTTP/1.1 or later")
            }
            HandshakeError::NotUpgrade => f.write_str("Can \"Upgrade\" only to \"WebSocket\"."),
            HandshakeError::NotConnectionUpgrade => {
                f.write_str("\"Connection\" must be \"Upgrade\".")
            }
            HandshakeError::UnsupportedVersion => {
                f.write_str("unsupported Sec-WebSocket-Version (13 only)")
            }
            HandshakeError::BadKey => f.write_str("missing or invalid Sec-WebSocket-Key"),
            HandshakeError::OriginRefused => f.write_str("Cross origin websockets not allowed"),
            HandshakeError::Status(status) => write!(f, "the server answered {status}"),
            HandshakeError::BadUpgradeResponse => f.write_str("101 without Upgrade: websocket"),
            HandshakeError::BadAccept => f.write_str("wrong Sec-WebSocket-Accept"),
            HandshakeError::UnexpectedSubprotocol => {
                f.write_str("the server chose a subprotocol not offered")
            }
            HandshakeError::BadExtension(why) => {
                write!(f, "bad Sec-WebSocket-Extensions answer: {why}")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Whether any `name` header holds `token` in its comma-separated list (case-insensitive).
fn has_token(headers: &HeaderMap, name: impl http::header::AsHeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The comma-separated items of every `name` header, joined in order.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// A client's upgrade request, checked (RFC 6455 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The `Sec-WebSocket-Key`.
    pub key: String,
    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in order.
    pub subprotocols: Vec<String>,
    /// The raw `Sec-WebSocket-Extensions` values, joined with commas.
    pub extensions: String,
}

impl UpgradeRequest {
    /// Checks the method and headers of an upgrade request.
    ///
    /// # Errors
    ///
    /// The first rule the request breaks, as a [`HandshakeError`] that maps to the
    /// status to answer with.
    pub fn parse(method: &Method, headers: &HeaderMap) -> Result<UpgradeRequest, HandshakeError> {
        if method != Method::GET {
            return Err(HandshakeError::NotGet);
        }
        if !has_token(headers, UPGRADE, "websocket") {
            return Err(HandshakeError::NotUpgrade);
        }
        if !has_token(headers, CONNECTION, "upgrade") {
            return Err(HandshakeError::NotConnectionUpgrade);
        }
        let mut versions = headers.get_all(SEC_WEBSOCKET_VERSION).iter();
        match (versions.next(), versions.next()) {
            (Some(v), None) if v.as_bytes().trim_ascii() == b"13" => {}
            _ => return Err(HandshakeError::UnsupportedVersion),
        }
        let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
        let key = match (keys.next(), keys.next()) {
            (Some(key), None) => key.to_str().map_err(|_| HandshakeError::BadKey)?.trim(),
            _ => return Err(HandshakeError::BadKey),
        };
        match BASE64.decode(key) {
            Ok(nonce) if nonce.len() == 16 => {}
            _ => return Err(HandshakeError::BadKey),
        }
        Ok(UpgradeRequest {
            key: key.to_owned(),
            subprotocols: list(headers, SEC_WEBSOCKET_PROTOCOL),
            extensions: list(headers, SEC_WEBSOCKET_EXTENSIONS).join(", "),
        })
    }

    /// permessage-deflate for this request: the first offer `config` accepts, with the
    /// `Sec-WebSocket-Extensions` value to answer with. `None` when there is none.
    pub fn negotiate_deflate(&self, config: &DeflateConfig) -> Option<(DeflateParams, String)> {
        DeflateParams::accept_offers(&self.extensions, config)
    }

    /// The headers of the `101 Switching Protocols` that accepts this request, with the
    /// chosen subprotocol and the extensions answer (from
    /// [`UpgradeRequest::negotiate_deflate`]), if any.
    pub fn response_headers(
        &self,
        subprotocol: Option<&str>,
        extensions: Option<&str>,
    ) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&accept_key(self.key.as_bytes())) {
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(Ok(value)) = subprotocol.map(HeaderValue::from_str) {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
        if let Some(Ok(value)) = extensions.map(HeaderValue::from_str) {
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
        }
        headers
    }
}

/// The headers that turn a client's GET into a WebSocket upgrade request (`Host` aside).
pub fn client_request_headers(
    key: &str,
    subprotocols: &[String],
    deflate: Option<&DeflateConfig>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    if let Ok(key) = HeaderValue::from_str(key) {
        headers.insert(SEC_WEBSOCKET_KEY, key);
    }
    if !subprotocols.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&subprotocols.join(", ")) {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
    if let Some(config) = deflate {
        if let Ok(value) = HeaderValue::from_str(&DeflateParams::offer(config)) {
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
        }
    }
    headers
}

/// What a client learns from an accepted handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol the server chose, if any.
    pub subprotocol: Option<String>,
    /// permessage-deflate, if the server accepted it.
    pub deflate: Option<DeflateParams>,
}

/// Client side: checks the server's answer to a request made with
/// [`client_request_headers`] (RFC 6455 §4.1, the client's checks).
///
/// # Errors
///
/// [`HandshakeError::Status`] when the status is not 101 (Tornado's
/// `websocket_connect` raises `HTTPClientError` with the code), else the rule the
/// answer breaks.
pub fn check_response(
    status: StatusCode,
    headers: &HeaderMap,
    key: &str,
    subprotocols: &[String],
    deflate: Option<&DeflateConfig>,
) -> Result<Accepted, HandshakeError> {
    if status != StatusCode::SWITCHING_PROTOCOLS {
        return Err(HandshakeError::Status(status));
    }
    if !has_token(headers, UPGRADE, "websocket") || !has_token(headers, CONNECTION, "upgrade") {
        return Err(HandshakeError::BadUpgradeResponse);
    }
    let accept = headers
        .get(SEC_WEBSOCKET_ACCEPT)
        .map(|v| v.as_bytes().trim_ascii());
    if accept != Some(accept_key(key.as_bytes()).as_bytes()) {
        return Err(HandshakeError::BadAccept);
    }
    let chosen = list(headers, SEC_WEBSOCKET_PROTOCOL);
    let subprotocol = match chosen.as_slice() {
        [] => None,
        [one] if subprotocols.contains(one) => Some(one.clone()),
        _ => return Err(HandshakeError::UnexpectedSubprotocol),
    };
    // Read whole: an answer with an element the client cannot read is refused, not
    // read as if the element were not there (RFC 6455 §4.1; RFC 7692 §5).
    let mut answer = Vec::new();
    for value in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
        let value = value
            .to_str()
            .map_err(|_| HandshakeError::BadExtension("malformed Sec-WebSocket-Extensions"))?;
        answer.push(value);
    }
    let exts = parse_extensions_strict(&answer.join(",")).ok_or(HandshakeError::BadExtension(
        "malformed Sec-WebSocket-Extensions",
    ))?;
    let deflate = match (exts.as_slice(), deflate) {
        ([], _) => None,
        ([ext], Some(config)) if ext.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) => {
            Some(DeflateParams::from_response(ext, config).map_err(HandshakeError::BadExtension)?)
        }
        _ => return Err(HandshakeError::BadExtension("extension not offered")),
    };
    Ok(Accepted {
        subprotocol,
        deflate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const GOOD: &[(&str, &str)] = &[
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-protocol", "chat, superchat"),
        ("sec-websocket-protocol", "v2"),
        (
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        ),
    ];

    #[test]
    fn a_good_request_is_accepted_and_answered() {
        let req = UpgradeRequest::parse(&Method::GET, &request(GOOD)).unwrap();
        assert_eq!(req.subprotocols, ["chat", "superchat", "v2"]);
        let (_, ext) = req.negotiate_deflate(&DeflateConfig::default()).unwrap();
        let resp = req.response_headers(Some("chat"), Some(&ext));
        assert_eq!(resp[SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(resp[SEC_WEBSOCKET_PROTOCOL], "chat");
        let accepted = check_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &resp,
            &req.key,
            &["chat".to_owned()],
            Some(&DeflateConfig::default()),
        )
        .unwrap();
        assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
        assert!(accepted.deflate.is_some());
    }

    #[test]
    fn bad_requests_name_their_status() {
        let without = |name: &str| {
            let pairs: Vec<_> = GOOD.iter().copied().filter(|(n, _)| *n != name).collect();
            UpgradeRequest::parse(&Method::GET, &request(&pairs)).unwrap_err()
        };
        assert_eq!(without("upgrade").status(), StatusCode::BAD_REQUEST);
        assert_eq!(without("connection"), HandshakeError::NotConnectionUpgrade);
        assert_eq!(
            without("sec-websocket-version").status(),
            StatusCode::UPGRADE_REQUIRED
        );
        assert_eq!(without("sec-websocket-key"), HandshakeError::BadKey);
        assert_eq!(
            UpgradeRequest::parse(&Method::POST, &request(GOOD)).unwrap_err(),
            HandshakeError::NotGet
        );
        let mut short_key = request(GOOD);
        short_key.insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("c2hvcnQ="));
        assert_eq!(
            UpgradeRequest::parse(&Method::GET, &short_key).unwrap_err(),
            HandshakeError::BadKey
        );
        let mut v8 = request(GOOD);
        v8.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(
            UpgradeRequest::parse(&Method::GET, &v8).unwrap_err(),
            HandshakeError::UnsupportedVersion
        );
    }

    #[test]
    fn the_client_checks_the_answer() {
        let key = generate_key();
        assert_eq!(BASE64.decode(&key).unwrap().len(), 16);
        assert_ne!(key, generate_key());
        let ok = request(&[("upgrade", "websocket"), ("connection", "upgrade")]);
        let mut resp = ok.clone();
        resp.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept_key(key.as_bytes())).unwrap(),
        );
        assert!(check_response(StatusCode::SWITCHING_PROTOCOLS, &resp, &key, &[], None).is_ok());
        assert_eq!(
            check_response(StatusCode::FORBIDDEN, &resp, &key, &[], None).unwrap_err(),
            HandshakeError::Status(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            check_response(StatusCode::SWITCHING_PROTOCOLS, &ok, &key, &[], None),
            Err(HandshakeError::BadAccept)
        );
        let mut proto = resp.clone();
        proto.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("nope"));
        assert_eq!(
            check_response(
                StatusCode::SWITCHING_PROTOCOLS,
                &proto,
                &key,
                &["chat".into()],
                None
            ),
            Err(HandshakeError::UnexpectedSubprotocol)
        );
        let mut ext = resp;
        ext.insert(
            SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static("permessage-deflate"),
        );
        assert!(matches!(
            check_response(StatusCode::SWITCHING_PROTOCOLS, &ext, &key, &[], None),
            Err(HandshakeError::BadExtension(_))
        ));
    }

    // RFC 6455 §9.1 and RFC 7692 §5: an answer whose extensions header does not parse
    // fails the connection. A malformed element was left out, and the client went on
    // uncompressed while the server compressed.
    #[test]
    fn the_client_refuses_a_malformed_extensions_answer() {
        let key = generate_key();
        let mut resp = request(&[("upgrade", "websocket"), ("connection", "upgrade")]);
        resp.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept_key(key.as_bytes())).unwrap(),
        );
        let config = DeflateConfig::default();
        for bad in [
            "permessage-deflate; server_max_window_bits=",
            "permessage-deflate; client_max_window_bits=\"1 0\"",
            "permessage-deflate; server_no_context_takeover;",
            "permessage-deflate x",
            "permessage-deflate, ; x",
        ]
        .map(HeaderValue::from_static)
        .into_iter()
        // Not visible ASCII: not a header value this client can read.
        .chain([HeaderValue::from_bytes(b"permessage-deflate; x=\xe9").unwrap()])
        {
            let mut answer = resp.clone();
            answer.insert(SEC_WEBSOCKET_EXTENSIONS, bad.clone());
            assert!(
                matches!(
                    check_response(
                        StatusCode::SWITCHING_PROTOCOLS,
                        &answer,
                        &key,
                        &[],
                        Some(&config)
                    ),
                    Err(HandshakeError::BadExtension(_))
                ),
                "{bad:?}"
            );
        }
        // Empty list elements are allowed (RFC 9110 §5.6.1).
        let mut answer = resp;
        answer.insert(
            SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(", permessage-deflate ,"),
        );
        let accepted = check_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &answer,
            &key,
            &[],
            Some(&config),
        )
        .unwrap();
        assert!(accepted.deflate.is_some());
    }
}
