//! Tornado's `httpclient_test.py` and `simple_httpclient_test.py`, in our words: the
//! client against squall's own server on the same loop, and against scripted bad
//! servers on threads.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, StatusCode};
use squall_httpclient::{
    BodyWriter, ClientConfig, HttpClient, HttpClientError, HttpRequest, TimeoutPhase,
};
use squall_httpserver::{HttpServer, HttpServerRequest, Response};
use squall_httputil::ParseError;
use squall_ioloop::IoLoop;

mod common;

fn arg(req: &HttpServerRequest, name: &str) -> Option<String> {
    req.query_arguments()
        .get(name)
        .and_then(|v| v.first())
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn header(req: &HttpServerRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The test application (Tornado's `HelloWorldHandler`, `EchoPostHandler`,
/// `CountdownHandler`, `AuthHandler`...).
async fn app(req: HttpServerRequest) -> Response {
    let path = req.path().to_owned();
    let with = |r: Response, name: &'static str, value: String| {
        r.with_header(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        )
    };
    match path.as_str() {
        "/hello" => Response::text("Hello world!"),
        "/echo" => with(
            Response::bytes(req.body.clone()),
            "x-method",
            req.method.to_string(),
        ),
        "/method" => Response::text(req.method.to_string()),
        "/redirect" => {
            let status: u16 = arg(&req, "status").map_or(302, |s| s.parse().unwrap());
            with(
                Response::new(StatusCode::from_u16(status).unwrap()),
                "location",
                arg(&req, "url").unwrap(),
            )
        }
        "/auth" => Response::text(header(&req, "authorization")),
        "/ua" => Response::text(header(&req, "user-agent")),
        "/expect" => Response::text(header(&req, "expect")),
        p if p.starts_with("/uri/") => Response::text(req.uri().to_string()),
        "/host" => Response::text(header(&req, "host")),
        "/if-modified-since" => Response::text(header(&req, "if-modified-since")),
        "/content-type" => Response::text(header(&req, "content-type")),
        "/gzip" => with(
            Response::bytes(gzip(b"compressed hello, ".repeat(100).as_slice())),
            "content-encoding",
            "gzip".into(),
        ),
        "/no-content" => Response::new(StatusCode::NO_CONTENT),
        "/not-modified" => Response::new(StatusCode::NOT_MODIFIED),
        "/status" => {
            let code: u16 = arg(&req, "code").unwrap().parse().unwrap();
            Response::text(format!("status {code}"))
                .with_status(StatusCode::from_u16(code).unwrap())
        }
        p if p.starts_with("/countdown/") => {
            let n: u32 = p["/countdown/".len()..].parse().unwrap();
            if n == 0 {
                Response::text("Zero")
            } else {
                with(
                    Response::new(StatusCode::FOUND),
                    "location",
                    format!("/countdown/{}", n - 1),
                )
            }
        }
        _ => Response::text("not found").with_status(StatusCode::NOT_FOUND),
    }
}

/// Run `test` on a fresh loop with the app listening on a free port, under a generous
/// timeout.
fn with_app<F, Fut>(test: F)
where
    F: FnOnce(HttpClient, String) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let mut server = HttpServer::new(app);
                let addr = server.listen(0, "127.0.0.1").unwrap();
                test(HttpClient::new(), format!("http://{addr}")).await;
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
}

#[test]
fn test_hello_world() {
    with_app(|client, base| async move {
        let r = client.fetch(format!("{base}/hello")).await.unwrap();
        assert_eq!(r.code, 200);
        assert_eq!(r.reason, "OK");
        assert_eq!(r.text(), "Hello world!");
        assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(r.effective_url, format!("{base}/hello"));
        assert_eq!(r.redirects, 0);
    });
}

#[test]
fn test_post_and_put() {
    with_app(|client, base| async move {
        for method in [Method::POST, Method::PUT, Method::PATCH] {
            let r = client
                .fetch(
                    HttpRequest::new(format!("{base}/echo"))
                        .method(method.clone())
                        .body("arg1=foo&arg2=bar"),
                )
                .await
                .unwrap();
            assert_eq!(r.text(), "arg1=foo&arg2=bar");
            assert_eq!(r.headers["x-method"], method.as_str());
        }
        // POST gets a form Content-Type unless it has one (Tornado does the same).
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/content-type"))
                    .method(Method::POST)
                    .body("x"),
            )
            .await
            .unwrap();
        assert_eq!(r.text(), "application/x-www-form-urlencoded");
    });
}

#[test]
fn test_large_body_round_trip() {
    with_app(|client, base| async move {
        let body = Bytes::from(vec![b'x'; 1 << 20]);
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/echo"))
                    .method(Method::POST)
                    .body(body.clone()),
            )
            .await
            .unwrap();
        assert_eq!(r.body, body);
    });
}

#[test]
fn test_non_2xx_is_an_error_unless_raise_error_false() {
    with_app(|client, base| async move {
        let e = client
            .fetch(format!("{base}/status?code=404"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), 404);
        assert_eq!(e.to_string(), "HTTP 404: Not Found");
        assert_eq!(e.response().unwrap().text(), "status 404");
        let r = client
            .fetch(HttpRequest::new(format!("{base}/status?code=500")).raise_error(false))
            .await
            .unwrap();
        assert_eq!(r.code, 500);
        assert_eq!(r.text(), "status 500");
        assert_eq!(r.rethrow().unwrap_err().code(), 500);
    });
}

#[test]
fn test_follow_redirect_and_max_redirects() {
    with_app(|client, base| async move {
        let r = client.fetch(format!("{base}/countdown/2")).await.unwrap();
        assert_eq!(r.text(), "Zero");
        assert_eq!(r.redirects, 2);
        assert!(r.effective_url.ends_with("/countdown/0"));
        // One redirect too few: the last redirect is the answer, an error by default.
        let e = client
            .fetch(HttpRequest::new(format!("{base}/countdown/2")).max_redirects(1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), 302);
        assert!(e
            .response()
            .unwrap()
            .effective_url
            .ends_with("/countdown/1"));
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/countdown/2"))
                    .follow_redirects(false)
                    .raise_error(false),
            )
            .await
            .unwrap();
        assert_eq!(r.code, 302);
        assert_eq!(r.headers["location"], "/countdown/1");
    });
}

#[test]
fn test_303_and_302_after_post_become_get() {
    with_app(|client, base| async move {
        for status in [301, 302, 303] {
            let r = client
                .fetch(
                    HttpRequest::new(format!("{base}/redirect?url=/echo&status={status}"))
                        .method(Method::POST)
                        .body("payload"),
                )
                .await
                .unwrap();
            assert_eq!(r.headers["x-method"], "GET", "status {status}");
            assert_eq!(r.text(), "", "the body is dropped after {status}");
        }
        // 307 and 308 keep the method and the body.
        for status in [307, 308] {
            let r = client
                .fetch(
                    HttpRequest::new(format!("{base}/redirect?url=/echo&status={status}"))
                        .method(Method::POST)
                        .body("payload"),
                )
                .await
                .unwrap();
            assert_eq!(r.headers["x-method"], "POST");
            assert_eq!(r.text(), "payload");
        }
        // 303 after HEAD stays HEAD.
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/redirect?url=/method&status=303"))
                    .method(Method::HEAD),
            )
            .await
            .unwrap();
        assert_eq!(r.body.len(), 0);
    });
}

#[test]
fn test_streaming_callback() {
    with_app(|client, base| async move {
        let chunks = Rc::new(RefCell::new(Vec::new()));
        let sink = chunks.clone();
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/hello"))
                    .streaming_callback(move |c| sink.borrow_mut().extend_from_slice(&c)),
            )
            .await
            .unwrap();
        assert_eq!(&chunks.borrow()[..], b"Hello world!");
        assert!(r.body.is_empty(), "the body went to the callback");
    });
}

#[test]
fn test_header_callback() {
    with_app(|client, base| async move {
        let lines = Rc::new(RefCell::new(Vec::<String>::new()));
        let sink = lines.clone();
        client
            .fetch(
                HttpRequest::new(format!("{base}/countdown/1"))
                    .header_callback(move |l| sink.borrow_mut().push(l.to_owned())),
            )
            .await
            .unwrap();
        let lines = lines.borrow();
        // Only the final response's head, not the redirect's.
        assert_eq!(lines[0], "HTTP/1.1 200 OK\r\n");
        assert!(lines
            .iter()
            .any(|l| l.eq_ignore_ascii_case("content-length: 4\r\n")));
        assert_eq!(lines.last().unwrap(), "\r\n");
        assert_eq!(lines.iter().filter(|l| l.starts_with("HTTP/")).count(), 1);
    });
}

