//! `cargo xtask ci [--no-cross] [--quick] [--fail-fast]`: every check a change must pass,
//! in order, with one summary line per step and a final verdict.
//!
//! Steps: `manifests` (the workspace loads), `fmt`, `tidy`, `clippy`, `test`,
//! `autobahn` (the WebSocket conformance suite without compression, when Python 2.7 is
//! there), the forced-backend re-runs of the suites that run an `IoLoop` (`SQUALL_POLLER=poll` and
//! `=select`), `doc`, `bench` (benches compile), `fuzz (build)` (every fuzz target
//! compiles with a plain `cargo +nightly build`; without nightly a loud skip locally, a
//! failure under CI), and `cross <target>`: `cargo clippy`
//! (a type-check and the lints) and `cargo doc` for FreeBSD and both macOS targets with
//! Debian's compiler and `-Zbuild-std` (CONTRIBUTING.md, "The FreeBSD and macOS type-check",
//! explains the set-up).
//!
//! Every step runs even after one fails (unless `--fail-fast`), and within a step cargo
//! keeps going past a failed crate or test binary, so one run reports everything that
//! is wrong. The exit status is non-zero if any step failed. A skipped
//! step says why; under CI (`CI=true`) a missing cross toolchain is a failure, never a
//! skip, so CI cannot pass by skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::flags::Flags;
use crate::toolchain;
use crate::util::{self, cargo};

/// The crates whose tests never run an `IoLoop`, so `SQUALL_POLLER` cannot change them:
/// the forced-backend runs leave them out (`--workspace --exclude`) and re-run the rest:
/// the loop, the streams, the servers, the facade's examples, and also xtask and the
/// benches, whose tests take a second or two. Selecting by exclusion keeps the package
/// set, and so the features of shared dependencies, the same as `test`'s `--workspace`:
/// with `-p` for a few crates, cargo resolved other features (those xtask's and the
/// benches' dependencies add) and built the crates above the pollers a second time.
const BELOW_THE_LOOP: &[&str] = &[
    "squall-poller",
    "squall-epoll",
    "squall-kqueue",
    "squall-poll",
    "squall-select",
    "squall-httputil",
];

/// The backends the forced runs pick through `SQUALL_POLLER` (read by `IoLoop::new()`).
const FORCED_BACKENDS: &[&str] = &["poll", "select"];

/// The targets type-checked with Debian's compiler; see [`cross`]. ARM64 Linux is one
/// because `squall_poller::sys` makes its syscalls with the `syscall` instruction on
/// x86-64 only: elsewhere they take another branch, checked there.
const CROSS_TARGETS: &[&str] = &[
    "x86_64-unknown-freebsd",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "aarch64-unknown-linux-gnu",
];

/// The Debian packages that provide the cross toolchain.
const CROSS_PACKAGES: &str = "rustc-web cargo-web rust-web-src rust-web-clippy";

struct Opts {
    no_cross: bool,
    quick: bool,
    fail_fast: bool,
}

