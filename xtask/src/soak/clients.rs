//! The soak's clients, one kind per worker thread: well-formed load (keep-alive,
//! pipelined, echo) that checks every response byte for byte, faults (clients that
//! vanish mid-request, connection storms), bad inputs (garbage, invalid requests,
//! oversized heads and bodies) and slowloris clients.
//!
//! Every worker loops until `stop` and returns a [`Tally`]; every blocking operation is
//! bounded by [`IO_TIMEOUT`], so a stop is honoured within that time.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};

use super::http::{self, Rng, GET, HELLO, IO_TIMEOUT};

/// The kinds of well-formed request, as counted and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    KeepAlive,
    Pipelined,
    EchoLength,
    EchoChunked,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [
        Kind::KeepAlive,
        Kind::Pipelined,
        Kind::EchoLength,
        Kind::EchoChunked,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::KeepAlive => "keep-alive GET /",
            Kind::Pipelined => "pipelined GET / (16 deep)",
            Kind::EchoLength => "POST /echo, Content-Length",
            Kind::EchoChunked => "POST /echo, chunked",
        }
    }
}

/// Requests per pipelined batch.
pub(crate) const PIPELINE: usize = 16;
/// The largest random echo body (bodies stay within the socket buffers, so a server
/// that echoes as it reads cannot deadlock against a client that writes first).
pub(crate) const MAX_ECHO: usize = 64 * 1024;

/// What the workers need to know.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) addr: SocketAddr,
    pub(crate) max_header_size: usize,
    pub(crate) max_uri_len: usize,
    pub(crate) max_body_size: u64,
    pub(crate) header_timeout: Duration,
    /// Slowloris clients held at once.
    pub(crate) slowloris: usize,
    /// Connections per storm.
    pub(crate) storm_size: usize,
    pub(crate) storm_every: Duration,
    /// The end of the load phase.
    pub(crate) deadline: Instant,
    /// The server's pid, whose fds the storms watch.
    pub(crate) pid: u32,
}

impl Settings {
    /// How long a slowloris client may stay open before it counts against the server:
    /// the header timeout plus 10% (at least 5 s) for timer granularity and for our own
    /// one-second polling.
    pub(crate) fn slowloris_bound(&self) -> Duration {
        self.header_timeout + (self.header_timeout / 10).max(Duration::from_secs(5))
    }
}

/// Counters the main thread reads for its progress lines.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) ok: [AtomicU64; 4],
    pub(crate) faults: AtomicU64,
    pub(crate) bad: AtomicU64,
}

/// Connection storms, added up.
#[derive(Debug, Default, Clone)]
pub(crate) struct Storms {
    pub(crate) storms: u64,
    pub(crate) attempted: u64,
    pub(crate) connected: u64,
    /// Still connecting when closed: the SYN was dropped past the listen backlog.
    pub(crate) pending: u64,
    pub(crate) refused: u64,
    /// Sockets we could not even open (our own fd limit, ephemeral ports).
    pub(crate) not_opened: u64,
    pub(crate) with_request: u64,
    pub(crate) reset: u64,
    /// The most connections the server was seen holding at once in one storm (its fd
    /// count over what it held before the storm).
    pub(crate) held: u64,
}

/// What one worker counted.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Well-formed requests whose first byte was written, by [`Kind`].
    pub(crate) sent: [u64; 4],
    /// Of those, answered with the correct response.
    pub(crate) ok: [u64; 4],
    pub(crate) connect_failures: u64,
    /// The first few problems, described.
    pub(crate) notes: Vec<String>,
    pub(crate) faults: BTreeMap<&'static str, u64>,
    /// Bad input kind -> how it was answered -> count.
    pub(crate) bad: BTreeMap<String, BTreeMap<String, u64>>,
    /// Bad inputs answered wrongly (a 2xx, no close, no answer, wrong code).
    pub(crate) bad_wrong: u64,
    /// Seconds from a slowloris client's first byte to the server's close.
    pub(crate) slowloris_closed: Vec<Duration>,
    /// Slowloris clients the server left open past the bound.
    pub(crate) slowloris_overdue: u64,
    /// Slowloris clients still open when the load stopped (closed by the soak).
    pub(crate) slowloris_unjudged: u64,
    pub(crate) storms: Storms,
}

const MAX_NOTES: usize = 12;

