//! [`HttpServerRequest`]: one whole request with its arguments, files and cookies, and
//! the [`HttpHeadersExt`] helpers over `HeaderMap`.

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Version};

use crate::cookie::parse_cookie;
use crate::error::ParseError;
use crate::form::{parse_body_arguments, Files, FormType, MultipartConfig};
use crate::head::RequestHead;
use crate::url::{parse_qs_bytes, split_host_and_port, Arguments};
use crate::view::View;

/// The client's address as the request was given it.
///
/// An address is kept as its bits, not as an `Option<IpAddr>`: that type is 17 bytes
/// aligned to one, and a server hands the request one it has just written, so moving
/// it whole read bytes just stored at odd offsets (a store-forwarding stall per
/// request under `perf`); taken apart by variant, each piece is read as written.
#[derive(Debug)]
enum Remote {
    /// No address (a transport without one).
    None,
    /// An IPv4 address, formatted on first use.
    V4(u32),
    /// An IPv6 address, formatted on first use.
    V6(u128),
    /// Text given by the caller.
    Text(String),
}

impl Remote {
    #[inline]
    fn ip(ip: Option<IpAddr>) -> Remote {
        match ip {
            None => Remote::None,
            Some(IpAddr::V4(a)) => Remote::V4(a.to_bits()),
            Some(IpAddr::V6(a)) => Remote::V6(a.to_bits()),
        }
    }

    fn addr(&self) -> Option<IpAddr> {
        match self {
            Remote::None => None,
            Remote::V4(bits) => Some(IpAddr::V4(Ipv4Addr::from_bits(*bits))),
            Remote::V6(bits) => Some(IpAddr::V6(Ipv6Addr::from_bits(*bits))),
            Remote::Text(s) => s.parse().ok(),
        }
    }
}

/// What is worked out on first use. Boxed behind one `OnceLock`, so that a request that
/// never asks (most of them) is smaller: requests are moved several times on their way
/// to a handler, and every byte of them is copied each time.
#[derive(Debug, Default, Clone)]
struct Lazy {
    remote_ip: OnceLock<String>,
    query_arguments: OnceLock<Arguments>,
    arguments: OnceLock<Arguments>,
    cookies: OnceLock<HashMap<String, String>>,
}

/// What [`HttpServerRequest::parse_body`] found.
#[derive(Debug, Default, Clone)]
struct BodyParts {
    arguments: Arguments,
    files: Files,
}

/// What a request keeps out of line: in its view's pooled box (see
/// [`View`](crate::view::View)), with the head's parts, so that the request itself
/// stays within 128 bytes (moved without a call to `memcpy`: a server moves each
/// request into its handler's future) and a request that never asks for these costs
/// no allocation. Emptied by [`reset`](Extras::reset) when the box goes back to the
/// pool.
#[derive(Debug, Default, Clone)]
pub(crate) struct Extras {
    protocol: Cow<'static, str>,
    setup_info: Option<Arc<dyn Any + Send + Sync>>,
    finished: Option<Instant>,
    body_parts: Option<Box<BodyParts>>,
    lazy: OnceLock<Box<Lazy>>,
}

impl Extras {
    /// Empty again, dropping what a request left.
    #[inline]
    pub(crate) fn reset(&mut self) {
        self.protocol = Cow::Borrowed("");
        if self.setup_info.is_some() {
            self.setup_info = None;
        }
        self.finished = None;
        if self.body_parts.is_some() {
            self.body_parts = None;
        }
        if self.lazy.get().is_some() {
            self.lazy = OnceLock::new();
        }
    }
}

static NO_ARGUMENTS: LazyLock<Arguments> = LazyLock::new(Arguments::new);
static NO_FILES: LazyLock<Files> = LazyLock::new(Files::new);

