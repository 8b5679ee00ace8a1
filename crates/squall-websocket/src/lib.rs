//! WebSocket (RFC 6455) for squall, with permessage-deflate (RFC 7692).
//!
//! This is Tornado's `tornado.websocket`, cut the way squall cuts HTTP: the protocol is
//! sans-IO and the I/O is thin.
//!
//! - [`Protocol`]: one connection's framing, masking, fragmentation, close handshake,
//!   UTF-8 checks and compression: bytes in, [`Event`]s out, messages in, bytes out.
//! - [`handshake`]: `Sec-WebSocket-Accept`, the server's checks of an upgrade request
//!   and its `101` headers, the client's request headers and its checks of the answer.
//! - [`DeflateConfig`] and [`DeflateParams`]: permessage-deflate's negotiation, with
//!   both context-takeover settings and both window sizes; inflated size is capped.
//! - [`WebSocket`]: an open connection for either end (Tornado's `WebSocketHandler` and
//!   `WebSocketClientConnection` methods): [`write_message`](WebSocket::write_message),
//!   [`send`](WebSocket::send) with back-pressure, [`next`](WebSocket::next),
//!   [`ping`](WebSocket::ping), [`close`](WebSocket::close), keep-alive pings, a close
//!   timeout and a bounded write queue ([`WebSocketConfig`]).
//! - The server on squall's `HttpServer`: a [`WebSocketHandler`] (`open`, `on_message`,
//!   `on_close`, `on_ping`, `on_pong`, `check_origin`, `select_subprotocol`) answered
//!   with [`websocket_response`], or the async form with [`websocket_response_with`];
//!   [`WebSocketUpgrade`] for the streaming handler style.
//! - The client: [`websocket_connect`], `ws://` and, with the `tls` feature (rustls
//!   through `squall-tls`), `wss://`. A `wss://` server is an `HttpServer` whose
//!   `stream_setup` is squall-tls's `TlsAcceptor`: nothing here changes.
//!
//! Bad input from the peer is a [`ProtocolError`] that names the close code to fail the
//! connection with (1002, 1007 or 1009), found as early as the bytes allow: an invalid
//! UTF-8 prefix fails before the rest of its message arrives, an oversized message
//! before its payload does.
//!
//! # Example
//!
//! ```
//! use squall_websocket::{handshake, CloseCode, DeflateConfig, Event, Message, Protocol, Role};
//!
//! // The client offers compression; the server accepts the offer.
//! let key = handshake::generate_key();
//! let config = DeflateConfig::default();
//! let request = handshake::client_request_headers(&key, &[], Some(&config));
//! let upgrade = handshake::UpgradeRequest::parse(&http::Method::GET, &request)?;
//! let (params, answer) = upgrade.negotiate_deflate(&config).expect("an acceptable offer");
//! let response = upgrade.response_headers(None, Some(&answer));
//! let accepted = handshake::check_response(http::StatusCode::SWITCHING_PROTOCOLS, &response, &key, &[], Some(&config))?;
//!
//! let mut client = Protocol::new(Role::Client, accepted.deflate.map(|p| (p, 6)), 1 << 20);
//! let mut server = Protocol::new(Role::Server, Some((params, 6)), 1 << 20);
//! let mut wire = Vec::new();
//! client.encode_text("Hello, Hello, Hello, Hello!", &mut wire)?;
//! client.encode_close(Some(CloseCode::NORMAL), "bye", &mut wire)?;
//!
//! // Any split of the bytes decodes the same.
//! let (a, b) = wire.split_at(5);
//! let (mut a, mut b) = (a, b);
//! assert_eq!(server.decode(&mut a)?, None);
//! assert_eq!(server.decode(&mut b)?, Some(Event::Message(Message::Text("Hello, Hello, Hello, Hello!".into()))));
//! match server.decode(&mut b)? {
//!     Some(Event::Close(Some(frame))) => assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::NORMAL, "bye")),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Differences from Tornado
//!
//! - `on_message` is an `async fn`, awaited before the next message is read: messages
//!   are handled one at a time and in order (Tornado's rule for coroutine handlers).
//! - Writes are bounded by `max_write_buffer_size` (default 20 MiB; Tornado has no
//!   bound): past it the connection is dropped.
//! - Only version 13 (RFC 6455) is spoken; Tornado also accepts the drafts' versions 7
//!   and 8. Any other version gets 426 with `Sec-WebSocket-Version: 13` and
//!   `Upgrade: websocket` (RFC 9110 asks a 426 to name the protocol; Tornado's does not).
//! - A handshake that is not a GET gets 405 with `Allow: GET` (Tornado: 405 from its
//!   `RequestHandler`, without `Allow`).
//! - A close frame with a code that may not be sent (1004-1006, 1015, 1016-2999, outside
//!   1000-4999) or a one-byte payload fails the connection with 1002; Tornado echoes
//!   such codes back.
//! - The client's `ClientOptions::headers` replace the headers it would send of the same
//!   name, `Authorization` from the URL's credentials included (Tornado's client puts
//!   the URL's credentials over the caller's `Authorization`), and may not set the
//!   handshake's own (`Upgrade`, `Connection`, `Sec-WebSocket-*`): that is an error,
//!   where Tornado's client overwrites most of them silently. The URL's credentials are
//!   percent-decoded before they are encoded (Tornado sends them as written).
//! - A client asking for `server_max_window_bits=8` is accepted, but the server then
//!   sends its messages uncompressed (zlib cannot write raw deflate with a 256-byte
//!   window; RFC 7692 lets any message go uncompressed). Tornado passes the 8 to zlib,
//!   which refuses it.

#![forbid(unsafe_code)]

mod client;
pub mod deflate;
mod error;
pub mod extensions;
pub mod frame;
mod handler;
pub mod handshake;
mod protocol;
mod rng;
mod socket;
mod upgrade;

pub use client::{websocket_connect, ClientOptions};
pub use deflate::{DeflateConfig, DeflateParams};
pub use error::{CloseCode, EncodeError, ProtocolError};
pub use handler::{run_handler, WebSocketHandler};
pub use handshake::HandshakeError;
pub use protocol::{CloseFrame, Event, Message, Protocol, Role, DEFAULT_MAX_MESSAGE_SIZE};
pub use socket::{WebSocket, WebSocketConfig, WebSocketError};
pub use upgrade::{
    refusal, same_origin, websocket_response, websocket_response_with, WebSocketUpgrade,
};
