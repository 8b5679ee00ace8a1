//! The client against servers no one here wrote, started by the tests: nginx (static
//! files, chunked gzip, keep-alive, redirects, a reverse proxy and a forward proxy in
//! front of squall's server) and Python's `http.server` (HTTP/1.0, bodies delimited by
//! the close). A missing tool skips its test loudly (fails under CI=true).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use http::Method;
use squall_httpclient::{HttpClient, HttpClientError, HttpRequest, Proxy};
use squall_httpserver::{HttpServer, HttpServerRequest, Response};
use squall_testing::{free_port, have_tool, nginx_path, run_nginx, run_test, KillOnDrop, TempDir};

struct Nginx {
    _proc: KillOnDrop,
    port: u16,
    proxy_port: u16,
    _dir: TempDir,
}

/// The big static file: large enough to take several reads.
fn big_file() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz\n"[(i % 27) as usize])
        .collect()
}

/// nginx serving static files on one port (with gzip, which makes it answer chunked),
/// redirects, and a reverse proxy to `upstream`; and a forward proxy on another port.
fn start_nginx(upstream: SocketAddr) -> Nginx {
    let dir = TempDir::new("client-nginx").unwrap();
    let d = dir.path().display().to_string();
    std::fs::create_dir_all(dir.path().join("html")).unwrap();
    std::fs::write(dir.path().join("html/hello.txt"), "Hello from nginx\n").unwrap();
    std::fs::write(dir.path().join("html/big.txt"), big_file()).unwrap();
    let port = free_port();
    let proxy_port = free_port();
    let http = format!(
        r#"    keepalive_requests 1000;
    server {{
        listen 127.0.0.1:{port};
        root {d}/html;
        gzip on;
        gzip_min_length 0;
        gzip_types text/plain;
        location = /moved {{ return 301 /hello.txt; }}
        location = /found {{ return 302 /app/echo; }}
        location = /see-other {{ return 303 /app/echo; }}
        location = /temporary {{ return 307 /app/echo; }}
        location = /loop {{ return 302 /loop; }}
        location /app/ {{
            proxy_pass http://{upstream}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{
            proxy_pass http://$http_host$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Via nginx-forward-proxy;
        }}
    }}"#
    );
    let proc = run_nginx(dir.path(), &http, &[port, proxy_port]);
    Nginx {
        _proc: proc,
        port,
        proxy_port,
        _dir: dir,
    }
}

/// squall's own server, for nginx to proxy to: echoes the method, the body and the
/// headers nginx adds.
async fn app(req: HttpServerRequest) -> Response {
    let via = req
        .headers()
        .get("x-via")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    Response::text(format!(
        "{} {} via={via} body={}",
        req.method,
        req.path(),
        String::from_utf8_lossy(&req.body)
    ))
}

#[test]
fn nginx_static_files_keep_alive_and_chunked_gzip() {
    if !have_tool(nginx_path()) {
        return;
    }
    let upstream = free_port();
    let nginx = start_nginx(SocketAddr::from(([127, 0, 0, 1], upstream)));
    let base = format!("http://127.0.0.1:{}", nginx.port);
    run_test(
        "nginx_static",
        Some(Duration::from_secs(60)),
        move || async move {
            let client = HttpClient::new();
            // Plain: Content-Length framing, connection kept.
            let r = client
                .fetch(HttpRequest::new(format!("{base}/hello.txt")).decompress_response(false))
                .await
                .unwrap();
            assert_eq!(r.text(), "Hello from nginx\n");
            assert_eq!(r.headers["content-length"], "17");
            // gzip: nginx answers chunked, and the client inflates it.
            let chunks = std::rc::Rc::new(std::cell::Cell::new(0usize));
            let count = chunks.clone();
            let body = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let sink = body.clone();
            let r = client
                .fetch(
                    HttpRequest::new(format!("{base}/big.txt")).streaming_callback(move |c| {
                        count.set(count.get() + 1);
                        sink.borrow_mut().extend_from_slice(&c);
                    }),
                )
                .await
                .unwrap();
            assert_eq!(r.headers["transfer-encoding"], "chunked");
            assert_eq!(r.headers["x-consumed-content-encoding"], "gzip");
            assert!(r.body.is_empty());
            assert_eq!(*body.borrow(), big_file());
            assert!(chunks.get() >= 1);
            // Without decompression (asking for gzip ourselves): the raw gzip stream.
            let r = client
                .fetch(
                    HttpRequest::new(format!("{base}/big.txt"))
                        .header("accept-encoding", "gzip")
                        .decompress_response(false),
                )
                .await
                .unwrap();
            assert_eq!(r.headers["content-encoding"], "gzip");
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut raw)
                .unwrap();
            assert_eq!(raw, big_file());
            // HEAD, 404 and many requests on the kept connection.
            let r = client
                .fetch(
                    HttpRequest::new(format!("{base}/big.txt"))
                        .method(Method::HEAD)
                        .decompress_response(false),
                )
                .await
                .unwrap();
            assert!(r.body.is_empty());
            let e = client.fetch(format!("{base}/missing")).await.unwrap_err();
            assert_eq!(e.code(), 404);
            for _ in 0..20 {
                client.fetch(format!("{base}/hello.txt")).await.unwrap();
            }
            assert_eq!(
                client.idle_connections(),
                1,
                "one kept connection served them all"
            );
        },
    );
}

