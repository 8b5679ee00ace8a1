//! The simple handler style: an async function from a whole request to a [`Response`].

use std::borrow::Cow;
use std::future::Future;

use bytes::{Bytes, BytesMut};
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, StatusCode};
use squall_httputil::pool::Prefilled;
use squall_httputil::{HttpServerRequest, OutputError};

use crate::delegate::{
    ConnectionInfo, HttpMessageDelegate, HttpServerConnectionDelegate, RequestStart,
};
use crate::detach::OnUpgrade;
use crate::writer::ResponseWriter;

/// A whole response, returned by a simple handler: status, headers and body.
///
/// The server adds `Date`, `Server` (as configured), `Content-Length` (unless given)
/// and `Connection` as needed; for a HEAD request it sends the headers only.
///
/// ```
/// use http::{header, StatusCode};
/// use squall_httpserver::Response;
///
/// let ok = Response::text("Hello, world!");
/// assert_eq!(ok.status, StatusCode::OK);
/// assert_eq!(ok.headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
///
/// let missing = Response::new(StatusCode::NOT_FOUND)
///     .with_header(header::CACHE_CONTROL, "no-store".parse().unwrap());
/// assert!(missing.body.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The header fields (framing fields are the server's business: a
    /// `Transfer-Encoding` here is refused, a `Content-Length` must match the body).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// For a `101 Switching Protocols`: who takes the connection over once the response
    /// is out ([`Response::on_upgrade`]). Ignored on any other status (with an error
    /// logged).
    pub upgrade: Option<OnUpgrade>,
}

impl Default for Response {
    fn default() -> Self {
        Response::new(StatusCode::OK)
    }
}

impl Response {
    /// An empty response with `status`. Its header map comes from the thread's
    /// [`pool`](squall_httputil::pool) (the server gives maps back there once a head is
    /// written), so building a response usually allocates nothing.
    pub fn new(status: StatusCode) -> Self {
        Response {
            status,
            headers: squall_httputil::pool::take_headers(),
            body: Bytes::new(),
            upgrade: None,
        }
    }

    /// `200 OK` with `body` and no Content-Type.
    pub fn bytes(body: impl Into<Bytes>) -> Self {
        Response {
            body: body.into(),
            ..Response::new(StatusCode::OK)
        }
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body. Its header map is one the
    /// thread's [`pool`](squall_httputil::pool) keeps with that field already in it,
    /// when there is one (see [`Prefilled`]).
    pub fn text(body: impl Into<Bytes>) -> Self {
        Response::prefilled(Prefilled::TextPlain, body.into())
    }

    /// `200 OK` with a `text/html; charset=utf-8` body (its map from the pool as for
    /// [`text`](Response::text)).
    pub fn html(body: impl Into<Bytes>) -> Self {
        Response::prefilled(Prefilled::TextHtml, body.into())
    }

    /// Built in place: no `Response` moved through a chain of builders (and inlined,
    /// so it is written where the caller keeps it).
    #[inline]
    fn prefilled(kind: Prefilled, body: Bytes) -> Self {
        Response {
            status: StatusCode::OK,
            headers: squall_httputil::pool::take_headers_with(kind),
            body,
            upgrade: None,
        }
    }

    /// The same response with another status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The same response with a header set (replacing any value it had).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The same response with another body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The same response handing the connection over to `on_upgrade` once it is sent:
    /// for a `101 Switching Protocols` (WebSocket, HTTP/2 cleartext, any protocol of
    /// your own). See [`ResponseWriter::detach`] for what the callback gets.
    pub fn on_upgrade(mut self, on_upgrade: OnUpgrade) -> Self {
        self.upgrade = Some(on_upgrade);
        self
    }
}

/// A simple handler: an async function from a whole [`HttpServerRequest`] to a
/// [`Response`], made with [`handler_fn`]. Tornado's `HTTPServer(request_callback)` with
/// a plain callable.
///
/// It is a [`HttpServerConnectionDelegate`] that buffers each request's body (up to
/// `max_body_size`), parses its arguments (query, urlencoded or multipart body), calls
/// the function, and writes what it returns. A body that fails to parse (bad multipart,
/// a `Content-Encoding` the form parser cannot read) is answered `400` without calling
/// the function.
///
/// To serve on several threads (`HttpServer::start(n)`) the function must be
/// `Clone + Send`: each thread gets its own copy. Its futures need not be `Send`.
#[derive(Debug, Clone)]
pub struct FnHandler<F> {
    f: F,
}

/// Wrap an async function as a simple handler.
///
/// ```
/// use squall_httpserver::{handler_fn, Response};
///
/// let hello = handler_fn(|req| async move {
///     if req.path() == "/echo" {
///         Response::bytes(req.body)
///     } else {
///         Response::text("Hello, world!")
///     }
/// });
/// # drop(hello);
/// ```
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(HttpServerRequest) -> Fut + 'static,
    Fut: Future<Output = Response>,
{
    FnHandler { f }
}

impl<F, Fut> HttpServerConnectionDelegate for FnHandler<F>
where
    F: Fn(HttpServerRequest) -> Fut + 'static,
    Fut: Future<Output = Response>,
{
    type Message<'a> = BufferedRequest<'a, F>;

    fn start_request<'a>(&'a self, _connection: &ConnectionInfo) -> BufferedRequest<'a, F> {
        BufferedRequest {
            f: &self.f,
            start: None,
            body: Body::Empty,
        }
    }
}

