//! [`PeriodicCallback`]: a callback on an anchored schedule, with optional jitter.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::{poll_fn, Future};
use std::hash::{BuildHasher, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::Poll;
use std::time::Duration;

use crate::clock;
use crate::error::PeriodicError;
use crate::ioloop::{Inner, IoLoop};
use crate::timer::Timeout;

/// Calls a function every `period`: Tornado's `PeriodicCallback`.
///
/// The schedule is anchored: run `n` is due at `start + n * period`, measured from the
/// start of one run to the start of the next, so a callback's own run time does not
/// make the schedule drift. A run that overruns one or more periods makes the loop skip
/// the missed runs and go on at the next point of the original grid, never running
/// several back to back to catch up. With [`jitter`](PeriodicCallback::with_jitter)
/// `j`, each period is scaled by a random factor in `1 ± j/2` (Tornado's formula), to
/// keep many timers from firing in step.
///
/// The first run is one period after [`start`](PeriodicCallback::start). While running,
/// the loop keeps the callback alive (dropping this handle does not stop it; call
/// [`stop`](PeriodicCallback::stop)). A panic in the callback is caught and logged, and
/// the schedule goes on. The callback may call `stop`, and `stop` then `start` to
/// restart the schedule from that moment. An async callback
/// ([`new_async`](PeriodicCallback::new_async)) is awaited before the next run is
/// scheduled, so its runs never overlap (a run that outlasts periods skips them).
#[derive(Clone)]
pub struct PeriodicCallback {
    inner: Rc<Periodic>,
}

/// A run of the callback: `Some` future to await for an async callback.
type Callback = Box<dyn FnMut() -> Option<Pin<Box<dyn Future<Output = ()>>>>>;

struct Periodic {
    io_loop: Weak<Inner>,
    callback: RefCell<Option<Callback>>,
    /// The period as given, for [`PeriodicCallback::period`].
    given: Duration,
    /// The period in seconds, for the schedule math.
    period: f64,
    jitter: Cell<f64>,
    running: Cell<bool>,
    /// A run has begun and is not over (an async callback's future is still awaited):
    /// a `start` meanwhile leaves the scheduling to the run's end, so runs never
    /// overlap.
    in_flight: Cell<bool>,
    /// When the next run is due, in loop time (seconds).
    next: Cell<f64>,
    timeout: Cell<Option<Timeout>>,
    rng: Cell<u64>,
    origin: &'static Location<'static>,
}

impl PeriodicCallback {
    /// A periodic callback on `io_loop`; call [`start`](PeriodicCallback::start) to run it.
    ///
    /// # Errors
    ///
    /// [`PeriodicError::ZeroPeriod`] for a zero `period` (Tornado's `ValueError`).
    #[track_caller]
    pub fn new<F: FnMut() + 'static>(
        io_loop: &IoLoop,
        period: Duration,
        mut callback: F,
    ) -> Result<PeriodicCallback, PeriodicError> {
        PeriodicCallback::with_callback(
            io_loop,
            period,
            Box::new(move || {
                callback();
                None
            }),
            Location::caller(),
        )
    }

    /// A periodic callback whose runs are futures: each run's future is awaited (as a
    /// task of the loop) before the next run is scheduled, as Tornado does with a
    /// coroutine callback. A panic in the future is logged like one in a plain
    /// callback, and the schedule goes on.
    ///
    /// # Errors
    ///
    /// As [`new`](PeriodicCallback::new).
    #[track_caller]
    pub fn new_async<F, Fut>(
        io_loop: &IoLoop,
        period: Duration,
        mut callback: F,
    ) -> Result<PeriodicCallback, PeriodicError>
    where
        F: FnMut() -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        PeriodicCallback::with_callback(
            io_loop,
            period,
            Box::new(move || Some(Box::pin(callback()) as Pin<Box<dyn Future<Output = ()>>>)),
            Location::caller(),
        )
    }

    fn with_callback(
        io_loop: &IoLoop,
        period: Duration,
        callback: Callback,
        origin: &'static Location<'static>,
    ) -> Result<PeriodicCallback, PeriodicError> {
        if period.is_zero() {
            return Err(PeriodicError::ZeroPeriod);
        }
        let seed = RandomState::new().build_hasher().finish() | 1;
        Ok(PeriodicCallback {
            inner: Rc::new(Periodic {
                io_loop: Rc::downgrade(&io_loop.inner),
                callback: RefCell::new(Some(callback)),
                given: period,
                period: period.as_secs_f64(),
                jitter: Cell::new(0.0),
                running: Cell::new(false),
                in_flight: Cell::new(false),
                next: Cell::new(0.0),
                timeout: Cell::new(None),
                rng: Cell::new(seed),
                origin,
            }),
        })
    }

    /// Sets the jitter: each period is multiplied by `1 + jitter * (r - 0.5)` for a
    /// random `r` in `[0, 1)`. `0.1` allows a 10% variation.
    ///
    /// # Errors
    ///
    /// [`PeriodicError::BadJitter`] unless `0.0 <= jitter <= 1.0`.
    pub fn with_jitter(self, jitter: f64) -> Result<PeriodicCallback, PeriodicError> {
        if !(0.0..=1.0).contains(&jitter) {
            return Err(PeriodicError::BadJitter(jitter));
        }
        self.inner.jitter.set(jitter);
        Ok(self)
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.inner.given
    }

    /// Starts the schedule (first run one period from now). No-op if already running or
    /// if the loop is gone or closed. Called while a run is still going on (a `stop`
    /// then `start` from inside an async callback), the first run of the new schedule
    /// waits for that run's end, at the first point of the new schedule after it.
    pub fn start(&self) {
        let p = &self.inner;
        if p.running.get() {
            return;
        }
        p.running.set(true);
        p.next.set(clock::time());
        if !p.in_flight.get() {
            Periodic::schedule_next(p);
        }
    }

    /// Stops the schedule; a run already due is not made.
    pub fn stop(&self) {
        let p = &self.inner;
        p.running.set(false);
        if let (Some(t), Some(inner)) = (p.timeout.take(), p.io_loop.upgrade()) {
            IoLoop { inner }.remove_timeout(t);
        }
    }

    /// Whether the schedule is running: started, not stopped, and its loop neither
    /// closed nor dropped.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
            && self
                .inner
                .io_loop
                .upgrade()
                .is_some_and(|l| !l.closed.get())
    }
}