/// A single HTTP request, body included (Tornado's `HTTPServerRequest`).
///
/// Built by the server once the body has been read, **without work for what nobody
/// reads**: the client address is formatted, the query parsed and the arguments merged
/// on first use; body arguments and files are parsed by
/// [`parse_body`](HttpServerRequest::parse_body) (the server calls it for whole-request
/// handlers; it costs next to nothing for a request without a Content-Type); cookies on
/// first use. Tornado's attributes are methods here: [`remote_ip`](Self::remote_ip),
/// [`protocol`](Self::protocol), [`host`](Self::host), [`arguments`](Self::arguments),
/// [`query_arguments`](Self::query_arguments), [`body_arguments`](Self::body_arguments),
/// [`files`](Self::files), [`start_time`](Self::start_time).
///
/// ```
/// use bytes::Bytes;
/// use squall_httputil::{parse_request_head, HttpServerRequest, Limits};
///
/// let raw = b"POST /form?a=1&a=2 HTTP/1.1\r\nHost: example.com:8080\r\n\
///             Content-Type: application/x-www-form-urlencoded\r\nCookie: session=abc\r\n\
///             Content-Length: 7\r\n\r\nb=3&c=4";
/// let (head, used) = parse_request_head(raw, &Limits::default())?.unwrap();
/// let mut req = HttpServerRequest::new(head, Bytes::copy_from_slice(&raw[used..]), "10.0.0.1", "http");
/// req.parse_body()?;
/// assert_eq!(req.path(), "/form");
/// assert_eq!(req.host(), "example.com:8080");
/// assert_eq!(req.host_name(), "example.com");
/// assert_eq!(req.arguments()["a"], ["1", "2"]);
/// assert_eq!(req.body_arguments()["b"], ["3"]);
/// assert_eq!(req.arguments()["c"], ["4"]);
/// assert_eq!(req.cookies()["session"], "abc");
/// assert_eq!(req.remote_ip(), "10.0.0.1");
/// assert_eq!(req.full_url(), "http://example.com:8080/form?a=1&a=2");
/// # Ok::<(), squall_httputil::ParseError>(())
/// ```
#[doc(alias = "HTTPServerRequest")]
pub struct HttpServerRequest {
    /// The method.
    pub method: Method,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// The body (inflated if the server decompressed it).
    pub body: Bytes,
    /// The target and the header fields, read in place from the head's bytes.
    view: View,
    remote: Remote,
    started: Instant,
}

