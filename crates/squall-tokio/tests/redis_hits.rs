//! The `redis_hits` example end to end: a real `redis-server` started on a free port,
//! the example binary serving HTTP on squall's loop, its Redis calls on the bridge.
//! Without `redis-server`, a loud skip (a failure under CI=true).
//!
//! The test runs the example binary that `cargo test` builds beside the test
//! (`target/<profile>/examples/redis_hits`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use squall_testing::{free_port, have_tool, KillOnDrop};

const PATIENCE: Duration = Duration::from_secs(30);

/// Reads `out` line by line on a thread, into a channel.
fn lines(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts redis-server on a free port, retrying with another port if the one picked
/// was taken in the meantime.
fn start_redis() -> (KillOnDrop, u16) {
    for _attempt in 0..5 {
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "notice"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let log = lines(child.stdout.take().unwrap());
        let child = KillOnDrop(child);
        let mut seen = Vec::new();
        loop {
            match log.recv_timeout(PATIENCE) {
                Ok(line) if line.contains("Ready to accept connections") => return (child, port),
                Ok(line) => seen.push(line),
                // The output ended: it could not start (the port was taken): retry.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    eprintln!("redis-server on port {port} did not start: {seen:#?}");
                    break;
                }
                Err(e) => panic!("redis-server did not get ready ({e}): {seen:#?}"),
            }
        }
    }
    panic!("redis-server did not start on any of 5 free ports");
}

fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = profile_dir.join("examples").join("redis_hits");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test -p squall-tokio` builds it (a `--test` filter does \
         not; run `cargo build -p squall-tokio --example redis_hits` first)",
        bin.display()
    );
    bin
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let body = reply.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// `GET key` in Redis's own protocol, straight to the server.
fn redis_get(port: u16, key: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(s, "*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    let mut value = String::new();
    r.read_line(&mut value).unwrap();
    assert!(head.starts_with('$'), "{head:?}");
    value.trim_end().to_owned()
}

fn sigterm(pid: u32) {
    let pid = libc::pid_t::try_from(pid).unwrap();
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is our
    // own child, not reaped yet, so the number is still its.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

#[test]
fn redis_hits_counts_in_a_real_redis() {
    if !have_tool("redis-server") {
        return;
    }
    let (mut redis, port) = start_redis();

    let mut app = Command::new(example_binary())
        .args(["--port", "0", "--address", "127.0.0.1"])
        .args(["--redis", &format!("redis://127.0.0.1:{port}/")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(app.stdout.take().unwrap());
    let pid = app.id();
    let mut app = KillOnDrop(app);
    let first = out
        .recv_timeout(PATIENCE)
        .expect("the example says where it listens");
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_owned();

    for expected in 1..=3 {
        assert_eq!(get(&addr, "/hits"), (200, format!("{expected}\n")));
    }
    assert_eq!(get(&addr, "/elsewhere").0, 404);
    // The count is in Redis itself.
    assert_eq!(redis_get(port, "squall:hits"), "3");

    // Redis gone: an answer that says so, not a crash or a hang.
    let _ = redis.0.kill();
    let _ = redis.0.wait();
    let (status, body) = get(&addr, "/hits");
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("redis: "), "{body}");

    // And the example shuts down on SIGTERM with status 0.
    sigterm(pid);
    let status = app.0.wait().unwrap();
    assert!(status.success(), "redis_hits exited with {status}");
}
