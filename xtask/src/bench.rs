//! `cargo xtask bench`: squall against its peers, in one run, with a table and a chart.
//!
//! Builds in release, then runs the criterion micro-benchmarks of `squall-benches`, the
//! end-to-end HTTP runs (keep-alive with 1, 64 and 1,024 connections; 16-deep pipelining
//! on 64) against every server that is there (squall's `hello` example, the floor,
//! hyper on the current-thread and the multi-thread runtime, nginx, Python Tornado), a
//! memory run (RSS per idle keep-alive connection) and an echo run (MB/s), and writes
//! `target/squall-bench/report.md` (+ `report.json` with `--json`) and a chart.
//!
//! Fairness: servers on CPU 0, the load generator on CPU 1; the servers take turns in
//! every round (A B A B, so drift cancels); each run is warmed up before it is counted;
//! figures are medians of the rounds with min and max. The headline is the server's CPU
//! time per request (utime + stime from `/proc/PID/stat` over the counted window,
//! divided by the requests served), because on a 2-core machine one load-generator
//! thread saturates its core before a fast server does. See `BENCHMARKS.md`.

mod report;

use std::collections::BTreeMap;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use crate::flags::Flags;
use crate::load::{
    loadgen_command, parse_loadgen, parse_wrk, run_client, wrk_command, wrk_script, Generator,
    RunSpec, Sample,
};
use crate::proc::{self, which, Guard, CLIENT_CPU, SERVER_CPU};
use crate::util;

/// The runs, in order.
pub(crate) const RUNS: [RunSpec; 4] = [
    RunSpec {
        name: "keep-alive 1",
        connections: 1,
        pipeline: 1,
    },
    RunSpec {
        name: "keep-alive 64",
        connections: 64,
        pipeline: 1,
    },
    RunSpec {
        name: "keep-alive 1024",
        connections: 1024,
        pipeline: 1,
    },
    RunSpec {
        name: "pipelined 16",
        connections: 64,
        pipeline: 16,
    },
];

/// Every server the bench knows, in table order.
pub(crate) const SERVERS: [&str; 7] = [
    "squall",
    "squall-log",
    "floor",
    "hyper-ct",
    "hyper-mt",
    "nginx",
    "tornado",
];

/// A human name for a server id.
pub(crate) fn server_label(id: &str) -> &str {
    match id {
        "squall" => "squall (hello, 1 thread)",
        "squall-log" => "squall, access log on (README's command)",
        "floor" => "floor (bare epoll)",
        "hyper-ct" => "hyper, tokio current-thread",
        "hyper-mt" => "hyper, tokio multi-thread (1 worker)",
        "nginx" => "nginx (1 process)",
        "tornado" => "Python Tornado",
        other => other,
    }
}

/// Everything measured, for the report.
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) quick: bool,
    pub(crate) rounds: usize,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) generator: String,
    /// Lines saying what was skipped and why.
    pub(crate) skipped: Vec<String>,
    /// Servers that ran, in table order.
    pub(crate) servers: Vec<String>,
    /// (server, run name) -> one sample per round.
    pub(crate) http: BTreeMap<(String, String), Vec<Sample>>,
    /// wrk vs loadgen on the floor: (run name, wrk sample, loadgen sample).
    pub(crate) agreement: Vec<(String, Sample, Sample)>,
    /// server -> (connections, KiB per connection, RSS before in KiB).
    pub(crate) memory: BTreeMap<String, Vec<(usize, f64, u64)>>,
    /// echo server -> MB/s per round.
    pub(crate) echo: BTreeMap<String, Vec<f64>>,
    /// echo server -> its CPU time (user + system) per GB echoed, in ms, per round: the
    /// server's own cost, where MB/s is bound by the client on a 2-core machine.
    pub(crate) echo_cpu: BTreeMap<String, Vec<f64>>,
    /// Criterion: (benchmark id, median in ns).
    pub(crate) criterion: Vec<(String, f64)>,
    /// What happened to the criterion step.
    pub(crate) criterion_note: String,
    pub(crate) machine: report::Machine,
}

struct Settings {
    quick: bool,
    json: bool,
    /// Skip the criterion step (for quick A/B runs of a few servers).
    no_criterion: bool,
    only: Option<Vec<String>>,
    rounds: usize,
    duration: Duration,
    warmup: Duration,
}

/// Paths of everything the bench runs.
struct Tools {
    root: PathBuf,
    /// The workspace's target folder.
    target: PathBuf,
    out: PathBuf,
    tmp: PathBuf,
    floor: PathBuf,
    loadgen: PathBuf,
    hyper: Option<PathBuf>,
    tokio_echo: Option<PathBuf>,
    squall_hello: Option<PathBuf>,
    squall_echo: Option<PathBuf>,
    nginx: Option<PathBuf>,
    /// A Python that imports `tornado`, when one was found.
    tornado: Option<PathBuf>,
    wrk: Option<PathBuf>,
    wrk_scripts: BTreeMap<usize, PathBuf>,
}

