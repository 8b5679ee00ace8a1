//! What the soak watches in the server: resident memory and open fds, once a second,
//! and the two verdicts drawn from them (fds back to baseline, RSS flat).

use std::fs;
use std::time::Duration;

use anyhow::Context;

use crate::proc;

/// One sample of the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// Since the load started.
    pub(crate) at: Duration,
    pub(crate) rss_kib: u64,
    pub(crate) fds: usize,
}

/// Open fds of process `pid`: the entries of `/proc/PID/fd`.
pub(crate) fn fd_count(pid: u32) -> anyhow::Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    let entries = fs::read_dir(&dir).with_context(|| format!("reading {dir}"))?;
    Ok(entries.count())
}

/// Samples `pid` now.
pub(crate) fn sample(pid: u32, at: Duration) -> anyhow::Result<Sample> {
    Ok(Sample {
        at,
        rss_kib: proc::rss_kib(pid)?,
        fds: fd_count(pid)?,
    })
}

/// What the open fds of `pid` are, for the report when they do not come back: TCP
/// sockets by state (`ESTABLISHED`, `CLOSE_WAIT`: the peer closed and the server did
/// not, ...), other sockets, and other fds, as `(what, count)` sorted by name.
pub(crate) fn fd_kinds(pid: u32) -> anyhow::Result<Vec<(String, usize)>> {
    let mut rows = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            rows.extend(parse_tcp_table(&text));
        }
    }
    // A connection whose other end has no socket left on this machine is half-open:
    // the client went away and no FIN or RST reached the server (only its idle
    // timeout can end it).
    let ends: std::collections::HashSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.local.as_str(), r.remote.as_str()))
        .collect();
    let states: std::collections::HashMap<u64, String> = rows
        .iter()
        .map(|r| {
            let half_open =
                r.state == "ESTABLISHED" && !ends.contains(&(r.remote.as_str(), r.local.as_str()));
            let label = if half_open {
                format!("{} (half-open: no client socket left)", r.state)
            } else {
                r.state.to_owned()
            };
            (r.inode, label)
        })
        .collect();
    let dir = format!("/proc/{pid}/fd");
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let Ok(link) = fs::read_link(entry?.path()) else {
            continue; // closed since the listing
        };
        let link = link.to_string_lossy().into_owned();
        let what = match link
            .strip_prefix("socket:[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|i| i.parse::<u64>().ok())
        {
            Some(inode) => match states.get(&inode) {
                Some(state) => format!("tcp {state}"),
                None => "socket (not TCP)".to_owned(),
            },
            None if link.starts_with("anon_inode:") => link,
            None => "file or pipe".to_owned(),
        };
        *counts.entry(what).or_default() += 1;
    }
    Ok(counts.into_iter().collect())
}

/// One row of `/proc/net/tcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TcpRow {
    /// `ADDR:PORT` in the kernel's hex.
    pub(crate) local: String,
    pub(crate) remote: String,
    pub(crate) state: &'static str,
    pub(crate) inode: u64,
}

