//! The client: [`websocket_connect`], Tornado's `websocket_connect`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use squall_httputil::client::{encode_request_head, RequestFraming};
use squall_httputil::{basic_auth_value, userinfo};
use squall_ioloop::with_timeout;
use squall_iostream::ReadParseError;
use squall_tcpserver::TcpClient;

use crate::handshake::{
    check_response, client_request_headers, generate_key, HandshakeError, SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
};
use crate::protocol::{Protocol, Role};
use crate::socket::{WebSocket, WebSocketConfig, WebSocketError};

/// The request headers the handshake itself controls, which `ClientOptions::headers`
/// may not set: the upgrade (`Upgrade`, `Connection`), the key and version the answer
/// is checked against, the subprotocols and extensions offered (set through
/// [`ClientOptions::subprotocols`] and [`WebSocketConfig::compression`], since the
/// answer is checked against those), and a body's framing (the request has none).
const HANDSHAKE_HEADERS: [&str; 8] = [
    "upgrade",
    "connection",
    SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION,
    SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_EXTENSIONS,
    "content-length",
    "transfer-encoding",
];

/// The most bytes the server's handshake response head may take.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// The most header fields it may have.
const MAX_RESPONSE_HEADERS: usize = 64;

/// The options of [`websocket_connect`] (Tornado's keyword arguments).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The connection's options: message size, pings, timeouts, compression.
    pub config: WebSocketConfig,
    /// Subprotocols to offer, in order of preference.
    pub subprotocols: Vec<String>,
    /// Extra request headers (`Origin`, cookies, authorization). One named here
    /// replaces the one the client would send: `Host` (the URL's host and port) and
    /// `Authorization` (`Basic`, from credentials in the URL). The handshake's own
    /// (`Upgrade`, `Connection`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version`,
    /// `Sec-WebSocket-Protocol`, `Sec-WebSocket-Extensions`) and a body's framing
    /// (`Content-Length`, `Transfer-Encoding`) are refused:
    /// [`WebSocketError::HandshakeHeader`].
    pub headers: HeaderMap,
    /// The deadline for the TCP connection and, for `wss://`, its TLS handshake
    /// (Tornado's `connect_timeout`). Default: 20 s.
    pub connect_timeout: Option<Duration>,
    /// The deadline for the whole opening handshake, connection included. Default:
    /// 20 s, as Tornado's `request_timeout`.
    pub handshake_timeout: Option<Duration>,
    /// Whom to trust for `wss://` (Tornado's `ssl_options`). Default (`None`): the
    /// system's root certificates. The server's certificate must be valid for the URL's
    /// host.
    #[cfg(feature = "tls")]
    pub tls: Option<squall_tls::TlsClientConfig>,
}

impl ClientOptions {
    /// Options with `config` and the rest at their defaults.
    pub fn new(config: WebSocketConfig) -> ClientOptions {
        ClientOptions {
            config,
            ..ClientOptions::default()
        }
    }
}

/// Opens a WebSocket to `url` (`ws://host[:port]/path`, or `wss://` with the `tls`
/// feature) and completes the opening handshake (Tornado's `websocket_connect`). Read with [`WebSocket::next`], or hand
/// the socket to [`run_handler`](crate::run_handler).
///
/// Credentials in the URL (`ws://user:pass@host/`) are sent as `Authorization: Basic`,
/// percent-decoded, as Tornado's client does.
///
/// # Errors
///
/// [`WebSocketError::HandshakeHeader`] for a header in `options.headers` that the
/// handshake sets itself (see [`ClientOptions::headers`]);
/// [`WebSocketError::BadUrl`] for a URL that is not `ws://` or `wss://` (`wss://` needs
/// the `tls` feature; a failed TLS handshake is a [`WebSocketError::Io`] carrying its
/// TLS error); [`WebSocketError::Io`] when the connection fails or times out; [`WebSocketError::Handshake`] when the server refuses (with
/// [`HandshakeError::Status`] carrying its HTTP status, as Tornado's `HTTPClientError`)
/// or answers against the rules.
pub async fn websocket_connect(
    url: &str,
    options: &ClientOptions,
) -> Result<WebSocket, WebSocketError> {
    let deadline = options.handshake_timeout.unwrap_or(Duration::from_secs(20));
    match with_timeout(deadline, connect(url, options)).await {
        Ok(result) => result,
        Err(_) => Err(WebSocketError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("WebSocket handshake with {url} timed out after {deadline:?}"),
        ))),
    }
}