pub(crate) fn run(args: Vec<String>) -> anyhow::Result<()> {
    proc::require_linux("bench")?;
    let mut flags = Flags::new("bench", args);
    let quick = flags.flag("--quick");
    let json = flags.flag("--json");
    let no_criterion = flags.flag("--no-criterion");
    let only = flags.option("--only")?.map(|s| {
        s.split(',')
            .map(|p| p.trim().to_owned())
            .collect::<Vec<_>>()
    });
    let rounds = flags.parsed::<usize>("--rounds")?;
    flags.finish()?;
    if let Some(only) = &only {
        for id in only {
            if !SERVERS.contains(&id.as_str()) {
                bail!(
                    "--only: unknown server `{id}` (known: {})",
                    SERVERS.join(", ")
                );
            }
        }
    }
    let rounds = rounds.unwrap_or(if quick { 1 } else { 3 });
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let settings = Settings {
        quick,
        json,
        no_criterion,
        only,
        rounds,
        // `--quick` must finish in under two minutes after the first build: 24 counted
        // runs of 1 s (wrk counts whole seconds) after 0.3 s of warm-up each, plus
        // criterion's short mode.
        duration: Duration::from_secs(if quick { 1 } else { 5 }),
        warmup: Duration::from_millis(if quick { 300 } else { 1000 }),
    };
    let start = Instant::now();
    let result = bench(&settings);
    println!("bench: finished in {}", util::human(start.elapsed()));
    result
}

fn wanted(s: &Settings, id: &str) -> bool {
    match &s.only {
        None => true,
        Some(only) => only.iter().any(|x| x == id),
    }
}

/// Set up (build, find the peers, plan the runs), drive (criterion, HTTP, memory,
/// echo), judge (the report, the table, the chart, the JSON).
fn bench(s: &Settings) -> anyhow::Result<()> {
    let (tools, plan, mut res) = set_up(s)?;
    drive(s, &tools, &plan, &mut res);
    write_report(s, &tools, &res)?;
    let _ = fs::remove_dir_all(&tools.tmp);
    Ok(())
}

