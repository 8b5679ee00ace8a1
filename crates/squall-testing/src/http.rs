//! Tornado's `AsyncHTTPTestCase`: an application served on an unused port of the test's
//! own loop, and a client to fetch from it.

use std::future::Future;
use std::io;

use squall_httpclient::{HttpClient, HttpClientError, HttpRequest, HttpResponse};
use squall_httpserver::{
    FnHandler, HttpServer, HttpServerConnectionDelegate, HttpServerRequest, Response,
};

use crate::port::bind_unused_port;

/// An HTTP application under test, served on `127.0.0.1` at an unused port of the
/// current loop, with an [`HttpClient`] to fetch from it. Tornado's
/// `AsyncHTTPTestCase`: make it inside the test (a [`gen_test`](crate::gen_test) or
/// `run_sync`), then [`fetch`](Self::fetch) paths. Dropping it stops the server and
/// closes the client.
///
/// ```
/// use squall_httpserver::{HttpServerRequest, Response};
/// use squall_testing::{gen_test, AsyncHttpTestCase};
///
/// async fn hello(req: HttpServerRequest) -> Response {
///     Response::text(format!("Hello, {}", req.path()))
/// }
///
/// #[gen_test]
/// async fn test_hello() {
///     let app = AsyncHttpTestCase::start(hello).unwrap();
///     let response = app.fetch("/world").await.unwrap();
///     assert_eq!(response.code, 200);
///     assert_eq!(response.text(), "Hello, /world");
/// }
/// # fn main() {
/// #     squall_testing::run_test("test_hello", None, || async {
/// #         let app = AsyncHttpTestCase::start(hello).unwrap();
/// #         assert_eq!(app.fetch("/world").await.unwrap().text(), "Hello, /world");
/// #     });
/// # }
/// ```
#[doc(alias = "AsyncHTTPTestCase")]
pub struct AsyncHttpTestCase<D: HttpServerConnectionDelegate> {
    server: HttpServer<D>,
    port: u16,
    /// `http`, or `https` for a server whose stream setup is TLS (its scheme is `https`).
    protocol: &'static str,
    client: HttpClient,
}

impl<D: HttpServerConnectionDelegate> std::fmt::Debug for AsyncHttpTestCase<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncHttpTestCase")
            .field("port", &self.port)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl<F, Fut> AsyncHttpTestCase<FnHandler<F>>
where
    F: Fn(HttpServerRequest) -> Fut + Clone + 'static,
    Fut: Future<Output = Response> + 'static,
{
    /// Serve `handler` (an async function from a request to a response; Tornado's
    /// `get_app`) on an unused port of the current loop.
    ///
    /// # Errors
    /// The OS error of binding, or an error if no loop is current.
    pub fn start(handler: F) -> io::Result<Self> {
        AsyncHttpTestCase::with_server(HttpServer::new(handler))
    }

    /// Serve `handler` over TLS with [the test certificate](crate::test_tls_server_config)
    /// on an unused port of the current loop: Tornado's `AsyncHTTPSTestCase`. URLs are
    /// `https://127.0.0.1:PORT/...` and the client accepts any certificate (Tornado's
    /// `validate_cert=False` for its test client). Only with the `tls` feature.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    #[cfg(feature = "tls")]
    pub fn start_https(handler: F) -> io::Result<Self> {
        AsyncHttpTestCase::with_https_server(HttpServer::new(handler))
    }
}

impl<D: HttpServerConnectionDelegate + Clone> AsyncHttpTestCase<D> {
    /// Serve `server` (with its delegate and configuration) on an unused port of the
    /// current loop. A server with a TLS stream setup (one whose scheme is `https`:
    /// `squall-tls`'s `TlsAcceptor`) is served as `https` (Tornado's `get_protocol`),
    /// and with the `tls` feature its client accepts any certificate, as
    /// `with_https_server`'s; any other setup leaves it `http`.
    ///
    /// # Errors
    /// The OS error of binding, or an error if no loop is current.
    pub fn with_server(mut server: HttpServer<D>) -> io::Result<Self> {
        let (listener, port) = bind_unused_port()?;
        server.add_sockets(vec![listener])?;
        let tls = serves_tls(&server);
        let client = HttpClient::new();
        #[cfg(feature = "tls")]
        if tls {
            let accept_any = squall_tls::TlsClientConfig::accept_any_certificate()
                .map_err(|e| io::Error::other(format!("the test client's TLS: {e}")))?;
            client.set_tls_config(accept_any);
        }
        Ok(AsyncHttpTestCase {
            server,
            port,
            protocol: if tls { "https" } else { "http" },
            client,
        })
    }