/// Runs the check; fails if any step failed.
pub(crate) fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut flags = Flags::new("ci", args);
    let opts = Opts {
        no_cross: flags.flag("--no-cross"),
        quick: flags.flag("--quick"),
        fail_fast: flags.flag("--fail-fast"),
    };
    flags.finish()?;

    let root = util::project_root();
    let mut ci = Ci::new(opts.fail_fast);
    let quick = opts.quick.then_some("--quick");

    // A crate folder without sources (someone's work in progress) stops every cargo
    // command; say so once instead of failing every step with the same error.
    let mut metadata = None;
    ci.step("manifests", None, || {
        metadata = Some(util::Metadata::load(&root.join("Cargo.toml"))?);
        Ok(None)
    });
    let Some(metadata) = metadata else {
        ci.block("the workspace does not load (see `manifests`)");
        return ci.finish();
    };
    let crates = metadata.crates(&root);
    let target_dir = metadata.target_directory;

    ci.step("fmt", None, || {
        util::run(
            cargo()
                .current_dir(&root)
                .args(["fmt", "--all", "--", "--check"]),
        )?;
        Ok(None)
    });
    // The tidy task itself, as a subprocess like every other step: its problems are
    // listed in its output, and the step fails when it does.
    ci.step("tidy", None, || {
        util::run(util::xtask()?.arg("tidy"))?;
        Ok(None)
    });
    ci.step("clippy", None, || {
        util::run(cargo().current_dir(&root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--keep-going",
            "--",
            "-D",
            "warnings",
        ]))?;
        Ok(None)
    });
    ci.step("test", None, || {
        util::run(
            cargo()
                .current_dir(&root)
                .args(["test", "--workspace", "--no-fail-fast"]),
        )?;
        Ok(None)
    });

    // The WebSocket conformance suite, without the compression sections (about 35 s).
    // A missing Python 2.7 is the one skip that CI=true does not turn into a failure:
    // `.ci/run` cannot install it from Debian (see xtask/src/autobahn.rs).
    let autobahn_skip = quick.map(str::to_owned).or_else(|| {
        toolchain::python27().err().inspect(|why| {
            toolchain::loud(&format!(
                "autobahn: SKIPPED, the WebSocket conformance suite did not run\n{why}"
            ))
        })
    });
    ci.step("autobahn", autobahn_skip, || {
        // The task itself, as a subprocess like the tidy step; without --full it runs
        // the sections without compression and fails on any FAILED case.
        util::run(util::xtask()?.arg("autobahn"))?;
        Ok(Some(
            "no FAILED case, server and client (sections 12 and 13 with --full)".to_owned(),
        ))
    });

    let (below, above): (Vec<&str>, Vec<&str>) = crates
        .iter()
        .map(String::as_str)
        .partition(|c| BELOW_THE_LOOP.contains(c));
    for backend in FORCED_BACKENDS {
        let skip = quick.map(str::to_owned).or_else(|| {
            (!above.contains(&"squall-ioloop"))
                .then(|| "squall-ioloop does not exist yet".to_owned())
        });
        ci.step(&format!("test SQUALL_POLLER={backend}"), skip, || {
            let mut cmd = cargo();
            cmd.current_dir(&root).env("SQUALL_POLLER", backend).args([
                "test",
                "--workspace",
                "--no-fail-fast",
            ]);
            for c in &below {
                cmd.args(["--exclude", c]);
            }
            util::run(&mut cmd)?;
            Ok(Some(format!("all but {}", below.join(" "))))
        });
    }

    ci.step("doc", quick.map(str::to_owned), || {
        util::run(
            cargo()
                .current_dir(&root)
                .env("RUSTDOCFLAGS", "-D warnings")
                .args(["doc", "--workspace", "--no-deps"]),
        )?;
        Ok(None)
    });
    // Only the `[[bench]]` targets (`--bench '*'`; without it every crate's unit-test
    // harness is built as a bench too), with the dev profile: clippy has type-checked
    // them already, this links them, and it reuses what `test` built (the same package
    // selection, so the same features). An optimised build of the whole workspace
    // would only add codegen time; `cargo xtask bench` does that when it runs them.
    ci.step("bench (compile only)", quick.map(str::to_owned), || {
        util::run(cargo().current_dir(&root).args([
            "bench",
            "--workspace",
            "--bench",
            "*",
            "--profile",
            "dev",
            "--no-run",
        ]))?;
        Ok(None)
    });

    // Every fuzz target compiles (a plain nightly build: libFuzzer's runtime links, no
    // sanitizer, no cargo-fuzz). Without nightly: a loud skip here, a failure under CI.
    const FUZZ: &str = "fuzz (build)";
    match (opts.quick, toolchain::nightly()) {
        (true, _) => ci.step(FUZZ, Some("--quick".to_owned()), || Ok(None)),
        (false, Ok(())) => ci.step(FUZZ, None, || fuzz_build(&root)),
        (false, Err(why)) if util::in_ci() => ci.step(FUZZ, None, || {
            anyhow::bail!("{why}\nCI=true: the fuzz build FAILS instead of being skipped.")
        }),
        (false, Err(why)) => {
            toolchain::loud(&format!(
                "{why}\nNot under CI: the fuzz targets are NOT BUILT; CI will build them."
            ));
            ci.step(FUZZ, Some("no nightly toolchain".to_owned()), || Ok(None));
        }
    }

    let plan = if opts.no_cross {
        CrossPlan::Skip("--no-cross".to_owned())
    } else if opts.quick {
        CrossPlan::Skip("--quick".to_owned())
    } else {
        CrossPlan::new(DebianToolchain::find(Path::new("/usr/bin")), util::in_ci())
    };
    // Its own target folder, so the two toolchains never invalidate each other's builds.
    let xcheck = target_dir.join("xcheck");
    for target in CROSS_TARGETS {
        let name = format!("cross {target}");
        match &plan {
            CrossPlan::Run(tc) => ci.step(&name, None, || cross(&root, &xcheck, tc, target)),
            CrossPlan::Skip(why) => ci.step(&name, Some(why.clone()), || Ok(None)),
            CrossPlan::Fail(why) => ci.step(&name, None, || anyhow::bail!("{why}")),
        }
    }

    ci.finish()
}