/// With `decompress_response`, `header_callback` sees the head the body it is handed
/// goes with: `X-Consumed-Content-Encoding: gzip` in place of `Content-Encoding`, as
/// Tornado renames it first; without, the original. (It saw `Content-Encoding: gzip`
/// beside an inflated body.)
#[test]
fn test_header_callback_sees_the_consumed_encoding() {
    with_app(|client, base| async move {
        for decompress in [true, false] {
            let lines = Rc::new(RefCell::new(Vec::<String>::new()));
            let sink = lines.clone();
            let body = Rc::new(RefCell::new(Vec::new()));
            let chunks = body.clone();
            let r = client
                .fetch(
                    HttpRequest::new(format!("{base}/gzip"))
                        .decompress_response(decompress)
                        .header_callback(move |l| sink.borrow_mut().push(l.to_owned()))
                        .streaming_callback(move |d| chunks.borrow_mut().extend_from_slice(&d)),
                )
                .await
                .unwrap();
            let lines = lines.borrow();
            let has = |line: &str| lines.iter().any(|l| l.eq_ignore_ascii_case(line));
            assert_eq!(
                has("x-consumed-content-encoding: gzip\r\n"),
                decompress,
                "{lines:?}"
            );
            assert_eq!(has("content-encoding: gzip\r\n"), !decompress, "{lines:?}");
            assert_eq!(
                r.headers.contains_key("x-consumed-content-encoding"),
                decompress
            );
            let inflated = body.borrow().starts_with(b"compressed hello");
            assert_eq!(inflated, decompress);
        }
    });
}

#[test]
fn test_body_producer() {
    with_app(|client, base| async move {
        let producer = |w: BodyWriter| async move {
            w.write("all").await?;
            w.write(" the ").await?;
            w.write("data").await?;
            Ok(())
        };
        // Chunked without a Content-Length...
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/echo"))
                    .method(Method::PUT)
                    .body_producer(producer),
            )
            .await
            .unwrap();
        assert_eq!(r.text(), "all the data");
        // ...and counted with one.
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/echo"))
                    .method(Method::POST)
                    .header("content-length", "12")
                    .body_producer(producer),
            )
            .await
            .unwrap();
        assert_eq!(r.text(), "all the data");
        // A producer that writes more than its Content-Length fails the fetch.
        let e = client
            .fetch(
                HttpRequest::new(format!("{base}/echo"))
                    .method(Method::POST)
                    .header("content-length", "3")
                    .body_producer(producer),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, HttpClientError::InvalidRequest(_)), "{e:?}");
        // A producer's own error comes back as it was.
        let e = client
            .fetch(
                HttpRequest::new(format!("{base}/echo"))
                    .method(Method::POST)
                    .body_producer(|_w| async { Err("no more data".into()) }),
            )
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "body producer failed: no more data");
    });
}

#[test]
fn test_expect_100_continue() {
    with_app(|client, base| async move {
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/echo"))
                    .method(Method::POST)
                    .body("after continue")
                    .expect_100_continue(true),
            )
            .await
            .unwrap();
        assert_eq!(r.text(), "after continue");
        // No expectation without content (RFC 9110 §10.1.1): an empty body goes at once.
        for (body, expect) in [("", ""), ("x", "100-continue")] {
            let r = client
                .fetch(
                    HttpRequest::new(format!("{base}/expect"))
                        .method(Method::POST)
                        .body(body)
                        .expect_100_continue(true),
                )
                .await
                .unwrap();
            assert_eq!(r.text(), expect, "body {body:?}");
        }
    });
}

#[test]
fn test_gzip() {
    with_app(|client, base| async move {
        let r = client.fetch(format!("{base}/gzip")).await.unwrap();
        assert_eq!(r.body, b"compressed hello, ".repeat(100));
        assert_eq!(r.headers["x-consumed-content-encoding"], "gzip");
        assert!(r.headers.get("content-encoding").is_none());
        let r = client
            .fetch(HttpRequest::new(format!("{base}/gzip")).decompress_response(false))
            .await
            .unwrap();
        assert_eq!(r.headers["content-encoding"], "gzip");
        assert_eq!(&r.body[..2], &[0x1f, 0x8b]);
    });
}

#[test]
fn test_basic_auth_and_user_agent() {
    with_app(|client, base| async move {
        let r = client
            .fetch(HttpRequest::new(format!("{base}/auth")).basic_auth("Aladdin", "open sesame"))
            .await
            .unwrap();
        assert_eq!(r.text(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let url = base.replace("http://", "http://Aladdin:open%20sesame@");
        let r = client.fetch(format!("{url}/auth")).await.unwrap();
        assert_eq!(r.text(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let r = client
            .fetch(HttpRequest::new(format!("{base}/ua")).user_agent("TestDefaultUserAgent"))
            .await
            .unwrap();
        assert_eq!(r.text(), "TestDefaultUserAgent");
        let r = client.fetch(format!("{base}/ua")).await.unwrap();
        assert!(r.text().starts_with("squall/"));
        // The option wins over a header, as Tornado's `user_agent`.
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/ua"))
                    .header("user-agent", "FromHeader")
                    .user_agent("FromOption"),
            )
            .await
            .unwrap();
        assert_eq!(r.text(), "FromOption");
        // Tornado's test_basic_auth_unicode: the credentials in NFC (RFC 7617 §2.1).
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/auth"))
                    .basic_auth("jose\u{301}", "s\u{259}cr\u{259}t"),
            )
            .await
            .unwrap();
        assert_eq!(r.text(), "Basic am9zw6k6c8mZY3LJmXQ=");
    });
}

/// Tornado's test_zero_timeout: a zero connect or request timeout means none.
#[test]
fn test_zero_timeouts_mean_none() {
    with_app(|client, base| async move {
        let url = format!("{base}/hello");
        // And `Duration::MAX` is no limit either (it overflowed an `Instant` once).
        let (none, max, t) = (Duration::ZERO, Duration::MAX, Duration::from_secs(20));
        for (connect, request) in [(none, none), (none, t), (t, none), (max, max)] {
            let r = client
                .fetch(
                    HttpRequest::new(url.as_str())
                        .connect_timeout(connect)
                        .request_timeout(request),
                )
                .await
                .unwrap();
            assert_eq!(r.code, 200);
        }
    });
}

#[test]
fn test_allow_nonstandard_methods() {
    with_app(|client, base| async move {
        let e = client
            .fetch(HttpRequest::new(format!("{base}/echo")).body("x"))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("Body must be None for method GET"),
            "{e}"
        );
        let e = client
            .fetch(HttpRequest::new(format!("{base}/echo")).method(Method::POST))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Body must not be None"), "{e}");
        let other = Method::from_bytes(b"OTHER").unwrap();
        assert!(client
            .fetch(HttpRequest::new(format!("{base}/method")).method(other.clone()))
            .await
            .is_err());
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/method"))
                    .method(other)
                    .allow_nonstandard_methods(true),
            )
            .await
            .unwrap();
        assert_eq!(r.text(), "OTHER");
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/echo"))
                    .body("get with a body")
                    .allow_nonstandard_methods(true),
            )
            .await
            .unwrap();
        assert_eq!(r.text(), "get with a body");
    });
}

#[test]
fn test_head_204_304_have_no_body() {
    with_app(|client, base| async move {
        let r = client
            .fetch(HttpRequest::new(format!("{base}/hello")).method(Method::HEAD))
            .await
            .unwrap();
        assert_eq!(r.headers["content-length"], "12");
        assert!(r.body.is_empty());
        let r = client.fetch(format!("{base}/no-content")).await.unwrap();
        assert_eq!(r.code, 204);
        let r = client
            .fetch(HttpRequest::new(format!("{base}/not-modified")).raise_error(false))
            .await
            .unwrap();
        assert_eq!(r.code, 304);
        // The connection is still good for the next request.
        assert_eq!(
            client.fetch(format!("{base}/hello")).await.unwrap().text(),
            "Hello world!"
        );
    });
}

#[test]
fn test_keep_alive_reuses_one_connection() {
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let mut server = HttpServer::new(app);
                let addr = server.listen(0, "127.0.0.1").unwrap();
                let client = HttpClient::new();
                for _ in 0..5 {
                    client.fetch(format!("http://{addr}/hello")).await.unwrap();
                }
                assert_eq!(server.stats().connections_accepted(), 1);
                assert_eq!(client.idle_connections(), 1);
                client.close();
                assert_eq!(client.idle_connections(), 0);
                assert!(matches!(
                    client.fetch(format!("http://{addr}/hello")).await,
                    Err(HttpClientError::Closed)
                ));
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
}

