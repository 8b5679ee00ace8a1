//! [`HttpServerConfig`]: every knob of the server, each with a default a public server
//! can live with.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use http::HeaderValue;
use squall_httputil::{HeaderCase, HeaderCaseMap, Limits};
use squall_tcpserver::StreamSetup;

/// The server's settings: Tornado's `HTTPServer.initialize` arguments and
/// `HTTP1ConnectionParameters` in one plain struct.
///
/// Build it from [`Default`] and override what you need:
///
/// ```
/// use std::time::Duration;
/// use squall_httpserver::HttpServerConfig;
///
/// let config = HttpServerConfig {
///     xheaders: true,
///     idle_connection_timeout: Duration::from_secs(30),
///     ..HttpServerConfig::default()
/// };
/// assert_eq!(config.max_body_size, 100 * 1024 * 1024);
/// ```
///
/// # The timeouts
///
/// A connection is always waiting for something, and each wait has a bound:
///
/// | waiting for | bound | default |
/// | --- | --- | --- |
/// | the first byte of a request (keep-alive idle) | [`idle_connection_timeout`](Self::idle_connection_timeout) | 60 s |
/// | the rest of a head, once its first byte came | [`header_timeout`](Self::header_timeout) | 30 s |
/// | the whole body, from when the delegate has taken its head | [`body_timeout`](Self::body_timeout) | 10 min |
/// | any single read inside a request (no progress at all) | [`idle_connection_timeout`](Self::idle_connection_timeout) | 60 s |
/// | the peer to take more of a response (no byte taken at all) | [`idle_connection_timeout`](Self::idle_connection_timeout) | 60 s |
///
/// A response has no bound as a whole: a client that reads a large one slowly but
/// steadily gets all of it, however long that takes (Tornado has no write timeout at
/// all); one that stops reading is let go once it has taken nothing for the idle
/// timeout.
///
/// When a bound passes the connection is closed without a response (Tornado closes
/// silently too: a client that stopped talking is not listening either).
///
/// Tornado's `idle_connection_timeout` defaults to one hour, and keeps no separate
/// header timeout, so a client that opens a connection and trickles a head one byte a
/// minute holds a socket forever (the slowloris attack), and dead keep-alive peers pile
/// up (tornado#1200, #2657). Sixty seconds is nginx's order of magnitude
/// (`keepalive_timeout 75s`, `client_header_timeout 60s`): long enough for any browser or
/// proxy to reuse a connection, short enough that abandoned sockets go away.
#[doc(alias = "HTTP1ConnectionParameters")]
#[derive(Debug, Clone)]
pub struct HttpServerConfig {
    /// Trust `X-Real-Ip` / `X-Forwarded-For` for the client's address and `X-Scheme` /
    /// `X-Forwarded-Proto` for the scheme, as set by a reverse proxy in front of the
    /// server. Default `false`: only turn it on behind a proxy that sets (and overwrites)
    /// these headers, or any client can claim any address.
    pub xheaders: bool,
    /// Proxies whose addresses are skipped when walking `X-Forwarded-For` from the right
    /// (the last hop not in this list is the client). Default empty.
    pub trusted_downstream: Vec<IpAddr>,
    /// A fixed scheme for every request (Tornado's `protocol`), for a server behind a
    /// TLS-terminating proxy that sets no header. Default `None`: `http`, or what the
    /// xheaders say.
    pub protocol: Option<Scheme>,
    /// Inflate `Content-Encoding: gzip` request bodies (any case) before the handler
    /// sees them; the inflated size is held to [`max_body_size`](Self::max_body_size),
    /// so a small body cannot become a large one. The header is renamed
    /// `X-Consumed-Content-Encoding`. Default `false` (bodies are passed as sent). Needs
    /// the `gzip` feature (on by default).
    #[cfg(feature = "gzip")]
    pub decompress_request: bool,
    /// Close the connection after each response (Tornado's `no_keep_alive`). Default
    /// `false`.
    pub no_keep_alive: bool,
    /// The whole request head (request line and header fields). Default 64 KiB
    /// (Tornado's). Over it: `431 Request Header Fields Too Large`, then close.
    pub max_header_size: usize,
    /// Header fields per request. Default 100. Over it: 431, then close.
    pub max_headers: usize,
    /// The request-target. Default 8 KiB. Over it: `414 URI Too Long`, then close.
    pub max_uri_len: usize,
    /// The request body, as received and (with `decompress_request`) as inflated.
    /// Default 100 MiB (Tornado's). A larger Content-Length is refused before any of
    /// the body is read: `413 Payload Too Large`, then close. A streaming delegate may
    /// raise or lower it per request ([`ResponseWriter::set_max_body_size`](crate::ResponseWriter::set_max_body_size)).
    pub max_body_size: u64,
    /// Pipelined requests received and not yet answered. Default 32; past it, reading
    /// pauses until a response goes out.
    pub max_pipelined: usize,
    /// How long a kept-alive connection may wait for the next request, and how long
    /// any single read inside a request may wait without a byte. Default 60 s (see
    /// above). Tornado's default is one hour.
    pub idle_connection_timeout: Duration,
    /// How long the rest of a request head may take once its first byte arrived: a
    /// client trickling a head cannot hold a connection for longer. Default 30 s.
    /// Tornado has none.
    pub header_timeout: Duration,
    /// How long a whole request body may take to arrive, counted from when the
    /// delegate's `headers_received` returns, as Tornado counts it (the time the
    /// delegate spends in `data_received` counts too: a delegate still in it at the
    /// deadline is dropped and the connection closed). Default 10 minutes: 100 MiB at
    /// 1.4 Mbit/s. `None`: no total bound (each read is still bound by
    /// `idle_connection_timeout`), Tornado's default.
    pub body_timeout: Option<Duration>,
    /// The most bytes handed to one `data_received` call. Default 64 KiB (Tornado's).
    /// Chunk edges of a chunked body are kept: a call never spans two wire chunks.
    pub chunk_size: usize,
    /// The most bytes a connection holds for a peer that is not reading them: the
    /// response bytes written and not yet sent, in the connection's output buffer and
    /// queued in the stream (Tornado's `max_write_buffer_size`). Default 16 MiB;
    /// Tornado's is unbounded. Once a connection holds more, every
    /// [`ResponseWriter`](crate::ResponseWriter) write fails with
    /// [`OutputError::WriteBufferFull`](squall_httputil::OutputError::WriteBufferFull)
    /// and the connection is closed (logged at info: it is the peer's doing). A single
    /// write may carry the connection past the limit by its own size, so a whole
    /// response given at once (`respond`, a handler's `Response`) is never refused for
    /// its size alone; a delegate streaming a large body should await
    /// [`flush`](crate::ResponseWriter::flush) now and then to wait for the peer.
    pub max_write_buffer_size: usize,
    /// The `Server` header added to responses that have none. Default `squall`;
    /// `None` sends none.
    pub server_header: Option<HeaderValue>,
    /// How the names of a response's own headers are spelled on the wire. Default
    /// [`HeaderCase::Lower`], as `http::HeaderMap` holds them; [`HeaderCase::Title`]
    /// sends `Content-Type` for `content-type` (hyper's `title_case_headers`), and
    /// [`HeaderCase::Preserve`] the spellings in
    /// [`header_spellings`](Self::header_spellings), title case for the rest.
    pub header_case: HeaderCase,
    /// The spellings [`HeaderCase::Preserve`] sends (`X-API-Key`, `ETag`...). Default
    /// empty.
    pub header_spellings: HeaderCaseMap,
    /// A step every accepted connection goes through before HTTP is spoken on it: TLS
    /// (Tornado's `ssl_options`), with `squall-tls`'s `TlsAcceptor`. Requests on such
    /// connections report its scheme (`https`) unless [`protocol`](Self::protocol) says
    /// otherwise. Default `None`: plain HTTP.
    pub stream_setup: Option<Arc<dyn StreamSetup>>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        let limits = Limits::default();
        HttpServerConfig {
            xheaders: false,
            trusted_downstream: Vec::new(),
            protocol: None,
            #[cfg(feature = "gzip")]
            decompress_request: false,
            no_keep_alive: false,
            max_header_size: limits.max_head_size,
            max_headers: limits.max_headers,
            max_uri_len: limits.max_uri_len,
            max_body_size: limits.max_body_size,
            max_pipelined: limits.max_pipelined,
            idle_connection_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(30),
            body_timeout: Some(Duration::from_secs(600)),
            chunk_size: 64 * 1024,
            max_write_buffer_size: 16 * 1024 * 1024,
            server_header: Some(HeaderValue::from_static("squall")),
            header_case: HeaderCase::Lower,
            header_spellings: HeaderCaseMap::new(),
            stream_setup: None,
        }
    }
}

impl HttpServerConfig {
    /// The parser limits these settings imply.
    pub fn limits(&self) -> Limits {
        Limits {
            max_head_size: self.max_header_size,
            max_headers: self.max_headers,
            max_uri_len: self.max_uri_len,
            max_body_size: self.max_body_size,
            max_pipelined: self.max_pipelined.max(1),
            ..Limits::default()
        }
    }
}