#[derive(Debug)]
enum Body {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

/// The per-request delegate of a [`FnHandler`]: buffers the body, then calls the
/// function.
#[derive(Debug)]
pub struct BufferedRequest<'a, F> {
    f: &'a F,
    start: Option<RequestStart>,
    body: Body,
}

impl<F, Fut> HttpMessageDelegate for BufferedRequest<'_, F>
where
    F: Fn(HttpServerRequest) -> Fut,
    Fut: Future<Output = Response>,
{
    // The first two steps only store what they are given: done at the call, with a
    // ready future, rather than in an `async fn` whose state would hold (and copy) the
    // request head on its way in.
    fn headers_received(
        &mut self,
        request: RequestStart,
        _writer: &mut ResponseWriter<'_>,
    ) -> impl Future<Output = ()> {
        self.start = Some(request);
        std::future::ready(())
    }

    fn data_received(
        &mut self,
        chunk: Bytes,
        _writer: &mut ResponseWriter<'_>,
    ) -> impl Future<Output = ()> {
        // The first piece is kept as is (no copy for a body that came in one read).
        self.body = match std::mem::replace(&mut self.body, Body::Empty) {
            Body::Empty => Body::One(chunk),
            Body::One(first) => {
                let mut all = BytesMut::with_capacity(first.len() + chunk.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&chunk);
                Body::Many(all)
            }
            Body::Many(mut all) => {
                all.extend_from_slice(&chunk);
                Body::Many(all)
            }
        };
        std::future::ready(())
    }

    async fn finish(&mut self, writer: &mut ResponseWriter<'_>) {
        let Some(start) = self.start.take() else {
            return;
        };
        let body = match std::mem::replace(&mut self.body, Body::Empty) {
            Body::Empty => Bytes::new(),
            Body::One(b) => b,
            Body::Many(b) => b.freeze(),
        };
        answer(self.f, whole_request(start, body), writer).await;
    }

    // A bodyless request goes to the function at once: nothing is stored between steps.
    fn request_received(
        &mut self,
        request: RequestStart,
        writer: &mut ResponseWriter<'_>,
    ) -> impl Future<Output = ()> {
        answer(self.f, whole_request(request, Bytes::new()), writer)
    }
}

/// The whole request a [`FnHandler`]'s function receives, from its start and body.
fn whole_request(start: RequestStart, body: Bytes) -> HttpServerRequest {
    let protocol: Cow<'static, str> = match start.protocol.as_str() {
        "http" => Cow::Borrowed("http"),
        "https" => Cow::Borrowed("https"),
        other => Cow::Owned(other.to_owned()),
    };
    let setup = start.connection.setup;
    let mut request = HttpServerRequest::from_connection(
        start.head,
        body,
        start.remote_ip,
        protocol,
        start.start_time,
    );
    if setup.is_some() {
        request.set_setup_info(setup);
    }
    request
}

/// Parse the request's body arguments, call the function, write what it returns.
///
/// A plain function returning an `async move` block, not an `async fn`, which would
/// keep its arguments twice and copy the request (about 280 bytes) once more.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice"
)]
fn answer<'f, 'a, 'w, F, Fut>(
    f: &'f F,
    mut request: HttpServerRequest,
    writer: &'a mut ResponseWriter<'w>,
) -> impl Future<Output = ()> + use<'f, 'a, 'w, F, Fut>
where
    F: Fn(HttpServerRequest) -> Fut,
    Fut: Future<Output = Response>,
{
    async move {
        // A form still encoded (the server was not asked to inflate it) is refused with
        // the rest (Tornado's GzipUnsupportedTest: 400); an encoded body of another type
        // is handed over as sent.
        match request.parse_body() {
            Ok(()) => {}
            Err(e) => {
                log::info!("bad request body from {}: {e}", request.remote_ip());
                let resp = Response::text(e.to_string()).with_status(e.status());
                let _ = writer.respond(resp.status, resp.headers, &resp.body);
                return;
            }
        }
        let resp = f(request).await;
        match writer.respond(resp.status, resp.headers, &resp.body) {
            Ok(()) => {
                if let Some(upgrade) = resp.upgrade {
                    if let Err(e) = writer.detach(upgrade) {
                        log::error!(
                            "handler returned an upgrade with status {}: {e}",
                            resp.status
                        );
                    }
                }
            }
            // The peer is not reading: the connection logs it and closes.
            Err(OutputError::WriteBufferFull) => {}
            Err(e) => {
                log::error!("handler returned an invalid response ({e}); answering 500");
                if !writer.is_started() {
                    let _ =
                        writer.respond(StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), b"");
                }
            }
        }
    }
}
