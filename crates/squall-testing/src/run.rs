//! Running async tests on a loop: one backend or every backend, with a timeout.

use std::future::Future;
use std::time::Duration;

use squall_ioloop::{IoLoop, RunSyncError};

/// The poller backends this platform has, native first: epoll on Linux, kqueue on
/// macOS and FreeBSD; then poll(2) and select(2), which exist everywhere.
///
/// poll and select pass the poller conformance suite on Linux only: on macOS (and BSD
/// kernels that behave alike) they cannot report a refused connect as ERROR without
/// consuming the socket error; squall's streams read `SO_ERROR` on any readiness of a
/// connecting socket, so stream-level tests hold on every backend.
pub const BACKENDS: &[&str] = &[NATIVE, "poll", "select"];

squall_poller::cfg_epoll! {
    const NATIVE: &str = "epoll";
}
squall_poller::cfg_kqueue! {
    const NATIVE: &str = "kqueue";
}
squall_poller::cfg_not_epoll! {
    squall_poller::cfg_not_kqueue! {
        const NATIVE: &str = "poll";
    }
}

/// How long a test may wait for something that must happen: generous (20 s), never a
/// timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The timeout of a [`gen_test`](crate::gen_test) without its own: `ASYNC_TEST_TIMEOUT`
/// seconds from the environment (Tornado's variable), else 10 s. A value too large for
/// a [`Duration`] (`inf`, `1e30`) means no timeout in practice; one that is not a
/// number of seconds (negative, NaN, text) is ignored, as Tornado ignores text.
pub fn default_timeout() -> Duration {
    timeout_from(std::env::var("ASYNC_TEST_TIMEOUT").ok().as_deref())
}

/// [`default_timeout`] for the variable's value.
fn timeout_from(value: Option<&str>) -> Duration {
    let secs = value.and_then(|v| v.trim().parse::<f64>().ok());
    match secs {
        Some(s) if s >= 0.0 => Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX),
        _ => Duration::from_secs(10),
    }
}

/// A loop over the named backend (`"epoll"`, `"kqueue"`, `"poll"` or `"select"`).
///
/// # Panics
/// If the backend does not exist here or cannot be created: a test setup failure.
pub fn new_loop(poller: &str) -> IoLoop {
    let p = squall_ioloop::poller_by_name(poller).unwrap_or_else(|e| panic!("{poller}: {e}"));
    IoLoop::with_poller(p).unwrap_or_else(|e| panic!("a loop over {poller}: {e}"))
}

fn run_on_loop<F, Fut>(
    io_loop: IoLoop,
    name: &str,
    timeout: Option<Duration>,
    make: F,
) -> Fut::Output
where
    F: FnOnce() -> Fut,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    /// Closes the loop however the test ends (Tornado's `tearDown` always does): a
    /// task that kept the loop (`IoLoop::current()`) would otherwise keep it, and every
    /// fd it owns, alive after a failed or timed-out test.
    struct CloseOnUnwind<'a>(&'a IoLoop);
    impl Drop for CloseOnUnwind<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = self.0.close(true);
            }
        }
    }
    let _close = CloseOnUnwind(&io_loop);
    let timeout = timeout.unwrap_or_else(default_timeout);
    let future = make();
    let out = match io_loop.run_sync(future, Some(timeout)) {
        Ok(v) => v,
        Err(RunSyncError::Timeout(t)) => panic!(
            "test {name} timed out after {t:?} on the {} poller (Tornado: \"Async operation timed out\"); \
             raise it with #[gen_test(timeout = <seconds>)] or ASYNC_TEST_TIMEOUT",
            io_loop.poller_name()
        ),
        Err(e) => panic!("test {name}: the loop failed: {e}"),
    };
    if let Err(e) = io_loop.close(true) {
        panic!("test {name}: closing the loop failed: {e}");
    }
    out
}

/// Run the future `make` returns on a fresh loop (the `SQUALL_POLLER` backend, else the
/// platform's), failing the test with a clear message after `timeout` (or
/// [`default_timeout`]). What [`gen_test`](crate::gen_test) expands to.
///
/// # Panics
/// On timeout, or if the loop cannot be created or fails: the test fails.
pub fn run_test<F, Fut>(name: &str, timeout: Option<Duration>, make: F) -> Fut::Output
where
    F: FnOnce() -> Fut,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    let io_loop = IoLoop::new().unwrap_or_else(|e| panic!("test {name}: no loop: {e}"));
    run_on_loop(io_loop, name, timeout, make)
}

