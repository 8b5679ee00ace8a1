//! Request bodies as arguments: `application/x-www-form-urlencoded` and
//! `multipart/form-data`.

use std::collections::HashMap;

use bytes::Bytes;
use http::{header, HeaderMap};
use memchr::memmem;

use crate::error::ParseError;
use crate::headers::parse_headers;
use crate::url::{parse_qs_bytes, url_unescape, Arguments};

/// An uploaded file from a multipart/form-data body (Tornado's `HTTPFile`).
#[doc(alias = "HTTPFile")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFile {
    /// The file name the client gave (`filename*` per RFC 5987 wins over `filename`).
    pub filename: String,
    /// The part's Content-Type, `application/unknown` when absent.
    pub content_type: String,
    /// The file's bytes, sharing the request body's memory.
    pub body: Bytes,
}

/// Uploaded files: field name to every file sent under it.
pub type Files = HashMap<String, Vec<HttpFile>>;

/// Caps for form bodies: multipart/form-data (Tornado 6.5's `ParseMultipartConfig`)
/// and the fields of an urlencoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartConfig {
    /// Parse multipart bodies at all. Default true; when false such a body is refused
    /// with [`ParseError::MultipartDisabled`].
    pub enabled: bool,
    /// Parts per body. Default 100.
    pub max_parts: usize,
    /// Bytes of one part's header block. Default 10 KiB.
    pub max_part_header_size: usize,
    /// Fields (`&`-separated pieces) of an `application/x-www-form-urlencoded` body
    /// that may be small: a body may hold this many, or one per
    /// [`URLENCODED_BYTES_PER_FIELD`] bytes if that is more; more is refused with
    /// [`ParseError::TooManyFields`] before anything is parsed. Default 1,000, as
    /// Django's `DATA_UPLOAD_MAX_NUMBER_FIELDS` and PHP's `max_input_vars`. Tornado has
    /// no such cap: each field costs a few small allocations, so a body of tiny fields
    /// (`a&a&a...`) held some thirty times its size in memory. The allowance per byte
    /// keeps larger bodies whose fields are not tiny (a file sent with curl's default
    /// form type, where `&` comes once in some 256 random bytes) as they were.
    pub max_fields: usize,
}

impl Default for MultipartConfig {
    fn default() -> Self {
        MultipartConfig {
            enabled: true,
            max_parts: 100,
            max_part_header_size: 10 * 1024,
            max_fields: 1000,
        }
    }
}

/// The bytes of urlencoded body that earn one field past [`MultipartConfig::max_fields`]:
/// fields this large on average cost a few times the body's size to hold at most.
pub const URLENCODED_BYTES_PER_FIELD: usize = 64;

/// The two body types that carry arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormType {
    UrlEncoded,
    Multipart,
}

impl FormType {
    /// The form type of a media type (a Content-Type's first part, matched
    /// case-insensitively), if it is one.
    pub(crate) fn of_media_type(media_type: &str) -> Option<FormType> {
        let media_type = media_type.trim();
        if media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Some(FormType::UrlEncoded)
        } else if media_type.eq_ignore_ascii_case("multipart/form-data") {
            Some(FormType::Multipart)
        } else {
            None
        }
    }
}

/// Parse a request body into arguments and files by its Content-Type (Tornado's
/// `parse_body_arguments`).
///
/// `application/x-www-form-urlencoded` adds to `arguments` (blank values kept);
/// `multipart/form-data` adds fields to `arguments` and uploads to `files`; any other
/// type adds nothing. The media type is matched case-insensitively.
///
/// # Errors
/// [`ParseError::UnsupportedContentEncoding`] for a form (either type) whose `headers`
/// carry a Content-Encoding (an inflated body has had it removed; a body of another type
/// is not read, so its encoding does not matter); [`ParseError::TooManyFields`] for an
/// urlencoded body of more than `config.max_fields` fields and more than one per
/// [`URLENCODED_BYTES_PER_FIELD`] bytes; the multipart errors of
/// [`parse_multipart_form_data`]; [`ParseError::InvalidMultipart`] when the boundary
/// parameter is missing.
pub fn parse_body_arguments(
    content_type: &str,
    body: &Bytes,
    arguments: &mut Arguments,
    files: &mut Files,
    headers: Option<&HeaderMap>,
    config: &MultipartConfig,
) -> Result<(), ParseError> {
    let mut params = content_type.split(';');
    let form = FormType::of_media_type(params.next().unwrap_or(""));
    if form.is_some() && headers.is_some_and(|h| h.contains_key(header::CONTENT_ENCODING)) {
        return Err(ParseError::UnsupportedContentEncoding);
    }
    if form == Some(FormType::UrlEncoded) {
        // Counted before anything is parsed: one `memchr` pass.
        let fields = memchr::memchr_iter(b'&', body).count().saturating_add(1);
        if fields
            > config
                .max_fields
                .max(body.len() / URLENCODED_BYTES_PER_FIELD)
        {
            return Err(ParseError::TooManyFields);
        }
        for (name, values) in parse_qs_bytes(body, true) {
            arguments.entry(name).or_default().extend(values);
        }
    } else if form == Some(FormType::Multipart) {
        if !config.enabled {
            return Err(ParseError::MultipartDisabled);
        }
        let boundary = params
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, v)| k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty())
            .map(|(_, v)| v.trim())
            .ok_or(ParseError::InvalidMultipart)?;
        parse_multipart_form_data(boundary.as_bytes(), body, arguments, files, config)?;
    }
    Ok(())
}

