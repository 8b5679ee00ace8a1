//! [`LoopLogger`]: a [`log`] logger whose lines cost no syscall each on a loop thread.
//!
//! A server that logs every request (an access log) with a logger that writes each
//! line at once spends a `write(2)` per request, as much as the request itself. This
//! logger formats each record into a buffer of the thread that logged it; on a thread
//! whose [`IoLoop`](crate::IoLoop) is running, the buffer is written once per loop
//! iteration (just before the loop waits for I/O) or as soon as it holds
//! [`FLUSH_AT`] bytes. On any other thread every record is written at once.
//!
//! Nothing is lost and order is kept:
//!
//! - one thread's lines reach the sink in the order they were logged, each flush in one
//!   `write_all` of whole lines under the sink's lock (lines of different threads never
//!   interleave within a line);
//! - the buffer is written before the loop blocks, when the loop stops (also when
//!   `start` unwinds from a panic), when the thread exits, on `log::logger().flush()`
//!   and on [`flush`], and, once [`LoopLogger::init`] installed its panic hook, before
//!   a panic message is printed, so the lines logged before a panic come before it.
//!
//! Which records are kept is said the way `env_logger`'s `RUST_LOG` says it (see
//! [`Filter`]).
//!
//! ```
//! use squall_ioloop::logger::{Filter, LoopLogger};
//!
//! let filter = Filter::from_env("RUST_LOG", "info")?; // RUST_LOG if set, else "info"
//! LoopLogger::new(filter).init().expect("the first logger of this process");
//! log::info!(target: "my_app", "logged on one line, at once: no loop runs here");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// A thread's buffer is written as soon as it holds this many bytes, without waiting
/// for the end of the loop iteration.
pub const FLUSH_AT: usize = 32 * 1024;

/// A level for a target: one `target=level` item of a `RUST_LOG` value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    target: Option<String>,
    level: LevelFilter,
}

/// Which records a logger keeps, in `env_logger`'s `RUST_LOG` syntax: comma-separated
/// directives, each `level` (the default for every target), `target=level`, or a bare
/// `target` (every level of that target). A record is kept when its level is at most
/// the level of the longest directive whose target starts its target (`squall` covers
/// `squall_httpserver::access`), else the default's; without a default, records of
/// other targets are dropped. Levels are `off`, `error`, `warn`, `info`, `debug`,
/// `trace`, in any case. Spaces around items are ignored; empty items are skipped.
///
/// `env_logger`'s `/regex` message filter is not supported (a `/` is refused).
///
/// ```
/// use log::Level;
/// use squall_ioloop::logger::Filter;
///
/// let f = Filter::parse("warn,squall_httpserver::access=info")?;
/// assert!(f.enabled("squall_httpserver::access", Level::Info));
/// assert!(!f.enabled("squall_httpserver::access", Level::Debug));
/// assert!(!f.enabled("squall_httpserver", Level::Info));
/// assert!(f.enabled("squall_httpserver", Level::Warn));
/// # Ok::<(), squall_ioloop::logger::FilterError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Sorted by target length, longest first, so the first match is the most specific.
    directives: Vec<Directive>,
    default: LevelFilter,
}

/// A `RUST_LOG`-style value that [`Filter::parse`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterError {
    /// A directive's level is not one of `off`, `error`, `warn`, `info`, `debug`,
    /// `trace`.
    BadLevel {
        /// The directive, as written.
        directive: String,
    },
    /// A directive with more than one `=`, an empty target, or a `/regex` part.
    BadDirective {
        /// The directive, as written.
        directive: String,
    },
    /// The environment variable is set but is not Unicode.
    NotUnicode {
        /// The variable's name.
        var: String,
    },
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::BadLevel { directive } => write!(
                f,
                "log directive {directive:?}: the level is not one of off, error, warn, info, debug, trace"
            ),
            FilterError::BadDirective { directive } => write!(
                f,
                "log directive {directive:?}: expected `level`, `target` or `target=level` (no `/regex`)"
            ),
            FilterError::NotUnicode { var } => write!(f, "{var} is not valid Unicode"),
        }
    }
}

impl std::error::Error for FilterError {}

fn parse_level(s: &str) -> Option<LevelFilter> {
    s.parse().ok()
}

