//! `cargo xtask instructions`: user-space instructions per request of squall's `hello`
//! server and of its peers (the floor, hyper on tokio's current-thread runtime, and
//! `hello` with its access log on), each counted the same way: valgrind's callgrind
//! while squall-loadgen drives it, then callgrind's own top functions per server.
//!
//! CPU time moves with whatever else the machine runs; an instruction count does not.
//! It is the figure to compare before and after a change to the request path (the
//! kernel's share, the syscalls, is not in it: count those with `strace -c`). Each
//! server gets a one-second warm-up first, after which `callgrind_control --zero`
//! resets the counters: start-up and first-use costs are not in the count.
//!
//! With `--footprint`, the table also gives each server's *code lines per request*:
//! callgrind simulates a tiny instruction cache ([`TINY_ICACHE`]: 2 KiB, direct-mapped,
//! 64-byte lines), whose misses per request are close to the number of distinct
//! 64-byte lines of code one request runs through (a loop's lines count once per pass
//! over them).
//! That footprint is what the kernel's own network path has to share the CPU's
//! instruction cache with, between one request's syscalls and the next: a wide
//! footprint costs system time as well as user time (BENCHMARKS.md measures both).
//! The simulation slows callgrind about five-fold, so fewer requests fit in the window
//! and pipelined batches come out differently: compare instruction counts between runs
//! made the same way, with or without it.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::flags::Flags;
use crate::load::{loadgen_command, parse_loadgen, run_client, RunSpec};
use crate::proc::{self, which, Guard, SERVER_CPU};
use crate::util;

/// Pipeline depths measured: one request per read, and TechEmpower-style batches.
const DEPTHS: [usize; 2] = [1, 16];

/// The instruction cache callgrind simulates (size, associativity, line size): small
/// enough that nearly every line of code a request runs through misses once, so its
/// misses per request count the request's code footprint in 64-byte lines.
const TINY_ICACHE: &str = "--I1=2048,1,64";

/// The servers counted, in table order.
const SERVERS: [&str; 4] = ["squall", "squall-log", "hyper-ct", "floor"];

/// A human name for a server id.
fn label(id: &str) -> &str {
    match id {
        "squall" => "squall (hello --quiet)",
        "squall-log" => "squall, access log on",
        "hyper-ct" => "hyper, tokio current-thread",
        "floor" => "floor (bare epoll)",
        other => other,
    }
}

