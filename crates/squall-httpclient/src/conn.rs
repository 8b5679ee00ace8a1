//! One request and its response over one connection: Tornado's `_HTTPConnection`.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use squall_httputil::client::{
    encode_request_head, RequestBodyEncoder, RequestFraming, ResponseEvent, ResponseHead,
    ResponseParser,
};
use squall_httputil::{GzipInflater, Limits, ParseError};
use squall_iostream::{CloseCause, IoStream, StreamError};

use crate::error::HttpClientError;
use crate::request::{BodyProducer, HttpRequest};

/// Where a body producer writes the request body. Each write is framed (a chunk of a
/// chunked body, or counted against the request's Content-Length) and sent; awaiting it
/// waits until the bytes are handed to the OS, which is the upload's backpressure.
#[derive(Clone)]
pub struct BodyWriter {
    stream: IoStream,
    encoder: Rc<RefCell<RequestBodyEncoder>>,
}

impl std::fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyWriter")
            .field("written", &self.encoder.borrow().written())
            .finish_non_exhaustive()
    }
}

impl BodyWriter {
    /// Send `data` as the next piece of the body.
    ///
    /// # Errors
    /// [`HttpClientError::InvalidRequest`] for more bytes than the request's
    /// Content-Length; [`HttpClientError::Stream`] if the connection fails.
    pub async fn write(&self, data: impl Into<Bytes>) -> Result<(), HttpClientError> {
        let data = data.into();
        let mut out = BytesMut::with_capacity(data.len() + 20);
        self.encoder.borrow_mut().encode(&data, &mut out)?;
        if !out.is_empty() {
            self.stream.write(out.freeze()).await?;
        }
        Ok(())
    }

    /// Body bytes written so far.
    pub fn written(&self) -> u64 {
        self.encoder.borrow().written()
    }
}

/// The request as it goes on the wire for one hop of a fetch.
pub(crate) struct Outgoing<'a> {
    pub(crate) request: &'a HttpRequest,
    pub(crate) method: &'a Method,
    pub(crate) target: http::Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: RequestFraming,
    pub(crate) body: Option<&'a Bytes>,
    pub(crate) producer: Option<&'a BodyProducer>,
    /// Whether a redirect answer would be followed: its body is then read and dropped,
    /// and the callbacks do not see it.
    pub(crate) follow: bool,
    /// Whether the head carries `Expect: 100-continue` and the body waits for the
    /// server's `100 Continue` (at most [`CONTINUE_TIMEOUT`]).
    pub(crate) expect_continue: bool,
}

/// What one exchange brought back.
pub(crate) struct Exchanged {
    pub(crate) head: ResponseHead,
    pub(crate) body: Bytes,
    pub(crate) trailers: HeaderMap,
    /// The connection can carry another request.
    pub(crate) reusable: bool,
    /// The answer was `417 Expectation Failed` to a request whose body waited for
    /// `100 Continue` and was not sent: the callbacks did not see it, and the caller
    /// sends the request again without the expectation (RFC 9110 §10.1.1).
    pub(crate) expectation_failed: bool,
}

/// Why an exchange failed, and whether it is safe to try again on a new connection: a
/// reused keep-alive connection that the server had closed fails before any byte of
/// the response arrives.
pub(crate) struct Failed {
    pub(crate) error: HttpClientError,
    pub(crate) nothing_received: bool,
}

