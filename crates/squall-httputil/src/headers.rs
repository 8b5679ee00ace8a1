//! A block of header lines on its own: [`parse_headers`] (Tornado's
//! `HTTPHeaders.parse`), and the spelling of header names on output ([`HeaderCase`]).

use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use crate::error::ParseError;
use crate::head::trim_ows;

/// Parse a block of header lines into a map (Tornado's `HTTPHeaders.parse`).
///
/// Lines end with CRLF or a bare LF (RFC 9112 §2.2); empty lines are skipped, as in
/// Tornado. Each line is `name: value`, the name a token with no whitespace before the
/// colon, the value trimmed of spaces and tabs. A line that starts with a space or tab
/// continues the previous field (obsolete line folding): it is joined to that value
/// with one space, as Tornado does. Repeated names keep every value, in order. Linear
/// in the input.
///
/// This is for header blocks found outside a request head (a multipart part, a stored
/// message, a test); the request-head parser is stricter and refuses line folding.
///
/// # Errors
/// [`ParseError::ObsoleteLineFolding`] for a continuation line before any field;
/// [`ParseError::InvalidHeaderName`] for a line without a colon or a name that is not a
/// token; [`ParseError::WhitespaceBeforeColon`]; [`ParseError::InvalidHeaderValue`] for
/// a control byte (a bare CR included) in a value; [`ParseError::TooManyHeaders`] past
/// what a `HeaderMap` can hold.
///
/// ```
/// use squall_httputil::parse_headers;
///
/// let h = parse_headers(b"Content-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n")?;
/// assert_eq!(h["content-type"], "text/html");
/// assert_eq!(h.get_all("set-cookie").iter().count(), 2);
///
/// let folded = parse_headers(b"Foo: bar\r\n baz\r\n")?;
/// assert_eq!(folded["foo"], "bar baz");
/// # Ok::<(), squall_httputil::ParseError>(())
/// ```
#[doc(alias = "HTTPHeaders")]
pub fn parse_headers(block: &[u8]) -> Result<HeaderMap, ParseError> {
    let mut map = HeaderMap::new();
    // The field being read: its name and its value so far (a continuation may extend it).
    let mut field: Option<(HeaderName, BytesMut)> = None;
    for line in block.split_inclusive(|&b| b == b'\n') {
        crate::count_work!(line.len());
        // A CR before the LF is part of the line end; a CR with no LF after it (at the
        // end of the block) is a bare CR, left for the checks below to refuse.
        let line = match line.strip_suffix(b"\n") {
            Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
            None => line,
        };
        if line.is_empty() {
            continue;
        }
        if matches!(line[0], b' ' | b'\t') {
            let (_, value) = field.as_mut().ok_or(ParseError::ObsoleteLineFolding)?;
            let more = trim_ows(line);
            if !more.is_empty() {
                if !value.is_empty() {
                    value.extend_from_slice(b" ");
                }
                value.extend_from_slice(more);
            }
            continue;
        }
        if let Some((name, value)) = field.take() {
            append(&mut map, name, value)?;
        }
        let colon = memchr::memchr(b':', line).ok_or(ParseError::InvalidHeaderName)?;
        let name = &line[..colon];
        if name.ends_with(b" ") || name.ends_with(b"\t") {
            return Err(ParseError::WhitespaceBeforeColon);
        }
        let name = HeaderName::from_bytes(name).map_err(|_| ParseError::InvalidHeaderName)?;
        field = Some((name, BytesMut::from(trim_ows(&line[colon + 1..]))));
    }
    if let Some((name, value)) = field {
        append(&mut map, name, value)?;
    }
    Ok(map)
}

/// Bytes as ISO-8859-1 (Latin-1) text, each byte one char, as Tornado decodes a head:
/// nothing is lost, where a lossy UTF-8 decoding would turn obs-text into U+FFFD.
///
/// ```
/// assert_eq!(squall_httputil::latin1_text(b"caf\xe9"), "caf\u{e9}");
/// ```
pub fn latin1_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn append(map: &mut HeaderMap, name: HeaderName, value: BytesMut) -> Result<(), ParseError> {
    let value = HeaderValue::from_maybe_shared(value.freeze())
        .map_err(|_| ParseError::InvalidHeaderValue)?;
    map.try_append(name, value)
        .map_err(|_| ParseError::TooManyHeaders)?;
    Ok(())
}

