//! Shared by the fault tests: a `log` logger that keeps every record with the thread
//! that logged it, and a condition wait with a generous deadline.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Condvar, Mutex, Once};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// One captured log record.
#[derive(Debug, Clone)]
pub struct Captured {
    pub level: Level,
    pub target: String,
    pub thread: ThreadId,
    pub message: String,
}

struct Capture {
    records: Mutex<Vec<Captured>>,
    changed: Condvar,
}

static CAPTURE: Capture = Capture {
    records: Mutex::new(Vec::new()),
    changed: Condvar::new(),
};

impl Log for Capture {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= Level::Info
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) || r.target() == squall_httpserver::ACCESS_LOG_TARGET {
            return;
        }
        let rec = Captured {
            level: r.level(),
            target: r.target().to_owned(),
            thread: std::thread::current().id(),
            message: r.args().to_string(),
        };
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rec);
        self.changed.notify_all();
    }

    fn flush(&self) {}
}

/// Installs the capturing logger (once per test binary; records at info and above,
/// except the access log).
pub fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(LevelFilter::Info);
    });
}

/// Every record logged so far by `thread`.
pub fn records_of(thread: ThreadId) -> Vec<Captured> {
    CAPTURE
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|r| r.thread == thread)
        .cloned()
        .collect()
}

/// Waits until a record logged by `thread` satisfies `pred`, up to `timeout`.
pub fn wait_for_record(
    thread: ThreadId,
    timeout: Duration,
    pred: impl Fn(&Captured) -> bool,
) -> Option<Captured> {
    let deadline = Instant::now() + timeout;
    let mut records = CAPTURE.records.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(r) = records.iter().find(|r| r.thread == thread && pred(r)) {
            return Some(r.clone());
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        records = CAPTURE
            .changed
            .wait_timeout(records, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held. For state
/// that has no event to wait on (a counter of another thread).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
