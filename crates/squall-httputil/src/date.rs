//! HTTP dates: [`format_timestamp`] for any time, and a per-thread cache of "now" for the
//! `Date` header.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the Unix epoch, negative before it (whole seconds, rounded down).
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                -secs.saturating_add(1)
            } else {
                -secs
            }
        }
    }
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Format a time as an RFC 7231 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// Works for any `SystemTime`, before the epoch included; sub-second parts are dropped.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use squall_httputil::format_timestamp;
///
/// let t = UNIX_EPOCH + Duration::from_secs_f64(1359312200.503611);
/// assert_eq!(format_timestamp(t), "Sun, 27 Jan 2013 18:43:20 GMT");
/// ```
pub fn format_timestamp(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize;
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[weekday],
        d,
        MONTHS[m as usize - 1],
        y,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `secs` since the epoch as an IMF-fixdate, for years 1000 to 9999 (`None` outside).
fn imf_fixdate(secs: i64) -> Option<[u8; DATE_LEN]> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(1000..=9999).contains(&y) {
        return None;
    }
    let weekday = (days + 4).rem_euclid(7) as usize;
    let mut t = [b' '; DATE_LEN];
    let two = |t: &mut [u8], at: usize, n: i64| {
        t[at] = b'0' + (n / 10 % 10) as u8;
        t[at + 1] = b'0' + (n % 10) as u8;
    };
    t[..3].copy_from_slice(DAYS[weekday].as_bytes());
    t[3] = b',';
    two(&mut t, 5, i64::from(d));
    t[8..11].copy_from_slice(MONTHS[m as usize - 1].as_bytes());
    two(&mut t, 12, y / 100);
    two(&mut t, 14, y % 100);
    two(&mut t, 17, rem / 3600);
    t[19] = b':';
    two(&mut t, 20, rem / 60 % 60);
    t[22] = b':';
    two(&mut t, 23, rem % 60);
    t[26..29].copy_from_slice(b"GMT");
    Some(t)
}

/// The length of an IMF-fixdate for years 1000 to 9999.
pub const DATE_LEN: usize = 29;

/// The length of a whole `Date: ` line, CRLF included.
pub(crate) const DATE_LINE_LEN: usize = 6 + DATE_LEN + 2;

/// The second a thread last rendered, as a whole header line.
struct CachedDate {
    /// The line is right from `from` (included) to `until` (excluded): one second, so
    /// that checking it is two comparisons of the clock's reading, no arithmetic.
    /// Both are the epoch until the first rendering.
    from: SystemTime,
    until: SystemTime,
    /// `Date: `, the IMF-fixdate, CRLF.
    line: [u8; DATE_LINE_LEN],
    /// Before this instant of the monotonic clock the wall clock is still within the
    /// second `line` shows (as far as the reading that set it tells: it was taken no
    /// later than the wall clock's).
    fresh_until: Option<Instant>,
    /// How many times `line` was rendered: equal generations, equal lines (for the
    /// cache of whole response heads in `response.rs`).
    generation: u64,
}

const fn blank_line() -> [u8; DATE_LINE_LEN] {
    let mut line = [b' '; DATE_LINE_LEN];
    let name = b"Date:";
    let mut i = 0;
    while i < name.len() {
        line[i] = name[i];
        i += 1;
    }
    line[DATE_LINE_LEN - 2] = b'\r';
    line[DATE_LINE_LEN - 1] = b'\n';
    line
}

thread_local! {
    static CACHED: RefCell<CachedDate> = const {
        RefCell::new(CachedDate {
            from: UNIX_EPOCH,
            until: UNIX_EPOCH,
            line: blank_line(),
            fresh_until: None,
            generation: 0,
        })
    };
}