/// Tornado's `__repr__`: the method, the target, the version, the client's address,
/// the header fields' names and the body's length, never a header's value or the body
/// (credentials in `Authorization` or `Cookie` would end up in log lines and panic
/// messages; Tornado's `test_repr_does_not_contain_headers`).
impl fmt::Debug for HttpServerRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServerRequest")
            .field("method", &self.method)
            .field("version", &self.version)
            .field("view", &self.view)
            .field("remote", &self.remote)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl HttpServerRequest {
    /// A request from its head and body, from a peer at `remote_ip` over `protocol`,
    /// starting now.
    pub fn new(
        head: RequestHead,
        body: Bytes,
        remote_ip: impl Into<String>,
        protocol: impl Into<String>,
    ) -> Self {
        Self::build(
            head,
            body,
            Remote::Text(remote_ip.into()),
            Cow::Owned(protocol.into()),
            Instant::now(),
        )
    }

    /// A request as a server builds it: the client's address (`None` when the
    /// transport has none), the scheme, and when the request started (for
    /// [`request_time`](Self::request_time)). Nothing is formatted or parsed until
    /// asked for.
    pub fn from_connection(
        head: RequestHead,
        body: Bytes,
        remote_ip: Option<IpAddr>,
        protocol: impl Into<Cow<'static, str>>,
        started: Instant,
    ) -> Self {
        Self::build(head, body, Remote::ip(remote_ip), protocol.into(), started)
    }

    #[inline]
    fn build(
        head: RequestHead,
        body: Bytes,
        remote: Remote,
        protocol: Cow<'static, str>,
        started: Instant,
    ) -> Self {
        let (method, version, mut view) = head.into_view();
        view.extras_mut().protocol = protocol;
        HttpServerRequest {
            method,
            version,
            view,
            body,
            remote,
            started,
        }
    }

    fn extras(&self) -> &Extras {
        self.view.extras()
    }

    /// What the connection's setup agreed with the client, if it is a `T`. Behind an
    /// HTTPS server (`squall-tls`), `setup_info::<squall_tls::TlsInfo>()` gives the TLS
    /// version, the ALPN protocol, the server name the client asked for and the
    /// certificate it presented (Tornado's `request.get_ssl_certificate()`); `None` on a
    /// plain connection.
    pub fn setup_info<T: Any>(&self) -> Option<&T> {
        self.extras().setup_info.as_deref()?.downcast_ref()
    }

    /// Attaches what the connection's setup agreed (the HTTP server does this for the
    /// requests of a connection that went through a stream setup, such as TLS).
    pub fn set_setup_info(&mut self, info: Option<Arc<dyn Any + Send + Sync>>) {
        self.view.extras_mut().setup_info = info;
    }

    fn lazy(&self) -> &Lazy {
        self.extras().lazy.get_or_init(Box::default)
    }

    crate::head::view_methods!();

    /// The client's address as text (Tornado's `remote_ip`): the peer's, or with
    /// `xheaders` the one a trusted proxy reported; `""` when unknown. Formatted on
    /// first use.
    pub fn remote_ip(&self) -> &str {
        match &self.remote {
            Remote::Text(s) => s,
            Remote::None => "",
            other => self
                .lazy()
                .remote_ip
                .get_or_init(|| other.addr().map(|ip| ip.to_string()).unwrap_or_default()),
        }
    }

    /// The client's address, when it is one (see [`remote_ip`](Self::remote_ip)).
    pub fn remote_addr(&self) -> Option<IpAddr> {
        self.remote.addr()
    }

    /// `http` or `https` (Tornado's `protocol`).
    pub fn protocol(&self) -> &str {
        &self.extras().protocol
    }

    /// The Host header as sent (empty if it is empty, as RFC 9112 §3.2 allows for a
    /// target without an authority), or `127.0.0.1` when there is none (HTTP/1.0), as
    /// Tornado's `host`. (A Host that is not UTF-8 counts as none; the server refuses
    /// such requests anyway.)
    pub fn host(&self) -> &str {
        self.header("host").unwrap_or("127.0.0.1")
    }

    /// Arguments from the query string (Tornado's `query_arguments`), parsed on first
    /// use.
    pub fn query_arguments(&self) -> &Arguments {
        self.lazy()
            .query_arguments
            .get_or_init(|| parse_qs_bytes(self.query().as_bytes(), true))
    }

    /// Arguments from the body (Tornado's `body_arguments`): empty until
    /// [`parse_body`](Self::parse_body).
    pub fn body_arguments(&self) -> &Arguments {
        self.extras()
            .body_parts
            .as_ref()
            .map_or(&*NO_ARGUMENTS, |b| &b.arguments)
    }

    /// Uploaded files (Tornado's `files`): empty until [`parse_body`](Self::parse_body).
    pub fn files(&self) -> &Files {
        self.extras()
            .body_parts
            .as_ref()
            .map_or(&*NO_FILES, |b| &b.files)
    }

    /// Query and body arguments together, query first (Tornado's `arguments`), merged
    /// on first use.
    pub fn arguments(&self) -> &Arguments {
        self.lazy().arguments.get_or_init(|| {
            let mut all = self.query_arguments().clone();
            for (k, v) in self.body_arguments() {
                all.entry(k.clone()).or_default().extend(v.iter().cloned());
            }
            all
        })
    }

    /// Wall-clock time when the request started (Tornado's `_start_time`): now, less
    /// the time elapsed since then on the monotonic clock.
    pub fn start_time(&self) -> SystemTime {
        let now = SystemTime::now();
        now.checked_sub(self.started.elapsed()).unwrap_or(now)
    }

    /// Parse the body into [`body_arguments`](HttpServerRequest::body_arguments) and
    /// [`files`](HttpServerRequest::files) by its Content-Type, with the default
    /// multipart caps; [`arguments`](HttpServerRequest::arguments) includes them from
    /// then on.
    ///
    /// # Errors
    /// As [`parse_body_arguments`].
    #[inline]
    pub fn parse_body(&mut self) -> Result<(), ParseError> {
        self.parse_body_with(&MultipartConfig::default())
    }

    /// [`parse_body`](HttpServerRequest::parse_body) with explicit multipart caps. An
    /// empty body has no arguments, whatever its headers say.
    ///
    /// # Errors
    /// As [`parse_body_arguments`].
    #[inline]
    pub fn parse_body_with(&mut self, config: &MultipartConfig) -> Result<(), ParseError> {
        if self.body.is_empty() {
            // No body, no arguments (and nothing encoded to refuse): decided where it
            // is called, as most requests have no body.
            return Ok(());
        }
        self.parse_nonempty_body(config)
    }

    /// [`parse_body_with`](Self::parse_body_with) for a body with bytes in it.
    fn parse_nonempty_body(&mut self, config: &MultipartConfig) -> Result<(), ParseError> {
        let Some(content_type) = self.header_bytes("content-type") else {
            return Ok(());
        };
        let content_type = String::from_utf8_lossy(content_type);
        let media_type = content_type.split(';').next().unwrap_or("");
        if self.header_bytes("content-encoding").is_some()
            && FormType::of_media_type(media_type).is_some()
        {
            // Still encoded (the server inflates only when asked): the form cannot be
            // read (Tornado's GzipUnsupportedTest: 400). A body of another type is not
            // read as arguments, so its encoding does not matter.
            return Err(ParseError::UnsupportedContentEncoding);
        }
        let mut parts = BodyParts::default();
        parse_body_arguments(
            &content_type,
            &self.body,
            &mut parts.arguments,
            &mut parts.files,
            None, // a Content-Encoding was refused above
            config,
        )?;
        let extras = self.view.extras_mut();
        extras.body_parts = Some(Box::new(parts));
        if let Some(lazy) = extras.lazy.get_mut() {
            lazy.arguments.take();
        }
        Ok(())
    }

    /// The host without its port, lower-cased (Tornado's `host_name`).
    pub fn host_name(&self) -> String {
        split_host_and_port(self.host()).0.to_ascii_lowercase()
    }

    /// `protocol://host` + the path and query (Tornado's `full_url`). For an
    /// absolute-form request-target the host is the target's own authority (the parser
    /// puts it in place of the Host header), and only its path and query follow.
    pub fn full_url(&self) -> String {
        format!(
            "{}://{}{}",
            self.protocol(),
            self.host(),
            self.view.path_and_query()
        )
    }

    /// The cookies sent with the request, parsed on first use with [`parse_cookie`]
    /// (several Cookie headers are joined with `; `).
    pub fn cookies(&self) -> &HashMap<String, String> {
        self.lazy().cookies.get_or_init(|| {
            // UTF-8 when it is, else ISO-8859-1 as Tornado decodes a head: no byte
            // of a value is lost to U+FFFD.
            let joined = self
                .header_values("cookie")
                .map(|v| match std::str::from_utf8(v) {
                    Ok(text) => text.to_owned(),
                    Err(_) => crate::latin1_text(v),
                })
                .collect::<Vec<_>>()
                .join("; ");
            parse_cookie(&joined)
        })
    }

    /// Mark the request finished: [`request_time`](HttpServerRequest::request_time)
    /// stops counting.
    pub fn finish(&mut self) {
        self.view
            .extras_mut()
            .finished
            .get_or_insert_with(Instant::now);
    }

    /// How long the request took: until [`finish`](HttpServerRequest::finish), or until
    /// now if it has not finished.
    pub fn request_time(&self) -> Duration {
        self.extras()
            .finished
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(self.started)
    }
}