/// Run the test once per backend of [`BACKENDS`], each on a fresh loop; the first
/// failure (a panic, a timeout or an `Err`) ends the run and fails the test naming the
/// backend. What `#[gen_test(backends)]` expands to.
///
/// # Panics
/// As [`run_test`]; on an `Err`, with the backend and the error.
pub fn run_test_on_every_backend<F, Fut>(
    name: &str,
    timeout: Option<Duration>,
    make: F,
) -> Fut::Output
where
    F: Fn() -> Fut,
    Fut: Future + 'static,
    Fut::Output: TestOutput + 'static,
{
    for backend in BACKENDS {
        let label = format!("{name} [{backend}]");
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_on_loop(new_loop(backend), &label, timeout, &make)
        }));
        let output = match run {
            Ok(output) => output,
            // A panic (a failed assert) names the backend it failed on, as a timeout
            // and an `Err` do; a payload that is not text goes on as it was.
            Err(payload) => match squall_ioloop::panic_text(&*payload) {
                Some(text) => panic!("test {label} failed: {text}"),
                None => std::panic::resume_unwind(payload),
            },
        };
        if let Err(e) = output.into_result() {
            panic!("test {label} failed: {e}");
        }
    }
    Fut::Output::passed()
}

/// What a test function may return: `()` or a `Result` whose error prints.
pub trait TestOutput {
    /// The value of a test that passed.
    fn passed() -> Self;
    /// `Err` with the error's description if the test failed.
    ///
    /// # Errors
    /// The test's error, as text.
    fn into_result(self) -> Result<(), String>;
}

impl TestOutput for () {
    fn passed() -> Self {}
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Debug> TestOutput for Result<(), E> {
    fn passed() -> Self {
        Ok(())
    }
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Run `f()` to completion on a fresh loop over `poller` with a generous timeout
/// ([`PATIENCE`] plus 10 s), and close the loop.
///
/// # Panics
/// On timeout or a loop failure.
pub fn run_on<F, Fut>(poller: &str, f: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let label = format!("on {poller}");
    run_on_loop(
        new_loop(poller),
        &label,
        Some(PATIENCE + Duration::from_secs(10)),
        f,
    )
}

/// Run `f()` on every backend of [`BACKENDS`] in turn, a fresh loop each.
pub fn for_each_backend<F, Fut>(f: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    for backend in BACKENDS {
        run_on(backend, &f);
    }
}

/// Instantiate every listed `async fn` test once per backend: a module per backend
/// (`epoll`/`kqueue`, `poll`, `select`) with one `#[test]` per function, so a failure
/// names both. The functions take no arguments and return `()`.
///
/// ```
/// async fn echo_works() {}
/// squall_testing::backend_tests!(echo_works);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $crate::__squall_poller::cfg_epoll! {
            mod epoll {
                $( #[test] fn $name() { $crate::run_on("epoll", super::$name) } )*
            }
        }
        $crate::__squall_poller::cfg_kqueue! {
            mod kqueue {
                $( #[test] fn $name() { $crate::run_on("kqueue", super::$name) } )*
            }
        }
        mod poll {
            $( #[test] fn $name() { $crate::run_on("poll", super::$name) } )*
        }
        mod select {
            $( #[test] fn $name() { $crate::run_on("select", super::$name) } )*
        }
    };
}

/// Run the loop with a safety timer: panics if the loop was still running after
/// [`PATIENCE`] (the test's own `stop` never came).
///
/// # Panics
/// If the guard fired, or `start` failed.
pub fn start_guarded(l: &IoLoop) {
    let fired = std::rc::Rc::new(std::cell::Cell::new(false));
    let (f, lp) = (fired.clone(), l.clone());
    let guard = l.call_later(PATIENCE, move || {
        f.set(true);
        lp.stop();
    });
    l.start().expect("start");
    l.remove_timeout(guard);
    assert!(
        !fired.get(),
        "the loop was never stopped (guard timer fired)"
    );
}

#[cfg(test)]
mod tests {
    use super::timeout_from;
    use std::time::Duration;

    /// GenTest's ASYNC_TEST_TIMEOUT, on the parsing alone (the variable is process-wide).
    #[test]
    fn async_test_timeout_values() {
        let ten = Duration::from_secs(10);
        assert_eq!(timeout_from(None), ten);
        assert_eq!(timeout_from(Some(" 0.5 ")), Duration::from_millis(500));
        assert_eq!(timeout_from(Some("30")), Duration::from_secs(30));
        // Larger than a Duration holds: the longest timeout, not the default.
        assert_eq!(timeout_from(Some("1e30")), Duration::MAX);
        assert_eq!(timeout_from(Some("inf")), Duration::MAX);
        for ignored in ["", "soon", "-1", "NaN"] {
            assert_eq!(timeout_from(Some(ignored)), ten, "{ignored:?}");
        }
    }
}