/// `secs` seconds from the epoch (negative before it), `None` if a `SystemTime` cannot
/// hold it.
fn from_unix_seconds(secs: i64) -> Option<SystemTime> {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

impl CachedDate {
    /// Re-render the line if `now` is outside the second it shows.
    #[inline]
    fn update(&mut self, now: SystemTime) {
        if now >= self.from && now < self.until {
            return;
        }
        self.render(now);
    }

    #[cold]
    fn render(&mut self, now: SystemTime) {
        let secs = unix_seconds(now);
        // Rendered in place, without a `String`: a warm server allocates nothing per
        // request, this second's first included. Outside years 1000 to 9999 the last
        // text is kept.
        if let Some(text) = imf_fixdate(secs) {
            self.line[6..6 + DATE_LEN].copy_from_slice(&text);
        }
        self.generation = self.generation.wrapping_add(1);
        match (
            from_unix_seconds(secs),
            from_unix_seconds(secs.saturating_add(1)),
        ) {
            (Some(from), Some(until)) => {
                self.from = from;
                self.until = until;
            }
            // At the ends of what a `SystemTime` holds: read the clock every time.
            _ => {
                self.from = UNIX_EPOCH;
                self.until = UNIX_EPOCH;
            }
        }
    }
}

/// The current time as an IMF-fixdate, for the `Date` header.
///
/// Cached per thread and re-rendered at most once a second (hyper's
/// `common/date.rs`): a call costs a clock read, two comparisons and a 29-byte copy.
pub fn cached_date() -> [u8; DATE_LEN] {
    let now = SystemTime::now();
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        c.update(now);
        let mut text = [0; DATE_LEN];
        text.copy_from_slice(&c.line[6..6 + DATE_LEN]);
        text
    })
}

/// The `Date: ` line for a response head, CRLF included, copied into `dst`.
///
/// `now` is the caller's reading of the monotonic clock, if it has one (a server's
/// loop reads it once per turn): while it falls before the end of the second the line
/// shows, the line is used as it is, with no wall-clock reading. Without it, or past
/// that end, the wall clock is read (and the line re-rendered when the second has
/// changed). A reading taken earlier than the head is written can only make the line
/// lag by as much: the heads one turn of a loop writes share the second its reading
/// falls in.
#[inline]
pub(crate) fn date_line(dst: &mut [u8; DATE_LINE_LEN], now: Option<Instant>) {
    with_current(now, |c| *dst = c.line);
}

/// Runs `f` on this thread's cached line once it is the one for `now` (the caller's
/// monotonic reading, see [`date_line`]): used as it is while `now` falls before the
/// end of its second, else after a reading of the wall clock.
#[inline]
fn with_current<R>(now: Option<Instant>, f: impl FnOnce(&CachedDate) -> R) -> R {
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        let fresh = matches!((now, c.fresh_until), (Some(n), Some(u)) if n < u);
        if !fresh {
            c.read_clock(now);
        }
        f(&c)
    })
}

/// The generation of the `Date: ` line [`date_line`] would copy now (the clock read,
/// and the line re-rendered, as it would be there): a head built with a line of the same
/// generation has the same `Date`.
#[inline]
pub(crate) fn date_generation(now: Option<Instant>) -> u64 {
    with_current(now, |c| c.generation)
}

/// Marks this thread's `Date` line as re-rendered with `#` as its first character: a
/// test's way to see a new second without waiting for one.
#[cfg(test)]
pub(crate) fn mark_new_second() {
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        c.line[6] = b'#';
        c.generation = c.generation.wrapping_add(1);
    });
}

