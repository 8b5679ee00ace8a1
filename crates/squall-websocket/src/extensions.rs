//! The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1): a list of extensions, each with
//! parameters.

/// One element of a `Sec-WebSocket-Extensions` list: `name; param; param=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension token, as written.
    pub name: String,
    /// Its parameters in order, each with its value (unquoted) if it has one.
    pub params: Vec<(String, Option<String>)>,
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn token(s: &str) -> Option<&str> {
    let s = s.trim_matches([' ', '\t']);
    (!s.is_empty() && s.chars().all(is_tchar)).then_some(s)
}

/// Splits `s` at each `sep` outside double quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn param_value(raw: &str) -> Option<String> {
    let raw = raw.trim_matches([' ', '\t']);
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let mut value = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?),
                '"' => return None,
                c => value.push(c),
            }
        }
        // RFC 6455 §9.1: a quoted value must still be a token once unquoted.
        token(&value).map(str::to_owned)
    } else {
        token(raw).map(str::to_owned)
    }
}

fn parse_one(element: &str) -> Option<Extension> {
    let mut parts = split_outside_quotes(element, ';').into_iter();
    let name = token(parts.next()?)?.to_owned();
    let mut params = Vec::new();
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (token(name)?, Some(param_value(value)?)),
            None => (token(part)?, None),
        };
        params.push((name.to_owned(), value));
    }
    Some(Extension { name, params })
}

/// Parses a `Sec-WebSocket-Extensions` value (or several, joined with commas). Malformed
/// elements are left out (a server declines an offer it cannot read, RFC 7692 §5);
/// empty elements (`a, , b`) are skipped, as RFC 9110's list syntax allows.
pub fn parse_extensions(header: &str) -> Vec<Extension> {
    non_empty_elements(header).filter_map(parse_one).collect()
}

/// [`parse_extensions`] for a client reading the server's answer, which must fail the
/// connection on an answer it cannot read (RFC 6455 §4.1, RFC 7692 §5): `None` when any
/// element is malformed.
pub fn parse_extensions_strict(header: &str) -> Option<Vec<Extension>> {
    non_empty_elements(header).map(parse_one).collect()
}

fn non_empty_elements(header: &str) -> impl Iterator<Item = &str> {
    split_outside_quotes(header, ',')
        .into_iter()
        .filter(|e| !e.trim_matches([' ', '\t']).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_with_parameters_and_quotes() {
        let exts = parse_extensions(
            "permessage-deflate; client_max_window_bits, permessage-deflate ; server_max_window_bits=\"10\" ,, foo",
        );
        assert_eq!(exts.len(), 3);
        assert_eq!(
            exts[0].params,
            vec![("client_max_window_bits".into(), None)]
        );
        assert_eq!(
            exts[1].params,
            vec![("server_max_window_bits".into(), Some("10".into()))]
        );
        assert_eq!(exts[2].name, "foo");
        assert!(exts[2].params.is_empty());
    }

    #[test]
    fn malformed_elements_are_left_out() {
        assert!(parse_extensions("a b").is_empty());
        assert!(parse_extensions("x; =1").is_empty());
        assert!(parse_extensions("x; a=\"b c\"").is_empty());
        assert!(parse_extensions("x; a=\"unterminated").is_empty());
        assert_eq!(parse_extensions("x; a=\"1,2\", y").len(), 1);
        assert_eq!(
            parse_extensions_strict("x; a=\"12\", y").map(|e| e.len()),
            Some(2)
        );
        assert_eq!(parse_extensions_strict("x; a=\"1,2\", y"), None);
        assert_eq!(parse_extensions_strict("x, y z"), None);
        assert_eq!(parse_extensions_strict(" , ").map(|e| e.len()), Some(0));
    }
}
