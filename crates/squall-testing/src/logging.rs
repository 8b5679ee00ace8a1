//! A `log` logger that keeps every record, and [`ExpectLog`] to assert on them.

use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// One captured log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Its level.
    pub level: Level,
    /// Its target (the module path unless the call named one).
    pub target: String,
    /// The thread that logged it.
    pub thread: ThreadId,
    /// The formatted message.
    pub message: String,
}

impl Captured {
    /// Whether this record is from a target starting with `target`, holds `needle`
    /// and, if `level` is given, was logged at that level: what an [`ExpectLog`] waits
    /// for.
    fn matches(&self, expected: &Expected) -> bool {
        self.target.starts_with(&expected.target)
            && self.message.contains(&expected.needle)
            && expected.level.is_none_or(|l| l == self.level)
    }
}

struct Capture {
    records: Mutex<Vec<Captured>>,
    changed: Condvar,
    /// The live [`ExpectLog`]s, by id.
    expecting: Mutex<Vec<(u64, Expected)>>,
}

/// What an [`ExpectLog`] matches.
#[derive(Debug, Clone)]
struct Expected {
    /// The target prefix.
    target: String,
    /// The substring of the message.
    needle: String,
    /// The one level that counts, if any.
    level: Option<Level>,
}

static CAPTURE: Capture = Capture {
    records: Mutex::new(Vec::new()),
    changed: Condvar::new(),
    expecting: Mutex::new(Vec::new()),
};

/// Ids of [`ExpectLog`]s.
static NEXT_EXPECTATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn expecting() -> MutexGuard<'static, Vec<(u64, Expected)>> {
    CAPTURE.expecting.lock().unwrap_or_else(|e| e.into_inner())
}

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let rec = Captured {
            level: r.level(),
            target: r.target().to_owned(),
            thread: std::thread::current().id(),
            message: r.args().to_string(),
        };
        // A warning or an error no live ExpectLog is waiting for stays visible (on
        // stderr, which the test harness shows with a failing test), as Tornado's
        // ExpectLog hides only the lines it matches.
        if rec.level <= Level::Warn
            && !expecting()
                .iter()
                .any(|(_, expected)| rec.matches(expected))
        {
            // tidy: allow(print) this is the logger: its own lines cannot go through `log`
            eprintln!("{} {}: {}", rec.level, rec.target, rec.message);
        }
        lock().push(rec);
        self.changed.notify_all();
    }

    fn flush(&self) {}
}

fn lock() -> MutexGuard<'static, Vec<Captured>> {
    CAPTURE.records.lock().unwrap_or_else(|e| e.into_inner())
}

/// Install the capturing logger for this test binary at `level` (the first call wins;
/// later calls do nothing).
///
/// # Panics
/// If another logger was installed first: a test binary has one logger.
pub fn install_logger_at(level: LevelFilter) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("the capturing logger is the only logger");
        log::set_max_level(level);
    });
}

/// Install the capturing logger at `Trace` (idempotent).
pub fn install_logger() {
    install_logger_at(LevelFilter::Trace);
}

/// Every record captured so far.
pub fn records() -> Vec<Captured> {
    lock().clone()
}

/// Every record logged so far by `thread`.
pub fn records_of(thread: ThreadId) -> Vec<Captured> {
    lock()
        .iter()
        .filter(|r| r.thread == thread)
        .cloned()
        .collect()
}

/// The messages logged by the calling thread so far, at `level` or more severe.
pub fn logs_here(level: Level) -> Vec<String> {
    let me = std::thread::current().id();
    lock()
        .iter()
        .filter(|r| r.thread == me && r.level <= level)
        .map(|r| r.message.clone())
        .collect()
}

/// Every message logged by any thread so far that contains `needle`.
pub fn logs_containing(needle: &str) -> Vec<String> {
    lock()
        .iter()
        .filter(|r| r.message.contains(needle))
        .map(|r| r.message.clone())
        .collect()
}