pub(crate) fn run(args: Vec<String>) -> anyhow::Result<()> {
    proc::require_linux("instructions")?;
    let mut flags = Flags::new("instructions", args);
    let seconds = flags.parsed::<f64>("--seconds")?.unwrap_or(4.0);
    let connections = flags.parsed::<usize>("--connections")?.unwrap_or(64);
    let top = flags.parsed::<usize>("--top")?.unwrap_or(12);
    let only = flags.option("--only")?;
    let footprint = flags.flag("--footprint");
    flags.finish()?;
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("--seconds must be a positive number, not {seconds}");
    }
    if connections == 0 {
        bail!("--connections must be at least 1");
    }
    let servers: Vec<&str> = match &only {
        None => SERVERS.to_vec(),
        Some(list) => {
            let mut v = Vec::new();
            for id in list.split(',').map(str::trim) {
                match SERVERS.iter().find(|s| **s == id) {
                    Some(s) => v.push(*s),
                    None => bail!(
                        "--only: unknown server `{id}` (known: {})",
                        SERVERS.join(", ")
                    ),
                }
            }
            v
        }
    };
    let Some(valgrind) = which("valgrind", &[]) else {
        bail!("valgrind is not installed: `apt install valgrind` (Debian) gives callgrind");
    };
    let annotate = which("callgrind_annotate", &[]);
    let control = which("callgrind_control", &[]);
    if control.is_none() {
        println!("instructions: callgrind_control not found: start-up is counted too");
    }

    let root = util::project_root();
    let target = util::target_dir(&root);
    let mut builds: Vec<Vec<&str>> =
        vec![vec!["build", "--release", "-p", "squall-benches", "--bins"]];
    if servers.iter().any(|s| s.starts_with("squall")) {
        builds.push(vec![
            "build",
            "--release",
            "-p",
            "squall",
            "--example",
            "hello",
        ]);
    }
    for args in builds {
        let mut cmd = util::cargo();
        cmd.args(args)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target);
        util::run(&mut cmd)?;
    }
    let peers = target.join("peers");
    if servers.contains(&"hyper-ct") {
        // The peers' own workspace, into its own target folder (as `cargo xtask bench`).
        let manifest = root.join("benches/peers/Cargo.toml");
        let mut cmd = util::cargo();
        cmd.args(["build", "--release", "--manifest-path"])
            .arg(&manifest)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &peers);
        util::run(&mut cmd)?;
    }
    let release = target.join("release");
    let dir = target.join("squall-bench/instructions");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut rows = Vec::new();
    for &server in &servers {
        for depth in DEPTHS {
            println!(
                "instructions: {} under callgrind, {connections} connections, pipeline {depth}, {seconds} s",
                label(server)
            );
            let run = Run {
                valgrind: &valgrind,
                control: control.as_deref(),
                server,
                command: server_command(server, &release, &peers),
                loadgen: &release.join("loadgen"),
                dir: &dir,
                connections,
                depth,
                seconds,
                footprint,
            };
            let (requests, total, lines, profile) = run.measure()?;
            let functions = match &annotate {
                // Zeroing the counters mid-run leaves the frames that were on the stack
                // then (the thread's entry down to the loop) with the whole run as
                // their own cost: no real function of these servers comes near 90%.
                Some(a) if top > 0 => top_functions(a, &profile, top + 8)?
                    .into_iter()
                    .filter(|(n, _)| (*n as f64) < 0.9 * total as f64)
                    .take(top)
                    .collect(),
                _ => Vec::new(),
            };
            rows.push(Row {
                server,
                depth,
                requests,
                total,
                lines,
                functions,
            });
        }
    }

    // With `--top 0` only the table is asked for.
    for row in rows.iter().filter(|_| top > 0) {
        println!(
            "\n{}, pipeline {}: top {top} functions by own instructions per request",
            label(row.server),
            row.depth
        );
        if annotate.is_none() {
            println!("  (callgrind_annotate not found: it comes with valgrind)");
        }
        let per = |n: u64| n as f64 / row.requests.max(1) as f64;
        for (n, name) in &row.functions {
            println!("  {:>9.0}  {name}", per(*n));
        }
    }
    let (lines_head, lines_rule) = if footprint {
        (" code lines per request |", "---:|")
    } else {
        ("", "")
    };
    println!(
        "\n| server | pipeline | requests | instructions | instructions per request | ÷ hyper |{lines_head}"
    );
    println!("|---|---:|---:|---:|---:|---:|{lines_rule}");
    let per_req = |r: &Row| r.total as f64 / r.requests.max(1) as f64;
    for row in &rows {
        let hyper = rows
            .iter()
            .find(|h| h.server == "hyper-ct" && h.depth == row.depth)
            .map(per_req);
        let ratio = hyper.map_or("—".to_owned(), |h| format!("{:.2}×", per_req(row) / h));
        let lines = match (footprint, row.lines) {
            (false, _) => String::new(),
            (true, Some(l)) => format!(" {:.0} |", l as f64 / row.requests.max(1) as f64),
            (true, None) => " — |".to_owned(),
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {ratio} |{lines}",
            label(row.server),
            row.depth,
            row.requests,
            row.total,
            per_req(row)
        );
    }
    println!("\ncallgrind profiles: {}", dir.display());
    Ok(())
}

/// One measured server and depth.
struct Row<'a> {
    server: &'a str,
    depth: usize,
    requests: u64,
    total: u64,
    /// Misses of the simulated [`TINY_ICACHE`] (`None` if the profile has none).
    lines: Option<u64>,
    /// (own instructions, function), largest first.
    functions: Vec<(u64, String)>,
}

/// The program and arguments of a server (the port is added by the run).
fn server_command(server: &str, release: &Path, peers: &Path) -> (PathBuf, Vec<&'static str>) {
    match server {
        "squall" => (release.join("examples/hello"), vec!["--quiet"]),
        "squall-log" => (release.join("examples/hello"), vec![]),
        "hyper-ct" => (
            peers.join("release/hyper-hello"),
            vec!["--runtime", "current", "--threads", "1"],
        ),
        _ => (release.join("floor"), vec![]),
    }
}