/// How header names from a `HeaderMap` are spelled on the wire.
///
/// HTTP/1.1 names are case-insensitive, and `http::HeaderMap` keeps them in lower case,
/// which is what squall sends by default. Some peers (old clients, devices, tests that
/// compare bytes) expect the usual capitalisation: [`Title`](HeaderCase::Title) sends
/// `Content-Type` for `content-type` (hyper's `title_case_headers`), and
/// [`Preserve`](HeaderCase::Preserve) sends the spellings the application gives in a
/// [`HeaderCaseMap`] and title case for the rest (hyper's `preserve_header_case`). The
/// framing headers the encoder adds itself (`Content-Length`, `Transfer-Encoding`,
/// `Connection`, `Date`) are always spelled the usual way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HeaderCase {
    /// As the `HeaderMap` holds them: lower case. The default.
    #[default]
    Lower,
    /// Each word capitalised: `x-request-id` is sent as `X-Request-Id`.
    Title,
    /// The spelling the response's [`HeaderCaseMap`] gives; title case for names it
    /// does not list.
    Preserve,
}

/// The spellings an application wants for some header names, used with
/// [`HeaderCase::Preserve`].
///
/// ```
/// use squall_httputil::HeaderCaseMap;
///
/// let mut case = HeaderCaseMap::new();
/// case.insert("X-API-Key");
/// assert_eq!(case.spelling(&http::HeaderName::from_static("x-api-key")), Some("X-API-Key"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderCaseMap {
    /// (lower-case name, spelling), few enough that a scan beats hashing.
    names: Vec<(HeaderName, Box<str>)>,
}

impl HeaderCaseMap {
    /// An empty map.
    pub fn new() -> Self {
        HeaderCaseMap::default()
    }

    /// Record `spelling` for the header name it spells (case-insensitively). A
    /// spelling that is not a valid header name is ignored, as it could not be sent.
    pub fn insert(&mut self, spelling: &str) {
        let Ok(name) = HeaderName::from_bytes(spelling.as_bytes()) else {
            return;
        };
        match self.names.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = spelling.into(),
            None => self.names.push((name, spelling.into())),
        }
    }

    /// The spelling recorded for `name`.
    pub fn spelling(&self, name: &HeaderName) -> Option<&str> {
        self.names
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| &**s)
    }

    /// Whether no spelling is recorded.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Append `name` to `out` spelled as `case` says.
pub(crate) fn put_name(
    out: &mut BytesMut,
    name: &HeaderName,
    case: HeaderCase,
    map: Option<&HeaderCaseMap>,
) {
    if case == HeaderCase::Preserve {
        if let Some(s) = map.and_then(|m| m.spelling(name)) {
            out.extend_from_slice(s.as_bytes());
            return;
        }
    }
    let start = out.len();
    out.extend_from_slice(name.as_str().as_bytes());
    if case != HeaderCase::Lower {
        let mut upper = true;
        for b in &mut out[start..] {
            if upper {
                b.make_ascii_uppercase();
            }
            upper = *b == b'-';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spelled(name: &str, case: HeaderCase, map: Option<&HeaderCaseMap>) -> String {
        let mut out = BytesMut::new();
        put_name(
            &mut out,
            &HeaderName::from_bytes(name.as_bytes()).unwrap(),
            case,
            map,
        );
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn name_spellings() {
        assert_eq!(
            spelled("x-request-id", HeaderCase::Lower, None),
            "x-request-id"
        );
        assert_eq!(
            spelled("x-request-id", HeaderCase::Title, None),
            "X-Request-Id"
        );
        assert_eq!(spelled("etag", HeaderCase::Title, None), "Etag");
        assert_eq!(spelled("a--b-", HeaderCase::Title, None), "A--B-");
        let mut map = HeaderCaseMap::new();
        map.insert("ETag");
        map.insert("not a name");
        assert_eq!(spelled("etag", HeaderCase::Preserve, Some(&map)), "ETag");
        assert_eq!(spelled("x-b", HeaderCase::Preserve, Some(&map)), "X-B");
        assert_eq!(spelled("etag", HeaderCase::Title, Some(&map)), "Etag");
        map.insert("ETAG");
        assert_eq!(spelled("etag", HeaderCase::Preserve, Some(&map)), "ETAG");
    }
}
