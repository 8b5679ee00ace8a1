//! Process control for every task: child processes pinned to a CPU, killed with us (also
//! on Ctrl-C or an error), bounded in time; programs found on `PATH`; and what `/proc`
//! says about a process.

use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
#[cfg(target_os = "linux")]
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The CPU the servers run on.
pub(crate) const SERVER_CPU: usize = 0;
/// The CPU the load generators run on.
pub(crate) const CLIENT_CPU: usize = 1;

/// Makes `cmd` run pinned to `cpu` (if the machine has it) and die with us: the child
/// gets `SIGKILL` when the xtask thread that spawned it exits, however it exits. It
/// starts with `SIGINT` and `SIGTERM` at their default disposition, whatever xtask
/// inherited, so that the signals xtask stops it with are never ignored.
///
/// Pinning and the parent-death signal are Linux facilities (`sched_setaffinity`,
/// `PR_SET_PDEATHSIG`). Elsewhere they are skipped, with a note printed once: the child
/// runs unpinned and is killed by its [`Guard`] only (so not if xtask itself is
/// `SIGKILL`ed).
#[cfg(target_os = "linux")]
pub(crate) fn pin_and_tie(cmd: &mut Command, cpu: Option<usize>) {
    let cpu = cpu.filter(|&c| c < cpus());
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (signal, sched_setaffinity, prctl) on stack data;
    // it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            // The ways xtask stops a child (SIGINT: callgrind writes its profile then)
            // must work even when xtask was started with them ignored, as a background
            // job of a non-interactive shell is: a child that keeps the default
            // disposition (hyper-hello) would inherit "ignored" and never stop.
            for sig in [libc::SIGINT, libc::SIGTERM] {
                if libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(cpu) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// See the Linux version: here pinning and the parent-death signal are skipped, with a
/// note printed once, and the child keeps the signal dispositions xtask inherited (the
/// tasks that stop children with a signal need Linux anyway).
#[cfg(not(target_os = "linux"))]
pub(crate) fn pin_and_tie(cmd: &mut Command, cpu: Option<usize>) {
    static NOTE: std::sync::Once = std::sync::Once::new();
    let _ = (cmd, cpu);
    NOTE.call_once(|| {
        println!(
            "note: CPU pinning and kill-with-parent (PR_SET_PDEATHSIG) are Linux-only; on {} \
             child processes run unpinned and are killed when xtask drops them, but not if \
             xtask itself is killed with SIGKILL",
            std::env::consts::OS
        );
    });
}

/// Fails with a clear message unless this is Linux: `task` reads `/proc` (CPU time, RSS,
/// open fds) or runs the epoll-only floor and load generator.
pub(crate) fn require_linux(task: &str) -> anyhow::Result<()> {
    if cfg!(target_os = "linux") {
        Ok(())
    } else {
        bail!(
            "`cargo xtask {task}` needs Linux (it reads /proc for CPU time, RSS and open fds{}); \
             this is {}",
            if task == "bench" {
                ", and its floor and load generator are epoll programs"
            } else {
                ""
            },
            std::env::consts::OS
        )
    }
}

/// The number of CPUs this process may run on.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Raises the soft open-file limit to the hard one (inherited by every child), so
/// 1,024 load connections and 10,000 idle ones fit. Returns the new limit.
pub(crate) fn raise_nofile() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit the call writes into.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == -1 {
        return Err(io::Error::last_os_error());
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a live rlimit the call reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // `rlim_t` is unsigned on Linux and macOS, signed on FreeBSD (never negative there).
    #[allow(clippy::useless_conversion)]
    let limit = u64::try_from(lim.rlim_cur).unwrap_or(u64::MAX);
    Ok(limit)
}

/// A free port on 127.0.0.1, found by binding port 0 (and letting it go).
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `name` in a directory of `PATH`, else the first of `fallbacks` that exists.
pub(crate) fn which(name: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .chain(fallbacks.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// A child that is killed (and reaped) when dropped.
pub(crate) struct Guard {
    pub(crate) child: Child,
    pub(crate) name: String,
}

impl Guard {
    /// Spawns `cmd` as a guarded child.
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> anyhow::Result<Guard> {
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({cmd:?})"))?;
        Ok(Guard {
            child,
            name: name.to_owned(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a TCP connect to `addr` succeeds (the server is up), failing if the
    /// child exits first or `patience` runs out.
    pub(crate) fn wait_listening(
        &mut self,
        addr: SocketAddr,
        patience: Duration,
        log: &Path,
    ) -> anyhow::Result<()> {
        let end = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before listening on {addr}{}",
                    self.name,
                    log_tail(log)
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= end {
                bail!(
                    "{} did not listen on {addr} within {patience:?}{}",
                    self.name,
                    log_tail(log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the child to exit within `limit`: its status, or `None` if it is still
    /// running then (it is killed when the guard drops).
    pub(crate) fn wait_within(&mut self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The first line the child prints on its standard output (which must be piped),
    /// within `limit`; fails if it exits or prints nothing by then.
    pub(crate) fn first_line(&mut self, limit: Duration) -> anyhow::Result<String> {
        use std::io::BufRead;
        let stdout = self.child.stdout.take().context("stdout not piped")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let r = std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line);
            let _ = tx.send(r);
        });
        match rx.recv_timeout(limit) {
            Ok(r) => {
                let line = r?;
                if line.is_empty() {
                    let status = self.child.wait()?;
                    let mut err = String::new();
                    if let Some(mut e) = self.child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    bail!("{} exited ({status}): {}", self.name, err.trim());
                }
                Ok(line)
            }
            Err(_) => bail!("{} printed nothing within {limit:?}", self.name),
        }
    }

    /// Waits for the child to exit within `limit` (else kills it and fails), and returns
    /// its standard output, which must have been piped.
    pub(crate) fn finish(mut self, limit: Duration) -> anyhow::Result<String> {
        let Some(status) = self.wait_within(limit)? else {
            bail!("{} did not finish within {limit:?}; killed", self.name);
        };
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut out)?;
        }
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut err)?;
        }
        if !status.success() {
            bail!("{} failed ({status}): {}", self.name, err.trim());
        }
        Ok(out)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `" (log: last lines)"` of a server's log, for error messages.
fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    if lines.is_empty() {
        String::new()
    } else {
        let tail: Vec<&str> = lines.into_iter().rev().collect();
        format!(
            "; its log {} ends:\n    {}",
            log.display(),
            tail.join("\n    ")
        )
    }
}

/// A server's standard output and error go to its log file.
pub(crate) fn to_log(cmd: &mut Command, log: &Path) -> anyhow::Result<()> {
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    Ok(())
}

/// CPU time (user + system, all threads, dead ones included) of process `pid`, in
/// microseconds, from `/proc/PID/stat`.
pub(crate) fn cpu_micros(pid: u32) -> anyhow::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let (utime, stime) =
        parse_stat_times(&stat).with_context(|| format!("parsing /proc/{pid}/stat: {stat:?}"))?;
    Ok((utime + stime) as f64 * 1e6 / clock_ticks())
}

/// `(utime, stime)` in clock ticks: fields 14 and 15 of `/proc/PID/stat`, counted after
/// the `)` that ends the command name (which may hold spaces and parentheses).
pub(crate) fn parse_stat_times(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 -> index 11.
    Some((fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vmrss(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

pub(crate) fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_skip_odd_command_names() {
        let stat = "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 11 0 0 20 0 3 0 123 4096 200 18446744073709551615";
        assert_eq!(parse_stat_times(stat), Some((37, 11)));
        assert_eq!(parse_stat_times("garbage"), None);
    }

    #[test]
    fn vmrss_is_read_in_kib() {
        assert_eq!(
            parse_vmrss("Name:\tx\nVmRSS:\t    1234 kB\nThreads:\t1\n"),
            Some(1234)
        );
        assert_eq!(parse_vmrss("Name:\tx\n"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn own_cpu_and_rss_are_readable() {
        let pid = std::process::id();
        assert!(cpu_micros(pid).unwrap() >= 0.0);
        assert!(rss_kib(pid).unwrap() > 0);
    }

    #[test]
    fn first_line_is_bounded() {
        let piped = |script: &str| {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", script])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            Guard::spawn("sh", &mut cmd).unwrap()
        };
        let limit = Duration::from_secs(30);
        assert_eq!(
            piped("echo held; exec sleep 30").first_line(limit).unwrap(),
            "held\n"
        );
        let err = piped("echo gone >&2").first_line(limit).unwrap_err();
        assert!(format!("{err:#}").contains("gone"), "{err:#}");
        let err = piped("exec sleep 30")
            .first_line(Duration::from_millis(200))
            .unwrap_err();
        assert!(format!("{err:#}").contains("printed nothing"), "{err:#}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn guarded_child_is_pinned_and_killed_on_drop() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        pin_and_tie(&mut cmd, Some(0));
        let guard = Guard::spawn("sleep", &mut cmd).unwrap();
        let pid = guard.pid();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let allowed = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .unwrap();
        assert_eq!(allowed.split(':').nth(1).unwrap().trim(), "0");
        drop(guard);
        // Reaped by the drop: the pid is gone (or reused by someone else, not a zombie
        // of ours).
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(!stat.contains("(sleep) Z"), "{stat}");
    }
}