/// Builds every fuzz target with a plain `cargo +nightly build` of `fuzz/` (debug, no
/// sanitizer, so cargo-fuzz is not needed): the check that the targets still compile
/// against the crates they fuzz. The note names the targets.
fn fuzz_build(root: &Path) -> anyhow::Result<Option<String>> {
    let fuzz = root.join("fuzz");
    let bins = util::Metadata::load(&fuzz.join("Cargo.toml"))?.bins();
    util::run(
        toolchain::rustup_cargo()
            .current_dir(&fuzz)
            .args(["+nightly", "build", "--bins", "--locked"]),
    )?;
    Ok(Some(bins.join(" ")))
}

/// `cargo clippy -D warnings` (which type-checks everything, so no separate `cargo
/// check`) and `cargo doc` (`-D warnings`) of the whole workspace for `target`, with
/// Debian's compiler and `-Zbuild-std`.
///
/// The rustup toolchains here carry only the host's std and no `rust-src`, so code behind
/// `cfg(target_os = "macos" | "freebsd")` (kqueue above all) cannot be checked with them.
/// Debian's `rustc-web` 1.96 ships its own std source; with `RUSTC_BOOTSTRAP=1`,
/// `-Zbuild-std` builds std for the target and type-checks our code against the real
/// `libc` bindings there. It only type-checks: linking would need the target's SDK.
/// rustdoc runs too, because an intra-doc link to an item that exists on Linux only
/// breaks the macOS and FreeBSD `doc` step.
///
/// The variables go on each command, never into our own environment, so the ordinary
/// `cargo test` never picks up the Debian compiler; and the build gets its own target
/// folder so the two toolchains do not invalidate each other's artifacts.
fn cross(
    root: &Path,
    xcheck: &Path,
    tc: &DebianToolchain,
    target: &str,
) -> anyhow::Result<Option<String>> {
    let with_env = |mut cmd: Command| {
        cmd.current_dir(root)
            .env("RUSTC", &tc.rustc)
            .env("RUSTDOC", &tc.rustdoc)
            .env("CARGO", &tc.cargo)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", xcheck)
            // Whatever rustup toolchain runs us must not leak into Debian's cargo.
            .env_remove("RUSTUP_TOOLCHAIN");
        cmd
    };
    let build_std = ["-Zbuild-std=core,std", "--target", target, "--keep-going"];
    let scopes = cross_scopes(root);

    let mut t_clippy = Duration::ZERO;
    for scope in &scopes {
        let mut clippy = with_env(Command::new(&tc.cargo_clippy));
        clippy
            .arg("clippy")
            .args(build_std)
            .args(scope)
            .args(["--", "-D", "warnings"]);
        t_clippy += util::run(&mut clippy)?;
    }

    let mut doc = with_env(Command::new(&tc.cargo));
    doc.env("RUSTDOCFLAGS", "-D warnings")
        .arg("doc")
        .args(build_std)
        .args(["--workspace", "--no-deps", "--exclude", "squall-tls"]);
    let t_doc = util::run(&mut doc)?;

    Ok(Some(format!(
        "clippy {}, doc {}",
        util::human(t_clippy),
        util::human(t_doc)
    )))
}

