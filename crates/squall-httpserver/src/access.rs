//! The access log's line: Tornado's `200 GET /path (127.0.0.1) 0.45ms`, formatted with
//! few formatter calls (it is written once per request).

use std::cell::Cell;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use http::{Method, StatusCode};

/// The `log` target of the one-line-per-request access log (Tornado's `tornado.access`).
pub const ACCESS_LOG_TARGET: &str = "squall_httpserver::access";

/// The decimal digits of 0 to 255, left-aligned, with their count in the last byte.
static OCTETS: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let n = i as u8;
        t[i] = if n >= 100 {
            [b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10, 3]
        } else if n >= 10 {
            [b'0' + n / 10, b'0' + n % 10, 0, 2]
        } else {
            [b'0' + n, 0, 0, 1]
        };
        i += 1;
    }
    t
};

/// One request's access-log line: status, method, target, client, time.
pub(crate) struct AccessLine<'a> {
    pub(crate) status: StatusCode,
    pub(crate) method: &'a Method,
    /// The request-target as sent.
    pub(crate) target: &'a [u8],
    pub(crate) ip: Option<IpAddr>,
    pub(crate) elapsed: Duration,
}

impl AccessLine<'_> {
    /// Logs the line at info level under [`ACCESS_LOG_TARGET`]: straight into the
    /// thread's buffer when squall's `LoopLogger` is the logger, else through `log`.
    pub(crate) fn log(&self) {
        let done = squall_ioloop::logger::log_bytes(log::Level::Info, ACCESS_LOG_TARGET, |b| {
            self.write(b)
        });
        if !done {
            log::info!(target: ACCESS_LOG_TARGET, "{self}");
        }
    }

    /// The line's text, appended to `buf` (no formatter). A line of up to
    /// [`Line::CAP`] bytes (any but a very long request-target) is built in a small
    /// array and appended with one copy; a longer one is appended in pieces.
    fn write(&self, buf: &mut Vec<u8>) {
        let status = self.status.as_str().as_bytes();
        let method = self.method.as_str().as_bytes();
        let mut line = Line::<{ Line::CAP }>::default();
        if status.len() + method.len() + self.target.len() + Line::TAIL <= Line::CAP {
            line.extend_bytes(status);
            line.push(b' ');
            line.extend_bytes(method);
            line.push(b' ');
            line.extend_bytes(self.target);
        } else {
            buf.extend_from_slice(status);
            buf.push(b' ');
            buf.extend_from_slice(method);
            buf.push(b' ');
            buf.extend_from_slice(self.target);
        }
        match self.ip {
            Some(IpAddr::V4(ip)) => {
                line.extend(&v4_text(ip));
            }
            Some(ip @ IpAddr::V6(_)) => {
                use std::io::Write as _;
                buf.extend_from_slice(line.bytes());
                line = Line::<{ Line::CAP }>::default();
                let _ = write!(buf, " ({ip})");
            }
            None => {}
        }
        // Milliseconds with two decimals, rounded to the nearest hundredth.
        let micros = u64::try_from(self.elapsed.as_micros()).unwrap_or(u64::MAX);
        let hundredths = micros.saturating_add(5) / 10;
        let frac = (hundredths % 100) as u8;
        line.push(b' ');
        line.num(hundredths / 100);
        line.push(b'.');
        line.push(b'0' + frac / 10);
        line.push(b'0' + frac % 10);
        line.push(b'm');
        line.push(b's');
        buf.extend_from_slice(line.bytes());
    }
}

/// ` (a.b.c.d)` at most.
const V4_TEXT: usize = 18;

thread_local! {
    /// The last address written, as text: a thread's lines mostly come from few
    /// clients (a proxy, a load balancer, a benchmark), so most lines copy it.
    static LAST_V4: Cell<Option<(Ipv4Addr, [u8; V4_TEXT], u8)>> = const { Cell::new(None) };
}

