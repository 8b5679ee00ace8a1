//! The `fetch` example, `python -m tornado.httpclient URL`'s counterpart, run as a
//! command: the binary that `cargo test` builds beside the test
//! (`target/<profile>/examples/fetch`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn fetch_binary() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/fetch
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let fetch = profile_dir.join("examples").join("fetch");
    assert!(
        fetch.exists(),
        "{} is missing: `cargo test -p squall-httpclient` builds it (a `--test` filter \
         does not; run `cargo build -p squall-httpclient --example fetch` first)",
        fetch.display()
    );
    fetch
}

/// `--help` (and `-h`) prints the usage on standard output and succeeds, as a command's
/// help does (and Tornado's `--help`, which exits 0). It was an unknown option: the
/// usage went to standard error with exit status 2.
#[test]
fn help_prints_the_usage_and_succeeds() {
    for flag in ["--help", "-h"] {
        let out = Command::new(fetch_binary()).arg(flag).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{flag}: {out:?}");
        assert!(stdout.contains("usage: fetch"), "{flag}: {stdout}");
        assert!(stdout.contains("--no-follow-redirects"), "{flag}: {stdout}");
    }
}

/// A non-2xx answer is printed as any other (its headers with `--print-headers`, its
/// body), as Tornado's `main` prints an `HTTPError`'s response; the failure is still
/// reported on standard error with exit status 1. So `--no-follow-redirects
/// --print-headers` shows the redirect's `Location`. (Nothing of the answer was printed:
/// only the error line.)
#[test]
fn a_non_2xx_answer_is_printed_and_fails() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        s.write_all(
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\n\
              Content-Length: 5\r\nConnection: close\r\n\r\nmoved",
        )
        .unwrap();
    });
    let out = Command::new(fetch_binary())
        .args([
            "--no-follow-redirects",
            "--print-headers",
            "--timeout",
            "30",
        ])
        .arg(format!("http://{addr}/old"))
        .output()
        .unwrap();
    server.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout.starts_with("HTTP/1.1 301 Moved Permanently\n"),
        "{stdout}"
    );
    assert!(stdout.contains("location: /elsewhere\n"), "{stdout}");
    assert!(stdout.ends_with("\nmoved"), "{stdout}");
    assert!(stderr.contains("HTTP 301"), "{stderr}");
}
