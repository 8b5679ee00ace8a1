//! Helpers shared by the tasks: where the workspace is, which crates it has, and how to
//! run a command with its duration measured.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

/// The workspace root (the folder above `xtask/`).
pub(crate) fn project_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// The cargo that runs us (`cargo +nightly xtask` nests `+nightly` cargos), else `cargo`.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
}

/// This xtask binary, to run another task as a subprocess (`ci` runs `tidy` so): tasks
/// never call each other's functions.
///
/// # Errors
///
/// If the path of the running executable cannot be found.
pub(crate) fn xtask() -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("finding the xtask executable")?;
    Ok(Command::new(exe))
}

/// True when running under CI (`CI` set to anything but `false`/`0`, as GitHub Actions
/// and `.ci/run` set it): there, nothing may pass by being skipped.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The package names of the crates in `crates/*` (folders with a `Cargo.toml`), sorted.
pub(crate) fn workspace_crates(root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = root.join("crates");
    let mut names = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let manifest = entry?.path().join("Cargo.toml");
        let text = match fs::read_to_string(&manifest) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", manifest.display())),
        };
        let name = package_name(&text)
            .with_context(|| format!("{}: no `name` in [package]", manifest.display()))?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// The `name` of the `[package]` table of a manifest (a line-based read: enough for our
/// own manifests, which keep `name = "..."` on one line).
pub(crate) fn package_name(manifest: &str) -> Option<String> {
    table_names(manifest, "[package]").into_iter().next()
}

/// The `name = "..."` of every table headed `header` (`[package]`, `[[bin]]`), in file
/// order, by the same line-based read.
pub(crate) fn table_names(manifest: &str, header: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == header;
        } else if inside {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim() == "name" {
                    names.push(value.trim().trim_matches('"').to_owned());
                    inside = false;
                }
            }
        }
    }
    names
}

/// The target folder cargo uses for this workspace (honours `CARGO_TARGET_DIR` and
/// `build.target-dir`), from `cargo metadata`. If the workspace is too broken for that
/// (a member's manifest does not parse), `CARGO_TARGET_DIR` or `<root>/target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match try_target_dir(root) {
        Ok(dir) => dir,
        Err(e) => {
            let dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            println!("xtask: {e:#}; using {}", dir.display());
            dir
        }
    }
}

/// Like [`target_dir`], without the fallback.
///
/// # Errors
///
/// If `cargo metadata` fails: then the workspace does not load (a member's manifest
/// does not parse, or has no sources yet), and the error says why.
pub(crate) fn try_target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let out = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .context("running `cargo metadata`")?;
    if !out.status.success() {
        anyhow::bail!(
            "`cargo metadata` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let json = String::from_utf8(out.stdout).context("`cargo metadata` printed non-UTF-8")?;
    json_string_field(&json, "target_directory")
        .map(PathBuf::from)
        .context("`cargo metadata` has no target_directory")
}

/// The value of the first `"key":"value"` string field in a JSON text. Good enough for
/// `cargo metadata`'s top-level paths without a JSON parser.
pub(crate) fn json_string_field(json: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":\"");
    let start = json.find(&needle)? + needle.len();
    let mut value = String::new();
    let mut chars = json[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// A command line as a person would type it, with its extra environment first.
pub(crate) fn display(cmd: &Command) -> String {
    let mut s = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            let _ = write!(s, "{}={} ", key.to_string_lossy(), quote(value));
        }
    }
    // The cargo that runs us is a long rustup path; `cargo` is what a person types, and
    // `cargo xtask` for this binary.
    let program = cmd.get_program();
    if std::env::var_os("CARGO").is_some_and(|c| c == program) {
        s.push_str("cargo");
    } else if std::env::current_exe().is_ok_and(|exe| exe == program) {
        s.push_str("cargo xtask");
    } else {
        s.push_str(&quote(program));
    }
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote(arg));
    }
    s
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=+,./:@".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with its output going straight to ours, and returns how long it took.
///
/// # Errors
///
/// If the command cannot be started, or exits unsuccessfully (the error names the
/// command and its exit status).
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<Duration> {
    let shown = display(cmd);
    println!("$ {shown}");
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if status.success() {
        Ok(start.elapsed())
    } else {
        anyhow::bail!("`{shown}` failed ({status})")
    }
}

/// `0.4s`, `12.3s`, `3m05s`.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_name_reads_the_package_table_only() {
        let manifest = "[workspace]\nname = \"no\"\n\n[package]\nname = \"squall-poller\"\nversion = \"1\"\n\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("squall-poller"));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    }

    #[test]
    fn json_string_field_unescapes() {
        let json = r#"{"packages":[],"target_directory":"/w/t\"a\\b\u0041","version":1}"#;
        assert_eq!(
            json_string_field(json, "target_directory").as_deref(),
            Some("/w/t\"a\\bA")
        );
        assert_eq!(json_string_field(json, "workspace_root"), None);
        assert_eq!(json_string_field(r#"{"a":"unterminated"#, "a"), None);
    }

    #[test]
    fn display_quotes_what_a_shell_would_need() {
        let mut cmd = Command::new("cargo");
        cmd.env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--no-deps", "it's"]);
        assert_eq!(
            display(&cmd),
            r"RUSTDOCFLAGS='-D warnings' cargo doc --no-deps 'it'\''s'"
        );
    }

    #[test]
    fn display_names_this_binary_as_cargo_xtask() {
        let mut cmd = xtask().unwrap();
        cmd.arg("tidy");
        assert_eq!(display(&cmd), "cargo xtask tidy");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_millis(400)), "0.4s");
        assert_eq!(human(Duration::from_millis(59_940)), "59.9s");
        assert_eq!(human(Duration::from_secs(185)), "3m05s");
    }

    #[test]
    fn workspace_crates_lists_our_crates() {
        let crates = workspace_crates(&project_root()).unwrap();
        assert!(crates.iter().any(|c| c == "squall-poller"), "{crates:?}");
        assert!(crates.iter().all(|c| c.starts_with("squall")), "{crates:?}");
    }
}
