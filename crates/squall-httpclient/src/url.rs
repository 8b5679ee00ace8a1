//! URLs as the client needs them: where to connect, what to put in the request line and
//! the Host header, and how a redirect's Location resolves against the URL it came from.

use std::borrow::Cow;

use http::header::HeaderValue;
use http::uri::{PathAndQuery, Uri};

/// The schemes the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// A parsed absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) scheme: Scheme,
    /// The host to connect to, without IPv6 brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The value of the Host header: the host (bracketed if IPv6) and the port when it
    /// is not the scheme's default.
    pub(crate) host_header: String,
    /// `host_header` as a header value, made once.
    pub(crate) host_value: HeaderValue,
    /// Origin-form request target.
    pub(crate) path: PathAndQuery,
    /// Credentials given in the URL.
    pub(crate) userinfo: Option<(String, String)>,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        // Bytes a request target may not carry (UTF-8, spaces, `<`, a quote...) are
        // percent-encoded, as in a redirect's Location: sent raw they make the request
        // line invalid (RFC 9112 §3.2), and servers answer 400.
        let encoded = escape_url(url.as_bytes());
        let url = encoded.as_ref();
        // The fragment is never sent.
        let url = url.split('#').next().unwrap_or(url);
        let uri: Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) => return Err(format!("unsupported URL scheme {s:?} in {url:?}")),
            None => return Err(format!("URL {url:?} has no scheme (http:// or https://)")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("URL {url:?} has no host"))?;
        let host = authority.host();
        if host.is_empty() {
            return Err(format!("URL {url:?} has no host"));
        }
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let port = squall_httputil::authority_port(authority.as_str())
            .map_err(|p| format!("bad port {p:?} in URL {url:?}"))?
            .unwrap_or(default_port);
        let userinfo = squall_httputil::userinfo(authority.as_str());
        let host_header = if port == default_port {
            host.to_owned()
        } else {
            format!("{host}:{port}")
        };
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let path = match uri.path_and_query() {
            Some(pq) if !pq.as_str().is_empty() && pq.as_str().starts_with('/') => pq.clone(),
            Some(pq) if pq.as_str().starts_with('?') => {
                PathAndQuery::try_from(format!("/{}", pq.as_str())).map_err(|e| e.to_string())?
            }
            _ => PathAndQuery::from_static("/"),
        };
        let host_value =
            HeaderValue::from_str(&host_header).map_err(|e| format!("bad host in {url:?}: {e}"))?;
        Ok(Target {
            scheme,
            host: bare.to_owned(),
            port,
            host_value,
            host_header,
            path,
            userinfo,
        })
    }

    /// The URL again, without credentials.
    pub(crate) fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}{}", self.host_header, self.path)
    }

    /// The absolute-form request target for a proxy.
    pub(crate) fn absolute(&self) -> Result<Uri, String> {
        self.url().parse().map_err(|e| format!("{e}"))
    }

    /// Whether `other` is the same origin (scheme, host, port).
    pub(crate) fn same_origin(&self, other: &Target) -> bool {
        self.scheme == other.scheme
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }

    /// Resolve a redirect's `Location` against this URL (RFC 3986 §5.2, with dot
    /// segments removed).
    pub(crate) fn join(&self, location: &str) -> Result<Target, String> {
        let location = location.trim();
        // A fragment is the client's own business: never sent, and no part of the
        // resolution of the rest (`#f` alone is this very URL).
        let location = location.split_once('#').map_or(location, |(l, _)| l);
        let scheme = match self.scheme {
            Scheme::Http => "http:",
            Scheme::Https => "https:",
        };
        // `http:g` or `http:/g` from an http URL: this URL's own scheme without an
        // authority, resolved as relative (the non-strict reading RFC 3986 §5.2.2 and
        // §5.4.2 keep for compatibility, as browsers and Python's urljoin do).
        let same_scheme_relative = location
            .get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
            && !location[scheme.len()..].starts_with("//");
        let location = if same_scheme_relative {
            &location[scheme.len()..]
        } else if has_scheme(location) {
            return Target::parse(location);
        } else {
            location
        };
        if let Some(rest) = location.strip_prefix("//") {
            return Target::parse(&format!("{scheme}//{rest}"));
        }
        let base = format!("{scheme}//{}", self.host_header);
        let (loc_path, loc_query) = match location.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (location, None),
        };
        let path = if loc_path.is_empty() {
            self.path.path().to_owned()
        } else if loc_path.starts_with('/') {
            loc_path.to_owned()
        } else {
            let dir = self.path.path().rsplit_once('/').map_or("", |(d, _)| d);
            format!("{dir}/{loc_path}")
        };
        let query = match (loc_path.is_empty(), loc_query, self.path.query()) {
            (_, Some(q), _) => format!("?{q}"),
            (true, None, Some(q)) => format!("?{q}"),
            _ => String::new(),
        };
        Target::parse(&format!("{base}{}{query}", remove_dot_segments(&path)))
    }
}