/// One request fetched several times (Tornado's `test_reuse_request_from_response`
/// fetches a response's request again): a clone goes out as the original would, body,
/// headers, producer and callbacks included, and the request is left as it was built.
#[test]
fn test_reuse_of_a_request() {
    with_app(|client, base| async move {
        let posted = HttpRequest::new(format!("{base}/echo"))
            .method(Method::POST)
            .header("x-kept", "yes")
            .body("the same body");
        for _ in 0..2 {
            let r = client.fetch(posted.clone()).await.unwrap();
            assert_eq!(r.text(), "the same body");
            assert_eq!(r.headers["x-method"], "POST");
        }
        assert_eq!(posted.url(), format!("{base}/echo"));
        let r = client.fetch(posted).await.unwrap();
        assert_eq!(r.text(), "the same body");

        // A producer runs again for each clone; a callback is shared by the clones.
        let chunks = Rc::new(RefCell::new(Vec::new()));
        let seen = chunks.clone();
        let produced = HttpRequest::new(format!("{base}/echo"))
            .method(Method::PUT)
            .body_producer(|w: BodyWriter| async move {
                w.write("made ").await?;
                w.write("again").await?;
                Ok(())
            })
            .streaming_callback(move |b| seen.borrow_mut().push(b));
        for _ in 0..2 {
            let r = client.fetch(produced.clone()).await.unwrap();
            assert!(r.body.is_empty());
        }
        assert_eq!(chunks.borrow().concat(), b"made againmade again");
    });
}

/// Tornado's `HTTPRequest(if_modified_since=...)` (HTTPRequestTestCase's
/// test_if_modified_since): the time goes out as an `If-Modified-Since` HTTP date.
#[test]
fn test_if_modified_since() {
    with_app(|client, base| async move {
        let when = std::time::UNIX_EPOCH + Duration::from_secs(1_359_312_200);
        let r = client
            .fetch(HttpRequest::new(format!("{base}/if-modified-since")).if_modified_since(when))
            .await
            .unwrap();
        assert_eq!(r.text(), "Sun, 27 Jan 2013 18:43:20 GMT");
    });
}

/// A URL with characters a request line may not hold raw (UTF-8, a space) is sent
/// percent-encoded, as a browser sends it. (It went out raw and servers answered 400.)
#[test]
fn test_non_ascii_url_is_percent_encoded() {
    with_app(|client, base| async move {
        let r = client
            .fetch(format!("{base}/uri/caf\u{e9} au lait?sucre=\u{e0} part"))
            .await
            .unwrap();
        assert_eq!(r.text(), "/uri/caf%C3%A9%20au%20lait?sucre=%C3%A0%20part");
    });
}

#[test]
fn test_invalid_urls() {
    with_app(|client, _base| async move {
        for url in ["not a url", "ftp://example.com/", "/relative", "http://"] {
            let e = client.fetch(url).await.unwrap_err();
            assert!(
                matches!(e, HttpClientError::InvalidRequest(_)),
                "{url}: {e:?}"
            );
        }
        let e = client
            .fetch(HttpRequest::new("http://127.0.0.1/").header("bad name", "v"))
            .await
            .unwrap_err();
        assert!(matches!(e, HttpClientError::InvalidRequest(_)));
    });
}

#[test]
fn test_connection_refused() {
    // A port nobody listens on: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    with_app(move |client, _base| async move {
        let e = client
            .fetch(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap_err();
        match &e {
            HttpClientError::Connect(io) => {
                assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.code(), 599);
    });
}

/// What a scripted server does after reading a request head.
enum Then {
    /// Write these bytes, then close.
    Reply(&'static [u8]),
    /// Write these bytes, then reset the connection (RST, SO_LINGER 0).
    ReplyReset(&'static [u8]),
    /// Write these bytes, then wait for the client to close.
    ReplyHold(&'static [u8]),
    /// Write these bytes, then read nothing more (a request body stays unread) until
    /// the sender of the channel is dropped, then read until the client closes.
    ReplyStall(&'static [u8], mpsc::Receiver<()>),
}

/// A server on a thread that answers each connection in turn with one script.
fn scripted(scripts: Vec<Then>) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        for script in scripts {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            match script {
                Then::Reply(b) => {
                    let _ = s.write_all(b);
                }
                Then::ReplyReset(b) => {
                    let _ = s.write_all(b);
                    let sock = socket2::SockRef::from(&s);
                    sock.set_linger(Some(Duration::ZERO)).unwrap();
                }
                Then::ReplyHold(b) => {
                    let _ = s.write_all(b);
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                }
                Then::ReplyStall(b, release) => {
                    let _ = s.write_all(b);
                    let _ = release.recv();
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                }
            }
        }
    });
    (addr, handle)
}

fn fetch_from(
    scripts: Vec<Then>,
    request: impl FnOnce(String) -> HttpRequest + 'static,
) -> Result<squall_httpclient::HttpResponse, HttpClientError> {
    let (addr, thread) = scripted(scripts);
    let io_loop = IoLoop::new().unwrap();
    let result = io_loop
        .run_sync(
            async move {
                HttpClient::new()
                    .fetch(request(format!("http://{addr}/")))
                    .await
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    drop(io_loop);
    thread.join().unwrap();
    result
}

#[test]
fn test_garbage_response() {
    let e = fetch_from(
        vec![Then::Reply(b"this is not HTTP\r\n\r\n")],
        HttpRequest::new,
    )
    .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Response(ParseError::InvalidVersion)),
        "{e:?}"
    );
}

#[test]
fn test_body_shorter_than_content_length() {
    let e = fetch_from(
        vec![Then::Reply(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        )],
        HttpRequest::new,
    )
    .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Response(ParseError::IncompleteMessage)),
        "{e:?}"
    );
}

/// Bytes past the end of a response (a body longer than its Content-Length) are
/// discarded with the connection (RFC 9112 §6.3, as Tornado, curl and hyper do): the
/// response stands, and the next fetch goes out on a new connection, never reading
/// the stray bytes as its answer. (They were an error when they came in the same read
/// as the response's end, and not when they came later.)
#[test]
fn test_body_longer_than_content_length() {
    let (addr, thread) = scripted(vec![
        Then::ReplyHold(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef"),
        Then::ReplyHold(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    let io_loop = IoLoop::new().unwrap();
    let (first, idle, second) = io_loop
        .run_sync(
            async move {
                let client = HttpClient::new();
                let url = format!("http://{addr}/");
                let first = client.fetch(HttpRequest::new(url.clone())).await.unwrap();
                let idle = client.idle_connections();
                let second = client.fetch(HttpRequest::new(url)).await.unwrap();
                (first, idle, second)
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    drop(io_loop);
    thread.join().unwrap();
    assert_eq!(first.text(), "abc");
    assert_eq!(idle, 0, "a connection with stray bytes is not kept");
    assert_eq!(second.text(), "ok");
}

/// A server that closes before any byte of its answer fails the fetch as a closed
/// stream (Tornado's `HTTPStreamClosedError`), with a message that says so; a response
/// cut after it began is an incomplete response. (The first was an incomplete
/// response too, where the error's doc said a closed stream.)
#[test]
fn test_close_before_answering_is_a_stream_error() {
    let e = fetch_from(vec![Then::Reply(b"")], HttpRequest::new).unwrap_err();
    match &e {
        HttpClientError::Stream(s) => assert!(
            matches!(s.close_cause(), Some(squall_iostream::CloseCause::Eof)),
            "{e:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.code(), 599);
    assert_eq!(
        e.to_string(),
        "Stream closed: the server closed the connection (end of file)"
    );
    // A POST is not sent again either way (no kept connection here): same error.
    let e = fetch_from(vec![Then::Reply(b"")], |url| {
        HttpRequest::new(url).method(Method::POST).body("x")
    })
    .unwrap_err();
    assert!(matches!(e, HttpClientError::Stream(_)), "{e:?}");
    let e = fetch_from(
        vec![Then::Reply(b"HTTP/1.1 200 OK\r\nContent-")],
        HttpRequest::new,
    )
    .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Response(ParseError::IncompleteMessage)),
        "{e:?}"
    );
}

#[test]
fn test_reset_mid_body() {
    let e = fetch_from(
        vec![Then::ReplyReset(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
        )],
        HttpRequest::new,
    )
    .unwrap_err();
    // A reset, or (if the kernel delivered the data and the RST apart) the end of the
    // stream cut short: either way a typed error naming the cause.
    match &e {
        HttpClientError::Stream(s) => {
            assert_eq!(
                s.io_error().map(|e| e.kind()),
                Some(std::io::ErrorKind::ConnectionReset)
            )
        }
        HttpClientError::Response(ParseError::IncompleteMessage) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_server_never_answers() {
    let e = fetch_from(vec![Then::ReplyHold(b"")], |url| {
        HttpRequest::new(url).request_timeout(Duration::from_millis(200))
    })
    .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Timeout(TimeoutPhase::Request)),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "Timeout during request");
}

#[test]
fn test_close_delimited_http10() {
    let r = fetch_from(
        vec![Then::Reply(
            b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the close",
        )],
        HttpRequest::new,
    )
    .unwrap();
    assert_eq!(r.text(), "until the close");
    assert_eq!(r.version, http::Version::HTTP_10);
}

#[test]
fn test_chunked_with_trailers() {
    let r = fetch_from(
        vec![Then::Reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Checksum: 1\r\n\r\n",
        )],
        HttpRequest::new,
    )
    .unwrap();
    assert_eq!(r.text(), "Wikipedia");
    assert_eq!(r.trailers["x-checksum"], "1");
}

#[test]
fn test_chunked_with_content_length() {
    let e = fetch_from(
        vec![Then::Reply(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        )],
        HttpRequest::new,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        HttpClientError::Response(ParseError::ContentLengthAndTransferEncoding)
    ));
}

#[test]
fn test_head_too_large() {
    let e = fetch_from(
        vec![Then::Reply(
            b"HTTP/1.1 200 OK\r\nX-Big: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
        )],
        |url| HttpRequest::new(url).max_header_size(64),
    )
    .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Response(ParseError::HeadTooLarge)),
        "{e:?}"
    );
}

#[test]
fn test_body_over_max_body_size() {
    let e = fetch_from(
        vec![Then::Reply(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
        )],
        |url| HttpRequest::new(url).max_body_size(5),
    )
    .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Response(ParseError::BodyTooLarge)),
        "{e:?}"
    );
}

