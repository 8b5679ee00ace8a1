//! The server's side of the handshake on squall's HTTP server: [`WebSocketUpgrade`]
//! decides, [`websocket_response`] and [`websocket_response_with`] answer a request with
//! the `101` that hands the connection to a WebSocket.

use std::future::Future;

use http::header::{ALLOW, CONNECTION, HOST, ORIGIN, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use squall_httpserver::{Detached, HttpServerRequest, OnUpgrade, Response};
use squall_iostream::IoStream;

use crate::deflate::DeflateParams;
use crate::handler::{run_handler, WebSocketHandler};
use crate::handshake::{HandshakeError, UpgradeRequest, SEC_WEBSOCKET_VERSION};
use crate::protocol::{Protocol, Role};
use crate::socket::{WebSocket, WebSocketConfig};

/// Tornado's default `check_origin`: a browser's `Origin` must name the host the
/// request was sent to (scheme aside, case-insensitive). An origin is always
/// `scheme://host[:port]` (RFC 6454 §6.1): a value without a scheme (`127.0.0.1:8888`,
/// `localhost`) names no host and is refused, as Tornado's `urlparse` finds no netloc
/// in it.
pub fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    // RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
    let mut s = scheme.bytes();
    let scheme_ok = s.next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let netloc = rest.split(['/', '?', '#']).next().unwrap_or("");
    scheme_ok && !netloc.is_empty() && netloc.eq_ignore_ascii_case(host.trim())
}

/// An accepted upgrade request, before the `101` goes out: the place to choose a
/// subprotocol and check the origin (Tornado's `select_subprotocol` and
/// `check_origin`), then answer with [`WebSocketUpgrade::response`].
#[derive(Debug, Clone)]
pub struct WebSocketUpgrade {
    request: UpgradeRequest,
    origin: Option<String>,
    host: String,
    subprotocol: Option<String>,
    deflate: Option<(DeflateParams, String)>,
    config: WebSocketConfig,
}

impl WebSocketUpgrade {
    /// Checks an upgrade request (RFC 6455 §4.2.1) and negotiates permessage-deflate if
    /// `config` has compression on. The origin is not checked yet, nor the request's
    /// HTTP version, which `method` and `headers` do not carry (see
    /// [`for_request`](Self::for_request)).
    ///
    /// # Errors
    ///
    /// The rule the request breaks; [`refusal`] turns it into the response to send.
    pub fn new(
        method: &Method,
        headers: &HeaderMap,
        config: &WebSocketConfig,
    ) -> Result<WebSocketUpgrade, HandshakeError> {
        let request = UpgradeRequest::parse(method, headers)?;
        let deflate = config
            .compression
            .as_ref()
            .and_then(|c| request.negotiate_deflate(c));
        let text = |v: Option<&HeaderValue>| v.and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(WebSocketUpgrade {
            origin: text(headers.get(ORIGIN)).or_else(|| text(headers.get("sec-websocket-origin"))),
            host: text(headers.get(HOST)).unwrap_or_default(),
            request,
            subprotocol: None,
            deflate,
            config: config.clone(),
        })
    }

    /// [`new`](Self::new) for a request of squall's HTTP server, whose HTTP version is
    /// checked too: a request older than HTTP/1.1 is refused
    /// ([`HandshakeError::NotHttp11`], RFC 6455 §4.1). [`websocket_response`] and
    /// [`websocket_response_with`] start here.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), and [`HandshakeError::NotHttp11`].
    pub fn for_request(
        request: &HttpServerRequest,
        config: &WebSocketConfig,
    ) -> Result<WebSocketUpgrade, HandshakeError> {
        if request.version < Version::HTTP_11 {
            return Err(HandshakeError::NotHttp11);
        }
        WebSocketUpgrade::new(&request.method, request.headers(), config)
    }

    /// The `Origin` header, if the client (a browser) sent one.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The `Host` the request was sent to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Tornado's default origin rule: no `Origin` (not a browser), or the same origin.
    pub fn is_same_origin(&self) -> bool {
        self.origin
            .as_deref()
            .is_none_or(|o| same_origin(o, &self.host))
    }

