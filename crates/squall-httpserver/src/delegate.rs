//! The streaming handler interface: Tornado's `HTTPServerConnectionDelegate` and
//! `HTTPMessageDelegate`.

use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::uri::Scheme;
use squall_httputil::RequestHead;
use squall_tcpserver::SetupInfo;

use crate::writer::ResponseWriter;

/// What is known about a connection when a request starts on it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The peer's socket address (`None` for a transport without one, such as a Unix
    /// socket or [`MemoryTransport`](crate::MemoryTransport)).
    pub peer_addr: Option<SocketAddr>,
    /// A number for this connection, unique within its server thread (for logs).
    pub id: u64,
    /// What the server's [`stream_setup`](crate::HttpServerConfig::stream_setup) agreed
    /// with the client
    /// ([`StreamSetup::setup_info`](squall_tcpserver::StreamSetup::setup_info)): for
    /// TLS, `squall-tls`'s `TlsInfo`. Read it with [`setup_info`](Self::setup_info).
    pub setup: Option<SetupInfo>,
}

impl ConnectionInfo {
    /// Information for a connection from `peer_addr`.
    pub fn new(peer_addr: Option<SocketAddr>, id: u64) -> Self {
        ConnectionInfo {
            peer_addr,
            id,
            setup: None,
        }
    }

    /// The same, with what the connection's setup agreed.
    pub fn with_setup(mut self, setup: Option<SetupInfo>) -> Self {
        self.setup = setup;
        self
    }

    /// What the connection's setup agreed, if it is a `T` (`squall_tls::TlsInfo` behind
    /// an HTTPS server: the client's certificate, Tornado's `get_ssl_certificate()`).
    pub fn setup_info<T: Any>(&self) -> Option<&T> {
        self.setup.as_deref()?.downcast_ref()
    }
}

/// Two connection infos are equal when they name the same peer and number and share
/// the same setup information (the same value, not an equal one).
impl PartialEq for ConnectionInfo {
    fn eq(&self, other: &Self) -> bool {
        self.peer_addr == other.peer_addr
            && self.id == other.id
            && match (&self.setup, &other.setup) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for ConnectionInfo {}

/// A request as it starts: its head, and who sent it.
///
/// Tornado passes `start_line` and `headers` to `headers_received`, and keeps the
/// address and scheme on the connection's context; here they travel together.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestStart {
    /// Method, target, version, headers and framing, as parsed. With
    /// `decompress_request` on and a gzip body, `Content-Encoding` has been renamed
    /// `X-Consumed-Content-Encoding`: the body will arrive inflated.
    pub head: RequestHead,
    /// The client's address: the peer's, or with `xheaders` on, the one the proxy
    /// reports (`X-Real-Ip`, or the last untrusted hop of `X-Forwarded-For`) when it is
    /// a valid IP address.
    pub remote_ip: Option<IpAddr>,
    /// `http` or `https`: the configured `protocol`, or with `xheaders` on what
    /// `X-Scheme` / `X-Forwarded-Proto` say (only `http` and `https` are taken).
    pub protocol: Scheme,
    /// The connection's information.
    pub connection: ConnectionInfo,
    /// When the head was parsed (Tornado's `_start_time`, for `request_time`).
    pub start_time: Instant,
}

/// Makes one [`HttpMessageDelegate`] per request: Tornado's
/// `HTTPServerConnectionDelegate`.
///
/// A server shares one value of this type among the connections of each thread (an
/// `Rc`); [`HttpServer`](crate::HttpServer) clones it once per thread, so it must be
/// `Clone + Send` to serve on several threads, and it is never touched by two threads at
/// once.
#[doc(alias = "HTTPServerConnectionDelegate")]
pub trait HttpServerConnectionDelegate: 'static {
    /// The per-request delegate. It may borrow from `self` (the connection holds the
    /// server's delegate for as long as the request lasts).
    type Message<'a>: HttpMessageDelegate
    where
        Self: 'a;

    /// A request is starting on `connection`: return the delegate that will receive
    /// its head, body and end. Tornado's `start_request(server_conn, request_conn)`.
    /// A panic here is caught: the request is answered `500` and the connection
    /// closes.
    fn start_request<'a>(&'a self, connection: &ConnectionInfo) -> Self::Message<'a>;

    /// The connection is gone (Tornado's `on_close(server_conn)`). Default: nothing.
    fn on_close(&self, connection: &ConnectionInfo) {
        let _ = connection;
    }
}