/// What runs, decided once everything is built.
struct Plan {
    /// The servers of the HTTP runs, in table order.
    servers: Vec<String>,
    /// Whether wrk and squall-loadgen are compared on the floor.
    agreement: bool,
    /// The servers whose idle connections are weighed (`squall-log` holds them as
    /// `squall` does).
    memory_servers: Vec<String>,
    /// Idle connections per memory run.
    memory_counts: &'static [usize],
    /// The echo servers: (name, binary).
    echo_servers: Vec<(&'static str, PathBuf)>,
    /// The progress bar, sized for every step.
    pb: ProgressBar,
}

/// Set-up: folders, the open-file limit, the builds and the peers found ([`build`]),
/// the wrk scripts, and the [`Plan`] ([`plan`]).
fn set_up(s: &Settings) -> anyhow::Result<(Tools, Plan, Results)> {
    let root = util::project_root();
    let target = util::target_dir(&root);
    let out = target.join("squall-bench");
    let tmp = out.join("tmp");
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    fs::create_dir_all(out.join("logs"))?;
    let nofile = proc::raise_nofile().context("raising RLIMIT_NOFILE")?;
    if proc::cpus() < 2 {
        println!("bench: only {} CPU here: server and load generator share it (figures are less meaningful)", proc::cpus());
    }

    let mut res = Results {
        quick: s.quick,
        rounds: s.rounds,
        duration: s.duration,
        warmup: s.warmup,
        machine: report::Machine::probe(),
        ..Results::default()
    };
    let mut tools = build(s, &root, &target, out, tmp, &mut res)?;
    res.generator = match &tools.wrk {
        Some(_) => format!(
            "wrk ({}), 1 thread; squall-loadgen for warm-ups",
            report::wrk_version()
        ),
        None => "squall-loadgen (wrk not installed), 1 thread".to_owned(),
    };
    if tools.wrk.is_some() {
        for depth in RUNS.iter().map(|r| r.pipeline) {
            let path = tools.tmp.join(format!("pipeline-{depth}.lua"));
            fs::write(&path, wrk_script(depth))?;
            tools.wrk_scripts.insert(depth, path);
        }
    }
    let plan = plan(s, &tools, nofile, &mut res);
    Ok((tools, plan, res))
}

/// Which servers and runs take part, given what was built and found; the progress bar
/// sized for them.
fn plan(s: &Settings, tools: &Tools, nofile: u64, res: &mut Results) -> Plan {
    let mut servers = Vec::new();
    for id in SERVERS {
        if !wanted(s, id) {
            continue;
        }
        let available = match id {
            "squall" | "squall-log" => tools.squall_hello.is_some(),
            "floor" => true,
            "hyper-ct" | "hyper-mt" => tools.hyper.is_some(),
            "nginx" => tools.nginx.is_some(),
            "tornado" => tools.tornado.is_some(),
            _ => false,
        };
        if available {
            servers.push(id.to_owned());
        }
    }
    if 1024 + 64 > nofile as usize {
        res.skipped.push(format!(
            "open-file limit is {nofile}: the 1,024-connection run may count connect errors"
        ));
    }
    res.servers = servers.clone();

    let memory_counts: &[usize] = if s.quick { &[1_000] } else { &[1_000, 10_000] };
    let echo_servers: Vec<(&str, PathBuf)> = [
        ("squall", tools.squall_echo.clone()),
        ("tokio", tools.tokio_echo.clone()),
    ]
    .into_iter()
    .filter_map(|(n, p)| p.map(|p| (n, p)))
    .filter(|(n, _)| *n != "squall" || wanted(s, "squall"))
    .collect();
    let agreement = tools.wrk.is_some() && servers.iter().any(|x| x == "floor");
    // The access-log variant holds idle connections exactly as `squall` does.
    let memory_servers: Vec<String> = servers
        .iter()
        .filter(|id| *id != "squall-log")
        .cloned()
        .collect();
    let steps = 1
        + s.rounds * servers.len() * RUNS.len()
        + usize::from(agreement) * 3
        + memory_servers.len() * memory_counts.len()
        + s.rounds * echo_servers.len();
    let pb = ProgressBar::new(steps as u64);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    for line in &res.skipped {
        say(&pb, format!("skip: {line}"));
    }
    Plan {
        servers,
        agreement,
        memory_servers,
        memory_counts,
        echo_servers,
        pb,
    }
}

/// Drive: every measurement of the plan, in order, into `res`. A failed run is said
/// above the progress bar and left out of the figures; it does not stop the others.
fn drive(s: &Settings, tools: &Tools, plan: &Plan, res: &mut Results) {
    let pb = &plan.pb;
    // 1. Criterion.
    if s.no_criterion {
        res.criterion_note = "skipped (`--no-criterion`)".to_owned();
    } else {
        pb.set_message("criterion micro-benchmarks");
        criterion(s, tools, res, pb);
    }
    pb.inc(1);

    // 2. End-to-end HTTP, servers alternating within each round.
    drive_http(s, tools, plan, res);

    // 3. Memory.
    for id in &plan.memory_servers {
        for &n in plan.memory_counts {
            pb.set_message(format!("memory: {id}, {n} idle connections"));
            match memory(tools, id, n) {
                Ok((per_conn, before)) => res
                    .memory
                    .entry(id.clone())
                    .or_default()
                    .push((n, per_conn, before)),
                Err(e) => say(pb, format!("error: memory {id} {n}: {e:#}")),
            }
            pb.inc(1);
        }
    }

    // 4. Echo, the servers counted in turn, slice by slice (as the HTTP runs).
    for round in 0..s.rounds {
        pb.set_message(format!("echo round {}/{}", round + 1, s.rounds));
        for (name, figure) in echo_round(s, tools, &plan.echo_servers, round) {
            match figure {
                Ok((mbps, cpu)) => {
                    res.echo.entry(name.to_owned()).or_default().push(mbps);
                    res.echo_cpu.entry(name.to_owned()).or_default().push(cpu);
                }
                Err(e) => say(pb, format!("error: echo {name}: {e:#}")),
            }
            pb.inc(1);
        }
    }
    pb.finish_with_message("done");
}

/// The end-to-end HTTP runs. Each round starts every server (all pinned to the server
/// CPU; an idle one sleeps in its poll and costs the others nothing), then, for each
/// load shape, warms every server up and counts it in one-second slices taken in turn:
/// A B C, then B C A, then C A B, … (the order also turns with the round and the
/// shape). A server's figure for the round is the sum of its slices (CPU time over
/// responses). The servers a target compares are so measured over the same stretch of
/// the host's time, interleaved second by second, rather than one after the other: on
/// a shared host whose speed changes for tens of seconds at a time (a busy neighbour),
/// a server counted in a slow stretch beside one counted in a fast stretch compared
/// the stretches, not the servers. In the first round the floor also serves the
/// wrk-against-loadgen comparison.
fn drive_http(s: &Settings, tools: &Tools, plan: &Plan, res: &mut Results) {
    let (pb, servers) = (&plan.pb, &plan.servers);
    let gen = if tools.wrk.is_some() {
        Generator::Wrk
    } else {
        Generator::Loadgen
    };
    let n = servers.len();
    let (slices, slice) = slicing(s.duration);
    for round in 0..s.rounds {
        let mut running: Vec<Option<(Guard, SocketAddr)>> = servers
            .iter()
            .map(|id| match start_server(tools, id) {
                Ok(up) => Some(up),
                Err(e) => {
                    say(pb, format!("error: {id}: {e:#}"));
                    None
                }
            })
            .collect();
        let msg = |spec: RunSpec, id: &str, what: &str| {
            format!(
                "round {}/{}: {}, {id}{what}",
                round + 1,
                s.rounds,
                spec.name
            )
        };
        for (j, spec) in RUNS.into_iter().enumerate() {
            // Every server warmed up first, in this shape's order.
            let mut counted: Vec<Option<Counted>> = vec![None; n];
            for k in 0..n {
                let at = (k + round + j) % n;
                pb.set_message(msg(spec, &servers[at], " (warm-up)"));
                if let Some((_, addr)) = &running[at] {
                    match generate(tools, *addr, spec, Generator::Loadgen, s.warmup) {
                        Ok(_) => counted[at] = Some(Counted::default()),
                        Err(e) => say(
                            pb,
                            format!("error: {}, {} (warm-up): {e:#}", servers[at], spec.name),
                        ),
                    }
                }
            }
            // Then the counted slices, interleaved.
            for i in 0..slices {
                for k in 0..n {
                    let at = (k + round + j + i) % n;
                    let (Some((guard, addr)), Some(c)) = (&mut running[at], &mut counted[at])
                    else {
                        continue;
                    };
                    let what = format!(" ({}/{slices})", i + 1);
                    pb.set_message(msg(spec, &servers[at], &what));
                    match count_slice(tools, guard, *addr, spec, gen, slice) {
                        Ok((sample, cpu_us)) => c.add(&sample, cpu_us),
                        Err(e) => {
                            say(pb, format!("error: {}, {}: {e:#}", servers[at], spec.name));
                            counted[at] = None;
                        }
                    }
                }
            }
            for (at, c) in counted.into_iter().enumerate() {
                if let Some(sample) = c.and_then(|c| c.sample(round, slice)) {
                    res.http
                        .entry((servers[at].clone(), spec.name.to_owned()))
                        .or_default()
                        .push(sample);
                }
                pb.inc(1);
            }
        }
        let floor = servers.iter().position(|id| id == "floor");
        if let (true, 0, Some(at)) = (plan.agreement, round, floor) {
            if let Some((guard, addr)) = &mut running[at] {
                for spec in [RUNS[0], RUNS[1], RUNS[3]] {
                    pb.set_message(format!("wrk vs loadgen on the floor, {}", spec.name));
                    let w = measure(s, tools, guard, *addr, spec, Generator::Wrk);
                    let l = measure(s, tools, guard, *addr, spec, Generator::Loadgen);
                    match (w, l) {
                        (Ok(w), Ok(l)) => res.agreement.push((spec.name.to_owned(), w, l)),
                        (Err(e), _) | (_, Err(e)) => {
                            say(pb, format!("error: agreement run: {e:#}"))
                        }
                    }
                    pb.inc(1);
                }
            }
        }
        // Each server stops (its guard kills it) before the next round starts them
        // anew.
        drop(running);
    }
}

/// How a counted `duration` is cut: into slices of one second (wrk counts whole
/// seconds), at least one.
fn slicing(duration: Duration) -> (usize, Duration) {
    let slices = usize::try_from(duration.as_secs()).unwrap_or(1).max(1);
    (slices, duration / slices as u32)
}

/// One server's counted slices of one shape in one round, summed.
#[derive(Clone, Default)]
struct Counted {
    slices: usize,
    requests: u64,
    errors: u64,
    cpu_us: f64,
    p50: Vec<f64>,
    p99: Vec<f64>,
}

impl Counted {
    fn add(&mut self, sample: &Sample, cpu_us: f64) {
        self.slices += 1;
        self.requests += sample.requests;
        self.errors += sample.errors;
        self.cpu_us += cpu_us;
        // A slice with no latency recorded (wrk's pipelined script, at times) has none
        // to count.
        if sample.p50_us > 0.0 {
            self.p50.push(sample.p50_us);
        }
        if sample.p99_us > 0.0 {
            self.p99.push(sample.p99_us);
        }
    }

