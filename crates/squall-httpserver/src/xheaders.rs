//! Per-request header rules applied by the connection: proxy headers (`xheaders`) and
//! the gzip body switch (`decompress_request`).

use std::net::IpAddr;

#[cfg(feature = "gzip")]
use http::header::{HeaderName, CONTENT_ENCODING};
use http::uri::Scheme;
use squall_httputil::RequestHead;

use crate::config::HttpServerConfig;

#[cfg(feature = "gzip")]
static X_CONSUMED_CONTENT_ENCODING: HeaderName =
    HeaderName::from_static("x-consumed-content-encoding");

/// A header value as text when it is visible ASCII (tabs allowed), as
/// `HeaderValue::to_str` takes it.
fn text(v: &[u8]) -> Option<&str> {
    if v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// The client's address and the scheme for one request (Tornado's
/// `_HTTPRequestContext._apply_xheaders`, computed afresh for every request, so one
/// request's headers never leak into the next on the same connection), from the
/// peer's address (`peer`, canonical: an IPv4-mapped IPv6 address as IPv4) and the
/// configured protocol (or `http`) as the connection has them.
pub(crate) fn resolve(
    config: &HttpServerConfig,
    head: &RequestHead,
    peer: Option<IpAddr>,
) -> (Option<IpAddr>, Scheme) {
    let mut ip = peer;
    let mut scheme = config.protocol.clone().unwrap_or(Scheme::HTTP);
    if !config.xheaders {
        return (ip, scheme);
    }
    // X-Forwarded-For lists hops left to right; several fields are one list. Walk from
    // the right past our own trusted proxies: the first other hop is the client.
    let mut candidate: Option<&str> = None;
    let forwarded: Vec<&[u8]> = head.header_values("x-forwarded-for").collect();
    'fields: for value in forwarded.iter().rev() {
        let Some(text) = text(value) else {
            candidate = None;
            break;
        };
        for hop in text.rsplit(',').map(str::trim) {
            candidate = Some(hop);
            if !is_trusted(config, hop) {
                break 'fields;
            }
        }
    }
    if let Some(real) = head.header_bytes("x-real-ip") {
        candidate = text(real).map(str::trim);
    }
    if let Some(addr) = candidate.and_then(|c| c.parse::<IpAddr>().ok()) {
        ip = Some(addr);
    }
    let proto = head
        .header_bytes("x-scheme")
        .or_else(|| head.header_bytes("x-forwarded-proto"));
    if let Some(last) = proto
        .and_then(text)
        .and_then(|t| t.rsplit(',').next())
        .map(str::trim)
    {
        if last.eq_ignore_ascii_case("http") {
            scheme = Scheme::HTTP;
        } else if last.eq_ignore_ascii_case("https") {
            scheme = Scheme::HTTPS;
        }
    }
    (ip, scheme)
}

fn is_trusted(config: &HttpServerConfig, hop: &str) -> bool {
    !config.trusted_downstream.is_empty()
        && hop
            .parse::<IpAddr>()
            .is_ok_and(|a| config.trusted_downstream.contains(&a))
}

/// Whether this request's body is to be inflated: `decompress_request` is on and the
/// body is gzip (its header is then renamed). Always false without the `gzip` feature.
/// Inlined: per request, and usually only the flag's test.
#[inline]
pub(crate) fn decompress(config: &HttpServerConfig, head: &mut RequestHead) -> bool {
    #[cfg(feature = "gzip")]
    {
        config.decompress_request && take_gzip(head)
    }
    #[cfg(not(feature = "gzip"))]
    {
        let _ = (config, head);
        false
    }
}

