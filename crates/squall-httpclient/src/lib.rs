//! squall's non-blocking HTTP/1.1 client: Tornado's `AsyncHTTPClient` (the
//! `simple_httpclient` implementation) on squall's `IoLoop` and `IoStream`.
//!
//! - [`HttpClient::fetch`] takes an [`HttpRequest`] (or a URL) and resolves with an
//!   [`HttpResponse`] or a typed [`HttpClientError`].
//! - The request carries Tornado's options: method, headers, body or a streaming
//!   [`body_producer`](HttpRequest::body_producer), a
//!   [`streaming_callback`](HttpRequest::streaming_callback) and a
//!   [`header_callback`](HttpRequest::header_callback), `connect_timeout` and
//!   `request_timeout`, `follow_redirects` and `max_redirects`, `decompress_response`
//!   (gzip), basic auth, `user_agent`, `allow_nonstandard_methods`, an HTTP [`Proxy`],
//!   `raise_error`, `expect_100_continue`, `allow_ipv6`, `network_interface` (the
//!   source IP address).
//! - The client keeps idle keep-alive connections per host and runs at most
//!   `max_clients` requests at once; the others wait in a queue with its own timeout
//!   ([`ClientConfig`]).
//!
//! The wire format is `squall_httputil::client`, the sans-IO request encoder and strict
//! response parser.
//!
//! # Example
//!
//! ```
//! use squall_httpclient::{HttpClient, HttpRequest};
//! use squall_httpserver::{HttpServer, HttpServerRequest, Response};
//! use squall_ioloop::IoLoop;
//!
//! let io_loop = IoLoop::new()?;
//! io_loop.run_sync(async {
//!     // A server to talk to, on a free port of this loop.
//!     let mut server = HttpServer::new(|req: HttpServerRequest| async move {
//!         Response::text(format!("Hello from {}", req.path()))
//!     });
//!     let addr = server.listen(0, "127.0.0.1")?;
//!
//!     let client = HttpClient::new();
//!     let response = client.fetch(format!("http://{addr}/squall")).await?;
//!     assert_eq!(response.code, 200);
//!     assert_eq!(response.text(), "Hello from /squall");
//!
//!     // Non-2xx answers are errors unless raise_error(false).
//!     let request = HttpRequest::new(format!("http://{addr}/")).method(http::Method::DELETE);
//!     let response = client.fetch(request.raise_error(false)).await?;
//!     assert!(response.is_success());
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! }, None)??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Differences from Tornado
//!
//! - **Connections are kept alive and reused** per host (Tornado's simple client opens
//!   one connection per request). A kept connection the server has closed in the
//!   meantime is detected, and a request with an idempotent method (GET, HEAD, OPTIONS,
//!   TRACE, PUT, DELETE: RFC 9110 §9.2.2) that fails on it before any byte of the answer
//!   arrived is sent again on a new connection (unless its body came from a producer);
//!   a POST is not, since the server may have acted on it.
//! - **Stricter responses**: both Content-Length and Transfer-Encoding, or a transfer
//!   coding other than `chunked`, are errors ([`HttpClientError::Response`]). Bytes
//!   past the end of a response are discarded with its connection, as Tornado does
//!   (RFC 9112 §6.3), never read as a response. Obsolete line folding is read as a
//!   space (RFC 9112 §5.2), as Tornado joins the lines.
//! - **The response is read while the request body is sent** (Tornado writes the whole
//!   body first): a server that answers early (a 413 before reading a large upload) and
//!   reads no more gets its answer returned, and the rest of the body is not sent.
//! - **A URL's bytes that a URI may not hold raw are sent percent-encoded**, in the
//!   request and in a redirect's `Location`, as browsers send them (the WHATWG URL
//!   standard's percent-encode sets: in the path the controls, space, `"`, `<`, `>`,
//!   `` ` ``, `{`, `}` and non-ASCII; in the query the same but for `` ` ``, `{`, `}`);
//!   `%XX` escapes and every other byte stay, and `effective_url` is the URL as sent.
//!   Tornado sends them raw, which makes the request line invalid.
//! - **`expect_100_continue` waits for `100 Continue` at most
//!   [`CONTINUE_TIMEOUT`]** (one second, as curl) before it sends the body, and a
//!   `417 Expectation Failed` to the expectation sends the request again without it,
//!   as RFC 9110 §10.1.1 asks (Tornado waits until the request timeout, and returns
//!   the 417).
//! - **Redirects to another origin drop the `Authorization` and `Cookie` headers and the
//!   basic credentials** (Tornado forwards them).
//! - **Errors are one enum** ([`HttpClientError`]) instead of `HTTPClientError`,
//!   `HTTPTimeoutError`, `HTTPStreamClosedError` and bare OS errors; `code()` is 599 for
//!   the errors without a response, as in Tornado.
//! - **No `defaults` dictionary and no `configure`**: per-request options live on
//!   [`HttpRequest`] and client-wide ones on [`ClientConfig`]; there is one
//!   implementation; `max_header_size` and `max_body_size` are per request, and there is
//!   no `max_buffer_size` (the body cap bounds what is buffered). Digest
//!   authentication and `prepare_curl_callback` are curl-only in Tornado and absent
//!   here; `network_interface` is an IP address, as in Tornado's simple client (an
//!   interface name is curl's alone). Client certificates (`client_cert`,
//!   `client_key`), which Tornado's simple client supports too, are here with the
//!   `tls` feature.
//! - **A response of a later HTTP/1 minor version (`HTTP/1.2`...) is HTTP/1.1** (RFC
//!   9110 §2.5): its `version` and the status line `header_callback` sees say
//!   `HTTP/1.1` (Tornado keeps the version string as sent).
//! - **A text header value with a character past U+00FF is an error** naming it
//!   ([`IntoHeaderValue`]); values up to U+00FF are sent as ISO-8859-1, as Tornado
//!   sends them (Tornado fails such a value only when it writes the head).
//! - **`header_callback` lines are rebuilt from the parsed head**, so header names are in
//!   lower case (Tornado rebuilds them too, in its own canonical case).
//! - **https needs the `tls` feature** (squall-tls: rustls with the ring provider,
//!   which compiles C); without it an https URL is an
//!   [`HttpClientError::InvalidRequest`]. With it, a request's trust is, whatever the
//!   order of its setters: a configuration of its own (`tls_config`); else none under
//!   `validate_cert(false)`; else a CA file (`ca_certs`); else the client's default
//!   (`set_tls_config`, the system's roots unless set). Through a proxy, https goes
//!   through a `CONNECT` tunnel ([`connect_tunnel`]).
#![forbid(unsafe_code)]

mod client;
mod conn;
mod error;
mod pool;
mod request;
mod response;
#[cfg(feature = "tls")]
mod tls;
mod url;

pub use client::{connect_tunnel, ClientConfig, HttpClient};
pub use conn::{BodyWriter, CONTINUE_TIMEOUT};
pub use error::{HttpClientError, TimeoutPhase};
pub use request::{
    BodyProducer, HttpRequest, IntoHeaderValue, ProducerFuture, Proxy, DEFAULT_TIMEOUT,
};
pub use response::HttpResponse;
/// The resolvers [`HttpClient::with_resolver`] takes, from `squall-tcpserver`.
pub use squall_tcpserver::{OverrideResolver, Resolver};

/// Tornado's name for the client.
#[doc(alias = "AsyncHTTPClient")]
pub type AsyncHttpClient = HttpClient;
