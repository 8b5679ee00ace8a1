//! TLS with implementations no one here wrote: curl and Python's `ssl` as clients of an
//! HTTPS `HttpServer`, `openssl s_client` for protocol versions and ALPN, and squall's
//! TLS client against nginx. A missing tool skips its test loudly (fails under
//! CI=true).

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Https, Pki};
use squall_httpserver::{HttpServerRequest, Response};
use squall_ioloop::IoLoop;
use squall_tcpserver::TcpClient;
use squall_testing::{free_port, have_tool, nginx_path, run_nginx, KillOnDrop};
use squall_tls::{ReloadableCert, TlsConnector, TlsServerConfig, TlsStreamExt};

fn app(req: HttpServerRequest) -> std::future::Ready<Response> {
    std::future::ready(match req.path() {
        "/echo" => Response::bytes(req.body),
        "/proto" => Response::text(req.protocol().to_string()),
        _ => Response::text("Hello, world!"),
    })
}

fn https(tls: TlsServerConfig) -> Https {
    Https::start(app, tls)
}

/// Runs a command with `stdin`; its output, whatever its exit status.
fn output(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed; its standard output.
fn run(cmd: &mut Command, stdin: &[u8]) -> String {
    let out = output(cmd, stdin);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn curl(pki: &Pki, addr: SocketAddr) -> Command {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&pki.ca)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())]);
    c
}

#[test]
fn curl_https_keep_alive_and_upload() {
    if !have_tool("curl") {
        return;
    }
    let pki = Pki::localhost();
    let s = https(pki.server_config());
    let base = format!("https://localhost:{}", s.addr.port());
    let out = run(
        curl(&pki, s.addr).args([&format!("{base}/"), &format!("{base}/proto")]),
        b"",
    );
    assert_eq!(out, "Hello, world!https");
    assert_eq!(
        s.server.stats().connections_accepted(),
        1,
        "curl reused its TLS connection"
    );
    let body = "secret ".repeat(100_000);
    let out = run(
        curl(&pki, s.addr).args(["--data-binary", "@-", &format!("{base}/echo")]),
        body.as_bytes(),
    );
    assert!(out == body, "the echo differs ({} bytes back)", out.len());
}

#[test]
fn curl_refuses_a_certificate_for_another_name() {
    if !have_tool("curl") {
        return;
    }
    let pki = Pki::new(&["other.test"]);
    let s = https(pki.server_config());
    let out = output(
        curl(&pki, s.addr).arg(format!("https://localhost:{}/", s.addr.port())),
        b"",
    );
    // 60: the peer's certificate cannot be authenticated (the name does not match).
    assert_eq!(out.status.code(), Some(60), "{out:?}");
}

#[test]
fn plain_http_to_the_https_port_then_https_still_works() {
    if !have_tool("curl") {
        return;
    }
    let pki = Pki::localhost();
    let s = https(pki.server_config());
    let out = output(
        curl(&pki, s.addr).arg(format!("http://localhost:{}/", s.addr.port())),
        b"",
    );
    assert!(!out.status.success(), "plain HTTP got an answer: {out:?}");
    let out = run(
        curl(&pki, s.addr).arg(format!("https://localhost:{}/", s.addr.port())),
        b"",
    );
    assert_eq!(out, "Hello, world!");
}

#[test]
fn certificate_reload_without_restart() {
    if !have_tool("curl") {
        return;
    }
    let first = Pki::localhost();
    let second = Pki::localhost();
    let cert = ReloadableCert::from_pem_files(&first.cert, &first.key).unwrap();
    let s = https(
        TlsServerConfig::builder()
            .reloadable(cert.clone())
            .build()
            .unwrap(),
    );
    let url = format!("https://localhost:{}/", s.addr.port());
    assert_eq!(run(curl(&first, s.addr).arg(&url), b""), "Hello, world!");
    std::fs::copy(&second.cert, &first.cert).unwrap();
    std::fs::copy(&second.key, &first.key).unwrap();
    cert.reload().unwrap();
    assert_eq!(run(curl(&second, s.addr).arg(&url), b""), "Hello, world!");
    assert!(!output(curl(&first, s.addr).arg(&url), b"").status.success());
}

