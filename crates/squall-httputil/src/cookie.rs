//! The `Cookie` request header.

use std::collections::HashMap;

/// Parse a `Cookie` header into name -> value (Tornado's `parse_cookie`).
///
/// Browser-compatible rather than RFC 6265-strict, as Tornado: the header is split on
/// every `;`; a chunk without `=` is a value with an empty name (Mozilla bug 169091);
/// names and values are trimmed; a chunk that is empty after trimming is skipped; the
/// last of several cookies with one name wins; a double-quoted value is unquoted with
/// Python's cookie rules (`\"`, `\\` and three-digit octal escapes). Linear in the
/// input: unquoting is one pass, unlike the regex loop behind CVE-2024-52804.
///
/// ```
/// use squall_httputil::parse_cookie;
///
/// let c = parse_cookie(r#"a=1; b="q\"x\101"; a=2; junk; =v"#);
/// assert_eq!(c["a"], "2");
/// assert_eq!(c["b"], "q\"xA");
/// assert_eq!(c[""], "v");
/// ```
pub fn parse_cookie(cookie: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for chunk in cookie.split(';') {
        crate::count_work!(chunk.len() + 1);
        let (key, val) = match chunk.find('=') {
            Some(i) => (&chunk[..i], &chunk[i + 1..]),
            None => ("", chunk),
        };
        let (key, val) = (key.trim(), val.trim());
        if !key.is_empty() || !val.is_empty() {
            out.insert(key.to_owned(), unquote_cookie(val));
        }
    }
    out
}

/// Python's `http.cookies._unquote` in one linear pass: a value in double quotes loses
/// them, `\ooo` (first digit 0-3) is an octal byte, `\c` is `c`; anything else is kept.
fn unquote_cookie(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'"' || b[b.len() - 1] != b'"' {
        return s.to_owned();
    }
    let inner = &s[1..s.len() - 1];
    let bytes = inner.as_bytes();
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    while i < bytes.len() {
        let Some(off) = memchr::memchr(b'\\', &bytes[i..]) else {
            crate::count_work!(bytes.len() - i);
            out.push_str(&inner[i..]);
            break;
        };
        crate::count_work!(off + 1);
        out.push_str(&inner[i..i + off]);
        let j = i + off;
        let octal =
            |k: usize, max: u8| bytes.get(j + k).is_some_and(|&d| (b'0'..=max).contains(&d));
        if octal(1, b'3') && octal(2, b'7') && octal(3, b'7') {
            let v = (bytes[j + 1] - b'0') * 64 + (bytes[j + 2] - b'0') * 8 + (bytes[j + 3] - b'0');
            out.push(char::from(v));
            i = j + 4;
        } else if let Some(c) = inner[j + 1..].chars().next() {
            out.push(c);
            i = j + 1 + c.len_utf8();
        } else {
            // A lone trailing backslash stays.
            out.push('\\');
            i = j + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tornado's ParseCookieTest.test_python_cookies and test_cookie_edgecases, in our words.
    #[test]
    fn python_cookie_cases() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                "chips=ahoy; vienna=finger",
                &[("chips", "ahoy"), ("vienna", "finger")],
            ),
            (
                r#"keebler="E=mc2; L=\"Loves\"; fudge=\012;""#,
                &[
                    ("keebler", "\"E=mc2"),
                    ("L", "\\\"Loves\\\""),
                    ("fudge", "\\012"),
                    ("", "\""),
                ],
            ),
            ("keebler=E=mc2", &[("keebler", "E=mc2")]),
            ("key:term=value:term", &[("key:term", "value:term")]),
            (
                "a=b; c=[; d=r; f=h",
                &[("a", "b"), ("c", "["), ("d", "r"), ("f", "h")],
            ),
            ("a=b; =c", &[("a", "b"), ("", "c")]),
            ("a=\"\\\"\"", &[("a", "\"")]),
            ("a=\"\\177\\400\"", &[("a", "\u{7f}400")]),
            ("a=\"\\\"", &[("a", "\\")]),
        ];
        for (header, expected) in cases {
            let got = parse_cookie(header);
            assert_eq!(got.len(), expected.len(), "{header}: {got:?}");
            for (k, v) in *expected {
                assert_eq!(got.get(*k).map(String::as_str), Some(*v), "{header}: {k}");
            }
        }
    }

    #[test]
    fn unquoting_is_linear() {
        let run = |n: usize| {
            let header = format!("a=\"{}\"", "\\".repeat(n) + &"\\012x".repeat(n));
            crate::work::take();
            let _ = parse_cookie(&header);
            crate::work::take()
        };
        let (small, big) = (run(50_000), run(100_000));
        assert!(
            2 * big <= 5 * small,
            "doubling the input must not quadruple the work: {small} then {big}"
        );
    }
}