/// Wait until a record logged by `thread` satisfies `pred`, up to `timeout`.
pub fn wait_for_record(
    thread: ThreadId,
    timeout: Duration,
    pred: impl Fn(&Captured) -> bool,
) -> Option<Captured> {
    let deadline = Instant::now() + timeout;
    let mut records = lock();
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

/// Poll `cond` until it holds or `timeout` passes; returns whether it held. For state
/// that has no event to wait on (a counter kept by another thread).
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

/// Assert that a log line is (or is not) written while the guard lives. Tornado's
/// `ExpectLog(logger, regex, required=True)`.
///
/// It watches the records logged by any thread after it was made, whose target starts
/// with `target` (`""` for any) and whose message contains `needle`. When the guard
/// is dropped (or [`check`](ExpectLog::check)ed) with `required` on and no such line
/// logged, the test fails; [`forbid`](ExpectLog::forbid) turns it around. The logger
/// is installed if it was not.
///
/// ```
/// use squall_testing::ExpectLog;
///
/// let expect = ExpectLog::new("my_app", "connection reset");
/// log::warn!(target: "my_app::conn", "connection reset by peer");
/// assert_eq!(expect.check(), 1);
///
/// let quiet = ExpectLog::new("my_app", "panic").forbid();
/// log::info!(target: "my_app", "all is well");
/// quiet.check();
/// ```
#[derive(Debug)]
#[must_use = "the expectation is checked when the guard is dropped"]
pub struct ExpectLog {
    id: u64,
    expected: Expected,
    start: usize,
    required: bool,
    forbidden: bool,
    checked: bool,
}

impl ExpectLog {
    /// Expect a line with `needle` from a target starting with `target`.
    pub fn new(target: &str, needle: &str) -> ExpectLog {
        install_logger();
        let id = NEXT_EXPECTATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let expected = Expected {
            target: target.to_owned(),
            needle: needle.to_owned(),
            level: None,
        };
        expecting().push((id, expected.clone()));
        ExpectLog {
            id,
            expected,
            start: lock().len(),
            required: true,
            forbidden: false,
            checked: false,
        }
    }

    /// Whether a matching line must be written (default true). Tornado's `required`.
    pub fn required(mut self, required: bool) -> ExpectLog {
        self.required = required;
        self
    }

    /// Count only lines logged at exactly `level` (Tornado's `level=`): a line that
    /// matches at another level is not counted (and a warning or an error stays visible
    /// on stderr). If the `log` crate's maximum level would skip `level` (after
    /// [`install_logger_at`] with a quieter one), it is raised to `level` and left so.
    pub fn level(mut self, level: Level) -> ExpectLog {
        if log::max_level() < level {
            log::set_max_level(level.to_level_filter());
        }
        self.expected.level = Some(level);
        if let Some((_, e)) = expecting().iter_mut().find(|(id, _)| *id == self.id) {
            e.level = Some(level);
        }
        self
    }

    /// Fail if a matching line is written.
    pub fn forbid(mut self) -> ExpectLog {
        self.forbidden = true;
        self.required = false;
        self
    }

    /// The matching lines written so far.
    pub fn matched(&self) -> Vec<Captured> {
        lock()[self.start..]
            .iter()
            .filter(|r| r.matches(&self.expected))
            .cloned()
            .collect()
    }

    /// Check the expectation now and return how many lines matched.
    ///
    /// # Panics
    /// If a required line was not logged, or a forbidden one was.
    pub fn check(mut self) -> usize {
        self.checked = true;
        self.verdict()
    }

    fn verdict(&self) -> usize {
        let matched = self.matched();
        if self.required && matched.is_empty() {
            panic!(
                "ExpectLog: did not get expected log message {:?} from target {:?}{}",
                self.expected.needle,
                self.expected.target,
                self.expected
                    .level
                    .map_or_else(String::new, |l| format!(" at level {l}"))
            );
        }
        if self.forbidden && !matched.is_empty() {
            panic!(
                "ExpectLog: got forbidden log message {:?} from target {:?}: {:?}",
                self.expected.needle, self.expected.target, matched[0].message
            );
        }
        matched.len()
    }
}

impl Drop for ExpectLog {
    fn drop(&mut self) {
        expecting().retain(|(id, _)| *id != self.id);
        if !self.checked && !std::thread::panicking() {
            self.verdict();
        }
    }
}
