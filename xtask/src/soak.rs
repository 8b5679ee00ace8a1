//! `cargo xtask soak [--minutes N] [--server PATH] [--port P]`: runs squall's `hello`
//! example (or `--server PATH`, any binary taking `--port P --threads 1 --quiet` that
//! answers `GET /` with 200 `Hello, world!` and echoes `POST /echo` bodies) and drives
//! a mix at it on loopback for N minutes (default 5):
//!
//! - well-formed load, every response checked byte for byte: keep-alive `GET /` (8
//!   connections), 16-deep pipelined `GET /` (2), `POST /echo` with random bodies framed
//!   by Content-Length or chunked (2);
//! - faults: clients that vanish mid-request (half a head or half a body, then FIN or
//!   RST; a whole request then RST), slowloris clients (a byte a second, timed until the
//!   server closes them), and connection storms (2,000 connects at once, above the
//!   listen backlog, then closed);
//! - bad inputs: random binary, invalid requests (one per RFC 9112 rule), an oversized
//!   header (431), request-target (414) and body (413).
//!
//! It samples the server's RSS and open fds every second. At the end it stops the load,
//! waits (bounded) for the fds to come back to the baseline measured before the load,
//! judges RSS flat (see [`sample::rss_verdict`]) and prints the load held, the faults
//! injected, the bad inputs and how they were answered, and the requests lost: the
//! well-formed requests sent whose correct response never came. Any loss, wrong answer,
//! overdue slowloris, fd leak, RSS growth or server exit fails the task.
//!
//! The limits the bad inputs probe are squall-httpserver's documented defaults
//! (`HttpServerConfig::default()`; a unit test keeps the two in step); flags override
//! them for a server configured otherwise. Everything is bounded: the load by
//! `--minutes`, every socket operation by 10 s, the drain by the server's idle timeout
//! plus 10 s; the server dies with
//! us (PDEATHSIG) and is killed when the task ends; only 127.0.0.1 is used.

mod clients;
mod http;
mod sample;

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::flags::Flags;
use crate::proc::{self, Guard};
use crate::util;
use clients::{Kind, Live, Load, Settings, Tally};
use sample::Sample;

/// squall-httpserver's defaults (`HttpServerConfig::default()`), checked by a test.
const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
const DEFAULT_MAX_URI_LEN: usize = 8 * 1024;
const DEFAULT_MAX_BODY_SIZE: u64 = 100 * 1024 * 1024;
const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 30;
const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// All the chunk extensions of one chunked body (`Limits::max_chunk_extensions`).
pub(crate) const DEFAULT_MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;

/// Worker threads per kind of well-formed load.
const KEEPALIVE_WORKERS: usize = 8;
const PIPELINED_WORKERS: usize = 2;
const ECHO_WORKERS: usize = 2;
/// Threads injecting faults and bad inputs. Each bad input waits for the server's
/// answer and its close (squall lingers up to 2 s for the client to close first), so
/// several run side by side.
const FAULT_WORKERS: usize = 6;
/// Slowloris clients held at once.
const SLOWLORIS: usize = 8;
/// Connections per storm, and how often a storm comes.
const STORM_SIZE: usize = 2_000;
const STORM_EVERY: Duration = Duration::from_secs(30);
/// How long the fds may take to come back after the load, beyond the server's idle
/// timeout: a connection whose client vanished without its FIN or RST reaching the
/// server (a storm connection closed while the handshake was still settling past a
/// full accept queue) is half-open, and only the idle timeout ends it.
const DRAIN_SLACK: Duration = Duration::from_secs(10);

/// Runs the task: set up, drive, judge.
pub(crate) fn run(args: Vec<String>) -> anyhow::Result<()> {
    proc::require_linux("soak")?;
    let opts = Opts::parse(args)?;
    let mut soak = set_up(opts)?;
    let measured = drive(&mut soak)?;
    judge(soak, &measured)
}