impl CachedDate {
    /// Read the wall clock, re-render if its second changed, and note on the monotonic
    /// clock when that second ends.
    #[cold]
    fn read_clock(&mut self, now: Option<Instant>) {
        let wall = SystemTime::now();
        // The monotonic reading is taken after the wall clock's (or is the caller's,
        // older still), so the end it gives is never later than the true one.
        let mono = now.unwrap_or_else(Instant::now);
        self.update(wall);
        self.fresh_until = self
            .until
            .duration_since(wall)
            .ok()
            .and_then(|left| mono.checked_add(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A monotonic reading within the cached second reuses the line; one past its end
    /// reads the wall clock again and moves the end on.
    #[test]
    fn monotonic_readings_reuse_the_second() {
        let mut line = [0; DATE_LINE_LEN];
        date_line(&mut line, None);
        let until = CACHED
            .with(|c| c.borrow().fresh_until)
            .expect("a second's end");
        let now = Instant::now();
        assert!(until > now - Duration::from_secs(1) && until <= now + Duration::from_secs(1));
        // Mark the cached line: a reading within the second must not re-render it.
        CACHED.with(|c| c.borrow_mut().line[6] = b'#');
        let mut reused = [0; DATE_LINE_LEN];
        date_line(&mut reused, Some(until - Duration::from_nanos(1)));
        assert_eq!(reused[6], b'#');
        // Past the second's end (as the monotonic clock says), the clock is read; the
        // wall clock's second may still be the same one, so the mark may survive, but
        // the end moves to the reading's second.
        let later = until + Duration::from_secs(5);
        let mut fresh = [0; DATE_LINE_LEN];
        date_line(&mut fresh, Some(later));
        let moved = CACHED.with(|c| c.borrow().fresh_until).unwrap();
        assert!(moved > later && moved <= later + Duration::from_secs(1));
        assert_eq!(&fresh[..6], b"Date: ");
        assert_eq!(&fresh[DATE_LINE_LEN - 2..], b"\r\n");
    }

    #[test]
    fn known_dates() {
        let at = |s: u64| format_timestamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(
            format_timestamp(UNIX_EPOCH - Duration::from_secs(1)),
            "Wed, 31 Dec 1969 23:59:59 GMT"
        );
        assert_eq!(
            format_timestamp(UNIX_EPOCH - Duration::from_millis(500)),
            "Wed, 31 Dec 1969 23:59:59 GMT"
        );
        assert_eq!(
            format_timestamp(UNIX_EPOCH - Duration::from_secs(86_400 * 365)),
            "Wed, 01 Jan 1969 00:00:00 GMT"
        );
    }

    #[test]
    fn in_place_rendering_matches_the_formatter() {
        for secs in [
            0,
            784_111_777,
            951_782_400,
            253_402_300_799,
            -1,
            1_700_000_000,
        ] {
            let text = imf_fixdate(secs).unwrap();
            let at = if secs >= 0 {
                UNIX_EPOCH + Duration::from_secs(secs as u64)
            } else {
                UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            };
            assert_eq!(std::str::from_utf8(&text).unwrap(), format_timestamp(at));
        }
        assert_eq!(imf_fixdate(253_402_300_800), None, "year 10000");
    }

    #[test]
    fn date_lines() {
        let mut line = [0; DATE_LINE_LEN];
        date_line(&mut line, None);
        let text = std::str::from_utf8(&line).unwrap();
        assert!(
            text.starts_with("Date: ") && text.ends_with(" GMT\r\n"),
            "{text:?}"
        );
        let mut again = [0; DATE_LINE_LEN];
        let within = CACHED.with(|c| c.borrow().fresh_until).unwrap() - Duration::from_nanos(1);
        date_line(&mut again, Some(within));
        assert_eq!(again, line, "within the second, the last line as it is");
    }

    #[test]
    fn cache_window() {
        let mut c = CachedDate {
            from: UNIX_EPOCH,
            until: UNIX_EPOCH,
            line: blank_line(),
            fresh_until: None,
            generation: 0,
        };
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        c.update(at(784_111_777_250));
        assert_eq!(&c.line[..], b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
        c.line[6] = b'x';
        c.update(at(784_111_777_999));
        assert_eq!(c.line[6], b'x', "the same second is not rendered again");
        c.update(at(784_111_778_000));
        assert_eq!(&c.line[..], b"Date: Sun, 06 Nov 1994 08:49:38 GMT\r\n");
        c.update(at(784_111_777_000));
        assert_eq!(
            &c.line[..],
            b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
            "clock set back"
        );
        c.update(UNIX_EPOCH - Duration::from_millis(1));
        assert_eq!(&c.line[..], b"Date: Wed, 31 Dec 1969 23:59:59 GMT\r\n");
    }

    #[test]
    fn cache_matches_now() {
        let d = cached_date();
        let s = std::str::from_utf8(&d).unwrap();
        assert!(s.ends_with(" GMT"), "{s}");
        assert_eq!(d.len(), DATE_LEN);
    }
}