/// Whether the WHATWG URL standard's path percent-encode set holds `b`: the C0
/// controls, space, `"`, `#`, `<`, `>`, `?`, `` ` ``, `{`, `}`, DEL and every byte past
/// ASCII. (`#` and `?` end a path, so [`escape_url`] never meets them there.)
fn path_escaped(b: u8) -> bool {
    query_escaped(b) || matches!(b, b'?' | b'`' | b'{' | b'}')
}

/// Whether the WHATWG URL standard's query percent-encode set holds `b`: the C0
/// controls, space, `"`, `#`, `<`, `>`, DEL and every byte past ASCII.
fn query_escaped(b: u8) -> bool {
    b <= b' ' || matches!(b, b'"' | b'#' | b'<' | b'>') || b >= 0x7f
}

/// Whether the WHATWG URL standard's fragment percent-encode set holds `b`: the C0
/// controls, space, `"`, `<`, `>`, `` ` ``, DEL and every byte past ASCII.
fn fragment_escaped(b: u8) -> bool {
    (query_escaped(b) && b != b'#') || b == b'`'
}

/// A URL or a `Location` value as a URI reference that can be sent: leading and
/// trailing whitespace trimmed, and the bytes a URI may not hold raw percent-encoded
/// as browsers encode them (the WHATWG URL standard's sets: [`path_escaped`] up to the
/// query, [`query_escaped`] in it, [`fragment_escaped`] after a `#`), so that `/a b<c>?q="d"` is
/// sent as `/a%20b%3Cc%3E?q=%22d%22`. Existing `%XX` escapes and every other byte stay
/// as they are. Borrowed when there is nothing to encode, so that the URL given is
/// the URL sent.
pub(crate) fn escape_url(raw: &[u8]) -> Cow<'_, str> {
    let raw = raw.trim_ascii();
    // `?` and `#` are the delimiters, not bytes to escape.
    if !raw
        .iter()
        .any(|&b| path_escaped(b) && b != b'?' && b != b'#')
    {
        // ASCII only: UTF-8 by construction.
        if let Ok(text) = std::str::from_utf8(raw) {
            return Cow::Borrowed(text);
        }
    }
    // The fragment starts at the first `#`, the query at the first `?` before it; the
    // path holds the scheme and the authority too, where none of these bytes is
    // valid either.
    let (reference, fragment) = match raw.iter().position(|&b| b == b'#') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    let (path, query) = match reference.iter().position(|&b| b == b'?') {
        Some(i) => (&reference[..i], Some(&reference[i + 1..])),
        None => (reference, None),
    };
    let mut out = squall_httputil::percent_encode(path, path_escaped);
    if let Some(query) = query {
        out.push('?');
        out.push_str(&squall_httputil::percent_encode(query, query_escaped));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(&squall_httputil::percent_encode(fragment, fragment_escaped));
    }
    Cow::Owned(out)
}

