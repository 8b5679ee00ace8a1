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
//! - [`HttpServerRequest`] with its [`Arguments`], [`HttpFile`]s and cookies;
//!   [`parse_qs_bytes`], [`parse_body_arguments`], [`parse_multipart_form_data`],
//!   [`parse_cookie`], [`url_concat`], [`split_host_and_port`], [`format_timestamp`].
//! - [`client`]: the client side, a request encoder and a strict response parser
//!   (interim `1xx` responses, HEAD/204/304, chunked with trailers, bodies delimited by
//!   the close).
//! - [`parse_headers`]: a block of header lines on its own (Tornado's
//!   `HTTPHeaders.parse`); [`HeaderCase`]: how response header names are spelled.
//! - `GzipInflater` (the default `gzip` feature, which compiles flate2):
//!   `Content-Encoding: gzip` request bodies, inflated size capped.
//!
//! Every parser is linear in its input and bounded by a cap ([`Limits`],
//! [`MultipartConfig`]); bad input is a [`ParseError`] that names its cause and its
//! status code, never a panic.
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
//!         Event::Head(head) => assert_eq!(head.query(), "name=squall"),
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
//!
//! # Differences from Tornado
//!
//! - Framing is stricter, following RFC 9112 where Tornado is lenient or silent: a
//!   missing, repeated or malformed Host on HTTP/1.1, Transfer-Encoding on HTTP/1.0,
//!   whitespace before a colon and obsolete line folding are all refused (400), as are
//!   an `Expect` other than `100-continue` (417) and a transfer coding other than
//!   `chunked` (501; Tornado says 400). A body over the limit is 413 (Tornado: 400).
//! - Chunked framing needs CRLF, not a bare LF (the request head accepts bare LF, as
//!   Tornado). Chunk extensions are accepted and bounded (Tornado refuses them);
//!   trailers are parsed and bounded (Tornado refuses them).
//! - Header values are bytes (`http::HeaderValue`); names are lower-case on output.
//! - Argument names are decoded as UTF-8 (invalid sequences replaced) where Tornado
//!   decodes query names as Latin-1; values stay bytes as in Tornado.
//! - Multipart errors are `Err` values (Tornado 6.5 raises `HTTPInputError` too; older
//!   versions logged a warning and skipped the part).
//! - Several `Cookie` headers are joined with `; ` (Tornado joins with `,`).
//! - The server answers a parse error with its status, `Connection: close` and an empty
//!   body, rather than a bare `400 Bad Request`.
#![forbid(unsafe_code)]

mod body;
mod chunked;
pub mod client;
mod cookie;
mod date;
mod decode;
mod error;
mod form;
/// The checks behind the fuzz targets of `fuzz/` and the stable regression tests
/// that replay their seeds (the `fuzzing` feature; not part of the API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "gzip")]
mod gzip;
pub mod h1;
mod head;
mod headers;
mod interop;
mod limits;
pub mod pool;
mod request;
mod response;
mod url;
mod view;

pub use body::BodyDecoder;
pub use chunked::{decode_chunked, encode_chunk, encode_last_chunk, ChunkHeader, ChunkedDecoder};
pub use cookie::parse_cookie;
pub use date::{cached_date, format_timestamp, DATE_LEN};
pub use decode::{Decoded, LengthDecoder};
pub use error::{OutputError, ParseError};
pub use form::{
    parse_body_arguments, parse_header_params, parse_multipart_form_data, Files, HttpFile,
    MultipartConfig, URLENCODED_BYTES_PER_FIELD,
};
#[cfg(feature = "gzip")]
pub use gzip::GzipInflater;
pub use head::{parse_request_head, BodyKind, HeadParser, HeadSpan, RequestHead, MAX_EMPTY_LINES};
pub use headers::{latin1_text, parse_headers, HeaderCase, HeaderCaseMap};
pub use interop::ClientInfo;
pub use limits::Limits;
pub use pool::PooledHeaders;
pub use request::{HttpHeadersExt, HttpServerRequest};
pub use response::{
    write_continue, write_error_response, write_head_lines, BodyFraming, EncodedBuf, RequestInfo,
    ResponseEncoder,
};
#[cfg(feature = "basic-auth")]
pub use url::basic_auth_value;
pub use url::{
    authority_port, parse_qs_bytes, parse_qsl_bytes, percent_encode, split_host_and_port,
    url_concat, url_escape, url_unescape, userinfo, Arguments,
};
pub use view::{FieldIter, HeaderValues};

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
