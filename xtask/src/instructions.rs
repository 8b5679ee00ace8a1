//! `cargo xtask instructions`: user-space instructions per request of squall's `hello`
//! server, counted by valgrind's callgrind while squall-loadgen drives it.
//!
//! CPU time moves with whatever else the machine runs; an instruction count does not.
//! It is the figure to compare before and after a change to the request path (the
//! kernel's share, the syscalls, is not in it: count those with `strace -c`). The run
//! includes the server's start-up, a fixed cost of well under 1% of a 4-second run.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::bench::proc::{self, Guard, SERVER_CPU};
use crate::bench::{loadgen_command, parse_loadgen, run_client, which, RunSpec};
use crate::flags::Flags;
use crate::util;

/// Pipeline depths measured: one request per read, and TechEmpower-style batches.
const DEPTHS: [usize; 2] = [1, 16];

pub(crate) fn run(args: Vec<String>) -> anyhow::Result<()> {
    proc::require_linux("instructions")?;
    let mut flags = Flags::new("instructions", args);
    let seconds = flags.parsed::<f64>("--seconds")?.unwrap_or(4.0);
    let connections = flags.parsed::<usize>("--connections")?.unwrap_or(4);
    flags.finish()?;
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("--seconds must be a positive number, not {seconds}");
    }
    if connections == 0 {
        bail!("--connections must be at least 1");
    }
    let Some(valgrind) = which("valgrind", &[]) else {
        bail!("valgrind is not installed: `apt install valgrind` (Debian) gives callgrind");
    };

    let root = util::project_root();
    let target = util::target_dir(&root);
    for args in [
        &["build", "--release", "-p", "squall", "--example", "hello"][..],
        &[
            "build",
            "--release",
            "-p",
            "squall-benches",
            "--bin",
            "loadgen",
        ][..],
    ] {
        let mut cmd = util::cargo();
        cmd.args(args)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target);
        util::run(&mut cmd)?;
    }
    let release = target.join("release");
    let dir = target.join("squall-bench/instructions");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut rows = Vec::new();
    for depth in DEPTHS {
        println!(
            "instructions: hello under callgrind, {connections} connections, pipeline {depth}, {seconds} s"
        );
        let run = Run {
            valgrind: &valgrind,
            hello: &release.join("examples/hello"),
            loadgen: &release.join("loadgen"),
            dir: &dir,
            connections,
            depth,
            seconds,
        };
        rows.push((depth, run.measure()?));
    }
    println!("\n| pipeline | requests | instructions | instructions per request |");
    println!("|---:|---:|---:|---:|");
    for (depth, (requests, total)) in &rows {
        println!(
            "| {depth} | {requests} | {total} | {:.0} |",
            *total as f64 / (*requests).max(1) as f64
        );
    }
    println!("\ncallgrind profiles: {}", dir.display());
    Ok(())
}

/// One measured run.
struct Run<'a> {
    valgrind: &'a Path,
    hello: &'a Path,
    loadgen: &'a Path,
    dir: &'a Path,
    connections: usize,
    depth: usize,
    seconds: f64,
}

impl Run<'_> {
    /// Requests answered and instructions counted.
    fn measure(&self) -> anyhow::Result<(u64, u64)> {
        let port = proc::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let profile = self
            .dir
            .join(format!("callgrind.out.pipeline-{}", self.depth));
        let log = self.dir.join(format!("hello.pipeline-{}.log", self.depth));
        let _ = fs::remove_file(&profile);
        let mut cmd = Command::new(self.valgrind);
        cmd.arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", profile.display()))
            .arg(self.hello)
            .args(["--port", &port.to_string(), "--quiet"]);
        proc::to_log(&mut cmd, &log)?;
        proc::pin_and_tie(&mut cmd, (proc::cpus() > SERVER_CPU).then_some(SERVER_CPU));
        let mut server = Guard::spawn("hello under callgrind", &mut cmd)?;
        server.wait_listening(addr, Duration::from_secs(120), &log)?;

        let duration = Duration::from_secs_f64(self.seconds);
        let spec = RunSpec {
            name: "instructions",
            connections: self.connections,
            pipeline: self.depth,
        };
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
        let end = Instant::now() + Duration::from_secs(120);
        while server.child.try_wait()?.is_none() {
            if Instant::now() >= end {
                bail!("hello under callgrind did not exit within 120 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = fs::read_to_string(&profile)
            .with_context(|| format!("reading the callgrind profile {}", profile.display()))?;
        let total = profile_total(&text).with_context(|| {
            format!(
                "no `summary:` line in the callgrind profile {}",
                profile.display()
            )
        })?;
        Ok((sample.requests, total))
    }
}

/// The event total of a callgrind profile (its `summary:` line, else `totals:`).
fn profile_total(text: &str) -> Option<u64> {
    ["summary:", "totals:"].iter().find_map(|key| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::profile_total;

    #[test]
    fn total_is_read_from_the_profile() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 603761949\n\nfn=main\n1 2\ntotals: 603761949\n";
        assert_eq!(profile_total(text), Some(603_761_949));
        assert_eq!(profile_total("events: Ir\ntotals: 12\n"), Some(12));
        assert_eq!(profile_total("events: Ir\n"), None);
    }
}