    /// The subprotocols the client offered, in its order.
    pub fn subprotocols(&self) -> &[String] {
        &self.request.subprotocols
    }

    /// Chooses the subprotocol to answer with: one of [`subprotocols`](Self::subprotocols),
    /// or `None`. A name the client did not offer is ignored (with a warning), since
    /// the client would refuse it.
    pub fn select_subprotocol(&mut self, choice: Option<String>) {
        match choice {
            Some(name) if !self.request.subprotocols.contains(&name) => {
                log::warn!("select_subprotocol chose {name:?}, which the client did not offer; answering without one");
                self.subprotocol = None;
            }
            other => self.subprotocol = other,
        }
    }

    /// The `101 Switching Protocols` headers.
    pub fn response_headers(&self) -> HeaderMap {
        self.request.response_headers(
            self.subprotocol.as_deref(),
            self.deflate.as_ref().map(|(_, s)| s.as_str()),
        )
    }

    /// The WebSocket over a detached connection (the streaming handler style: write
    /// [`response_headers`](Self::response_headers) with status 101, then
    /// `ResponseWriter::detach` with a callback that calls this).
    pub fn accept(self, stream: IoStream, read_ahead: bytes::Bytes) -> WebSocket {
        let level = self.config.compression.map_or(6, |c| c.compression_level);
        let protocol = Protocol::new(
            Role::Server,
            self.deflate.map(|(p, _)| (p, level)),
            self.config.max_message_size,
        );
        WebSocket::from_stream(stream, read_ahead, protocol, self.subprotocol, &self.config)
    }

    /// The `101` response that opens the WebSocket and calls `on_open` with it once the
    /// response is out (on the connection's thread).
    pub fn response(self, on_open: impl FnOnce(WebSocket) + 'static) -> Response {
        let mut response = Response::new(StatusCode::SWITCHING_PROTOCOLS);
        response.headers = self.response_headers();
        response.on_upgrade(OnUpgrade::new(move |detached: Detached| {
            let Detached {
                stream, read_ahead, ..
            } = detached;
            on_open(self.accept(stream, read_ahead));
        }))
    }
}

/// The response that refuses a handshake: its status (400, 403, 405, 426) with the
/// reason as text. A 426 names what to upgrade to (`Upgrade: websocket` with the
/// `upgrade` connection option, RFC 9110 §15.5.22 and §7.8) and the version to use
/// (`Sec-WebSocket-Version: 13`, RFC 6455 §4.4); a 405 names the method the endpoint
/// allows (`Allow: GET`, RFC 9110 §15.5.6). Tornado sends neither `Upgrade` nor `Allow`.
pub fn refusal(error: &HandshakeError) -> Response {
    let mut response = Response::text(error.to_string()).with_status(error.status());
    let headers = &mut response.headers;
    match error.status() {
        StatusCode::UPGRADE_REQUIRED => {
            headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            headers.insert(ALLOW, HeaderValue::from_static("GET"));
        }
        _ => {}
    }
    response
}

/// Answers `request` for a [`WebSocketHandler`]: checks the handshake, asks the
/// handler's `check_origin` (403 when it refuses) and `select_subprotocol`, and
/// returns the `101` that runs the handler on the connection (or the refusal). Tornado's
/// `WebSocketHandler.get`.
///
/// ```no_run
/// use squall_httpserver::{HttpServer, Response};
/// use squall_websocket::{websocket_response, Message, WebSocket, WebSocketConfig, WebSocketHandler};
///
/// struct Echo;
/// impl WebSocketHandler for Echo {
///     async fn on_message(&mut self, ws: &WebSocket, message: Message) {
///         let _ = ws.write_message(message);
///     }
/// }
///
/// let server = HttpServer::new(|req| async move {
///     match req.path() {
///         "/ws" => websocket_response(&req, &WebSocketConfig::default(), Echo),
///         _ => Response::text("Hello"),
///     }
/// });
/// # drop(server);
/// ```
pub fn websocket_response<H: WebSocketHandler>(
    request: &HttpServerRequest,
    config: &WebSocketConfig,
    mut handler: H,
) -> Response {
    let mut upgrade = match WebSocketUpgrade::for_request(request, config) {
        Ok(upgrade) => upgrade,
        Err(e) => return refusal(&e),
    };
    if let Some(origin) = upgrade.origin() {
        if !handler.check_origin(origin, upgrade.host()) {
            return refusal(&HandshakeError::OriginRefused);
        }
    }
    let choice = handler.select_subprotocol(upgrade.subprotocols());
    upgrade.select_subprotocol(choice);
    upgrade.response(move |ws| {
        let io_loop = ws.stream().io_loop().clone();
        drop(io_loop.spawn(run_handler(ws, handler)));
    })
}