impl Filter {
    /// A filter keeping records up to `level` for every target.
    pub fn new(level: LevelFilter) -> Filter {
        Filter {
            directives: Vec::new(),
            default: level,
        }
    }

    /// Parses a `RUST_LOG`-style value (see the type's documentation).
    ///
    /// # Errors
    /// [`FilterError::BadLevel`] or [`FilterError::BadDirective`], naming the first
    /// directive that is not understood.
    pub fn parse(spec: &str) -> Result<Filter, FilterError> {
        let mut filter = Filter::new(LevelFilter::Off);
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || FilterError::BadDirective {
                directive: item.to_owned(),
            };
            if item.contains('/') {
                return Err(bad());
            }
            let mut parts = item.split('=');
            let first = parts.next().unwrap_or_default().trim();
            let second = parts.next().map(str::trim);
            if parts.next().is_some() || first.is_empty() {
                return Err(bad());
            }
            match second {
                None => match parse_level(first) {
                    // A bare level is the default; a bare name is a target at every level.
                    Some(level) => filter.default = level,
                    None => filter = filter.directive(first, LevelFilter::Trace),
                },
                Some(level) => {
                    let level = parse_level(level).ok_or_else(|| FilterError::BadLevel {
                        directive: item.to_owned(),
                    })?;
                    filter = filter.directive(first, level);
                }
            }
        }
        Ok(filter)
    }

    /// The filter the environment variable `var` says (`RUST_LOG`, usually), or
    /// `default` (same syntax) when it is unset or empty.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), for the variable's value or for `default`;
    /// [`FilterError::NotUnicode`] if the variable is not Unicode.
    pub fn from_env(var: &str, default: &str) -> Result<Filter, FilterError> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Filter::parse(&v),
            Ok(_) | Err(std::env::VarError::NotPresent) => Filter::parse(default),
            Err(std::env::VarError::NotUnicode(_)) => Err(FilterError::NotUnicode {
                var: var.to_owned(),
            }),
        }
    }

    /// This filter with `target` (and every target it starts) at `level`, replacing
    /// what the filter said for exactly that target.
    #[must_use]
    pub fn directive(mut self, target: &str, level: LevelFilter) -> Filter {
        self.directives
            .retain(|d| d.target.as_deref() != Some(target));
        self.directives.push(Directive {
            target: Some(target.to_owned()),
            level,
        });
        // Stable: equal lengths keep their order.
        self.directives
            .sort_by_key(|d| std::cmp::Reverse(d.target.as_ref().map_or(0, String::len)));
        self
    }

    /// The level kept for `target`.
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.directives
            .iter()
            .find(|d| d.target.as_deref().is_some_and(|t| target.starts_with(t)))
            .map_or(self.default, |d| d.level)
    }

    /// Whether a record of `target` at `level` is kept.
    pub fn enabled(&self, target: &str, level: Level) -> bool {
        level <= self.level_for(target)
    }

    /// The most verbose level any target keeps: what [`log::set_max_level`] should be
    /// told, so that the `log` macros skip the others without calling the logger.
    pub fn max_level(&self) -> LevelFilter {
        self.directives
            .iter()
            .map(|d| d.level)
            .fold(self.default, Ord::max)
    }
}

/// Where a logger's lines go, shared by the thread buffers that hold its lines.
struct Sink {
    out: Mutex<Box<dyn Write + Send>>,
    /// Bytes that could not be written (the sink failed), for [`LoopLogger::lost_bytes`].
    lost: AtomicU64,
}

impl Sink {
    fn write(&self, bytes: &[u8]) {
        // A poisoned lock only means another thread panicked while writing: the sink
        // itself is still usable.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
            // A logger has nowhere to report its own failure; count what was lost.
            self.lost.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
    }
}

/// `fmt::Write` straight into a byte buffer (`io::Write`'s adapter keeps error state we
/// do not need).
struct VecWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A thread's lines not yet written, and the sink they belong to.
struct Lines {
    buf: Vec<u8>,
    sink: Option<Arc<Sink>>,
    /// The `[LEVEL target] ` of the last line, and its level: a hot target (the
    /// access log) copies it whole.
    prefix: Vec<u8>,
    prefix_level: Level,
    /// The `'static` target (its address and length) and level that [`log_bytes`] last
    /// wrote, when `prefix` is still theirs and the filter keeps them: its next line
    /// skips both checks. Static text never changes, so the address names the text.
    hot: Option<(usize, usize, Level)>,
}