/// What the cross step checks: the whole workspace with all its targets, except that
/// `squall-benches` is checked without its benches and tests.
///
/// Its benches use criterion, and criterion 0.8 depends on `alloca`, whose build script
/// compiles C with the host's `cc`: Linux gcc rejects the Apple flags (`-arch`), and a
/// real build would need the macOS SDK anyway. The benches' own code (its library and
/// binaries: the floor, the load generator) is still checked for every target, because
/// the macOS and FreeBSD CI jobs build it natively.
///
/// `squall-tls` is left out: rustls's `ring` provider compiles C and assembly for the
/// target with the host's `cc`, which cannot build for macOS, and type-checking it
/// would need that build. Nothing in the TLS crate is platform-specific (the macOS and
/// FreeBSD CI jobs build it natively). The facade `squall` has it as a dev-dependency
/// (the `hello` example serves HTTPS), so the facade is checked without its examples
/// and tests.
fn cross_scopes(root: &Path) -> Vec<Vec<&'static str>> {
    let mut all = vec!["--workspace"];
    let mut scopes = Vec::new();
    for c in CROSS_EXCLUDED {
        all.extend(["--exclude", c]);
    }
    if root.join("benches/Cargo.toml").is_file() {
        all.extend(["--exclude", "squall-benches"]);
        scopes.push(vec!["-p", "squall-benches", "--lib", "--bins"]);
    }
    all.push("--all-targets");
    scopes.insert(0, all);
    scopes.push(vec!["-p", "squall", "--lib"]);
    scopes.push(vec!["-p", "squall-httpclient", "--lib"]);
    scopes.push(vec!["-p", "squall-testing", "--lib"]);
    scopes
}

/// The crates the cross step leaves out (or checks partly): see [`cross_scopes`].
/// `squall-httpclient`'s tests and examples turn on its `tls` feature (squall-tls, so
/// ring), so only its library (without TLS) is checked; the same for `squall-testing`,
/// whose tests turn on its `tls` feature (the HTTPS test cases).
const CROSS_EXCLUDED: &[&str] = &[
    "squall-tls",
    "squall",
    "squall-httpclient",
    "squall-testing",
];

/// What the cross steps do.
enum CrossPlan {
    Run(DebianToolchain),
    Skip(String),
    Fail(String),
}

impl CrossPlan {
    /// Without the toolchain: a loud message, then skip, or fail under CI (CI can never
    /// pass by skipping).
    fn new(toolchain: Result<DebianToolchain, String>, in_ci: bool) -> CrossPlan {
        match toolchain {
            Ok(tc) => CrossPlan::Run(tc),
            Err(missing) => {
                toolchain::loud(&missing_toolchain_message(&missing, in_ci));
                if in_ci {
                    CrossPlan::Fail(format!(
                        "Debian cross toolchain missing ({missing}); CI=true, so not skipped"
                    ))
                } else {
                    CrossPlan::Skip(format!(
                        "Debian cross toolchain missing ({missing}); install {CROSS_PACKAGES}"
                    ))
                }
            }
        }
    }
}