/// The rows of the text of `/proc/net/tcp` (or `tcp6`).
pub(crate) fn parse_tcp_table(text: &str) -> Vec<TcpRow> {
    const STATES: [&str; 12] = [
        "?",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ];
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let state = usize::from_str_radix(f.get(3)?, 16).ok()?;
            Some(TcpRow {
                local: (*f.get(1)?).to_owned(),
                remote: (*f.get(2)?).to_owned(),
                state: STATES.get(state).unwrap_or(&"?"),
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// Fds the server may hold after the load beyond its baseline without it being a leak.
///
/// A server may open a few fds lazily, once, on first need and keep them for its life:
/// the spare fd it closes to shed a connection on EMFILE and re-opens afterwards (a
/// connection storm can be the first time it needs it), or a timer or waker fd created
/// when the first timeout is armed. Those are not per connection. A per-connection
/// leak shows up as hundreds here (the storms alone open thousands of connections), so
/// a slack of 2 hides nothing that matters.
pub(crate) const FD_SLACK: usize = 2;

/// The RSS rule's relative tolerance (last third over middle third).
pub(crate) const RSS_TOLERANCE: f64 = 0.10;
/// The RSS rule's absolute tolerance, in KiB: allocator and kernel noise on a server
/// whose whole RSS may be a few MiB.
pub(crate) const RSS_SLACK_KIB: u64 = 2048;

/// The RSS verdict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RssVerdict {
    pub(crate) middle_kib: u64,
    pub(crate) last_kib: u64,
    pub(crate) limit_kib: u64,
    pub(crate) flat: bool,
}

/// RSS is flat when the median of the last third of the load phase is at most the
/// median of the middle third times 1.10, plus 2 MiB.
///
/// Why this rule: the first third is warm-up (allocator arenas, buffer pools and the
/// kernel's socket memory grow to the working set, and may keep it), so it is left out.
/// After that a healthy server plateaus, while a leak that grows with requests or
/// connections grows linearly with time, so the last third sits above the middle third
/// by a third of the leak's whole growth. Medians, not maxima: the connection storms
/// make short spikes that are not growth. `None` with fewer than 6 samples (a run too
/// short to judge).
pub(crate) fn rss_verdict(samples: &[Sample]) -> Option<RssVerdict> {
    if samples.len() < 6 {
        return None;
    }
    let third = samples.len() / 3;
    let middle = median(samples[third..2 * third].iter().map(|s| s.rss_kib));
    let last = median(samples[samples.len() - third..].iter().map(|s| s.rss_kib));
    let limit = (middle as f64 * (1.0 + RSS_TOLERANCE)) as u64 + RSS_SLACK_KIB;
    Some(RssVerdict {
        middle_kib: middle,
        last_kib: last,
        limit_kib: limit,
        flat: last <= limit,
    })
}

fn median(values: impl Iterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = values.collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// `1.5 MiB`, `812 KiB`.
pub(crate) fn kib(k: u64) -> String {
    if k >= 1024 {
        format!("{:.1} MiB", k as f64 / 1024.0)
    } else {
        format!("{k} KiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rss: impl Iterator<Item = u64>) -> Vec<Sample> {
        rss.enumerate()
            .map(|(i, rss_kib)| Sample {
                at: Duration::from_secs(i as u64),
                rss_kib,
                fds: 5,
            })
            .collect()
    }

    #[test]
    fn a_plateau_after_warm_up_is_flat() {
        // Grows for 20 s, then stays, with storm spikes every 10 s.
        let rss = (0..60u64).map(|t| {
            let base = 4000 + 200 * t.min(20);
            if t % 10 == 5 {
                base + 30_000
            } else {
                base
            }
        });
        let v = rss_verdict(&samples(rss)).unwrap();
        assert!(v.flat, "{v:?}");
        assert_eq!(v.middle_kib, 8000);
    }

    #[test]
    fn steady_growth_is_a_leak() {
        // 1 MiB a second.
        let v = rss_verdict(&samples((0..60u64).map(|t| 4000 + 1024 * t))).unwrap();
        assert!(!v.flat, "{v:?}");
        assert!(v.last_kib > v.limit_kib);
    }

    #[test]
    fn too_few_samples_are_not_judged() {
        assert_eq!(rss_verdict(&samples(0..5)), None);
    }

    #[test]
    fn own_fds_and_rss_are_sampled() {
        let s = sample(std::process::id(), Duration::ZERO).unwrap();
        assert!(s.fds >= 3, "{s:?}");
        assert!(s.rss_kib > 0);
        // (No exact count: other tests open and close fds in parallel.)
        assert!(fd_count(u32::MAX).is_err());
    }

    #[test]
    fn tcp_table_states_by_inode() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4A43 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 419364 1 00000000710da584 100 0 0 10 0
   1: 0100007F:B26E 0100007F:4A43 08 00000000:00000000 00:00000000 00000000     0        0 423249 1 000000006d315179 100 0 0 10 0
";
        let rows = parse_tcp_table(text);
        let got: Vec<(u64, &str)> = rows.iter().map(|r| (r.inode, r.state)).collect();
        assert_eq!(got, vec![(419364, "LISTEN"), (423249, "CLOSE_WAIT")]);
        assert_eq!(rows[1].local, "0100007F:B26E");
        assert_eq!(rows[1].remote, "0100007F:4A43");
    }

    #[test]
    fn own_listener_is_seen_listening() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let kinds = fd_kinds(std::process::id()).unwrap();
        assert!(
            kinds.iter().any(|(k, n)| k == "tcp LISTEN" && *n >= 1),
            "{kinds:?}"
        );
        drop(l);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(kib(812), "812 KiB");
        assert_eq!(kib(1536), "1.5 MiB");
    }
}