const PYTHON_CLIENT: &str = r#"
import http.client, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]

ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=20)
for i in range(3):
    conn.request("POST", "/echo", body=b"seq%d" % i)
    r = conn.getresponse()
    assert r.status == 200, r.status
    assert r.read() == b"seq%d" % i
conn.request("GET", "/proto")
assert conn.getresponse().read() == b"https"
print(conn.sock.version(), conn.sock.selected_alpn_protocol())
conn.close()

# TLS 1.2 only, on a fresh connection.
ctx12 = ssl.create_default_context(cafile=ca)
ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
conn = http.client.HTTPSConnection(host, port, context=ctx12, timeout=20)
conn.request("GET", "/")
assert conn.getresponse().read() == b"Hello, world!"
print(conn.sock.version())
conn.close()

# The hostname is checked: a name the certificate does not carry is refused.
import socket
raw = socket.create_connection(("127.0.0.1", port), timeout=20)
try:
    ctx.wrap_socket(raw, server_hostname="wrong.test")
    print("accepted a wrong name")
except ssl.SSLCertVerificationError:
    print("refused")
"#;

#[test]
fn python_ssl_client() {
    if !have_tool("python3") {
        return;
    }
    let pki = Pki::localhost();
    let s = https(pki.server_config());
    let out = run(
        Command::new("python3")
            .args(["-c", PYTHON_CLIENT, "localhost", &s.addr.port().to_string()])
            .arg(&pki.ca),
        b"",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["TLSv1.3 http/1.1", "TLSv1.2", "refused"], "{out}");
}

fn s_client(pki: &Pki, addr: SocketAddr, extra: &[&str]) -> Output {
    output(
        Command::new("openssl")
            .args(["s_client", "-ign_eof", "-connect"])
            .arg(addr.to_string())
            .args([
                "-servername",
                "localhost",
                "-verify_return_error",
                "-CAfile",
            ])
            .arg(&pki.ca)
            .args(extra),
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
}

#[test]
fn openssl_s_client_versions_and_alpn() {
    if !have_tool("openssl") {
        return;
    }
    let pki = Pki::localhost();
    let s = https(pki.server_config());
    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let out = s_client(&pki, s.addr, &[flag, "-alpn", "http/1.1"]);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{flag}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("New, {version}, Cipher")),
            "{stdout}"
        );
        assert!(stdout.contains("ALPN protocol: http/1.1"), "{stdout}");
        assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}");
        assert!(stdout.contains("HTTP/1.1 200 OK\r\n"), "{stdout}");
        assert!(stdout.contains("\r\n\r\nHello, world!"), "{stdout}");
    }
    // TLS 1.1 and older are refused (rustls implements 1.2 and 1.3 only).
    let out = s_client(&pki, s.addr, &["-tls1_1"]);
    assert!(!out.status.success(), "TLS 1.1 was accepted");
    // A client offering h2 first, then http/1.1, gets http/1.1 (the server's list).
    let out = s_client(&pki, s.addr, &["-alpn", "h2,http/1.1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ALPN protocol: http/1.1"), "{stdout}");
    assert!(stdout.contains("\r\n\r\nHello, world!"), "{stdout}");
    // A client offering only another ALPN protocol is refused (RFC 7301).
    let out = s_client(&pki, s.addr, &["-alpn", "h2"]);
    assert!(!out.status.success(), "ALPN h2 was accepted");
    // Still serving.
    assert!(s_client(&pki, s.addr, &[]).status.success());
}

/// `openssl s_client` driven line by line: what it prints arrives on a channel, read by
/// a thread, so the test waits for each answer rather than for time to pass.
struct Interactive {
    _child: KillOnDrop,
    stdin: std::process::ChildStdin,
    out: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Interactive {
    fn s_client(pki: &Pki, addr: SocketAddr, version: &str) -> Interactive {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-crlf",
                version,
                "-servername",
                "localhost",
                "-connect",
            ])
            .arg(addr.to_string())
            .arg("-CAfile")
            .arg(&pki.ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, out) = std::sync::mpsc::channel();
        // It reports its commands (KEYUPDATE, RENEGOTIATING) on standard error.
        let outputs: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for mut output in outputs {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = output.read(&mut buf) {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            });
        }
        Interactive {
            _child: KillOnDrop(child),
            stdin,
            out,
            seen: String::new(),
        }
    }

    fn send(&mut self, line: &str) {
        // One write for the line and its newline: `writeln!` makes two on an unbuffered
        // pipe, and s_client may act on the line and exit (a refused renegotiation)
        // before the newline's write, which then fails with a broken pipe.
        if let Err(e) = self.stdin.write_all(format!("{line}\n").as_bytes()) {
            while self.wait_for("never printed", 1) {}
            panic!(
                "s_client took no more input ({e}); it printed: {}",
                self.seen
            );
        }
    }

    /// Waits until `needle` has been printed `times` times in all; false if s_client
    /// ended first.
    fn wait_for(&mut self, needle: &str, times: usize) -> bool {
        while self.seen.matches(needle).count() < times {
            match self.out.recv_timeout(Duration::from_secs(20)) {
                Ok(chunk) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(e) => panic!("{e}: {}", self.seen),
            }
        }
        true
    }
}

