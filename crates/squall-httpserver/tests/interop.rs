//! Interop with clients and a proxy no one here wrote: curl, Python's `http.client` and
//! nginx as a reverse proxy. A missing tool skips its test loudly (fails under CI=true).

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};

use common::{serve, TestServer};
use squall_httpserver::{HttpServer, HttpServerConfig, HttpServerRequest, Response};
use squall_testing::{
    free_port, have_tool, nginx_path as nginx, run_nginx, under_ci, KillOnDrop, TempDir,
};

fn app() -> impl Fn(HttpServerRequest) -> std::future::Ready<Response> + Clone + Send + 'static {
    |req: HttpServerRequest| {
        std::future::ready(match req.path() {
            "/echo" => Response::bytes(req.body),
            "/ip" => Response::text(format!("{} {}", req.remote_ip(), req.protocol())),
            "/query" => Response::text(req.query().to_owned()),
            _ => Response::text("Hello, world!"),
        })
    }
}

fn server(config: HttpServerConfig) -> TestServer {
    serve(move || HttpServer::new(app()).with_config(config))
}

/// Run a command with `stdin`, return its stdout; panics with its stderr on failure.
fn run(cmd: &mut Command, stdin: &[u8]) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn curl() -> Command {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "20"]);
    c
}

#[test]
fn curl_keep_alive_two_urls() {
    if !have_tool("curl") {
        return;
    }
    let s = server(HttpServerConfig::default());
    let url = format!("http://{}/", s.addr);
    let out = run(curl().args([&url, &url]), b"");
    assert_eq!(out, "Hello, world!Hello, world!");
    assert_eq!(
        s.stats.connections_accepted(),
        1,
        "curl reused its connection"
    );
}

// curl escapes a non-ASCII path but sends a non-ASCII query raw, as UTF-8: served,
// and read as sent.
#[test]
fn curl_utf8_query() {
    if !have_tool("curl") {
        return;
    }
    let s = server(HttpServerConfig::default());
    let url = format!("http://{}/query?q=caf\u{e9}", s.addr);
    assert_eq!(run(curl().arg(&url), b""), "q=caf\u{e9}");
}

#[test]
fn curl_chunked_upload() {
    if !have_tool("curl") {
        return;
    }
    let s = server(HttpServerConfig::default());
    let body = "chunk me ".repeat(10_000);
    let out = run(
        curl().args(["-T", "-", &format!("http://{}/echo", s.addr)]),
        body.as_bytes(),
    );
    assert_eq!(out, body);
}

#[test]
fn curl_expect_100_continue() {
    if !have_tool("curl") {
        return;
    }
    let s = server(HttpServerConfig::default());
    let out = run(
        curl().args([
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "@-",
            &format!("http://{}/echo", s.addr),
        ]),
        b"continue with this body",
    );
    assert_eq!(out, "continue with this body");
}

#[cfg(feature = "gzip")]
#[test]
fn curl_gzip_upload() {
    if !have_tool("curl") {
        return;
    }
    let s = server(HttpServerConfig {
        decompress_request: true,
        ..HttpServerConfig::default()
    });
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"inflated by squall").unwrap();
    let gz = enc.finish().unwrap();
    let out = run(
        curl().args([
            "-H",
            "Content-Encoding: gzip",
            "--data-binary",
            "@-",
            &format!("http://{}/echo", s.addr),
        ]),
        &gz,
    );
    assert_eq!(out, "inflated by squall");
}

#[test]
fn curl_http10() {
    if !have_tool("curl") {
        return;
    }
    let s = server(HttpServerConfig::default());
    let out = run(
        curl().args(["--http1.0", "-i", &format!("http://{}/", s.addr)]),
        b"",
    );
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nHello, world!"), "{out}");
}

const PYTHON_CLIENT: &str = r#"
import http.client, io, socket, sys
host, port = sys.argv[1], int(sys.argv[2])

