//! Outside tools the interop tests drive (curl, nginx, python3).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
             !!! Install it to run it (`.ci/run` lists the Debian packages).\n{bar}"
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

/// A fresh directory under the system's temporary directory, removed with everything in
/// it when dropped: where an outside server's configuration, files and logs go.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// `squall-<tag>-<pid>-<n>` under `std::env::temp_dir()`.
    ///
    /// # Errors
    /// The OS error of creating it.
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "squall-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process that is killed and reaped when dropped, so a failing test leaves no
/// server running.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start nginx in the foreground for a test, in `dir` (its configuration, pid file, logs
/// and temporary files go there): `http` is what goes inside the configuration's
/// `http { }` block (the `server` blocks), after the settings every test wants (no
/// access log, temporary paths under `dir`). Returns once nginx accepts on each of
/// `ports`; the process ends when the returned value is dropped.
///
/// # Panics
/// When nginx cannot be started or does not accept within 20 s (with its error log).
pub fn run_nginx(dir: &Path, http: &str, ports: &[u16]) -> KillOnDrop {
    std::fs::create_dir_all(dir.join("logs")).expect("nginx's log directory");
    let d = dir.display();
    let conf = format!(
        "daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/logs/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n    \
             access_log off;\n    \
             client_body_temp_path {d}/client_body;\n    \
             proxy_temp_path {d}/proxy;\n    \
             fastcgi_temp_path {d}/fastcgi;\n    \
             uwsgi_temp_path {d}/uwsgi;\n    \
             scgi_temp_path {d}/scgi;\n\
         {http}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let child = Command::new(nginx_path())
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = KillOnDrop(child);
    for &port in ports {
        assert!(
            wait_listening(port, Duration::from_secs(20)),
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default()
        );
    }
    nginx
}

/// Wait until something accepts TCP connections on `127.0.0.1:port`, for at most
/// `timeout`; whether it did. For an outside server just started.
pub fn wait_listening(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