/// One measured run.
struct Run<'a> {
    valgrind: &'a Path,
    /// `callgrind_control`, to zero the counters after the warm-up.
    control: Option<&'a Path>,
    server: &'a str,
    command: (PathBuf, Vec<&'static str>),
    loadgen: &'a Path,
    dir: &'a Path,
    connections: usize,
    depth: usize,
    seconds: f64,
    /// Simulate [`TINY_ICACHE`] (`--footprint`).
    footprint: bool,
}

impl Run<'_> {
    /// Requests answered, instructions counted, misses of the simulated
    /// [`TINY_ICACHE`], and the profile's path.
    fn measure(&self) -> anyhow::Result<(u64, u64, Option<u64>, PathBuf)> {
        let port = proc::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let name = format!("{}.pipeline-{}", self.server, self.depth);
        let profile = self.dir.join(format!("callgrind.out.{name}"));
        let log = self.dir.join(format!("{name}.log"));
        let _ = fs::remove_file(&profile);
        let mut cmd = Command::new(self.valgrind);
        cmd.arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", profile.display()));
        if self.footprint {
            cmd.args(["--cache-sim=yes", TINY_ICACHE]);
        }
        let access_log = self.server == "squall-log";
        if access_log {
            // valgrind's own messages to a file of their own: standard error, where the
            // access log goes, is sent to /dev/null below (as `cargo xtask bench` does).
            let vlog = self.dir.join(format!("{name}.valgrind.log"));
            cmd.arg(format!("--log-file={}", vlog.display()));
        }
        cmd.arg(&self.command.0)
            .args(&self.command.1)
            .args(["--port", &port.to_string()]);
        proc::to_log(&mut cmd, &log)?;
        if access_log {
            cmd.stderr(Stdio::null());
        }
        proc::pin_and_tie(&mut cmd, Some(SERVER_CPU));
        let mut server = Guard::spawn(&format!("{} under callgrind", self.server), &mut cmd)?;
        server.wait_listening(addr, Duration::from_secs(120), &log)?;

        let duration = Duration::from_secs_f64(self.seconds);
        let spec = RunSpec {
            name: "instructions",
            connections: self.connections,
            pipeline: self.depth,
        };
        // A warm-up run, then the counters are zeroed: start-up and first-use costs
        // (which would weigh more the fewer requests a loaded machine gets through)
        // stay out of the count.
        let warm = Duration::from_secs(1);
        let mut load = loadgen_command(self.loadgen, addr, spec, warm);
        load.args(["--timeout", "60"]);
        run_client("loadgen", &mut load, warm + Duration::from_secs(120))?;
        if let Some(control) = self.control {
            let status = Command::new(control)
                .args(["--zero", &server.pid().to_string()])
                .stdout(Stdio::null())
                .status()
                .with_context(|| format!("running {}", control.display()))?;
            if !status.success() {
                bail!(
                    "callgrind_control --zero {} failed ({status})",
                    server.pid()
                );
            }
        }
        // A server under callgrind answers slowly: a generous per-request timeout.
        let mut load = loadgen_command(self.loadgen, addr, spec, duration);
        load.args(["--timeout", "60"]);
        let out = run_client("loadgen", &mut load, duration + Duration::from_secs(120))?;
        let sample = parse_loadgen(&out)?;
        if sample.errors > 0 {
            bail!("{} requests failed under callgrind", sample.errors);
        }

        // callgrind writes the profile when the program ends on a signal (not on
        // SIGKILL, which the guard would send).
        let status = Command::new("kill")
            .args(["-INT", &server.pid().to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -INT {} failed ({status})", server.pid());
        }
        if server.wait_within(Duration::from_secs(120))?.is_none() {
            bail!(
                "{} under callgrind did not exit within 120 s of SIGINT",
                self.server
            );
        }
        let text = fs::read_to_string(&profile)
            .with_context(|| format!("reading the callgrind profile {}", profile.display()))?;
        let total = profile_total(&text, "Ir").with_context(|| {
            format!(
                "no `summary:` line in the callgrind profile {}",
                profile.display()
            )
        })?;
        let lines = profile_total(&text, "I1mr");
        Ok((sample.requests, total, lines, profile))
    }
}

