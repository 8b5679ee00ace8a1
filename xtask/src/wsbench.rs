//! `cargo xtask wsbench [--seconds S] [--connections N] [--idle N]`: squall-websocket's
//! echo server against tokio-tungstenite's on tokio's current-thread runtime.
//!
//! Both servers echo without compression. `ws-loadgen` (squall's client, one thread)
//! keeps N connections (default 64) busy with round trips of a 16-byte text message for
//! S seconds (default 5, after a one-second warm-up); the figures are round trips per
//! second and the server's CPU time (user + system, from `/proc`) per round trip. Then
//! it holds `--idle` connections (default 1,000), each after one message, and reads the
//! server's resident memory per idle WebSocket. Linux only. The table goes to standard
//! output and `target/squall-bench/wsbench.md`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::flags::Flags;
use crate::proc::{self, Guard};
use crate::util::{self, cargo};

struct Row {
    name: &'static str,
    per_sec: f64,
    cpu_us: f64,
    idle_kib: f64,
}

/// Runs the task.
pub(crate) fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut flags = Flags::new("wsbench", args);
    let seconds = flags.parsed::<f64>("--seconds")?.unwrap_or(5.0);
    let connections = flags.parsed::<usize>("--connections")?.unwrap_or(64);
    let idle = flags.parsed::<usize>("--idle")?.unwrap_or(1_000);
    flags.finish()?;
    proc::require_linux("wsbench")?;
    let root = util::project_root();
    let target = util::target_dir(&root);
    util::run(cargo().current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "squall-websocket",
        "--example",
        "ws_echo",
    ]))?;
    util::run(cargo().current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "squall-benches",
        "--bin",
        "ws-loadgen",
    ]))?;
    let peers = target.join("peers");
    util::run(
        cargo()
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "--bin",
                "tungstenite-echo",
                "--manifest-path",
            ])
            .arg(root.join("benches/peers/Cargo.toml"))
            .arg("--target-dir")
            .arg(&peers),
    )?;
    let loadgen = target.join("release/ws-loadgen");
    let out = target.join("squall-bench");
    fs::create_dir_all(&out)?;
    let servers: [(&'static str, PathBuf, &[&str]); 2] = [
        (
            "squall-websocket",
            target.join("release/examples/ws_echo"),
            &["--plain"],
        ),
        (
            "tokio-tungstenite (current-thread)",
            peers.join("release/tungstenite-echo"),
            &[],
        ),
    ];
    let mut rows = Vec::new();
    for (name, bin, extra) in servers {
        println!("wsbench: {name}");
        rows.push(measure(
            name,
            &bin,
            extra,
            &loadgen,
            &out,
            seconds,
            connections,
            idle,
        )?);
    }
    let mut table = format!(
        "WebSocket echo, {connections} connections, 16-byte text messages, {seconds} s; memory with {idle} idle connections\n\n\
         | server | round trips/s | server CPU µs per round trip | RSS per idle WebSocket |\n| --- | ---: | ---: | ---: |\n"
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} KiB |\n",
            r.name, r.per_sec, r.cpu_us, r.idle_kib
        ));
    }
    println!("\n{table}");
    fs::write(out.join("wsbench.md"), &table)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn measure(
    name: &'static str,
    bin: &Path,
    extra: &[&str],
    loadgen: &Path,
    out: &Path,
    seconds: f64,
    connections: usize,
    idle: usize,
) -> anyhow::Result<Row> {
    let port = proc::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = out.join(format!(
        "wsbench-{}.log",
        name.split_whitespace().next().unwrap_or("server")
    ));
    let mut cmd = Command::new(bin);
    cmd.args(["--port", &port.to_string()]).args(extra);
    proc::to_log(&mut cmd, &log)?;
    let mut server = Guard::spawn(name, &mut cmd)?;
    server.wait_listening(addr, Duration::from_secs(10), &log)?;
    let url = format!("ws://{addr}/");
    let load = |secs: f64| -> anyhow::Result<serde_json::Value> {
        let mut cmd = Command::new(loadgen);
        cmd.args([
            "--url",
            &url,
            "--connections",
            &connections.to_string(),
            "--duration",
            &secs.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let text =
            Guard::spawn("ws-loadgen", &mut cmd)?.finish(Duration::from_secs_f64(secs + 60.0))?;
        let value: serde_json::Value = serde_json::from_str(text.trim())
            .with_context(|| format!("ws-loadgen said {text:?}"))?;
        if value["errors"].as_u64() != Some(0) {
            bail!("ws-loadgen errors against {name}: {text}");
        }
        Ok(value)
    };
    load(1.0)?;
    let before = proc::cpu_micros(server.pid())?;
    let result = load(seconds)?;
    let cpu = proc::cpu_micros(server.pid())? - before;
    let round_trips = result["round_trips"].as_f64().unwrap_or(0.0);
    if round_trips == 0.0 {
        bail!("no round trips against {name}");
    }

    let rss_before = proc::rss_kib(server.pid())?;
    let mut cmd = Command::new(loadgen);
    cmd.args(["--url", &url, "--hold", &idle.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut holder = Guard::spawn("ws-loadgen --hold", &mut cmd)?;
    // Holding thousands of connections takes a while on a loaded machine, but never
    // forever: a generator that hangs fails the run instead of stalling it.
    let line = holder.first_line(Duration::from_secs(120))?;
    if !line.contains("held") {
        bail!("ws-loadgen --hold said {line:?}");
    }
    let rss_after = proc::rss_kib(server.pid())?;
    drop(holder.child.stdin.take());
    drop(holder);
    Ok(Row {
        name,
        per_sec: result["per_sec"].as_f64().unwrap_or(0.0),
        cpu_us: cpu / round_trips,
        idle_kib: rss_after.saturating_sub(rss_before) as f64 / idle as f64,
    })
}
