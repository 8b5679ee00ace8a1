//! The client: [`websocket_connect`], Tornado's `websocket_connect`.

use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use squall_ioloop::with_timeout;
use squall_iostream::ReadParseError;
use squall_tcpserver::TcpClient;

use crate::handshake::{check_response, client_request_headers, generate_key, HandshakeError};
use crate::protocol::{Protocol, Role};
use crate::socket::{WebSocket, WebSocketConfig, WebSocketError};

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
    /// Extra request headers (`Origin`, cookies, authorization).
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
/// # Errors
///
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
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
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

    let key = generate_key();
    let config = &options.config;
    let mut headers =
        client_request_headers(&key, &options.subprotocols, config.compression.as_ref());
    let authority = uri.authority().map_or(host, |a| a.as_str());
    headers.insert(
        HOST,
        HeaderValue::from_str(authority).map_err(|_| bad_url())?,
    );
    for (name, value) in &options.headers {
        headers.append(name, value.clone());
    }
    let mut request = format!("GET {target} HTTP/1.1\r\n").into_bytes();
    for (name, value) in &headers {
        request.extend_from_slice(name.as_str().as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    stream
        .write(request)
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