impl Lines {
    const fn new() -> Lines {
        Lines {
            buf: Vec::new(),
            sink: None,
            prefix: Vec::new(),
            prefix_level: Level::Error,
            hot: None,
        }
    }

    /// Appends `[LEVEL target] `, the body `line` writes, and a newline; the prefix is
    /// built once for a run of lines of one target.
    fn write_line(&mut self, level: Level, target: &str, line: impl FnOnce(&mut Vec<u8>)) {
        // `[` level ` ` target `] `: the kept prefix is this line's if its level and
        // target are.
        let kept = self.prefix_level == level
            && self
                .prefix
                .get(level.as_str().len() + 2..self.prefix.len().saturating_sub(2))
                == Some(target.as_bytes());
        if !kept {
            self.prefix.clear();
            LoopLogger::write_prefix(&mut self.prefix, level, target);
            self.prefix_level = level;
            self.hot = None;
        }
        self.write_body(line);
    }

    /// The kept prefix, the body `line` writes, and a newline.
    fn write_body(&mut self, line: impl FnOnce(&mut Vec<u8>)) {
        self.buf.extend_from_slice(&self.prefix);
        line(&mut self.buf);
        self.buf.push(b'\n');
    }

    fn flush(&mut self) {
        // `try_with`: a buffer of its own may be flushed while the thread exits.
        let _ = PENDING.try_with(|p| p.set(false));
        if self.buf.is_empty() {
            return;
        }
        if let Some(sink) = &self.sink {
            sink.write(&self.buf);
        }
        self.buf.clear();
        if self.buf.capacity() > 4 * FLUSH_AT {
            // A burst of huge records: let the memory go.
            self.buf.shrink_to(FLUSH_AT);
        }
    }
}

impl Drop for Lines {
    /// The thread exits: its lines are written.
    fn drop(&mut self) {
        self.flush();
    }
}

thread_local! {
    static LINES: RefCell<Lines> = const { RefCell::new(Lines::new()) };
    /// How many running loops on this thread will flush at their next iteration.
    static DEFER: Cell<u32> = const { Cell::new(0) };
    /// This thread's buffer holds lines (a cheap check for the loop).
    static PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Writes this thread's buffered lines now (a no-op when there are none).
pub fn flush() {
    if PENDING.try_with(Cell::get).unwrap_or(false) {
        let _ = LINES.try_with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                l.flush();
            }
        });
    }
}

/// Marks a thread whose loop is running: records are buffered until the loop's next
/// flush point. Dropping it writes what is buffered.
pub(crate) struct Deferred(());

impl Deferred {
    pub(crate) fn enter() -> Deferred {
        DEFER.set(DEFER.get() + 1);
        Deferred(())
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        let _ = DEFER.try_with(|d| d.set(d.get().saturating_sub(1)));
        flush();
    }
}

/// A [`log::Log`] that writes one line per record, `[LEVEL target] message`, to
/// standard error (or a sink of your own), buffered per thread and written once per
/// loop iteration on loop threads (see the [module documentation](self)).
pub struct LoopLogger {
    filter: Filter,
    sink: Arc<Sink>,
}