/// Parse a multipart/form-data body (Tornado's `parse_multipart_form_data`).
///
/// The final boundary (`--boundary--`) is required and what follows it is ignored; each
/// part needs a header block with `Content-Disposition: form-data` and a non-empty
/// `name`; a part with a non-empty `filename` (or RFC 5987 `filename*`) is a file, any
/// other a field. Text before the first delimiter is read as a part when it is one (a
/// header block naming a form-data field, as Tornado reads it), and otherwise ignored
/// as the preamble (RFC 2046 §5.1.1). Values share `data`'s memory. Linear in the
/// input: the boundary is found with one `memmem` pass, and a part's header block is
/// looked for only within `max_part_header_size` bytes.
///
/// # Errors
/// [`ParseError::InvalidMultipart`] (no final boundary, missing headers, a part that is
/// not form-data or not ended by CRLF, a part without a name, headers that are not
/// UTF-8); [`ParseError::TooManyParts`]; [`ParseError::PartHeaderTooLarge`];
/// [`ParseError::MultipartDisabled`] when `config.enabled` is false (nothing is parsed).
///
/// ```
/// use bytes::Bytes;
/// use squall_httputil::{parse_multipart_form_data, Arguments, Files, MultipartConfig};
///
/// let body = Bytes::from_static(
///     b"--xyz\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\n\
///       --xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\
///       Content-Type: text/plain\r\n\r\nfile body\r\n--xyz--\r\n",
/// );
/// let (mut args, mut files) = (Arguments::new(), Files::new());
/// parse_multipart_form_data(b"xyz", &body, &mut args, &mut files, &MultipartConfig::default())?;
/// assert_eq!(args["title"], ["Hello"]);
/// assert_eq!(files["f"][0].filename, "a.txt");
/// assert_eq!(files["f"][0].content_type, "text/plain");
/// assert_eq!(files["f"][0].body, "file body");
/// # Ok::<(), squall_httputil::ParseError>(())
/// ```
pub fn parse_multipart_form_data(
    boundary: &[u8],
    data: &Bytes,
    arguments: &mut Arguments,
    files: &mut Files,
    config: &MultipartConfig,
) -> Result<(), ParseError> {
    if !config.enabled {
        return Err(ParseError::MultipartDisabled);
    }
    // The boundary may be quoted in the header (RFC 2046 allows it).
    let boundary = match boundary {
        [b'"', inner @ .., b'"'] => inner,
        b => b,
    };
    if boundary.is_empty() {
        return Err(ParseError::InvalidMultipart);
    }
    let mut final_boundary = Vec::with_capacity(boundary.len() + 4);
    final_boundary.extend_from_slice(b"--");
    final_boundary.extend_from_slice(boundary);
    final_boundary.extend_from_slice(b"--");
    let final_at = memmem::rfind(data, &final_boundary).ok_or(ParseError::InvalidMultipart)?;
    crate::count_work!(data.len() - final_at);
    let region = &data[..final_at];

    // A delimiter line: `--boundary`, any spaces or tabs (RFC 2046 §5.1.1's transport
    // padding), CRLF. Each part runs to the next delimiter (or the close delimiter).
    // What comes before the first one is read as a part when it is one (a header block
    // naming a form-data field: Tornado splits the whole body on the delimiters, and
    // its HTTPConnectionTest.test_multipart_form sends its first field so), else it is
    // the preamble, which is ignored.
    let dash = &final_boundary[..final_boundary.len() - 2];
    let finder = memmem::Finder::new(dash);
    let mut parts = 0usize;
    let mut part_start: Option<usize> = None;
    let mut pos = 0usize;
    let mut part = |start: usize, end: usize, preamble: bool| -> Result<(), ParseError> {
        if end <= start {
            return Ok(());
        }
        let piece = data.slice(start..end);
        if parts == config.max_parts {
            // One more part is one too many, unless this is a preamble that is none.
            let (mut a, mut f) = (Arguments::new(), Files::new());
            if preamble && parse_part(piece, &mut a, &mut f, config).is_err() {
                return Ok(());
            }
            return Err(ParseError::TooManyParts);
        }
        // A part that fails adds nothing, so a preamble that is none is skipped.
        match parse_part(piece, arguments, files, config) {
            Ok(()) => parts += 1,
            Err(_) if preamble => {}
            Err(e) => return Err(e),
        }
        Ok(())
    };
    while let Some(at) = finder.find(&region[pos..]).map(|i| pos + i) {
        let mut end = at + dash.len();
        while matches!(region.get(end), Some(b' ' | b'\t')) {
            end += 1;
        }
        crate::count_work!(end + 2 - pos);
        if !region[end..].starts_with(b"\r\n") {
            // `--boundary` not ending its line: part of the data.
            pos = at + 1;
            continue;
        }
        part(part_start.unwrap_or(0), at, part_start.is_none())?;
        part_start = Some(end + 2);
        pos = end + 2;
    }
    crate::count_work!(region.len() - pos);
    // The last part runs to the close delimiter; without any delimiter line, the
    // region is read as one part (an error unless it is empty).
    part(part_start.unwrap_or(0), region.len(), false)?;
    Ok(())
}

