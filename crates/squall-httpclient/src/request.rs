//! The request and its options.

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};

use crate::conn::BodyWriter;

/// What a zero timeout stands for: no limit, as a deadline a century away (every wait
/// of the client is written against a deadline).
const NO_LIMIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn unlimited_if_zero(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        NO_LIMIT
    } else {
        timeout
    }
}

/// Tornado's default `connect_timeout` and `request_timeout`: 20 seconds each.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The future a body producer returns.
pub type ProducerFuture = Pin<Box<dyn Future<Output = Result<(), Box<dyn Error>>>>>;

/// A body producer: called with a [`BodyWriter`] each time the request is sent (again
/// after a 307 or 308 redirect), it writes the body piece by piece and resolves when the
/// body is complete. Tornado's `body_producer`. The response is read meanwhile: if it is
/// complete first (a server that refuses the upload), the producer's future is dropped.
pub type BodyProducer = Rc<dyn Fn(BodyWriter) -> ProducerFuture>;

/// Where the body of the final response goes, piece by piece.
pub(crate) type StreamingCallback = Rc<RefCell<dyn FnMut(Bytes)>>;

/// Where the lines of the final response's head go.
pub(crate) type HeaderCallback = Rc<RefCell<dyn FnMut(&str)>>;

/// An HTTP proxy: plain `http://` requests go to it in absolute form, `https://` ones
/// through a `CONNECT` tunnel. Tornado's `proxy_host`, `proxy_port`, `proxy_username`
/// and `proxy_password`.
///
/// Connections through a proxy are kept per proxy and credentials: one opened with
/// some credentials (a `CONNECT` tunnel the proxy authorised) never carries a request
/// made with other credentials or none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proxy {
    /// The proxy's host name or address.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// Basic credentials for the proxy (`Proxy-Authorization`).
    pub auth: Option<(String, String)>,
}

impl Proxy {
    /// A proxy at `host:port` without credentials.
    pub fn new(host: impl Into<String>, port: u16) -> Proxy {
        Proxy {
            host: host.into(),
            port,
            auth: None,
        }
    }

    /// Parse `http://[user:pass@]host:port` (the scheme may be left out; the port
    /// defaults to 80).
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(url: &str) -> Result<Proxy, String> {
        let with_scheme = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let target = crate::url::Target::parse(&with_scheme)?;
        if target.scheme != crate::url::Scheme::Http {
            return Err(format!(
                "proxy URL {url:?}: only http:// proxies are supported"
            ));
        }
        Ok(Proxy {
            host: target.host,
            port: target.port,
            auth: target.userinfo,
        })
    }
}

/// A value [`HttpRequest::header`] takes: text (`&str`, `String`), which is encoded as
/// ISO-8859-1 (Latin-1) as Tornado encodes header values, so that `"bär"` is sent as
/// the bytes `b\xe4r`; or what an `http::HeaderValue` is made from as it is (bytes, a
/// `HeaderValue`, a `HeaderName`, an integer).
pub trait IntoHeaderValue {
    /// The header value.
    ///
    /// # Errors
    /// A message naming what is wrong: a character past U+00FF, which Latin-1 cannot
    /// encode, or a byte a field value may not hold (a control character, a line end).
    fn into_header_value(self) -> Result<HeaderValue, String>;
}

/// `text` as the ISO-8859-1 bytes of a header value.
pub(crate) fn latin1_value(text: &str) -> Result<HeaderValue, String> {
    let invalid = || format!("invalid header value {text:?}");
    if text.is_ascii() {
        return HeaderValue::from_str(text).map_err(|_| invalid());
    }
    let bytes = text
        .chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                format!(
                    "header value {text:?} holds {c:?} (U+{:04X}), past U+00FF: ISO-8859-1 cannot encode it (send bytes of your own encoding instead)",
                    u32::from(c)
                )
            })
        })
        .collect::<Result<Vec<u8>, String>>()?;
    HeaderValue::from_bytes(&bytes).map_err(|_| invalid())
}

impl IntoHeaderValue for &str {
    fn into_header_value(self) -> Result<HeaderValue, String> {
        latin1_value(self)
    }
}

impl IntoHeaderValue for &String {
    fn into_header_value(self) -> Result<HeaderValue, String> {
        latin1_value(self)
    }
}

impl IntoHeaderValue for String {
    fn into_header_value(self) -> Result<HeaderValue, String> {
        latin1_value(&self)
    }
}

/// The types `http::HeaderValue` converts from as they are.
macro_rules! as_http_converts {
    ($($t:ty),* $(,)?) => {$(
        impl IntoHeaderValue for $t {
            fn into_header_value(self) -> Result<HeaderValue, String> {
                HeaderValue::try_from(self).map_err(|_| "invalid header value".to_owned())
            }
        }
    )*};
}

