//! squall's own HTTP/1.1 load generator, used by `cargo xtask bench` when `wrk` is
//! absent (and beside it, to show that the two agree).
//!
//! [`run`] keeps N keep-alive connections busy from one thread with level-triggered
//! epoll: each connection writes a batch of `pipeline` requests in one write, waits for
//! that many responses (framed by `Content-Length`), records each response's latency from
//! the batch's send time, and sends the next batch, like `wrk` with a pipeline script.
//! A connection that the server closes, or that sends something unframeable, counts an
//! error and is reopened. [`hold`] opens idle connections for the memory run, and
//! [`run_echo`] drives an echo server for the throughput run.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::sys::{self, Epoll};

/// The request every connection sends (what `wrk` sends, with a `Host`).
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

const READ_BUF: usize = 64 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server.
    pub addr: SocketAddr,
    /// Keep-alive connections, all driven by one thread.
    pub connections: usize,
    /// Requests per write (1: plain keep-alive).
    pub pipeline: usize,
    /// How long to count.
    pub duration: Duration,
    /// A batch not answered within this time counts a timeout error (and the
    /// connection is reopened); connecting is bounded by it too.
    pub timeout: Duration,
}

impl Config {
    /// One connection, no pipelining, one second, a 5-second timeout.
    pub fn new(addr: SocketAddr) -> Config {
        Config {
            addr,
            connections: 1,
            pipeline: 1,
            duration: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Errors counted during a run, by kind (none of them stops the run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors {
    /// Connections that could not be opened (or reopened).
    pub connect: u64,
    /// Failed reads (other than would-block).
    pub read: u64,
    /// Failed writes (other than would-block).
    pub write: u64,
    /// Responses whose status was not 2xx.
    pub status: u64,
    /// Responses that could not be framed (no `Content-Length`, chunked, garbage).
    pub framing: u64,
    /// Connections the server closed while responses were owed.
    pub closed: u64,
    /// Batches not answered within the timeout.
    pub timeout: u64,
}

impl Errors {
    /// All errors.
    pub fn total(&self) -> u64 {
        self.connect
            + self.read
            + self.write
            + self.status
            + self.framing
            + self.closed
            + self.timeout
    }
}

/// A log-linear latency histogram: 32 sub-buckets per power of two of nanoseconds
/// (about 3% resolution), fixed size, no allocation per sample.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; (2 * SUB + 64 * SUB) as usize],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(ns: u64) -> usize {
        if ns < 2 * SUB {
            return ns as usize;
        }
        let exp = 63 - ns.leading_zeros(); // >= SUB_BITS + 1
        let shift = exp - SUB_BITS;
        (2 * SUB + u64::from(shift - 1) * SUB + ((ns >> shift) - SUB)) as usize
    }

    /// The middle of bucket `i`, in nanoseconds.
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < 2 * SUB {
            return i;
        }
        let shift = (i - 2 * SUB) / SUB + 1;
        let low = ((i - 2 * SUB) % SUB + SUB) << shift;
        low + (1 << shift) / 2
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// The number of samples.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// No samples yet.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The largest sample.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    /// The latency below which a fraction `q` (0..=1) of the samples fall (zero when
    /// empty).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(Self::value(i).min(self.max));
            }
        }
        Duration::from_nanos(self.max)
    }
}

/// The outcome of a [`run`].
#[derive(Debug, Clone)]
pub struct Report {
    /// Connections asked for.
    pub connections: usize,
    /// Pipeline depth.
    pub pipeline: usize,
    /// The counted time.
    pub elapsed: Duration,
    /// Complete responses received in that time.
    pub requests: u64,
    /// Response latency, from the send of its batch.
    pub latency: Histogram,
    /// Errors, by kind.
    pub errors: Errors,
}

impl Report {
    /// Responses per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line of JSON, what the `loadgen` binary prints.
    pub fn to_json(&self) -> String {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let e = &self.errors;
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"generator\":\"squall-loadgen\",\"connections\":{},\"pipeline\":{},\"duration_s\":{:.6},\
             \"requests\":{},\"rps\":{:.1},\"latency_us\":{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"max\":{:.1}}},\
             \"errors\":{{\"total\":{},\"connect\":{},\"read\":{},\"write\":{},\"status\":{},\"framing\":{},\"closed\":{},\"timeout\":{}}}}}",
            self.connections,
            self.pipeline,
            self.elapsed.as_secs_f64(),
            self.requests,
            self.rps(),
            us(self.latency.quantile(0.5)),
            us(self.latency.quantile(0.9)),
            us(self.latency.quantile(0.99)),
            us(self.latency.max()),
            e.total(),
            e.connect,
            e.read,
            e.write,
            e.status,
            e.framing,
            e.closed,
            e.timeout
        );
        s
    }
}

