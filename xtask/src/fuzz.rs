//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the cargo-fuzz targets of `fuzz/`
//! one after the other for N seconds each (default 60, every target), and prints what
//! libFuzzer reports for each: executions, executions per second, coverage (`cov:` edges
//! and `ft:` features), corpus size, and whether it found a crash.
//!
//! Installs cargo-fuzz (`cargo install cargo-fuzz --locked`) when `cargo fuzz --version`
//! fails, and needs the nightly toolchain (libFuzzer's instrumentation is nightly-only);
//! without it the task stops with the `rustup` line that installs it. The targets are the
//! `[[bin]]` names of `fuzz/Cargo.toml` (by `cargo metadata`, in name order), so a new
//! target needs no change here.
//!
//! Each run's whole output goes to `<target>/squall-fuzz/<target>.log`; crash inputs land
//! in `fuzz/artifacts/<target>/` (libFuzzer's `crash-`, `oom-`, `timeout-`, `leak-`
//! files). The task fails if any run found one, or could not run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::flags::Flags;
use crate::proc::{self, Guard};
use crate::toolchain;
use crate::util;

/// How long a target is fuzzed when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 60;

/// Time allowed on top of `--seconds` for building a target and for libFuzzer to load
/// its corpus and exit; past it the run is killed and reported as failed.
const BUILD_ALLOWANCE: Duration = Duration::from_secs(900);

/// What one run printed, as far as we read it.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct FuzzStats {
    /// Inputs executed (`stat::number_of_executed_units`, else the last `#N`).
    pub(crate) executions: Option<u64>,
    /// Average executions per second (`stat::average_exec_per_sec`, else the last
    /// status line's `exec/s`).
    pub(crate) exec_per_sec: Option<u64>,
    /// Coverage edges (`cov:`) on the last status line.
    pub(crate) cov: Option<u64>,
    /// Coverage features (`ft:`) on the last status line.
    pub(crate) ft: Option<u64>,
    /// Corpus entries and their size as libFuzzer writes it (`corp: 845/141Kb`).
    pub(crate) corpus: Option<(u64, String)>,
    /// Inputs that libFuzzer wrote as findings (`Test unit written to PATH`).
    pub(crate) artifacts: Vec<String>,
    /// The `ERROR: libFuzzer: ...` or `SUMMARY: ...` line, if any.
    pub(crate) error: Option<String>,
}

/// Reads libFuzzer's output (stderr and stdout mixed, any order of lines).
pub(crate) fn parse_output(text: &str) -> FuzzStats {
    let mut s = FuzzStats::default();
    let mut last_status = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            s.executions = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            s.exec_per_sec = v.trim().parse().ok();
        } else if let Some(at) = line.find("Test unit written to ") {
            s.artifacts
                .push(line[at + "Test unit written to ".len()..].trim().to_owned());
        } else if line.contains("ERROR: libFuzzer:")
            || line.contains("ERROR: AddressSanitizer:")
            || (line.starts_with("SUMMARY: ") && s.error.is_none())
        {
            if s.error.is_none() || line.contains("ERROR:") {
                let at = line.find("ERROR:").or(line.find("SUMMARY:")).unwrap_or(0);
                s.error = Some(line[at..].to_owned());
            }
        } else if line.starts_with('#') && line.contains(" cov: ") {
            last_status = Some(line);
        }
    }
    if let Some(line) = last_status {
        let field = |name: &str| -> Option<&str> {
            let mut words = line.split_whitespace();
            words.find(|w| *w == name)?;
            words.next()
        };
        s.cov = field("cov:").and_then(|v| v.parse().ok());
        s.ft = field("ft:").and_then(|v| v.parse().ok());
        s.corpus = field("corp:").and_then(|v| {
            let (n, size) = v.split_once('/')?;
            Some((n.parse().ok()?, size.to_owned()))
        });
        if s.executions.is_none() {
            s.executions = line
                .split_whitespace()
                .next()
                .and_then(|w| w.trim_start_matches('#').parse().ok());
        }
        if s.exec_per_sec.is_none() {
            s.exec_per_sec = field("exec/s:").and_then(|v| v.parse().ok());
        }
    }
    s
}

/// The fuzz targets: the binaries of the cargo-fuzz workspace `fuzz/` (its `[[bin]]`
/// tables), from `cargo metadata` (which needs no nightly), sorted by name.
pub(crate) fn targets(root: &Path) -> anyhow::Result<Vec<String>> {
    let manifest = root.join("fuzz").join("Cargo.toml");
    let bins = util::Metadata::load(&manifest)?.bins();
    if bins.is_empty() {
        bail!("{}: no [[bin]] targets", manifest.display());
    }
    Ok(bins)
}