/// A stream of interim responses is held to the head cap, as a head without end is:
/// the interim heads count together with the final one. (It went on until the request
/// timeout.)
#[test]
fn test_interim_response_storm() {
    let storm: &'static [u8] = Box::leak(b"HTTP/1.1 100 Continue\r\n\r\n".repeat(100).into());
    let e = fetch_from(vec![Then::ReplyHold(storm)], |url| {
        HttpRequest::new(url)
            .max_header_size(1024)
            .request_timeout(Duration::from_secs(20))
    })
    .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Response(ParseError::HeadTooLarge)),
        "{e:?}"
    );
}

/// A kept connection the server closed is noticed, and the request goes out on a new
/// one.
#[test]
fn test_stale_keep_alive_connection_is_replaced() {
    let (addr, thread) = scripted(vec![
        Then::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"),
        Then::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"),
    ]);
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let client = HttpClient::new();
                let url = format!("http://{addr}/");
                assert_eq!(client.fetch(url.as_str()).await.unwrap().text(), "first");
                assert_eq!(client.fetch(url.as_str()).await.unwrap().text(), "second");
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    thread.join().unwrap();
}

/// A server may answer before it has read the request body, and then read no more of
/// it: the client reads while it sends, returns the answer and stops sending, with or
/// without `100 Continue` first. (It once wrote the whole body before reading, and
/// waited for the request timeout.)
#[test]
fn test_answer_before_the_body_is_sent() {
    const TOO_LARGE: &[u8] =
        b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo much";
    const CONTINUE_THEN_TOO_LARGE: &[u8] =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo much";
    let (first_done, first) = mpsc::channel();
    let (second_done, second) = mpsc::channel();
    let (addr, thread) = scripted(vec![
        Then::ReplyStall(TOO_LARGE, first),
        Then::ReplyStall(CONTINUE_THEN_TOO_LARGE, second),
    ]);
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let client = HttpClient::new();
                for (expect_continue, done) in [(false, first_done), (true, second_done)] {
                    let request = HttpRequest::new(format!("http://{addr}/upload"))
                        .expect_100_continue(expect_continue);
                    common::upload_answered_early(&client, request).await;
                    // The half-sent connection is not kept.
                    assert_eq!(client.idle_connections(), 0);
                    drop(done);
                }
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    thread.join().unwrap();
}

/// A fetch that times out while its body is still going out closes the connection
/// then: the upload stops when the fetch returns. (The dropped stream went on sending
/// the queued body for up to 30 s after the timeout.)
#[test]
fn test_timed_out_upload_stops() {
    let (release, stalled) = mpsc::channel();
    let (addr, thread) = scripted(vec![Then::ReplyStall(b"", stalled)]);
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let e = HttpClient::new()
                    .fetch(
                        HttpRequest::new(format!("http://{addr}/upload"))
                            .method(Method::PUT)
                            .body(vec![b'x'; 64 << 20])
                            .request_timeout(Duration::from_millis(200)),
                    )
                    .await
                    .unwrap_err();
                assert!(
                    matches!(e, HttpClientError::Timeout(TimeoutPhase::Request)),
                    "{e:?}"
                );
                // The server now reads to the end of the connection, with this loop
                // blocked: only a connection closed already can end.
                drop(release);
                assert!(
                    squall_testing::wait_until(Duration::from_secs(20), || thread.is_finished()),
                    "the connection was still open after the fetch returned"
                );
                thread.join().unwrap();
            },
            Some(Duration::from_secs(60)),
        )
        .unwrap();
}

/// An idle connection is closed once it has idled `idle_timeout`, whether or not
/// another request goes to its host. (It stayed open until the next request to the same
/// host, or as long as the client lived.)
#[test]
fn test_idle_connections_expire() {
    let (addr, thread) = scripted(vec![Then::ReplyHold(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )]);
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let mut config = ClientConfig::default();
                config.idle_timeout = Duration::from_millis(50);
                let client = HttpClient::with_config(config);
                client.fetch(format!("http://{addr}/")).await.unwrap();
                assert_eq!(client.idle_connections(), 1);
                // Timers run in deadline order: the pool's comes first.
                squall_ioloop::sleep(Duration::from_millis(200)).await;
                assert_eq!(client.idle_connections(), 0);
                // The server sees the close while the client lives on.
                assert!(
                    squall_testing::wait_until(Duration::from_secs(20), || thread.is_finished()),
                    "the idle connection is still open"
                );
                thread.join().unwrap();
                drop(client);
            },
            Some(Duration::from_secs(60)),
        )
        .unwrap();
}

/// Tornado's `test_queue_timeout`: with `max_clients` busy, a queued request times out
/// in the queue, with its own message.
#[test]
fn test_queue_timeout() {
    let (addr, thread) = scripted(vec![Then::ReplyHold(b"")]);
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let client = HttpClient::with_config(ClientConfig::default().with_max_clients(1));
                let url = format!("http://{addr}/");
                let busy = {
                    let client = client.clone();
                    let url = url.clone();
                    squall_ioloop::IoLoop::current().unwrap().spawn(async move {
                        client
                            .fetch(HttpRequest::new(url).request_timeout(Duration::from_secs(2)))
                            .await
                    })
                };
                // Let the first request take the only slot (a yield to the loop, not a
                // wait for time to pass).
                while client.active() == 0 {
                    squall_ioloop::sleep(Duration::ZERO).await;
                }
                let e = client
                    .fetch(
                        HttpRequest::new(url.as_str()).connect_timeout(Duration::from_millis(100)),
                    )
                    .await
                    .unwrap_err();
                assert!(
                    matches!(e, HttpClientError::Timeout(TimeoutPhase::Queue)),
                    "{e:?}"
                );
                assert_eq!(e.to_string(), "Timeout in request queue");
                let first = busy.await.unwrap().unwrap_err();
                assert!(matches!(
                    first,
                    HttpClientError::Timeout(TimeoutPhase::Request)
                ));
                assert_eq!(client.queued(), 0);
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    thread.join().unwrap();
}

