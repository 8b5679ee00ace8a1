//! Helpers shared by the tasks: where the workspace is, which crates it has, and how to
//! run a command with its duration measured.

use std::ffi::OsStr;
use std::fmt::Write as _;
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

/// What `cargo metadata --no-deps` says about a workspace, read with serde_json.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metadata {
    /// The target folder cargo uses (honours `CARGO_TARGET_DIR` and `build.target-dir`).
    pub(crate) target_directory: PathBuf,
    /// The workspace's own packages (no dependencies), in cargo's order.
    pub(crate) packages: Vec<Package>,
}

/// One package of a [`Metadata`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) manifest_path: PathBuf,
    /// The names of its binary targets (`[[bin]]` and `src/main.rs`).
    pub(crate) bins: Vec<String>,
}

impl Metadata {
    /// Runs `cargo metadata --no-deps` for the workspace of `manifest` (from that
    /// folder, so its `.cargo/config.toml` counts).
    ///
    /// # Errors
    ///
    /// If cargo cannot run, or fails: then the workspace does not load (a member's
    /// manifest does not parse, or has no sources yet), and the error says why.
    pub(crate) fn load(manifest: &Path) -> anyhow::Result<Metadata> {
        let mut cmd = cargo();
        cmd.args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest);
        if let Some(dir) = manifest.parent() {
            cmd.current_dir(dir);
        }
        let out = cmd.output().context("running `cargo metadata`")?;
        if !out.status.success() {
            anyhow::bail!(
                "`cargo metadata` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Metadata::parse(&out.stdout)
    }

    /// Reads `cargo metadata`'s JSON.
    fn parse(json: &[u8]) -> anyhow::Result<Metadata> {
        let v: serde_json::Value =
            serde_json::from_slice(json).context("`cargo metadata` printed no JSON")?;
        let text = |v: &serde_json::Value, key: &str| {
            v[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("`cargo metadata` has no string `{key}`"))
        };
        let mut packages = Vec::new();
        for p in v["packages"].as_array().into_iter().flatten() {
            let mut bins = Vec::new();
            for t in p["targets"].as_array().into_iter().flatten() {
                let kinds = t["kind"].as_array().into_iter().flatten();
                if kinds.filter_map(|k| k.as_str()).any(|k| k == "bin") {
                    bins.push(text(t, "name")?);
                }
            }
            packages.push(Package {
                name: text(p, "name")?,
                manifest_path: text(p, "manifest_path")?.into(),
                bins,
            });
        }
        Ok(Metadata {
            target_directory: text(&v, "target_directory")?.into(),
            packages,
        })
    }

    /// The names of every package's binary targets, sorted.
    pub(crate) fn bins(&self) -> Vec<String> {
        let mut bins: Vec<String> = self
            .packages
            .iter()
            .flat_map(|p| p.bins.iter().cloned())
            .collect();
        bins.sort();
        bins
    }

    /// The names of the packages in `<root>/crates/`, sorted.
    pub(crate) fn crates(&self, root: &Path) -> Vec<String> {
        let dir = root.join("crates");
        let mut names: Vec<String> = self
            .packages
            .iter()
            .filter(|p| p.manifest_path.starts_with(&dir))
            .map(|p| p.name.clone())
            .collect();
        names.sort();
        names
    }
}

/// The target folder cargo uses for the workspace at `root` ([`Metadata`]'s). If the
/// workspace is too broken for that (a member's manifest does not parse),
/// `CARGO_TARGET_DIR` or `<root>/target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match Metadata::load(&root.join("Cargo.toml")) {
        Ok(m) => m.target_directory,
        Err(e) => {
            let dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            println!("xtask: {e:#}; using {}", dir.display());
            dir
        }
    }
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
    fn metadata_is_read_from_cargos_json() {
        let json = br#"{"packages":[{"name":"squall-fuzz","manifest_path":"/w/fuzz/Cargo.toml","targets":[{"name":"squall_fuzz","kind":["lib"]},{"name":"head","kind":["bin"]},{"name":"chunked","kind":["bin"]}]},{"name":"squall-poller","manifest_path":"/w/crates/squall-poller/Cargo.toml","targets":[]}],"target_directory":"/w/t\"a\\b\u0041","version":1}"#;
        let m = Metadata::parse(json).unwrap();
        assert_eq!(m.target_directory, Path::new("/w/t\"a\\bA"));
        assert_eq!(m.packages[0].bins, ["head", "chunked"]);
        assert_eq!(m.bins(), ["chunked", "head"]);
        assert_eq!(m.crates(Path::new("/w")), ["squall-poller"]);
        assert!(Metadata::parse(b"{}").is_err());
        assert!(Metadata::parse(b"not json").is_err());
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
        let root = project_root();
        let crates = Metadata::load(&root.join("Cargo.toml"))
            .unwrap()
            .crates(&root);
        assert!(crates.iter().any(|c| c == "squall-poller"), "{crates:?}");
        assert!(crates.iter().all(|c| c.starts_with("squall")), "{crates:?}");
    }
}