#[test]
fn nginx_redirects_and_reverse_proxy() {
    if !have_tool(nginx_path()) {
        return;
    }
    let upstream = free_port();
    let nginx = start_nginx(SocketAddr::from(([127, 0, 0, 1], upstream)));
    let base = format!("http://127.0.0.1:{}", nginx.port);
    run_test(
        "nginx_redirects",
        Some(Duration::from_secs(60)),
        move || async move {
            let mut server = HttpServer::new(app);
            server.listen(upstream, "127.0.0.1").unwrap();
            let client = HttpClient::new();
            let r = client.fetch(format!("{base}/moved")).await.unwrap();
            assert_eq!(r.text(), "Hello from nginx\n");
            assert_eq!(r.redirects, 1);
            assert!(r.effective_url.ends_with("/hello.txt"));
            let post = |path: &str| {
                HttpRequest::new(format!("{base}{path}"))
                    .method(Method::POST)
                    .body("data")
            };
            // 302 and 303 after POST: GET without the body; 307: POST again with it.
            assert_eq!(
                client.fetch(post("/found")).await.unwrap().text(),
                "GET /echo via= body="
            );
            assert_eq!(
                client.fetch(post("/see-other")).await.unwrap().text(),
                "GET /echo via= body="
            );
            assert_eq!(
                client.fetch(post("/temporary")).await.unwrap().text(),
                "POST /echo via= body=data"
            );
            // A redirect loop ends at max_redirects with the last redirect as the error.
            let e = client
                .fetch(HttpRequest::new(format!("{base}/loop")).max_redirects(3))
                .await
                .unwrap_err();
            assert_eq!(e.code(), 302);
            assert_eq!(e.response().unwrap().redirects, 3);
            // A chunked upload through the reverse proxy.
            let r = client
                .fetch(
                    HttpRequest::new(format!("{base}/app/up"))
                        .method(Method::PUT)
                        .body_producer(|w| async move {
                            w.write("part one, ").await?;
                            w.write("part two").await?;
                            Ok(())
                        }),
                )
                .await
                .unwrap();
            assert_eq!(r.text(), "PUT /up via= body=part one, part two");
        },
    );
}

#[test]
fn nginx_as_forward_proxy() {
    if !have_tool(nginx_path()) {
        return;
    }
    let upstream = free_port();
    let nginx = start_nginx(SocketAddr::from(([127, 0, 0, 1], upstream)));
    let proxy = Proxy::new("127.0.0.1", nginx.proxy_port);
    run_test(
        "nginx_proxy",
        Some(Duration::from_secs(60)),
        move || async move {
            let mut server = HttpServer::new(app);
            server.listen(upstream, "127.0.0.1").unwrap();
            let client = HttpClient::new();
            let r = client
                .fetch(
                    HttpRequest::new(format!("http://127.0.0.1:{upstream}/through?x=1"))
                        .method(Method::POST)
                        .body("proxied")
                        .proxy(proxy.clone()),
                )
                .await
                .unwrap();
            assert_eq!(
                r.text(),
                "POST /through via=nginx-forward-proxy body=proxied"
            );
            // The same origin without the proxy: a separate pooled connection.
            let r = client
                .fetch(format!("http://127.0.0.1:{upstream}/direct"))
                .await
                .unwrap();
            assert_eq!(r.text(), "GET /direct via= body=");
            assert_eq!(client.idle_connections(), 2);
        },
    );
}

/// A Python `http.server` on a free port: a static directory with the standard handler
/// (HTTP/1.0, Content-Length), and `/stream` answered without a length (the body ends
/// with the connection).
fn start_python(dir: &Path) -> (KillOnDrop, u16) {
    let script = r#"
import http.server, sys, functools
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for i in range(1000):
                self.wfile.write(b"line %d\n" % i)
            return
        return super().do_GET()
    def log_message(self, *args):
        pass
handler = functools.partial(H, directory=sys.argv[1])
server = http.server.HTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("python printed its port");
    (KillOnDrop(child), port)
}

#[test]
fn python_http_server_http10_and_close_delimited() {
    if !have_tool("python3") {
        return;
    }
    let dir = TempDir::new("client-python").unwrap();
    std::fs::write(dir.path().join("file.txt"), "from python\n").unwrap();
    let (_python, port) = start_python(dir.path());
    run_test(
        "python",
        Some(Duration::from_secs(60)),
        move || async move {
            let client = HttpClient::new();
            let r = client
                .fetch(format!("http://127.0.0.1:{port}/file.txt"))
                .await
                .unwrap();
            assert_eq!(r.version, http::Version::HTTP_10);
            assert_eq!(r.text(), "from python\n");
            let r = client
                .fetch(format!("http://127.0.0.1:{port}/stream"))
                .await
                .unwrap();
            assert!(r.headers.get("content-length").is_none());
            let want: String = (0..1000).map(|i| format!("line {i}\n")).collect();
            assert_eq!(r.text(), want);
            // HTTP/1.0 without keep-alive: nothing kept.
            assert_eq!(client.idle_connections(), 0);
            let e = client
                .fetch(format!("http://127.0.0.1:{port}/missing"))
                .await
                .unwrap_err();
            assert!(
                matches!(e, HttpClientError::Http(ref r) if r.code == 404),
                "{e:?}"
            );
        },
    );
}
