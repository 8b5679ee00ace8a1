//! HttpServer on a Unix socket: a raw client, and curl's `--unix-socket` (a missing
//! curl skips loudly, and fails under CI=true).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use common::READ_TIMEOUT;
use squall_httpserver::{HttpServer, HttpServerRequest, Response, DEFAULT_UNIX_SOCKET_MODE};
use squall_ioloop::{IoLoop, RemoteHandle};
use squall_testing::have_tool;

fn app(req: HttpServerRequest) -> std::future::Ready<Response> {
    std::future::ready(match req.path() {
        "/echo" => Response::bytes(req.body),
        "/ip" => Response::text(format!("[{}]", req.remote_ip())),
        _ => Response::text("Hello over a Unix socket"),
    })
}

/// Taken by the test that judges a socket file stale and by the test that starts
/// processes: between `fork` and `exec` a child holds a copy of every fd of this process,
/// close-on-exec ones included, so a listener that a test has closed can still accept a
/// connect for that moment, and the stale socket looks live (`AddrInUse`).
static FORKS: Mutex<()> = Mutex::new(());

/// A fresh socket path in the temporary directory, unique to this process and name.
fn socket_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("squall-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Serves `app` on `path` from a loop on its own thread until the handle is dropped.
struct UnixServer {
    remote: RemoteHandle,
    thread: Option<JoinHandle<()>>,
}

impl UnixServer {
    fn start(path: &Path) -> UnixServer {
        let path = path.to_owned();
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let io_loop = IoLoop::new().unwrap();
            io_loop.make_current();
            let mut server = HttpServer::new(app);
            server.listen_unix(&path).unwrap();
            tx.send(io_loop.remote()).unwrap();
            io_loop.start().unwrap();
            io_loop.close(true).unwrap();
            drop(server);
        });
        let remote = rx.recv_timeout(READ_TIMEOUT).expect("server started");
        UnixServer {
            remote,
            thread: Some(thread),
        }
    }
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        self.remote.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn raw_request(path: &Path, request: &[u8]) -> String {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn test_unix_socket_raw_client() {
    let path = socket_path("raw");
    let _server = UnixServer::start(&path);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, DEFAULT_UNIX_SOCKET_MODE, "owner-only, as Tornado");
    let reply = raw_request(
        &path,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.ends_with("\r\n\r\nHello over a Unix socket"),
        "{reply}"
    );
    // No peer address on a Unix socket.
    let reply = raw_request(
        &path,
        b"GET /ip HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.ends_with("\r\n\r\n[]"), "{reply}");
    // Keep-alive works as on TCP: two requests, one connection.
    let reply = raw_request(
        &path,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping",
    );
    assert_eq!(reply.matches("HTTP/1.1 200 OK").count(), 2, "{reply}");
    assert!(reply.ends_with("\r\n\r\nping"), "{reply}");
}

#[test]
fn test_unix_socket_live_path_is_refused_and_stale_one_replaced() {
    let _no_fork = FORKS.lock().unwrap_or_else(PoisonError::into_inner);
    let path = socket_path("reuse");
    {
        let _server = UnixServer::start(&path);
        // A second server on a live socket: AddrInUse, without touching the first.
        let io_loop = IoLoop::new().unwrap();
        io_loop.make_current();
        let mut second = HttpServer::new(app);
        let err = second.listen_unix(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
        IoLoop::clear_current();
        drop(second);
        io_loop.close(true).unwrap();
        let reply = raw_request(
            &path,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    }
    // The first server is gone and its file is stale: a new server replaces it.
    assert!(path.exists());
    let _server = UnixServer::start(&path);
    let reply = raw_request(
        &path,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn curl_unix_socket() {
    let _no_fork = FORKS.lock().unwrap_or_else(PoisonError::into_inner);
    if !have_tool("curl") {
        return;
    }
    let path = socket_path("curl");
    let _server = UnixServer::start(&path);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--unix-socket"])
        .arg(&path)
        .args([
            "http://localhost/",
            "http://localhost/echo",
            "--data-binary",
            "from curl",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // curl sends both requests as POSTs with the data on one connection.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello over a Unix socketfrom curl"
    );
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20", "--unix-socket"])
        .arg(&path)
        .arg("http://localhost/")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    std::fs::remove_file(&path).unwrap();
}
