//! Outside tools the interop tests drive (curl, nginx, python3).

use std::path::Path;

/// Whether CI is running (`CI=true`): a missing tool is then a failure, not a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether an outside tool is there (a path, or a name looked up on `PATH`). Missing: a
/// loud message and `false`, so the test skips, except under `CI=true`, where a missing
/// tool fails the test.
///
/// # Panics
/// Under `CI=true`, when the tool is missing.
pub fn have_tool(path_or_name: &str) -> bool {
    let found = if path_or_name.contains('/') {
        Path::new(path_or_name).exists()
    } else {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|p| p.join(path_or_name).is_file())
        })
    };
    if !found {
        assert!(
            !under_ci(),
            "`{path_or_name}` is required under CI=true but was not found"
        );
        let bar = "!".repeat(72);
        // tidy: allow(print) a skipped interop test must be loud in the test output, where no logger is read
        eprintln!(
            "\n{bar}\n!!! SKIPPED: `{path_or_name}` is not installed; this interop test did not run.\n\
             !!! Install it (Debian: apt-get install curl python3 nginx) to run it.\n{bar}"
        );
    }
    found
}

/// Where nginx is: Debian's `/usr/sbin` (often not on a user's `PATH`), FreeBSD's
/// `/usr/local/sbin`, Homebrew's `/opt/homebrew/bin`; else `nginx` from `PATH`.
pub fn nginx_path() -> &'static str {
    [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/opt/homebrew/bin/nginx",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("nginx")
}