/// Answers `request` for the async form: after the handshake (same-origin rule, no
/// subprotocol), `on_open(ws)` runs as a task of its own; read with
/// [`WebSocket::next`], write with [`WebSocket::send`].
///
/// ```no_run
/// use squall_httpserver::HttpServer;
/// use squall_websocket::{websocket_response_with, WebSocketConfig};
///
/// let server = HttpServer::new(|req| async move {
///     websocket_response_with(&req, &WebSocketConfig::default(), |ws| async move {
///         while let Some(message) = ws.next().await {
///             if ws.send(message).await.is_err() {
///                 break;
///             }
///         }
///     })
/// });
/// # drop(server);
/// ```
pub fn websocket_response_with<F, Fut>(
    request: &HttpServerRequest,
    config: &WebSocketConfig,
    on_open: F,
) -> Response
where
    F: FnOnce(WebSocket) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let upgrade = match WebSocketUpgrade::for_request(request, config) {
        Ok(upgrade) => upgrade,
        Err(e) => return refusal(&e),
    };
    if !upgrade.is_same_origin() {
        return refusal(&HandshakeError::OriginRefused);
    }
    upgrade.response(move |ws| {
        let io_loop = ws.stream().io_loop().clone();
        drop(io_loop.spawn(on_open(ws)));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_compares_host_and_port() {
        assert!(same_origin("http://example.com", "example.com"));
        assert!(same_origin("https://Example.com:8080/", "example.com:8080"));
        assert!(!same_origin("http://evil.example", "example.com"));
        assert!(!same_origin("http://example.com:81", "example.com"));
        assert!(!same_origin("null", "example.com"));
        assert!(!same_origin("http://", ""));
        // No scheme: no host to compare (Tornado's `test_check_origin_invalid_partial_url`).
        assert!(!same_origin("127.0.0.1:8888", "127.0.0.1:8888"));
        assert!(!same_origin("localhost", "localhost"));
        assert!(!same_origin("://localhost", "localhost"));
        assert!(!same_origin("1http://localhost", "localhost"));
        assert!(same_origin("chrome-extension://localhost", "localhost"));
    }

    #[test]
    fn refusals_name_what_the_client_must_change() {
        // 426: the protocol and its version (RFC 9110 §15.5.22, RFC 6455 §4.4).
        let r = refusal(&HandshakeError::UnsupportedVersion);
        assert_eq!(r.status, StatusCode::UPGRADE_REQUIRED);
        assert_eq!(r.headers[SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(r.headers[UPGRADE], "websocket");
        assert_eq!(r.headers[CONNECTION], "Upgrade");
        assert!(!r.headers.contains_key(ALLOW));
        // 405: the method allowed (RFC 9110 §15.5.6).
        let r = refusal(&HandshakeError::NotGet);
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers[ALLOW], "GET");
        assert!(!r.headers.contains_key(UPGRADE));
        // The others: the status and the reason, nothing more.
        for e in [HandshakeError::BadKey, HandshakeError::OriginRefused] {
            let r = refusal(&e);
            assert_eq!(r.status, e.status());
            assert!(!r.headers.contains_key(ALLOW) && !r.headers.contains_key(UPGRADE));
            assert_eq!(&r.body[..], e.to_string().as_bytes());
        }
    }
}