/// ` (a.b.c.d)` for `ip`, from the thread's last one when it is the same.
fn v4_text(ip: Ipv4Addr) -> Line<V4_TEXT> {
    let mut text = Line::<V4_TEXT>::default();
    if let Ok(Some((last, bytes, len))) = LAST_V4.try_with(Cell::get) {
        if last == ip {
            text.bytes = bytes;
            text.len = usize::from(len);
            return text;
        }
    }
    let [a, b, c, d] = ip.octets();
    text.push(b' ');
    text.push(b'(');
    text.octet(a);
    for o in [b, c, d] {
        text.push(b'.');
        text.octet(o);
    }
    text.push(b')');
    let _ = LAST_V4.try_with(|l| l.set(Some((ip, text.bytes, text.len as u8))));
    text
}

/// A line built in place.
struct Line<const N: usize = 192> {
    bytes: [u8; N],
    len: usize,
}

impl Line {
    /// What fits.
    const CAP: usize = 192;
    /// Room kept for the end of a line: ` (255.255.255.255) ` and the longest time,
    /// `18446744073709551.61ms`, with some to spare.
    const TAIL: usize = 48;
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Line {
            bytes: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Line<N> {
    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn extend<const M: usize>(&mut self, other: &Line<M>) -> &mut Self {
        self.extend_bytes(other.bytes());
        self
    }

    fn extend_bytes(&mut self, s: &[u8]) {
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// An address octet in decimal, from the table (three bytes copied, its digits
    /// kept).
    fn octet(&mut self, o: u8) {
        let e = &OCTETS[usize::from(o)];
        self.bytes[self.len..self.len + 3].copy_from_slice(&e[..3]);
        self.len += usize::from(e[3]).min(3);
    }

    /// `n` in decimal (at most 20 digits).
    fn num(&mut self, mut n: u64) {
        let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut i = self.len + digits;
        self.len = i;
        loop {
            i -= 1;
            self.bytes[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Display for AccessLine<'_> {
    /// The same text as [`log`](Self::log) writes, for other loggers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::new();
        self.write(&mut buf);
        f.write_str(&String::from_utf8_lossy(&buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(method: Method, uri: &str, ip: Option<IpAddr>, micros: u64) -> String {
        AccessLine {
            status: StatusCode::OK,
            method: &method,
            target: uri.as_bytes(),
            ip,
            elapsed: Duration::from_micros(micros),
        }
        .to_string()
    }

    #[test]
    fn lines_read_as_tornados() {
        let v4 = Some("127.0.0.1".parse().unwrap());
        for (i, e) in OCTETS.iter().enumerate() {
            let digits = &e[..usize::from(e[3])];
            assert_eq!(digits, i.to_string().as_bytes());
        }
        // The second line of an address reuses the first's text.
        for _ in 0..2 {
            assert_eq!(
                line(Method::GET, "/", v4, 450),
                "200 GET / (127.0.0.1) 0.45ms"
            );
        }
        assert_eq!(
            line(
                Method::POST,
                "/a/b?x=1&y",
                Some("10.200.3.255".parse().unwrap()),
                12_345_678
            ),
            "200 POST /a/b?x=1&y (10.200.3.255) 12345.68ms"
        );
        assert_eq!(
            line(Method::GET, "/", Some("::1".parse().unwrap()), 4),
            "200 GET / (::1) 0.00ms"
        );
        assert_eq!(line(Method::HEAD, "*", None, 5), "200 HEAD * 0.01ms");
        assert_eq!(
            line(Method::GET, "http://example.com/x?q", None, 1_000),
            "200 GET http://example.com/x?q 1.00ms"
        );
        // The longest tail there is: a four-part address of three digits each, and
        // the most microseconds a line can show.
        assert_eq!(
            line(
                Method::GET,
                "/",
                Some("255.255.255.255".parse().unwrap()),
                u64::MAX
            ),
            "200 GET / (255.255.255.255) 18446744073709551.61ms"
        );
        let target = format!("/{}", "a".repeat(300));
        assert_eq!(
            line(Method::GET, &target, v4, 450),
            format!("200 GET {target} (127.0.0.1) 0.45ms")
        );
        let long = Method::from_bytes(&[b'X'; 60]).unwrap();
        assert_eq!(
            line(long, "/", None, 995),
            format!("200 {} / 1.00ms", "X".repeat(60))
        );
    }
}