impl Tally {
    fn note(&mut self, what: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(what);
        }
    }

    /// Well-formed requests sent whose correct response never came.
    pub(crate) fn lost(&self) -> u64 {
        self.sent.iter().sum::<u64>() - self.ok.iter().sum::<u64>()
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: Tally) {
        for i in 0..4 {
            self.sent[i] += other.sent[i];
            self.ok[i] += other.ok[i];
        }
        self.connect_failures += other.connect_failures;
        for n in other.notes {
            self.note(n);
        }
        for (k, v) in other.faults {
            *self.faults.entry(k).or_default() += v;
        }
        for (k, outcomes) in other.bad {
            let mine = self.bad.entry(k).or_default();
            for (o, v) in outcomes {
                *mine.entry(o).or_default() += v;
            }
        }
        self.bad_wrong += other.bad_wrong;
        self.slowloris_closed.extend(other.slowloris_closed);
        self.slowloris_overdue += other.slowloris_overdue;
        self.slowloris_unjudged += other.slowloris_unjudged;
        let (a, b) = (&mut self.storms, other.storms);
        a.storms += b.storms;
        a.attempted += b.attempted;
        a.connected += b.connected;
        a.pending += b.pending;
        a.refused += b.refused;
        a.not_opened += b.not_opened;
        a.with_request += b.with_request;
        a.reset += b.reset;
        a.held = a.held.max(b.held);
    }
}

fn stopped(stop: &AtomicBool) -> bool {
    stop.load(Ordering::Relaxed)
}

/// Sleeps up to `d`, waking early on `stop`.
fn nap(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stopped(stop) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Which well-formed load a worker drives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Load {
    KeepAlive,
    Pipelined,
    Echo,
}

/// Drives well-formed requests until `stop`: each connection serves a random number of
/// batches (1 to 2,000) and is then closed by us, so accept and close are exercised
/// too. Every response is checked (status 200 and the exact body); a connection that
/// breaks is reopened, and what it owed counts as lost.
pub(crate) fn load(which: Load, s: &Settings, live: &Live, stop: &AtomicBool, seed: u64) -> Tally {
    let mut t = Tally::default();
    let mut rng = Rng::new(seed);
    let pipelined = GET.repeat(PIPELINE);
    'conns: while !stopped(stop) {
        let mut stream = match http::connect(s.addr) {
            Ok(st) => st,
            Err(e) => {
                t.connect_failures += 1;
                t.note(format!("{which:?}: connect: {e}"));
                nap(Duration::from_millis(100), stop);
                continue;
            }
        };
        let mut leftover = Vec::new();
        for _ in 0..1 + rng.below(2000) {
            if stopped(stop) {
                break 'conns;
            }
            // The batch, and the body each response must carry.
            let (kind, count, wire, want): (Kind, usize, Vec<u8>, Vec<u8>) = match which {
                Load::KeepAlive => (Kind::KeepAlive, 1, GET.to_vec(), HELLO.to_vec()),
                Load::Pipelined => (Kind::Pipelined, PIPELINE, pipelined.clone(), HELLO.to_vec()),
                Load::Echo => {
                    let len = match rng.below(10) {
                        0..=4 => rng.below(512),
                        5..=8 => rng.below(16 * 1024),
                        _ => rng.below(MAX_ECHO as u64 + 1),
                    } as usize;
                    let body = rng.bytes(len);
                    if rng.below(2) == 0 {
                        (Kind::EchoLength, 1, http::post_content_length(&body), body)
                    } else {
                        let wire = http::post_chunked(
                            &body,
                            1 + rng.below(8192) as usize,
                            crate::soak::DEFAULT_MAX_CHUNK_EXTENSIONS,
                            &mut rng,
                        );
                        (Kind::EchoChunked, 1, wire, body)
                    }
                }
            };
            t.sent[kind as usize] += count as u64;
            let pieces = 1 + rng.below(3) as usize;
            if let Err(e) = http::write_in_pieces(&mut stream, &wire, pieces, &mut rng) {
                t.note(format!("{}: write: {e}", kind.label()));
                continue 'conns;
            }
            for i in 0..count {
                match http::read_response(&mut stream, &mut leftover) {
                    Ok(Some(r)) if r.status == 200 && r.body == want => {
                        t.ok[kind as usize] += 1;
                        live.ok[kind as usize].fetch_add(1, Ordering::Relaxed);
                        if r.close {
                            if i + 1 < count {
                                t.note(format!(
                                    "{}: `Connection: close` with {} pipelined requests unanswered",
                                    kind.label(),
                                    count - i - 1
                                ));
                            }
                            continue 'conns;
                        }
                    }
                    Ok(Some(r)) => {
                        t.note(format!(
                            "{}: status {} with a {}-byte body (wanted 200 with {} bytes{})",
                            kind.label(),
                            r.status,
                            r.body.len(),
                            want.len(),
                            if r.status == 200 { ", different" } else { "" }
                        ));
                        continue 'conns;
                    }
                    Ok(None) => {
                        t.note(format!(
                            "{}: server closed the connection with {} response(s) owed",
                            kind.label(),
                            count - i
                        ));
                        continue 'conns;
                    }
                    Err(e) => {
                        t.note(format!(
                            "{}: reading response {} of {count}: {e}",
                            kind.label(),
                            i + 1
                        ));
                        continue 'conns;
                    }
                }
            }
        }
    }
    t
}