/// Debian's `rustc-web` toolchain: a compiler, rustdoc, cargo and clippy of one version,
/// plus that version's std source.
struct DebianToolchain {
    rustc: PathBuf,
    rustdoc: PathBuf,
    cargo: PathBuf,
    cargo_clippy: PathBuf,
}

impl DebianToolchain {
    /// Finds it in `bin` (`/usr/bin`), or says what is missing.
    fn find(bin: &Path) -> Result<Self, String> {
        let tc = DebianToolchain {
            rustc: bin.join("rustc"),
            rustdoc: bin.join("rustdoc"),
            cargo: bin.join("cargo"),
            cargo_clippy: bin.join("cargo-clippy"),
        };
        for bin in [&tc.rustc, &tc.rustdoc, &tc.cargo, &tc.cargo_clippy] {
            if !bin.is_file() {
                return Err(format!("{} not found", bin.display()));
            }
        }
        let sysroot = Command::new(&tc.rustc)
            .args(["--print", "sysroot"])
            .env_remove("RUSTUP_TOOLCHAIN")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", tc.rustc.display()))?;
        if !sysroot.status.success() {
            return Err(format!("{} --print sysroot failed", tc.rustc.display()));
        }
        let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
        let src = sysroot.join("lib/rustlib/src/rust/library/std");
        if !src.is_dir() {
            return Err(format!(
                "{} has no std source at {} (rust-web-src missing, or {} is not Debian's rustc-web)",
                tc.rustc.display(),
                src.display(),
                tc.rustc.display()
            ));
        }
        Ok(tc)
    }
}

fn missing_toolchain_message(missing: &str, in_ci: bool) -> String {
    let mut msg = format!(
        "The FreeBSD/macOS type-check needs Debian's rustc-web toolchain: {missing}.\n\
         Install it (Debian 12 or later; it does not replace rustup):\n\
         \n    sudo apt-get install --no-install-recommends {CROSS_PACKAGES}\n\
         \nor run `cargo xtask ci --no-cross` to skip the check on purpose."
    );
    if in_ci {
        msg.push_str("\nCI=true: the cross steps FAIL instead of being skipped.");
    } else {
        msg.push_str("\nNot under CI: the cross steps are SKIPPED; CI will run them.");
    }
    if !cfg!(target_os = "linux") {
        msg.push_str("\nOn this OS the native build is the check: use --no-cross.");
    }
    msg
}

/// What became of a step.
enum Outcome {
    Ok(Option<String>),
    Failed(String),
    Skipped(String),
}

struct Row {
    name: String,
    outcome: Outcome,
    took: Duration,
}

/// The steps run so far, and the summary at the end.
struct Ci {
    rows: Vec<Row>,
    fail_fast: bool,
    start: Instant,
}

impl Ci {
    fn new(fail_fast: bool) -> Self {
        Ci {
            rows: Vec::new(),
            fail_fast,
            start: Instant::now(),
        }
    }

    /// Records every remaining step as skipped for `why`; the run has already failed.
    fn block(&mut self, why: &str) {
        for name in ["fmt", "tidy", "clippy", "test", "doc", "bench", "cross"] {
            self.rows.push(Row {
                name: name.to_owned(),
                outcome: Outcome::Skipped(why.to_owned()),
                took: Duration::ZERO,
            });
        }
    }

    fn failed(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .map(|r| r.name.as_str())
            .collect()
    }

