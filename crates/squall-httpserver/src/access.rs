//! The access log's line: Tornado's `200 GET /path (127.0.0.1) 0.45ms`, formatted with
//! few formatter calls (it is written once per request).

use std::fmt;
use std::net::IpAddr;
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

    /// The line's text, appended to `buf` byte by byte (no formatter).
    fn write(&self, buf: &mut Vec<u8>) {
        buf.reserve(64);
        buf.extend_from_slice(self.status.as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(self.method.as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(self.target);
        match self.ip {
            Some(IpAddr::V4(ip)) => {
                let [a, b, c, d] = ip.octets();
                buf.push(b' ');
                buf.push(b'(');
                push_octet(buf, a);
                for o in [b, c, d] {
                    buf.push(b'.');
                    push_octet(buf, o);
                }
                buf.push(b')');
            }
            Some(ip @ IpAddr::V6(_)) => {
                use std::io::Write as _;
                let _ = write!(buf, " ({ip})");
            }
            None => {}
        }
        // Milliseconds with two decimals, rounded to the nearest hundredth.
        let micros = u64::try_from(self.elapsed.as_micros()).unwrap_or(u64::MAX - 5);
        let hundredths = (micros + 5) / 10;
        let frac = (hundredths % 100) as u8;
        buf.push(b' ');
        push_num(buf, hundredths / 100);
        buf.push(b'.');
        buf.push(b'0' + frac / 10);
        buf.push(b'0' + frac % 10);
        buf.push(b'm');
        buf.push(b's');
    }
}

/// Appends an address octet in decimal, from the table.
fn push_octet(buf: &mut Vec<u8>, o: u8) {
    let e = &OCTETS[usize::from(o)];
    for &d in &e[..usize::from(e[3]).min(3)] {
        buf.push(d);
    }
}

/// Appends `n` in decimal.
fn push_num(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
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
        assert_eq!(
            line(Method::GET, "/", v4, 450),
            "200 GET / (127.0.0.1) 0.45ms"
        );
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
        let long = Method::from_bytes(&[b'X'; 60]).unwrap();
        assert_eq!(
            line(long, "/", None, 995),
            format!("200 {} / 1.00ms", "X".repeat(60))
        );
    }
}
