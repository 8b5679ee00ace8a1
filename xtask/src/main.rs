//! squall's project tasks, run as `cargo xtask <task>` (the alias lives in
//! `.cargo/config.toml`).
//!
//! One dispatch over small modules, in the manner of rust-analyzer's xtask: each task is a
//! module with a `run(args)` function, and `main` only picks the module. To add a task,
//! add `mod <task>;`, one arm in [`dispatch`], and one line in [`HELP`].
//!
//! The modules form a tree: tasks import only the bottom helpers, never each other.
//! * [`flags`]: the task's arguments;
//! * [`util`]: where the workspace is, running a command with its duration shown;
//! * [`proc`]: child processes (pinned, killed with us, bounded in time), programs on
//!   `PATH`, and what `/proc` says about a process;
//! * [`load`]: load generators (wrk, squall-loadgen): their command lines, running one,
//!   reading its result;
//! * [`toolchain`]: rustup's cargo and its nightly, and the loud message when a check
//!   cannot run.
//!
//! A task that needs another task's whole work runs it as a subprocess
//! ([`util::xtask`]), as `ci` runs `tidy`.
//!
//! Tasks:
//! * `autobahn`: the WebSocket server and client against the Autobahn|Testsuite (see
//!   [`autobahn`]).
//! * `bench`: squall against its peers, with a report and a chart (see [`bench`](mod@bench)).
//! * `ci`: the whole check, step by step, with a summary (see [`ci`]).
//! * `soak`: the example server under load, faults and bad input, nothing lost (see
//!   [`soak`]).
//! * `fuzz`: every cargo-fuzz target for N seconds, with libFuzzer's figures (see [`fuzz`]).
//! * `instructions`: instructions per request of the `hello` server under callgrind, the
//!   figure machine noise does not move (see [`instructions`]).
//! * `wsbench`: squall-websocket's echo server against tokio-tungstenite (see
//!   [`wsbench`]).
//! * `tidy`: house rules that the compiler does not check (see [`tidy`]); also runs as a
//!   `#[test]`, so `cargo test` enforces it.

mod autobahn;
mod bench;
mod ci;
mod flags;
mod fuzz;
mod instructions;
mod load;
mod proc;
mod soak;
mod tidy;
mod toolchain;
mod util;
mod wsbench;

use std::process::ExitCode;

/// What `cargo xtask help` prints.
const HELP: &str = "\
usage: cargo xtask <task> [flags]

