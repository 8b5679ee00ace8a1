//! The access log's line: Tornado's `200 GET /path (127.0.0.1) 0.45ms`, formatted with
//! few formatter calls (it is written once per request).

use std::cell::Cell;
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

/// One request's access-log line: status, method, target, client, time. It is begun
/// when the request's head arrives ([`begin`](Self::begin): everything but the status
/// and the time, so nothing of the request is kept for it) and logged when its
/// response is done ([`log`](Self::log)). The buffer is kept from request to request.
#[derive(Debug, Default)]
pub(crate) struct AccessLine {
    text: Vec<u8>,
}

impl AccessLine {
    /// Starts the line of a new request: a placeholder status, then the method, the
    /// request-target as sent and the client's address. Appended with one
    /// reservation, the target as the one copy of a length known only at run time,
    /// and the short pieces each as a whole small array whose padding is then cut off
    /// (a few stores, no `memcpy` call).
    pub(crate) fn begin(&mut self, method: &Method, target: &[u8], ip: Option<IpAddr>) {
        let buf = &mut self.text;
        buf.clear();
        let method_text = method.as_str().as_bytes();
        buf.reserve(4 + METHOD_TEXT.max(method_text.len() + 1) + target.len() + TAIL);
        buf.extend_from_slice(b"000 ");
        match padded_method(method) {
            Some((text, len)) => put(buf, text, len),
            None => {
                buf.extend_from_slice(method_text);
                buf.push(b' ');
            }
        }
        buf.extend_from_slice(target);
        match ip {
            Some(IpAddr::V4(ip)) => {
                let text = v4_text(ip);
                put(buf, &text.bytes, text.len);
            }
            Some(ip @ IpAddr::V6(_)) => {
                use std::io::Write as _;
                let _ = write!(buf, " ({ip})");
            }
            None => {}
        }
    }

    /// Ends the line with the response's status and the request's time, and logs it
    /// under [`ACCESS_LOG_TARGET`] at the status's level ([`level_of`]): straight into
    /// the thread's buffer when squall's `LoopLogger` is the logger, else through `log`.
    pub(crate) fn log(&mut self, status: StatusCode, elapsed: Duration) {
        let level = level_of(status);
        let text = self.finish(status, elapsed);
        let done = squall_ioloop::logger::log_bytes(level, ACCESS_LOG_TARGET, |b| {
            b.extend_from_slice(text)
        });
        if !done {
            log::log!(target: ACCESS_LOG_TARGET, level, "{}", String::from_utf8_lossy(text));
        }
    }

    /// The whole line: the status written over the placeholder, the time appended.
    fn finish(&mut self, status: StatusCode, elapsed: Duration) -> &[u8] {
        // A status code is three digits (100 to 999).
        if let (Some(head), &[a, b, c]) = (self.text.get_mut(..3), status.as_str().as_bytes()) {
            head.copy_from_slice(&[a, b, c]);
        }
        let time = time_text(elapsed);
        put(&mut self.text, &time.bytes, time.len);
        &self.text
    }
}

/// The level of a response's access line, as Tornado's `log_request`: info below 400,
/// warning for 4xx, error for 5xx (so `RUST_LOG=warn` still shows what went wrong).
pub(crate) fn level_of(status: StatusCode) -> log::Level {
    match status.as_u16() {
        ..400 => log::Level::Info,
        400..500 => log::Level::Warn,
        _ => log::Level::Error,
    }
}

/// Appends the first `len` bytes of `text`: the whole array is copied (a copy of a
/// size known at compile time: stores, no `memcpy` call), then the rest cut off.
fn put<const N: usize>(buf: &mut Vec<u8>, text: &[u8; N], len: usize) {
    buf.extend_from_slice(text);
    buf.truncate(buf.len() - (N - len.min(N)));
}

/// The room a padded method takes: the longest standard one (`OPTIONS`, `CONNECT`)
/// and its space.
const METHOD_TEXT: usize = 8;

/// The room the tail takes: the padded address and the time.
const TAIL: usize = V4_TEXT + TIME_TEXT;

