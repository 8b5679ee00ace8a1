//! URL helpers: percent-escaping, query strings, `url_concat`, `split_host_and_port`,
//! a URL's credentials and their `Authorization: Basic` value.

use std::collections::HashMap;

use bytes::Bytes;

/// Query or form arguments: name to every value given for it, in order (Tornado's
/// `request.arguments`). Blank values are kept.
pub type Arguments = HashMap<String, Vec<Bytes>>;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decode `%XX` escapes (and `+` as a space when `plus`), as Python's
/// `unquote_to_bytes`: a `%` not followed by two hex digits is kept as it is, so bad
/// escapes never fail. Tornado's `url_unescape(value, encoding=None)`.
pub fn url_unescape(input: &[u8], plus: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match b {
            b'%' => match (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    crate::count_work!(input.len());
    out
}

/// Percent-encode `input`: letters, digits and `_.-~` stay; with `plus` a space becomes
/// `+` and `/` is escaped (Python's `quote_plus`), without it `/` stays (Python's
/// `quote`). Tornado's `url_escape`.
pub fn url_escape(input: &[u8], plus: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || (!plus && b == b'/') {
            out.push(char::from(b));
        } else if plus && b == b' ' {
            out.push('+');
        } else {
            push_escape(&mut out, b);
        }
    }
    out
}

/// `input` with the bytes `escaped` picks, and every byte that is not ASCII, written as
/// `%XX` (upper-case hex); the others as they are.
///
/// ```
/// use squall_httputil::percent_encode;
///
/// let s = percent_encode("/a b<é>".as_bytes(), |b| b == b' ' || b == b'<' || b == b'>');
/// assert_eq!(s, "/a%20b%3C%C3%A9%3E");
/// ```
pub fn percent_encode(input: &[u8], escaped: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if escaped(b) || !b.is_ascii() {
            push_escape(&mut out, b);
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Appends `%XX` for `b`.
fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// Split a query string into `(name, value)` pairs, as Python's `parse_qsl`: fields are
/// separated by `&`, empty fields are skipped, `+` is a space, percent escapes are
/// decoded (bad ones kept), a field without `=` has an empty value. Blank values are
/// kept only with `keep_blank_values`. Names are decoded as UTF-8 (invalid sequences
/// replaced); values stay bytes.
pub fn parse_qsl_bytes(qs: &[u8], keep_blank_values: bool) -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    for field in qs.split(|&b| b == b'&') {
        if field.is_empty() {
            continue;
        }
        let (name, value) = match memchr::memchr(b'=', field) {
            Some(i) => (&field[..i], &field[i + 1..]),
            None if keep_blank_values => (field, &b""[..]),
            None => continue,
        };
        if value.is_empty() && !keep_blank_values {
            continue;
        }
        let name = String::from_utf8_lossy(&url_unescape(name, true)).into_owned();
        out.push((name, Bytes::from(url_unescape(value, true))));
    }
    out
}

/// Parse a query string into [`Arguments`] (Tornado's `parse_qs_bytes`); see
/// [`parse_qsl_bytes`] for the rules.
///
/// ```
/// use squall_httputil::parse_qs_bytes;
///
/// let args = parse_qs_bytes(b"a=1&b=%zz&a=x+y&c=&&d", true);
/// assert_eq!(args["a"], ["1", "x y"]);
/// assert_eq!(args["b"], ["%zz"]);
/// assert_eq!(args["c"], [""]);
/// assert_eq!(args["d"], [""]);
/// ```
pub fn parse_qs_bytes(qs: &[u8], keep_blank_values: bool) -> Arguments {
    let mut args = Arguments::new();
    for (name, value) in parse_qsl_bytes(qs, keep_blank_values) {
        args.entry(name).or_default().push(value);
    }
    args
}

/// Append query arguments to `url`, keeping its existing query and fragment (Tornado's
/// `url_concat`). The existing query is re-encoded as Python's `urlencode` would
/// (`?x` becomes `?x=`).
///
/// ```
/// use squall_httputil::url_concat;
///
/// assert_eq!(url_concat("http://example.com/foo", [("a", "b")]), "http://example.com/foo?a=b");
/// assert_eq!(url_concat("http://example.com/foo?a=b#frag", [("c", "d/e")]), "http://example.com/foo?a=b&c=d%2Fe#frag");
/// ```
pub fn url_concat<K, V>(url: &str, args: impl IntoIterator<Item = (K, V)>) -> String
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let (before_fragment, fragment) = match url.find('#') {
        Some(i) => (&url[..i], Some(&url[i..])),
        None => (url, None),
    };
    let (base, query) = match before_fragment.find('?') {
        Some(i) => (&before_fragment[..i], &before_fragment[i + 1..]),
        None => (before_fragment, ""),
    };
    let mut pairs: Vec<(String, String)> = parse_qsl_bytes(query.as_bytes(), true)
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    pairs.extend(
        args.into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())),
    );
    let mut out = String::with_capacity(url.len() + 16 * pairs.len());
    out.push_str(base);
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&url_escape(k.as_bytes(), true));
        out.push('=');
        out.push_str(&url_escape(v.as_bytes(), true));
    }
    if let Some(f) = fragment {
        out.push_str(f);
    }
    out
}