fn parse_part(
    part: Bytes,
    arguments: &mut Arguments,
    files: &mut Files,
    config: &MultipartConfig,
) -> Result<(), ParseError> {
    // The header block and the empty line after it (saturating: `usize::MAX` is no cap).
    let window_len = config.max_part_header_size.saturating_add(4);
    let window = &part[..part.len().min(window_len)];
    crate::count_work!(window.len());
    let Some(eoh) = memmem::find(window, b"\r\n\r\n") else {
        return Err(if part.len() > window_len {
            ParseError::PartHeaderTooLarge
        } else {
            ParseError::InvalidMultipart
        });
    };
    if eoh > config.max_part_header_size {
        return Err(ParseError::PartHeaderTooLarge);
    }
    // The part's header block, as Tornado parses it (HTTPHeaders.parse).
    let headers = parse_headers(&part[..eoh]).map_err(|_| ParseError::InvalidMultipart)?;
    let text = |name: header::HeaderName| -> Result<Option<&str>, ParseError> {
        headers
            .get(name)
            .map(|v| std::str::from_utf8(v.as_bytes()).map_err(|_| ParseError::InvalidMultipart))
            .transpose()
    };
    let disposition = text(header::CONTENT_DISPOSITION)?;
    let content_type = text(header::CONTENT_TYPE)?.map(str::to_owned);
    let (kind, params) = parse_header_params(disposition.unwrap_or_default());
    if !kind.eq_ignore_ascii_case("form-data") || !part.ends_with(b"\r\n") {
        return Err(ParseError::InvalidMultipart);
    }
    // With an empty value the header block's last CRLF doubles as the part's (Tornado
    // accepts this too).
    let value = part.slice((eoh + 4).min(part.len() - 2)..part.len() - 2);
    let name = params
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or(ParseError::InvalidMultipart)?;
    match params.get("filename").filter(|f| !f.is_empty()) {
        Some(filename) => files.entry(name.clone()).or_default().push(HttpFile {
            filename: filename.clone(),
            content_type: content_type.unwrap_or_else(|| "application/unknown".to_owned()),
            body: value,
        }),
        None => arguments.entry(name.clone()).or_default().push(value),
    }
    Ok(())
}

