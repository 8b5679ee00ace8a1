//! squall's TCP layer: Tornado's `tornado.tcpserver`, `tornado.tcpclient` and
//! `tornado.netutil` on the squall [`IoLoop`](squall_ioloop::IoLoop) and
//! [`IoStream`](squall_iostream::IoStream).
//!
//! - [`bind_sockets`] / [`bind_unix_socket`]: listening sockets (IPv4 and IPv6, one
//!   shared port for port 0, `V6ONLY`, `REUSEADDR`, optional `REUSEPORT`; Unix sockets
//!   that replace only a stale socket file).
//! - [`add_accept_handler`]: the accept loop (up to 128 `accept4` per event), which
//!   **survives running out of fds** by pausing the listener with a backoff instead of
//!   spinning, as Tornado and tokio do.
//! - [`TcpServer`]: `listen`, `add_sockets`, `stop`, and an async `handle_stream`;
//!   [`ServerThreads`]: `bind` + `start(n)` on n threads, each with its own loop and its
//!   own `SO_REUSEPORT` listener.
//! - [`TcpClient::connect`] / [`connect_with`](TcpClient::connect_with): every
//!   resolved address, in Tornado's happy-eyeballs order, through a pluggable
//!   [`Resolver`], with an address family, a source address and port, and a timeout.
//! - [`is_valid_ip`]: whether a string is a numeric IP address.
//!
//! # Example: an echo server
//!
//! ```
//! use squall_ioloop::IoLoop;
//! use squall_iostream::{IoStream, StreamError};
//! use squall_tcpserver::{TcpClient, TcpServer};
//! use std::time::Duration;
//!
//! let io_loop = IoLoop::new()?;
//! io_loop.run_sync(async {
//!     let server = TcpServer::new(|stream: IoStream, _addr| async move {
//!         loop {
//!             let data = stream.read_bytes(64 * 1024, true).await?;
//!             stream.write(data).await?;
//!         }
//!         #[allow(unreachable_code)]
//!         Ok::<(), StreamError>(())
//!     })?;
//!     let port = server.listen(0, "127.0.0.1")?[0].port();
//!     let client = TcpClient::new()
//!         .connect("127.0.0.1", port, Some(Duration::from_secs(5)))
//!         .await?;
//!     client.write(&b"hello"[..]).await?;
//!     assert_eq!(&client.read_bytes(5, false).await?[..], b"hello");
//!     server.stop();
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! }, None)??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Differences from Tornado, and why
//!
//! - **Threads instead of processes.** `start(n)` forks in Tornado; Rust programs rarely
//!   fork after starting threads, so [`ServerThreads::start`] runs n threads, each with
//!   its own loop and `SO_REUSEPORT` listener: the same kernel load-balancing, no shared
//!   state, and a handler *factory* so each thread builds its own (possibly `Rc`-based)
//!   handler.
//! - **`handle_stream` is a closure or trait** ([`StreamHandler`]) instead of a method to
//!   override; its future may return `Result`, and errors are logged (peer drops at
//!   debug level).
//! - **EMFILE is handled**: Tornado has no branch for it and spins.
//! - **The default backlog is 1024** (Tornado: 128), so connection bursts are not
//!   dropped by a full queue.
//! - **`bind_unix_socket` keeps a live socket**: Tornado removes any socket file at the
//!   path; squall removes it only if nobody accepts on it.
//! - **`TcpClient` options are a value** ([`ConnectOptions`]) instead of keyword
//!   arguments. A `source_port` without a `source_ip` binds the unspecified address of
//!   the target's family (Tornado binds loopback, which cannot reach another host).
//! - **Happy eyeballs is a state machine apart from the I/O**, tested with scripted
//!   connects as Tornado's `ConnectorTest` does; a resolver is any [`Resolver`].
//! - **[`is_valid_ip`] parses instead of calling `getaddrinfo`**, and so refuses the
//!   shorthand IPv4 forms (`127.1`) that `inet_aton` accepts.
//! - **TLS is a setup step** ([`StreamSetup`]): Tornado's `ssl_options` argument becomes
//!   [`TcpServer::set_stream_setup`] with `squall-tls`'s `TlsAcceptor`, so this crate does
//!   not depend on the TLS crate (and builds without a C compiler).

#![warn(unreachable_pub)]

mod client;
mod connector;
mod netutil;
mod server;
mod setup;
mod sys;

pub use client::{
    ConnectOptions, DefaultResolver, OverrideResolver, Resolver, Resolving, TcpClient,
    HAPPY_EYEBALLS_DELAY,
};
pub use netutil::{
    add_accept_handler, bind_reuse_port_group, bind_sockets, bind_unix_socket, is_valid_ip,
    AcceptHandle, Family, PeerAddr, ACCEPTS_PER_EVENT, DEFAULT_BACKLOG,
};
pub use server::{HandlerOutput, ServerThreads, StreamHandler, TcpServer, Teardown};

pub use setup::{SetupFuture, SetupInfo, StreamSetup};