/// A response head and body found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    /// Not all of it has arrived yet.
    Partial,
    /// A whole response of `len` bytes with this status code.
    Complete {
        /// Head plus body.
        len: usize,
        /// The status code.
        status: u16,
    },
    /// Not a response this generator can frame (no `Content-Length`, chunked, or not
    /// HTTP).
    Invalid,
}

/// Frames the first HTTP/1.x response in `buf` by its `Content-Length`.
pub fn frame(buf: &[u8]) -> Framed {
    let Some(head_end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        // A head can't be this long from a hello server: treat as garbage.
        return if buf.len() > 64 * 1024 {
            Framed::Invalid
        } else {
            Framed::Partial
        };
    };
    let head = &buf[..head_end];
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    if status_line.len() < 12 || !status_line.starts_with(b"HTTP/1.") || status_line[8] != b' ' {
        return Framed::Invalid;
    }
    let status = match std::str::from_utf8(&status_line[9..12])
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
    {
        Some(s) => s,
        None => return Framed::Invalid,
    };
    let mut length = None;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            return Framed::Invalid;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
            {
                Some(n) => length = Some(n),
                None => return Framed::Invalid,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Framed::Invalid;
        }
    }
    let body = match (length, status) {
        (Some(n), _) => n,
        // No body by definition.
        (None, 100..=199 | 204 | 304) => 0,
        (None, _) => return Framed::Invalid,
    };
    let len = head_end + 4 + body;
    if buf.len() < len {
        Framed::Partial
    } else {
        Framed::Complete { len, status }
    }
}

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    sent_at: Instant,
    /// Responses still owed for the current batch.
    owed: usize,
    /// Bytes of the current batch written.
    written: usize,
    want_write: bool,
}

fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs the load described by `cfg` and reports what it counted.
///
/// # Errors
///
/// When no connection at all can be opened, or epoll fails. Errors on single
/// connections are counted in the report instead.
pub fn run(cfg: &Config) -> io::Result<Report> {
    let pipeline = cfg.pipeline.max(1);
    let batch = REQUEST.repeat(pipeline);
    let mut epoll = Epoll::new(1024)?;
    let mut errors = Errors::default();
    let mut latency = Histogram::default();
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(cfg.connections);
    let mut first_error = None;
    for _ in 0..cfg.connections.max(1) {
        match connect(cfg.addr, cfg.timeout) {
            Ok(s) => conns.push(Some(new_conn(s)?)),
            Err(e) => {
                errors.connect += 1;
                first_error.get_or_insert(e);
                conns.push(None);
            }
        }
    }
    if conns.iter().all(Option::is_none) {
        return Err(first_error.unwrap_or_else(|| io::Error::other("no connection")));
    }
    let start = Instant::now();
    let deadline = start + cfg.duration;
    for (key, slot) in conns.iter_mut().enumerate() {
        if let Some(c) = slot {
            epoll.add(c.stream.as_raw_fd(), sys::IN, key as u64)?;
            if !start_batch(c, &batch, pipeline, &epoll, key, &mut errors)? {
                *slot = None;
            }
        }
    }
    let mut requests = 0u64;
    let mut buf = vec![0u8; READ_BUF];
    let mut ready = Vec::with_capacity(1024);
    let mut last_sweep = start;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        ready.clear();
        ready.extend(epoll.wait(Some((deadline - now).min(Duration::from_millis(100))))?);
        for &(key, events) in &ready {
            let key = key as usize;
            let Some(c) = conns[key].as_mut() else {
                continue;
            };
            let mut alive = true;
            if events & (sys::IN | sys::HUP_ERR) != 0 {
                alive = read_responses(
                    c,
                    &mut buf,
                    &mut requests,
                    &mut latency,
                    &mut errors,
                    deadline,
                );
                if alive && c.owed == 0 {
                    alive = start_batch(c, &batch, pipeline, &epoll, key, &mut errors)?;
                }
            }
            if alive && events & sys::OUT != 0 && c.written < batch.len() {
                alive = write_batch(c, &batch, &epoll, key, &mut errors)?;
            }
            if !alive {
                reopen(
                    &mut conns[key],
                    cfg,
                    &batch,
                    pipeline,
                    &epoll,
                    key,
                    &mut errors,
                )?;
            }
        }
        let now = Instant::now();
        if now.duration_since(last_sweep) >= Duration::from_millis(100) {
            last_sweep = now;
            for (key, slot) in conns.iter_mut().enumerate() {
                let stale = match slot {
                    Some(c) => c.owed > 0 && now.duration_since(c.sent_at) > cfg.timeout,
                    None => true,
                };
                if stale {
                    if slot.is_some() {
                        errors.timeout += 1;
                    }
                    reopen(slot, cfg, &batch, pipeline, &epoll, key, &mut errors)?;
                }
            }
        }
    }
    let elapsed = start
        .elapsed()
        .min(cfg.duration.max(Duration::from_nanos(1)));
    Ok(Report {
        connections: cfg.connections,
        pipeline,
        elapsed,
        requests,
        latency,
        errors,
    })
}

