//! The `hello` example shuts down gracefully on SIGTERM: a request in flight when the
//! signal arrives gets its whole response, and the process exits 0.
//!
//! The test runs the example binary that `cargo test` builds beside the test
//! (`target/<profile>/examples/hello`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{hello_binary, Reap};

const PATIENCE: Duration = Duration::from_secs(30);

fn sigterm(pid: u32) {
    let pid = libc::pid_t::try_from(pid).unwrap();
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is our
    // own child, which has not been reaped yet (so the number is still its).
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Waits (bounded) for a log line containing `what`.
fn wait_for_line(log: &mpsc::Receiver<String>, what: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(what) => return,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no log line with {what:?} ({e}); log so far: {seen:#?}"),
        }
    }
}

#[test]
fn test_hello_finishes_the_request_in_flight_on_sigterm_and_exits_0() {
    let mut child = Command::new(hello_binary())
        .args(["--port", "0", "--address", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();
    let mut child = Reap(Some(child));

    // "squall hello listening on http://127.0.0.1:PORT/ with 1 thread(s)"
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_owned();

    // The log, line by line, from a thread.
    let (log_tx, log_rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if log_tx.send(line).is_err() {
                break;
            }
        }
    });

    // A request in flight: the head is parsed (the server says 100 Continue), the
    // body not sent yet.
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    conn.write_all(
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut interim = [0u8; 25];
    conn.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");

    // Signal only once the handlers are in (before that, SIGTERM's default action
    // would end the process: not what this test is about).
    let mut seen = Vec::new();
    wait_for_line(
        &log_rx,
        "SIGTERM or SIGINT shuts the HTTP server down",
        &mut seen,
    );
    // A second connection, idle after one answered request: the drain closes it,
    // which tells the test the drain has reached the server's loop.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(PATIENCE)).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).unwrap();
    assert!(
        answer[..n].ends_with(b"Hello, world!"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );

    sigterm(pid);
    wait_for_line(&log_rx, "SIGTERM: shutting down", &mut seen);
    assert_eq!(
        idle.read(&mut answer).unwrap(),
        0,
        "the idle connection is closed"
    );

    // The rest of the body: the response comes whole, says the connection closes, and
    // the server closes it (read_to_end sees end-of-file).
    conn.write_all(b"0123456789").unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.contains("\r\nContent-Length: 10\r\n"), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{reply}"
    );
    assert!(reply.ends_with("\r\n\r\n0123456789"), "{reply}");

    // And the process ends by itself, with status 0.
    let mut c = child.0.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let status = c.wait();
        let _ = tx.send(status);
    });
    let status = rx
        .recv_timeout(PATIENCE)
        .expect("hello did not exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "hello exited with {status}");
}