    /// The round's sample: CPU time over responses, req/s over the counted time, the
    /// median of the slices' latencies (0, "none", if no slice recorded one). `None`
    /// if nothing was counted.
    fn sample(self, round: usize, slice: Duration) -> Option<Sample> {
        if self.requests == 0 {
            return None;
        }
        let secs = slice.as_secs_f64() * self.slices as f64;
        Some(Sample {
            round,
            requests: self.requests,
            rps: self.requests as f64 / secs,
            cpu_us_per_req: self.cpu_us / self.requests as f64,
            p50_us: report::stats(&self.p50).map_or(0.0, |t| t.0),
            p99_us: report::stats(&self.p99).map_or(0.0, |t| t.0),
            errors: self.errors,
        })
    }
}

/// Judge: the Markdown report, the summary table on the terminal, the chart, and the
/// JSON with `--json`.
fn write_report(s: &Settings, tools: &Tools, res: &Results) -> anyhow::Result<()> {
    let md = report::markdown(res);
    let md_path = tools.out.join("report.md");
    fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    println!("\n{}", report::summary_table(res));
    println!("report: {}", md_path.display());
    match report::chart(
        res,
        &tools.out.join("chart.svg"),
        &tools.out.join("chart.png"),
    ) {
        Ok(()) => println!(
            "chart:  {} and chart.png",
            tools.out.join("chart.svg").display()
        ),
        Err(e) => println!("chart: not drawn: {e:#}"),
    }
    if s.json {
        let path = tools.out.join("report.json");
        fs::write(&path, serde_json::to_string_pretty(&report::json(res))?)?;
        println!("json:   {}", path.display());
    }
    Ok(())
}

/// Prints a line above the progress bar (or plainly when there is no terminal, where
/// indicatif draws nothing).
fn say(pb: &ProgressBar, line: impl AsRef<str>) {
    if pb.is_hidden() {
        println!("{}", line.as_ref());
    } else {
        pb.println(line.as_ref());
    }
}

/// Runs a build step quietly; on failure returns the last lines of its output.
fn cargo_quiet(root: &Path, args: &[&str], target: &Path) -> Result<(), String> {
    let mut cmd = util::cargo();
    cmd.args(args)
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target);
    let shown = util::display(&cmd);
    println!("$ {shown}");
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = tail[tail.len().saturating_sub(6)..].join("\n    ");
            Err(format!("`{shown}` failed ({}):\n    {tail}", o.status))
        }
        Err(e) => Err(format!("cannot run `{shown}`: {e}")),
    }
}