/// The standard methods, each with its space padded to [`METHOD_TEXT`], and the
/// length of that text; the most used first.
const PADDED_METHODS: [(Method, &[u8; METHOD_TEXT], usize); 9] = [
    (Method::GET, b"GET     ", 4),
    (Method::POST, b"POST    ", 5),
    (Method::HEAD, b"HEAD    ", 5),
    (Method::PUT, b"PUT     ", 4),
    (Method::DELETE, b"DELETE  ", 7),
    (Method::PATCH, b"PATCH   ", 6),
    (Method::OPTIONS, b"OPTIONS ", 8),
    (Method::CONNECT, b"CONNECT ", 8),
    (Method::TRACE, b"TRACE   ", 6),
];

/// A standard method and its space, padded, and the length of the text; `None` for an
/// extension method.
fn padded_method(m: &Method) -> Option<(&'static [u8; METHOD_TEXT], usize)> {
    PADDED_METHODS
        .iter()
        .find(|(known, _, _)| known == m)
        .map(|&(_, text, len)| (text, len))
}

/// The most bytes ` 18446744073709551.61ms` (the longest time a line shows) takes,
/// rounded up.
const TIME_TEXT: usize = 24;

/// ` 0.45ms`: milliseconds with two decimals, rounded to the nearest hundredth.
fn time_text(elapsed: Duration) -> Line<TIME_TEXT> {
    // In u64 (`as_micros` is a u128): past half a million years it saturates.
    let micros = elapsed
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(elapsed.subsec_micros()));
    let hundredths = micros.saturating_add(5) / 10;
    let frac = (hundredths % 100) as u8;
    let mut text = Line::<TIME_TEXT>::default();
    text.push(b' ');
    text.num(hundredths / 100);
    let at = text.len;
    text.bytes[at..at + 5].copy_from_slice(&[b'.', b'0' + frac / 10, b'0' + frac % 10, b'm', b's']);
    text.len += 5;
    text
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

/// A short piece of a line (an address, a time), built in place.
struct Line<const N: usize> {
    bytes: [u8; N],
    len: usize,
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

    /// An address octet in decimal, from the table (three bytes copied, its digits
    /// kept).
    fn octet(&mut self, o: u8) {
        let e = &OCTETS[usize::from(o)];
        self.bytes[self.len..self.len + 3].copy_from_slice(&e[..3]);
        self.len += usize::from(e[3]).min(3);
    }

    /// `n` in decimal (at most 20 digits).
    fn num(&mut self, mut n: u64) {
        if n < 10 {
            // Most requests take under 10 ms.
            self.push(b'0' + n as u8);
            return;
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(method: Method, uri: &str, ip: Option<IpAddr>, micros: u64) -> String {
        text(StatusCode::OK, &method, uri, ip, micros)
    }

    fn text(status: StatusCode, m: &Method, uri: &str, ip: Option<IpAddr>, micros: u64) -> String {
        let mut line = AccessLine::default();
        // A line before: nothing of it shows in the next.
        line.begin(
            &Method::DELETE,
            b"/an/earlier/request?with=a&long=query",
            None,
        );
        let _ = line.finish(StatusCode::IM_A_TEAPOT, Duration::from_secs(100));
        line.begin(m, uri.as_bytes(), ip);
        String::from_utf8(line.finish(status, Duration::from_micros(micros)).to_vec()).unwrap()
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
        // Every standard method, padded or not, and another status.
        for m in [
            Method::GET,
            Method::POST,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
            Method::CONNECT,
            Method::TRACE,
            Method::from_bytes(b"PURGE").unwrap(),
        ] {
            let got = text(StatusCode::NOT_FOUND, &m, "/x", v4, 12_340);
            assert_eq!(got, format!("404 {m} /x (127.0.0.1) 12.34ms"));
        }
        let long = Method::from_bytes(&[b'X'; 60]).unwrap();
        assert_eq!(
            line(long, "/", None, 995),
            format!("200 {} / 1.00ms", "X".repeat(60))
        );
    }
}
