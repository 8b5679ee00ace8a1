//! The two error types: [`ParseError`] for bad input, [`OutputError`] for a response that
//! breaks HTTP's rules.

use std::fmt;

/// Why a request (or a body, a form, a gzip stream) was rejected.
///
/// Small and `Copy`, so a state machine can hand it out freely. Each variant maps to the
/// status code the server answers with ([`ParseError::status`]) and its `Display` names
/// the cause in a few words, fit for an info-level log line. Tornado raises
/// `HTTPInputError` with a message instead; after any of these the connection must be
/// closed, since the framing of what follows can no longer be trusted.
#[doc(alias = "HTTPInputError")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// The head (request or status line and header fields, leading empty lines
    /// included) is longer than [`Limits::max_head_size`](crate::Limits::max_head_size)
    /// (the HTTP client's `max_header_size` for a response). 431 for a request.
    HeadTooLarge,
    /// More header fields than [`Limits::max_headers`](crate::Limits::max_headers). 431.
    TooManyHeaders,
    /// The request-target is longer than
    /// [`Limits::max_uri_len`](crate::Limits::max_uri_len). 414.
    UriTooLong,
    /// The method is not an HTTP token. 400.
    InvalidMethod,
    /// The request-target is not a valid URI (control bytes, spaces, non-ASCII). 400.
    InvalidTarget,
    /// The request line is malformed (missing parts, extra spaces, bad line ending). 400.
    InvalidRequestLine,
    /// More than [`MAX_EMPTY_LINES`](crate::MAX_EMPTY_LINES) empty lines before a request
    /// line. 400.
    TooManyEmptyLines,
    /// The version is not `HTTP/<digit>.<digit>`. 400.
    InvalidVersion,
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1. 505.
    UnsupportedVersion,
    /// A header name with bytes outside the token set, or a line without a colon. 400.
    InvalidHeaderName,
    /// Whitespace between a header name and its colon (RFC 9112 §5.1). 400.
    WhitespaceBeforeColon,
    /// A header line that starts with whitespace: obsolete line folding (RFC 9112 §5.2). 400.
    ObsoleteLineFolding,
    /// A header value with NUL, a bare CR, LF or another control byte. 400.
    InvalidHeaderValue,
    /// An HTTP/1.1 request without a Host header (RFC 9112 §3.2). 400.
    MissingHost,
    /// More than one Host header. 400.
    DuplicateHost,
    /// A Host header that is not `uri-host [ ":" port ]`. 400.
    InvalidHost,
    /// Both Content-Length and Transfer-Encoding (the CL.TE / TE.CL smuggling shape). 400.
    ContentLengthAndTransferEncoding,
    /// A Content-Length that is not all decimal digits, or too large for 64 bits. 400.
    InvalidContentLength,
    /// Several Content-Length values that are not all the same. 400.
    ConflictingContentLength,
    /// Transfer-Encoding whose final coding is not `chunked`, or that applies `chunked`
    /// twice (RFC 9112 §6.3). 400.
    TransferEncodingNotChunked,
    /// Transfer-Encoding with a coding this server does not implement (`gzip, chunked`). 501.
    UnsupportedTransferEncoding,
    /// Transfer-Encoding in an HTTP/1.0 request, whose framing is then faulty
    /// (RFC 9112 §6.1). 400.
    TransferEncodingInHttp10,
    /// An `Expect` other than `100-continue`. 417.
    ExpectationFailed,
    /// A chunk-size that is not hexadecimal digits. 400.
    InvalidChunkSize,
    /// A chunk-size larger than 64 bits. 400.
    ChunkSizeOverflow,
    /// A chunk-size line (size and extensions) longer than
    /// [`Limits::max_chunk_line`](crate::Limits::max_chunk_line). 400.
    ChunkLineTooLong,
    /// A chunk extension with bytes that no extension may hold. 400.
    InvalidChunkExtension,
    /// The chunk extensions of one body together are larger than
    /// [`Limits::max_chunk_extensions`](crate::Limits::max_chunk_extensions). 400.
    ChunkExtensionsTooLarge,
    /// A chunked body's framing outweighs its data by more than
    /// [`Limits::max_chunk_overhead`](crate::Limits::max_chunk_overhead). 400.
    ChunkOverheadTooLarge,
    /// Chunk data not followed by CRLF, or a framing line not ended by CRLF. 400.
    MissingChunkCrlf,
    /// The trailer section is larger than
    /// [`Limits::max_trailer_size`](crate::Limits::max_trailer_size) or has too many fields. 431.
    TrailersTooLarge,
    /// A malformed trailer field. 400.
    InvalidTrailer,
    /// The body (declared, received or inflated) is larger than the body limit. 413.
    BodyTooLarge,
    /// The peer closed the connection in the middle of a message. 400.
    IncompleteMessage,
    /// A gzip request body that does not inflate. 400.
    InvalidGzip,
    /// A body with a Content-Encoding the form parser cannot read. 400.
    UnsupportedContentEncoding,
    /// A multipart/form-data body that is malformed (no final boundary, no headers,
    /// a part that is not `form-data`, a part without a name, no boundary parameter). 400.
    InvalidMultipart,
    /// More multipart parts than the configured maximum. 400.
    TooManyParts,
    /// More fields in an urlencoded form body than the configured maximum
    /// (`MultipartConfig::max_fields`, or one per `URLENCODED_BYTES_PER_FIELD` bytes if
    /// that is more). 400.
    TooManyFields,
    /// A multipart part header larger than the configured maximum. 400.
    PartHeaderTooLarge,
    /// multipart/form-data parsing is disabled by configuration. 400.
    MultipartDisabled,
    /// A response's status line is malformed (a status code that is not three digits
    /// from 100 to 999, a missing space). Client side only.
    InvalidStatusLine,
    /// A response whose status has no body (1xx, 204) announces one with
    /// Content-Length or Transfer-Encoding. Client side only.
    UnexpectedBody,
}