impl From<HttpClientError> for Failed {
    fn from(error: HttpClientError) -> Self {
        Failed {
            error,
            nothing_received: false,
        }
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Whether a request sends content: a non-empty body, or a producer's.
pub(crate) fn has_content(body: Option<&Bytes>, producer: Option<&BodyProducer>) -> bool {
    body.is_some_and(|b| !b.is_empty()) || producer.is_some()
}

/// Whether a response will be followed as a redirect.
pub(crate) fn follows(head: &ResponseHead, follow: bool) -> bool {
    follow && is_redirect(head.status) && head.headers.contains_key(header::LOCATION)
}

/// A body upload in progress, polled while the response is read.
type Upload<'a> = Pin<Box<dyn Future<Output = Result<(), HttpClientError>> + 'a>>;

/// How long a request with `expect_100_continue` waits for the server's
/// `100 Continue` before it sends its body anyway, when no answer at all has come:
/// one second, as curl waits. RFC 9110 §10.1.1: a client that sends the expectation
/// is not required to wait for it indefinitely (a server or an intermediary may not
/// know `Expect`, and wait for the body).
pub const CONTINUE_TIMEOUT: Duration = Duration::from_secs(1);

/// What waiting on the connection brought: the upload's end, input, or the end of
/// the wait for `100 Continue`.
enum Step {
    Sent(Result<(), HttpClientError>),
    ContinueWaited,
    Read(Result<usize, squall_iostream::StreamError>),
}

/// Send `out` on `stream` and read the response.
///
/// The response is read while the body is sent (RFC 9112 §9.5 asks a client to watch
/// for an early answer): a server may answer before it has read the body (a 413, a
/// 401, a redirect), and then stop reading it. A response that is complete before the
/// body ends the upload, and the connection is not reused.
///
/// With `out.expect_continue`, the body waits for `100 Continue`, or for
/// [`CONTINUE_TIMEOUT`] without any answer; a final answer before it means the body is
/// never sent (and the connection is not reused). A `417 Expectation Failed` then is
/// [`Exchanged::expectation_failed`], for the caller to send the request again without
/// the expectation.
///
/// With `retry_408` (a kept connection, a request that may be sent twice), a
/// `408 Request Timeout` is the server closing an idle connection just as the request
/// arrived, not an answer to it: the callbacks do not see it, and the caller sends the
/// request again on a new connection.
pub(crate) async fn exchange(
    stream: &IoStream,
    out: &Outgoing<'_>,
    retry_408: bool,
) -> Result<Exchanged, Failed> {
    let req = out.request;
    let mut wire = BytesMut::with_capacity(256 + out.body.map_or(0, Bytes::len).min(16 * 1024));
    encode_request_head(
        &mut wire,
        out.method,
        &out.target,
        &out.headers,
        out.framing,
    )
    .map_err(HttpClientError::from)?;
    let has_body = has_content(out.body, out.producer);
    let wait_continue = out.expect_continue && has_body;
    let mut body_sent = !has_body;
    if !wait_continue {
        if let Some(b) = out.body {
            if b.len() <= 16 * 1024 {
                wire.extend_from_slice(b);
                body_sent = true;
            }
        }
    }
    let sent = stream.write(wire.freeze()).await;
    if let Err(e) = sent {
        return Err(Failed {
            error: e.into(),
            nothing_received: true,
        });
    }
    let mut upload: Option<Upload<'_>> = None;
    if !wait_continue && !body_sent {
        upload = Some(Box::pin(send_body(stream, out)));
    }
    // A write that failed while the server may have answered already: the answer is
    // still read from what arrived, and the write's error is the cause if none did.
    let mut send_failed: Option<HttpClientError> = None;
    let mut waiting_continue = wait_continue;
    let mut continue_wait = wait_continue.then(|| Box::pin(squall_ioloop::sleep(CONTINUE_TIMEOUT)));
    let mut expectation_failed = false;

    let limits = Limits {
        max_head_size: req.max_header_size,
        // Only the head's size bounds its fields, as Tornado (a field line takes three
        // bytes at least: `a:` and its LF).
        max_headers: req.max_header_size / 3,
        max_body_size: req.max_body_size,
        ..Limits::default()
    };
    let mut parser = ResponseParser::new(out.method, limits);
    let mut buf = BytesMut::new();
    let mut head: Option<ResponseHead> = None;
    let mut following = false;
    let mut body = BytesMut::new();
    let mut inflater: Option<GzipInflater> = None;
    let mut received = false;
    loop {
        while let Some(event) = parser.poll(&mut buf).map_err(HttpClientError::from)? {
            match event {
                ResponseEvent::Interim(h)
                    if waiting_continue && h.status == StatusCode::CONTINUE =>
                {
                    waiting_continue = false;
                    continue_wait = None;
                    upload = Some(Box::pin(send_body(stream, out)));
                }
                ResponseEvent::Head(mut h) => {
                    // A final answer before `100 Continue`: the body is never sent.
                    expectation_failed =
                        waiting_continue && h.status == StatusCode::EXPECTATION_FAILED;
                    waiting_continue = false;
                    continue_wait = None;
                    following = follows(&h, out.follow)
                        || (retry_408 && h.status == StatusCode::REQUEST_TIMEOUT)
                        || expectation_failed;
                    if !following {
                        // Renamed before the callback sees the head, as Tornado's
                        // `_GzipMessageDelegate` does: the lines say what the body
                        // handed on is.
                        if req.decompress_response && is_gzip(&h.headers) {
                            inflater = Some(GzipInflater::new(req.max_body_size));
                            if let Some(enc) = h.headers.remove(header::CONTENT_ENCODING) {
                                h.headers.insert("x-consumed-content-encoding", enc);
                            }
                        }
                        if let Some(cb) = &req.header_callback {
                            header_lines(&h, &mut *cb.borrow_mut());
                        }
                    }
                    head = Some(h);
                }
                ResponseEvent::Data(d) if !following => {
                    deliver(req, &mut inflater, &mut body, d).map_err(HttpClientError::from)?;
                }
                ResponseEvent::End => {
                    // An upload still going is dropped with the connection.
                    return finish(head, body, &mut parser, inflater, &buf, body_sent, req)
                        .map(|ex| Exchanged {
                            expectation_failed,
                            ..ex
                        })
                        .map_err(Failed::from);
                }
                _ => {}
            }
        }
        let step = poll_fn(|cx| {
            if let Some(wait) = continue_wait.as_mut() {
                if wait.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Step::ContinueWaited);
                }
            }
            if let Some(up) = upload.as_mut() {
                if let Poll::Ready(r) = up.as_mut().poll(cx) {
                    return Poll::Ready(Step::Sent(r));
                }
            }
            stream.poll_read_buf(cx, &mut buf).map(Step::Read)
        })
        .await;
        match step {
            // No answer within the wait: the server may not know `Expect`.
            Step::ContinueWaited => {
                continue_wait = None;
                waiting_continue = false;
                upload = Some(Box::pin(send_body(stream, out)));
            }
            Step::Sent(Ok(())) => {
                upload = None;
                body_sent = true;
            }
            // The connection failed under the upload; what the server sent before is
            // still to be read. (Any other failure of the upload is the answer.)
            Step::Sent(Err(e @ HttpClientError::Stream(_))) if stream.closed() => {
                upload = None;
                send_failed = Some(e);
            }
            // The producer's own failure, or a body that breaks its framing.
            Step::Sent(Err(e)) => return Err(e.into()),
            Step::Read(Ok(0)) => {
                // End of file before any byte of the answer is the connection's failure
                // (Tornado's `HTTPStreamClosedError`), not a malformed response; one
                // cut after it began is the response's (`IncompleteMessage`).
                let end = if !received {
                    Err(HttpClientError::Stream(StreamError::Closed(
                        CloseCause::Eof,
                    )))
                } else {
                    match truncation(stream, &parser) {
                        Some(error) => Err(error),
                        None => parser.eof().map_err(HttpClientError::from),
                    }
                };
                return match end {
                    Ok(_) => finish(head, body, &mut parser, inflater, &buf, false, req)
                        .map(|ex| Exchanged {
                            expectation_failed,
                            ..ex
                        })
                        .map_err(Failed::from),
                    Err(error) => Err(Failed {
                        error: send_failed.unwrap_or(error),
                        nothing_received: !received,
                    }),
                };
            }
            Step::Read(Ok(_)) => received = true,
            Step::Read(Err(e)) => {
                return Err(Failed {
                    error: send_failed.unwrap_or(e.into()),
                    nothing_received: !received,
                })
            }
        }
    }
}

