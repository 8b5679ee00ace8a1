//! Real clients and servers: Python's `websockets` and Tornado's own WebSocket code as
//! clients of squall's server and as servers for squall's client, with and without
//! compression.
//!
//! The Python packages go into a virtualenv under `target/ws-interop` (made once, from
//! pinned versions). Without `python3` (and its `venv` module) the tests print a loud
//! skip line, except under `CI=true`, where they fail.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use squall_httpserver::{HttpServer, Response};
use squall_ioloop::IoLoop;
use squall_websocket::{
    websocket_connect, websocket_response, ClientOptions, CloseCode, DeflateConfig, Message,
    WebSocket, WebSocketConfig, WebSocketHandler,
};

/// The Python packages, pinned.
const PACKAGES: &[&str] = &["websockets==15.0.1", "tornado==6.5.2"];

fn skip_or_fail(why: &str) -> Option<PathBuf> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("WebSocket interop needs Python under CI=true: {why}");
    }
    eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!!! SKIPPED: WebSocket interop did not run: {why}");
    eprintln!("!!! Install python3 and python3-venv (Debian) to run it.");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
    None
}

/// The virtualenv's python, made on first use (tests in parallel wait on a lock file).
fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ws-interop");
    let venv = root.join("venv");
    let py = venv.join("bin/python");
    let stamp = venv.join("squall-packages.txt");
    let want = PACKAGES.join("\n");
    let _ = std::fs::create_dir_all(&root);
    // One test sets up; the others wait for it (the lock is a directory: mkdir is atomic).
    let lock = root.join("setup.lock");
    let deadline = Instant::now() + Duration::from_secs(300);
    while std::fs::create_dir(&lock).is_err() {
        if Instant::now() > deadline {
            panic!("{} stayed locked for 5 minutes", lock.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let result = (|| {
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) && py.exists() {
            return Ok(());
        }
        let _ = std::fs::remove_dir_all(&venv);
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        match made {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("`python3 -m venv` failed ({s})")),
            Err(e) => return Err(format!("no python3 ({e})")),
        }
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(PACKAGES)
            .status();
        match pip {
            Ok(s) if s.success() => {}
            other => {
                return Err(format!(
                    "pip install {} failed ({other:?})",
                    PACKAGES.join(" ")
                ))
            }
        }
        std::fs::write(&stamp, &want).map_err(|e| e.to_string())
    })();
    let _ = std::fs::remove_dir(&lock);
    match result {
        Ok(()) => Some(py),
        Err(why) => skip_or_fail(&why),
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// A child killed (by its own handle) when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit within 60 s; its output if it succeeded.
fn finish(mut child: Spawned) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            let mut out = String::new();
            if let Some(stdout) = child.0.stdout.take() {
                let _ = BufReader::new(stdout).read_line(&mut out);
            }
            assert!(status.success(), "python client failed ({status})");
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "python client still running after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Echo;

impl WebSocketHandler for Echo {
    async fn on_message(&mut self, ws: &WebSocket, message: Message) {
        let _ = ws.write_message(message);
    }
}

/// squall's echo server on its own thread; stops when the returned handle drops.
struct Server {
    addr: SocketAddr,
    remote: squall_ioloop::RemoteHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.remote.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn squall_server(compression: bool) -> Server {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let io_loop = IoLoop::new().unwrap();
        io_loop.make_current();
        let mut config = WebSocketConfig::default();
        config.compression = compression.then(DeflateConfig::default);
        let mut server = HttpServer::new(move |req| {
            let config = config.clone();
            async move {
                if req.path() == "/ws" {
                    websocket_response(&req, &config, Echo)
                } else {
                    Response::text("http")
                }
            }
        });
        let addr = server.listen(0, "127.0.0.1").unwrap();
        tx.send((addr, io_loop.remote())).unwrap();
        io_loop.start().unwrap();
        drop(server);
    });
    let (addr, remote) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    Server {
        addr,
        remote,
        thread: Some(thread),
    }
}

fn python_client(py: &Path, name: &str, compression: bool) {
    let server = squall_server(compression);
    let child = Command::new(py)
        .arg(script(name))
        .arg(format!("ws://{}/ws", server.addr))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(Spawned(child));
    assert!(out.starts_with("ok"), "{out}");
    if name.starts_with("websockets") {
        assert_eq!(out.contains("permessage-deflate"), compression, "{out}");
    }
}

#[test]
fn python_websockets_client_against_squall_server() {
    let Some(py) = python() else { return };
    for compression in [false, true] {
        python_client(&py, "websockets_client.py", compression);
    }
}

#[test]
fn tornado_websocket_connect_against_squall_server() {
    let Some(py) = python() else { return };
    for compression in [false, true] {
        python_client(&py, "tornado_client.py", compression);
    }
}

/// Starts a Python server script and returns it with its port.
fn python_server(py: &Path, name: &str) -> (Spawned, u16) {
    let mut child = Spawned(
        Command::new(py)
            .arg(script(name))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    (child, port)
}

fn squall_client(port: u16, compression: bool) {
    let mut config = WebSocketConfig::default();
    config.compression = compression.then(DeflateConfig::default);
    let options = ClientOptions::new(config);
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let ws = websocket_connect(&format!("ws://127.0.0.1:{port}/"), &options)
                    .await
                    .unwrap();
                let sent: Vec<Message> = vec![
                    "hello".into(),
                    b"\x00\x01binary".as_slice().into(),
                    "\u{e9}".repeat(5000).into(),
                ];
                for m in &sent {
                    ws.send(m.clone()).await.unwrap();
                    assert_eq!(ws.next().await.as_ref(), Some(m));
                }
                ws.ping(b"x").unwrap();
                ws.close(Some(CloseCode::NORMAL), "bye").unwrap();
                assert_eq!(ws.next().await, None);
                assert_eq!(ws.close_code(), Some(CloseCode::NORMAL));
            },
            Some(Duration::from_secs(60)),
        )
        .unwrap();
}

#[test]
fn squall_client_against_python_websockets_server() {
    let Some(py) = python() else { return };
    let (_server, port) = python_server(&py, "websockets_server.py");
    for compression in [false, true] {
        squall_client(port, compression);
    }
}

#[test]
fn squall_client_against_tornado_server() {
    let Some(py) = python() else { return };
    let (_server, port) = python_server(&py, "tornado_server.py");
    for compression in [false, true] {
        squall_client(port, compression);
    }
}