/// The invalid requests tried in turn (each must get a 4xx/5xx then a close, or a
/// close), with what RFC 9112 rule each breaks.
pub(crate) const INVALID: &[(&str, &[u8])] = &[
    ("extra word in request line", b"GET / HTTP/1.1 x\r\nHost: a\r\n\r\n"),
    ("no version (HTTP/0.9)", b"GET /\r\n\r\n"),
    ("version HTTP/9.1", b"GET / HTTP/9.1\r\nHost: a\r\n\r\n"),
    ("not HTTP", b"GET / FTP/1.1\r\nHost: a\r\n\r\n"),
    ("control byte in method", b"G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("space in target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("space in header name", b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n"),
    ("whitespace before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n"),
    ("missing Host", b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n"),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("NUL in header value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n"),
    (
        "Content-Length and Transfer-Encoding",
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "differing Content-Lengths",
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    ),
    (
        "negative Content-Length",
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    ),
    (
        "Transfer-Encoding not ending in chunked",
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    ),
    (
        "bad chunk size",
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    ),
];

/// What a bad input must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Any 4xx or 5xx, then a close; or a close without a response.
    Reject,
    /// This status, then a close.
    Status(u16),
}

/// How the server answered one bad input, and whether that is right.
fn judge(stream: &mut TcpStream, wire: &[u8], expect: Expect) -> (String, bool) {
    // The server may answer and close before it reads all of a large input, so a
    // failed write is not the verdict: what can be read is.
    let write_err = stream.write_all(wire).err();
    let mut leftover = Vec::new();
    let closed_after = |stream: &mut TcpStream, leftover: &mut Vec<u8>| -> &'static str {
        leftover.clear();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return "close",
                Ok(_) => continue, // more bytes after the response: keep reading to the end
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return "reset",
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return "kept open",
            }
        }
    };
    match http::read_response(stream, &mut leftover) {
        Ok(Some(r)) => {
            // Whether or not the response announced it, the close must happen.
            let after = closed_after(stream, &mut leftover);
            let closed = after != "kept open";
            let ok = closed
                && match expect {
                    Expect::Reject => (400..600).contains(&r.status),
                    Expect::Status(want) => r.status == want,
                };
            (format!("{} then {after}", r.status), ok)
        }
        Ok(None) => ("close, no response".to_owned(), expect == Expect::Reject),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
            ("reset, no response".to_owned(), expect == Expect::Reject)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            (
                format!(
                    "no answer in {}s{}",
                    IO_TIMEOUT.as_secs(),
                    if write_err.is_some() {
                        " (write failed)"
                    } else {
                        ""
                    }
                ),
                false,
            )
        }
        Err(e) => (format!("error: {e}"), false),
    }
}

