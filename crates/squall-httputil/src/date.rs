//! HTTP dates: [`format_timestamp`] for any time, and a per-thread cache of "now" for the
//! `Date` header.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

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

struct CachedDate {
    secs: i64,
    text: [u8; DATE_LEN],
}

thread_local! {
    static CACHED: RefCell<CachedDate> = const { RefCell::new(CachedDate { secs: i64::MIN, text: [b' '; DATE_LEN] }) };
}

/// The current time as an IMF-fixdate, for the `Date` header.
///
/// Cached per thread and re-rendered at most once a second (hyper's
/// `common/date.rs`): a call costs a clock read and a 29-byte copy.
pub fn cached_date() -> [u8; DATE_LEN] {
    let now = SystemTime::now();
    let secs = unix_seconds(now);
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        if c.secs != secs {
            // Rendered in place, without a `String`: a warm server allocates nothing
            // per request, this second's first included.
            if let Some(text) = imf_fixdate(secs) {
                c.text = text;
            }
            c.secs = secs;
        }
        c.text
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn cache_matches_now() {
        let d = cached_date();
        let s = std::str::from_utf8(&d).unwrap();
        assert!(s.ends_with(" GMT"), "{s}");
        assert_eq!(d.len(), DATE_LEN);
    }
}