/// RFC 9112 §9.8: over TLS, a body that ends with the connection is complete only if
/// the server closed with `close_notify`; an end without it may be an attacker's cut,
/// and is an error rather than a shorter body. (A length or a chunked body is complete
/// or not by itself, whatever the close.)
#[cfg(feature = "tls")]
fn truncation(stream: &IoStream, parser: &ResponseParser) -> Option<HttpClientError> {
    (parser.reads_until_close() && squall_tls::TlsStreamExt::truncated(stream))
        .then(|| HttpClientError::Stream(squall_tls::TlsError::Truncated.into()))
}

/// Without TLS no end of file is a truncation.
#[cfg(not(feature = "tls"))]
fn truncation(_stream: &IoStream, _parser: &ResponseParser) -> Option<HttpClientError> {
    None
}

fn finish(
    head: Option<ResponseHead>,
    body: BytesMut,
    parser: &mut ResponseParser,
    inflater: Option<GzipInflater>,
    leftover: &BytesMut,
    body_sent: bool,
    req: &HttpRequest,
) -> Result<Exchanged, HttpClientError> {
    let head = head.ok_or(HttpClientError::Response(ParseError::IncompleteMessage))?;
    // An empty body (HEAD, 204, 304, a zero length) is no gzip stream to check, as
    // Tornado's flush of an unfed decompressor.
    if let Some(inf) = inflater.as_ref().filter(|inf| inf.started()) {
        inf.finish()?;
    }
    // Bytes past the end of the response (a body longer than its Content-Length): RFC
    // 9112 §6.3 lets a client discard them, and never reads them as a response of their
    // own; the response stands (as Tornado, curl and hyper return it) and the
    // connection is not kept. Refusing the response instead would make its fate
    // depend on whether the stray bytes came in the same read as its end.
    let stray = !leftover.is_empty();
    if stray {
        log::debug!(
            "{} bytes past the end of the response to {}: discarded, connection closed",
            leftover.len(),
            req.url()
        );
    }
    // RFC 9112 §9.6: a `close` option anywhere in the list (`te, close`).
    let asked_close = req.headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    });
    Ok(Exchanged {
        reusable: parser.keep_alive() && body_sent && !asked_close && !stray,
        trailers: parser.take_trailers().unwrap_or_default(),
        head,
        body: body.freeze(),
        expectation_failed: false,
    })
}

fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
}

/// A piece of the final body: inflated if asked, then to the streaming callback or the
/// body buffer.
fn deliver(
    req: &HttpRequest,
    inflater: &mut Option<GzipInflater>,
    body: &mut BytesMut,
    data: Bytes,
) -> Result<(), ParseError> {
    let data = match inflater {
        Some(inf) => {
            let mut out = Vec::new();
            inf.inflate_all(&data, &mut out)?;
            if out.is_empty() {
                return Ok(());
            }
            Bytes::from(out)
        }
        None => data,
    };
    match &req.streaming_callback {
        Some(cb) => (cb.borrow_mut())(data),
        None => body.extend_from_slice(&data),
    }
    Ok(())
}

/// The status line, each header line and the empty line, as Tornado's
/// `header_callback` receives them.
fn header_lines(head: &ResponseHead, cb: &mut dyn FnMut(&str)) {
    cb(&format!(
        "{:?} {} {}\r\n",
        head.version,
        head.status.as_u16(),
        head.reason
    ));
    for (name, value) in &head.headers {
        // ISO-8859-1, as Tornado decodes header lines: every byte is kept as a char,
        // where a lossy UTF-8 decoding would turn obs-text into U+FFFD.
        let value = squall_httputil::latin1_text(value.as_bytes());
        cb(&format!("{name}: {value}\r\n"));
    }
    cb("\r\n");
}

/// The body that was not sent with the head: a large fixed body, or the producer's.
async fn send_body(stream: &IoStream, out: &Outgoing<'_>) -> Result<(), HttpClientError> {
    if let Some(b) = out.body {
        stream.write(b.clone()).await?;
        return Ok(());
    }
    let Some(producer) = out.producer else {
        return Ok(());
    };
    let encoder = Rc::new(RefCell::new(RequestBodyEncoder::new(out.framing)));
    let writer = BodyWriter {
        stream: stream.clone(),
        encoder: encoder.clone(),
    };
    if let Err(e) = producer(writer).await {
        return Err(match e.downcast::<HttpClientError>() {
            Ok(e) => *e,
            Err(e) => HttpClientError::BodyProducer(e),
        });
    }
    let mut tail = BytesMut::new();
    encoder.borrow_mut().finish(&mut tail)?;
    if !tail.is_empty() {
        stream.write(tail.freeze()).await?;
    }
    Ok(())
}

/// The value of a header the caller gave, or `default`.
pub(crate) fn set_default(headers: &mut HeaderMap, name: header::HeaderName, default: &str) {
    if !headers.contains_key(&name) {
        if let Ok(v) = HeaderValue::from_str(default) {
            headers.insert(name, v);
        }
    }
}