/// One finished run, for the summary.
struct Outcome {
    target: String,
    stats: FuzzStats,
    /// Files in `fuzz/artifacts/<target>/` that this run added.
    new_artifacts: Vec<PathBuf>,
    /// Files that were there before the run (earlier findings, kept as regressions).
    old_artifacts: usize,
    /// Corpus files on disk after the run.
    corpus_files: usize,
    /// Why the run failed, besides a finding (it could not build, was killed, ...).
    failure: Option<String>,
    log: PathBuf,
}

impl Outcome {
    fn crashed(&self) -> bool {
        !self.new_artifacts.is_empty() || !self.stats.artifacts.is_empty()
    }
}

/// Runs the task.
pub(crate) fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut flags = Flags::new("fuzz", args);
    let seconds = flags.parsed::<u64>("--seconds")?.unwrap_or(DEFAULT_SECONDS);
    let wanted = flags.positionals()?;
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }

    let root = util::project_root();
    let all = targets(&root)?;
    for t in &wanted {
        if !all.contains(t) {
            bail!("unknown fuzz target `{t}` (known: {})", all.join(", "));
        }
    }
    let chosen = if wanted.is_empty() { all } else { wanted };

    toolchain::nightly().map_err(anyhow::Error::msg)?;
    ensure_cargo_fuzz()?;

    let logs = util::target_dir(&root).join("squall-fuzz");
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut outcomes = Vec::new();
    for target in &chosen {
        println!("fuzz: {target} for {seconds}s");
        outcomes.push(fuzz_one(&root, &logs, target, seconds)?);
    }

    println!();
    println!(
        "{:<12} {:>12} {:>9} {:>7} {:>8} {:>16}  result",
        "target", "executions", "exec/s", "cov", "ft", "corpus"
    );
    let opt = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
    let mut failed = Vec::new();
    for o in &outcomes {
        let corpus = match &o.stats.corpus {
            Some((n, size)) => format!("{n} ({size})"),
            None => "?".to_owned(),
        };
        let result = if o.crashed() {
            let mut found: Vec<String> = o
                .new_artifacts
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            for a in &o.stats.artifacts {
                if !found
                    .iter()
                    .any(|f| f.ends_with(a.trim_start_matches("./")))
                {
                    found.push(a.clone());
                }
            }
            format!(
                "CRASH: {}; input: {}",
                o.stats.error.as_deref().unwrap_or("see the log"),
                found.join(", ")
            )
        } else if let Some(why) = &o.failure {
            format!("FAILED: {why}")
        } else {
            "ok, no crash".to_owned()
        };
        println!(
            "{:<12} {:>12} {:>9} {:>7} {:>8} {:>16}  {result}",
            o.target,
            opt(o.stats.executions),
            opt(o.stats.exec_per_sec),
            opt(o.stats.cov),
            opt(o.stats.ft),
            corpus,
        );
        println!(
            "{:<12} corpus on disk: {} files; earlier findings kept in fuzz/artifacts/{}/: {}; log: {}",
            "",
            o.corpus_files,
            o.target,
            o.old_artifacts,
            o.log.display()
        );
        if o.crashed() || o.failure.is_some() {
            failed.push(o.target.as_str());
        }
    }
    if failed.is_empty() {
        println!(
            "fuzz: {} target(s), {seconds}s each: no crash",
            outcomes.len()
        );
        Ok(())
    } else {
        bail!(
            "fuzz: {} of {} target(s) crashed or failed: {} (reproduce with `cargo +nightly fuzz run <target> <input>`)",
            failed.len(),
            outcomes.len(),
            failed.join(", ")
        )
    }
}

/// Installs cargo-fuzz if `cargo fuzz --version` fails.
fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let ok = toolchain::rustup_cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Ok(());
    }
    println!("fuzz: cargo-fuzz is missing; installing it");
    util::run(toolchain::rustup_cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    Ok(())
}