/// The `CONNECT` tunnel through a proxy: opened on 200, refused with the proxy's status,
/// and refused when bytes follow the proxy's answer before the tunnel is used (the error
/// says so, not that a body outran its Content-Length).
#[test]
fn test_connect_tunnel() {
    let (addr, thread) = scripted(vec![
        Then::ReplyHold(b"HTTP/1.1 200 Connection established\r\n\r\n"),
        Then::Reply(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"),
        Then::ReplyHold(b"HTTP/1.1 200 Connection established\r\n\r\nXYZ"),
    ]);
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let proxy = squall_httpclient::Proxy::parse(&format!("http://u:p@{addr}")).unwrap();
                assert_eq!(proxy.auth, Some(("u".into(), "p".into())));
                let stream = squall_iostream::IoStream::connect(addr).await.unwrap();
                squall_httpclient::connect_tunnel(&stream, &proxy, "example.com", 443)
                    .await
                    .unwrap();
                stream.close();
                let stream = squall_iostream::IoStream::connect(addr).await.unwrap();
                let e = squall_httpclient::connect_tunnel(&stream, &proxy, "::1", 443)
                    .await
                    .unwrap_err();
                assert!(matches!(e, HttpClientError::Proxy(s) if s == 407), "{e:?}");
                let stream = squall_iostream::IoStream::connect(addr).await.unwrap();
                let e = squall_httpclient::connect_tunnel(&stream, &proxy, "example.com", 443)
                    .await
                    .unwrap_err();
                assert!(matches!(e, HttpClientError::ExtraData { len: 3 }), "{e:?}");
                assert_eq!(
                    e.to_string(),
                    "3 bytes after the proxy's answer to CONNECT, before the tunnel was used"
                );
                stream.close();
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    thread.join().unwrap();
}

/// Tornado's `test_connect_timeout`: a server whose accept queue is full never completes
/// the handshake, and the fetch fails with the connect phase named, well before its
/// request timeout.
#[test]
#[cfg(target_os = "linux")]
fn test_connect_timeout() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    // Fill the accept queue: connections that complete are held; the first one that
    // times out shows the queue is full (Linux drops further SYNs).
    let mut held = Vec::new();
    loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
        assert!(held.len() < 64, "the accept queue never filled");
    }
    let io_loop = IoLoop::new().unwrap();
    let e = io_loop
        .run_sync(
            async move {
                HttpClient::new()
                    .fetch(
                        HttpRequest::new(format!("http://{addr}/"))
                            .connect_timeout(Duration::from_millis(200))
                            .request_timeout(Duration::from_secs(20)),
                    )
                    .await
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Timeout(TimeoutPhase::Connect)),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "Timeout while connecting");
    drop(held);
}

/// The connect phase is the whole connection, a proxy's `CONNECT` tunnel included: a
/// proxy that takes the connection and never answers the CONNECT fails the fetch within
/// `connect_timeout` (the tunnel once waited for the request timeout), and when the
/// request timeout is the shorter one it still names the phase it ended.
#[test]
fn test_connect_timeout_covers_a_proxy_tunnel() {
    for (connect, request) in [(200, 20_000), (20_000, 200)] {
        let e = fetch_from(vec![Then::ReplyHold(b"")], move |proxy| {
            HttpRequest::new("https://example.com/")
                .proxy(squall_httpclient::Proxy::parse(&proxy).unwrap())
                .connect_timeout(Duration::from_millis(connect))
                .request_timeout(Duration::from_millis(request))
        })
        .unwrap_err();
        assert!(
            matches!(e, HttpClientError::Timeout(TimeoutPhase::Connect)),
            "connect {connect} ms, request {request} ms: {e:?}"
        );
    }
}

/// Tornado's `test_redirect_connection_limit`: with one slot, a redirect does not wait
/// for the slot its own first request holds.
#[test]
fn test_redirect_connection_limit() {
    with_app(|_client, base| async move {
        let client = HttpClient::with_config(ClientConfig::default().with_max_clients(1));
        let r = client.fetch(format!("{base}/countdown/3")).await.unwrap();
        assert_eq!(r.text(), "Zero");
        assert_eq!(client.active(), 0);
    });
}

/// Tornado's `test_streaming_follow_redirects`: the streaming callback sees only the
/// final body.
#[test]
fn test_streaming_follow_redirects() {
    with_app(|client, base| async move {
        let chunks = Rc::new(RefCell::new(Vec::new()));
        let sink = chunks.clone();
        let r = client
            .fetch(
                HttpRequest::new(format!("{base}/redirect?url=/hello&status=302"))
                    .streaming_callback(move |c| sink.borrow_mut().extend_from_slice(&c)),
            )
            .await
            .unwrap();
        assert_eq!(&chunks.borrow()[..], b"Hello world!");
        assert_eq!(r.redirects, 1);
    });
}

/// Tornado's `test_host_header` and `test_response_times`.
#[test]
fn test_host_header_and_request_time() {
    with_app(|client, base| async move {
        let r = client.fetch(format!("{base}/host")).await.unwrap();
        assert_eq!(r.text(), base.trim_start_matches("http://"));
        assert!(r.request_time > Duration::ZERO);
        // A Host of the caller's own is kept.
        let r = client
            .fetch(HttpRequest::new(format!("{base}/host")).header("host", "example.com"))
            .await
            .unwrap();
        assert_eq!(r.text(), "example.com");
    });
}

/// Tornado's `test_ipv6`: a bracketed IPv6 literal, where the machine has `::1`.
#[test]
fn test_ipv6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("!!! SKIPPED test_ipv6: no IPv6 loopback on this machine");
        return;
    }
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let mut server = HttpServer::new(app);
                let addr = server.listen(0, "::1").unwrap();
                let url = format!("http://[::1]:{}/host", addr.port());
                // Tornado's test_ipv6: IPv6 is allowed unless the request says not.
                let e = HttpClient::new()
                    .fetch(HttpRequest::new(&url).allow_ipv6(false))
                    .await
                    .unwrap_err();
                assert!(matches!(e, HttpClientError::Connect(_)), "{e:?}");
                let r = HttpClient::new().fetch(url.as_str()).await.unwrap();
                assert_eq!(r.text(), format!("[::1]:{}", addr.port()));
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
}

/// Tornado's test_bind_source_ip: `network_interface` names the local address the
/// connection is made from (the simple client takes an IP address), and a value that is
/// no IP address fails the fetch naming it. A kept connection serves only requests
/// from the same source, and `allow_ipv6(false)` connects to a name's IPv4 addresses.
/// (Neither option existed; the crate's doc called `network_interface` curl-only.)
#[test]
fn test_network_interface_and_allow_ipv6() {
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let mut server = HttpServer::new(|req: HttpServerRequest| async move {
                    Response::text(req.remote_ip().to_owned())
                });
                let addr = server.listen(0, "127.0.0.1").unwrap();
                let url = format!("http://{addr}/");
                let client = HttpClient::new();
                // All of 127.0.0.0/8 is the loopback on Linux; elsewhere 127.0.0.1 only.
                let source = if cfg!(target_os = "linux") { "127.0.0.2" } else { "127.0.0.1" };
                for _ in 0..2 {
                    let r = client
                        .fetch(HttpRequest::new(&url).network_interface(source))
                        .await
                        .unwrap();
                    assert_eq!(r.text(), source);
                }
                let r = client.fetch(url.as_str()).await.unwrap();
                assert_eq!(r.text(), "127.0.0.1");
                assert_eq!(server.stats().connections_accepted(), 2);
                let e = client
                    .fetch(HttpRequest::new(&url).network_interface("not-interface-or-ip"))
                    .await
                    .unwrap_err();
                assert!(
                    matches!(&e, HttpClientError::InvalidRequest(m) if m.contains("not-interface-or-ip")),
                    "{e:?}"
                );
                let r = client
                    .fetch(
                        HttpRequest::new(format!("http://localhost:{}/", addr.port()))
                            .allow_ipv6(false),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.text(), "127.0.0.1");
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
}

/// An empty body announced as gzip (a HEAD, a 204 or 304, a zero length: what nginx
/// sends with `gzip on`) is an empty body, not a broken gzip stream.
#[test]
fn test_empty_bodies_announced_as_gzip() {
    let cases: [(&'static [u8], Method); 4] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 120\r\n\r\n",
            Method::HEAD,
        ),
        (
            b"HTTP/1.1 204 No Content\r\nContent-Encoding: gzip\r\n\r\n",
            Method::GET,
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nContent-Encoding: gzip\r\n\r\n",
            Method::GET,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
            Method::GET,
        ),
    ];
    for (reply, method) in cases {
        let r = fetch_from(vec![Then::Reply(reply)], move |url| {
            HttpRequest::new(url).method(method).raise_error(false)
        })
        .unwrap();
        assert!(r.body.is_empty(), "{r:?}");
    }
    // A body that is there must still be whole gzip.
    let e = fetch_from(
        vec![Then::Reply(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
        )],
        HttpRequest::new,
    )
    .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Response(ParseError::InvalidGzip)),
        "{e:?}"
    );
}