/// Split a header like `form-data; name="a;b"; filename*=UTF-8''x` into its value and
/// its parameters (Tornado's `_parse_header`, in one linear pass): `;` inside quotes does
/// not split (outside them a backslash does not escape it: `name=a\; filename=b` is two
/// parameters), parameter names are lower-cased, quoted values are unquoted (`\\` and `\"`
/// are `\` and `"`; any other backslash stays, as browsers send file names),
/// and RFC 2231/5987 `name*=charset'lang'pct-encoded` values are decoded and replace
/// `name` (one without its `charset'lang'` prefix is percent-decoded as US-ASCII, as
/// Python reads it). RFC 2231 continuations (`name*0`, `name*1*`, …) are joined in index order,
/// the encoded pieces percent-decoded, with the charset of the first piece (Python's
/// `email.utils.decode_params`, which Tornado uses).
pub fn parse_header_params(line: &str) -> (String, HashMap<String, String>) {
    let mut pieces = Vec::new();
    let (mut start, mut in_quote, mut escaped) = (0, false, false);
    for (i, c) in line.char_indices() {
        if c == ';' && !in_quote {
            // A quoted-pair exists only inside a quoted-string (RFC 9110 §5.6.4).
            pieces.push(&line[start..i]);
            start = i + 1;
            escaped = false;
        } else if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quote = !in_quote;
        }
    }
    pieces.push(&line[start..]);
    crate::count_work!(line.len());
    let key = pieces[0].trim().to_owned();
    let mut params = HashMap::new();
    let mut extended = Vec::new();
    // (base name, index, encoded, raw value) of each RFC 2231 continuation piece.
    let mut continued: Vec<(String, u32, bool, &str)> = Vec::new();
    for p in &pieces[1..] {
        let Some((name, value)) = p.split_once('=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if let Some((base, index, encoded)) = continuation(&name) {
            continued.push((base.to_owned(), index, encoded, value));
            continue;
        }
        if let Some(base) = name.strip_suffix('*') {
            extended.push((base.to_owned(), decode_rfc5987(value)));
            continue;
        }
        params.insert(name, unquote(value));
    }
    if !continued.is_empty() {
        // Stable: pieces that repeat an index keep their order of arrival.
        continued.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        for group in continued.chunk_by(|a, b| a.0 == b.0) {
            extended.push((group[0].0.clone(), join_continuation(group)));
        }
    }
    for (name, value) in extended {
        params.insert(name, value);
    }
    (key, params)
}

/// `name*N` or `name*N*` (RFC 2231 §3): the base name, N, and whether the piece is
/// percent-encoded.
fn continuation(name: &str) -> Option<(&str, u32, bool)> {
    let (rest, encoded) = match name.strip_suffix('*') {
        Some(r) => (r, true),
        None => (name, false),
    };
    let (base, digits) = rest.rsplit_once('*')?;
    if base.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, digits.parse().ok()?, encoded))
}

