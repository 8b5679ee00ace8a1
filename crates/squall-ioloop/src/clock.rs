//! The loop's monotonic clock: [`Instant`]s, and seconds as `f64` since a process-wide
//! epoch for Tornado's `IOLoop.time()`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Seconds since the epoch (the first use of the clock in this process).
pub(crate) fn time() -> f64 {
    Instant::now().duration_since(epoch()).as_secs_f64()
}

/// The instant at `secs` since the epoch; negative values (and NaN) clamp to the
/// epoch, huge ones (and +infinity) to a century later.
pub(crate) fn instant_at(secs: f64) -> Instant {
    // `clamp` takes -infinity to the epoch and +infinity to the cap: a deadline at
    // infinity is never due, as in Tornado, instead of due at once.
    let secs = if secs.is_nan() {
        0.0
    } else {
        secs.clamp(0.0, 3.2e9)
    };
    epoch() + Duration::from_secs_f64(secs)
}

/// Now plus `delay`, saturating at a far-away instant instead of overflowing.
pub(crate) fn after(delay: Duration) -> Instant {
    instant_after(Instant::now(), delay)
}

/// `base` plus `delay`, or an instant a century after `base` when the sum does not fit
/// in an `Instant` (`Instant + Duration` panics then): a timeout of `Duration::MAX`
/// set to mean "never" makes a deadline that is never reached, not a panic. Every
/// deadline made from a user's timeout is made with it.
pub fn instant_after(base: Instant, delay: Duration) -> Instant {
    base.checked_add(delay)
        .unwrap_or_else(|| base + Duration::from_secs(100 * 365 * 24 * 3600))
}
