//! `cargo xtask autobahn [--full] [--exclude CASES]`: squall's WebSocket server and
//! client against the Autobahn|Testsuite, with the count of cases per verdict.
//! `--exclude` leaves out more cases (wstest patterns, comma-separated: `12.*.6` is case
//! 6 of every subsection of 12), for a shorter run of the compression sections.
//!
//! The suite (`wstest`) runs on Python 2.7 only. The interpreter is `$AUTOBAHN_PYTHON27`
//! if set, else pyenv's 2.7.18; the suite and its pinned dependencies
//! (`xtask/autobahn-requirements27.txt`) go into a virtualenv under
//! `target/autobahn/venv`, made once and re-made when the pins change.
//!
//! Two runs: `wstest -m fuzzingclient` against the `ws_echo` example of
//! `squall-websocket` (the server), and the `autobahn_client` example against `wstest -m
//! fuzzingserver` (the client). Without `--full` the compression sections (12 and 13),
//! which take wstest 12-15 minutes, are left out; the rest takes about 20 s a side.
//! Reports land in `target/autobahn/reports/{servers,clients}/index.html`. The task
//! fails if any case is FAILED (in its behaviour or its closing behaviour).
//!
//! Without Python 2.7 the task says so loudly and succeeds: this is the one check that
//! `CI=true` does not turn from a skip into a failure, since the interpreter is not
//! something `.ci/run` can install from Debian.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::flags::Flags;
use crate::proc::{self, free_port, Guard};
use crate::toolchain;
use crate::util::{self, cargo};

/// The suite's version on PyPI.
const AUTOBAHN_VERSION: &str = "autobahntestsuite==25.10.1";
/// The virtualenv release that still builds Python 2.7 environments.
const VIRTUALENV_VERSION: &str = "virtualenv==16.7.12";
/// The sections left out of a quick run: permessage-deflate.
const COMPRESSION_SECTIONS: &[&str] = &["12.*", "13.*"];

/// Runs the task.
pub(crate) fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut flags = Flags::new("autobahn", args);
    let full = flags.flag("--full");
    let extra: Vec<String> = flags
        .option("--exclude")?
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    flags.finish()?;
    let root = util::project_root();
    match toolchain::python27() {
        Err(why) => {
            toolchain::loud(&format!(
                "autobahn: SKIPPED, the WebSocket conformance suite did not run\n{why}"
            ));
            Ok(())
        }
        Ok(py) => {
            let summary = check(&root, &py, full, &extra)?;
            println!("{summary}");
            Ok(())
        }
    }
}

/// Sets the suite up, runs both sides, and returns the summary.
///
/// # Errors
///
/// Set-up or build failures, a side that does not finish, or any FAILED case.
pub(crate) fn check(
    root: &Path,
    py: &Path,
    full: bool,
    extra_excludes: &[String],
) -> anyhow::Result<String> {
    let dir = util::target_dir(root).join("autobahn");
    let wstest = setup(root, &dir, py)?;
    util::run(cargo().current_dir(root).args([
        "build",
        "--release",
        "-p",
        "squall-websocket",
        "--example",
        "ws_echo",
        "--example",
        "autobahn_client",
    ]))?;
    let examples = util::target_dir(root).join("release/examples");
    let mut exclude: Vec<&str> = if full {
        Vec::new()
    } else {
        COMPRESSION_SECTIONS.to_vec()
    };
    exclude.extend(extra_excludes.iter().map(String::as_str));
    let limit = if full {
        Duration::from_secs(40 * 60)
    } else {
        Duration::from_secs(10 * 60)
    };
    let reports = dir.join("reports");

    // The server: wstest is the client.
    let port = free_port()?;
    let log = dir.join("ws_echo.log");
    let mut cmd = Command::new(examples.join("ws_echo"));
    cmd.args(["--port", &port.to_string()]);
    proc::to_log(&mut cmd, &log)?;
    let mut server = Guard::spawn("the ws_echo example", &mut cmd)?;
    server.wait_listening(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(30),
        &log,
    )?;
    let spec = serde_json::json!({
        "outdir": reports.join("servers"),
        "servers": [{"agent": "squall", "url": format!("ws://127.0.0.1:{port}")}],
        "cases": ["*"],
        "exclude-cases": exclude,
        "exclude-agent-cases": {},
    });
    let spec_path = dir.join("fuzzingclient.json");
    fs::write(&spec_path, spec.to_string())?;
    let _ = fs::remove_file(reports.join("servers/index.json"));
    let mut cmd = Command::new(&wstest);
    cmd.current_dir(&dir)
        .args(["-m", "fuzzingclient", "-s"])
        .arg(&spec_path);
    run_quiet(&mut cmd, &dir.join("fuzzingclient.log"), limit)?;
    drop(server);
    let servers = tally(&reports.join("servers/index.json"))?;

    // The client: wstest is the server.
    let port = free_port()?;
    let spec = serde_json::json!({
        "url": format!("ws://127.0.0.1:{port}"),
        "outdir": reports.join("clients"),
        "cases": ["*"],
        "exclude-cases": exclude,
        "exclude-agent-cases": {},
    });
    let spec_path = dir.join("fuzzingserver.json");
    fs::write(&spec_path, spec.to_string())?;
    let _ = fs::remove_file(reports.join("clients/index.json"));
    let log = dir.join("fuzzingserver.log");
    let mut cmd = Command::new(&wstest);
    cmd.current_dir(&dir)
        .args(["-m", "fuzzingserver", "--webport", "0", "-s"])
        .arg(&spec_path);
    proc::to_log(&mut cmd, &log)?;
    let mut fuzzingserver = Guard::spawn("wstest -m fuzzingserver", &mut cmd)?;
    fuzzingserver.wait_listening(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(60),
        &log,
    )?;
    let mut cmd = Command::new(examples.join("autobahn_client"));
    cmd.arg(format!("ws://127.0.0.1:{port}"));
    run_quiet(&mut cmd, &dir.join("autobahn_client.log"), limit)?;
    drop(fuzzingserver);
    let clients = tally(&reports.join("clients/index.json"))?;

    let scope = if !extra_excludes.is_empty() {
        format!(
            "{}, less {}",
            if full {
                "all sections"
            } else {
                "all sections but 12 and 13"
            },
            extra_excludes.join(",")
        )
    } else if full {
        "all sections".to_owned()
    } else {
        "all sections but 12 and 13 (compression; --full runs them)".to_owned()
    };
    let summary = format!(
        "autobahn ({scope}):\n  server: {}\n  client: {}\n  reports: {}",
        servers.line(),
        clients.line(),
        reports.display()
    );
    let failed: Vec<String> = servers
        .failed
        .iter()
        .map(|c| format!("server {c}"))
        .chain(clients.failed.iter().map(|c| format!("client {c}")))
        .collect();
    if !failed.is_empty() {
        println!("{summary}");
        bail!("{} FAILED case(s): {}", failed.len(), failed.join(", "));
    }
    Ok(summary)
}