/// Join the pieces of one continued parameter, in index order: plain pieces are
/// unquoted, encoded ones percent-decoded; a `charset'language'` prefix is read from the
/// first piece when it is encoded (UTF-8 unless it says ISO-8859-1).
fn join_continuation(pieces: &[(String, u32, bool, &str)]) -> String {
    let mut bytes = Vec::new();
    let mut latin1 = false;
    for (i, (_, _, encoded, value)) in pieces.iter().enumerate() {
        if !encoded {
            bytes.extend_from_slice(unquote(value).as_bytes());
            continue;
        }
        let mut text = value.trim_matches('"');
        if i == 0 {
            let mut it = text.splitn(3, '\'');
            if let (Some(charset), Some(_lang), Some(rest)) = (it.next(), it.next(), it.next()) {
                latin1 = charset.eq_ignore_ascii_case("iso-8859-1")
                    || charset.eq_ignore_ascii_case("latin1");
                text = rest;
            }
        }
        bytes.extend(url_unescape(text.as_bytes(), false));
    }
    if latin1 {
        crate::latin1_text(&bytes)
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A parameter's value without its quotes: inside them `\\` and `\"` stand for `\` and
/// `"`, and any other backslash is kept as it is. RFC 9110's quoted-pair would drop
/// every backslash, but browsers do not escape one in a file name (the HTML form
/// encoding escapes only `"`, CR and LF), so `filename="C:\dir\f.txt"` keeps its
/// backslashes, as Tornado's `_parse_header` keeps them.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next_if(|&n| n == '\\' || n == '"') {
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// `charset'language'pct-encoded` (RFC 5987): UTF-8 and ISO-8859-1 are decoded, other
/// charsets are read as UTF-8 with invalid sequences replaced. A value without the
/// `charset'language'` prefix is taken whole, percent-decoded, as US-ASCII with other
/// bytes replaced (Python's `decode_rfc2231` and `collapse_rfc2231_value`, which
/// Tornado's `_parse_header` uses).
fn decode_rfc5987(value: &str) -> String {
    let value = value.trim_matches('"');
    let mut it = value.splitn(3, '\'');
    let (Some(charset), Some(_lang), Some(encoded)) = (it.next(), it.next(), it.next()) else {
        return url_unescape(value.as_bytes(), false)
            .iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    '\u{fffd}'
                }
            })
            .collect();
    };
    let bytes = url_unescape(encoded.as_bytes(), false);
    if charset.eq_ignore_ascii_case("iso-8859-1") || charset.eq_ignore_ascii_case("latin1") {
        crate::latin1_text(&bytes)
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params() {
        let (k, p) = parse_header_params(
            r#"form-data; name="a;b"; filename="x\"y.txt"; filename*=UTF-8''%C3%A1b.txt"#,
        );
        assert_eq!(k, "form-data");
        assert_eq!(p["name"], "a;b");
        assert_eq!(p["filename"], "áb.txt");
        let (_, p) = parse_header_params("form-data; name=files; filename=ab.txt");
        assert_eq!(p["filename"], "ab.txt");
        let (_, p) = parse_header_params("attachment; filename*=iso-8859-1'en'%E1b");
        assert_eq!(p["filename"], "áb");
    }

    // An extended value without its `charset'language'` prefix is taken whole,
    // percent-decoded, as US-ASCII (bytes past it replaced), as Tornado's
    // `_parse_header` reads it through Python's `email.utils.decode_params`: a part
    // with `filename*=a%20b.txt` is a file named `a b.txt`, not a field.
    #[test]
    fn extended_value_without_charset() {
        for (line, want) in [
            ("form-data; name=f; filename*=a%20b.txt", "a b.txt"),
            ("form-data; name=f; filename*=\"abc\"", "abc"),
            ("form-data; name=f; filename*=x'y", "x'y"),
            (
                "form-data; name=f; filename*=%E9t%C3%A9",
                "\u{fffd}t\u{fffd}\u{fffd}",
            ),
        ] {
            let (_, p) = parse_header_params(line);
            assert_eq!(p.get("filename").map(String::as_str), Some(want), "{line}");
        }
        let (_, p) = parse_header_params("form-data; name*=field");
        assert_eq!(p["name"], "field");
    }

    #[test]
    fn backslash_outside_quotes_does_not_escape_a_semicolon() {
        // As Tornado: {'name': 'a\\', 'filename': 'b.txt'}. Inside quotes it still does.
        let (_, p) = parse_header_params(r#"form-data; name=a\; filename=b.txt"#);
        assert_eq!(p["name"], "a\\");
        assert_eq!(p["filename"], "b.txt");
        let (_, p) = parse_header_params(r#"form-data; name="a\"; b"; filename=c"#);
        assert_eq!(p["name"], "a\"; b");
        assert_eq!(p["filename"], "c");
    }

    #[test]
    fn quoted_values_keep_backslashes_that_escape_nothing() {
        // A browser sends a file name's backslashes as they are (the HTML form encoding
        // escapes only `"`, CR and LF); Tornado's _parse_header keeps them.
        let (_, p) = parse_header_params(r#"form-data; name="f"; filename="C:\dir\f.txt""#);
        assert_eq!(p["filename"], r"C:\dir\f.txt");
        // `\\` and `\"` are still escapes.
        let (_, p) = parse_header_params(r#"form-data; name="a\\b"; filename="x\"y\\""#);
        assert_eq!(p["name"], r"a\b");
        assert_eq!(p["filename"], r#"x"y\"#);
    }

    #[test]
    fn rfc2231_continuations_are_joined() {
        // Plain pieces, out of order.
        let (_, p) = parse_header_params(
            r#"form-data; name="f"; filename*1="two.txt"; filename*0="part one "; x=1"#,
        );
        assert_eq!(p["filename"], "part one two.txt");
        assert_eq!(p["x"], "1");
        // Encoded pieces: the charset is read from the first one only.
        let (_, p) = parse_header_params(
            "attachment; filename*0*=UTF-8'en'%C3%A1; filename*1*=b%20c; filename*2=.txt",
        );
        assert_eq!(p["filename"], "áb c.txt");
        let (_, p) =
            parse_header_params("attachment; filename*0*=iso-8859-1''%E1; filename*1*=%E9");
        assert_eq!(p["filename"], "áé");
        // A continued value wins over a plain one of the same name.
        let (_, p) = parse_header_params(r#"form-data; filename="plain"; filename*0="joined""#);
        assert_eq!(p["filename"], "joined");
        // Not continuations: a `*` with no digits, or a bare `*`.
        let (_, p) = parse_header_params("a; x*y=1; *0=2");
        assert_eq!(p.get("x*y").map(String::as_str), Some("1"));
        assert!(!p.contains_key(""));
    }

    fn body_with_parts(n: usize, boundary: &str) -> Bytes {
        let mut b = String::new();
        for i in 0..n {
            b.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\n{}\r\n",
                "v".repeat(50)
            ));
        }
        b.push_str(&format!("--{boundary}--\r\n"));
        Bytes::from(b)
    }

    #[test]
    fn multipart_is_linear() {
        let config = MultipartConfig {
            max_parts: usize::MAX,
            ..MultipartConfig::default()
        };
        let run = |n: usize| {
            let body = body_with_parts(n, "boundary1234");
            let (mut a, mut f) = (Arguments::new(), Files::new());
            crate::work::take();
            parse_multipart_form_data(b"boundary1234", &body, &mut a, &mut f, &config).unwrap();
            assert_eq!(a.len(), n);
            crate::work::take()
        };
        let (small, big) = (run(2000), run(4000));
        assert!(
            2 * big <= 5 * small,
            "doubling the input must not quadruple the work: {small} then {big}"
        );

        // A large body of near-boundaries without a final one, and a huge part header.
        let run_bad = |n: usize| {
            let body = Bytes::from(format!("--b\r\n{}", "--b-\r\n".repeat(n)));
            crate::work::take();
            let r = parse_multipart_form_data(
                b"b",
                &body,
                &mut Arguments::new(),
                &mut Files::new(),
                &config,
            );
            assert_eq!(r, Err(ParseError::InvalidMultipart));
            crate::work::take()
        };
        let (small, big) = (run_bad(50_000), run_bad(100_000));
        assert!(
            2 * big <= 5 * small,
            "doubling the input must not quadruple the work: {small} then {big}"
        );

        let run_header = |n: usize| {
            let body = Bytes::from(format!("--b\r\nX: {}\r\n\r\nv\r\n--b--", "h".repeat(n)));
            crate::work::take();
            let r = parse_multipart_form_data(
                b"b",
                &body,
                &mut Arguments::new(),
                &mut Files::new(),
                &config,
            );
            assert_eq!(r, Err(ParseError::PartHeaderTooLarge));
            crate::work::take()
        };
        let (small, big) = (run_header(1 << 20), run_header(2 << 20));
        assert!(
            2 * big <= 5 * small,
            "doubling the input must not quadruple the work: {small} then {big}"
        );
    }

    #[test]
    fn caps() {
        let body = body_with_parts(101, "b");
        let r = parse_multipart_form_data(
            b"b",
            &body,
            &mut Arguments::new(),
            &mut Files::new(),
            &MultipartConfig::default(),
        );
        assert_eq!(r, Err(ParseError::TooManyParts));
        let body = body_with_parts(100, "b");
        let mut args = Arguments::new();
        parse_multipart_form_data(
            b"b",
            &body,
            &mut args,
            &mut Files::new(),
            &MultipartConfig::default(),
        )
        .unwrap();
        assert_eq!(args.len(), 100);
    }

    #[test]
    fn caps_of_usize_max_are_no_caps() {
        // `usize::MAX` is how a caller lifts a cap: no overflow (a panic in debug, a
        // wrapped window and a wrong PartHeaderTooLarge in release).
        let config = MultipartConfig {
            enabled: true,
            max_parts: usize::MAX,
            max_part_header_size: usize::MAX,
            max_fields: usize::MAX,
        };
        let body = body_with_parts(3, "b");
        let mut args = Arguments::new();
        parse_multipart_form_data(b"b", &body, &mut args, &mut Files::new(), &config).unwrap();
        assert_eq!(args.len(), 3);
        let r = parse_multipart_form_data(
            b"b",
            &Bytes::from_static(b"--b\r\nno header block\r\n--b--"),
            &mut Arguments::new(),
            &mut Files::new(),
            &config,
        );
        assert_eq!(r, Err(ParseError::InvalidMultipart));
    }
}
