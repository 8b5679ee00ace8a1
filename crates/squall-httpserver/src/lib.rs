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
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod config;
mod connection;
mod delegate;
mod handler;
mod iostream;
mod server;
mod transport;
mod xheaders;

pub use config::HttpServerConfig;
pub use connection::{Http1Connection, ResponseWriter, ACCESS_LOG_TARGET};
pub use delegate::{
    ConnectionInfo, HttpMessageDelegate, HttpServerConnectionDelegate, RequestStart,
};
pub use handler::{handler_fn, BufferedRequest, FnHandler, Response};
pub use iostream::IoStreamTransport;
pub use server::{HttpServer, ServerStats};
pub use squall_httputil::{HttpServerRequest, OutputError, ParseError, RequestHead};
pub use transport::{MemoryPeer, MemoryTransport, Transport};