tasks:
  autobahn [--full] [--exclude CASES]
        squall-websocket's echo server and client against the Autobahn|Testsuite
        (wstest, Python 2.7 in a virtualenv under target/autobahn); prints the cases
        per verdict and fails on any FAILED. Without --full the compression sections
        (12, 13; 12-15 minutes) are left out; --exclude leaves out more (wstest
        patterns, comma-separated). No Python 2.7: a loud skip
  ci [--no-cross] [--quick] [--fail-fast]
        fmt, tidy, clippy, tests, forced-backend test runs, rustdoc, benches compile,
        and the FreeBSD/macOS type-check; one summary line per step.
          --no-cross   skip the FreeBSD/macOS type-check (never skipped silently)
          --quick      only fmt, tidy, clippy and tests
          --fail-fast  stop at the first failed step
  bench [--quick] [--json] [--only <server,...>] [--rounds N] [--no-criterion]
        squall against its peers (floor, hyper, nginx, Tornado): criterion, HTTP load
        runs judged by server CPU per request, memory per idle connection, echo MB/s;
        writes target/squall-bench/report.md and chart.svg/.png (see BENCHMARKS.md)
          --quick      one round, short runs (under two minutes)
          --json       also write report.json
          --only       servers: squall, squall-log (access log on), floor, hyper-ct,
                       hyper-mt, nginx, tornado
          --rounds     rounds (default 3, 1 with --quick)
          --no-criterion  skip the criterion micro-benchmarks
  fuzz [--seconds N] [TARGET...]
        runs each cargo-fuzz target of fuzz/ (all by default) for N seconds (default 60)
        on nightly, installing cargo-fuzz if missing; prints executions, exec/s,
        coverage, corpus size and crashes per target; fails on any crash
  instructions [--seconds S] [--connections N] [--only LIST] [--top N] [--footprint]
        squall's hello server under valgrind's callgrind, driven by squall-loadgen with
        N connections (default 64, as the bench's keep-alive 64 and pipelined runs) for S
        seconds (default 4), one request per write and 16 per write: user-space
        instructions per request, which machine noise does not move (needs valgrind);
        profiles in target/squall-bench/instructions/; --footprint adds the code lines
        one request runs through (a simulated 2 KiB instruction cache's misses)
  soak [--minutes N] [--server PATH] [--port P] [--seed N]
        runs squall's hello example (or PATH) under a mix of keep-alive, pipelined and
        echo load, vanishing clients, slowloris, connection storms and bad inputs for
        N minutes (default 5); fails on any lost request, wrong answer, fd leak or
        RSS growth. Limits probed: --max-header-size, --max-uri-len, --max-body-size,
        --header-timeout SECS, --idle-timeout SECS (default: squall-httpserver's)
  wsbench [--seconds S] [--connections N] [--idle N]
        squall-websocket's echo server against tokio-tungstenite (current-thread):
        round trips/s and server CPU µs per round trip with N connections (default 64)
        for S seconds (default 5), and RSS per idle WebSocket (default 1,000 held)
  tidy  house rules: SAFETY comments, workspace lints, no println!/todo!/dbg! in crates
  help  this text
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    match dispatch(task.as_deref(), rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one task by name.
fn dispatch(task: Option<&str>, args: Vec<String>) -> anyhow::Result<()> {
    match task {
        Some("autobahn") => autobahn::run(args),
        Some("bench") => bench::run(args),
        Some("ci") => ci::run(args),
        Some("fuzz") => fuzz::run(args),
        Some("instructions") => instructions::run(args),
        Some("soak") => soak::run(args),
        Some("tidy") => tidy::run(args),
        Some("wsbench") => wsbench::run(args),
        Some("help" | "-h" | "--help") => {
            print!("{HELP}");
            Ok(())
        }
        None => {
            eprint!("{HELP}");
            anyhow::bail!("no task given")
        }
        Some(other) => {
            eprint!("{HELP}");
            anyhow::bail!("unknown task `{other}`")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    /// The bottom helpers: any task may import them; they import no task.
    const BOTTOM: &[&str] = &["flags", "load", "proc", "toolchain", "util"];

    /// The first path segments named after `crate::` in `text` (`crate::proc::Guard`,
    /// `crate::{load, util::cargo}`).
    fn crate_imports(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let group = match rest.strip_prefix('{') {
                Some(inner) => &inner[..inner.find('}').unwrap_or(inner.len())],
                None => rest,
            };
            for item in group.split(',') {
                let name: String = item
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
                if !rest.starts_with('{') {
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn crate_imports_are_read_in_both_spellings() {
        let text = "use crate::proc::{self, Guard};\nuse crate::{load, util::cargo};\nlet x = crate::tidy::check(root);";
        assert_eq!(crate_imports(text), ["proc", "load", "util", "tidy"]);
    }

    /// The tasks form a tree: a task imports only the bottom helpers (never another
    /// task), and a bottom helper imports no task.
    #[test]
    fn tasks_import_only_the_bottom_helpers() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let main = fs::read_to_string(src.join("main.rs")).unwrap();
        let modules: Vec<&str> = main
            .lines()
            .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
            .collect();
        assert!(
            modules.contains(&"ci") && modules.contains(&"proc"),
            "{modules:?}"
        );
        let mut wrong = Vec::new();
        for module in &modules {
            let mut files = vec![src.join(format!("{module}.rs"))];
            if let Ok(dir) = fs::read_dir(src.join(module)) {
                files.extend(dir.flatten().map(|e| e.path()));
            }
            for file in files {
                let text = fs::read_to_string(&file).unwrap();
                for used in crate_imports(&text) {
                    let task = modules.contains(&used.as_str()) && !BOTTOM.contains(&&*used);
                    if task && used != *module {
                        wrong.push(format!("{} uses crate::{used}", file.display()));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "a task or helper imports a task (run it as a subprocess, or move the shared \
             part into a bottom helper):\n{}",
            wrong.join("\n")
        );
    }
}