    /// Runs one step unless `skip` says why not (or `--fail-fast` and an earlier step
    /// failed). `body` returns an optional note for the summary line.
    fn step(
        &mut self,
        name: &str,
        skip: Option<String>,
        body: impl FnOnce() -> anyhow::Result<Option<String>>,
    ) {
        let skip = skip.or_else(|| {
            (self.fail_fast && !self.failed().is_empty())
                .then(|| "--fail-fast: an earlier step failed".to_owned())
        });
        let start = Instant::now();
        let outcome = match skip {
            Some(why) => {
                println!("\n==> {name}: skipped ({why})");
                Outcome::Skipped(why)
            }
            None => {
                println!("\n==> {name}");
                match body() {
                    Ok(note) => Outcome::Ok(note),
                    Err(e) => {
                        println!("==> {name}: FAILED: {e:#}");
                        Outcome::Failed(format!("{e:#}"))
                    }
                }
            }
        };
        self.rows.push(Row {
            name: name.to_owned(),
            outcome,
            took: start.elapsed(),
        });
    }

    /// Prints the summary and the verdict.
    fn finish(self) -> anyhow::Result<()> {
        let width = self.rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
        println!("\n==> summary");
        for r in &self.rows {
            let (word, note) = match &r.outcome {
                Outcome::Ok(note) => ("ok", note.clone().unwrap_or_default()),
                Outcome::Failed(why) => ("FAILED", why.clone()),
                Outcome::Skipped(why) => ("skipped", why.clone()),
            };
            let note = note.lines().next().unwrap_or("");
            println!(
                "  {:width$}  {word:7}  {:>7}  {note}",
                r.name,
                util::human(r.took)
            );
        }
        let failed = self.failed();
        let skipped = self
            .rows
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
            .count();
        let total = util::human(self.start.elapsed());
        if failed.is_empty() {
            println!(
                "ci: ok ({} steps, {skipped} skipped) in {total}",
                self.rows.len()
            );
            Ok(())
        } else {
            println!("ci: FAILED ({}) in {total}", failed.join(", "));
            anyhow::bail!(
                "{} of {} steps failed: {}",
                failed.len(),
                self.rows.len(),
                failed.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cross_toolchain_skips_locally_and_fails_under_ci() {
        let empty = std::env::temp_dir().join(format!("xtask-no-toolchain-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let missing = DebianToolchain::find(&empty)
            .err()
            .expect("an empty folder has no rustc");
        assert!(missing.contains("rustc not found"), "{missing}");

        match CrossPlan::new(Err(missing.clone()), false) {
            CrossPlan::Skip(why) => assert!(why.contains(CROSS_PACKAGES), "{why}"),
            _ => panic!("a missing toolchain outside CI must skip"),
        }
        match CrossPlan::new(Err(missing), true) {
            CrossPlan::Fail(why) => assert!(why.contains("CI=true"), "{why}"),
            _ => panic!("a missing toolchain under CI must fail"),
        }
        std::fs::remove_dir(&empty).unwrap();
    }

    #[test]
    fn missing_toolchain_message_says_what_to_install() {
        let local = missing_toolchain_message("/usr/bin/cargo-clippy not found", false);
        assert!(local.contains("apt-get install --no-install-recommends rustc-web"));
        assert!(local.contains("--no-cross"));
        assert!(local.contains("SKIPPED"));
        assert!(missing_toolchain_message("x", true).contains("FAIL"));
    }

    #[test]
    fn a_step_failure_fails_the_run_and_skips_are_reported() {
        let mut ci = Ci::new(true);
        ci.step("good", None, || Ok(Some("note".into())));
        ci.step("bad", None, || anyhow::bail!("broken"));
        ci.step("later", None, || {
            panic!("--fail-fast must not run later steps")
        });
        ci.step("skipped", Some("why".into()), || {
            panic!("a skipped step must not run")
        });
        assert_eq!(ci.failed(), ["bad"]);
        assert!(matches!(&ci.rows[2].outcome, Outcome::Skipped(w) if w.contains("--fail-fast")));
        let err = ci.finish().unwrap_err().to_string();
        assert!(err.contains("1 of 4 steps failed: bad"), "{err}");

        let mut ci = Ci::new(false);
        ci.step("good", None, || Ok(None));
        ci.step("skipped", Some("why".into()), || Ok(None));
        ci.finish().unwrap();
    }
}
