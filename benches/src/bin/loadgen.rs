//! `loadgen`: squall's own HTTP/1.1 load generator (see `squall_benches::loadgen`).
//!
//! ```text
//! loadgen --addr 127.0.0.1:P [--connections N] [--pipeline D] [--duration SECS] [--timeout SECS]
//! loadgen --addr 127.0.0.1:P --hold N [--timeout SECS]
//! loadgen --addr 127.0.0.1:P --echo [--connections N] [--chunk BYTES] [--duration SECS]
//! ```
//!
//! The load run prints one line of JSON (requests, req/s, latency percentiles in µs,
//! errors by kind). `--hold N` opens N connections, completes one request on each,
//! prints `{"held":N}` and keeps them open until its standard input closes (the memory
//! run). `--echo` measures an echo server in MB/s. Linux only (epoll).

#[cfg(target_os = "linux")]
use std::io::Read;
#[cfg(target_os = "linux")]
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::time::Duration;

#[cfg(target_os = "linux")]
use squall_benches::loadgen::{self, Config};

#[cfg(target_os = "linux")]
fn secs(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("not a positive number of seconds: {v:?}"))
}

#[cfg(target_os = "linux")]
fn num(v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("not a positive integer: {v:?}"))
}

#[cfg(target_os = "linux")]
fn main_() -> Result<(), String> {
    let mut addr: Option<SocketAddr> = None;
    let mut cfg_conns = 1;
    let mut pipeline = 1;
    let mut duration = Duration::from_secs(1);
    let mut timeout = Duration::from_secs(5);
    let mut hold = None;
    let mut echo = false;
    let mut chunk = 64 * 1024;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--echo" {
            echo = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => {
                addr = Some(
                    value
                        .parse()
                        .map_err(|e| format!("--addr {value:?}: {e}"))?,
                )
            }
            "--connections" => cfg_conns = num(&value)?,
            "--pipeline" => pipeline = num(&value)?,
            "--duration" => duration = secs(&value)?,
            "--timeout" => timeout = secs(&value)?,
            "--hold" => hold = Some(num(&value)?),
            "--chunk" => chunk = num(&value)?,
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    let addr = addr.ok_or("--addr is required")?;
    if let Some(n) = hold {
        let held = loadgen::hold(addr, n, timeout).map_err(|e| e.to_string())?;
        println!("{{\"held\":{}}}", held.len());
        // Keep them until told to let go (stdin closed) or killed.
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        drop(held);
        return Ok(());
    }
    if echo {
        let report =
            loadgen::run_echo(addr, cfg_conns, chunk, duration).map_err(|e| e.to_string())?;
        println!("{}", report.to_json());
        return Ok(());
    }
    let mut cfg = Config::new(addr);
    cfg.connections = cfg_conns;
    cfg.pipeline = pipeline;
    cfg.duration = duration;
    cfg.timeout = timeout;
    let report = loadgen::run(&cfg).map_err(|e| format!("{addr}: {e}"))?;
    println!("{}", report.to_json());
    Ok(())
}

#[cfg(target_os = "linux")]
fn main() {
    if let Err(e) = main_() {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

/// The load generator is an epoll program: elsewhere it says so and exits.
#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!(
        "loadgen: an epoll program, Linux only (this is {})",
        std::env::consts::OS
    );
    std::process::exit(1);
}
