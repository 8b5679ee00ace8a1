//! What a fetch can fail with.

use std::error::Error;
use std::fmt;
use std::io;

use squall_httputil::{OutputError, ParseError};
use squall_iostream::{CloseCause, StreamError};

use crate::response::HttpResponse;

/// Which wait ran out. Tornado's `HTTPTimeoutError` messages name the same three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// `max_clients` requests were running and this one waited in the queue longer than
    /// `min(connect_timeout, request_timeout)`: "Timeout in request queue".
    Queue,
    /// The connection was not up within `connect_timeout`: "Timeout while connecting".
    Connect,
    /// The response was not complete within `request_timeout`: "Timeout during
    /// request".
    Request,
}

/// Why [`HttpClient::fetch`](crate::HttpClient::fetch) failed. Tornado's
/// `HTTPClientError` (a non-2xx response), `HTTPTimeoutError`, `HTTPStreamClosedError`
/// and the plain exceptions it lets through, as one typed value that keeps its cause.
///
/// [`code`](HttpClientError::code) is the status of an HTTP error, and 599 for every
/// other error, as Tornado reports them.
#[doc(alias = "HTTPClientError")]
#[doc(alias = "HTTPError")]
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpClientError {
    /// The server answered with a status that is not 2xx, and the request's
    /// `raise_error` was on (the default). The whole response is here.
    Http(Box<HttpResponse>),
    /// A wait ran out.
    Timeout(TimeoutPhase),
    /// The connection could not be made (resolution, refusal, unreachable); the OS
    /// error.
    Connect(io::Error),
    /// The connection failed while the request was written or the response read (a
    /// reset, the server closing before it sent any byte of its answer, which is
    /// `StreamError::Closed(CloseCause::Eof)`): Tornado's `HTTPStreamClosedError`. The
    /// stream error carries the OS error, or over https the TLS one
    /// (`squall_tls::TlsError::from_stream_error`): among them
    /// `TlsError::Truncated` for a body read until the connection closed that ended
    /// without the server's `close_notify` (RFC 9112 §9.8).
    Stream(StreamError),
    /// The response broke HTTP's rules: garbage instead of a status line, bad framing,
    /// a response cut short once it began (`IncompleteMessage`: a head without its end,
    /// a body short of its Content-Length or chunked framing),
    /// a body or head over the request's caps, gzip that does not inflate.
    Response(ParseError),
    /// A proxy's answer to `CONNECT` was followed by bytes before the tunnel was used:
    /// the connection is closed. (Bytes past the end of an ordinary response, a body
    /// longer than its Content-Length, are discarded with the connection instead, and
    /// the response stands: RFC 9112 §6.3.)
    ExtraData {
        /// How many bytes came after the proxy's answer.
        len: usize,
    },
    /// The request cannot be sent: a bad URL, an unsupported scheme, a method that
    /// needs a body without one (or the reverse) without `allow_nonstandard_methods`, a
    /// header that is not valid, a body that breaks its own Content-Length.
    InvalidRequest(String),
    /// The request's body producer failed; its error.
    BodyProducer(Box<dyn Error>),
    /// A proxy refused a `CONNECT` with this status.
    Proxy(http::StatusCode),
    /// The client was closed ([`HttpClient::close`](crate::HttpClient::close)).
    Closed,
}

impl HttpClientError {
    /// The HTTP status of an [`Http`](HttpClientError::Http) error, 599 for every
    /// other error (Tornado's convention for errors without a response).
    pub fn code(&self) -> u16 {
        match self {
            HttpClientError::Http(r) => r.code.as_u16(),
            _ => 599,
        }
    }

    /// The response of an [`Http`](HttpClientError::Http) error.
    pub fn response(&self) -> Option<&HttpResponse> {
        match self {
            HttpClientError::Http(r) => Some(r),
            _ => None,
        }
    }

    /// True for a [`Timeout`](HttpClientError::Timeout).
    pub fn is_timeout(&self) -> bool {
        matches!(self, HttpClientError::Timeout(_))
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> HttpClientError {
        HttpClientError::InvalidRequest(msg.into())
    }
}

impl fmt::Display for HttpClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpClientError::Http(r) => write!(f, "HTTP {}: {}", r.code.as_u16(), r.reason),
            HttpClientError::Timeout(TimeoutPhase::Queue) => {
                f.write_str("Timeout in request queue")
            }
            HttpClientError::Timeout(TimeoutPhase::Connect) => {
                f.write_str("Timeout while connecting")
            }
            HttpClientError::Timeout(TimeoutPhase::Request) => {
                f.write_str("Timeout during request")
            }
            HttpClientError::Connect(e) => write!(f, "cannot connect: {e}"),
            HttpClientError::Stream(StreamError::Closed(CloseCause::Eof)) => {
                f.write_str("Stream closed: the server closed the connection (end of file)")
            }
            // The cause alone: the stream's own words would say "stream closed" again.
            HttpClientError::Stream(StreamError::Closed(cause)) => {
                write!(f, "Stream closed: {cause}")
            }
            HttpClientError::Stream(e) => write!(f, "stream error: {e}"),
            HttpClientError::Response(e) => write!(f, "malformed response: {e}"),
            HttpClientError::ExtraData { len } => {
                write!(
                    f,
                    "{len} bytes after the proxy's answer to CONNECT, before the tunnel was used"
                )
            }
            HttpClientError::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            HttpClientError::BodyProducer(e) => write!(f, "body producer failed: {e}"),
            HttpClientError::Proxy(s) => write!(f, "proxy refused CONNECT: {s}"),
            HttpClientError::Closed => f.write_str("the HTTP client is closed"),
        }
    }
}

impl Error for HttpClientError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            HttpClientError::Connect(e) => Some(e),
            HttpClientError::Stream(e) => Some(e),
            HttpClientError::Response(e) => Some(e),
            HttpClientError::BodyProducer(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<StreamError> for HttpClientError {
    fn from(e: StreamError) -> Self {
        HttpClientError::Stream(e)
    }
}

impl From<ParseError> for HttpClientError {
    fn from(e: ParseError) -> Self {
        HttpClientError::Response(e)
    }
}

impl From<OutputError> for HttpClientError {
    fn from(e: OutputError) -> Self {
        HttpClientError::InvalidRequest(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A closed stream's error says "Stream closed" once, then its cause (it read
    /// "Stream closed: stream closed: connection reset"); other stream errors say so.
    #[test]
    fn a_closed_stream_is_named_once() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let closed =
            HttpClientError::Stream(StreamError::Closed(CloseCause::Reset(Arc::new(reset))));
        let text = closed.to_string();
        assert!(text.starts_with("Stream closed: "), "{text}");
        assert_eq!(
            text.to_ascii_lowercase().matches("stream closed").count(),
            1,
            "{text}"
        );
        let busy = HttpClientError::Stream(StreamError::ReadInProgress).to_string();
        assert_eq!(busy, "stream error: already reading");
    }
}
