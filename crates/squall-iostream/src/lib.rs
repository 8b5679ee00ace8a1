//! squall's IOStream: Tornado's `tornado.iostream` on the squall [`IoLoop`]. An
//! [`IoStream`] owns a non-blocking fd (a TCP or Unix socket, a pipe) and gives async
//! reads ([`read_until`](IoStream::read_until), `read_until_regex` (the `regex`
//! feature), [`read_bytes`](IoStream::read_bytes),
//! [`read_until_close`](IoStream::read_until_close), [`read_into`](IoStream::read_into),
//! and the zero-copy [`read_parse`](IoStream::read_parse)) and queued writes
//! ([`write`](IoStream::write), [`write_buffered`](IoStream::write_buffered) +
//! [`flush`](IoStream::flush)).
//!
//! # Example
//!
//! ```
//! use std::net::TcpListener;
//! use squall_ioloop::IoLoop;
//! use squall_iostream::IoStream;
//!
//! let io_loop = IoLoop::new()?;
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let reply = io_loop.run_sync(async move {
//!     let client = IoStream::connect(addr).await?;
//!     let (conn, _) = listener.accept()?;
//!     let server = IoStream::new(conn)?;
//!     client.write(&b"GET / HTTP/1.0\r\n\r\n"[..]).await?;
//!     let line = server.read_until(b"\r\n", Some(1024)).await?;
//!     assert_eq!(&line[..], b"GET / HTTP/1.0\r\n");
//!     server.write(&b"HTTP/1.0 200 OK\r\n\r\nhello"[..]).await?;
//!     server.close(); // after the write future: close drops whatever is still queued
//!     Ok::<_, Box<dyn std::error::Error>>(client.read_until_close().await?)
//! }, None)??;
//! assert_eq!(&reply[..], b"HTTP/1.0 200 OK\r\n\r\nhello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The read model
//!
//! - **One read at a time**, as in Tornado: a second read while one is pending fails
//!   with [`StreamError::ReadInProgress`]. A read holds the slot from the moment it is
//!   made until it completes or is dropped; dropping a pending read (a timeout) loses no
//!   data, since bytes are consumed only when a read completes.
//! - **Buffered bytes first**: a read that the buffer satisfies makes no syscall.
//! - **Idle streams own no buffer.** Every `read(2)` lands in a per-thread 64 KiB buffer;
//!   the pending read looks at the bytes there, and only what it did not consume is
//!   copied into the stream's own `BytesMut`, which is empty, capacity 0, while idle.
//! - **Backpressure**: a read pulls only what it needs (`read_bytes(n)` asks the OS for
//!   at most `n` minus what is buffered), and no read buffers more than
//!   `max_buffer_size` (default 100 MiB): one that would need more fails with
//!   [`StreamError::BufferFull`] and closes the stream.
//! - **Syscalls are counted.** The fd is registered with READ interest (and the
//!   [`Interest::EDGE`](squall_ioloop::Interest::EDGE) hint: epoll reports it once per
//!   change) the first time a read waits, and READ stays armed across reads. When a
//!   READ event arrives and nobody waits, the stream remembers it is readable, so the
//!   next read tries the syscall at once; a second one before any read is a repeat (a
//!   level-triggered backend, or epoll once the peer has closed), and READ is dropped
//!   until a read waits again, so a stream nobody reads never spins the loop. After a
//!   short read the socket is taken as drained and the read parks without another
//!   `read()`; a close queued behind the data is still reported (the poller's
//!   contract).
//! - **End-of-file closes the stream** (as in Tornado), but data that arrived before it
//!   stays readable: reads that the buffer satisfies still succeed.
//!
//! # Writes
//!
//! [`write`](IoStream::write) is a plain function: it queues the `Bytes` (no copy) and,
//! if the socket is known to be writable, hands the queue to the OS at once with one
//! `writev` (up to 64 slices). WRITE interest is armed only when a write falls short and
//! dropped when the queue empties. The returned [`WriteFuture`] resolves when the data
//! has left the stream's buffer (Tornado's write future); the data goes out whether or
//! not it is awaited. [`write_buffered`](IoStream::write_buffered) queues without a
//! syscall and [`flush`](IoStream::flush) sends: a pipelining server answers a whole
//! batch with one `writev`.
//!
//! [`shutdown_write`](IoStream::shutdown_write) half-closes: the queue is flushed, then
//! the write side is shut down (`shutdown(SHUT_WR)`), so the peer reads end-of-file
//! right after the last byte while this side keeps reading until the peer's own
//! end-of-file. A server closing with unread input does this, then drains for a bounded
//! time, so that its response is not destroyed by a reset (nginx's lingering close).
//!
//! # Memory
//!
//! A stream is one allocation of 144 bytes (the `Rc`), what a read and a write touch in
//! its first 88: the read-ahead and the write queue are boxed when they hold something;
//! a close callback, a close cause that carries an OS error, limits set away from their
//! defaults and a second concurrent writer's waker live in a part boxed on first use.
//! Registered with the loop ([`IoLoop::add_weak_handler`](squall_ioloop::IoLoop::add_weak_handler)),
//! it adds the loop's 64-byte handler entry, which points at the stream's state: no
//! handler box.
//!
//! # The ecosystem's I/O traits
//!
//! With the cargo feature `futures-io`, `IoStream` implements
//! `futures_io::AsyncRead`/`AsyncWrite`; with `tokio`, tokio's `AsyncRead`/`AsyncWrite`
//! (the traits only: no tokio runtime runs). Codecs and protocol crates written for
//! either then run on the squall loop; the `compat` module gives the rules.
//!
//! # Errors
//!
//! [`StreamError::Closed`] carries a [`CloseCause`]: end-of-file, a reset (quiet, logged
//! at debug level), the real OS error (a refused connect gives `ECONNREFUSED`, read from
//! `SO_ERROR`), a limit, or a local close. Limits come back through the read's future,
//! never as a panic. As in Tornado, what arrived before an error is read before the
//! error is taken: a peer that answers and then resets loses nothing to the reset.
//!
//! # Differences from Tornado, and why
//!
//! - **`read_parse` is new**: a zero-copy parse hook over the per-thread buffer, so a
//!   server keeps no buffer per idle connection (ARCHITECTURE.md, "Idle connections
//!   own no buffers").
//!   `take_buffered` takes body bytes that came with a head without a syscall.
//! - **`read_until_regex` is behind the `regex` feature** (on by default): it costs
//!   the `regex` crate's build, which the crates above (TcpServer, the HTTP server) do
//!   not pay; it searches from the front on every arrival, as Tornado does, so give it
//!   a `max_bytes`.
//! - **No streaming callbacks** (Tornado 4's `streaming_callback`): call `read_bytes(n,
//!   true)` in a loop, which is what they did.
//! - **Connecting**: [`IoStream::connect`] creates the socket and resolves to the
//!   connected stream; [`IoStream::start_connect`] returns the stream at once so writes
//!   can be queued while connecting (Tornado's `test_write_while_connecting`).
//! - **The close callback** fires on a later loop turn; dropping the last handle closes
//!   the fd without firing it (dropping is not an event), once what is queued to write
//!   has gone out (within [`DROP_FLUSH_TIMEOUT`]).
//! - **A layer's goodbye outlives the close**: Tornado's `SSLIOStream` closes its socket
//!   without one. A stream with a [`Layer`] (TLS) sends the layer's goodbye
//!   (`close_notify`) when it closes; if the fd has no room for it, the stream is
//!   closed for its users at once while the loop keeps the fd until the goodbye has
//!   gone (within [`GOODBYE_TIMEOUT`]), so that the peer does not read a truncation.
//! - **Writes after the peer's end-of-file fail**: the stream is closed at end-of-file,
//!   as in Tornado, so a half-closed peer gets no reply.
//! - **`SIGPIPE`**: writes use `writev`, which raises `SIGPIPE` on a dead peer; Rust
//!   programs ignore it by default (the std runtime sets `SIG_IGN`), and the write then
//!   fails with `EPIPE`, a [`CloseCause::Reset`]. A program that restores `SIGPIPE`
//!   must not use streams.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

#[cfg(any(feature = "futures-io", feature = "tokio"))]
pub mod compat;
mod connect;
mod engine;
mod error;
mod fdio;
mod layer;
#[cfg(any(test, feature = "model"))]
#[doc(hidden)]
pub mod model;
mod read;
#[cfg(feature = "regex")]
mod read_regex;
mod shared;
mod state;
mod stream;
mod wqueue;
mod write;

pub use error::{CloseCause, ReadParseError, StreamError};
pub use layer::{Layer, GOODBYE_TIMEOUT};
/// The `regex` crate, whose [`bytes::Regex`](regex::bytes::Regex)
/// [`read_until_regex`](IoStream::read_until_regex) takes (the `regex` feature).
#[cfg(feature = "regex")]
pub use regex;
pub use squall_ioloop::IoLoop;
pub use stream::{IoStream, DEFAULT_MAX_BUFFER_SIZE, DEFAULT_READ_CHUNK_SIZE, DROP_FLUSH_TIMEOUT};
pub use write::WriteFuture;