/// Makes the virtualenv unless it is there with the current pins; returns `wstest`.
fn setup(root: &Path, dir: &Path, py: &Path) -> anyhow::Result<PathBuf> {
    let pins_path = root.join("xtask/autobahn-requirements27.txt");
    let pins = fs::read_to_string(&pins_path)
        .with_context(|| format!("reading {}", pins_path.display()))?;
    let venv = dir.join("venv");
    let stamp = venv.join("squall-pins.txt");
    let wstest = venv.join("bin/wstest");
    if wstest.exists() && fs::read_to_string(&stamp).ok().as_deref() == Some(pins.as_str()) {
        return Ok(wstest);
    }
    println!("autobahn: setting up {} (once)", venv.display());
    let _ = fs::remove_dir_all(&venv);
    let helper = dir.join("virtualenv");
    util::run(
        Command::new(py)
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&helper)
            .arg(VIRTUALENV_VERSION),
    )?;
    util::run(
        Command::new(py)
            .env("PYTHONPATH", &helper)
            .args(["-m", "virtualenv", "--quiet", "-p"])
            .arg(py)
            .arg(&venv),
    )?;
    let pip = venv.join("bin/pip");
    util::run(
        Command::new(&pip)
            .args(["install", "--quiet", "-r"])
            .arg(&pins_path),
    )?;
    util::run(Command::new(&pip).args(["install", "--quiet", "--no-deps", AUTOBAHN_VERSION]))?;
    fs::write(&stamp, pins)?;
    Ok(wstest)
}

/// Runs `cmd` with its output in `log`, killing it after `limit`.
fn run_quiet(cmd: &mut Command, log: &Path, limit: Duration) -> anyhow::Result<()> {
    println!("$ {}  (output: {})", util::display(cmd), log.display());
    proc::to_log(cmd, log)?;
    Guard::spawn("wstest side", cmd)?
        .finish(limit)
        .with_context(|| format!("see {}", log.display()))?;
    Ok(())
}

/// The verdicts of one side.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    /// Cases per verdict (the worse of the behaviour and the closing behaviour).
    counts: BTreeMap<String, usize>,
    /// The cases with a FAILED verdict.
    failed: Vec<String>,
}

impl Tally {
    fn line(&self) -> String {
        let total: usize = self.counts.values().sum();
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        format!("{total} cases: {}", parts.join(", "))
    }
}

/// How bad a verdict is, for picking the worse of two.
fn rank(verdict: &str) -> u8 {
    match verdict {
        "OK" => 0,
        "INFORMATIONAL" => 1,
        "NON-STRICT" => 2,
        "UNIMPLEMENTED" => 3,
        _ => 4,
    }
}

/// Reads wstest's `index.json` (`{agent: {case: {behavior, behaviorClose, ...}}}`).
fn tally(path: &Path) -> anyhow::Result<Tally> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_index(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse_index(text: &str) -> anyhow::Result<Tally> {
    let index: serde_json::Value = serde_json::from_str(text)?;
    let mut tally = Tally::default();
    let agents = index.as_object().context("not an object")?;
    for cases in agents.values() {
        for (case, result) in cases.as_object().context("agent entry is not an object")? {
            let behavior = result["behavior"].as_str().unwrap_or("MISSING");
            let close = result["behaviorClose"].as_str().unwrap_or("MISSING");
            let verdict = if rank(close) > rank(behavior) {
                close
            } else {
                behavior
            };
            *tally.counts.entry(verdict.to_owned()).or_default() += 1;
            if verdict == "FAILED" || verdict == "MISSING" {
                tally.failed.push(case.clone());
            }
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_verdicts_take_the_worse_of_behaviour_and_close() {
        let index = r#"{"squall": {
            "1.1.1": {"behavior": "OK", "behaviorClose": "OK"},
            "6.4.1": {"behavior": "NON-STRICT", "behaviorClose": "OK"},
            "7.1.1": {"behavior": "OK", "behaviorClose": "FAILED"},
            "12.1.1": {"behavior": "UNIMPLEMENTED", "behaviorClose": "UNIMPLEMENTED"}
        }}"#;
        let t = parse_index(index).unwrap();
        assert_eq!(t.failed, vec!["7.1.1".to_owned()]);
        assert_eq!(
            t.line(),
            "4 cases: FAILED 1, NON-STRICT 1, OK 1, UNIMPLEMENTED 1"
        );
    }
}