# Sequential requests on one connection.
conn = http.client.HTTPConnection(host, port, timeout=20)
for i in range(3):
    conn.request("POST", "/echo", body=b"seq%d" % i)
    r = conn.getresponse()
    assert r.status == 200, r.status
    assert r.read() == b"seq%d" % i
conn.request("GET", "/")
assert conn.getresponse().read() == b"Hello, world!"
conn.close()

# Pipelined: three requests in one send, the responses parsed in order by
# http.client's own response parser over one shared buffered reader.
class KeepOpen(io.BufferedReader):
    def close(self):
        pass

s = socket.create_connection((host, port), timeout=20)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
          b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\npipelined"
          b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
reader = KeepOpen(socket.SocketIO(s, "rb"))
class Sock:
    def makefile(self, *args, **kwargs):
        return reader
bodies = []
for _ in range(3):
    r = http.client.HTTPResponse(Sock())
    r.begin()
    bodies.append(r.read())
assert bodies == [b"Hello, world!", b"pipelined", b"Hello, world!"], bodies
print("ok")
"#;

#[test]
fn python_http_client_sequential_and_pipelined() {
    if !have_tool("python3") {
        return;
    }
    let s = server(HttpServerConfig::default());
    let out = run(
        Command::new("python3").args([
            "-c",
            PYTHON_CLIENT,
            &s.addr.ip().to_string(),
            &s.addr.port().to_string(),
        ]),
        b"",
    );
    assert_eq!(out.trim(), "ok");
    assert_eq!(s.stats.connections_accepted(), 2, "one connection per part");
}

/// The test's client connects from 127.0.0.2. Linux answers on all of 127/8; macOS and
/// FreeBSD need an alias first (`ifconfig lo0 alias 127.0.0.2`, which CI does). Without
/// it, a loud skip (a failure under CI=true), as for a missing tool.
fn have_second_loopback() -> bool {
    if TcpListener::bind("127.0.0.2:0").is_ok() {
        return true;
    }
    if under_ci() {
        panic!("127.0.0.2 is required under CI=true: `ifconfig lo0 alias 127.0.0.2`");
    }
    eprintln!(
        "!!! SKIPPED: 127.0.0.2 is not a local address here (`ifconfig lo0 alias 127.0.0.2`)"
    );
    false
}

struct Nginx {
    _child: KillOnDrop,
    port: u16,
    _dir: TempDir,
}

fn start_nginx(upstream: std::net::SocketAddr) -> Nginx {
    let tmp = TempDir::new("nginx").unwrap();
    let dir = tmp.path().to_path_buf();
    let port = free_port();
    let http = format!(
        r#"    upstream squall {{
        server {upstream};
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://squall;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Scheme $scheme;
        }}
    }}"#
    );
    Nginx {
        _child: run_nginx(&dir, &http, &[port]),
        port,
        _dir: tmp,
    }
}

// The deployment Tornado's docs recommend: nginx in front, xheaders on.
#[test]
fn behind_nginx_reverse_proxy() {
    if !have_tool(nginx()) || !have_tool("curl") || !have_second_loopback() {
        return;
    }
    let s = server(HttpServerConfig {
        xheaders: true,
        ..HttpServerConfig::default()
    });
    let nginx = start_nginx(s.addr);
    let base = format!("http://127.0.0.1:{}", nginx.port);
    // The client's address as nginx saw it reaches the handler: the client connects
    // from 127.0.0.2, nginx from 127.0.0.1.
    let out = run(
        curl().args(["--interface", "127.0.0.2", &format!("{base}/ip")]),
        b"",
    );
    assert_eq!(out, "127.0.0.2 http");
    // Upstream keep-alive: more requests, separate client connections, still one
    // upstream connection.
    for _ in 0..4 {
        assert_eq!(run(curl().arg(format!("{base}/")), b""), "Hello, world!");
    }
    let out = run(
        curl().args(["--data-binary", "@-", &format!("{base}/echo")]),
        b"through nginx",
    );
    assert_eq!(out, "through nginx");
    assert_eq!(
        s.stats.connections_accepted(),
        1,
        "nginx reused its upstream connection"
    );
}