async fn connect(url: &str, options: &ClientOptions) -> Result<WebSocket, WebSocketError> {
    let bad_url = || WebSocketError::BadUrl(url.to_owned());
    let uri: Uri = url.parse().map_err(|_| bad_url())?;
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad_url()),
    };
    let host = uri.host().ok_or_else(bad_url)?;
    let port = url_port(&uri, secure).ok_or_else(bad_url)?;
    // Made before connecting: a header the handshake refuses fails without a connection.
    let key = generate_key();
    let config = &options.config;
    let request = request_head(&uri, secure, &key, options)?;
    let connect_timeout = options.connect_timeout.unwrap_or(Duration::from_secs(20));
    let name = host.trim_start_matches('[').trim_end_matches(']');
    let stream = if secure {
        connect_tls(options, name, port, connect_timeout)
            .await
            .map_err(|e| match e {
                None => WebSocketError::BadUrl(format!(
                    "{url} (wss:// needs squall-websocket's `tls` feature)"
                )),
                Some(e) => WebSocketError::Io(e),
            })?
    } else {
        TcpClient::new()
            .connect(name, port, Some(connect_timeout))
            .await
            .map_err(WebSocketError::Io)?
    };
    let _ = stream.set_nodelay(true);

    stream
        .write(request.freeze())
        .await
        .map_err(WebSocketError::Stream)?;

    let (status, response) = stream
        .read_parse(MAX_RESPONSE_HEAD, parse_response_head)
        .await
        .map_err(|e| match e {
            ReadParseError::Stream(e) => WebSocketError::Stream(e),
            _ => WebSocketError::Handshake(HandshakeError::BadUpgradeResponse),
        })?;
    let accepted = check_response(
        status,
        &response,
        &key,
        &options.subprotocols,
        config.compression.as_ref(),
    )
    .map_err(WebSocketError::Handshake)?;
    let level = config.compression.map_or(6, |c| c.compression_level);
    let protocol = Protocol::new(
        Role::Client,
        accepted.deflate.map(|p| (p, level)),
        config.max_message_size,
    );
    // Bytes after the head stay in the stream's buffer, where the socket reads them.
    Ok(WebSocket::from_handshake(
        stream,
        Bytes::new(),
        protocol,
        accepted.subprotocol,
        Some(response),
        config,
    ))
}

/// The port a `ws://` (or, `secure`, a `wss://`) URL without one connects to.
fn default_port(secure: bool) -> u16 {
    if secure {
        443
    } else {
        80
    }
}

/// The port `uri` names, its scheme's default when it names none; `None` for a port
/// that is not a number up to 65535 (which `Uri::port_u16` would read as no port, and
/// the client would connect to the default one).
fn url_port(uri: &Uri, secure: bool) -> Option<u16> {
    let authority = uri.authority()?;
    squall_httputil::authority_port(authority.as_str())
        .ok()
        .map(|p| p.unwrap_or(default_port(secure)))
}