fn new_conn(stream: TcpStream) -> io::Result<Conn> {
    stream.set_nonblocking(true)?;
    Ok(Conn {
        stream,
        inbuf: Vec::new(),
        sent_at: Instant::now(),
        owed: 0,
        written: 0,
        want_write: false,
    })
}

/// Drops a broken connection and opens another in its place (a failed connect leaves
/// the slot empty for the next sweep).
fn reopen(
    slot: &mut Option<Conn>,
    cfg: &Config,
    batch: &[u8],
    pipeline: usize,
    epoll: &Epoll,
    key: usize,
    errors: &mut Errors,
) -> io::Result<()> {
    if let Some(old) = slot.take() {
        epoll.delete(old.stream.as_raw_fd())?;
    }
    match connect(cfg.addr, cfg.timeout).and_then(new_conn) {
        Ok(mut c) => {
            epoll.add(c.stream.as_raw_fd(), sys::IN, key as u64)?;
            if start_batch(&mut c, batch, pipeline, epoll, key, errors)? {
                *slot = Some(c);
            } else {
                epoll.delete(c.stream.as_raw_fd())?;
            }
        }
        Err(_) => errors.connect += 1,
    }
    Ok(())
}

fn start_batch(
    c: &mut Conn,
    batch: &[u8],
    pipeline: usize,
    epoll: &Epoll,
    key: usize,
    errors: &mut Errors,
) -> io::Result<bool> {
    c.owed = pipeline;
    c.written = 0;
    c.sent_at = Instant::now();
    write_batch(c, batch, epoll, key, errors)
}

/// Writes the rest of the batch; arms WRITE interest if the socket is full and drops
/// it when done. `Ok(false)` if the connection broke.
fn write_batch(
    c: &mut Conn,
    batch: &[u8],
    epoll: &Epoll,
    key: usize,
    errors: &mut Errors,
) -> io::Result<bool> {
    while c.written < batch.len() {
        match (&c.stream).write(&batch[c.written..]) {
            Ok(0) => {
                errors.write += 1;
                return Ok(false);
            }
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                errors.write += 1;
                return Ok(false);
            }
        }
    }
    let need = c.written < batch.len();
    if need != c.want_write {
        c.want_write = need;
        epoll.modify(
            c.stream.as_raw_fd(),
            if need { sys::IN | sys::OUT } else { sys::IN },
            key as u64,
        )?;
    }
    Ok(true)
}

/// Reads what is there and consumes every complete response. `false` if the
/// connection must be reopened.
fn read_responses(
    c: &mut Conn,
    buf: &mut [u8],
    requests: &mut u64,
    latency: &mut Histogram,
    errors: &mut Errors,
    deadline: Instant,
) -> bool {
    loop {
        match (&c.stream).read(buf) {
            Ok(0) => {
                if c.owed > 0 {
                    errors.closed += 1;
                }
                return false;
            }
            Ok(n) => {
                c.inbuf.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                errors.read += 1;
                return false;
            }
        }
    }
    let now = Instant::now();
    let mut at = 0;
    loop {
        match frame(&c.inbuf[at..]) {
            Framed::Partial => break,
            Framed::Invalid => {
                errors.framing += 1;
                return false;
            }
            Framed::Complete { len, status } => {
                at += len;
                if c.owed == 0 {
                    // A response nobody asked for.
                    errors.framing += 1;
                    return false;
                }
                c.owed -= 1;
                if !(200..300).contains(&status) {
                    errors.status += 1;
                }
                if now <= deadline {
                    *requests += 1;
                    latency.record(now - c.sent_at);
                }
            }
        }
    }
    c.inbuf.drain(..at);
    true
}

