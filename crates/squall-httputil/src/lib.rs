//! Sans-IO HTTP/1.1 for squall: bytes in, parsed values out; no sockets, no event loop.
//!
//! This is Tornado's `tornado.httputil` together with the parsing half of
//! `tornado.http1connection`:
//!
//! - [`parse_request_head`] and the incremental [`HeadParser`]: the request line and
//!   header fields, parsed with `httparse` into the `http` crate's types, validated with
//!   RFC 9112's rules, framing decided ([`BodyKind`], keep-alive, `Expect: 100-continue`).
//! - [`ChunkedDecoder`], [`LengthDecoder`], [`BodyDecoder`]: request bodies, any split of
//!   the input; [`encode_chunk`] and [`encode_last_chunk`].
//! - [`ResponseEncoder`]: the response head (a literal fast path for `HTTP/1.1 200 OK`,
//!   a cached `Date`), the body framing, and the Content-Length check.
//! - [`h1::ServerConn`]: the server connection state machine that ties them together,
//!   pipelining included.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use http::{HeaderMap, StatusCode};
//! use squall_httputil::h1::{Event, ServerConn};
//! use squall_httputil::Limits;
//!
//! let mut conn = ServerConn::new(Limits::default());
//! let mut input = BytesMut::from(&b"GET /hello?name=squall HTTP/1.1\r\nHost: localhost\r\n\r\n"[..]);
//! let mut output = BytesMut::new();
//! while let Some(event) = conn.poll(&mut input) {
//!     match event {
//!         Event::Head(head) => assert_eq!(head.uri.query(), Some("name=squall")),
//!         Event::End => {
//!             conn.respond(StatusCode::OK, &HeaderMap::new(), b"Hello, world!", &mut output)?;
//!         }
//!         Event::Error(e) => panic!("{e}"),
//!         _ => {}
//!     }
//! }
//! assert!(output.starts_with(b"HTTP/1.1 200 OK\r\n"));
//! assert!(output.ends_with(b"\r\n\r\nHello, world!"));
//! # Ok::<(), squall_httputil::OutputError>(())
//! ```
#![forbid(unsafe_code)]

mod body;
mod chunked;
mod date;
mod error;
pub mod h1;
mod head;
mod limits;
mod response;

pub use body::{BodyDecoder, Decoded, LengthDecoder};
pub use chunked::{decode_chunked, encode_chunk, encode_last_chunk, ChunkHeader, ChunkedDecoder};
pub use date::{cached_date, format_timestamp, DATE_LEN};
pub use error::{OutputError, ParseError};
pub use head::{parse_request_head, BodyKind, HeadParser, HeadSpan, RequestHead};
pub use limits::Limits;
pub use response::{
    write_continue, write_error_response, write_head_lines, BodyFraming, EncodedBuf, RequestInfo,
    ResponseEncoder,
};

/// Adds to the test-only work counter; expands to nothing outside tests.
macro_rules! count_work {
    ($n:expr) => {
        #[cfg(test)]
        $crate::work::add($n);
    };
}
pub(crate) use count_work;

/// Counts bytes scanned by the parsers, in tests only, so that linearity can be checked
/// by work done rather than by time.
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static SCANNED: Cell<u64> = const { Cell::new(0) };
    }

    pub(crate) fn add(n: usize) {
        SCANNED.with(|c| c.set(c.get() + n as u64));
    }

    /// The count so far, reset to zero.
    pub(crate) fn take() -> u64 {
        SCANNED.with(|c| c.replace(0))
    }
}