/// The opening handshake's request head for `uri` (RFC 6455 §4.1).
///
/// The request target is the resource name: the path, `/` when it is empty, then `?`
/// and the query if there is one (RFC 6455 §3). `Host` is the host (an IPv6 literal in
/// brackets) and the port unless it is the scheme's default (RFC 9110 §7.2), never the
/// URL's credentials; those go as `Authorization: Basic` (Tornado's client, through
/// `simple_httpclient`). A header in `options.headers` replaces the one of that name the
/// client would send; one of [`HANDSHAKE_HEADERS`] is refused.
fn request_head(
    uri: &Uri,
    secure: bool,
    key: &str,
    options: &ClientOptions,
) -> Result<BytesMut, WebSocketError> {
    let bad_url = || WebSocketError::BadUrl(uri.to_string());
    if let Some(name) = options
        .headers
        .keys()
        .find(|name| HANDSHAKE_HEADERS.contains(&name.as_str()))
    {
        return Err(WebSocketError::HandshakeHeader(name.clone()));
    }
    let authority = uri.authority().ok_or_else(bad_url)?;
    let host = match url_port(uri, secure) {
        Some(port) if port != default_port(secure) => {
            format!("{}:{port}", authority.host())
        }
        _ => authority.host().to_owned(),
    };
    let mut headers = client_request_headers(
        key,
        &options.subprotocols,
        options.config.compression.as_ref(),
    );
    headers.insert(HOST, HeaderValue::from_str(&host).map_err(|_| bad_url())?);
    if let Some((user, pass)) = userinfo(authority.as_str()) {
        let basic = basic_auth_value(&user, &pass);
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&basic).map_err(|_| bad_url())?,
        );
    }
    for name in options.headers.keys() {
        headers.remove(name);
    }
    for (name, value) in &options.headers {
        headers.append(name, value.clone());
    }
    let target = match uri.query() {
        Some(query) => format!("{}?{query}", uri.path()),
        None => uri.path().to_owned(),
    };
    let target: Uri = target.parse().map_err(|_| bad_url())?;
    let mut head = BytesMut::new();
    encode_request_head(
        &mut head,
        &Method::GET,
        &target,
        &headers,
        RequestFraming::None,
    )
    .map_err(|_| bad_url())?;
    Ok(head)
}