/// Closes `stream` with a reset (SO_LINGER 0) instead of a FIN.
fn reset(stream: TcpStream) {
    // A failure leaves the ordinary close, which is still a vanishing client.
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Faults and bad inputs, in rounds, paced (20 ms apart) so that the ephemeral ports
/// our closes leave in TIME_WAIT stay far from exhaustion.
pub(crate) fn faults(s: &Settings, live: &Live, stop: &AtomicBool, seed: u64) -> Tally {
    let mut t = Tally::default();
    let mut rng = Rng::new(seed);
    let head = GET;
    let post_head = b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n";
    let mut round = 0usize;
    let offset = rng.below(INVALID.len() as u64) as usize;
    while !stopped(stop) {
        // 1. Clients that vanish.
        for (name, rst) in [
            ("half a head, then FIN", false),
            ("half a head, then RST", true),
            ("half a body, then FIN", false),
            ("half a body, then RST", true),
            ("whole request, then RST before the response", true),
        ] {
            if stopped(stop) {
                break;
            }
            let Ok(mut st) = http::connect(s.addr) else {
                t.connect_failures += 1;
                continue;
            };
            let wire: Vec<u8> = if name.starts_with("half a head") {
                head[..1 + rng.below(head.len() as u64 - 2) as usize].to_vec()
            } else if name.starts_with("half a body") {
                let mut w = post_head.to_vec();
                let n = 1 + rng.below(999) as usize;
                w.extend(rng.bytes(n));
                w
            } else {
                head.to_vec()
            };
            // The write may fail if the server is quick to drop us; the fault happened.
            let _ = st.write_all(&wire);
            if rst {
                reset(st);
            } else {
                drop(st);
            }
            *t.faults.entry(name).or_default() += 1;
            live.faults.fetch_add(1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(20));
        }

        // 2. Bad inputs (each worker starts the list of invalid requests at a random
        // place, so all of them are tried even in a short run).
        let (name, wire) = INVALID[(round + offset) % INVALID.len()];
        let mut binary =
            vec![[0x00u8, 0x01, 0x07, 0x1b, 0x7f, 0x80, 0xc3, 0xff][rng.below(8) as usize]];
        let n = rng.below(1024) as usize;
        binary.extend(rng.bytes(n));
        binary.extend_from_slice(b"\r\n\r\n");
        let big_header = {
            let mut w = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Soak: ".to_vec();
            w.resize(w.len() + s.max_header_size, b'a');
            w.extend_from_slice(b"\r\n\r\n");
            w
        };
        let big_uri = {
            let mut w = b"GET /".to_vec();
            w.resize(w.len() + s.max_uri_len + 1, b'u');
            w.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            w
        };
        let big_body = {
            let mut w = format!(
                "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
                s.max_body_size + 1
            )
            .into_bytes();
            w.extend(rng.bytes(1024));
            w
        };
        let invalid_label = format!("invalid request: {name}");
        let inputs: [(String, &[u8], Expect); 5] = [
            ("random binary".to_owned(), &binary, Expect::Reject),
            (invalid_label, wire, Expect::Reject),
            (
                "oversized header (expect 431)".to_owned(),
                &big_header,
                Expect::Status(431),
            ),
            (
                "oversized request-target (expect 414)".to_owned(),
                &big_uri,
                Expect::Status(414),
            ),
            (
                "oversized body (expect 413)".to_owned(),
                &big_body,
                Expect::Status(413),
            ),
        ];
        for (label, wire, expect) in inputs {
            if stopped(stop) {
                break;
            }
            let Ok(mut st) = http::connect(s.addr) else {
                t.connect_failures += 1;
                continue;
            };
            let (outcome, ok) = judge(&mut st, wire, expect);
            if !ok {
                t.bad_wrong += 1;
                t.note(format!("bad input `{label}` answered: {outcome}"));
            }
            *t.bad.entry(label).or_default().entry(outcome).or_default() += 1;
            live.bad.fetch_add(1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(20));
        }
        round += 1;
    }
    t
}

/// Holds `s.slowloris` clients that send a head one byte a second, and times how long
/// the server takes to close each (its header timeout). Clients are only started while
/// the rest of the load phase leaves time to judge them.
pub(crate) fn slowloris(s: &Settings, live: &Live, stop: &AtomicBool) -> Tally {
    struct Slow {
        stream: TcpStream,
        started: Instant,
    }
    let mut t = Tally::default();
    let bound = s.slowloris_bound();
    let mut open: Vec<Slow> = Vec::new();
    loop {
        if stopped(stop) {
            t.slowloris_unjudged += open.len() as u64;
            break;
        }
        while open.len() < s.slowloris
            && s.deadline.saturating_duration_since(Instant::now())
                >= bound + Duration::from_secs(2)
        {
            let started = Instant::now();
            let stream = match http::connect(s.addr).and_then(|mut st| {
                st.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")?;
                st.set_nonblocking(true)?;
                Ok(st)
            }) {
                Ok(st) => st,
                Err(e) => {
                    t.connect_failures += 1;
                    t.note(format!("slowloris: connect: {e}"));
                    break;
                }
            };
            *t.faults.entry("slowloris client").or_default() += 1;
            live.faults.fetch_add(1, Ordering::Relaxed);
            open.push(Slow { stream, started });
        }
        if open.is_empty() && s.deadline.saturating_duration_since(Instant::now()) < bound {
            // Nothing more to judge in this run.
            nap(s.deadline.saturating_duration_since(Instant::now()), stop);
            continue;
        }
        nap(Duration::from_secs(1), stop);
        if stopped(stop) {
            continue;
        }
        let mut buf = [0u8; 1024];
        open.retain_mut(|c| {
            let mut closed = (&c.stream).write(b"a").is_err();
            while !closed {
                match (&c.stream).read(&mut buf) {
                    Ok(0) => closed = true,
                    // A 408 before the close is fine: keep reading for the close.
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => closed = true,
                }
            }
            let age = c.started.elapsed();
            if closed {
                t.slowloris_closed.push(age);
                false
            } else if age > bound {
                t.slowloris_overdue += 1;
                t.note(format!(
                    "slowloris: server kept a trickling head open for {}s (header timeout {}s)",
                    age.as_secs(),
                    s.header_timeout.as_secs()
                ));
                false
            } else {
                true
            }
        });
    }
    t
}

/// Every `s.storm_every` (the first after 5 s), opens `s.storm_size` connections at once
/// (non-blocking connects, above a default listen backlog), waits until the server has
/// accepted what it will (at least 1.5 s, then until its fd count holds still for
/// 0.5 s; at most 5 s), sends a
/// request on a third of those that connected, and closes them all, half with a reset.
///
/// Waiting for the server to take them all makes every storm reach the same peak, so
/// the memory a server keeps after its highest number of connections (its allocator's
/// high-water mark, not a leak) is reached in the first storm, inside the warm-up that
/// the RSS rule leaves out.
pub(crate) fn storms(s: &Settings, live: &Live, stop: &AtomicBool) -> Tally {
    let mut t = Tally::default();
    let mut next = Instant::now() + Duration::from_secs(5);
    loop {
        nap(next.saturating_duration_since(Instant::now()), stop);
        if stopped(stop)
            || s.deadline.saturating_duration_since(Instant::now()) < Duration::from_secs(5)
        {
            break;
        }
        storm(s, &mut t);
        live.faults
            .fetch_add(s.storm_size as u64, Ordering::Relaxed);
        next += s.storm_every;
    }
    t
}

fn storm(s: &Settings, t: &mut Tally) {
    let st = &mut t.storms;
    st.storms += 1;
    let mut socks = Vec::with_capacity(s.storm_size);
    let mut first_error = None;
    for _ in 0..s.storm_size {
        st.attempted += 1;
        let sock = match Socket::new(Domain::IPV4, Type::STREAM, None)
            .and_then(|so| so.set_nonblocking(true).map(|()| so))
        {
            Ok(so) => so,
            Err(e) => {
                st.not_opened += 1;
                first_error.get_or_insert(e);
                continue;
            }
        };
        match sock.connect(&s.addr.into()) {
            Ok(()) => socks.push(sock),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => socks.push(sock),
            Err(e) => {
                st.not_opened += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let before = super::sample::fd_count(s.pid).unwrap_or(0);
    let start = Instant::now();
    let (mut last, mut since, mut peak) = (before, Instant::now(), before);
    while start.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(100));
        let now = super::sample::fd_count(s.pid).unwrap_or(last);
        peak = peak.max(now);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if start.elapsed() >= Duration::from_millis(1500)
            && since.elapsed() >= Duration::from_millis(500)
        {
            break;
        }
    }
    st.held = st.held.max(peak.saturating_sub(before) as u64);
    for (i, sock) in socks.into_iter().enumerate() {
        if sock.peer_addr().is_ok() {
            st.connected += 1;
            if i % 3 == 0 && sock.send(GET).is_ok() {
                st.with_request += 1;
            }
        } else if matches!(sock.take_error(), Ok(Some(_))) {
            st.refused += 1;
        } else {
            st.pending += 1;
        }
        if i % 2 == 0 {
            let _ = sock.set_linger(Some(Duration::ZERO));
            st.reset += 1;
        }
        drop(sock);
    }
    if let Some(e) = first_error {
        t.note(format!("storm: could not open every socket: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_merge_and_count_losses() {
        let mut a = Tally::default();
        a.sent[0] = 10;
        a.ok[0] = 10;
        let mut b = Tally::default();
        b.sent[1] = 32;
        b.ok[1] = 16;
        b.faults.insert("x", 2);
        b.bad
            .entry("random binary".into())
            .or_default()
            .insert("400 then close".into(), 3);
        b.storms.connected = 5;
        a.merge(b);
        assert_eq!(a.lost(), 16);
        assert_eq!(a.faults["x"], 2);
        assert_eq!(a.bad["random binary"]["400 then close"], 3);
        assert_eq!(a.storms.connected, 5);
    }
}
