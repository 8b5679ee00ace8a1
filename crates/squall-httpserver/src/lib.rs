//! squall's HTTP/1.1 server: Tornado's `tornado.http1connection` (server side) and
//! `tornado.httpserver`.
//!
//! - [`Http1Connection`]: one connection's whole life as one future, over any
//!   [`Transport`], built on the sans-IO [`squall_httputil::h1::ServerConn`].
//! - Two handler styles: a simple async function from a whole request to a
//!   [`Response`] ([`handler_fn`]), and a streaming delegate
//!   ([`HttpServerConnectionDelegate`] / [`HttpMessageDelegate`]) that sees the body
//!   piece by piece, with backpressure, and writes through a [`ResponseWriter`].
//! - [`HttpServerConfig`]: every limit and timeout, with defaults a public server can
//!   live with.
//! - [`HttpServer`]: TCP listeners (on one loop or `n` threads) and Unix sockets
//!   ([`listen_unix`](HttpServer::listen_unix)), graceful shutdown, and shutdown on
//!   SIGTERM/SIGINT in one call ([`run_until_signal`](HttpServer::run_until_signal),
//!   [`shutdown_on_signal`](HttpServer::shutdown_on_signal)).
//! - The `http` crate's `Request`/`Response`: [`HttpServerRequest`] converts into
//!   `http::Request<Bytes>` and [`Response`] to and from `http::Response`, for code
//!   written against them.
//!
//! # Example
//!
//! ```
//! use std::rc::Rc;
//! use squall_httpserver::{handler_fn, Http1Connection, HttpServerConfig, MemoryTransport, Response};
//! use squall_ioloop::IoLoop;
//!
//! let handler = handler_fn(|req| async move {
//!     match req.path() {
//!         "/echo" => Response::bytes(req.body),
//!         _ => Response::text("Hello, world!"),
//!     }
//! });
//! let io_loop = IoLoop::new()?;
//! let (transport, peer) = MemoryTransport::pair();
//! peer.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
//! let conn = Http1Connection::new(transport, Rc::new(handler), HttpServerConfig::default(), None);
//! io_loop.run_sync(conn.serve(), None)?;
//! let out = peer.take_output();
//! assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
//! assert!(out.ends_with(b"\r\n\r\nhello"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Differences from Tornado, and why
//!
//! - **Timeouts**: `idle_connection_timeout` defaults to 60 s (Tornado: one hour, which
//!   leaks sockets to dead keep-alive peers), and a separate `header_timeout` (30 s)
//!   bounds a trickled head (slowloris); `body_timeout` defaults to 10 minutes (Tornado:
//!   none). See [`HttpServerConfig`].
//! - **Limits answer with their own status**: 431 for a head over `max_header_size`,
//!   413 for a body over `max_body_size` (Tornado answers 400 or just closes).
//! - **A panicking handler gets a 500** and the connection goes on when it can (Tornado
//!   logs and closes).
//! - **A handler whose client leaves is dropped**: when the client closes while a
//!   handler (or a streaming delegate's `finish`) is still working on a request read
//!   to its end, its future is dropped, cancelling it, as hyper drops its service
//!   future; a streaming delegate's `on_connection_close` is called. Tornado calls
//!   `on_connection_close` too, but lets the coroutine run on, its writes failing.
//! - **Delegates borrow, not own, the connection**: the [`ResponseWriter`] is passed to
//!   each [`HttpMessageDelegate`] method instead of being kept by the delegate, so the
//!   response must be written by the time `finish` returns (it may await as long as it
//!   likes first). `RequestStart` carries the head, the client address and the scheme
//!   together.
//! - **Threads, not processes**: `bind` + `start(n)` runs `n` loops on `n` threads, each
//!   with listeners of its own on the same port (`SO_REUSEPORT`), as
//!   `squall_tcpserver::ServerThreads` does (Tornado forks). The delegate is cloned once
//!   per thread. Accepting is `squall-tcpserver`'s accept loop, which survives running
//!   out of file descriptors.
//! - **`shutdown(grace)` is new** (Tornado has only `stop` + `close_all_connections`):
//!   stop accepting, close idle connections, answer requests in flight with
//!   `Connection: close`, force-close after the grace period.
//!   `run_until_signal(grace)` wires it to SIGTERM and SIGINT (a second signal forces).
//! - **Closing like nginx**: a connection that ends shuts down its write side right
//!   after the last response byte (the client sees end-of-file at once), then, when
//!   part of a request is unread (an early answer, a 413, a request pipelined after
//!   `Connection: close`), reads and discards for up to 2 s (the first 16 MiB; past
//!   them it waits out the 2 s unread) before closing, so the client receives the
//!   answer instead of a reset. Tornado closes at once.
//! - **Header names are written in lower case** when they come from an `http::HeaderMap`
//!   (HTTP/1.1 names are case-insensitive); the framing headers the encoder adds keep
//!   their usual spelling. [`HttpServerConfig::header_case`] sends title case, or the
//!   application's own spellings, for peers that expect them.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod access;
mod config;
mod connection;
mod control;
mod delegate;
mod detach;
mod handler;
mod interop;
mod iostream;
mod server;
mod spare;
mod transport;
mod writer;
mod xheaders;

pub use config::HttpServerConfig;
pub use connection::{Http1Connection, ACCESS_LOG_TARGET};
pub use delegate::{
    ConnectionInfo, HttpMessageDelegate, HttpServerConnectionDelegate, RequestStart,
};
pub use detach::{DetachError, Detached, OnUpgrade};
pub use handler::{handler_fn, BufferedRequest, FnHandler, Response};
pub use iostream::IoStreamTransport;
pub use server::{HttpServer, ServerStats, DEFAULT_UNIX_SOCKET_MODE};
pub use squall_httputil::{
    HeaderCase, HeaderCaseMap, HttpServerRequest, OutputError, ParseError, RequestHead,
};
pub use transport::{MemoryPeer, MemoryTransport, Transport};
pub use writer::ResponseWriter;