fn build(
    s: &Settings,
    root: &Path,
    target: &Path,
    out: PathBuf,
    tmp: PathBuf,
    res: &mut Results,
) -> anyhow::Result<Tools> {
    println!("bench: building in release mode");
    cargo_quiet(
        root,
        &["build", "--release", "-p", "squall-benches", "--bins"],
        target,
    )
    .map_err(anyhow::Error::msg)?;
    let release = target.join("release");
    let mut tools = Tools {
        root: root.to_owned(),
        target: target.to_owned(),
        floor: release.join("floor"),
        loadgen: release.join("loadgen"),
        out,
        tmp,
        hyper: None,
        tokio_echo: None,
        squall_hello: None,
        squall_echo: None,
        nginx: None,
        tornado: None,
        wrk: which("wrk", &[]),
        wrk_scripts: BTreeMap::new(),
    };
    if tools.wrk.is_none() {
        res.skipped.push(
            "wrk: not installed (`apt install wrk`); squall-loadgen counts instead".to_owned(),
        );
    }

    // The peers' own workspace, into its own target folder.
    let peers = target.join("peers");
    let manifest = root.join("benches/peers/Cargo.toml");
    let manifest = manifest.to_string_lossy();
    match cargo_quiet(
        root,
        &["build", "--release", "--manifest-path", &manifest],
        &peers,
    ) {
        Ok(()) => {
            tools.hyper = Some(peers.join("release/hyper-hello"));
            tools.tokio_echo = Some(peers.join("release/tokio-echo"));
        }
        Err(e) => res
            .skipped
            .push(format!("hyper and tokio peers: build failed: {e}")),
    }

    // squall's examples: the HTTP hello server (the facade's main job) and the
    // IoStream echo server of squall-tcpserver.
    for (package, example, slot) in [
        ("squall", "hello", &mut tools.squall_hello),
        ("squall-tcpserver", "echo", &mut tools.squall_echo),
    ] {
        if example == "hello" && !wanted(s, "squall") && !wanted(s, "squall-log") {
            continue;
        }
        let file = root.join(format!("crates/{package}/examples/{example}.rs"));
        if !file.is_file() {
            res.skipped.push(format!(
                "squall {example}: not built (no crates/{package}/examples/{example}.rs)"
            ));
            continue;
        }
        match cargo_quiet(
            root,
            &["build", "--release", "-p", package, "--example", example],
            target,
        ) {
            Ok(()) => *slot = Some(release.join("examples").join(example)),
            Err(e) => res
                .skipped
                .push(format!("squall {example}: not built ({e})")),
        }
    }

    tools.nginx = which("nginx", &["/usr/sbin/nginx"]);
    if tools.nginx.is_none() && wanted(s, "nginx") {
        res.skipped
            .push("nginx: not installed (`apt install nginx`)".to_owned());
    }
    if wanted(s, "tornado") {
        // The system's Python first, then the virtualenv squall-websocket's interop test
        // makes (with Tornado in it) under `target/ws-interop`.
        let venv = tools.root.join("target/ws-interop/venv/bin/python");
        tools.tornado = [PathBuf::from("python3"), venv].into_iter().find(|py| {
            Command::new(py)
                .args(["-c", "import tornado"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success())
        });
        if tools.tornado.is_none() {
            res.skipped.push(
                "Python Tornado: `python3 -c \"import tornado\"` fails (`pip install tornado`), \
                 and `target/ws-interop/venv` (made by `cargo xtask ci`) has none"
                    .to_owned(),
            );
        }
    }
    Ok(tools)
}

fn criterion(s: &Settings, tools: &Tools, res: &mut Results, pb: &ProgressBar) {
    let target = &tools.target;
    let bench_dir = tools.root.join("benches/benches");
    let has_benches = fs::read_dir(&bench_dir)
        .map(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "rs"))
        })
        .unwrap_or(false);
    if !has_benches {
        res.criterion_note = "no criterion benchmarks in `benches/benches/` yet".to_owned();
        say(pb, format!("criterion: {}", res.criterion_note));
        return;
    }
    let started = std::time::SystemTime::now();
    let mut cmd = util::cargo();
    cmd.args(["bench", "-p", "squall-benches", "--benches", "--"]);
    if s.quick {
        cmd.args([
            "--warm-up-time",
            "0.1",
            "--measurement-time",
            "0.25",
            "--sample-size",
            "10",
            "--noplot",
        ]);
    }
    cmd.current_dir(&tools.root).env("CARGO_TARGET_DIR", target);
    let log = tools.out.join("logs/criterion.log");
    say(pb, format!("$ {} > {}", util::display(&cmd), log.display()));
    let output = cmd.output();
    let _ = output
        .as_ref()
        .map(|o| fs::write(&log, [&o.stdout[..], &o.stderr[..]].concat()));
    let criterion_dir = target.join("criterion");
    match output {
        Ok(o) if o.status.success() => {
            res.criterion = report::criterion_medians(&criterion_dir, started);
            res.criterion_note = format!(
                "{} benchmarks ran; estimates in `{}`, output in `{}`",
                res.criterion.len(),
                criterion_dir.display(),
                log.display()
            );
        }
        Ok(o) => {
            res.criterion_note = format!(
                "`cargo bench -p squall-benches` failed ({}); see `{}`",
                o.status,
                log.display()
            )
        }
        Err(e) => res.criterion_note = format!("cannot run cargo bench: {e}"),
    }
    say(pb, format!("criterion: {}", res.criterion_note));
}