/// TLS 1.3 key updates from the client, with and without asking ours in return
/// (OpenSSL's `K` and `k`), on a kept-alive HTTPS connection: requests before and
/// after are answered. TLS 1.2 renegotiation (`R`) is refused, and the server serves
/// on.
#[test]
fn openssl_key_update_and_renegotiation() {
    if !have_tool("openssl") {
        return;
    }
    let pki = Pki::localhost();
    let s = https(pki.server_config());
    let mut c = Interactive::s_client(&pki, s.addr, "-tls1_3");
    assert!(c.wait_for("Verify return code: 0 (ok)", 1), "{}", c.seen);
    for (i, update) in ["K", "k"].into_iter().enumerate() {
        c.send(update);
        assert!(c.wait_for("KEYUPDATE", i + 1), "{}", c.seen);
        c.send("GET / HTTP/1.1");
        c.send("Host: localhost");
        c.send("");
        assert!(c.wait_for("Hello, world!", i + 1), "{}", c.seen);
    }
    let mut c = Interactive::s_client(&pki, s.addr, "-tls1_2");
    assert!(c.wait_for("Verify return code: 0 (ok)", 1), "{}", c.seen);
    c.send("R");
    // s_client gives up on the refused renegotiation and ends.
    assert!(!c.wait_for("never printed", 1));
    assert!(c.seen.contains("RENEGOTIATING"), "{}", c.seen);
    assert!(s_client(&pki, s.addr, &[]).status.success());
}

// ------------------------------------------------------------------ nginx

struct Nginx {
    _child: KillOnDrop,
    port: u16,
}

/// nginx serving TLS with the test PKI's certificate; its files live in the PKI's
/// directory.
fn start_nginx(pki: &Pki) -> Nginx {
    let dir = pki.dir.join("nginx");
    let port = free_port();
    let (cert, key) = (pki.cert.display(), pki.key.display());
    let http = format!(
        r#"    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            return 200 "nginx says $ssl_protocol $ssl_server_name";
        }}
    }}"#
    );
    Nginx {
        _child: run_nginx(&dir, &http, &[port]),
        port,
    }
}

#[test]
fn squall_tls_client_against_nginx() {
    if !have_tool(nginx_path()) {
        return;
    }
    let pki = Pki::localhost();
    let nginx = start_nginx(&pki);
    let port = nginx.port;
    let connector = TlsConnector::new(pki.client_config());
    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let client = TcpClient::new();
                for _ in 0..2 {
                    let stream = connector
                        .connect(&client, "127.0.0.1", port, Some("localhost"), None)
                        .await?;
                    let info = stream.tls_info().unwrap();
                    assert_eq!(info.alpn_protocol.as_deref(), Some(&b"http/1.1"[..]));
                    stream
                        .write(
                            &b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"[..],
                        )
                        .await?;
                    let reply = stream.read_until_close().await?;
                    let reply = String::from_utf8_lossy(&reply);
                    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
                    assert!(reply.ends_with("nginx says TLSv1.3 localhost"), "{reply}");
                }
                // nginx's certificate is not valid for another name.
                let err = connector
                    .connect(&client, "127.0.0.1", port, Some("wrong.test"), None)
                    .await
                    .unwrap_err();
                assert!(squall_tls::TlsError::from_io_error(&err).is_some(), "{err}");
                Ok::<(), Box<dyn std::error::Error>>(())
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap()
        .unwrap();
}