impl fmt::Debug for LoopLogger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopLogger")
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl LoopLogger {
    /// A logger writing to standard error the records `filter` keeps.
    pub fn new(filter: Filter) -> LoopLogger {
        LoopLogger::with_sink(filter, io::stderr())
    }

    /// A logger writing to `sink` (a file, a pipe, a test's buffer).
    pub fn with_sink(filter: Filter, sink: impl Write + Send + 'static) -> LoopLogger {
        LoopLogger {
            filter,
            sink: Arc::new(Sink {
                out: Mutex::new(Box::new(sink)),
                lost: AtomicU64::new(0),
            }),
        }
    }

    /// The filter this logger applies.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Bytes of log lines lost so far because the sink refused them (a closed standard
    /// error, a full disk).
    pub fn lost_bytes(&self) -> u64 {
        self.sink.lost.load(Ordering::Relaxed)
    }

    /// Makes this the process's logger ([`log::set_logger`], with
    /// [`log::set_max_level`] from the filter), and installs a panic hook that writes
    /// the panicking thread's buffered lines before the previous hook prints the panic.
    ///
    /// # Errors
    /// [`log::SetLoggerError`] if a logger was already set (nothing is changed then).
    pub fn init(self) -> Result<(), log::SetLoggerError> {
        let max = self.filter.max_level();
        // The process's logger lives as long as the process (`log` wants `&'static`).
        let logger: &'static LoopLogger = Box::leak(Box::new(self));
        log::set_logger(logger)?;
        let _ = INSTALLED.set(logger);
        log::set_max_level(max);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            flush();
            previous(info);
        }));
        Ok(())
    }

    /// `[LEVEL target] `.
    fn write_prefix(buf: &mut Vec<u8>, level: Level, target: &str) {
        buf.push(b'[');
        buf.extend_from_slice(level.as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(target.as_bytes());
        buf.push(b']');
        buf.push(b' ');
    }

    /// Appends one line to this thread's buffer, and writes the buffer if this thread
    /// runs no loop or the buffer is full. When the buffer is gone or busy (during
    /// thread exit, or for a record logged while another is being formatted), the line
    /// is written at once on its own.
    fn append(&self, level: Level, target: &str, line: impl FnOnce(&mut Vec<u8>)) {
        self.append_with(level, target, line, |l, level, target, line| {
            l.write_line(level, target, line);
        });
    }

    /// [`append`](Self::append) of a line whose target is `'static` text: the filter is
    /// asked, and the prefix built, only when the thread's last such line had another
    /// target or level (see [`Lines::hot`]).
    fn append_static(&self, level: Level, target: &'static str, line: impl FnOnce(&mut Vec<u8>)) {
        let key = (target.as_ptr() as usize, target.len(), level);
        self.append_with(level, target, line, |l, level, target, line| {
            if l.hot == Some(key) {
                l.write_body(line);
            } else if self.filter.enabled(target, level) {
                l.write_line(level, target, line);
                l.hot = Some(key);
            }
        });
    }

    /// Runs `write` on this thread's buffer (made this logger's first), then writes the
    /// buffer out if this thread runs no loop or it is full. When the buffer is gone or
    /// busy, `write` runs on a buffer of its own, written at once.
    fn append_with<F: FnOnce(&mut Vec<u8>)>(
        &self,
        level: Level,
        target: &str,
        line: F,
        write: impl FnOnce(&mut Lines, Level, &str, F),
    ) {
        let mut line = Some(line);
        let mut write = Some(write);
        let buffered = LINES.try_with(|lines| {
            let Ok(mut l) = lines.try_borrow_mut() else {
                return false;
            };
            let ours = l.sink.as_ref().is_some_and(|s| Arc::ptr_eq(s, &self.sink));
            if !ours {
                // Another logger's lines (tests, a logger replaced): theirs first.
                l.flush();
                l.sink = Some(self.sink.clone());
                l.hot = None;
            }
            if let (Some(line), Some(write)) = (line.take(), write.take()) {
                write(&mut l, level, target, line);
            }
            if DEFER.with(Cell::get) == 0 || l.buf.len() >= FLUSH_AT {
                l.flush();
            } else {
                PENDING.with(|p| p.set(true));
            }
            true
        });
        if !matches!(buffered, Ok(true)) {
            if let (Some(line), Some(write)) = (line, write) {
                let mut own = Lines::new();
                write(&mut own, level, target, line);
                self.sink.write(&own.buf);
            }
        }
    }
}

/// The logger [`LoopLogger::init`] installed, for [`log_bytes`].
static INSTALLED: OnceLock<&'static LoopLogger> = OnceLock::new();

/// A fast path around the `log` facade for a hot, fixed-format line (the HTTP access
/// log): when the process's logger is a [`LoopLogger`], the line is filtered as a
/// record of `target` at `level` would be, and `line` writes its text straight into the
/// thread's buffer, with no `fmt` machinery between. The target is `'static` text, so
/// a run of lines of one target asks the filter once. Returns `false` when another
/// logger (or none) is installed: the caller then logs the same text through `log`.
pub fn log_bytes(level: Level, target: &'static str, line: impl FnOnce(&mut Vec<u8>)) -> bool {
    let Some(logger) = INSTALLED.get() else {
        return false;
    };
    if level <= log::max_level() {
        logger.append_static(level, target, line);
    }
    true
}