/// Whether a URI reference starts with a scheme (RFC 3986 §3.1: `ALPHA *( ALPHA /
/// DIGIT / "+" / "-" / "." ) ":"`), which makes it absolute; a relative reference may
/// still hold `://` further on (`/login?next=http://a/`).
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut joined = out.join("/");
    if !joined.starts_with('/') {
        joined.insert(0, '/');
    }
    if trailing_slash && !joined.ends_with('/') {
        joined.push('/');
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_targets() {
        let t = Target::parse("http://user:p%40ss@example.com:8080/a/b?c=d#frag").unwrap();
        assert_eq!(t.host, "example.com");
        assert_eq!(t.port, 8080);
        assert_eq!(t.host_header, "example.com:8080");
        assert_eq!(t.path, "/a/b?c=d");
        assert_eq!(t.userinfo, Some(("user".into(), "p@ss".into())));
        let t = Target::parse("http://[::1]/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.host_header.as_str()),
            ("::1", 80, "[::1]")
        );
        let t = Target::parse("http://h?q=1").unwrap();
        assert_eq!(t.path, "/?q=1");
        // What a request line may not hold raw is sent percent-encoded.
        let t = Target::parse(" http://us\u{e9}r:p w@h/caf\u{e9} x?q=\u{e9}#fr\u{e4}g ").unwrap();
        assert_eq!(t.path, "/caf%C3%A9%20x?q=%C3%A9");
        assert_eq!(t.userinfo, Some(("us\u{e9}r".into(), "p w".into())));
        assert!(Target::parse("ftp://h/").is_err());
        assert!(Target::parse("/relative").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn escapes_as_browsers() {
        let e = |raw: &str| escape_url(raw.as_bytes()).into_owned();
        // The path set in the path, the query set in the query, the fragment set after
        // `#`; escapes and valid bytes stay.
        assert_eq!(
            e("http://h/a b<c>`{d}\"e\"^|"),
            "http://h/a%20b%3Cc%3E%60%7Bd%7D%22e%22^|"
        );
        assert_eq!(
            e("/p?q=\"<a>\"`{}?#x y`#"),
            "/p?q=%22%3Ca%3E%22`{}?#x%20y%60#"
        );
        assert_eq!(e("/%41%zz%"), "/%41%zz%");
        assert_eq!(e("/\u{e9}\t\x7f"), "/%C3%A9%09%7F");
        assert!(matches!(
            escape_url(b" http://h/a?b=c#d "),
            Cow::Borrowed("http://h/a?b=c#d")
        ));
        // Raw bytes of a Location that are not UTF-8.
        assert_eq!(escape_url(b"/caf\xe9"), "/caf%E9");
        // Every encoded URL parses.
        let t = Target::parse("http://h/s?q=\"a\"&t=<b>").unwrap();
        assert_eq!(t.path, "/s?q=%22a%22&t=%3Cb%3E");
    }

    #[test]
    fn ports_that_are_not_u16_are_errors() {
        // Once taken for "no port": the request went to port 80.
        for url in [
            "http://h:99999/",
            "http://h:65536/",
            "http://h:abc/",
            "http://h:+80/",
            "http://u:p@h:70000/",
            "http://[::1]:99999/",
        ] {
            let e = Target::parse(url).unwrap_err();
            assert!(e.contains("bad port"), "{url}: {e}");
        }
        // An empty port is the default one (RFC 3986 §3.2.3), leading zeros are digits.
        let port = |url: &str| Target::parse(url).unwrap().port;
        assert_eq!(port("http://h:/"), 80);
        assert_eq!(port("https://h:/"), 443);
        assert_eq!(port("http://h:0080/"), 80);
        assert_eq!(port("http://u:p@[::1]:65535/"), 65535);
        assert_eq!(port("http://u:p@[::1]/"), 80);
        // A relative redirect to a bad port fails instead of going to port 80.
        let base = Target::parse("http://a/").unwrap();
        assert!(base.join("//b:123456/").is_err());
    }

    #[test]
    fn joins_like_rfc3986() {
        let base = Target::parse("http://a/b/c/d;p?q").unwrap();
        let j = |l: &str| base.join(l).unwrap().url();
        assert_eq!(j("g"), "http://a/b/c/g");
        assert_eq!(j("./g"), "http://a/b/c/g");
        assert_eq!(j("g/"), "http://a/b/c/g/");
        assert_eq!(j("/g"), "http://a/g");
        assert_eq!(j("//g"), "http://g/");
        assert_eq!(j("?y"), "http://a/b/c/d;p?y");
        assert_eq!(j("g?y"), "http://a/b/c/g?y");
        assert_eq!(j(""), "http://a/b/c/d;p?q");
        assert_eq!(j("../g"), "http://a/b/g");
        assert_eq!(j("../.."), "http://a/");
        assert_eq!(j("../../../g"), "http://a/g");
        assert_eq!(j("https://other:444/x"), "https://other:444/x");
        assert_eq!(j("HTTP://other/x"), "http://other/x");
        // `://` further on does not make a reference absolute.
        assert_eq!(
            j("/login?next=http://e.example/x"),
            "http://a/login?next=http://e.example/x"
        );
        assert_eq!(j("g/http://x/"), "http://a/b/c/g/http://x/");
        // The base's own scheme without an authority is relative (RFC 3986 §5.4.2's
        // compatible reading); another scheme without one is no URL to follow.
        assert_eq!(j("http:g"), "http://a/b/c/g");
        assert_eq!(j("HTTP:/g?y"), "http://a/g?y");
        assert!(base.join("https:g").is_err());
        // A fragment is not part of the resolution (RFC 3986 §5.2.2).
        assert_eq!(j("#s"), "http://a/b/c/d;p?q");
        assert_eq!(j("g#s"), "http://a/b/c/g");
        assert_eq!(j("?y#s"), "http://a/b/c/d;p?y");
        // A Location with raw UTF-8 or a space is followed, escaped.
        assert_eq!(
            j(&escape_url("/caf\u{e9} x".as_bytes())),
            "http://a/caf%C3%A9%20x"
        );
    }
}
