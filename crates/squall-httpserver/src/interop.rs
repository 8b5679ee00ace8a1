//! [`Response`] to and from the `http` crate's `Response`, so a handler can return
//! what a tower service, an axum handler or a client library built.

use bytes::Bytes;

use crate::handler::Response;

impl<B: Into<Bytes>> From<http::Response<B>> for Response {
    /// Status, headers and body; the version and extensions are left behind (the
    /// server answers in the request's version). The framing rules of [`Response`]
    /// apply when it is written: a `Transfer-Encoding` is refused, a `Content-Length`
    /// must match the body.
    fn from(res: http::Response<B>) -> Self {
        let (parts, body) = res.into_parts();
        Response {
            status: parts.status,
            headers: parts.headers,
            body: body.into(),
            upgrade: None,
        }
    }
}

impl From<Response> for http::Response<Bytes> {
    /// Status, headers and body, as HTTP/1.1.
    fn from(res: Response) -> Self {
        let mut out = http::Response::new(res.body);
        *out.status_mut() = res.status;
        *out.headers_mut() = res.headers;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn from_http_and_back() {
        let res = http::Response::builder()
            .status(StatusCode::CREATED)
            .header("Location", "/things/7")
            .header("Set-Cookie", "a=1")
            .header("Set-Cookie", "b=2")
            .body("made")
            .unwrap();
        let ours = Response::from(res);
        assert_eq!(ours.status, StatusCode::CREATED);
        assert_eq!(ours.headers["location"], "/things/7");
        assert_eq!(ours.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(&ours.body[..], b"made");
        let back: http::Response<Bytes> = ours.into();
        assert_eq!(back.status(), StatusCode::CREATED);
        assert_eq!(back.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(&back.body()[..], b"made");
        // Other body types convert too.
        let v = Response::from(http::Response::new(vec![1u8, 2, 3]));
        assert_eq!(&v.body[..], &[1, 2, 3]);
        assert_eq!(v.status, StatusCode::OK);
    }
}