/// Split `host:port` where the port is trailing digits (Tornado's `split_host_and_port`,
/// regex `^(.+):(\d+)$`). A port that does not fit in 16 bits is not split off.
///
/// ```
/// use squall_httputil::split_host_and_port;
///
/// assert_eq!(split_host_and_port("example.com:8080"), ("example.com", Some(8080)));
/// assert_eq!(split_host_and_port("example.com"), ("example.com", None));
/// assert_eq!(split_host_and_port("[::1]:80"), ("[::1]", Some(80)));
/// ```
pub fn split_host_and_port(netloc: &str) -> (&str, Option<u16>) {
    if let Some(i) = netloc.rfind(':') {
        let (host, port) = (&netloc[..i], &netloc[i + 1..]);
        if !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(p) = port.parse::<u16>() {
                return (host, Some(p));
            }
        }
    }
    (netloc, None)
}

/// The port a URL's authority (`host:port`, `user@[::1]:port`) writes: `Ok(None)` when
/// it writes none (or an empty one, `host:`), `Err` with the text written when that is
/// not a decimal number up to 65535. The `http` crate's own reading (`Uri::port_u16`)
/// drops a port it cannot parse (`host:99999`, `host:abc`) as if none had been
/// written, which would send the request to the scheme's default port.
///
/// ```
/// use squall_httputil::authority_port;
/// assert_eq!(authority_port("example.com:8080"), Ok(Some(8080)));
/// assert_eq!(authority_port("u:p@[::1]:81"), Ok(Some(81)));
/// assert_eq!(authority_port("[::1]"), Ok(None));
/// assert_eq!(authority_port("example.com:"), Ok(None));
/// assert_eq!(authority_port("example.com:99999"), Err("99999"));
/// assert_eq!(authority_port("example.com:+80"), Err("+80"));
/// ```
pub fn authority_port(authority: &str) -> Result<Option<u16>, &str> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let text = match host_port.strip_prefix('[') {
        Some(v6) => v6
            .split_once(']')
            .and_then(|(_, rest)| rest.strip_prefix(':')),
        None => host_port.rsplit_once(':').map(|(_, p)| p),
    };
    match text {
        None | Some("") => Ok(None),
        // Digits only: `u16`'s parser would take a sign.
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p.parse().map(Some).map_err(|_| p),
        Some(p) => Err(p),
    }
}

/// The credentials of a URL's authority (`user:pass@host:port`), percent-decoded: `None`
/// without an `@`; a missing password is empty. Bytes that are not UTF-8 after decoding
/// become U+FFFD.
///
/// ```
/// assert_eq!(
///     squall_httputil::userinfo("us%40er:p:w@example.com:80"),
///     Some(("us@er".to_owned(), "p:w".to_owned()))
/// );
/// assert_eq!(squall_httputil::userinfo("example.com"), None);
/// ```
pub fn userinfo(authority: &str) -> Option<(String, String)> {
    let (info, _) = authority.rsplit_once('@')?;
    let (user, pass) = info.split_once(':').unwrap_or((info, ""));
    let decode = |s: &str| String::from_utf8_lossy(&url_unescape(s.as_bytes(), false)).into_owned();
    Some((decode(user), decode(pass)))
}

/// Standard base64 with padding (RFC 4648 §4), for `Authorization: Basic`.
#[cfg(feature = "basic-auth")]
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Basic <base64(user:pass)>`, the credentials in Unicode Normalization Form C as RFC
/// 7617 §2.1 asks for UTF-8 (Tornado's `encode_username_password`): the value of an
/// `Authorization` header for basic authentication. With the `basic-auth` feature
/// (the clients' own, which compiles `unicode-normalization`).
///
/// ```
/// assert_eq!(
///     squall_httputil::basic_auth_value("Aladdin", "open sesame"),
///     "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
/// );
/// ```
#[cfg(feature = "basic-auth")]
pub fn basic_auth_value(user: &str, pass: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let credentials: String = format!("{user}:{pass}").nfc().collect();
    format!("Basic {}", base64(credentials.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "basic-auth")]
    fn base64_known_answers() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(
            basic_auth_value("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        // Tornado's test_basic_auth_unicode: NFC before encoding.
        assert_eq!(
            basic_auth_value("test", "123\u{a3}"),
            "Basic dGVzdDoxMjPCow=="
        );
        assert_eq!(
            basic_auth_value("jose\u{301}", "s\u{259}cr\u{259}t"),
            "Basic am9zw6k6c8mZY3LJmXQ="
        );
    }

    #[test]
    fn unescape_matches_python() {
        assert_eq!(url_unescape(b"a%20b+c", true), b"a b c");
        assert_eq!(url_unescape(b"a%20b+c", false), b"a b+c");
        assert_eq!(url_unescape(b"%", true), b"%");
        assert_eq!(url_unescape(b"%4", true), b"%4");
        assert_eq!(url_unescape(b"%4g%41", true), b"%4gA");
        assert_eq!(url_unescape(b"%C3%A9", true), "é".as_bytes());
    }

    #[test]
    fn escape() {
        assert_eq!(url_escape(b"a b/c~", true), "a+b%2Fc~");
        assert_eq!(url_escape(b"a b/c~", false), "a%20b/c~");
    }

    #[test]
    fn qs_is_linear() {
        let unit = b"a=%41%zz+b&&c&";
        let run = |n: usize| {
            let qs = unit.repeat(n);
            crate::work::take();
            let args = parse_qs_bytes(&qs, true);
            assert_eq!(args["a"].len(), n);
            crate::work::take()
        };
        let (small, big) = (run(10_000), run(20_000));
        assert!(
            2 * big <= 5 * small,
            "doubling the input must not quadruple the work: {small} then {big}"
        );
    }
}