thread_local! {
    /// [`enabled_static`]'s last answer on this thread: the target's address and
    /// length, the level, and whether the filter keeps it.
    static VERDICT: Cell<Option<(usize, usize, Level, bool)>> = const { Cell::new(None) };
}

/// Whether a record of `target` at `level` would be kept, asked the cheap way: when the
/// process's logger is a [`LoopLogger`], whose filter never changes once installed, the
/// thread keeps the filter's last answer for a `'static` target and level, and only
/// [`log::max_level`] (which anyone may lower) is read again; no dynamic call through
/// the `log` facade. `None` when another logger (or none) is installed: the caller
/// then asks `log::log_enabled!`. For a check made per request (is the access log on?).
pub fn enabled_static(level: Level, target: &'static str) -> Option<bool> {
    let logger = INSTALLED.get()?;
    if level > log::max_level() {
        return Some(false);
    }
    let (ptr, len) = (target.as_ptr() as usize, target.len());
    Some(VERDICT.with(|v| match v.get() {
        Some((p, l, lv, on)) if p == ptr && l == len && lv == level => on,
        _ => {
            let on = logger.filter.enabled(target, level);
            v.set(Some((ptr, len, level, on)));
            on
        }
    }))
}

impl Log for LoopLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata.target(), metadata.level())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let args = record.args();
        self.append(record.level(), record.target(), |buf| match args.as_str() {
            Some(s) => buf.extend_from_slice(s.as_bytes()),
            // Fails only if a Display impl of the message fails: the line is then cut
            // where it failed, and ended.
            None => drop(fmt::write(&mut VecWriter(buf), *args)),
        });
    }

    fn flush(&self) {
        flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IoLoop;
    use std::time::Duration;

    /// A sink that keeps what it is given, write by write.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Capture {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn writes(&self) -> usize {
            self.0.lock().unwrap().len()
        }
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().concat()).unwrap()
        }
    }

    fn info(logger: &LoopLogger, target: &str, msg: fmt::Arguments<'_>) {
        logger.log(
            &Record::builder()
                .level(Level::Info)
                .target(target)
                .args(msg)
                .build(),
        );
    }

    #[test]
    fn outside_a_loop_each_record_is_written_at_once() {
        let cap = Capture::default();
        let logger = LoopLogger::with_sink(Filter::new(LevelFilter::Info), cap.clone());
        info(&logger, "t", format_args!("one"));
        assert_eq!(cap.text(), "[INFO t] one\n");
        info(&logger, "t", format_args!("two"));
        assert_eq!(cap.writes(), 2);
        logger.log(
            &Record::builder()
                .level(Level::Debug)
                .target("t")
                .args(format_args!("dropped"))
                .build(),
        );
        assert_eq!(cap.writes(), 2, "debug is filtered out");
    }

    /// Lines logged during one loop iteration reach the sink in one write, in order,
    /// before the loop waits; nothing is written while the iteration runs.
    #[test]
    fn a_loop_iteration_writes_its_lines_once() {
        let cap = Capture::default();
        let logger = Arc::new(LoopLogger::with_sink(
            Filter::new(LevelFilter::Info),
            cap.clone(),
        ));
        let io_loop = IoLoop::new().unwrap();
        let (l, c) = (logger.clone(), cap.clone());
        let writes_during = io_loop
            .run_sync(
                async move {
                    for i in 0..100 {
                        info(&l, "access", format_args!("request {i}"));
                    }
                    let during = c.writes();
                    // The next iteration: the loop has flushed before polling.
                    crate::sleep(Duration::ZERO).await;
                    (during, c.writes())
                },
                Some(Duration::from_secs(30)),
            )
            .unwrap();
        assert_eq!(writes_during, (0, 1));
        let expected: String = (0..100)
            .map(|i| format!("[INFO access] request {i}\n"))
            .collect();
        assert_eq!(cap.text(), expected);
    }

    /// The kept `[LEVEL target] ` prefix is only reused for the same level and
    /// target: lines of other targets (one a prefix of another, one of the same length)
    /// and levels, interleaved in one buffer, each get their own.
    #[test]
    fn each_line_has_its_own_level_and_target() {
        let text = logged_on_a_loop(Filter::new(LevelFilter::Info), |l| {
            let owned = String::from("acc");
            for (level, target) in [
                (Level::Info, "access"),
                (Level::Info, "access"),
                (Level::Warn, "access"),
                (Level::Info, "acces"),
                (Level::Info, "accesz"),
                (Level::Info, owned.as_str()),
                (Level::Info, "access"),
            ] {
                l.log(
                    &Record::builder()
                        .level(level)
                        .target(target)
                        .args(format_args!("x"))
                        .build(),
                );
            }
        });
        assert_eq!(
            text,
            "[INFO access] x\n[INFO access] x\n[WARN access] x\n[INFO acces] x\n\
             [INFO accesz] x\n[INFO acc] x\n[INFO access] x\n"
        );
    }

    #[test]
    fn static_target_lines_mix_with_records_and_keep_the_filter() {
        let text = logged_on_a_loop(Filter::parse("info,quiet=warn").unwrap(), |l| {
            let body =
                |text: &'static str| move |b: &mut Vec<u8>| b.extend_from_slice(text.as_bytes());
            l.append_static(Level::Info, "access", body("1"));
            l.append_static(Level::Info, "access", body("2"));
            // A record of another target between two lines of the hot one.
            l.log(
                &Record::builder()
                    .level(Level::Info)
                    .target("app")
                    .args(format_args!("3"))
                    .build(),
            );
            l.append_static(Level::Info, "access", body("4"));
            l.append_static(Level::Warn, "access", body("5"));
            // Filtered out, however often it comes, and the hot target after it is
            // still checked and written.
            l.append_static(Level::Info, "quiet", |_| unreachable!());
            l.append_static(Level::Info, "quiet", |_| unreachable!());
            l.append_static(Level::Warn, "quiet", body("6"));
            l.append_static(Level::Info, "access", body("7"));
        });
        assert_eq!(
            text,
            "[INFO access] 1\n[INFO access] 2\n[INFO app] 3\n[INFO access] 4\n\
             [WARN access] 5\n[WARN quiet] 6\n[INFO access] 7\n"
        );
    }

    /// What reaches the sink of a logger keeping what `filter` keeps, when `body` logs
    /// through it inside a running loop (lines buffered, then written at the loop's
    /// flush points).
    fn logged_on_a_loop(filter: Filter, body: impl FnOnce(&LoopLogger) + 'static) -> String {
        let cap = Capture::default();
        let logger = LoopLogger::with_sink(filter, cap.clone());
        IoLoop::new()
            .unwrap()
            .run_sync(async move { body(&logger) }, Some(Duration::from_secs(30)))
            .unwrap();
        cap.text()
    }

    #[test]
    fn a_full_buffer_is_written_without_waiting() {
        let cap = Capture::default();
        let logger = LoopLogger::with_sink(Filter::new(LevelFilter::Info), cap.clone());
        let _deferred = Deferred::enter();
        let long = "x".repeat(1000);
        for _ in 0..(FLUSH_AT / 1000 + 1) {
            info(&logger, "t", format_args!("{long}"));
        }
        assert_eq!(cap.writes(), 1, "the buffer reached FLUSH_AT");
        info(&logger, "t", format_args!("tail"));
        assert_eq!(cap.writes(), 1);
        drop(_deferred);
        assert_eq!(cap.writes(), 2, "leaving the loop writes the rest");
        assert!(cap.text().ends_with("[INFO t] tail\n"));
    }

    /// A thread that exits (here by a panic that unwinds out of its loop) writes what
    /// it buffered; nothing is lost.
    #[test]
    fn lines_survive_a_panic_and_thread_exit() {
        let cap = Capture::default();
        let logger = Arc::new(LoopLogger::with_sink(
            Filter::new(LevelFilter::Info),
            cap.clone(),
        ));
        let l = logger.clone();
        let joined = std::thread::spawn(move || {
            let io_loop = IoLoop::new().unwrap();
            let _ = io_loop.run_sync(
                async move {
                    info(&l, "t", format_args!("before the panic"));
                    panic!("boom");
                },
                Some(Duration::from_secs(30)),
            );
        })
        .join();
        assert!(joined.is_err(), "run_sync resumes the task's panic");
        assert_eq!(cap.text(), "[INFO t] before the panic\n");

        // A thread that never left its buffer's deferral: the thread-local's drop.
        let l = logger.clone();
        std::thread::spawn(move || {
            let d = Deferred::enter();
            info(&l, "t", format_args!("at exit"));
            std::mem::forget(d);
        })
        .join()
        .unwrap();
        assert!(cap.text().ends_with("[INFO t] at exit\n"), "{}", cap.text());
    }

    #[test]
    fn two_loggers_on_one_thread_keep_their_lines_apart() {
        let (a, b) = (Capture::default(), Capture::default());
        let la = LoopLogger::with_sink(Filter::new(LevelFilter::Info), a.clone());
        let lb = LoopLogger::with_sink(Filter::new(LevelFilter::Info), b.clone());
        let d = Deferred::enter();
        info(&la, "t", format_args!("a1"));
        info(&lb, "t", format_args!("b1"));
        assert_eq!(
            a.text(),
            "[INFO t] a1\n",
            "a's lines go before b's are buffered"
        );
        info(&la, "t", format_args!("a2"));
        drop(d);
        assert_eq!(b.text(), "[INFO t] b1\n");
        assert_eq!(a.text(), "[INFO t] a1\n[INFO t] a2\n");
    }

    #[test]
    fn a_failing_sink_counts_what_it_lost() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let logger = LoopLogger::with_sink(Filter::new(LevelFilter::Info), Broken);
        info(&logger, "t", format_args!("12345"));
        assert_eq!(logger.lost_bytes(), "[INFO t] 12345\n".len() as u64);
    }

    #[test]
    fn filter_follows_rust_log_syntax() {
        let f = Filter::parse("info, squall=debug ,squall_httpserver::access=off,noisy").unwrap();
        assert_eq!(f.level_for("app"), LevelFilter::Info);
        assert_eq!(f.level_for("squall_ioloop"), LevelFilter::Debug);
        assert_eq!(f.level_for("squall_httpserver::access"), LevelFilter::Off);
        assert_eq!(f.level_for("squall_httpserver::accessor"), LevelFilter::Off);
        assert_eq!(f.level_for("noisy::x"), LevelFilter::Trace);
        assert_eq!(f.max_level(), LevelFilter::Trace);

        let only = Filter::parse("my_app=warn").unwrap();
        assert!(
            !only.enabled("other", Level::Error),
            "no default: others are off"
        );
        assert!(only.enabled("my_app::db", Level::Warn));
        assert_eq!(only.max_level(), LevelFilter::Warn);

        assert_eq!(Filter::parse("").unwrap(), Filter::new(LevelFilter::Off));
        assert_eq!(
            Filter::parse("INFO").unwrap().level_for("x"),
            LevelFilter::Info
        );
        assert!(matches!(
            Filter::parse("a=loud"),
            Err(FilterError::BadLevel { directive }) if directive == "a=loud"
        ));
        for bad in ["a=b=c", "=info", "info/foo"] {
            assert!(
                matches!(Filter::parse(bad), Err(FilterError::BadDirective { .. })),
                "{bad}"
            );
        }
        let later = Filter::new(LevelFilter::Warn)
            .directive("a", LevelFilter::Info)
            .directive("a", LevelFilter::Error);
        assert_eq!(
            later.level_for("a"),
            LevelFilter::Error,
            "the last word wins"
        );
    }

    #[test]
    fn log_bytes_needs_an_installed_loop_logger() {
        // No test of this binary installs one: the caller is told to use `log`.
        assert!(!log_bytes(Level::Error, "t", |_| unreachable!()));
        assert_eq!(enabled_static(Level::Error, "t"), None);
    }

    #[test]
    fn from_env_falls_back_to_the_default() {
        let f = Filter::from_env("SQUALL_TEST_UNSET_LOG_VARIABLE", "warn").unwrap();
        assert_eq!(f.level_for("x"), LevelFilter::Warn);
    }
}