/// Tornado `HTTPHeaders` conveniences over `http::HeaderMap`.
#[doc(alias = "HTTPHeaders")]
pub trait HttpHeadersExt {
    /// Every value of `name` as text (invalid UTF-8 replaced), in order (Tornado's
    /// `get_list`).
    fn get_list(&self, name: &str) -> Vec<String>;

    /// All values of `name` joined with `,`, as Tornado's `headers[name]`; `None` when
    /// absent.
    fn get_joined(&self, name: &str) -> Option<String>;

    /// Add a value for `name`, keeping the existing ones (Tornado's `add`).
    ///
    /// # Errors
    /// [`ParseError::InvalidHeaderName`] or [`ParseError::InvalidHeaderValue`] (CR, LF,
    /// NUL and other control bytes are refused, and so is whitespace at either end).
    fn add(&mut self, name: &str, value: &str) -> Result<(), ParseError>;
}

impl HttpHeadersExt for HeaderMap {
    fn get_list(&self, name: &str) -> Vec<String> {
        self.get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    fn get_joined(&self, name: &str) -> Option<String> {
        let list = self.get_list(name);
        if list.is_empty() {
            None
        } else {
            Some(list.join(","))
        }
    }

    fn add(&mut self, name: &str, value: &str) -> Result<(), ParseError> {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| ParseError::InvalidHeaderName)?;
        // A field value neither starts nor ends with whitespace (RFC 9110 §5.5), as
        // Tornado's `add` checks.
        if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
            return Err(ParseError::InvalidHeaderValue);
        }
        let value = HeaderValue::from_str(value).map_err(|_| ParseError::InvalidHeaderValue)?;
        self.append(name, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_request_head, Limits};