/// Opens `n` connections one after the other and completes one request on each, then
/// returns them idle (for the memory run: the server holds `n` keep-alive connections
/// that have each served a request).
///
/// # Errors
///
/// The first connection that cannot be opened or answered (with its cause), or a
/// response that is not framed or not 2xx; or `TimedOut` past `timeout` overall.
pub fn hold(addr: SocketAddr, n: usize, timeout: Duration) -> io::Result<Vec<TcpStream>> {
    let end = Instant::now() + timeout;
    let mut held = Vec::with_capacity(n);
    let mut buf = vec![0u8; 4096];
    for i in 0..n {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("hold: {i} of {n} connections in time"),
            ));
        }
        let mut s = connect(addr, left)
            .map_err(|e| io::Error::new(e.kind(), format!("hold: connection {i}: {e}")))?;
        s.set_read_timeout(Some(left))?;
        s.write_all(REQUEST)?;
        let mut got = 0;
        loop {
            let r = s
                .read(&mut buf[got..])
                .map_err(|e| io::Error::new(e.kind(), format!("hold: response {i}: {e}")))?;
            if r == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("hold: server closed connection {i}"),
                ));
            }
            got += r;
            match frame(&buf[..got]) {
                Framed::Partial if got < buf.len() => {}
                Framed::Complete { status, .. } if (200..300).contains(&status) => break,
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("hold: response {i}: {other:?}"),
                    ));
                }
            }
        }
        held.push(s);
    }
    Ok(held)
}

/// The outcome of a [`run_echo`].
#[derive(Debug, Clone)]
pub struct EchoReport {
    /// The counted time.
    pub elapsed: Duration,
    /// Bytes echoed back and checked in that time.
    pub bytes: u64,
    /// Connections broken (closed, failed, or echoing wrong bytes).
    pub errors: u64,
}

impl EchoReport {
    /// Echoed megabytes (10^6 bytes) per second.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line of JSON, what `loadgen --echo` prints.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"generator\":\"squall-loadgen\",\"mode\":\"echo\",\"duration_s\":{:.6},\"bytes\":{},\"mb_per_s\":{:.2},\"errors\":{{\"total\":{}}}}}",
            self.elapsed.as_secs_f64(),
            self.bytes,
            self.mb_per_s(),
            self.errors
        )
    }
}