/// The total of one event of a callgrind profile (its `summary:` line, else `totals:`,
/// in the order of its `events:` line; a profile without that line counts `Ir` alone).
fn profile_total(text: &str, event: &str) -> Option<u64> {
    let events = text
        .lines()
        .find_map(|l| l.strip_prefix("events:"))
        .unwrap_or("Ir");
    let index = events.split_whitespace().position(|e| e == event)?;
    ["summary:", "totals:"].iter().find_map(|key| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().nth(index)?.parse().ok())
    })
}

/// The `n` functions with the most instructions of their own, by `callgrind_annotate`.
fn top_functions(annotate: &Path, profile: &Path, n: usize) -> anyhow::Result<Vec<(u64, String)>> {
    let out = Command::new(annotate)
        .args([
            "--inclusive=no",
            "--auto=no",
            "--threshold=100",
            "--show=Ir",
        ])
        .arg(profile)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", annotate.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}",
            annotate.display(),
            profile.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(parse_annotate(&String::from_utf8_lossy(&out.stdout), n))
}

/// The function lines of `callgrind_annotate`'s output (`1,234 (5.6%)  file:function
/// [object]`), summed per function name (a function inlined from several files has a
/// line per file), the `n` largest.
fn parse_annotate(text: &str, n: usize) -> Vec<(u64, String)> {
    let mut sums: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    // The table under the `Ir  file:function` header, up to the next rule.
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains("file:function"))
        .skip(2);
    for line in lines.by_ref() {
        if line.starts_with("---") {
            break;
        }
        let line = line.trim();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        let rest = rest.trim_start();
        // The percentage, when present.
        let rest = match rest.strip_prefix('(') {
            Some(r) => r.split_once(')').map_or(r, |(_, after)| after).trim_start(),
            None => rest,
        };
        if rest.starts_with("PROGRAM TOTALS") || rest.is_empty() {
            continue;
        }
        // Drop the object file, then the source file before the first ':'.
        let rest = match rest.rsplit_once(" [") {
            Some((f, obj)) if obj.ends_with(']') => f,
            _ => rest,
        };
        let name = rest.split_once(':').map_or(rest, |(_, f)| f);
        *sums.entry(name.to_owned()).or_default() += count;
    }
    let mut out: Vec<(u64, String)> = sums.into_iter().map(|(f, c)| (c, f)).collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::{parse_annotate, profile_total};

    #[test]
    fn total_is_read_from_the_profile() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 603761949\n\nfn=main\n1 2\ntotals: 603761949\n";
        assert_eq!(profile_total(text, "Ir"), Some(603_761_949));
        assert_eq!(profile_total(text, "I1mr"), None, "not simulated");
        assert_eq!(profile_total("events: Ir\ntotals: 12\n", "Ir"), Some(12));
        assert_eq!(profile_total("events: Ir\n", "Ir"), None);
        // With the cache simulated, each event has its column.
        let sim =
            "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\nsummary: 900 300 200 45 3 2 1 0 0\n";
        assert_eq!(profile_total(sim, "Ir"), Some(900));
        assert_eq!(profile_total(sim, "I1mr"), Some(45));
    }

    #[test]
    fn top_functions_are_read_from_callgrind_annotate() {
        let text = "\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
603,761,949 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
146,283,934 (24.23%)  ./string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [/usr/lib/x86_64-linux-gnu/libc.so.6]
 52,000,000 ( 8.61%)  crates/squall-httputil/src/head.rs:squall_httputil::head::parse [/t/hello]
  1,000 ( 0.00%)  ???:<[u8] as core::fmt::Debug>::fmt [/t/hello]
  2,000 ( 0.00%)  crates/squall-httputil/src/h1.rs:squall_httputil::head::parse [/t/hello]
--------------------------------------------------------------------------------
-- Auto-annotated source: crates/squall-httputil/src/head.rs
--------------------------------------------------------------------------------
9,999,999,999 ( 0.00%)  => crates/x.rs:not::a::function (12x)
";
        let top = parse_annotate(text, 2);
        assert_eq!(
            top,
            vec![
                (146_283_934, "__memcpy_avx_unaligned_erms".to_owned()),
                (52_002_000, "squall_httputil::head::parse".to_owned()),
            ]
        );
        assert_eq!(
            parse_annotate(text, 10)[2].1,
            "<[u8] as core::fmt::Debug>::fmt"
        );
    }
}