impl Periodic {
    fn schedule_next(this: &Rc<Periodic>) {
        if !this.running.get() {
            return;
        }
        let Some(inner) = this.io_loop.upgrade().filter(|l| !l.closed.get()) else {
            this.running.set(false);
            return;
        };
        let r = this.random();
        let next = next_run(
            this.next.get(),
            clock::time(),
            this.period,
            this.jitter.get(),
            r,
        );
        this.next.set(next);
        let me = this.clone();
        let t = IoLoop { inner }.call_at(clock::instant_at(next), move || Periodic::run(&me));
        this.timeout.set(Some(t));
    }

    fn run(this: &Rc<Periodic>) {
        this.timeout.set(None);
        if !this.running.get() {
            return;
        }
        this.in_flight.set(true);
        let taken = this.callback.borrow_mut().take();
        let mut pending = None;
        if let Some(mut f) = taken {
            match catch_unwind(AssertUnwindSafe(&mut f)) {
                Ok(future) => pending = future,
                Err(p) => crate::fault::log_panic(Some("a periodic callback"), this.origin, p),
            }
            let mut slot = this.callback.borrow_mut();
            if slot.is_none() {
                *slot = Some(f);
            }
        }
        let (Some(mut future), Some(inner)) = (pending, this.io_loop.upgrade()) else {
            Periodic::ran(this);
            return;
        };
        // The next run is scheduled once this one's future is done.
        let me = this.clone();
        let origin = this.origin;
        let task = async move {
            let outcome =
                poll_fn(
                    |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => Poll::Pending,
                        Ok(Poll::Ready(())) => Poll::Ready(None),
                        Err(p) => Poll::Ready(Some(p)),
                    },
                )
                .await;
            let dropped = catch_unwind(AssertUnwindSafe(move || drop(future)));
            if let Some(p) = outcome.or(dropped.err()) {
                crate::fault::log_panic(Some("a periodic callback"), origin, p);
            }
            Periodic::ran(&me);
        };
        drop(IoLoop { inner }.spawn_task::<()>(Box::pin(task), origin, false, true, false));
    }

    /// A run is over: schedules the next one (from the schedule's start: a `stop`
    /// then `start` during the run restarted it from that moment).
    fn ran(this: &Rc<Periodic>) {
        this.in_flight.set(false);
        if this.timeout.get().is_none() {
            Periodic::schedule_next(this);
        }
    }

    /// xorshift64*, seeded from std's random hasher keys: enough for jitter.
    fn random(&self) -> f64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The schedule math (Tornado's `PeriodicCallback._update_next`), in seconds: given the
/// due time of the run that just happened (`next`), the time now, the period, the
/// jitter and a random number in `[0, 1)`, when the next run is due.
///
/// If `next` has passed, the next run is the first point after `now` on the grid
/// `next + k * period` (skipping missed runs); if the clock is behind `next` (it went
/// backwards), the schedule simply advances one period.
pub(crate) fn next_run(next: f64, now: f64, period: f64, jitter: f64, random: f64) -> f64 {
    let mut period = period;
    if jitter != 0.0 {
        period *= 1.0 + jitter * (random - 0.5);
    }
    if next <= now {
        next + ((now - next) / period).floor() * period + period
    } else {
        next + period
    }
}

impl fmt::Debug for PeriodicCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeriodicCallback")
            .field("period", &self.period())
            .field("jitter", &self.inner.jitter.get())
            .field("running", &self.is_running())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    //! Tornado's `TestPeriodicCallbackMath`, on the pure schedule function.
    use super::next_run;

    /// The due times of successive runs, given how long each run takes (negative
    /// durations stand for the clock going backwards during the run).
    fn simulate(period: f64, jitter: f64, durations: &[f64], randoms: &[f64]) -> Vec<f64> {
        let mut calls = Vec::new();
        let mut now = 1000.0;
        let mut next = now;
        for (i, d) in durations.iter().enumerate() {
            next = next_run(
                next,
                now,
                period,
                jitter,
                randoms.get(i).copied().unwrap_or(0.5),
            );
            calls.push(next);
            now = next + d;
        }
        calls
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn test_basic() {
        let got = simulate(10.0, 0.0, &[0.0; 5], &[]);
        assert!(
            close(&got, &[1010.0, 1020.0, 1030.0, 1040.0, 1050.0]),
            "{got:?}"
        );
    }

    #[test]
    fn test_overrun() {
        // A run that overruns skips whole periods to get back on the grid.
        let durations = [9.0, 9.0, 10.0, 11.0, 20.0, 20.0, 35.0, 35.0, 0.0, 0.0, 0.0];
        let expected = [
            1010.0, 1020.0, 1030.0, // on schedule
            1050.0, 1070.0, // one period late
            1100.0, 1130.0, // two
            1170.0, 1210.0, // three
            1220.0, 1230.0, // back on schedule
        ];
        let got = simulate(10.0, 0.0, &durations, &[]);
        assert!(close(&got, &expected), "{got:?}");
    }

    #[test]
    fn test_clock_backwards() {
        let got = simulate(10.0, 0.0, &[-2.0, -1.0, -3.0, -2.0, 0.0], &[]);
        assert!(
            close(&got, &[1010.0, 1020.0, 1030.0, 1040.0, 1050.0]),
            "{got:?}"
        );
        let got = simulate(10.0, 0.0, &[-100.0, 0.0, 0.0], &[]);
        assert!(close(&got, &[1010.0, 1020.0, 1030.0]), "{got:?}");
    }

    #[test]
    fn test_jitter() {
        let got = simulate(10.0, 0.5, &[0.0; 4], &[0.5, 1.0, 0.0, 0.75]);
        assert!(close(&got, &[1010.0, 1022.5, 1030.0, 1041.25]), "{got:?}");
    }

    #[test]
    fn jitter_bounds() {
        // Every jittered period lies within period * (1 +- jitter / 2).
        for &j in &[0.1, 0.5, 1.0] {
            for i in 0..=100 {
                let r = f64::from(i) / 100.0;
                let p = next_run(0.0, 0.0, 10.0, j, r);
                assert!(p >= 10.0 * (1.0 - j / 2.0) - 1e-9 && p <= 10.0 * (1.0 + j / 2.0) + 1e-9);
            }
        }
    }

    #[test]
    fn random_is_in_unit_interval() {
        let pc = super::Periodic {
            io_loop: std::rc::Weak::new(),
            callback: std::cell::RefCell::new(None),
            given: std::time::Duration::from_secs(1),
            period: 1.0,
            jitter: std::cell::Cell::new(0.0),
            running: std::cell::Cell::new(false),
            in_flight: std::cell::Cell::new(false),
            next: std::cell::Cell::new(0.0),
            timeout: std::cell::Cell::new(None),
            rng: std::cell::Cell::new(0x1234_5678_9abc_def1),
            origin: std::panic::Location::caller(),
        };
        for _ in 0..10_000 {
            let r = pc.random();
            assert!((0.0..1.0).contains(&r), "{r}");
        }
    }
}