/// If the body is gzip (`Content-Encoding: gzip`, any case), rename the header to
/// `X-Consumed-Content-Encoding` (the handler will see the body inflated) and say so.
#[cfg(feature = "gzip")]
fn take_gzip(head: &mut RequestHead) -> bool {
    let mut codings = head.header_values("content-encoding");
    let is_gzip = codings
        .next()
        .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"gzip"))
        && codings.next().is_none();
    if is_gzip {
        // The one change to a parsed head: the map is built for it.
        let headers = head.headers_mut();
        if let Some(v) = headers.remove(CONTENT_ENCODING) {
            headers.insert(X_CONSUMED_CONTENT_ENCODING.clone(), v);
        }
    }
    is_gzip
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method, Uri, Version};
    use squall_httputil::BodyKind;

    fn headers(pairs: &[(&'static str, &'static str)]) -> RequestHead {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        RequestHead::from_parts(
            Method::GET,
            Uri::default(),
            Version::HTTP_11,
            h,
            BodyKind::None,
            true,
        )
    }

    fn on() -> HttpServerConfig {
        HttpServerConfig {
            xheaders: true,
            ..HttpServerConfig::default()
        }
    }

    const PEER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)));

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    // XHeaderTest.test_ip_headers
    #[test]
    fn ip_headers() {
        let c = on();
        assert_eq!(resolve(&c, &headers(&[]), PEER).0, ip("127.0.0.1"));
        let h = headers(&[("X-Real-IP", "4.4.4.4")]);
        assert_eq!(resolve(&c, &h, PEER).0, ip("4.4.4.4"));
        let h = headers(&[("X-Forwarded-For", "4.4.4.4")]);
        assert_eq!(resolve(&c, &h, PEER).0, ip("4.4.4.4"));
        let h = headers(&[("X-Real-IP", "2620:0:1cfe:face:b00c::3")]);
        assert_eq!(resolve(&c, &h, PEER).0, ip("2620:0:1cfe:face:b00c::3"));
        // Invalid addresses are ignored.
        let h = headers(&[("X-Real-IP", "4.4.4.4<script>")]);
        assert_eq!(resolve(&c, &h, PEER).0, ip("127.0.0.1"));
        let h = headers(&[("X-Forwarded-For", "www.google.com")]);
        assert_eq!(resolve(&c, &h, PEER).0, ip("127.0.0.1"));
        // The last hop is taken when there is no trusted list.
        let h = headers(&[("X-Forwarded-For", "1.2.3.4, 5.6.7.8")]);
        assert_eq!(resolve(&c, &h, PEER).0, ip("5.6.7.8"));
        // Off: headers ignored.
        let off = HttpServerConfig::default();
        let h = headers(&[("X-Real-IP", "4.4.4.4")]);
        assert_eq!(resolve(&off, &h, PEER).0, ip("127.0.0.1"));
    }

    // XHeaderTest.test_trusted_downstream
    #[test]
    fn trusted_downstream() {
        let c = HttpServerConfig {
            trusted_downstream: vec!["5.5.5.5".parse().unwrap()],
            ..on()
        };
        let h = headers(&[("X-Forwarded-For", "1.1.1.1, 2.2.2.2, 5.5.5.5")]);
        assert_eq!(resolve(&c, &h, PEER).0, ip("2.2.2.2"));
        let h = headers(&[
            ("X-Forwarded-For", "1.1.1.1"),
            ("X-Forwarded-For", "5.5.5.5"),
        ]);
        assert_eq!(resolve(&c, &h, PEER).0, ip("1.1.1.1"));
    }

    // XHeaderTest.test_scheme_headers
    #[test]
    fn scheme_headers() {
        let c = on();
        assert_eq!(resolve(&c, &headers(&[]), PEER).1, Scheme::HTTP);
        let h = headers(&[("X-Scheme", "https")]);
        assert_eq!(resolve(&c, &h, PEER).1, Scheme::HTTPS);
        let h = headers(&[("X-Forwarded-Proto", "https")]);
        assert_eq!(resolve(&c, &h, PEER).1, Scheme::HTTPS);
        let h = headers(&[("X-Forwarded-Proto", "https , http")]);
        assert_eq!(resolve(&c, &h, PEER).1, Scheme::HTTP);
        let h = headers(&[("X-Forwarded-Proto", "unknown")]);
        assert_eq!(resolve(&c, &h, PEER).1, Scheme::HTTP);
        // ManualProtocolTest: a fixed protocol, overridden only by valid headers.
        let fixed = HttpServerConfig {
            protocol: Some(Scheme::HTTPS),
            ..HttpServerConfig::default()
        };
        assert_eq!(resolve(&fixed, &headers(&[]), PEER).1, Scheme::HTTPS);
    }

    #[test]
    #[cfg(feature = "gzip")]
    fn gzip_switch() {
        let mut h = headers(&[("Content-Encoding", "GZip")]);
        assert!(take_gzip(&mut h));
        assert!(h.header("content-encoding").is_none());
        assert_eq!(h.header("x-consumed-content-encoding"), Some("GZip"));
        let mut h = headers(&[("Content-Encoding", "br")]);
        assert!(!take_gzip(&mut h));
        assert_eq!(h.header("content-encoding"), Some("br"));
        let mut h = headers(&[("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")]);
        assert!(!take_gzip(&mut h), "gzip twice is not one gzip");
    }
}
