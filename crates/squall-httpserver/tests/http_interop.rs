//! A handler written against the `http` crate's types, served by HttpServer through the
//! conversions: `HttpServerRequest` into `http::Request<Bytes>`, `http::Response` into
//! `Response`.

mod common;

use bytes::Bytes;
use common::serve;
use http::{Request, StatusCode};
use squall_httpserver::{HttpServer, HttpServerRequest, Response};
use squall_httputil::ClientInfo;

/// An "ecosystem" handler: it knows nothing of squall.
fn app(req: Request<Bytes>) -> http::Response<Bytes> {
    let info = req.extensions().get::<ClientInfo>().cloned();
    let client = info.map_or_else(
        || "?".to_owned(),
        |i| format!("{:?} {}", i.remote_addr, i.protocol),
    );
    let body = format!(
        "{} {} {:?} body={} client={client}",
        req.method(),
        req.uri(),
        req.version(),
        String::from_utf8_lossy(req.body())
    );
    http::Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("X-Handler", "http-crate")
        .body(Bytes::from(body))
        .unwrap()
}

fn squall_handler(req: HttpServerRequest) -> std::future::Ready<Response> {
    std::future::ready(Response::from(app(req.into())))
}

#[test]
fn an_http_crate_handler_behind_httpserver() {
    let server = serve(|| HttpServer::new(squall_handler));
    let mut c = server.client();
    let r = c.request(
        b"POST /form?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.header("x-handler"), Some("http-crate"));
    assert_eq!(
        r.text(),
        "POST /form?a=1 HTTP/1.1 body=hello client=Some(127.0.0.1) http"
    );
}