as_http_converts!(
    &[u8],
    Vec<u8>,
    HeaderValue,
    &HeaderValue,
    HeaderName,
    u16,
    i16,
    u32,
    i32,
    u64,
    i64,
    usize,
    isize,
);

/// One request with Tornado's options. Tornado's `HTTPRequest`.
///
/// Built with chained setters from a URL; a plain `&str` or `String` converts into a GET.
///
/// ```
/// use std::time::Duration;
/// use squall_httpclient::HttpRequest;
///
/// let request = HttpRequest::new("http://example.com/upload")
///     .method(http::Method::POST)
///     .header("content-type", "text/plain")
///     .body("hello")
///     .request_timeout(Duration::from_secs(5))
///     .follow_redirects(false);
/// assert_eq!(request.url(), "http://example.com/upload");
/// ```
///
/// [`fetch`](crate::HttpClient::fetch) takes the request; to send one request again
/// (Tornado fetches the same `HTTPRequest` as often as asked), fetch a clone. A clone is
/// cheap (the body is shared `Bytes`) and shares the original's body producer and
/// callbacks, which run again for each fetch.
#[doc(alias = "HTTPRequest")]
#[derive(Clone)]
pub struct HttpRequest {
    pub(crate) url: String,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) body_producer: Option<BodyProducer>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) follow_redirects: bool,
    pub(crate) max_redirects: u32,
    pub(crate) decompress_response: bool,
    pub(crate) auth: Option<(String, String)>,
    pub(crate) user_agent: Option<String>,
    pub(crate) allow_nonstandard_methods: bool,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) allow_ipv6: bool,
    pub(crate) network_interface: Option<String>,
    pub(crate) raise_error: bool,
    pub(crate) streaming_callback: Option<StreamingCallback>,
    pub(crate) header_callback: Option<HeaderCallback>,
    pub(crate) expect_100_continue: bool,
    pub(crate) max_header_size: usize,
    pub(crate) max_body_size: u64,
    #[cfg(feature = "tls")]
    pub(crate) validate_cert: bool,
    #[cfg(feature = "tls")]
    pub(crate) ca_certs: Option<String>,
    #[cfg(feature = "tls")]
    pub(crate) tls_config: Option<squall_tls::TlsClientConfig>,
    #[cfg(feature = "tls")]
    pub(crate) identity: Option<crate::tls::Identity>,
    /// The first setter error (a header that is not valid), reported by `fetch`.
    pub(crate) error: Option<String>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &self.headers)
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .field("body_producer", &self.body_producer.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("follow_redirects", &self.follow_redirects)
            .field("max_redirects", &self.max_redirects)
            .field("raise_error", &self.raise_error)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl HttpRequest {
    /// A GET of `url` with Tornado's defaults: 20 s connect and request timeouts,
    /// redirects followed (at most 5), responses decompressed, non-2xx responses
    /// returned as errors, a 100 MiB body cap and a 64 KiB head cap.
    pub fn new(url: impl Into<String>) -> HttpRequest {
        HttpRequest {
            url: url.into(),
            method: Method::GET,
            headers: HeaderMap::new(),
            body: None,
            body_producer: None,
            connect_timeout: DEFAULT_TIMEOUT,
            request_timeout: DEFAULT_TIMEOUT,
            follow_redirects: true,
            max_redirects: 5,
            decompress_response: true,
            auth: None,
            user_agent: None,
            allow_nonstandard_methods: false,
            proxy: None,
            allow_ipv6: true,
            network_interface: None,
            raise_error: true,
            streaming_callback: None,
            header_callback: None,
            expect_100_continue: false,
            max_header_size: 64 * 1024,
            max_body_size: 100 * 1024 * 1024,
            #[cfg(feature = "tls")]
            validate_cert: true,
            #[cfg(feature = "tls")]
            ca_certs: None,
            #[cfg(feature = "tls")]
            tls_config: None,
            #[cfg(feature = "tls")]
            identity: None,
            error: None,
        }
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same request for another URL.
    pub fn url_set(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// The method (default GET).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Add a header field (several with one name are all sent). Text is sent as
    /// ISO-8859-1 (Latin-1) bytes, as Tornado encodes header values
    /// ([`IntoHeaderValue`]). An invalid name or value makes `fetch` fail with
    /// [`InvalidRequest`](crate::HttpClientError::InvalidRequest).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        V: IntoHeaderValue,
    {
        let field = HeaderName::try_from(name)
            .map_err(|_| "invalid header name".to_owned())
            .and_then(|n| Ok((n, value.into_header_value()?)));
        match field {
            Ok((n, v)) => {
                self.headers.append(n, v);
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Send `If-Modified-Since` with `time` as an HTTP date (replacing one set before).
    /// Tornado's `if_modified_since`.
    pub fn if_modified_since(mut self, time: std::time::SystemTime) -> Self {
        let date = squall_httputil::format_timestamp(time);
        // An HTTP date is ASCII letters, digits, spaces, commas and colons.
        if let Ok(value) = HeaderValue::from_str(&date) {
            self.headers.insert(http::header::IF_MODIFIED_SINCE, value);
        }
        self
    }

    /// Replace all header fields.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// The body, sent with a Content-Length.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Stream the body from `producer` instead (chunked, unless the request has a
    /// `Content-Length` header, which the producer must then match).
    ///
    /// ```
    /// use squall_httpclient::{HttpRequest, BodyWriter};
    ///
    /// let request = HttpRequest::new("http://example.com/upload")
    ///     .method(http::Method::PUT)
    ///     .body_producer(|w: BodyWriter| async move {
    ///         for part in ["one ", "two ", "three"] {
    ///             w.write(part).await?;
    ///         }
    ///         Ok(())
    ///     });
    /// # drop(request);
    /// ```
    pub fn body_producer<F, Fut>(mut self, producer: F) -> Self
    where
        F: Fn(BodyWriter) -> Fut + 'static,
        Fut: Future<Output = Result<(), Box<dyn Error>>> + 'static,
    {
        self.body_producer = Some(Rc::new(move |w| Box::pin(producer(w)) as ProducerFuture));
        self
    }

    /// How long the connection may take (default 20 s); zero means no limit of its own
    /// (the request timeout still applies). Tornado's `connect_timeout`.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the whole request may take once it leaves the queue, connection
    /// included (default 20 s); zero means no limit. Tornado's `request_timeout`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The connect timeout as used: a zero one is no limit (Tornado's rule).
    pub(crate) fn connect_limit(&self) -> Duration {
        unlimited_if_zero(self.connect_timeout)
    }

    /// The request timeout as used: a zero one is no limit.
    pub(crate) fn request_limit(&self) -> Duration {
        unlimited_if_zero(self.request_timeout)
    }

    /// Whether to follow 301, 302, 303, 307 and 308 (default true).
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = follow;
        self
    }

    /// How many redirects to follow at most (default 5); the redirect after the last
    /// is returned as the response (an error under `raise_error`).
    pub fn max_redirects(mut self, max: u32) -> Self {
        self.max_redirects = max;
        self
    }

    /// Ask for gzip and inflate it (default true). Tornado's `decompress_response`.
    pub fn decompress_response(mut self, decompress: bool) -> Self {
        self.decompress_response = decompress;
        self
    }

    /// Basic authentication. Tornado's `auth_username`/`auth_password` with
    /// `auth_mode="basic"`. Credentials in the URL (`http://user:pass@host/`) are used
    /// when this is not set.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some((username.into(), password.into()));
        self
    }

    /// The `User-Agent` (default `squall/<version>`); it replaces a `User-Agent` given
    /// with [`header`](Self::header), as Tornado's `user_agent` does.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }

    /// Allow any method, with or without a body (default false: GET, HEAD, DELETE and
    /// OPTIONS without a body, POST, PUT and PATCH with one, as Tornado checks).
    pub fn allow_nonstandard_methods(mut self, allow: bool) -> Self {
        self.allow_nonstandard_methods = allow;
        self
    }

    /// Send the request through an HTTP proxy.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Whether the connection may go to an IPv6 address (default true). With false, only
    /// the IPv4 addresses of the host (or of the proxy) are tried, and a URL naming an
    /// IPv6 address fails with [`Connect`](crate::HttpClientError::Connect). Tornado's
    /// `allow_ipv6`.
    pub fn allow_ipv6(mut self, allow: bool) -> Self {
        self.allow_ipv6 = allow;
        self
    }

    /// The local IP address the connection is made from (default: the one the OS
    /// picks). Tornado's `network_interface`, which its simple client takes as a
    /// source IP (an interface name is curl's alone): a value that is no IPv4 or IPv6
    /// address fails the fetch with
    /// [`InvalidRequest`](crate::HttpClientError::InvalidRequest) naming it, one that
    /// cannot be bound with [`Connect`](crate::HttpClientError::Connect). A kept
    /// connection serves only requests naming the same address.
    #[doc(alias = "source_ip")]
    pub fn network_interface(mut self, ip: impl Into<String>) -> Self {
        self.network_interface = Some(ip.into());
        self
    }

    /// The source address of [`network_interface`](Self::network_interface), checked.
    pub(crate) fn source_ip(&self) -> Result<Option<std::net::IpAddr>, String> {
        self.network_interface
            .as_deref()
            .map(|s| {
                s.trim().parse().map_err(|_| {
                    format!("Unrecognized IPv4 or IPv6 address for network_interface, got {s:?}")
                })
            })
            .transpose()
    }

    /// Whether a non-2xx response is an error (default true). With false, every
    /// response that arrives is `Ok` (see [`HttpResponse::rethrow`](crate::HttpResponse::rethrow)).
    pub fn raise_error(mut self, raise: bool) -> Self {
        self.raise_error = raise;
        self
    }

    /// Hand each piece of the final response's body to `callback` as it arrives,
    /// leaving the response's `body` empty. Tornado's `streaming_callback`.
    pub fn streaming_callback(mut self, callback: impl FnMut(Bytes) + 'static) -> Self {
        self.streaming_callback = Some(Rc::new(RefCell::new(callback)));
        self
    }

    /// Hand the final response's status line, then each header line (`Name: value\r\n`),
    /// then the empty line `\r\n` to `callback`. Tornado's `header_callback`.
    pub fn header_callback(mut self, callback: impl FnMut(&str) + 'static) -> Self {
        self.header_callback = Some(Rc::new(RefCell::new(callback)));
        self
    }

    /// Send `Expect: 100-continue` and the body only after the server's `100 Continue`,
    /// or after [`CONTINUE_TIMEOUT`](crate::CONTINUE_TIMEOUT) without any answer (a
    /// server that does not know `Expect` waits for the body). A final answer first
    /// means the body is never sent; a `417 Expectation Failed` then sends the request
    /// again, once, without the expectation (RFC 9110 §10.1.1). Tornado's
    /// `expect_100_continue`.
    pub fn expect_100_continue(mut self, expect: bool) -> Self {
        self.expect_100_continue = expect;
        self
    }

    /// The largest response head accepted (default 64 KiB).
    pub fn max_header_size(mut self, max: usize) -> Self {
        self.max_header_size = max;
        self
    }

    /// Whether an https server's certificate is verified (default true). Tornado's
    /// `validate_cert`: `false` accepts any certificate (the connection is encrypted
    /// but not authenticated; for tests and private networks only).
    ///
    /// Independent of [`ca_certs`](Self::ca_certs), whatever the order of the setters,
    /// as in Tornado: `false` means no verification even with a CA file named, and
    /// `true` keeps the CA file. A [`tls_config`](Self::tls_config) wins over both.
    #[cfg(feature = "tls")]
    pub fn validate_cert(mut self, validate: bool) -> Self {
        self.validate_cert = validate;
        self
    }

    /// Trust the CA certificates of a PEM file for https instead of the client's
    /// default roots. Tornado's `ca_certs`.
    ///
    /// Used when the certificate is verified: not under
    /// [`validate_cert(false)`](Self::validate_cert), and not when the request has a
    /// [`tls_config`](Self::tls_config), whatever the order of the setters.
    #[cfg(feature = "tls")]
    pub fn ca_certs(mut self, pem_file: impl Into<String>) -> Self {
        self.ca_certs = Some(pem_file.into());
        self
    }

    /// Present the certificate of this PEM file when an https server asks for one
    /// (mutual TLS). Tornado's `client_cert`. Its private key is read from the same file
    /// unless [`client_key`](Self::client_key) names another; a file that cannot be
    /// loaded fails the fetch with [`HttpClientError::InvalidRequest`](crate::HttpClientError::InvalidRequest).
    #[cfg(feature = "tls")]
    pub fn client_cert(mut self, pem_file: impl Into<String>) -> Self {
        self.identity.get_or_insert_with(Default::default).cert = Some(pem_file.into());
        self
    }

    /// The PEM file holding the private key of [`client_cert`](Self::client_cert).
    /// Tornado's `client_key`.
    #[cfg(feature = "tls")]
    pub fn client_key(mut self, pem_file: impl Into<String>) -> Self {
        self.identity.get_or_insert_with(Default::default).key = Some(pem_file.into());
        self
    }

    /// Use this TLS configuration for https (a client certificate, other roots).
    ///
    /// A whole configuration: it wins over [`validate_cert`](Self::validate_cert) and
    /// [`ca_certs`](Self::ca_certs), whatever the order of the setters. The trust of a
    /// request is, in this order: its `tls_config`; no verification under
    /// `validate_cert(false)`; its `ca_certs` file; the client's default
    /// ([`HttpClient::set_tls_config`](crate::HttpClient::set_tls_config), else the
    /// system's roots).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: squall_tls::TlsClientConfig) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// The largest response body accepted, after decompression (default 100 MiB).
    pub fn max_body_size(mut self, max: u64) -> Self {
        self.max_body_size = max;
        self
    }
}

impl From<&str> for HttpRequest {
    fn from(url: &str) -> Self {
        HttpRequest::new(url)
    }
}

impl From<String> for HttpRequest {
    fn from(url: String) -> Self {
        HttpRequest::new(url)
    }
}

impl From<&String> for HttpRequest {
    fn from(url: &String) -> Self {
        HttpRequest::new(url.as_str())
    }
}