fn start_server(tools: &Tools, id: &str) -> anyhow::Result<(Guard, SocketAddr)> {
    let port = proc::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let p = port.to_string();
    let mut cmd = match id {
        "squall" => {
            let mut c = Command::new(
                tools
                    .squall_hello
                    .as_ref()
                    .context("squall hello not built")?,
            );
            c.args(["--port", &p, "--threads", "1", "--quiet"]);
            c
        }
        // As the README starts it: the access log on, on standard error (sent to
        // /dev/null below, where each write is still a system call but costs the
        // kernel little, and a long run leaves no gigabyte log behind).
        "squall-log" => {
            let mut c = Command::new(
                tools
                    .squall_hello
                    .as_ref()
                    .context("squall hello not built")?,
            );
            c.args(["--port", &p, "--threads", "1"])
                .env_remove("RUST_LOG");
            c
        }
        "floor" => {
            let mut c = Command::new(&tools.floor);
            c.args(["--port", &p]);
            c
        }
        "hyper-ct" | "hyper-mt" => {
            let mut c = Command::new(tools.hyper.as_ref().context("hyper not built")?);
            let rt = if id == "hyper-ct" { "current" } else { "multi" };
            c.args(["--runtime", rt, "--threads", "1", "--port", &p]);
            c
        }
        "nginx" => {
            let prefix = tools.tmp.join(format!("nginx-{port}"));
            fs::create_dir_all(&prefix)?;
            let conf = prefix.join("nginx.conf");
            fs::write(&conf, nginx_conf(&prefix, port))?;
            let mut c = Command::new(tools.nginx.as_ref().context("nginx not found")?);
            c.arg("-p")
                .arg(&prefix)
                .arg("-c")
                .arg(&conf)
                .arg("-e")
                .arg(prefix.join("error.log"));
            c
        }
        "tornado" => {
            let app = tools.tmp.join("tornado_hello.py");
            fs::write(&app, TORNADO_APP)?;
            let mut c = Command::new(tools.tornado.as_ref().context("no Python with Tornado")?);
            c.arg(&app).arg(&p);
            c
        }
        other => bail!("unknown server {other}"),
    };
    let log = tools.out.join("logs").join(format!("{id}.log"));
    proc::to_log(&mut cmd, &log)?;
    if id == "squall-log" {
        cmd.stderr(Stdio::null());
    }
    proc::pin_and_tie(&mut cmd, Some(SERVER_CPU));
    let mut guard = Guard::spawn(id, &mut cmd)?;
    guard.wait_listening(addr, Duration::from_secs(20), &log)?;
    Ok((guard, addr))
}

/// nginx with one process (no master, so its CPU and RSS are one pid's), no access
/// log, keep-alive without limits, everything under `prefix`.
pub(crate) fn nginx_conf(prefix: &Path, port: u16) -> String {
    let p = prefix.display();
    format!(
        "# written by `cargo xtask bench`
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 30000;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{
    worker_connections 20000;
    use epoll;
}}
http {{
    access_log off;
    keepalive_timeout 600s;
    keepalive_requests 1000000000;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type text/plain;
            return 200 \"Hello, world!\";
        }}
    }}
}}
"
    )
}

/// Tornado's hello world, the way its docs write it.
const TORNADO_APP: &str = "\
# written by `cargo xtask bench`
import asyncio
import sys

