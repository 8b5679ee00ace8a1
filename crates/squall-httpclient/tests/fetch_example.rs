//! The `fetch` example, `python -m tornado.httpclient URL`'s counterpart, run as a
//! command: the binary that `cargo test` builds beside the test
//! (`target/<profile>/examples/fetch`).

use std::path::PathBuf;
use std::process::Command;

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