    /// Serve `server` over TLS on an unused port of the current loop: Tornado's
    /// `AsyncHTTPSTestCase`. The server's own stream setup is kept if it has one
    /// (Tornado's overridden `get_ssl_options`); otherwise it serves
    /// [the test certificate](crate::test_tls_server_config). The client accepts any
    /// certificate (Tornado's `validate_cert=False` for its test client); a request's
    /// own `ca_certs` or `tls_config` still wins. Only with the `tls` feature.
    ///
    /// # Errors
    /// As [`with_server`](Self::with_server); `InvalidInput` for a server whose own
    /// stream setup is not TLS (it cannot be served over HTTPS without dropping it).
    #[cfg(feature = "tls")]
    pub fn with_https_server(server: HttpServer<D>) -> io::Result<Self> {
        if serves_tls(&server) {
            return AsyncHttpTestCase::with_server(server);
        }
        if server.config().stream_setup.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the server's stream setup is not TLS: it cannot be served over HTTPS",
            ));
        }
        let setup = squall_tls::TlsAcceptor::new(crate::test_tls_server_config());
        let config = squall_httpserver::HttpServerConfig {
            stream_setup: Some(std::sync::Arc::new(setup)),
            ..server.config().clone()
        };
        AsyncHttpTestCase::with_server(server.with_config(config))
    }
}

/// Whether `server`'s connections are TLS: its stream setup names the `https` scheme
/// (squall-tls's `TlsAcceptor`); a setup that leaves the stream plain (a socket
/// option, a PROXY header) names none.
fn serves_tls<D: HttpServerConnectionDelegate>(server: &HttpServer<D>) -> bool {
    server
        .config()
        .stream_setup
        .as_ref()
        .and_then(|s| s.scheme())
        == Some("https")
}

impl<D: HttpServerConnectionDelegate> AsyncHttpTestCase<D> {
    /// The port served. Tornado's `get_http_port`.
    pub fn get_http_port(&self) -> u16 {
        self.port
    }

    /// `http`, or `https` for a server served over TLS. Tornado's `get_protocol`.
    pub fn get_protocol(&self) -> &'static str {
        self.protocol
    }

    /// The absolute URL of `path` on the server under test. Tornado's `get_url`.
    pub fn get_url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.protocol, self.port)
    }

    /// The server under test.
    pub fn server(&self) -> &HttpServer<D> {
        &self.server
    }

    /// The client [`fetch`](Self::fetch) uses. Tornado's `http_client`.
    pub fn http_client(&self) -> &HttpClient {
        &self.client
    }

    /// Fetch `path` (or an absolute URL) with a GET. As Tornado's `fetch`, a non-2xx
    /// answer is a response, not an error (`raise_error` is off).
    ///
    /// # Errors
    /// Any [`HttpClientError`] other than a non-2xx status.
    pub async fn fetch(&self, path: &str) -> Result<HttpResponse, HttpClientError> {
        self.fetch_request(HttpRequest::new(path)).await
    }

    /// Fetch `request`, whose URL may be a path on the server under test; `raise_error`
    /// is turned off as in [`fetch`](Self::fetch), even when the request set it (a
    /// request cannot tell its default from a choice). For a fetch that fails on a
    /// non-2xx answer, use [`http_client`](Self::http_client)`().fetch(..)` with
    /// [`get_url`](Self::get_url).
    ///
    /// # Errors
    /// Any [`HttpClientError`] other than a non-2xx status.
    pub async fn fetch_request(
        &self,
        request: HttpRequest,
    ) -> Result<HttpResponse, HttpClientError> {
        // A full URL (its scheme in any case, as Tornado's `path.lower().startswith`), or
        // a path on this test's server.
        let url = request.url().as_bytes();
        let full = [&b"http://"[..], b"https://"]
            .iter()
            .any(|s| url.len() >= s.len() && url[..s.len()].eq_ignore_ascii_case(s));
        let request = if full {
            request
        } else {
            let url = self.get_url(request.url());
            request.url_set(url)
        };
        self.client.fetch(request.raise_error(false)).await
    }
}

/// Tornado's `tearDown`: the server stops accepting (its listener closes at once), its
/// open connections are closed (`close_all_connections`, on this loop: keep-alive
/// peers see their end of file), and the client closes.
impl<D: HttpServerConnectionDelegate> Drop for AsyncHttpTestCase<D> {
    fn drop(&mut self) {
        self.client.close();
        self.server.stop();
        let closing = self.server.close_all_connections();
        match squall_ioloop::IoLoop::current() {
            Some(io_loop) => drop(io_loop.spawn(closing)),
            None => log::debug!("AsyncHttpTestCase dropped off its loop: connections left open"),
        }
    }
}