fn list_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn fuzz_one(root: &Path, logs: &Path, target: &str, seconds: u64) -> anyhow::Result<Outcome> {
    let artifacts_dir = root.join("fuzz/artifacts").join(target);
    let before = list_files(&artifacts_dir);
    let log = logs.join(format!("{target}.log"));
    let file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = toolchain::rustup_cargo();
    cmd.args(["+nightly", "fuzz", "run", target, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    println!("$ {}  > {}", util::display(&cmd), log.display());
    // Killed with us (PDEATHSIG) and when the guard drops; not pinned.
    proc::pin_and_tie(&mut cmd, None);
    let mut guard = Guard::spawn(target, &mut cmd)?;
    let limit = Duration::from_secs(seconds) + BUILD_ALLOWANCE;
    let status = guard.wait_within(limit)?;
    drop(guard);
    let text = fs::read_to_string(&log).unwrap_or_default();
    let stats = parse_output(&text);
    let new_artifacts: Vec<PathBuf> = list_files(&artifacts_dir)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let failure = match status {
        None => Some(format!("still running after {limit:?}; killed")),
        Some(st) if !st.success() && stats.artifacts.is_empty() && new_artifacts.is_empty() => {
            let tail: Vec<&str> = text.lines().rev().take(4).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Some(format!("exited {st}: {}", tail.join(" | ")))
        }
        Some(_) if stats.executions.is_none() => {
            Some("no libFuzzer statistics in its output".to_owned())
        }
        Some(_) => None,
    };
    Ok(Outcome {
        target: target.to_owned(),
        stats,
        old_artifacts: before.len(),
        new_artifacts,
        corpus_files: list_files(&root.join("fuzz/corpus").join(target)).len(),
        failure,
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DONE: &str = "\
INFO: Running with entropic power schedule (0xFF, 100).
INFO: Seed: 42
#1714\tINITED cov: 889 ft: 3033 corp: 787/115Kb exec/s: 0 rss: 78Mb
#32768\tpulse  cov: 900 ft: 3064 corp: 802/120Kb lim: 1490 exec/s: 16384 rss: 234Mb
#123688\tDONE   cov: 919 ft: 3194 corp: 845/141Kb lim: 1720 exec/s: 11244 rss: 430Mb
###### Recommended dictionary. ######
\"\\000\\000\" # Uses: 3204
###### End of recommended dictionary. ######
Done 123688 runs in 11 second(s)
stat::number_of_executed_units: 123688
stat::average_exec_per_sec:     11244
stat::new_units_added:          284
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              430
";

    #[test]
    fn final_stats_are_read() {
        let s = parse_output(DONE);
        assert_eq!(s.executions, Some(123_688));
        assert_eq!(s.exec_per_sec, Some(11_244));
        assert_eq!(s.cov, Some(919));
        assert_eq!(s.ft, Some(3194));
        assert_eq!(s.corpus, Some((845, "141Kb".to_owned())));
        assert!(s.artifacts.is_empty());
        assert_eq!(s.error, None);
    }

    #[test]
    fn a_crash_is_reported_with_its_input() {
        let text = "\
#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb
#77\tNEW    cov: 12 ft: 14 corp: 2/5b lim: 4 exec/s: 0 rss: 30Mb L: 4/4 MS: 1 InsertByte-
thread '<unnamed>' panicked at fuzz_targets/head.rs:9:5:
boom
==4242== ERROR: libFuzzer: deadly signal
    #0 0x55 in __sanitizer_print_stack_trace
NOTE: libFuzzer has rudimentary signal handlers.
SUMMARY: libFuzzer: deadly signal
MS: 1 ChangeBit-; base unit: 0000
artifact_prefix='/w/fuzz/artifacts/head/'; Test unit written to /w/fuzz/artifacts/head/crash-da39a3ee
Base64: AAAA
";
        let s = parse_output(text);
        assert_eq!(
            s.artifacts,
            vec!["/w/fuzz/artifacts/head/crash-da39a3ee".to_owned()]
        );
        assert_eq!(s.error.as_deref(), Some("ERROR: libFuzzer: deadly signal"));
        // No final stats on this path: the last status line stands in.
        assert_eq!(s.executions, Some(77));
        assert_eq!(s.exec_per_sec, Some(0));
        assert_eq!(s.cov, Some(12));
        assert_eq!(s.corpus, Some((2, "5b".to_owned())));
    }

    #[test]
    fn nothing_to_read_gives_nothing() {
        let s = parse_output("error: could not compile `squall-fuzz`\n");
        assert_eq!(s, FuzzStats::default());
    }

    #[test]
    fn the_real_manifest_has_targets() {
        let names = targets(&util::project_root()).unwrap();
        assert!(names.iter().any(|n| n == "head"), "{names:?}");
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    }
}
