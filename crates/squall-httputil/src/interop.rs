//! [`HttpServerRequest`] to and from the `http` crate's `Request`, the type the rest
//! of the ecosystem (tower, axum, hyper, reqwest) speaks.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::Version;

use crate::head::{list_items, BodyKind, RequestHead};
use crate::request::HttpServerRequest;

/// What a squall request knows beyond the `http` crate's `Request`: the client's
/// address and the scheme. The conversion to `http::Request` puts it in the request's
/// extensions, and the conversion back reads it from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address, when known ([`HttpServerRequest::remote_addr`]).
    pub remote_addr: Option<IpAddr>,
    /// `http` or `https` ([`HttpServerRequest::protocol`]).
    pub protocol: String,
}

impl From<HttpServerRequest> for http::Request<Bytes> {
    /// Method, target, version, headers and body move over without a copy; the client's
    /// address and scheme go into the extensions as a [`ClientInfo`]. Parsed forms,
    /// cookies and timing stay behind.
    fn from(mut req: HttpServerRequest) -> Self {
        let info = ClientInfo {
            remote_addr: req.remote_addr(),
            protocol: req.protocol().to_owned(),
        };
        let mut out = http::Request::new(std::mem::take(&mut req.body));
        *out.uri_mut() = req.uri().clone();
        *out.headers_mut() = std::mem::take(req.headers_mut());
        *out.method_mut() = req.method;
        *out.version_mut() = req.version;
        out.extensions_mut().insert(info);
        out
    }
}

impl<B: Into<Bytes>> From<http::Request<B>> for HttpServerRequest {
    /// A request as the server would have built it from these parts (for calling a
    /// handler directly, in tests or from another server). The client's address and
    /// scheme come from a [`ClientInfo`] extension if there is one, else the address is
    /// unknown and the scheme is the URI's (`http` without one). The body is taken as
    /// whole (`Content-Length` framing), and the connection's keep-alive follows the
    /// version and the `Connection` header.
    fn from(req: http::Request<B>) -> Self {
        let (parts, body) = req.into_parts();
        let body: Bytes = body.into();
        let info = parts.extensions.get::<ClientInfo>();
        let remote_ip = info
            .and_then(|i| i.remote_addr)
            .map_or_else(String::new, |ip| ip.to_string());
        let protocol = match info {
            Some(i) => i.protocol.clone(),
            None => parts.uri.scheme_str().unwrap_or("http").to_owned(),
        };
        let keep_alive = keep_alive(parts.version, &parts.headers);
        let framing = if body.is_empty() {
            BodyKind::None
        } else {
            BodyKind::Length(body.len() as u64)
        };
        let head = RequestHead::from_parts(
            parts.method,
            parts.uri,
            parts.version,
            parts.headers,
            framing,
            keep_alive,
        );
        HttpServerRequest::new(head, body, remote_ip, protocol)
    }
}

/// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 only with
/// `Connection: keep-alive` (the body is whole here, so its framing never forbids it).
fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let has = |token: &[u8]| {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| list_items(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(token)))
    };
    if version == Version::HTTP_10 {
        has(b"keep-alive") && !has(b"close")
    } else {
        !has(b"close")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request};

    #[test]
    fn to_http_and_back_keeps_everything_that_travels() {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/upload?x=1")
            .version(Version::HTTP_11)
            .header("Content-Type", "text/plain")
            .header("X-Many", "a")
            .header("X-Many", "b")
            .extension(ClientInfo {
                remote_addr: Some("10.1.2.3".parse().unwrap()),
                protocol: "https".into(),
            })
            .body(Bytes::from_static(b"payload"))
            .unwrap();
        let ours = HttpServerRequest::from(req);
        assert_eq!(ours.method, Method::POST);
        assert_eq!(ours.path(), "/upload");
        assert_eq!(ours.query(), "x=1");
        assert_eq!(ours.remote_ip(), "10.1.2.3");
        assert_eq!(ours.protocol(), "https");
        assert_eq!(&ours.body[..], b"payload");
        assert_eq!(ours.headers().get_all("x-many").iter().count(), 2);

        let back: Request<Bytes> = ours.into();
        assert_eq!(back.method(), Method::POST);
        assert_eq!(back.uri(), "/upload?x=1");
        assert_eq!(back.version(), Version::HTTP_11);
        assert_eq!(back.headers()["content-type"], "text/plain");
        assert_eq!(back.headers().get_all("x-many").iter().count(), 2);
        assert_eq!(&back.body()[..], b"payload");
        let info = back.extensions().get::<ClientInfo>().unwrap();
        assert_eq!(info.remote_addr, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(info.protocol, "https");
    }

    #[test]
    fn without_client_info_the_scheme_comes_from_the_uri() {
        let ours = HttpServerRequest::from(
            Request::get("https://example.com/a")
                .body(Vec::<u8>::new())
                .unwrap(),
        );
        assert_eq!(ours.protocol(), "https");
        assert_eq!(ours.remote_ip(), "");
        assert_eq!(ours.remote_addr(), None);
        assert!(ours.body.is_empty());
        let plain = HttpServerRequest::from(Request::get("/a").body("").unwrap());
        assert_eq!(plain.protocol(), "http");
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let mut h = HeaderMap::new();
        assert!(keep_alive(Version::HTTP_11, &h));
        assert!(!keep_alive(Version::HTTP_10, &h));
        h.insert(header::CONNECTION, "Keep-Alive".parse().unwrap());
        assert!(keep_alive(Version::HTTP_10, &h));
        h.insert(header::CONNECTION, "foo, close".parse().unwrap());
        assert!(!keep_alive(Version::HTTP_11, &h));
    }
}