impl ParseError {
    /// The status code to answer with: 400, 413, 414, 417, 431, 501 or 505.
    pub fn status(self) -> http::StatusCode {
        use http::StatusCode as S;
        use ParseError::*;
        match self {
            HeadTooLarge | TooManyHeaders | TrailersTooLarge => S::REQUEST_HEADER_FIELDS_TOO_LARGE,
            UriTooLong => S::URI_TOO_LONG,
            UnsupportedVersion => S::HTTP_VERSION_NOT_SUPPORTED,
            UnsupportedTransferEncoding => S::NOT_IMPLEMENTED,
            ExpectationFailed => S::EXPECTATION_FAILED,
            BodyTooLarge => S::PAYLOAD_TOO_LARGE,
            _ => S::BAD_REQUEST,
        }
    }

    /// A short description of the cause, as `Display` prints it.
    pub fn as_str(self) -> &'static str {
        use ParseError::*;
        match self {
            HeadTooLarge => "message head too large",
            TooManyHeaders => "too many header fields",
            UriTooLong => "request-target too long",
            InvalidMethod => "invalid method",
            InvalidTarget => "invalid request-target",
            InvalidRequestLine => "malformed request line",
            TooManyEmptyLines => "too many empty lines before the request line",
            InvalidVersion => "malformed HTTP version",
            UnsupportedVersion => "HTTP version not supported",
            InvalidHeaderName => "invalid header name or no colon in header line",
            WhitespaceBeforeColon => "whitespace between header name and colon",
            ObsoleteLineFolding => "obsolete line folding in header",
            InvalidHeaderValue => "invalid byte in header value",
            MissingHost => "missing Host header",
            DuplicateHost => "more than one Host header",
            InvalidHost => "invalid Host header",
            ContentLengthAndTransferEncoding => {
                "message with both Transfer-Encoding and Content-Length"
            }
            InvalidContentLength => "only integer Content-Length is allowed",
            ConflictingContentLength => "multiple unequal Content-Lengths",
            TransferEncodingNotChunked => "Transfer-Encoding does not end in a single chunked",
            UnsupportedTransferEncoding => "unsupported Transfer-Encoding",
            TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            ExpectationFailed => "unsupported expectation",
            InvalidChunkSize => "invalid chunk size",
            ChunkSizeOverflow => "chunk size overflows",
            ChunkLineTooLong => "chunk size line too long",
            InvalidChunkExtension => "invalid chunk extension",
            ChunkExtensionsTooLarge => "chunk extensions too large in total",
            ChunkOverheadTooLarge => "too much chunked framing for the data",
            MissingChunkCrlf => "improperly terminated chunk",
            TrailersTooLarge => "trailer section too large",
            InvalidTrailer => "invalid trailer field",
            BodyTooLarge => "body too large",
            IncompleteMessage => "connection closed in the middle of a message",
            InvalidGzip => "invalid gzip body",
            UnsupportedContentEncoding => "unsupported Content-Encoding",
            InvalidMultipart => "invalid multipart/form-data",
            TooManyParts => "multipart/form-data has too many parts",
            TooManyFields => "application/x-www-form-urlencoded body has too many fields",
            PartHeaderTooLarge => "multipart/form-data part header too large",
            MultipartDisabled => "multipart/form-data is disabled",
            InvalidStatusLine => "malformed status line",
            UnexpectedBody => "response with a status that has no body announces one",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ParseError {}

/// A response that breaks HTTP's framing rules, caught before it reaches the wire.
///
/// Tornado raises `HTTPOutputError` (and `ValueError` for CR/LF in a header). After
/// [`ContentLengthExceeded`](OutputError::ContentLengthExceeded) or
/// [`ContentLengthShort`](OutputError::ContentLengthShort) the connection must be closed:
/// the peer has been promised bytes that will not match.
#[doc(alias = "HTTPOutputError")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutputError {
    /// A header value holds CR or LF (header injection).
    InvalidHeaderValue,
    /// The response's own Content-Length is not a decimal number.
    InvalidContentLength,
    /// More body bytes were written than Content-Length declared.
    ContentLengthExceeded,
    /// The response finished with fewer bytes than Content-Length declared; holds how
    /// many were missing.
    ContentLengthShort(u64),
    /// Body bytes for a response that has none (HEAD, 1xx, 204, 304).
    BodyNotAllowed,
    /// A 1xx or 204 response with Content-Length, or any response with a
    /// Transfer-Encoding header of its own: framing belongs to this crate.
    FramingHeaderNotAllowed,
    /// `start_response` with no request waiting for an answer, or while another response
    /// is still being written.
    NoRequestPending,
    /// `write` or `finish` with no response started.
    NoResponseStarted,
    /// The connection is closing (an earlier response ended keep-alive, or the input
    /// failed): no further response may be written.
    ConnectionClosing,
    /// An interim (1xx) status as the response, other than 101 Switching Protocols: a
    /// final response must follow an interim one (RFC 9110 §15.2), and `100 Continue`
    /// is the server's own to send.
    InterimStatus,
    /// The connection already holds more bytes for the peer than its write-buffer limit
    /// (Tornado's `max_write_buffer_size`, `StreamBufferFullError`): the peer is not
    /// reading. Nothing was written; the connection closes.
    WriteBufferFull,
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use OutputError::*;
        match self {
            InvalidHeaderValue => f.write_str("illegal characters (CR or LF) in header value"),
            InvalidContentLength => f.write_str("response Content-Length is not an integer"),
            ContentLengthExceeded => f.write_str("tried to write more data than Content-Length"),
            ContentLengthShort(n) => {
                write!(f, "tried to write {n} bytes less than Content-Length")
            }
            BodyNotAllowed => f.write_str("this response cannot have a body"),
            FramingHeaderNotAllowed => {
                f.write_str("response framing header (Transfer-Encoding, or Content-Length on 1xx/204) not allowed")
            }
            NoRequestPending => f.write_str("no request is waiting for a response"),
            NoResponseStarted => f.write_str("no response has been started"),
            ConnectionClosing => f.write_str("the connection is closing"),
            WriteBufferFull => {
                f.write_str("the write buffer is full (the peer is not reading the response)")
            }
            InterimStatus => f.write_str(
                "an interim (1xx) status cannot be the response: a final one must follow",
            ),
        }
    }
}

impl std::error::Error for OutputError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ParseError::HeadTooLarge.status(), 431);
        assert_eq!(ParseError::TooManyHeaders.status(), 431);
        assert_eq!(ParseError::UriTooLong.status(), 414);
        assert_eq!(ParseError::UnsupportedVersion.status(), 505);
        assert_eq!(ParseError::UnsupportedTransferEncoding.status(), 501);
        assert_eq!(ParseError::BodyTooLarge.status(), 413);
        assert_eq!(ParseError::ExpectationFailed.status(), 417);
        assert_eq!(ParseError::MissingHost.status(), 400);
        assert_eq!(
            ParseError::InvalidChunkSize.to_string(),
            "invalid chunk size"
        );
        assert_eq!(
            OutputError::ContentLengthShort(3).to_string(),
            "tried to write 3 bytes less than Content-Length"
        );
    }
}