/// What the flags ask for.
struct Opts {
    duration: Duration,
    server: Option<PathBuf>,
    port: Option<u16>,
    seed: u64,
    max_header_size: usize,
    max_uri_len: usize,
    max_body_size: u64,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Opts {
    fn parse(args: Vec<String>) -> anyhow::Result<Opts> {
        let mut flags = Flags::new("soak", args);
        let minutes = flags.parsed::<f64>("--minutes")?.unwrap_or(5.0);
        let server = flags.option("--server")?.map(PathBuf::from);
        let port = flags.parsed::<u16>("--port")?;
        let seed = flags.parsed::<u64>("--seed")?;
        let max_header_size = flags
            .parsed::<usize>("--max-header-size")?
            .unwrap_or(DEFAULT_MAX_HEADER_SIZE);
        let max_uri_len = flags
            .parsed::<usize>("--max-uri-len")?
            .unwrap_or(DEFAULT_MAX_URI_LEN);
        let max_body_size = flags
            .parsed::<u64>("--max-body-size")?
            .unwrap_or(DEFAULT_MAX_BODY_SIZE);
        let header_timeout = Duration::from_secs(
            flags
                .parsed::<u64>("--header-timeout")?
                .unwrap_or(DEFAULT_HEADER_TIMEOUT_SECS),
        );
        let idle_timeout = Duration::from_secs(
            flags
                .parsed::<u64>("--idle-timeout")?
                .unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS),
        );
        flags.finish()?;
        if !(minutes > 0.0 && minutes <= 24.0 * 60.0) {
            bail!("--minutes must be above 0 and at most a day");
        }
        let seed = seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        Ok(Opts {
            duration: Duration::from_secs_f64(minutes * 60.0),
            server,
            port,
            seed,
            max_header_size,
            max_uri_len,
            max_body_size,
            header_timeout,
            idle_timeout,
        })
    }
}

/// The server under test, started, checked and measured at rest.
struct Soak {
    guard: Guard,
    log: PathBuf,
    out: PathBuf,
    s: Settings,
    seed: u64,
    duration: Duration,
    idle_timeout: Duration,
    /// Open fds at rest, before the load.
    baseline: usize,
    rss_before: u64,
}

