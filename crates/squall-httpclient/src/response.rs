//! The response a fetch resolves to.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};

use crate::error::HttpClientError;

/// A complete response. Tornado's `HTTPResponse`.
#[doc(alias = "HTTPResponse")]
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub code: StatusCode,
    /// The reason phrase the server sent (Tornado's `reason`); when it sent none (the
    /// phrase may be empty, RFC 9112 §4), the status code's standard phrase, or
    /// `Unknown` for a code without one, as Tornado fills it in.
    pub reason: String,
    /// The response's version.
    pub version: Version,
    /// The header fields. With `decompress_response`, a gzip body's `Content-Encoding`
    /// is moved to `X-Consumed-Content-Encoding`, as in Tornado.
    pub headers: HeaderMap,
    /// The body, decompressed if asked; empty when a `streaming_callback` took it.
    pub body: Bytes,
    /// The trailer fields of a chunked body (usually none).
    pub trailers: HeaderMap,
    /// The URL this response came from, after any redirects (Tornado's
    /// `effective_url`).
    pub effective_url: String,
    /// How many redirects were followed to get here.
    pub redirects: u32,
    /// How long the request took (Tornado's `request_time`): from when it had one of
    /// the `max_clients` slots to the end of the response, so not the time it waited in
    /// the queue; after redirects, the final request's time alone, as in Tornado since
    /// 5.1. (A request sent again on a new connection after a kept one failed, or after
    /// a `417` or a `408`, is still the same request: its time includes the first try.)
    pub request_time: Duration,
    /// When the request started, on the wall clock (Tornado's `start_time`): the instant
    /// `request_time` is counted from, so the final request's after redirects, once it
    /// had its `max_clients` slot. (There is no `time_info`: Tornado's simple client
    /// leaves it empty.)
    pub start_time: SystemTime,
}

impl HttpResponse {
    /// The body as text (bytes that are not UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        self.code.is_success()
    }

    /// The response back for a 2xx status, else an [`HttpClientError::Http`] holding it.
    /// Tornado's `rethrow`, for a fetch made with `raise_error(false)`.
    ///
    /// # Errors
    /// [`HttpClientError::Http`] for a status that is not 2xx.
    pub fn rethrow(self) -> Result<HttpResponse, HttpClientError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(HttpClientError::Http(Box::new(self)))
        }
    }
}

/// The reason phrase a response reports: the one sent, else the code's standard phrase
/// ("Unknown" for a code without one), as Tornado's `HTTPResponse` makes it
/// (`reason or httputil.responses.get(code, "Unknown")`).
pub(crate) fn reason_or_standard(sent: String, code: StatusCode) -> String {
    if !sent.is_empty() {
        return sent;
    }
    code.canonical_reason().unwrap_or("Unknown").to_owned()
}
