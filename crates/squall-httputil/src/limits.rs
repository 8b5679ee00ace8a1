//! The caps every parser in this crate enforces.

/// Size and count caps for incoming requests.
///
/// Every number has a default a public server can live with; each cap answers with the
/// status code named beside it. Tornado spreads these over `HTTP1ConnectionParameters`
/// (`max_header_size`, `max_body_size`) and hard-coded constants (64-byte chunk lines);
/// here they live together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The whole head: leading empty lines, request line and header fields, up to and
    /// including the empty line that ends it. Default 64 KiB (Tornado's
    /// `max_header_size`). Over it: 431.
    pub max_head_size: usize,
    /// Header fields per request (and trailer fields per chunked body). Default 100, as
    /// hyper. Over it: 431.
    pub max_headers: usize,
    /// The request-target. Default 8 KiB, as nginx's default large buffer. Over it: 414.
    /// A request line still unfinished this many bytes (plus 64 for method and version)
    /// into the buffer is answered with 414 at once, without waiting for the rest.
    pub max_uri_len: usize,
    /// The body: a larger Content-Length is refused before any byte of it is read, and
    /// a chunked body is refused as soon as a chunk-size line takes it over. Default
    /// 100 MiB (Tornado's `max_body_size` default, its `max_buffer_size`). Over it: 413.
    pub max_body_size: u64,
    /// A chunk-size line with its extensions, CRLF excluded. Default 1 KiB (Tornado
    /// allows 64 bytes and no extensions; RFC 9112 asks to tolerate extensions but
    /// bound them). Over it: 400.
    pub max_chunk_line: usize,
    /// All the chunk extensions of one chunked body together (the bytes after each
    /// chunk size, up to its CRLF). Default 16 KiB, as hyper. Over it: 400.
    pub max_chunk_extensions: usize,
    /// The framing overhead a chunked body may accumulate beyond its data: each chunk
    /// adds its size line and CRLFs and takes off 16 bytes plus twice its size (never
    /// below zero), as Go does since CVE-2023-39326. A body of ordinary chunks stays at
    /// zero; one of many tiny chunks with long size lines does not. Default 16 KiB.
    /// Over it: 400.
    pub max_chunk_overhead: usize,
    /// The trailer section of a chunked body. Default 16 KiB. Over it: 431.
    pub max_trailer_size: usize,
    /// Requests received on one connection and not yet answered (pipelining depth). When
    /// it is reached, [`ServerConn::poll`](crate::h1::ServerConn::poll) parses nothing more
    /// until a response finishes. Default 32.
    pub max_pipelined: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_size: 64 * 1024,
            max_headers: 100,
            max_uri_len: 8 * 1024,
            max_body_size: 100 * 1024 * 1024,
            max_chunk_line: 1024,
            max_chunk_extensions: 16 * 1024,
            max_chunk_overhead: 16 * 1024,
            max_trailer_size: 16 * 1024,
            max_pipelined: 32,
        }
    }
}