/// Receives one request, piece by piece, and writes its response: Tornado's
/// `HTTPMessageDelegate`.
///
/// The connection calls, in order, [`headers_received`](Self::headers_received) once,
/// [`data_received`](Self::data_received) for each piece of the body (at most
/// `chunk_size` bytes each, inflated if `decompress_request` applies), then
/// [`finish`](Self::finish) once, or instead of the rest
/// [`on_connection_close`](Self::on_connection_close) if the connection goes away before
/// `finish` returns.
///
/// Each method is async: **while its future is pending, the connection reads nothing
/// more from the client**, which is how a slow consumer pushes back on a fast uploader
/// (Tornado: "if it returns an awaitable, reading pauses until it resolves"). Responses
/// already written are flushed meanwhile. Once the body is complete, the connection
/// does watch the client while `finish` (or [`request_received`](Self::request_received))
/// is pending and the response is not finished: if the client closes (or resets, or
/// shuts down its sending side), that future is dropped, cancelling whatever it
/// awaits, and `on_connection_close` is called, as Tornado's `on_connection_close` runs
/// at once for a client that leaves a long poll. A request the client pipelines
/// meanwhile is kept (one read at most) and answered after this one. A `finish` that
/// goes on after finishing its response is not disturbed.
///
/// The response is written through the [`ResponseWriter`] passed to each method, at any
/// point: a delegate that answers in `headers_received` (say, `401` or `413`) will not
/// get the body, and the connection will close after the response, since the unread
/// body cannot be skipped safely. When `finish` returns, the response must have been
/// started; the connection finishes it if the delegate did not, and answers `500` (and
/// logs an error) if it was never started.
///
/// A panic in any of these methods is caught: the request is answered `500` if no
/// response head has gone out yet (else the connection is closed), and the server goes
/// on. A panic in `headers_received` or `data_received` closes the connection before
/// `finish`, so `on_connection_close` follows it. A panic in `on_connection_close` (or in the server delegate's `on_close`) is
/// logged, and the connection's close goes on.
///
/// The trait uses `async fn`; implement it with `async fn` too. Its futures need not
/// be `Send`: they run on the connection's thread.
#[doc(alias = "HTTPMessageDelegate")]
#[allow(async_fn_in_trait)]
pub trait HttpMessageDelegate {
    /// The head has arrived. Tornado's `headers_received(start_line, headers)`. This is
    /// the place to call [`ResponseWriter::set_max_body_size`] or
    /// [`ResponseWriter::set_body_timeout`], or to answer at once.
    async fn headers_received(&mut self, request: RequestStart, writer: &mut ResponseWriter<'_>);

    /// A piece of the body. Default: ignore it.
    async fn data_received(&mut self, chunk: Bytes, writer: &mut ResponseWriter<'_>) {
        let _ = (chunk, writer);
    }

    /// The body is complete: answer now if not done yet.
    async fn finish(&mut self, writer: &mut ResponseWriter<'_>);

    /// The connection closed (or failed, or timed out) before `finish` returned: the
    /// client went away, or the connection had to close. A pending step's future is
    /// dropped before this is called; it is called once per request. Default: nothing.
    fn on_connection_close(&mut self) {}

    /// A request that has no body (no `Content-Length` or `Transfer-Encoding`, or a
    /// `Content-Length` of 0): its head is the whole of it, and the connection calls
    /// this one method instead of [`headers_received`](Self::headers_received) and
    /// [`finish`](Self::finish).
    ///
    /// The default calls `headers_received`, then `finish` unless the response was
    /// finished or the connection handed over ([`ResponseWriter::detach`]) in between;
    /// a response finished from the head is followed by
    /// [`on_connection_close`](Self::on_connection_close), as Tornado calls it when
    /// `finish` is skipped. Override it when a bodyless request can be answered in
    /// one step (a whole-request handler does): one future per request instead of
    /// two.
    async fn request_received(&mut self, request: RequestStart, writer: &mut ResponseWriter<'_>) {
        self.headers_received(request, writer).await;
        if writer.is_detached() {
            return;
        }
        if writer.is_finished() {
            self.on_connection_close();
            return;
        }
        self.finish(writer).await;
    }
}