/// A relative `Location` may carry a URL in its query or path: it is still relative
/// (RFC 3986 §4.2), and one with raw UTF-8 is followed, escaped.
#[test]
fn test_relative_locations_that_look_absolute() {
    let r = fetch_from(
        vec![
            Then::Reply(b"HTTP/1.1 302 Found\r\nLocation: /login?next=http://e.example/x#top\r\nContent-Length: 0\r\n\r\n"),
            Then::Reply(b"HTTP/1.1 302 Found\r\nLocation: /caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n"),
            Then::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ],
        HttpRequest::new,
    )
    .unwrap();
    assert_eq!(r.text(), "ok");
    assert_eq!(r.redirects, 2);
    assert!(
        r.effective_url.ends_with("/caf%C3%A9"),
        "{}",
        r.effective_url
    );
}

/// Obsolete line folding is read as a space (RFC 9112 §5.2; Tornado's
/// test_multi_line_headers); header lines reach `header_callback` byte for byte
/// (ISO-8859-1, as Tornado decodes them); a head may hold many fields.
#[test]
fn test_folded_latin1_and_many_response_fields() {
    let mut many = String::from("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
    for i in 0..150 {
        many.push_str(&format!("Set-Cookie: c{i}=v\r\n"));
    }
    many.push_str("\r\n");
    let many: &'static [u8] = Box::leak(many.into_bytes().into_boxed_slice());
    let r = fetch_from(vec![Then::Reply(many)], HttpRequest::new).unwrap();
    assert_eq!(r.headers.get_all("set-cookie").iter().count(), 150);

    let lines = Rc::new(RefCell::new(Vec::new()));
    let seen = lines.clone();
    let r = fetch_from(
        vec![Then::Reply(
            b"HTTP/1.1 200 OK\r\nX-XSS-Protection: 1;\r\n\tmode=block\r\nFoo: \xe9\r\nContent-Length: 0\r\n\r\n",
        )],
        move |url| {
            HttpRequest::new(url).header_callback(move |line| seen.borrow_mut().push(line.to_owned()))
        },
    )
    .unwrap();
    assert_eq!(r.headers["x-xss-protection"], "1; mode=block");
    assert!(
        lines.borrow().iter().any(|l| l == "foo: \u{e9}\r\n"),
        "{:?}",
        lines.borrow()
    );
}

/// `Connection: te, close` on a request: the connection is closed after the answer
/// (RFC 9112 §9.6), not kept.
#[test]
fn test_connection_close_among_options() {
    let (addr, thread) = scripted(vec![Then::ReplyHold(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )]);
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let client = HttpClient::new();
                let r = client
                    .fetch(
                        HttpRequest::new(format!("http://{addr}/"))
                            .header("connection", "te, close"),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.text(), "ok");
                assert_eq!(client.idle_connections(), 0);
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    thread.join().unwrap();
}

/// A request head read byte by byte from a test server's connection (nothing of what
/// follows it), or `None` if the connection ended first.
fn read_head(s: &mut std::net::TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    let mut b = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => seen.push(b[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// A POST that met the close of a kept connection is not sent again (RFC 9110 §9.2.2:
/// the server may have acted on it); a GET is.
#[test]
fn test_a_post_is_not_replayed_on_a_new_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // One connection: answers a GET and keeps the connection, then reads the POST and
    // closes without an answer. Every later connection's request line is reported.
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        read_head(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        let post = read_head(&mut s).unwrap_or_default();
        assert!(post.starts_with("POST "), "{post}");
        let mut body = [0u8; 4];
        s.read_exact(&mut body).unwrap();
        drop(s);
        let mut later = Vec::new();
        loop {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let head = read_head(&mut s).unwrap_or_default();
            later.push(head.lines().next().unwrap_or("").to_owned());
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndone")
                .unwrap();
            if head.starts_with("GET /done") {
                return later;
            }
        }
    });
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let client = HttpClient::new();
                let base = format!("http://{addr}");
                assert_eq!(client.fetch(format!("{base}/")).await.unwrap().text(), "ok");
                let e = client
                    .fetch(
                        HttpRequest::new(format!("{base}/act"))
                            .method(Method::POST)
                            .body("once"),
                    )
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), 599, "{e:?}");
                assert_eq!(
                    client.fetch(format!("{base}/done")).await.unwrap().text(),
                    "done"
                );
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    let later = server.join().unwrap();
    assert_eq!(later, ["GET /done HTTP/1.1"], "the POST went out once");
}

/// A `408 Request Timeout` on a kept connection is the server closing it as the request
/// arrived (RFC 9110 §15.5.9): a GET goes out again on a new connection, its callbacks
/// never seeing the 408; a POST is not repeated, and a 408 on a new connection is the
/// answer.
#[test]
fn test_408_on_a_kept_connection_is_retried_once() {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const TIMEOUT: &[u8] =
        b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 7\r\nConnection: close\r\n\r\ntimeout";
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Each connection answers its first request with 200 and keeps going, and its
    // second with 408 and a close, except that /fresh is answered 408 at once and
    // /last ends the server. Every request line is reported, by connection.
    let server = std::thread::spawn(move || {
        let mut seen: Vec<Vec<String>> = Vec::new();
        loop {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut lines = Vec::new();
            while let Some(head) = read_head(&mut s) {
                let line = head.lines().next().unwrap_or("").to_owned();
                let (last, fresh) = (line.contains("/last"), line.contains("/fresh"));
                if line.starts_with("POST") {
                    let mut body = [0u8; 4];
                    s.read_exact(&mut body).unwrap();
                }
                lines.push(line);
                if last {
                    s.write_all(OK).unwrap();
                    seen.push(lines);
                    return seen;
                }
                if fresh || lines.len() == 2 {
                    s.write_all(TIMEOUT).unwrap();
                    break;
                }
                s.write_all(OK).unwrap();
            }
            seen.push(lines);
        }
    });
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let client = HttpClient::new();
                let base = format!("http://{addr}");
                assert_eq!(
                    client.fetch(format!("{base}/a")).await.unwrap().text(),
                    "ok"
                );
                let chunks = Rc::new(RefCell::new(Vec::new()));
                let heads = Rc::new(RefCell::new(Vec::new()));
                let (c, h) = (chunks.clone(), heads.clone());
                let r = client
                    .fetch(
                        HttpRequest::new(format!("{base}/b"))
                            .streaming_callback(move |d| c.borrow_mut().push(d))
                            .header_callback(move |l| h.borrow_mut().push(l.to_owned())),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.code, 200);
                assert_eq!(chunks.borrow().concat(), b"ok");
                assert!(heads.borrow()[0].starts_with("HTTP/1.1 200"), "{heads:?}");
                // The retried GET's connection is kept; a POST on it meets a 408.
                let e = client
                    .fetch(
                        HttpRequest::new(format!("{base}/post"))
                            .method(Method::POST)
                            .body("once"),
                    )
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), 408, "{e:?}");
                // A 408 on a new connection is the answer.
                let e = client.fetch(format!("{base}/fresh")).await.unwrap_err();
                assert_eq!(e.code(), 408, "{e:?}");
                client.fetch(format!("{base}/last")).await.unwrap();
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    let seen = server.join().unwrap();
    assert_eq!(
        seen,
        [
            vec!["GET /a HTTP/1.1", "GET /b HTTP/1.1"],
            vec!["GET /b HTTP/1.1", "POST /post HTTP/1.1"],
            vec!["GET /fresh HTTP/1.1"],
            vec!["GET /last HTTP/1.1"],
        ]
    );
}

// SimpleHTTPClientTestMixin.test_hostname_mapping: a name mapped to the local server
// (with and without its port) is fetched there, and the request keeps the URL's host.
#[test]
fn test_hostname_mapping() {
    with_app(|_, base| async move {
        let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
        let client = HttpClient::with_resolver(
            ClientConfig::default(),
            squall_httpclient::OverrideResolver::new()
                .host("www.example.com", "127.0.0.1")
                .endpoint(("api.example.com", 80), ("127.0.0.1", port)),
        );
        let r = client.fetch("http://api.example.com/host").await.unwrap();
        assert_eq!(r.text(), "api.example.com");
        let url = format!("http://www.example.com:{port}/host");
        let r = client.fetch(url.as_str()).await.unwrap();
        assert_eq!(r.text(), format!("www.example.com:{port}"));
    });
}