import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.set_header(\"Content-Type\", \"text/plain\")
        self.write(\"Hello, world!\")


async def main():
    app = tornado.web.Application([(r\"/\", Hello)])
    app.listen(int(sys.argv[1]), address=\"127.0.0.1\", backlog=4096)
    await asyncio.Event().wait()


asyncio.run(main())
";

/// Runs the load generator once (pinned to the client CPU) and parses what it prints.
fn generate(
    tools: &Tools,
    addr: SocketAddr,
    spec: RunSpec,
    gen: Generator,
    duration: Duration,
) -> anyhow::Result<Sample> {
    let mut cmd = match gen {
        Generator::Wrk => {
            let wrk = tools.wrk.as_ref().context("wrk not installed")?;
            let script = tools
                .wrk_scripts
                .get(&spec.pipeline)
                .context("no wrk script")?;
            wrk_command(wrk, script, addr, spec, duration)
        }
        Generator::Loadgen => loadgen_command(&tools.loadgen, addr, spec, duration),
    };
    let out = run_client(gen.name(), &mut cmd, duration + Duration::from_secs(30))?;
    match gen {
        Generator::Wrk => parse_wrk(&out),
        Generator::Loadgen => parse_loadgen(&out),
    }
}

/// One counted slice, no warm-up: the generator's sample and the server's CPU time
/// (µs) read around it.
fn count_slice(
    tools: &Tools,
    server: &mut Guard,
    addr: SocketAddr,
    spec: RunSpec,
    gen: Generator,
    duration: Duration,
) -> anyhow::Result<(Sample, f64)> {
    let pid = server.pid();
    let before = proc::cpu_micros(pid)?;
    let sample = generate(tools, addr, spec, gen, duration)?;
    let after = proc::cpu_micros(pid)?;
    if let Some(status) = server.child.try_wait()? {
        bail!("{} exited during the run ({status})", server.name);
    }
    if sample.requests == 0 {
        bail!("no request completed ({} errors)", sample.errors);
    }
    Ok((sample, after - before))
}

/// Warm-up, then one counted run with the server's CPU time read around it.
fn measure(
    s: &Settings,
    tools: &Tools,
    server: &mut Guard,
    addr: SocketAddr,
    spec: RunSpec,
    gen: Generator,
) -> anyhow::Result<Sample> {
    generate(tools, addr, spec, Generator::Loadgen, s.warmup).context("warm-up")?;
    let (mut sample, cpu_us) = count_slice(tools, server, addr, spec, gen, s.duration)?;
    sample.cpu_us_per_req = cpu_us / sample.requests as f64;
    Ok(sample)
}

/// KiB of server RSS per idle keep-alive connection (each has served one request), and
/// the RSS before connecting.
fn memory(tools: &Tools, id: &str, n: usize) -> anyhow::Result<(f64, u64)> {
    let (guard, addr) = start_server(tools, id)?;
    // One request first, so one-time set-up (first buffers, lazy statics) is in the
    // baseline rather than in the per-connection figure.
    squall_benches_hold(tools, addr, 1)?.finish(Duration::from_secs(30))?;
    let before = proc::rss_kib(guard.pid())?;
    let mut holder = squall_benches_hold(tools, addr, n)?;
    let line = holder.first_line(Duration::from_secs(120))?;
    if !line.contains(&format!("\"held\":{n}")) {
        bail!("the client did not hold {n} connections: {line}");
    }
    let after = proc::rss_kib(guard.pid())?;
    drop(holder);
    drop(guard);
    Ok(((after as f64 - before as f64) / n as f64, before))
}

/// `loadgen --hold n`, pinned to the client CPU, stdin piped (it lets go when stdin
/// closes, or when killed).
fn squall_benches_hold(tools: &Tools, addr: SocketAddr, n: usize) -> anyhow::Result<Guard> {
    let mut cmd = Command::new(&tools.loadgen);
    cmd.args([
        "--addr",
        &addr.to_string(),
        "--hold",
        &n.to_string(),
        "--timeout",
        "100",
    ]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    proc::pin_and_tie(&mut cmd, Some(CLIENT_CPU));
    let mut g = Guard::spawn("loadgen --hold", &mut cmd)?;
    if n == 1 {
        // Let it go at once: it exits after its one request.
        drop(g.child.stdin.take());
    }
    Ok(g)
}

/// One round of the echo run: every echo server started and warmed up, then counted
/// in one-second slices taken in turn (the order turning with the round and the
/// slice); each server's MB/s is its bytes over its counted time, and its CPU per GB
/// its CPU time over those slices (read from `/proc/PID/stat` around each) over its
/// bytes, in ms.
fn echo_round<'a>(
    s: &Settings,
    tools: &Tools,
    servers: &'a [(&'static str, PathBuf)],
    round: usize,
) -> Vec<(&'a str, anyhow::Result<(f64, f64)>)> {
    /// A server up and warmed up, and what its slices counted.
    struct Up {
        guard: Guard,
        addr: SocketAddr,
        bytes: f64,
        secs: f64,
        cpu_us: f64,
    }
    let n = servers.len();
    let mut up: Vec<anyhow::Result<Up>> = servers
        .iter()
        .map(|(name, bin)| {
            let (guard, addr) = start_echo(tools, name, bin)?;
            echo_slice(tools, addr, s.warmup).context("warm-up")?;
            Ok(Up {
                guard,
                addr,
                bytes: 0.0,
                secs: 0.0,
                cpu_us: 0.0,
            })
        })
        .collect();
    let (slices, slice) = slicing(s.duration);
    for i in 0..slices {
        for k in 0..n {
            let at = (k + round + i) % n;
            let Ok(u) = &mut up[at] else {
                continue;
            };
            let pid = u.guard.pid();
            let counted = proc::cpu_micros(pid).and_then(|before| {
                let (b, t) = echo_slice(tools, u.addr, slice)?;
                Ok((b, t, proc::cpu_micros(pid)? - before))
            });
            match counted {
                Ok((b, t, cpu)) => {
                    u.bytes += b;
                    u.secs += t;
                    u.cpu_us += cpu;
                }
                Err(e) => up[at] = Err(e),
            }
        }
    }
    servers
        .iter()
        .zip(up)
        .map(|((name, _), r)| {
            let figure = r.and_then(|u| {
                drop(u.guard);
                // A probe that the port is gone (the guard reaped the server).
                let _ = TcpStream::connect_timeout(&u.addr, Duration::from_millis(100));
                if u.secs <= 0.0 || u.bytes <= 0.0 {
                    bail!("nothing counted");
                }
                Ok((u.bytes / u.secs / 1e6, u.cpu_us / 1e3 / (u.bytes / 1e9)))
            });
            (*name, figure)
        })
        .collect()
}

/// An echo server, pinned to the server CPU and listening on a free port.
fn start_echo(tools: &Tools, name: &str, bin: &Path) -> anyhow::Result<(Guard, SocketAddr)> {
    let port = proc::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cmd = Command::new(bin);
    cmd.args(["--port", &port.to_string()]);
    let log = tools.out.join("logs").join(format!("echo-{name}.log"));
    proc::to_log(&mut cmd, &log)?;
    proc::pin_and_tie(&mut cmd, Some(SERVER_CPU));
    let mut guard = Guard::spawn(&format!("{name} echo"), &mut cmd)?;
    guard.wait_listening(addr, Duration::from_secs(20), &log)?;
    Ok((guard, addr))
}

/// `loadgen --echo` against `addr` for `d`: the bytes echoed and checked, and the
/// seconds it counted them over.
fn echo_slice(tools: &Tools, addr: SocketAddr, d: Duration) -> anyhow::Result<(f64, f64)> {
    let mut c = Command::new(&tools.loadgen);
    c.args([
        "--addr",
        &addr.to_string(),
        "--echo",
        "--connections",
        "4",
        "--chunk",
        "65536",
    ])
    .arg("--duration")
    .arg(d.as_secs_f64().to_string());
    let out = run_client("loadgen --echo", &mut c, d + Duration::from_secs(30))?;
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).with_context(|| format!("echo result {out:?}"))?;
    let errors = v["errors"]["total"].as_u64().unwrap_or(0);
    if errors > 0 {
        bail!("{errors} echo connections broke (wrong bytes or closed)");
    }
    let bytes = v["bytes"].as_f64().context("no bytes")?;
    let secs = v["duration_s"].as_f64().context("no duration_s")?;
    Ok((bytes, secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_run_is_cut_into_whole_seconds() {
        assert_eq!(slicing(Duration::from_secs(5)), (5, Duration::from_secs(1)));
        assert_eq!(slicing(Duration::from_secs(1)), (1, Duration::from_secs(1)));
        let half = Duration::from_millis(500);
        assert_eq!(slicing(half), (1, half));
    }

    #[test]
    fn slices_sum_to_the_rounds_sample() {
        let slice = |requests, p50| Sample {
            requests,
            p50_us: p50,
            p99_us: p50 * 2.0,
            errors: 1,
            ..Sample::default()
        };
        let mut c = Counted::default();
        c.add(&slice(100, 10.0), 500.0);
        c.add(&slice(300, 30.0), 700.0);
        c.add(&slice(200, 20.0), 600.0);
        let s = c.sample(2, Duration::from_secs(1)).unwrap();
        assert_eq!((s.round, s.requests, s.errors), (2, 600, 3));
        assert_eq!(
            s.cpu_us_per_req,
            1800.0 / 600.0,
            "CPU over responses, not a mean of ratios"
        );
        assert_eq!(s.rps, 200.0);
        assert_eq!((s.p50_us, s.p99_us), (20.0, 40.0));
        assert!(Counted::default()
            .sample(0, Duration::from_secs(1))
            .is_none());
    }

    #[test]
    fn nginx_conf_has_one_process_and_no_access_log() {
        let conf = nginx_conf(Path::new("/tmp/x"), 8080);
        assert!(conf.contains("master_process off;"));
        assert!(conf.contains("access_log off;"));
        assert!(conf.contains("listen 127.0.0.1:8080"));
        assert!(conf.contains("return 200 \"Hello, world!\";"));
    }
}