/// A TLS connection for `wss://`; `Err(None)` without the `tls` feature.
#[cfg(feature = "tls")]
async fn connect_tls(
    options: &ClientOptions,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<squall_iostream::IoStream, Option<std::io::Error>> {
    let config = match &options.tls {
        Some(config) => config.clone(),
        None => squall_tls::TlsClientConfig::with_system_roots()
            .map_err(|e| Some(std::io::Error::other(e)))?,
    };
    squall_tls::TlsConnector::new(config)
        .connect(&TcpClient::new(), host, port, None, Some(timeout))
        .await
        .map_err(Some)
}

/// Without the `tls` feature there is no `wss://`.
#[cfg(not(feature = "tls"))]
async fn connect_tls(
    _options: &ClientOptions,
    _host: &str,
    _port: u16,
    _timeout: Duration,
) -> Result<squall_iostream::IoStream, Option<std::io::Error>> {
    Err(None)
}

/// The response head: status and headers, with the bytes it took.
#[allow(clippy::type_complexity)]
fn parse_response_head(
    buf: &[u8],
) -> Result<Option<((StatusCode, HeaderMap), usize)>, httparse::Error> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let httparse::Status::Complete(len) = response.parse(buf)? else {
        return Ok(None);
    };
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(httparse::Error::Status)?;
    let mut headers = HeaderMap::new();
    for field in response.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| httparse::Error::HeaderName)?;
        let value =
            HeaderValue::from_bytes(field.value).map_err(|_| httparse::Error::HeaderValue)?;
        headers.append(name, value);
    }
    Ok(Some(((status, headers), len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request head `url` gets with `headers` added to the options, as text.
    fn head(url: &str, headers: &[(&'static str, &'static str)]) -> Result<String, WebSocketError> {
        let uri: Uri = url.parse().unwrap();
        let mut options = ClientOptions::default();
        for (name, value) in headers {
            options
                .headers
                .append(*name, HeaderValue::from_static(value));
        }
        let secure = uri.scheme_str() == Some("wss");
        let head = request_head(&uri, secure, "dGhlIHNhbXBsZSBub25jZQ==", &options)?;
        Ok(String::from_utf8(head.to_vec()).unwrap())
    }

    fn lines<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
        head.lines()
            .filter_map(|l| l.split_once(": "))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    // A port that is not a number up to 65535 is a bad URL: `Uri::port_u16` reads it as
    // no port, and the client connected to port 80.
    #[test]
    fn a_bad_port_is_a_bad_url() {
        for (url, port) in [
            ("ws://h/", Some(80)),
            ("wss://h/", Some(443)),
            ("ws://h:8080/", Some(8080)),
            ("ws://u:p@[::1]:81/", Some(81)),
            ("ws://h:/", Some(80)),
            ("ws://h:99999/", None),
            ("ws://h:abc/", None),
        ] {
            let uri: Uri = url.parse().unwrap();
            assert_eq!(
                url_port(&uri, uri.scheme_str() == Some("wss")),
                port,
                "{url}"
            );
        }
        squall_ioloop::IoLoop::new()
            .unwrap()
            .run_sync(
                async {
                    let r =
                        websocket_connect("ws://127.0.0.1:99999/", &ClientOptions::default()).await;
                    assert!(matches!(r, Err(WebSocketError::BadUrl(_))), "{:?}", r.err());
                },
                None,
            )
            .unwrap();
    }

    // RFC 6455 §3: the resource name is "/" for an empty path, then "?" and the query
    // (a query without a path went out as `GET ?x=1`).
    #[test]
    fn the_request_target_is_the_resource_name() {
        for (url, target) in [
            ("ws://h:1?x=1", "GET /?x=1 HTTP/1.1\r\n"),
            ("ws://h:1/?x=1", "GET /?x=1 HTTP/1.1\r\n"),
            ("ws://h:1", "GET / HTTP/1.1\r\n"),
            ("ws://h:1/a/b?c=d&e", "GET /a/b?c=d&e HTTP/1.1\r\n"),
            ("ws://h:1/a#frag", "GET /a HTTP/1.1\r\n"),
        ] {
            let head = head(url, &[]).unwrap();
            assert!(head.starts_with(target), "{url}: {head}");
        }
    }

    // RFC 9110 §7.2: Host is host[:port], never the URL's credentials (they went out in
    // it: `host: user:pw@127.0.0.1:P`); the credentials go as basic auth, as Tornado's.
    #[test]
    fn host_is_the_host_and_port_and_credentials_are_basic_auth() {
        for (url, host) in [
            ("ws://user:pw@127.0.0.1:8080/", "127.0.0.1:8080"),
            ("ws://127.0.0.1:8080/", "127.0.0.1:8080"),
            ("ws://example.com/", "example.com"),
            ("ws://example.com:80/", "example.com"),
            ("ws://example.com:443/", "example.com:443"),
            ("wss://example.com:443/", "example.com"),
            ("ws://u@[::1]:9000/", "[::1]:9000"),
            ("ws://[::1]/", "[::1]"),
        ] {
            let head = head(url, &[]).unwrap();
            assert_eq!(lines(&head, "host"), [host], "{url}: {head}");
        }
        let head = head("ws://Aladdin:open%20sesame@example.com/", &[]).unwrap();
        assert_eq!(
            lines(&head, "authorization"),
            ["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="]
        );
        let head = self::head("ws://example.com/", &[]).unwrap();
        assert!(lines(&head, "authorization").is_empty(), "{head}");
    }

    // A caller's header replaces the client's of that name (two `Host` lines went out,
    // and servers answer 400); the handshake's own headers are refused.
    #[test]
    fn the_callers_headers_replace_the_clients_and_the_handshakes_are_refused() {
        let head = head(
            "ws://u:p@127.0.0.1:8080/",
            &[
                ("host", "example.com"),
                ("authorization", "Bearer t"),
                ("cookie", "a=1"),
                ("cookie", "b=2"),
            ],
        )
        .unwrap();
        assert_eq!(lines(&head, "host"), ["example.com"], "{head}");
        assert_eq!(lines(&head, "authorization"), ["Bearer t"], "{head}");
        assert_eq!(lines(&head, "cookie"), ["a=1", "b=2"], "{head}");
        assert_eq!(lines(&head, "upgrade"), ["websocket"], "{head}");
        for name in [
            "Upgrade",
            "connection",
            "Sec-WebSocket-Key",
            "sec-websocket-version",
            "Sec-WebSocket-Protocol",
            "Sec-WebSocket-Extensions",
            "content-length",
            "transfer-encoding",
        ] {
            let mut options = ClientOptions::default();
            options.headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("x"),
            );
            let uri: Uri = "ws://h/".parse().unwrap();
            match request_head(&uri, false, "k", &options) {
                Err(WebSocketError::HandshakeHeader(refused)) => {
                    assert!(refused.as_str().eq_ignore_ascii_case(name))
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