/// RFC 9110 §2.5: an `HTTP/1.2` status line is an HTTP/1.1 response (it was
/// `UnsupportedVersion`); `HTTP/2.0` is still an error.
#[test]
fn test_later_minor_version_response() {
    let r = fetch_from(
        vec![Then::Reply(
            b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )],
        HttpRequest::new,
    )
    .unwrap();
    assert_eq!((r.version, r.text()), (http::Version::HTTP_11, "ok".into()));
    let e = fetch_from(
        vec![Then::Reply(
            b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )],
        HttpRequest::new,
    )
    .unwrap_err();
    assert!(
        matches!(e, HttpClientError::Response(ParseError::UnsupportedVersion)),
        "{e:?}"
    );
}

/// A server on a thread that answers `count` requests, on as many connections as the
/// client opens, with what `reply` makes of each request line, and returns the lines.
fn line_server(
    count: usize,
    reply: impl Fn(&str) -> Vec<u8> + Send + 'static,
) -> (SocketAddr, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut lines = Vec::new();
        while lines.len() < count {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            while let Some(head) = read_head(&mut s) {
                let line = head.lines().next().unwrap_or("").to_owned();
                let _ = s.write_all(&reply(&line));
                lines.push(line);
                if lines.len() == count {
                    break;
                }
            }
        }
        lines
    });
    (addr, server)
}

/// Bytes the `http` crate's URI refuses (`<`, `>`, a backquote, braces in the path;
/// `"`, `<`, `>` in the query) are sent percent-encoded as browsers send them (the
/// WHATWG URL sets), in the URL and in a redirect's Location; `%XX` escapes and the
/// bytes that are valid already stay; `effective_url` is the URL as sent. (Each such
/// URL failed with "invalid uri character" before anything was sent.)
#[test]
fn test_bytes_a_uri_refuses_are_escaped() {
    let (addr, server) = line_server(7, |line| {
        if line.starts_with("GET /r ") {
            b"HTTP/1.1 302 Found\r\nLocation: /search?q=\"a\"&t=<b>#f g\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
        }
    });
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let client = HttpClient::new();
                let base = format!("http://{addr}");
                for (path, sent) in [
                    ("/p<x>", "/p%3Cx%3E"),
                    ("/p`x{y}^|\"", "/p%60x%7By%7D^|%22"),
                    (
                        "/q?json=\"k\"&a=<b>&c=`{d}",
                        "/q?json=%22k%22&a=%3Cb%3E&c=`{d}",
                    ),
                    ("/%41%zz<#frag<", "/%41%zz%3C#frag%3C"),
                    ("/plain?a=b&c=%20", "/plain?a=b&c=%20"),
                ] {
                    let r = client.fetch(format!("{base}{path}")).await.unwrap();
                    assert_eq!(r.effective_url, format!("{base}{sent}"), "{path}");
                }
                let r = client.fetch(format!("{base}/r")).await.unwrap();
                assert_eq!(r.redirects, 1);
                assert_eq!(
                    r.effective_url,
                    format!("{base}/search?q=%22a%22&t=%3Cb%3E")
                );
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(
        server.join().unwrap(),
        [
            "GET /p%3Cx%3E HTTP/1.1",
            "GET /p%60x%7By%7D^|%22 HTTP/1.1",
            "GET /q?json=%22k%22&a=%3Cb%3E&c=`{d} HTTP/1.1",
            "GET /%41%zz%3C HTTP/1.1",
            "GET /plain?a=b&c=%20 HTTP/1.1",
            "GET /r HTTP/1.1",
            "GET /search?q=%22a%22&t=%3Cb%3E HTTP/1.1",
        ]
    );
}

/// A server that does not know `Expect: 100-continue` and waits for the body gets it
/// after `CONTINUE_TIMEOUT` (RFC 9110 §10.1.1: a client does not wait indefinitely);
/// it waited for the request timeout.
#[test]
fn test_expect_continue_ignored_by_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = read_head(&mut s).unwrap();
        let mut body = [0u8; 4];
        s.read_exact(&mut body).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
            .unwrap();
        s.write_all(&body).unwrap();
        head
    });
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let r = HttpClient::new()
                    .fetch(
                        HttpRequest::new(format!("http://{addr}/"))
                            .method(Method::POST)
                            .body("data")
                            .expect_100_continue(true)
                            .request_timeout(squall_httpclient::CONTINUE_TIMEOUT * 10),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.text(), "data");
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    let head = server.join().unwrap();
    assert!(
        head.to_ascii_lowercase().contains("expect: 100-continue"),
        "{head}"
    );
}

/// A `417 Expectation Failed` to a request whose body waited for `100 Continue` sends
/// the request again without `Expect` (RFC 9110 §10.1.1), once; the callbacks see only
/// the final answer. (The 417 was the answer.)
#[test]
fn test_417_retries_without_expect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let head = read_head(&mut s).unwrap();
            if head.to_ascii_lowercase().contains("expect:") {
                s.write_all(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\n\r\nnope")
                    .unwrap();
                // The client drops the connection (its body is unsent).
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
                assert!(rest.is_empty(), "the body was sent after the 417");
            } else {
                let mut body = [0u8; 4];
                s.read_exact(&mut body).unwrap();
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
                    .unwrap();
                s.write_all(&body).unwrap();
            }
            heads.push(head.lines().next().unwrap().to_owned());
            heads.push(head.to_ascii_lowercase().contains("expect:").to_string());
        }
        heads
    });
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let lines = Rc::new(RefCell::new(Vec::<String>::new()));
                let sink = lines.clone();
                let r = HttpClient::new()
                    .fetch(
                        HttpRequest::new(format!("http://{addr}/"))
                            .method(Method::PUT)
                            .body("data")
                            .expect_100_continue(true)
                            .header_callback(move |l| sink.borrow_mut().push(l.to_owned())),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.text(), "data");
                assert_eq!(lines.borrow()[0], "HTTP/1.1 200 OK\r\n");
                assert!(!lines.borrow().iter().any(|l| l.contains("417")));
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(
        server.join().unwrap(),
        ["PUT / HTTP/1.1", "true", "PUT / HTTP/1.1", "false"]
    );
}

