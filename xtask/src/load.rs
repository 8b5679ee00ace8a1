//! Load generation, for every task that drives a server: the load shapes, the command
//! lines of the two generators (wrk with a Lua script, squall-loadgen), running one
//! pinned to the client CPU, and reading what it prints into a [`Sample`].

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::proc::{self, Guard, CLIENT_CPU};

/// One end-to-end load shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunSpec {
    pub(crate) name: &'static str,
    pub(crate) connections: usize,
    pub(crate) pipeline: usize,
}

/// One counted run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    /// The round of `cargo xtask bench` it was counted in (0 elsewhere): a target pairs
    /// two servers' samples of the same round.
    pub(crate) round: usize,
    pub(crate) requests: u64,
    pub(crate) rps: f64,
    pub(crate) cpu_us_per_req: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) errors: u64,
}

/// The load generator that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generator {
    Wrk,
    Loadgen,
}

impl Generator {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Generator::Wrk => "wrk",
            Generator::Loadgen => "squall-loadgen",
        }
    }
}

/// squall-loadgen against `addr` with `spec`'s connections and pipeline depth, for
/// `duration`.
pub(crate) fn loadgen_command(
    loadgen: &Path,
    addr: SocketAddr,
    spec: RunSpec,
    duration: Duration,
) -> Command {
    let mut c = Command::new(loadgen);
    c.arg("--addr")
        .arg(addr.to_string())
        .arg("--connections")
        .arg(spec.connections.to_string())
        .arg("--pipeline")
        .arg(spec.pipeline.to_string())
        .arg("--duration")
        .arg(format!("{}", duration.as_secs_f64()));
    c
}

/// wrk with one thread against `addr` with `spec`'s connections, for `duration` (whole
/// seconds, at least one), pipelining as `script` (see [`wrk_script`]) says.
pub(crate) fn wrk_command(
    wrk: &Path,
    script: &Path,
    addr: SocketAddr,
    spec: RunSpec,
    duration: Duration,
) -> Command {
    let mut c = Command::new(wrk);
    c.arg("-t1")
        .arg(format!("-c{}", spec.connections))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(script)
        .arg(format!("http://{addr}/"));
    c
}

/// The wrk script for a pipeline depth: the batch of requests (if deep), and a `done`
/// that prints one JSON line with what we need.
pub(crate) fn wrk_script(depth: usize) -> String {
    let mut s = String::from("-- written by `cargo xtask bench`\n");
    if depth > 1 {
        s.push_str(&format!(
            "init = function(args)\n  local r = {{}}\n  for i = 1, {depth} do r[i] = wrk.format(nil, \"/\") end\n  batch = table.concat(r)\nend\nrequest = function() return batch end\n"
        ));
    }
    s.push_str(
        "done = function(summary, latency, requests)\n  local e = summary.errors\n  io.write(string.format('SQUALL-WRK {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"errors\":%d}\\n',\n    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),\n    e.connect + e.read + e.write + e.status + e.timeout))\nend\n",
    );
    s
}

/// Runs a load generator pinned to the client CPU and returns its standard output,
/// failing if it does not exit (successfully) within `limit`.
pub(crate) fn run_client(name: &str, cmd: &mut Command, limit: Duration) -> anyhow::Result<String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    proc::pin_and_tie(cmd, Some(CLIENT_CPU));
    Guard::spawn(name, cmd)?.finish(limit)
}

/// The `SQUALL-WRK {...}` line that [`wrk_script`]'s `done` prints, as a [`Sample`]
/// (without the server's CPU time, which the caller measures).
pub(crate) fn parse_wrk(out: &str) -> anyhow::Result<Sample> {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("SQUALL-WRK "))
        .with_context(|| format!("no result line in wrk's output:\n{out}"))?;
    let v: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("wrk result {line:?}"))?;
    let f = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("wrk result has no {k}: {line}"))
    };
    let requests = f("requests")?;
    let secs = f("duration_us")? / 1e6;
    Ok(Sample {
        round: 0,
        requests: requests as u64,
        rps: requests / secs.max(1e-9),
        cpu_us_per_req: 0.0,
        p50_us: f("p50_us")?,
        p99_us: f("p99_us")?,
        errors: f("errors")? as u64,
    })
}

/// squall-loadgen's JSON result line, as a [`Sample`] (without the server's CPU time).
pub(crate) fn parse_loadgen(out: &str) -> anyhow::Result<Sample> {
    let line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("no JSON in loadgen's output:\n{out}"))?;
    let v: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("loadgen result {line:?}"))?;
    let f = |v: &serde_json::Value, k: &str| {
        v[k].as_f64()
            .with_context(|| format!("loadgen result has no {k}: {line}"))
    };
    Ok(Sample {
        round: 0,
        requests: f(&v, "requests")? as u64,
        rps: f(&v, "rps")?,
        cpu_us_per_req: 0.0,
        p50_us: f(&v["latency_us"], "p50")?,
        p99_us: f(&v["latency_us"], "p99")?,
        errors: f(&v["errors"], "total")? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_result_line_is_parsed() {
        let out = "Running 2s test\n  1 threads\nSQUALL-WRK {\"requests\":2000,\"duration_us\":2000000,\"p50_us\":40.5,\"p99_us\":90.0,\"errors\":3}\n";
        let s = parse_wrk(out).unwrap();
        assert_eq!(s.requests, 2000);
        assert!((s.rps - 1000.0).abs() < 1e-6);
        assert_eq!(s.errors, 3);
        assert!(parse_wrk("Running 2s test\n").is_err());
    }

    #[test]
    fn loadgen_result_line_is_parsed() {
        let out = r#"{"generator":"squall-loadgen","connections":1,"pipeline":1,"duration_s":1.0,"requests":10,"rps":10.0,"latency_us":{"p50":5.0,"p90":6.0,"p99":7.0,"max":8.0},"errors":{"total":1,"connect":1,"read":0,"write":0,"status":0,"framing":0,"closed":0,"timeout":0}}"#;
        let s = parse_loadgen(out).unwrap();
        assert_eq!((s.requests, s.errors), (10, 1));
        assert_eq!((s.p50_us, s.p99_us), (5.0, 7.0));
        assert!(parse_loadgen("nothing").is_err());
    }

    #[test]
    fn wrk_script_pipelines_only_when_deep() {
        assert!(!wrk_script(1).contains("request ="));
        let deep = wrk_script(16);
        assert!(deep.contains("for i = 1, 16 do"), "{deep}");
        assert!(deep.contains("SQUALL-WRK"));
    }
}
