//! [`HttpServerRequest`]: one whole request with its arguments, files and cookies, and
//! the [`HttpHeadersExt`] helpers over `HeaderMap`.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri, Version};

use crate::cookie::parse_cookie;
use crate::error::ParseError;
use crate::form::{parse_body_arguments, Files, MultipartConfig};
use crate::head::RequestHead;
use crate::url::{parse_qs_bytes, split_host_and_port, Arguments};

/// A single HTTP request, body included (Tornado's `HTTPServerRequest`).
///
/// Built by the server once the body has been read. Query arguments are parsed at
/// construction; body arguments and files by [`parse_body`](HttpServerRequest::parse_body)
/// (the server calls it for whole-request handlers); cookies on first use.
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
/// assert_eq!(req.host, "example.com:8080");
/// assert_eq!(req.host_name(), "example.com");
/// assert_eq!(req.arguments["a"], ["1", "2"]);
/// assert_eq!(req.body_arguments["b"], ["3"]);
/// assert_eq!(req.arguments["c"], ["4"]);
/// assert_eq!(req.cookies()["session"], "abc");
/// assert_eq!(req.full_url(), "http://example.com:8080/form?a=1&a=2");
/// # Ok::<(), squall_httputil::ParseError>(())
/// ```
#[doc(alias = "HTTPServerRequest")]
#[derive(Debug)]
pub struct HttpServerRequest {
    /// The method.
    pub method: Method,
    /// The request-target as sent.
    pub uri: Uri,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// The header fields.
    pub headers: HeaderMap,
    /// The body (inflated if the server decompressed it).
    pub body: Bytes,
    /// The client's address (or the one a trusted proxy reported, with `xheaders`).
    pub remote_ip: String,
    /// `http` or `https`.
    pub protocol: String,
    /// The Host header, or `127.0.0.1` when there is none (HTTP/1.0), as Tornado.
    pub host: String,
    /// Query and body arguments together, query first.
    pub arguments: Arguments,
    /// Arguments from the query string.
    pub query_arguments: Arguments,
    /// Arguments from the body (after [`parse_body`](HttpServerRequest::parse_body)).
    pub body_arguments: Arguments,
    /// Uploaded files (after [`parse_body`](HttpServerRequest::parse_body)).
    pub files: Files,
    /// Wall-clock time when the request object was made.
    pub start_time: SystemTime,
    started: Instant,
    finished: Option<Instant>,
    cookies: OnceLock<HashMap<String, String>>,
}

impl HttpServerRequest {
    /// A request from its head and body, from a peer at `remote_ip` over `protocol`.
    pub fn new(
        head: RequestHead,
        body: Bytes,
        remote_ip: impl Into<String>,
        protocol: impl Into<String>,
    ) -> Self {
        let host = head
            .headers
            .get(header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let query_arguments = parse_qs_bytes(head.uri.query().unwrap_or("").as_bytes(), true);
        HttpServerRequest {
            method: head.method,
            arguments: query_arguments.clone(),
            query_arguments,
            uri: head.uri,
            version: head.version,
            headers: head.headers,
            body,
            remote_ip: remote_ip.into(),
            protocol: protocol.into(),
            host,
            body_arguments: Arguments::new(),
            files: Files::new(),
            start_time: SystemTime::now(),
            started: Instant::now(),
            finished: None,
            cookies: OnceLock::new(),
        }
    }

    /// Parse the body into [`body_arguments`](HttpServerRequest::body_arguments) and
    /// [`files`](HttpServerRequest::files) by its Content-Type, with the default
    /// multipart caps, and add the body arguments to
    /// [`arguments`](HttpServerRequest::arguments).
    ///
    /// # Errors
    /// As [`parse_body_arguments`].
    pub fn parse_body(&mut self) -> Result<(), ParseError> {
        self.parse_body_with(&MultipartConfig::default())
    }

    /// [`parse_body`](HttpServerRequest::parse_body) with explicit multipart caps.
    ///
    /// # Errors
    /// As [`parse_body_arguments`].
    pub fn parse_body_with(&mut self, config: &MultipartConfig) -> Result<(), ParseError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let mut body_arguments = Arguments::new();
        parse_body_arguments(
            content_type.as_deref().unwrap_or(""),
            &self.body,
            &mut body_arguments,
            &mut self.files,
            Some(&self.headers),
            config,
        )?;
        for (k, v) in &body_arguments {
            self.arguments
                .entry(k.clone())
                .or_default()
                .extend(v.iter().cloned());
        }
        self.body_arguments = body_arguments;
        Ok(())
    }

    /// The path of the request-target.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query of the request-target (without `?`), or `""`.
    pub fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// The host without its port, lower-cased (Tornado's `host_name`).
    pub fn host_name(&self) -> String {
        split_host_and_port(&self.host).0.to_ascii_lowercase()
    }

    /// `protocol://host` + the request-target (Tornado's `full_url`).
    pub fn full_url(&self) -> String {
        format!("{}://{}{}", self.protocol, self.host, self.uri)
    }

    /// The cookies sent with the request, parsed on first use with [`parse_cookie`]
    /// (several Cookie headers are joined with `; `).
    pub fn cookies(&self) -> &HashMap<String, String> {
        self.cookies.get_or_init(|| {
            let joined = self
                .headers
                .get_all(header::COOKIE)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join("; ");
            parse_cookie(&joined)
        })
    }

    /// Mark the request finished: [`request_time`](HttpServerRequest::request_time)
    /// stops counting.
    pub fn finish(&mut self) {
        self.finished.get_or_insert_with(Instant::now);
    }

    /// How long the request took: until [`finish`](HttpServerRequest::finish), or until
    /// now if it has not finished.
    pub fn request_time(&self) -> Duration {
        self.finished
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
    /// NUL and other control bytes are refused).
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
        let value = HeaderValue::from_str(value).map_err(|_| ParseError::InvalidHeaderValue)?;
        self.append(name, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_request_head, Limits};

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

    // Tornado's HTTPServerRequestTest.test_default_constructor and test_body_is_a_byte_string.
    #[test]
    fn defaults() {
        let mut r = request(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(r.host, "127.0.0.1");
        assert!(r.body.is_empty());
        assert!(r.arguments.is_empty());
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
        assert_eq!(r.arguments["foo"], ["", ""]);
        let mut r = request(
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nfoo=&bar=",
        );
        r.parse_body().unwrap();
        assert_eq!(r.arguments["foo"], [""]);
        assert_eq!(r.arguments["bar"], [""]);
    }

    #[test]
    fn content_encoding_refused() {
        let mut r = request(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\na=b",
        );
        assert_eq!(r.parse_body(), Err(ParseError::UnsupportedContentEncoding));
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