/// Tornado's test_header_encoding: a text header value with characters up to U+00FF
/// is sent as ISO-8859-1 bytes (it failed the fetch: "invalid header name or value"),
/// one past U+00FF is an error naming it; the reason phrase is read as ISO-8859-1,
/// as the header values are (it was decoded as UTF-8, lossily).
#[test]
fn test_latin1_header_values_and_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1);
            head.push(b[0]);
        }
        s.write_all(b"HTTP/1.1 200 \xc4rger caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        head
    });
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let client = HttpClient::new();
                let e = client
                    .fetch(
                        HttpRequest::new(format!("http://{addr}/")).header("x-euro", "5 \u{20ac}"),
                    )
                    .await
                    .unwrap_err();
                assert!(
                    matches!(&e, HttpClientError::InvalidRequest(m) if m.contains("U+20AC")),
                    "{e:?}"
                );
                let r = client
                    .fetch(
                        HttpRequest::new(format!("http://{addr}/"))
                            .header("x-test", "b\u{e4}r")
                            .header("x-owned", String::from("\u{ff}"))
                            .header("x-bytes", &b"raw"[..])
                            .user_agent("s\u{e9}"),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.reason, "\u{c4}rger caf\u{c3}\u{a9}");
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    let head = server.join().unwrap();
    let has = |field: &[u8]| head.windows(field.len()).any(|w| w == field);
    assert!(
        has(b"x-test: b\xe4r\r\n"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert!(has(b"x-owned: \xff\r\n"));
    assert!(has(b"x-bytes: raw\r\n"));
    assert!(has(b"user-agent: s\xe9\r\n"));
}

/// A status line without a reason phrase (RFC 9112 §4 lets it be empty) gives the
/// status code's standard phrase, "Unknown" for a code without one, as Tornado's
/// `HTTPResponse` and `HTTPClientError` do (`reason or responses.get(code, "Unknown")`),
/// so that the error reads "HTTP 404: Not Found"; it was empty ("HTTP 404: "). A phrase
/// the server sent is kept, and `header_callback` sees the status line as it came.
#[test]
fn test_empty_reason_phrase_is_the_standard_one() {
    let (addr, server) = line_server(3, |line| {
        if line.starts_with("GET /missing ") {
            b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else if line.starts_with("GET /odd ") {
            b"HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            b"HTTP/1.1 404 Gone Fishing\r\nContent-Length: 0\r\n\r\n".to_vec()
        }
    });
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let client = HttpClient::new();
                let lines = Rc::new(RefCell::new(Vec::new()));
                let seen = lines.clone();
                let e = client
                    .fetch(
                        HttpRequest::new(format!("http://{addr}/missing"))
                            .header_callback(move |l| seen.borrow_mut().push(l.to_owned())),
                    )
                    .await
                    .unwrap_err();
                assert_eq!(e.to_string(), "HTTP 404: Not Found");
                assert_eq!(e.response().unwrap().reason, "Not Found");
                assert_eq!(lines.borrow()[0], "HTTP/1.1 404 \r\n");
                let r = client
                    .fetch(HttpRequest::new(format!("http://{addr}/odd")).raise_error(false))
                    .await
                    .unwrap();
                assert_eq!((r.code.as_u16(), r.reason.as_str()), (299, "Unknown"));
                let e = client
                    .fetch(format!("http://{addr}/sent"))
                    .await
                    .unwrap_err();
                assert_eq!(e.to_string(), "HTTP 404: Gone Fishing");
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    server.join().unwrap();
}

/// One client used on two loops in turn (`run_sync` on each, as Tornado's tests make a
/// loop per test): the second loop's fetch opens its own connection, the first loop's
/// idle one is closed, whether that loop is gone or still there. (The pool handed the
/// first loop's connection to the second: the request was written, but the answer was
/// never read, since that stream's loop was not running, and the fetch timed out.)
#[test]
fn test_a_kept_connection_stays_with_its_loop() {
    for keep_first_loop in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers each request with the number of the connection it came on, keeping
        // the connection; done after two requests.
        let server = std::thread::spawn(move || {
            let mut answered = 0;
            for conn in 1.. {
                let (mut s, _) = listener.accept().unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                while read_head(&mut s).is_some() {
                    let body = format!("conn {conn}");
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    s.write_all(format!("{head}{body}").as_bytes()).unwrap();
                    answered += 1;
                    if answered == 2 {
                        return;
                    }
                }
            }
        });
        let client = HttpClient::new();
        let url = format!("http://{addr}/");
        let fetch_on = |io_loop: &IoLoop| {
            let (client, url) = (client.clone(), url.clone());
            io_loop
                .run_sync(
                    async move {
                        let request =
                            HttpRequest::new(url).request_timeout(Duration::from_secs(10));
                        client.fetch(request).await.map(|r| r.text().into_owned())
                    },
                    Some(Duration::from_secs(30)),
                )
                .unwrap()
        };
        let first = IoLoop::new().unwrap();
        assert_eq!(fetch_on(&first).unwrap(), "conn 1");
        assert_eq!(client.idle_connections(), 1);
        let first = keep_first_loop.then_some(first);
        let second = IoLoop::new().unwrap();
        assert_eq!(
            fetch_on(&second).unwrap(),
            "conn 2",
            "first loop kept: {keep_first_loop}"
        );
        assert_eq!(client.idle_connections(), 1);
        server.join().unwrap();
        drop((client, first));
    }
}

/// Connections through a proxy are kept per credentials: a request with other proxy
/// credentials, or none, does not ride a connection opened with someone else's (RFC
/// 9110 §11.7); the same credentials again reuse theirs. (The pool's key held the
/// proxy's host and port only.)
#[test]
fn test_proxy_connections_are_kept_per_credentials() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A proxy that answers each request with the number of its connection and the
    // Proxy-Authorization it carried, keeping every connection open.
    std::thread::spawn(move || {
        for (conn, s) in (1..).zip(listener.incoming()) {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                while let Some(head) = read_head(&mut s) {
                    let auth = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
                        .map_or("none", |(_, value)| value.trim());
                    let body = format!("conn {conn} {auth}");
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    if s.write_all(format!("{head}{body}").as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let client = HttpClient::new();
                let via = |auth: Option<(&str, &str)>| {
                    let mut proxy = squall_httpclient::Proxy::new("127.0.0.1", addr.port());
                    proxy.auth = auth.map(|(u, p)| (u.to_owned(), p.to_owned()));
                    HttpRequest::new("http://example.invalid/").proxy(proxy)
                };
                let alice = Some(("alice", "a-secret"));
                let bob = Some(("bob", "b-secret"));
                let mut answers = Vec::new();
                for auth in [alice, bob, None, alice, bob] {
                    answers.push(client.fetch(via(auth)).await.unwrap().text().into_owned());
                }
                let (a, b) = (
                    squall_httputil::basic_auth_value("alice", "a-secret"),
                    squall_httputil::basic_auth_value("bob", "b-secret"),
                );
                assert_eq!(
                    answers,
                    [
                        format!("conn 1 {a}"),
                        format!("conn 2 {b}"),
                        "conn 3 none".to_owned(),
                        format!("conn 1 {a}"),
                        format!("conn 2 {b}"),
                    ]
                );
                assert_eq!(client.idle_connections(), 3);
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
}

/// Tornado's `request_time` (since 5.1): not the time in the `max_clients` queue, and
/// after redirects the final request's alone. (It ran from the start of the fetch.)
#[test]
fn test_request_time_leaves_out_the_queue_and_earlier_hops() {
    const FIRST_HOP: Duration = Duration::from_millis(300);
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let release = common::Gate::default();
                let gate = release.clone();
                let mut server = HttpServer::new(move |req: HttpServerRequest| {
                    let gate = gate.clone();
                    async move {
                        match req.path() {
                            "/hold" => gate.wait().await,
                            "/slow-redirect" => {
                                squall_ioloop::sleep(FIRST_HOP).await;
                                return Response::new(StatusCode::FOUND).with_header(
                                    http::header::LOCATION,
                                    HeaderValue::from_static("/fast"),
                                );
                            }
                            _ => {}
                        }
                        Response::text("ok")
                    }
                });
                let addr = server.listen(0, "127.0.0.1").unwrap();
                let client = HttpClient::with_config(ClientConfig::default().with_max_clients(1));
                let spawn = |path: &str| {
                    let (client, url) = (client.clone(), format!("http://{addr}{path}"));
                    IoLoop::current()
                        .unwrap()
                        .spawn(async move { client.fetch(url.as_str()).await.unwrap() })
                };
                let held = spawn("/hold");
                let queued = spawn("/fast");
                // Time in the queue: the spawned fetches have run up to their waits.
                squall_ioloop::sleep(Duration::from_millis(200)).await;
                assert_eq!((client.active(), client.queued()), (1, 1));
                let released = std::time::Instant::now();
                release.open();
                held.await.unwrap();
                let r = queued.await.unwrap();
                assert!(
                    r.request_time <= released.elapsed(),
                    "{:?} counts the queue",
                    r.request_time
                );
                // A redirect whose first hop takes FIRST_HOP: only the final hop counts.
                let started = std::time::Instant::now();
                let r = client
                    .fetch(format!("http://{addr}/slow-redirect"))
                    .await
                    .unwrap();
                assert_eq!((r.redirects, r.text().as_ref()), (1, "ok"));
                assert!(r.request_time > Duration::ZERO);
                assert!(
                    r.request_time <= started.elapsed() - FIRST_HOP,
                    "{:?} counts the first hop",
                    r.request_time
                );
                drop(server);
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
}

/// Tornado's `HTTPResponse.start_time` (test_response_times): the wall-clock time the
/// final request started, on the same basis as `request_time`, so that it lies within
/// the fetch and, after a redirect, after the earlier hops. (The response had no such
/// field.)
#[test]
fn test_start_time_is_the_final_request_on_the_wall_clock() {
    const FIRST_HOP: Duration = Duration::from_millis(300);
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let mut server = HttpServer::new(|req: HttpServerRequest| async move {
                    if req.path() == "/slow-redirect" {
                        squall_ioloop::sleep(FIRST_HOP).await;
                        return Response::new(StatusCode::FOUND)
                            .with_header(http::header::LOCATION, HeaderValue::from_static("/"));
                    }
                    Response::text("ok")
                });
                let addr = server.listen(0, "127.0.0.1").unwrap();
                let client = HttpClient::new();
                let before = std::time::SystemTime::now();
                let r = client.fetch(format!("http://{addr}/")).await.unwrap();
                let after = std::time::SystemTime::now();
                assert!(before <= r.start_time && r.start_time <= after, "{r:?}");
                assert!(r.start_time + r.request_time <= after, "{r:?}");

                let before = std::time::SystemTime::now();
                let r = client
                    .fetch(format!("http://{addr}/slow-redirect"))
                    .await
                    .unwrap();
                let after = std::time::SystemTime::now();
                assert_eq!(r.redirects, 1);
                assert!(
                    r.start_time >= before + FIRST_HOP,
                    "{r:?} counts the first hop"
                );
                assert!(r.start_time + r.request_time <= after, "{r:?}");
                drop(server);
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
}
