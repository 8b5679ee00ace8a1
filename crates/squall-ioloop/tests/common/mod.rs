//! Test support: a logger that captures records, and a guarded `start`.

#![allow(dead_code)]

use std::sync::{Mutex, OnceLock};
use std::thread::{self, ThreadId};
use std::time::Duration;

use squall_ioloop::IoLoop;

/// How long a test waits for something that must happen: generous, never a timing
/// assertion.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

struct Capture {
    records: Mutex<Vec<(ThreadId, log::Level, String)>>,
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{}", record.args());
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((thread::current().id(), record.level(), line));
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture {
            records: Mutex::new(Vec::new()),
        }));
        log::set_logger(c).expect("the test logger is the only logger");
        log::set_max_level(log::LevelFilter::Trace);
        c
    })
}

/// Installs the capturing logger (idempotent).
pub(crate) fn init_logging() {
    capture();
}

/// The records logged by this thread so far, at `level` or more severe.
pub(crate) fn logs_here(level: log::Level) -> Vec<String> {
    let me = thread::current().id();
    capture()
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(t, l, _)| *t == me && *l <= level)
        .map(|(_, _, m)| m.clone())
        .collect()
}

/// Every record logged by any thread so far that contains `needle`.
pub(crate) fn logs_containing(needle: &str) -> Vec<String> {
    capture()
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(_, _, m)| m.contains(needle))
        .map(|(_, _, m)| m.clone())
        .collect()
}

/// Runs the loop with a safety timer: panics if the loop was still running after
/// [`PATIENCE`] (the test's own stop never came).
pub(crate) fn start_guarded(l: &IoLoop) {
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
