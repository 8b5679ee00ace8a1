//! squall: Python Tornado's networking core rebuilt in Rust.
//!
//! This facade re-exports the layers, each of which is also a crate of its own:
//!
//! | module | crate | Tornado |
//! | --- | --- | --- |
//! | [`poller`] | `squall-poller` | `tornado.platform.interface` |
//! | [`platform`] | `squall-epoll`, `squall-kqueue`, `squall-poll`, `squall-select` | `tornado.platform.{epoll,kqueue,select}` |
//! | `ioloop` | `squall-ioloop` | `tornado.ioloop`, `tornado.gen` |
//! | `iostream` | `squall-iostream` | `tornado.iostream` |
//! | `tcp` | `squall-tcpserver` | `tornado.tcpserver`, `tornado.tcpclient`, `tornado.netutil` |
//! | `httputil` | `squall-httputil` | `tornado.httputil` |
//! | `http` | `squall-httpserver` | `tornado.httpserver`, `tornado.http1connection` |
//! | `http_types` | the `http` crate | (the vocabulary: `Method`, `StatusCode`, `Request`...) |
//!
//! Cargo features pick the layers: `ioloop`, `iostream`, `tcp`, `httputil` and `http`
//! (the default, which pulls in everything below it).
//!
//! # Example
//!
//! A hello-world server on a free port, asked once, then shut down gracefully:
//!
//! ```
//! # #[cfg(feature = "http")] {
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use squall::http::{HttpServer, Response};
//! use squall::IoLoop;
//!
//! let io_loop = IoLoop::new()?;
//! let mut server = HttpServer::new(|_req| async { Response::text("Hello, world!") });
//! io_loop.run_sync(async move {
//!     let addr = server.listen(0, "127.0.0.1")?;
//!     let client = std::thread::spawn(move || {
//!         let mut s = std::net::TcpStream::connect(addr).unwrap();
//!         s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
//!         let mut reply = String::new();
//!         s.read_to_string(&mut reply).unwrap();
//!         reply
//!     });
//!     while !client.is_finished() {
//!         squall::ioloop::sleep(Duration::from_millis(1)).await;
//!     }
//!     assert!(client.join().unwrap().ends_with("\r\n\r\nHello, world!"));
//!     server.shutdown(Duration::from_secs(1)).await;
//!     Ok::<_, std::io::Error>(())
//! }, Some(Duration::from_secs(10)))??;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub use squall_poller as poller;

/// The poller backends this platform has (Tornado's `tornado.platform`).
pub mod platform {
    squall_poller::cfg_epoll! {
        pub use squall_epoll as epoll;
    }
    squall_poller::cfg_kqueue! {
        pub use squall_kqueue as kqueue;
    }
    pub use squall_poll as poll;
    pub use squall_select as select;
}

#[cfg(feature = "ioloop")]
pub use squall_ioloop as ioloop;
#[cfg(feature = "ioloop")]
#[doc(no_inline)]
pub use squall_ioloop::IoLoop;

#[cfg(feature = "iostream")]
pub use squall_iostream as iostream;
#[cfg(feature = "iostream")]
#[doc(no_inline)]
pub use squall_iostream::IoStream;

#[cfg(feature = "tcp")]
pub use squall_tcpserver as tcp;

#[cfg(feature = "httputil")]
pub use squall_httputil as httputil;

/// The `http` crate, re-exported at the version squall's HTTP layers use: `Method`,
/// `StatusCode`, `HeaderMap`, `Uri`, and `Request`/`Response`, which
/// `HttpServerRequest` and squall's `Response` convert to and from (so a handler can
/// hand requests to code written for tower, axum or hyper, and take their responses
/// back). Named `http_types` because `squall::http` is squall's HTTP server, as in
/// Tornado (`tornado.httpserver`).
///
/// ```
/// # #[cfg(feature = "http")] {
/// use squall::http::{HttpServerRequest, Response};
/// use squall::http_types::{Request, StatusCode};
///
/// let req: HttpServerRequest = Request::post("/things").body("hi").unwrap().into();
/// assert_eq!(req.path(), "/things");
/// let back: Request<bytes::Bytes> = req.into();
/// assert_eq!(back.body().as_ref(), b"hi");
///
/// let res: Response = squall::http_types::Response::builder()
///     .status(StatusCode::CREATED)
///     .body("made")
///     .unwrap()
///     .into();
/// assert_eq!(res.status, StatusCode::CREATED);
/// # }
/// ```
#[cfg(feature = "httputil")]
pub use ::http as http_types;

#[cfg(feature = "http")]
pub use squall_httpserver as http;

/// TLS on rustls (Tornado's `SSLIOStream`, `start_tls`, `ssl_options`): the `tls`
/// feature, off by default (it builds C code: rustls's `ring` provider).
#[cfg(feature = "tls")]
pub use squall_tls as tls;

#[cfg(feature = "httpclient")]
pub use squall_httpclient as httpclient;
#[cfg(feature = "httpclient")]
#[doc(alias = "AsyncHTTPClient")]
pub use squall_httpclient::HttpClient;

/// The README's code blocks, compiled as doctests so that they stay true.
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