/// Set-up: the open-file limit, the server built (unless `--server`), started, checked
/// to answer like the `hello` example, and its fds and RSS at rest.
fn set_up(o: Opts) -> anyhow::Result<Soak> {
    let nofile = proc::raise_nofile().context("raising RLIMIT_NOFILE")?;
    if (nofile as usize) < STORM_SIZE + 200 {
        bail!(
            "the open-file limit is {nofile}; the storms need {} (raise the hard limit)",
            STORM_SIZE + 200
        );
    }
    let root = util::project_root();
    let out = util::target_dir(&root).join("squall-soak");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let server = match o.server {
        Some(path) => path,
        None => build_hello(&root, &util::target_dir(&root))?,
    };
    let port = match o.port {
        Some(p) => p,
        None => proc::free_port()?,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let log = out.join("server.log");
    let mut cmd = Command::new(&server);
    cmd.args(["--port", &port.to_string(), "--threads", "1", "--quiet"]);
    proc::to_log(&mut cmd, &log)?;
    proc::pin_and_tie(&mut cmd, None);
    println!("soak: $ {}  (log: {})", util::display(&cmd), log.display());
    let mut guard = Guard::spawn("server", &mut cmd)?;
    guard.wait_listening(addr, Duration::from_secs(30), &log)?;
    let pid = guard.pid();
    check_compatible(addr).with_context(|| {
        format!(
            "{} does not answer like squall's hello example",
            server.display()
        )
    })?;
    let baseline = settle_fds(pid)?;
    let rss_before = proc::rss_kib(pid)?;

    let s = Settings {
        addr,
        max_header_size: o.max_header_size,
        max_uri_len: o.max_uri_len,
        max_body_size: o.max_body_size,
        header_timeout: o.header_timeout,
        slowloris: SLOWLORIS,
        storm_size: STORM_SIZE,
        storm_every: STORM_EVERY,
        deadline: Instant::now() + o.duration,
        pid,
    };
    println!(
        "soak: pid {pid}, {} with seed {}; baseline {baseline} fds, RSS {}",
        util::human(o.duration),
        o.seed,
        sample::kib(rss_before)
    );
    println!(
        "soak: limits probed: header {} B (431), request-target {} B (414), body {} B (413), header timeout {}s (slowloris bound {}s)",
        s.max_header_size,
        s.max_uri_len,
        s.max_body_size,
        s.header_timeout.as_secs(),
        s.slowloris_bound().as_secs()
    );
    if o.duration < s.slowloris_bound() + Duration::from_secs(2) {
        println!(
            "soak: the run is shorter than the slowloris bound: no slowloris client can be judged"
        );
    }
    Ok(Soak {
        guard,
        log,
        out,
        s,
        seed: o.seed,
        duration: o.duration,
        idle_timeout: o.idle_timeout,
        baseline,
        rss_before,
    })
}

/// What the load and the drain measured.
struct Measured {
    /// Every worker's tally, merged.
    total: Tally,
    /// The server's RSS and fds, once a second during the load.
    samples: Vec<Sample>,
    /// Why the server stopped answering for good (it exited, or could not be sampled).
    died: Option<String>,
    load_time: Duration,
    /// Where the samples were written.
    csv_path: PathBuf,
    /// The server's fds at the end of the drain (`None` if it died first).
    fds_after: Option<usize>,
    drain_time: Duration,
}

/// Drive: every worker against the server until the deadline, sampling it each second;
/// then the drain, until its fds are back at the baseline (bounded by the idle timeout).
fn drive(soak: &mut Soak) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let (total, samples, mut died) = load(soak, start)?;
    let load_time = start
        .elapsed()
        .min(soak.duration)
        .max(Duration::from_millis(1));
    let csv: String = std::iter::once("seconds,rss_kib,fds\n".to_owned())
        .chain(
            samples
                .iter()
                .map(|x| format!("{:.1},{},{}\n", x.at.as_secs_f64(), x.rss_kib, x.fds)),
        )
        .collect();
    let csv_path = soak.out.join("samples.csv");
    fs::write(&csv_path, csv).with_context(|| format!("writing {}", csv_path.display()))?;

    // Drain: the fds must come back to the baseline.
    let drain_start = Instant::now();
    let drain = soak.idle_timeout + DRAIN_SLACK;
    let mut fds_after = None;
    if died.is_none() {
        while drain_start.elapsed() < drain {
            if let Some(status) = soak.guard.child.try_wait()? {
                died = Some(format!("the server exited after the load ({status})"));
                break;
            }
            let x = sample::sample(soak.s.pid, start.elapsed())?;
            fds_after = Some(x.fds);
            if x.fds <= soak.baseline + sample::FD_SLACK {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(Measured {
        total,
        samples,
        died,
        load_time,
        csv_path,
        fds_after,
        drain_time: drain_start.elapsed(),
    })
}

/// The load phase: the workers in threads, the server sampled once a second (a line
/// printed every 10 s) until the deadline or its death; then the workers stopped and
/// their tallies merged.
fn load(soak: &mut Soak, start: Instant) -> anyhow::Result<(Tally, Vec<Sample>, Option<String>)> {
    let (s, seed, pid) = (&soak.s, soak.seed, soak.s.pid);
    let guard = &mut soak.guard;
    let live = Live::default();
    let stop = AtomicBool::new(false);
    let mut samples: Vec<Sample> = Vec::new();
    let mut died = None;
    let mut total = Tally::default();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut workers = Vec::new();
        let mut n = 0u64;
        let mut next_seed = || {
            n += 1;
            seed.wrapping_add(n.wrapping_mul(0x9E37_79B9))
        };
        for (which, count) in [
            (Load::KeepAlive, KEEPALIVE_WORKERS),
            (Load::Pipelined, PIPELINED_WORKERS),
            (Load::Echo, ECHO_WORKERS),
        ] {
            for _ in 0..count {
                let seed = next_seed();
                let (live, stop) = (&live, &stop);
                workers.push(scope.spawn(move || clients::load(which, s, live, stop, seed)));
            }
        }
        let (lr, st) = (&live, &stop);
        for _ in 0..FAULT_WORKERS {
            let fault_seed = next_seed();
            workers.push(scope.spawn(move || clients::faults(s, lr, st, fault_seed)));
        }
        workers.push(scope.spawn(move || clients::slowloris(s, lr, st)));
        workers.push(scope.spawn(move || clients::storms(s, lr, st)));

        // Sample once a second until the deadline; print a line every 10 s.
        let mut last_print = (start, [0u64; 4]);
        let mut tick = start;
        while Instant::now() < s.deadline {
            tick += Duration::from_secs(1);
            std::thread::sleep(tick.saturating_duration_since(Instant::now()));
            if let Some(status) = guard.child.try_wait()? {
                died = Some(format!("the server exited during the load ({status})"));
                break;
            }
            match sample::sample(pid, start.elapsed()) {
                Ok(x) => samples.push(x),
                Err(e) => {
                    died = Some(format!("cannot sample the server: {e:#}"));
                    break;
                }
            }
            if last_print.0.elapsed() >= Duration::from_secs(10) {
                let now: [u64; 4] = std::array::from_fn(|i| live.ok[i].load(Ordering::Relaxed));
                let secs = last_print.0.elapsed().as_secs_f64();
                let rate = |i: usize| (now[i] - last_print.1[i]) as f64 / secs;
                let last = samples.last().copied();
                println!(
                    "  {:>4}s  req/s: keep-alive {:.0}, pipelined {:.0}, echo {:.0}; faults {}, bad inputs {}; RSS {}, fds {}",
                    start.elapsed().as_secs(),
                    rate(0),
                    rate(1),
                    rate(2) + rate(3),
                    live.faults.load(Ordering::Relaxed),
                    live.bad.load(Ordering::Relaxed),
                    last.map_or("?".into(), |x| sample::kib(x.rss_kib)),
                    last.map_or("?".into(), |x| x.fds.to_string()),
                );
                last_print = (Instant::now(), now);
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            match w.join() {
                Ok(t) => total.merge(t),
                Err(_) => bail!("a soak worker panicked"),
            }
        }
        Ok(())
    })?;
    Ok((total, samples, died))
}

/// Judge: the report, section by section, each adding what failed; the verdict last.
/// The server is stopped before the verdict.
fn judge(soak: Soak, m: &Measured) -> anyhow::Result<()> {
    let mut failures: Vec<String> = Vec::new();
    if let Some(d) = &m.died {
        failures.push(d.clone());
    }
    println!();
    let ok_all = report_load(m);
    report_faults(&soak.s, &m.total, &mut failures);
    report_resources(&soak, m, &mut failures);

    let total = &m.total;
    let lost = total.lost();
    let sent: u64 = total.sent.iter().sum();
    println!("requests lost: {lost} (of {sent} well-formed requests sent)");
    if lost > 0 {
        failures.push(format!("{lost} request(s) lost"));
    }
    if !total.notes.is_empty() {
        println!("first problems seen:");
        for n in &total.notes {
            println!("  - {n}");
        }
    }
    if ok_all == 0 {
        failures.push("no request was answered".to_owned());
    }
    let Soak {
        guard, log, seed, ..
    } = soak;
    drop(guard);
    if failures.is_empty() {
        println!(
            "soak: PASS ({} of load, seed {seed})",
            util::human(m.load_time)
        );
        Ok(())
    } else {
        bail!(
            "soak: FAIL (seed {seed}): {}; server log: {}",
            failures.join("; "),
            log.display()
        )
    }
}

/// The well-formed load held, per kind; returns the requests answered correctly.
fn report_load(m: &Measured) -> u64 {
    let total = &m.total;
    println!("load held (well-formed requests answered correctly):");
    let secs = m.load_time.as_secs_f64();
    for kind in Kind::ALL {
        let i = kind as usize;
        println!(
            "  {:<30} {:>10} ok of {:>10} sent  {:>9.1}/s",
            kind.label(),
            total.ok[i],
            total.sent[i],
            total.ok[i] as f64 / secs
        );
    }
    let ok_all: u64 = total.ok.iter().sum();
    println!(
        "  {:<30} {:>10} ok              {:>9.1}/s",
        "all",
        ok_all,
        ok_all as f64 / secs
    );
    ok_all
}

/// The faults injected (storms, slowloris) and the bad inputs, with how they were
/// answered.
fn report_faults(s: &Settings, total: &Tally, failures: &mut Vec<String>) {
    println!("faults injected:");
    for (name, n) in &total.faults {
        println!("  {name:<46} {n:>8}");
    }
    let st = &total.storms;
    println!(
        "  connection storms: {} of {} connections: {} connected, {} still connecting when closed (past the backlog), {} refused, {} not opened; the server held up to {} at once; {} sent a request first; {} closed with RST, the rest with FIN",
        st.storms, st.attempted, st.connected, st.pending, st.refused, st.not_opened, st.held, st.with_request, st.reset
    );
    let closed = &total.slowloris_closed;
    if closed.is_empty() {
        println!(
            "  slowloris: none judged ({} overdue, {} still open when the load stopped)",
            total.slowloris_overdue, total.slowloris_unjudged
        );
    } else {
        let min = closed.iter().min().copied().unwrap_or_default();
        let max = closed.iter().max().copied().unwrap_or_default();
        println!(
            "  slowloris: {} closed by the server {:.0}–{:.0} s after their first byte (header timeout {} s, bound {} s); {} overdue; {} still open when the load stopped (closed by the soak, not judged)",
            closed.len(),
            min.as_secs_f64(),
            max.as_secs_f64(),
            s.header_timeout.as_secs(),
            s.slowloris_bound().as_secs(),
            total.slowloris_overdue,
            total.slowloris_unjudged
        );
    }
    if total.slowloris_overdue > 0 {
        failures.push(format!(
            "{} slowloris client(s) not closed within {} s",
            total.slowloris_overdue,
            s.slowloris_bound().as_secs()
        ));
    }

    println!("bad inputs (a 4xx/5xx then close, or a close; the oversized ones their own code):");
    for (name, outcomes) in &total.bad {
        let n: u64 = outcomes.values().sum();
        let how: Vec<String> = outcomes.iter().map(|(o, c)| format!("{o}: {c}")).collect();
        println!("  {name:<62} {n:>6}  {}", how.join(", "));
    }
    if total.bad_wrong > 0 {
        failures.push(format!("{} bad input(s) answered wrongly", total.bad_wrong));
    }
    if total.connect_failures > 0 {
        failures.push(format!(
            "{} connection(s) could not be opened within {} s",
            total.connect_failures,
            http::IO_TIMEOUT.as_secs()
        ));
    }
}

/// The server's fds (back to the baseline after the drain?) and RSS (flat?).
fn report_resources(soak: &Soak, m: &Measured, failures: &mut Vec<String>) {
    let (baseline, pid) = (soak.baseline, soak.s.pid);
    let load_samples = &m.samples;
    println!(
        "server resources (sampled each second; all samples in {}):",
        m.csv_path.display()
    );
    let peak_fds = load_samples.iter().map(|x| x.fds).max().unwrap_or(0);
    let peak_rss = load_samples.iter().map(|x| x.rss_kib).max().unwrap_or(0);
    match m.fds_after {
        Some(f) if f <= baseline + sample::FD_SLACK => println!(
            "  fds: baseline {baseline}, peak {peak_fds}, {f} after the load ({} later; bound: idle timeout {}s + {}s): back to baseline (slack {}: fds a server opens once, lazily, such as its EMFILE spare)",
            util::human(m.drain_time),
            soak.idle_timeout.as_secs(),
            DRAIN_SLACK.as_secs(),
            sample::FD_SLACK
        ),
        Some(f) => {
            println!(
                "  fds: baseline {baseline}, peak {peak_fds}, still {f} after {}: NOT back to baseline (+{})",
                util::human(m.drain_time),
                sample::FD_SLACK
            );
            if let Ok(kinds) = sample::fd_kinds(pid) {
                let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k}: {n}")).collect();
                println!("       the server's fds now: {}", kinds.join(", "));
            }
            failures.push(format!(
                "fds did not return to baseline: {f} > {baseline} + {}",
                sample::FD_SLACK
            ));
        }
        None => println!("  fds: baseline {baseline}, peak {peak_fds}; not measured after the load"),
    }
    match sample::rss_verdict(load_samples) {
        Some(v) => {
            println!(
                "  RSS: before {}, peak {}; median of the middle third {}, of the last third {} (flat if at most middle x {:.2} + {}: {}): {}",
                sample::kib(soak.rss_before),
                sample::kib(peak_rss),
                sample::kib(v.middle_kib),
                sample::kib(v.last_kib),
                1.0 + sample::RSS_TOLERANCE,
                sample::kib(sample::RSS_SLACK_KIB),
                sample::kib(v.limit_kib),
                if v.flat { "flat" } else { "GROWING" }
            );
            if !v.flat {
                failures.push(format!(
                    "RSS kept growing: last third {} over the limit {}",
                    sample::kib(v.last_kib),
                    sample::kib(v.limit_kib)
                ));
            }
        }
        None => {
            println!("  RSS: {} samples, too few to judge", load_samples.len());
            failures.push("RSS not judged: fewer than 6 samples".to_owned());
        }
    }
}

/// Builds squall's `hello` example in release mode and returns its path.
fn build_hello(root: &std::path::Path, target: &std::path::Path) -> anyhow::Result<PathBuf> {
    let example = root.join("crates/squall/examples/hello.rs");
    if !example.is_file() {
        bail!(
            "no {} yet: pass `--server PATH` (a binary taking `--port P --threads 1 --quiet`)",
            example.display()
        );
    }
    util::run(
        util::cargo()
            .args(["build", "--release", "-p", "squall", "--example", "hello"])
            .current_dir(root)
            .env("CARGO_TARGET_DIR", target),
    )?;
    Ok(target.join("release/examples/hello"))
}

/// One `GET /` and one `POST /echo` must be answered correctly before the soak starts,
/// so an incompatible server fails here with a clear message, not as a flood of losses.
fn check_compatible(addr: SocketAddr) -> anyhow::Result<()> {
    use std::io::Write;
    let mut st = http::connect(addr)?;
    let mut leftover = Vec::new();
    st.write_all(http::GET)?;
    let r =
        http::read_response(&mut st, &mut leftover)?.context("closed without answering GET /")?;
    if r.status != 200 || r.body != http::HELLO {
        bail!(
            "GET / answered {} with {:?} (want 200 with {:?})",
            r.status,
            String::from_utf8_lossy(&r.body),
            String::from_utf8_lossy(http::HELLO)
        );
    }
    st.write_all(&http::post_content_length(b"ping"))?;
    let r = http::read_response(&mut st, &mut leftover)?
        .context("closed without answering POST /echo")?;
    if r.status != 200 || r.body != b"ping" {
        bail!(
            "POST /echo with `ping` answered {} with {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    Ok(())
}

/// The server's fd count at rest: sampled every 100 ms until it holds still for 1 s
/// (the check's connection has been closed on both sides), at most 10 s.
fn settle_fds(pid: u32) -> anyhow::Result<usize> {
    let start = Instant::now();
    let mut last = sample::fd_count(pid)?;
    let mut since = Instant::now();
    while start.elapsed() < Duration::from_secs(10) && since.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
        let now = sample::fd_count(pid)?;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits the soak probes are the server's documented defaults.
    #[test]
    fn defaults_match_the_server_config() {
        let c = squall_httpserver::HttpServerConfig::default();
        assert_eq!(DEFAULT_MAX_HEADER_SIZE, c.max_header_size);
        assert_eq!(DEFAULT_MAX_URI_LEN, c.max_uri_len);
        assert_eq!(DEFAULT_MAX_BODY_SIZE, c.max_body_size);
        assert_eq!(
            DEFAULT_MAX_CHUNK_EXTENSIONS,
            c.limits().max_chunk_extensions
        );
        assert_eq!(
            Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            c.header_timeout
        );
        assert_eq!(
            Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            c.idle_connection_timeout
        );
    }
}