    #[test]
    fn remote_address_as_given() {
        let head = || {
            parse_request_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())
                .unwrap()
                .unwrap()
                .0
        };
        let from = |ip: Option<IpAddr>| {
            HttpServerRequest::from_connection(head(), Bytes::new(), ip, "http", Instant::now())
        };
        for text in ["10.1.2.3", "::1", "2001:db8::8:800:200c:417a", "0.0.0.0"] {
            let ip: IpAddr = text.parse().unwrap();
            let req = from(Some(ip));
            assert_eq!(req.remote_addr(), Some(ip));
            assert_eq!(req.remote_ip(), text);
        }
        let req = from(None);
        assert_eq!(req.remote_addr(), None);
        assert_eq!(req.remote_ip(), "");
        let req = HttpServerRequest::new(head(), Bytes::new(), "192.0.2.7", "http");
        assert_eq!(req.remote_addr(), Some("192.0.2.7".parse().unwrap()));
        assert_eq!(req.remote_ip(), "192.0.2.7");
        let req = HttpServerRequest::new(head(), Bytes::new(), "not an address", "http");
        assert_eq!(req.remote_addr(), None);
        assert_eq!(req.remote_ip(), "not an address");
    }

    fn request(raw: &[u8]) -> HttpServerRequest {
        let (head, used) = parse_request_head(raw, &Limits::default())
            .unwrap()
            .unwrap();
        HttpServerRequest::new(
            head,
            Bytes::copy_from_slice(&raw[used..]),
            "127.0.0.1",
            "http",
        )
    }

    // Tornado's HTTPServerRequestTest.test_repr_does_not_contain_headers: a request
    // printed in a log line or a panic message gives away no header value (credentials)
    // and no body.
    #[test]
    fn debug_holds_no_header_value_and_no_body() {
        let r = request(
            b"POST /login HTTP/1.1\r\nHost: h\r\nAuthorization: Basic c2VjcmV0\r\nCookie: session=SECRET\r\nContent-Length: 6\r\n\r\npw=hid",
        );
        for printed in [format!("{r:?}"), format!("{r:#?}")] {
            for secret in ["c2VjcmV0", "SECRET", "pw=hid"] {
                assert!(!printed.contains(secret), "{printed}");
            }
            assert!(
                printed.contains("/login") && printed.contains("Authorization"),
                "{printed}"
            );
        }
        let (head, _) = parse_request_head(
            b"GET / HTTP/1.1\r\nHost: h\r\nCookie: session=SECRET\r\n\r\n",
            &Limits::default(),
        )
        .unwrap()
        .unwrap();
        assert!(!format!("{head:?}").contains("SECRET"));
    }

    // Tornado decodes a head as ISO-8859-1: a cookie value that is not UTF-8 keeps its
    // bytes (as ISO-8859-1) instead of turning into U+FFFD; UTF-8 stays UTF-8.
    #[test]
    fn cookie_values_lose_no_byte() {
        let r = request(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=caf\xe9; b=caf\xc3\xa9\r\n\r\n");
        assert_eq!(r.cookies()["a"], "caf\u{e9}");
        let r = request(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: b=caf\xc3\xa9\r\n\r\n");
        assert_eq!(r.cookies()["b"], "caf\u{e9}");
    }

    // Tornado's HTTPHeaders.add checks the value against RFC 9110's field-value, which
    // neither starts nor ends with whitespace.
    #[test]
    fn add_refuses_whitespace_at_either_end() {
        let mut h = HeaderMap::new();
        for bad in [" bar", "bar ", "\tbar", "bar\t"] {
            assert_eq!(
                h.add("Foo", bad),
                Err(ParseError::InvalidHeaderValue),
                "{bad:?}"
            );
        }
        h.add("Foo", "bar baz").unwrap();
        assert_eq!(h.get_list("foo"), ["bar baz"]);
    }

    // Tornado's host: an empty Host stays empty (a target without an authority); only a
    // missing one, which HTTP/1.0 allows, is 127.0.0.1.
    #[test]
    fn an_empty_host_stays_empty() {
        let r = request(b"GET /p HTTP/1.0\r\nHost: \r\n\r\n");
        assert_eq!(r.host(), "");
        assert_eq!(r.full_url(), "http:///p");
        assert_eq!(request(b"GET /p HTTP/1.0\r\n\r\n").host(), "127.0.0.1");
    }

    // Tornado's HTTPServerRequestTest.test_default_constructor and test_body_is_a_byte_string.
    #[test]
    fn defaults() {
        let mut r = request(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(r.host(), "127.0.0.1");
        assert!(r.body.is_empty());
        assert!(r.arguments().is_empty());
        assert!(r.cookies().is_empty());
        r.parse_body().unwrap();
        r.finish();
        let t = r.request_time();
        assert_eq!(t, r.request_time());
    }

    // Tornado's HTTPServerTest.test_empty_query_string and test_empty_post_parameters.
    #[test]
    fn blank_values_kept() {
        let r = request(b"GET /echo?foo=&foo= HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.arguments()["foo"], ["", ""]);
        let mut r = request(
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nfoo=&bar=",
        );
        r.parse_body().unwrap();
        assert_eq!(r.arguments()["foo"], [""]);
        assert_eq!(r.arguments()["bar"], [""]);
    }

    #[test]
    fn content_encoding_refused() {
        let mut r = request(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\na=b",
        );
        assert_eq!(r.parse_body(), Err(ParseError::UnsupportedContentEncoding));
        // A body of another type is not read as arguments: its encoding is no error.
        let mut r = request(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\na=b",
        );
        assert_eq!(r.parse_body(), Ok(()));
        assert!(r.arguments().is_empty());
    }

    #[test]
    fn headers_ext() {
        let mut h = HeaderMap::new();
        h.add("Set-Cookie", "A=B").unwrap();
        h.add("set-cookie", "C=D").unwrap();
        assert_eq!(h.get_list("SET-COOKIE"), ["A=B", "C=D"]);
        assert_eq!(h.get_joined("set-cookie").unwrap(), "A=B,C=D");
        assert_eq!(h.get_joined("x"), None);
        assert_eq!(h.add("X", "a\r\nb"), Err(ParseError::InvalidHeaderValue));
        assert_eq!(h.add("X Y", "a"), Err(ParseError::InvalidHeaderName));
    }
}
