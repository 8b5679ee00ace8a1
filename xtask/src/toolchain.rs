//! The toolchains tasks need beyond the stable cargo that runs them (rustup's proxy and
//! its nightly, for the fuzz targets), and how to say that one is missing so that
//! nobody reads a pass into a skipped check.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The rustup `cargo` proxy: `+nightly` only works through it, and the `cargo` that runs
/// us (or Debian's in `/usr/bin`) may not be it.
pub(crate) fn rustup_cargo() -> Command {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let proxy = home.map(|h| h.join("bin").join("cargo"));
    let mut cmd = match proxy {
        Some(p) if p.is_file() => Command::new(p),
        _ => Command::new("cargo"),
    };
    // The fuzz workspace keeps its own target folder (fuzz/target), which cargo-fuzz
    // expects to find its binaries in; a CARGO_TARGET_DIR meant for the main workspace
    // would send the nightly, sanitizer-instrumented build elsewhere.
    cmd.env_remove("CARGO_TARGET_DIR");
    // Set by the rustup proxy that started us (stable); `+nightly` wins over it, but the
    // nested cargo that cargo-fuzz starts must not be pinned back to stable.
    cmd.env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

/// `Err` with the install line if rustup has no nightly toolchain.
pub(crate) fn nightly() -> Result<(), String> {
    let out = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map_err(|e| format!("cannot run `rustup toolchain list` ({e}): the fuzz targets need rustup and a nightly toolchain (install rustup, then `rustup toolchain install nightly`)"))?;
    let list = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !has_nightly(&list) {
        return Err(format!(
            "no nightly toolchain (libFuzzer's instrumentation needs it): run `rustup toolchain install nightly`; `rustup toolchain list` says:\n{}",
            list.trim()
        ));
    }
    Ok(())
}

/// True if `rustup toolchain list` output names a nightly toolchain.
fn has_nightly(list: &str) -> bool {
    list.lines().any(|l| l.trim_start().starts_with("nightly"))
}

/// Prints a message nobody can miss in a scrolling log.
pub(crate) fn loud(msg: &str) {
    let bar = "!".repeat(78);
    println!("\n{bar}");
    for line in msg.lines() {
        println!("!!  {line}");
    }
    println!("{bar}\n");
}

/// The Python 2.7 interpreter, or why there is none.
/// (Autobahn|Testsuite's `wstest` runs on Python 2.7 only; pyenv provides it.)
pub(crate) fn python27() -> Result<PathBuf, String> {
    if let Some(py) = std::env::var_os("AUTOBAHN_PYTHON27") {
        let py = PathBuf::from(py);
        return if py.exists() {
            Ok(py)
        } else {
            Err(format!("AUTOBAHN_PYTHON27={} does not exist", py.display()))
        };
    }
    let out = Command::new("pyenv")
        .arg("root")
        .output()
        .map_err(|e| format!("no Python 2.7: `pyenv root` failed ({e}); set AUTOBAHN_PYTHON27"))?;
    let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let py = Path::new(&root).join("versions/2.7.18/bin/python2.7");
    if out.status.success() && py.exists() {
        Ok(py)
    } else {
        Err(format!(
            "no Python 2.7: {} is missing (`pyenv install 2.7.18`, or set AUTOBAHN_PYTHON27)",
            py.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nightly_is_found_in_the_toolchain_list() {
        assert!(has_nightly(
            "stable-x86_64-unknown-linux-gnu (default)\nnightly-x86_64-unknown-linux-gnu\n"
        ));
        assert!(!has_nightly("stable-x86_64-unknown-linux-gnu (default)\n"));
    }
}