/// The echo payload: `chunk` bytes of printable lines, each ending in `\n` (1 KiB
/// long), so that a line-based echo (Tornado's `read_until(b"\n")` example) and a raw
/// one both work.
pub fn echo_payload(chunk: usize) -> Vec<u8> {
    (0..chunk)
        .map(|i| {
            if i % 1024 == 1023 || i == chunk - 1 {
                b'\n'
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect()
}

/// Drives an echo server with `connections` connections for `duration`: each writes a
/// `chunk`-byte payload, reads it back, checks it, and repeats.
///
/// # Errors
///
/// When no connection can be opened, or epoll fails.
pub fn run_echo(
    addr: SocketAddr,
    connections: usize,
    chunk: usize,
    duration: Duration,
) -> io::Result<EchoReport> {
    struct Echo {
        stream: TcpStream,
        written: usize,
        read: usize,
        want_write: bool,
    }
    let payload = echo_payload(chunk.max(1));
    let mut epoll = Epoll::new(256)?;
    let mut conns = Vec::new();
    for key in 0..connections.max(1) {
        let s = connect(addr, Duration::from_secs(5))?;
        s.set_nonblocking(true)?;
        epoll.add(s.as_raw_fd(), sys::IN | sys::OUT, key as u64)?;
        conns.push(Some(Echo {
            stream: s,
            written: 0,
            read: 0,
            want_write: true,
        }));
    }
    let mut buf = vec![0u8; READ_BUF];
    let (mut bytes, mut errors) = (0u64, 0u64);
    let mut ready = Vec::new();
    let start = Instant::now();
    let deadline = start + duration;
    while Instant::now() < deadline {
        ready.clear();
        ready.extend(epoll.wait(Some(deadline.saturating_duration_since(Instant::now())))?);
        for &(key, events) in &ready {
            let Some(c) = conns[key as usize].as_mut() else {
                continue;
            };
            let mut ok = true;
            if events & (sys::IN | sys::HUP_ERR) != 0 {
                loop {
                    match (&c.stream).read(&mut buf) {
                        Ok(0) => ok = false,
                        Ok(n)
                            if c.read + n <= c.written
                                && buf[..n] == payload[c.read..c.read + n] =>
                        {
                            c.read += n;
                            if c.read == payload.len() {
                                if Instant::now() <= deadline {
                                    bytes += payload.len() as u64;
                                }
                                c.read = 0;
                                c.written = 0;
                            }
                            if n == buf.len() {
                                continue;
                            }
                        }
                        Ok(_) => ok = false, // wrong bytes or more than was sent
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => ok = false,
                    }
                    break;
                }
            }
            while ok && c.written < payload.len() {
                match (&c.stream).write(&payload[c.written..]) {
                    Ok(n) if n > 0 => c.written += n,
                    Ok(_) => ok = false,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => ok = false,
                }
            }
            if !ok {
                errors += 1;
                epoll.delete(c.stream.as_raw_fd())?;
                conns[key as usize] = None;
                continue;
            }
            let need = c.written < payload.len();
            if need != c.want_write {
                c.want_write = need;
                epoll.modify(
                    c.stream.as_raw_fd(),
                    if need { sys::IN | sys::OUT } else { sys::IN },
                    key,
                )?;
            }
        }
        if conns.iter().all(Option::is_none) {
            break;
        }
    }
    Ok(EchoReport {
        elapsed: start.elapsed().min(duration),
        bytes,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_by_content_length() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\ncontent-type: text/plain\r\n\r\nHello, world!";
        assert_eq!(
            frame(r),
            Framed::Complete {
                len: r.len(),
                status: 200
            }
        );
        assert_eq!(frame(&r[..r.len() - 1]), Framed::Partial);
        assert_eq!(frame(&r[..10]), Framed::Partial);
        let two = [&r[..], &r[..]].concat();
        assert_eq!(
            frame(&two),
            Framed::Complete {
                len: r.len(),
                status: 200
            }
        );
    }

    #[test]
    fn rejects_what_it_cannot_frame() {
        assert_eq!(
            frame(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Framed::Invalid
        );
        assert_eq!(
            frame(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"),
            Framed::Invalid
        );
        assert_eq!(frame(b"SSH-2.0-OpenSSH\r\n\r\n"), Framed::Invalid);
        assert_eq!(
            frame(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Framed::Complete {
                len: 27,
                status: 204
            }
        );
        assert_eq!(
            frame(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Framed::Invalid
        );
    }

    #[test]
    fn histogram_quantiles_are_within_resolution() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let within =
            |got: Duration, want_us: f64| (got.as_secs_f64() * 1e6 / want_us - 1.0).abs() < 0.04;
        assert!(within(h.quantile(0.5), 500.0), "{:?}", h.quantile(0.5));
        assert!(within(h.quantile(0.99), 990.0), "{:?}", h.quantile(0.99));
        assert_eq!(h.max(), Duration::from_micros(1000));
        assert_eq!(h.len(), 1000);
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn histogram_buckets_cover_every_value() {
        for ns in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            123_456_789,
            u64::MAX / 2,
        ] {
            let i = Histogram::index(ns);
            let mid = Histogram::value(i) as f64;
            assert!(
                (mid - ns as f64).abs() <= (ns as f64 / 32.0).max(1.0),
                "{ns} -> bucket {i} ({mid})"
            );
        }
        assert!(Histogram::index(u64::MAX) < Histogram::default().counts.len());
    }

    #[test]
    fn payload_is_lines() {
        let p = echo_payload(4096);
        assert_eq!(p.len(), 4096);
        assert_eq!(p.iter().filter(|&&b| b == b'\n').count(), 4);
        assert_eq!(*p.last().unwrap(), b'\n');
    }
}
