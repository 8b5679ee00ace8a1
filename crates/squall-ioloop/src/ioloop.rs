//! [`IoLoop`]: the reactor and its run loop (callbacks, timers, fd handlers). Spawning
//! and polling tasks is in `executor.rs`, the fd table in `handlers.rs`, the choice of
//! poller in `backend.rs`.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use squall_poller::{util, Events, Interest, Poller, Ready};

use crate::backend::default_poller;
use crate::clock;
use crate::error::LoopError;
use crate::fault::Origin;
use crate::handlers::{keep_source, masked, FdHandler, Handler, Handlers, Removed};
use crate::remote::{Remote, RemoteHandle, Shared, SignalCallback, SignalFlag};
use crate::task::TaskSlab;
use crate::timer::{Deadline, Timeout, TimerQueue};
use crate::watchdog::Watch;

thread_local! {
    static CURRENT: RefCell<Option<IoLoop>> = const { RefCell::new(None) };
    /// When the turn of the loop running on this thread began ([`turn_time`]).
    static TURN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// When the current turn of this thread's running loop began: one clock reading per
/// iteration of the loop, taken after the poll that found the turn's events and before
/// any of its callbacks or tasks run. Off a running loop, the clock now.
///
/// For times that need no finer grain than a turn: when a request's bytes were seen,
/// an idle connection's deadline. Reading it costs a thread-local access instead of a
/// clock reading. The time is the turn's start even late in a long turn (a slow
/// callback before yours): it can be earlier than `Instant::now()` by up to the turn's
/// length, never later.
///
/// ```
/// use squall_ioloop::{turn_time, IoLoop};
///
/// let io_loop = IoLoop::new()?;
/// let before = std::time::Instant::now();
/// let seen = io_loop.run_sync(async { turn_time() }, None)?;
/// assert!(seen >= before && seen <= std::time::Instant::now());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn turn_time() -> Instant {
    match TURN.try_with(Cell::get) {
        Ok(Some(t)) => t,
        _ => Instant::now(),
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How many events one poll may report (more stay ready for the next poll).
const EVENTS_CAPACITY: usize = 1024;

/// How many jobs an empty run queue keeps room for (32 KiB).
const QUEUE_KEEP: usize = 1024;

pub(crate) struct Callback {
    f: Box<dyn FnOnce()>,
    origin: Origin,
}

pub(crate) enum Job {
    Call(Callback),
    Poll(u32, u32),
    Signal(Arc<SignalFlag>),
}

pub(crate) enum TimerAction {
    Call(Callback),
    Wake(Waker, Origin),
}

struct SignalEntry {
    flag: Arc<SignalFlag>,
    f: Option<Box<dyn FnMut()>>,
    origin: Origin,
}

pub(crate) struct Inner {
    id: u64,
    pub(crate) shared: Arc<Shared>,
    poller: RefCell<Box<dyn Poller>>,
    poller_name: &'static str,
    waker_fd: RawFd,
    events: RefCell<Events>,
    dispatch: RefCell<Vec<(RawFd, Ready, u32)>>,
    handlers: RefCell<Handlers>,
    pub(crate) queue: RefCell<VecDeque<Job>>,
    pub(crate) timers: RefCell<TimerQueue<TimerAction>>,
    due: RefCell<Vec<Timeout>>,
    pub(crate) tasks: RefCell<TaskSlab>,
    signals: RefCell<Vec<SignalEntry>>,
    remote_spare: RefCell<Vec<Remote>>,
    kept_sources: RefCell<Vec<Box<dyn AsRawFd>>>,
    pub(crate) running: Cell<bool>,
    /// `start` is on the stack: set from its first iteration until it returns, so a
    /// `stop` followed by a `start` (or `close`, or `run_sync`) in the same turn is
    /// refused while the loop unwinds instead of nesting a second loop.
    pub(crate) entered: Cell<bool>,
    /// The clock reading taken when the last poll returned, for the next iteration.
    after_poll: Cell<Option<Instant>>,
    pub(crate) stopped: Cell<bool>,
    pub(crate) closed: Cell<bool>,
    slow: Cell<Option<Duration>>,
    watching: Cell<bool>,
    watch: RefCell<Option<Watch>>,
    /// `set_default_executor`'s choice (`None`: the process-wide pool).
    pub(crate) executor: RefCell<Option<Arc<dyn crate::blocking::Executor>>>,
}

/// Tornado's `IOLoop`: a level-triggered reactor over a [`Poller`], with callbacks,
/// timers, and a single-threaded executor for futures, all run by one thread.
///
/// An `IoLoop` is a cheap handle (an `Rc`): clone it to keep it in handlers and tasks.
/// It is `!Send`; other threads use a [`RemoteHandle`] from [`remote`](IoLoop::remote).
/// See the [crate docs](crate) for the model, an example of each style, and where it
/// differs from Tornado.
#[doc(alias = "IOLoop")]
#[derive(Clone)]
pub struct IoLoop {
    pub(crate) inner: Rc<Inner>,
}

/// Runs `f` on the loop of `loop_id` if that loop is current on this thread: the local
/// wake path of a task's waker. Returns `false` if it is not (the caller goes remote).
pub(crate) fn wake_local(loop_id: u64, index: u32) -> bool {
    CURRENT
        .try_with(|c| match c.try_borrow() {
            Ok(c) => match &*c {
                Some(l) if l.inner.id == loop_id => l.inner.schedule_task(index),
                _ => false,
            },
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// Leaves a loop whose `start` unwinds stopped and not running, so that it can be
/// started again or closed.
struct Unwound<'a>(&'a Inner);

impl Drop for Unwound<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.running.set(false);
            self.0.entered.set(false);
            self.0.stopped.set(false);
            self.0.after_poll.set(None);
        }
    }
}

/// Makes a loop current for the life of the guard, then restores the previous one.
struct Enter {
    prev: Option<IoLoop>,
}

impl Enter {
    fn new(l: &IoLoop) -> Enter {
        let prev = CURRENT.with(|c| c.replace(Some(l.clone())));
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        // A loop closed while this one ran is not made current again.
        let prev = self.prev.take().filter(|l| !l.is_closed());
        let old = CURRENT.try_with(|c| c.replace(prev));
        drop(old);
        // Off the loop (or back in an outer one, whose next turn sets its own): no
        // turn is running.
        let _ = TURN.try_with(|t| t.set(None));
    }
}

impl IoLoop {
    /// A new loop on the platform's default poller, as Tornado's `configurable_default`
    /// picks it: epoll on Linux, kqueue on macOS and FreeBSD, poll(2) elsewhere
    /// (select(2) only when asked for: it cannot watch fds past `FD_SETSIZE`).
    ///
    /// The environment variable `SQUALL_POLLER` (`epoll`, `kqueue`, `poll` or `select`)
    /// forces a backend, so a test suite can be re-run on each (CI does this). The loop
    /// is not made current; [`start`](IoLoop::start) and [`run_sync`](IoLoop::run_sync)
    /// make it current while they run.
    ///
    /// # Errors
    ///
    /// The OS error of creating the poller or the waker (`EMFILE`...);
    /// [`io::ErrorKind::InvalidInput`] for an unknown `SQUALL_POLLER` value, and
    /// [`io::ErrorKind::Unsupported`] for a backend not built for this platform.
    pub fn new() -> io::Result<IoLoop> {
        IoLoop::with_poller(default_poller()?)
    }

    /// A new loop on the given poller (any [`Poller`], including your own).
    ///
    /// # Errors
    ///
    /// The OS error of creating the waker or registering it with `poller`.
    pub fn with_poller(mut poller: Box<dyn Poller>) -> io::Result<IoLoop> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared::new(id)?);
        let waker_fd = shared.waker.fd();
        poller.register(waker_fd, Interest::READ)?;
        let poller_name = poller.name();
        Ok(IoLoop {
            inner: Rc::new(Inner {
                id,
                shared,
                poller: RefCell::new(poller),
                poller_name,
                waker_fd,
                events: RefCell::new(Events::with_capacity(EVENTS_CAPACITY)),
                dispatch: RefCell::new(Vec::new()),
                handlers: RefCell::new(Handlers::default()),
                queue: RefCell::new(VecDeque::new()),
                // The low bits of the id: a handle of another loop is told apart.
                timers: RefCell::new(TimerQueue::with_owner(id as u32)),
                due: RefCell::new(Vec::new()),
                tasks: RefCell::new(TaskSlab::new()),
                signals: RefCell::new(Vec::new()),
                remote_spare: RefCell::new(Vec::new()),
                kept_sources: RefCell::new(Vec::new()),
                running: Cell::new(false),
                entered: Cell::new(false),
                after_poll: Cell::new(None),
                stopped: Cell::new(false),
                closed: Cell::new(false),
                slow: Cell::new(None),
                watching: Cell::new(false),
                watch: RefCell::new(None),
                executor: RefCell::new(None),
            }),
        })
    }

    /// The loop current on this thread: the one running here, or the last one made
    /// current with [`make_current`](IoLoop::make_current) (unless it was closed since).
    /// Tornado's `IOLoop.current()` (which would create one; here `None` says there is
    /// none).
    pub fn current() -> Option<IoLoop> {
        CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
    }

    /// Makes this loop current on this thread until another is made current,
    /// [`clear_current`](IoLoop::clear_current) is called or the loop is
    /// [closed](IoLoop::close). The thread keeps a handle, so the loop stays alive
    /// meanwhile.
    pub fn make_current(&self) {
        let old = CURRENT.with(|c| c.replace(Some(self.clone())));
        drop(old);
    }

    /// Forgets this thread's current loop (Tornado's `IOLoop.clear_current`).
    pub fn clear_current() {
        let old = CURRENT.try_with(|c| c.replace(None));
        drop(old);
    }

    /// The name of the poller behind this loop (`"epoll"`, `"poll"`, `"select"`...).
    pub fn poller_name(&self) -> &'static str {
        self.inner.poller_name
    }

    /// A thread-safe handle for [`add_callback`](RemoteHandle::add_callback) and
    /// [`stop`](RemoteHandle::stop) from other threads.
    pub fn remote(&self) -> RemoteHandle {
        RemoteHandle {
            shared: self.inner.shared.clone(),
        }
    }

    /// The loop's clock: seconds on a monotonic clock since an arbitrary process-wide
    /// epoch (Tornado's `IOLoop.time()`). Use it with [`Deadline::at_time`].
    pub fn time(&self) -> f64 {
        clock::time()
    }

    /// The loop's clock as an [`Instant`].
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// Whether the loop is inside [`start`](IoLoop::start) or
    /// [`run_sync`](IoLoop::run_sync).
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether [`close`](IoLoop::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    // ------------------------------------------------------------------ handlers

    /// Calls `handler(fd, ready)` whenever the fd of `source` is ready for `interest`
    /// (errors and hang-ups are always reported). Tornado's `add_handler`.
    ///
    /// The loop keeps `source` until [`remove_handler`](IoLoop::remove_handler) hands it
    /// back or [`close(true)`](IoLoop::close) drops it. Pass a bare [`RawFd`] to keep
    /// ownership yourself (the loop never closes a `RawFd`), or an owning type
    /// (`OwnedFd`, `TcpStream`...) to let the loop close it. Handlers get the
    /// [`Ready`] set masked to the current interest, plus ERROR and HUP.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AlreadyExists`] if the fd already has a handler (Tornado's
    /// `test_multiple_add`), `InvalidInput` for a negative fd, the poller's error (for
    /// select, an fd past `FD_SETSIZE`), or `Other` if the loop is closed. `source` is
    /// dropped on error.
    #[track_caller]
    pub fn add_handler<S, H>(&self, source: S, interest: Interest, handler: H) -> io::Result<()>
    where
        S: AsRawFd + 'static,
        H: FnMut(RawFd, Ready) + 'static,
    {
        self.register(
            source,
            interest,
            Handler::Fn(Box::new(handler)),
            Location::caller(),
        )
    }

    /// As [`add_handler`](IoLoop::add_handler), for a handler its owner keeps in an
    /// `Rc`: the loop holds a `Weak` to it and calls [`FdHandler::on_event`] while the
    /// owner's `Rc` lives (an event that comes after the last `Rc` went is dropped).
    /// The registration still ends only with [`remove_handler`](IoLoop::remove_handler)
    /// or [`close`](IoLoop::close).
    ///
    /// It is the closure `move |fd, ready| if let Some(h) = weak.upgrade() { ... }`
    /// without the closure's box, which `add_handler` allocates: a stream uses it so
    /// that the loop's entry for its fd points straight at its state.
    ///
    /// # Errors
    ///
    /// As [`add_handler`](IoLoop::add_handler).
    #[track_caller]
    pub fn add_weak_handler<S, H>(
        &self,
        source: S,
        interest: Interest,
        handler: &Rc<H>,
    ) -> io::Result<()>
    where
        S: AsRawFd + 'static,
        H: FdHandler + 'static,
    {
        let weak = Rc::downgrade(handler);
        self.register(source, interest, Handler::Weak(weak), Location::caller())
    }

    fn register<S: AsRawFd + 'static>(
        &self,
        source: S,
        interest: Interest,
        handler: Handler,
        origin: Origin,
    ) -> io::Result<()> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err(LoopError::Closed.into());
        }
        let fd = source.as_raw_fd();
        let idx = usize::try_from(fd)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid fd {fd}")))?;
        if fd == inner.waker_fd {
            return Err(util::already_registered(fd));
        }
        let mut hs = inner.handlers.borrow_mut();
        if hs.get(fd).is_some() {
            return Err(util::already_registered(fd));
        }
        inner.poller.borrow_mut().register(fd, interest)?;
        let slot = hs.slots.get_or_grow(idx);
        slot.gen = slot.gen.wrapping_add(1);
        slot.registered = true;
        slot.interest = interest;
        slot.source = keep_source(source);
        slot.handler = Some(handler);
        slot.origin = Some(origin);
        hs.count += 1;
        Ok(())
    }

    /// Changes what a registered fd is watched for (a replacement, not a union).
    /// Tornado's `update_handler`. No syscall if the interest is unchanged.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if `fd` has no handler, or the poller's error.
    pub fn update_handler(&self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let inner = &*self.inner;
        let mut hs = inner.handlers.borrow_mut();
        let e = hs.get_mut(fd).ok_or_else(|| util::not_registered(fd))?;
        if e.interest != interest {
            inner.poller.borrow_mut().modify(fd, interest)?;
            e.interest = interest;
        }
        Ok(())
    }

    /// Stops watching `fd` and hands back the source that was registered (drop it to
    /// close an owning source; a `RawFd` is just a number). Tornado's `remove_handler`:
    /// idempotent (`None` for an fd without a handler), and events already polled for
    /// `fd` in the current batch are dropped, even if the number is registered again at
    /// once. A poller error (for instance, the fd was already closed) is logged at debug
    /// level, not returned.
    pub fn remove_handler(&self, fd: RawFd) -> Option<Box<dyn AsRawFd>> {
        let Removed {
            fd,
            source,
            handler,
        } = self.unregister(fd)?;
        drop(handler);
        Some(source.unwrap_or_else(|| Box::new(fd)))
    }

    /// As [`remove_handler`](IoLoop::remove_handler), but drops the source (which
    /// closes an owning one) instead of handing it back: `true` if `fd` had a handler.
    /// What a stream that registered its bare fd calls, since it has no use for a boxed
    /// copy of the number.
    pub fn discard_handler(&self, fd: RawFd) -> bool {
        match self.unregister(fd) {
            Some(removed) => {
                drop(removed);
                true
            }
            None => false,
        }
    }

    fn unregister(&self, fd: RawFd) -> Option<Removed> {
        let inner = &*self.inner;
        let removed = inner.handlers.borrow_mut().remove(fd)?;
        if let Err(e) = inner.poller.borrow_mut().unregister(fd) {
            log::debug!("remove_handler({fd}): poller unregister failed: {e}");
        }
        Some(removed)
    }

    /// Whether `fd` has a handler.
    pub fn has_handler(&self, fd: RawFd) -> bool {
        self.inner.handlers.borrow().get(fd).is_some()
    }

    // ----------------------------------------------------------------- callbacks

    /// Runs `f` on the next loop iteration. Tornado's `add_callback` (and
    /// `spawn_callback`): a callback added while the loop runs callbacks waits for the
    /// next iteration, so callbacks never starve I/O. From the loop's thread this is a
    /// queue push (no lock, no atomics, no syscall); from other threads use
    /// [`RemoteHandle::add_callback`]. On a closed loop `f` is dropped.
    #[track_caller]
    pub fn add_callback<F: FnOnce() + 'static>(&self, f: F) {
        self.push_callback(Box::new(f), Location::caller());
    }

    pub(crate) fn push_callback(&self, f: Box<dyn FnOnce()>, origin: Origin) {
        if self.inner.closed.get() {
            log::debug!("IOLoop closed: dropping the callback added at {origin}");
            return;
        }
        self.inner
            .queue
            .borrow_mut()
            .push_back(Job::Call(Callback { f, origin }));
    }

    /// Registers a callback that signal handlers (or any thread) can trigger with
    /// [`SignalCallback::trigger`], which is async-signal-safe. The callback runs on
    /// this loop's thread; several triggers before it runs coalesce into one run. The
    /// loop keeps `f` while a handle to it (a clone of the returned [`SignalCallback`])
    /// lives or a trigger is pending, and lets it go at a later registration once
    /// neither holds. On a closed loop `f` is dropped (its triggers do nothing).
    #[doc(alias = "add_callback_from_signal")]
    #[track_caller]
    pub fn add_signal_callback<F: FnMut() + 'static>(&self, f: F) -> SignalCallback {
        let flag = Arc::new(SignalFlag {
            fired: AtomicBool::new(false),
        });
        let signal_callback = SignalCallback {
            flag: flag.clone(),
            shared: self.inner.shared.clone(),
        };
        if self.inner.closed.get() {
            log::debug!(
                "IOLoop closed: dropping the signal callback added at {}",
                Location::caller()
            );
            return signal_callback;
        }
        // Callbacks no handle can trigger any more (and none is due or running) are let
        // go here, so registering one per connection does not grow the loop forever.
        let unreachable: Vec<SignalEntry> = {
            let mut sigs = self.inner.signals.borrow_mut();
            let (gone, kept) = mem::take(&mut *sigs).into_iter().partition(|s| {
                Arc::strong_count(&s.flag) == 1
                    && !s.flag.fired.load(Ordering::Acquire)
                    && s.f.is_some()
            });
            *sigs = kept;
            gone
        };
        for s in unreachable {
            let origin = s.origin;
            if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(s))) {
                crate::fault::log_panic(Some("the drop of a signal callback"), origin, p);
            }
        }
        self.inner.signals.borrow_mut().push(SignalEntry {
            flag: flag.clone(),
            f: Some(Box::new(f)),
            origin: Location::caller(),
        });
        signal_callback
    }

    // -------------------------------------------------------------------- timers

    /// Runs `f` once `deadline` has passed (a [`Duration`] from now or an [`Instant`]).
    /// Tornado's `add_timeout`. Timers due at the same instant run in the order they
    /// were added. Returns a handle for [`remove_timeout`](IoLoop::remove_timeout).
    #[track_caller]
    pub fn add_timeout<D: Into<Deadline>, F: FnOnce() + 'static>(
        &self,
        deadline: D,
        f: F,
    ) -> Timeout {
        self.schedule(deadline.into().0, Box::new(f), Location::caller())
    }

    /// Runs `f` no earlier than `delay` from now. Tornado's `call_later`.
    #[track_caller]
    pub fn call_later<F: FnOnce() + 'static>(&self, delay: Duration, f: F) -> Timeout {
        self.schedule(clock::after(delay), Box::new(f), Location::caller())
    }

    /// Runs `f` no earlier than `when`. Tornado's `call_at`.
    #[track_caller]
    pub fn call_at<F: FnOnce() + 'static>(&self, when: Instant, f: F) -> Timeout {
        self.schedule(when, Box::new(f), Location::caller())
    }

    fn schedule(&self, when: Instant, f: Box<dyn FnOnce()>, origin: Origin) -> Timeout {
        if self.inner.closed.get() {
            log::debug!("IOLoop closed: dropping the timeout added at {origin}");
            return Timeout::dead();
        }
        self.inner
            .timers
            .borrow_mut()
            .schedule(when, TimerAction::Call(Callback { f, origin }))
    }

    pub(crate) fn schedule_wake(
        &self,
        when: Instant,
        waker: Waker,
        origin: Origin,
    ) -> Option<Timeout> {
        if self.inner.closed.get() {
            return None;
        }
        Some(
            self.inner
                .timers
                .borrow_mut()
                .schedule(when, TimerAction::Wake(waker, origin)),
        )
    }

    /// Cancels a pending timeout. Tornado's `remove_timeout`: a no-op if it already ran
    /// or was removed, including for a timer that is due in the current iteration but
    /// has not run yet (it will not run).
    pub fn remove_timeout(&self, timeout: Timeout) {
        let action = self.inner.timers.borrow_mut().cancel(timeout);
        drop(action);
    }

    /// How many timeouts are pending.
    pub fn pending_timeouts(&self) -> usize {
        self.inner.timers.borrow().len()
    }

    /// A future that completes `duration` from now, on this loop. Tornado's
    /// `gen.sleep`. It always yields to the loop at least once, even for zero.
    #[track_caller]
    pub fn sleep(&self, duration: Duration) -> crate::Sleep {
        crate::Sleep::new(
            clock::after(duration),
            Some(Rc::downgrade(&self.inner)),
            Location::caller(),
        )
    }

    // --------------------------------------------------------------------- faults

    /// Logs (at warn level) every callback, handler, timer or task poll that runs longer
    /// than `threshold`, naming where it was added; `None` turns it off (the default).
    /// asyncio's slow-callback warning; costs two clock reads per callback while on.
    #[doc(alias = "set_blocking_log_threshold")]
    pub fn set_slow_callback_threshold(&self, threshold: Option<Duration>) {
        self.inner.slow.set(threshold);
    }

    /// Starts a watchdog thread that logs (at warn level), while the loop is still
    /// blocked, any callback that has been running longer than `threshold`, naming
    /// where it was added, and again every `threshold` while it stays blocked. What
    /// Tornado 4's `set_blocking_signal_threshold` did with SIGALRM, without signals.
    ///
    /// The loop's cost is one relaxed atomic store per callback while the watchdog is
    /// on, and none when it is off. Calling it again replaces the watchdog.
    ///
    /// # Errors
    ///
    /// The OS error if the thread cannot be spawned.
    pub fn enable_watchdog(&self, threshold: Duration) -> io::Result<()> {
        let watch = Watch::start(threshold, self.inner.id.to_string())?;
        let old = self.inner.watch.replace(Some(watch));
        self.inner.watching.set(true);
        drop(old);
        Ok(())
    }

    /// Stops the watchdog thread, if any.
    pub fn disable_watchdog(&self) {
        self.inner.watching.set(false);
        let old = self.inner.watch.replace(None);
        drop(old);
    }

    // ------------------------------------------------------------------ running

    /// Runs the loop until [`stop`](IoLoop::stop) is called. Tornado's `start`.
    ///
    /// Each iteration runs the callbacks queued before it began, then the timers that
    /// were due when it began (all collected before any runs), then waits for I/O (not
    /// at all if callbacks are queued, else until the next timer) and runs the handlers
    /// of the ready fds. A [`stop`](IoLoop::stop) before `start` makes `start` return at
    /// once (and is then forgotten).
    ///
    /// # Errors
    ///
    /// [`LoopError::AlreadyRunning`] if called from inside the loop (Tornado's
    /// `test_reentrant`), also after a [`stop`](IoLoop::stop) in the same turn, while the
    /// loop is still unwinding (a second loop never nests inside the first);
    /// [`LoopError::Closed`], or [`LoopError::Io`] if the poller fails (the loop is
    /// stopped then).
    pub fn start(&self) -> Result<(), LoopError> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err(LoopError::Closed);
        }
        if inner.entered.get() {
            return Err(LoopError::AlreadyRunning);
        }
        let remote_stop = inner.shared.stop.swap(false, Ordering::AcqRel);
        if inner.stopped.replace(false) || remote_stop {
            return Ok(());
        }
        inner.running.set(true);
        inner.entered.set(true);
        // Should a panic escape an iteration (user code's panics are caught; this is for
        // anything else), the loop is left usable: stopped, and not "running".
        let _unwound = Unwound(inner);
        let _enter = Enter::new(self);
        // Log lines of this thread wait for the end of the iteration (and are written
        // when `start` returns or unwinds).
        let _deferred = crate::logger::Deferred::enter();
        let res = loop {
            match self.iterate() {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(LoopError::Io(e)),
            }
        };
        inner.running.set(false);
        inner.entered.set(false);
        inner.stopped.set(false);
        if inner.watching.get() {
            if let Some(w) = &*inner.watch.borrow() {
                w.idle();
            }
        }
        res
    }

    /// Stops the loop after the current iteration. Tornado's `stop`: the callbacks and
    /// timers of this iteration still run; [`start`](IoLoop::start) returns, and a later
    /// `start` resumes with whatever is still queued. A `stop` while the loop is not
    /// running makes the next `start` return at once.
    pub fn stop(&self) {
        self.inner.running.set(false);
        self.inner.stopped.set(true);
    }

    /// Closes the loop. Tornado's `close(all_fds)`.
    ///
    /// Every fd is unregistered; pending callbacks, timers and tasks are dropped (each
    /// task's handle resolves to [`JoinError::Cancelled`](crate::JoinError::Cancelled)), and the remote queue refuses
    /// new work. With `all_fds` the registered sources are dropped, which closes those
    /// that own their fd (`OwnedFd`, `TcpStream`...); a bare `RawFd` is never closed (in
    /// Python, Tornado calls `close()` on whatever was registered). Without it the loop
    /// keeps the sources until it is dropped. If the loop is this thread's current one
    /// ([`make_current`](IoLoop::make_current)), it is current no more, as in Tornado
    /// ([`current`](IoLoop::current) gives `None` until another loop is made current).
    /// Idempotent.
    ///
    /// # Errors
    ///
    /// [`LoopError::AlreadyRunning`] if the loop is running, or stopped but still
    /// unwinding (close it after [`start`](IoLoop::start) returns).
    pub fn close(&self, all_fds: bool) -> Result<(), LoopError> {
        let inner = &*self.inner;
        if inner.entered.get() {
            return Err(LoopError::AlreadyRunning);
        }
        if inner.closed.replace(true) {
            return Ok(());
        }
        let was_current = CURRENT
            .try_with(|c| match c.try_borrow_mut() {
                Ok(mut c) if c.as_ref() == Some(self) => c.take(),
                _ => None,
            })
            .ok()
            .flatten();
        drop(was_current);
        inner.teardown(all_fds);
        Ok(())
    }

    fn iterate(&self) -> io::Result<bool> {
        let inner = &*self.inner;
        let ncallbacks = inner.queue.borrow().len();
        let mut due = mem::take(&mut *inner.due.borrow_mut());
        // The reading taken when the last poll returned (the handlers of its events saw
        // it), or a new one.
        let now = inner.after_poll.take().unwrap_or_else(Instant::now);
        TURN.set(Some(now));
        {
            let mut timers = inner.timers.borrow_mut();
            if timers.len() > 0 {
                timers.collect_due(now, &mut due);
            }
        }
        for _ in 0..ncallbacks {
            let job = inner.queue.borrow_mut().pop_front();
            match job {
                Some(job) => inner.run_job(job),
                None => break,
            }
        }
        for &t in &due {
            let action = inner.timers.borrow_mut().take(t);
            match action {
                Some(TimerAction::Call(cb)) => inner.run_callback(cb),
                Some(TimerAction::Wake(w, origin)) => {
                    if let Err(p) = inner.guard(origin, || w.wake()) {
                        crate::fault::log_panic(Some("timer wake"), origin, p);
                    }
                }
                None => {}
            }
        }
        due.clear();
        *inner.due.borrow_mut() = due;

        if !inner.running.get() || inner.closed.get() {
            return Ok(false);
        }
        let timeout = if !inner.queue.borrow().is_empty() {
            Some(Duration::ZERO)
        } else {
            inner.shrink_queue();
            let next = inner.timers.borrow_mut().next_deadline();
            next.map(|d| d.saturating_duration_since(Instant::now()))
        };
        if inner.watching.get() {
            if let Some(w) = &*inner.watch.borrow() {
                w.idle();
            }
        }
        // The iteration's log lines, in one write, before the loop may block.
        crate::logger::flush();
        {
            let mut events = inner.events.borrow_mut();
            inner.poller.borrow_mut().poll(&mut events, timeout)?;
        }
        // The turn's reading, taken after the poll: the handlers about to run, and the
        // callbacks and tasks of the next iteration, see the time the events came.
        let now = Instant::now();
        TURN.set(Some(now));
        inner.after_poll.set(Some(now));
        inner.dispatch_events();
        Ok(true)
    }
}

impl Inner {
    /// Lets go of the run queue's memory after a burst (10,000 connections accepted at
    /// once queue 10,000 first polls): an empty queue keeps room for [`QUEUE_KEEP`] jobs.
    #[inline]
    fn shrink_queue(&self) {
        let mut q = self.queue.borrow_mut();
        if q.capacity() > QUEUE_KEEP {
            q.shrink_to(QUEUE_KEEP);
        }
    }

    /// Runs user code: catches a panic, feeds the watchdog, and times it if asked.
    #[inline]
    pub(crate) fn guard<R>(
        &self,
        origin: Origin,
        f: impl FnOnce() -> R,
    ) -> Result<R, Box<dyn Any + Send>> {
        if self.watching.get() {
            if let Some(w) = &*self.watch.borrow() {
                w.busy(origin);
            }
        }
        match self.slow.get() {
            None => catch_unwind(AssertUnwindSafe(f)),
            Some(limit) => {
                let t0 = Instant::now();
                let r = catch_unwind(AssertUnwindSafe(f));
                let took = t0.elapsed();
                if took > limit {
                    log::warn!("Slow callback: the callback added at {origin} took {took:.3?} (threshold {limit:?})");
                }
                r
            }
        }
    }

    fn run_callback(&self, cb: Callback) {
        let Callback { f, origin } = cb;
        if let Err(p) = self.guard(origin, f) {
            crate::fault::log_panic(None, origin, p);
        }
    }

    fn run_job(&self, job: Job) {
        match job {
            Job::Call(cb) => self.run_callback(cb),
            Job::Poll(idx, gen) => self.poll_task(idx, gen),
            Job::Signal(flag) => self.run_signal(&flag),
        }
    }

    fn run_signal(&self, flag: &Arc<SignalFlag>) {
        fn entry<'a>(
            sigs: &'a mut [SignalEntry],
            flag: &Arc<SignalFlag>,
        ) -> Option<&'a mut SignalEntry> {
            sigs.iter_mut().find(|s| Arc::ptr_eq(&s.flag, flag))
        }
        let taken = {
            let mut sigs = self.signals.borrow_mut();
            entry(&mut sigs, flag).and_then(|s| Some((s.f.take()?, s.origin)))
        };
        let Some((mut f, origin)) = taken else {
            return;
        };
        if let Err(p) = self.guard(origin, &mut f) {
            crate::fault::log_panic(Some("signal callback"), origin, p);
        }
        let mut sigs = self.signals.borrow_mut();
        match entry(&mut sigs, flag) {
            Some(s) if s.f.is_none() => s.f = Some(f),
            _ => {
                drop(sigs);
                if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(f))) {
                    crate::fault::log_panic(Some("the drop of a signal callback"), origin, p);
                }
            }
        }
    }

    fn dispatch_events(&self) {
        let mut list = mem::take(&mut *self.dispatch.borrow_mut());
        let mut remote = false;
        let prefetch;
        {
            let events = self.events.borrow();
            let hs = self.handlers.borrow();
            // With many handlers, each one's state was evicted since its last event
            // (by the others' and the kernel's work for them): its loads start here,
            // all at once, rather than one after the other as each handler runs. The
            // entries first (their addresses need no load), then in the loop below
            // what the entries point to.
            prefetch = hs.count >= squall_poller::sys::PREFETCH_FROM;
            if prefetch {
                for ev in events.iter() {
                    if let Some(e) = usize::try_from(ev.fd).ok().and_then(|i| hs.slots.get(i)) {
                        squall_poller::sys::prefetch(e);
                    }
                }
            }
            for ev in events.iter() {
                if ev.fd == self.waker_fd {
                    remote = true;
                } else if let Some(e) = hs.get(ev.fd) {
                    list.push((ev.fd, ev.ready, e.gen));
                    if let (true, Some(Handler::Weak(w))) = (prefetch, &e.handler) {
                        // Its counts and first line (its size is the handler's own).
                        squall_poller::sys::prefetch_counted(w.as_ptr(), 64);
                    }
                }
            }
        }
        if remote {
            self.drain_remote();
        }
        for (i, &(fd, ready, reg)) in list.iter().enumerate() {
            if let (true, Some(&(fd, _, reg))) = (prefetch, list.get(i + 1)) {
                self.prefetch_handler(fd, reg);
            }
            self.run_handler(fd, ready, reg);
        }
        list.clear();
        *self.dispatch.borrow_mut() = list;
    }

    /// Lets the handler of `fd` (registration `gen`), whose event is next, start
    /// loading what it will touch ([`FdHandler::prefetch`]). A panic there is caught
    /// and logged, as one in `on_event` is.
    #[inline]
    fn prefetch_handler(&self, fd: RawFd, gen: u32) {
        let h = match self.handlers.borrow().get(fd) {
            Some(e) if e.gen == gen => match &e.handler {
                Some(Handler::Weak(w)) => w.upgrade().map(|h| (h, e.origin)),
                _ => None,
            },
            _ => None,
        };
        if let Some((h, origin)) = h {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| h.prefetch())) {
                let origin = origin.unwrap_or_else(Location::caller);
                crate::fault::log_panic(Some("handler's prefetch"), origin, p);
            }
        }
    }

    fn run_handler(&self, fd: RawFd, ready: Ready, gen: u32) {
        let taken = {
            let mut hs = self.handlers.borrow_mut();
            let Some(e) = hs.get_mut(fd) else { return };
            if e.gen != gen {
                return;
            }
            let ready = masked(ready, e.interest);
            if ready.is_empty() {
                return;
            }
            let origin = e.origin.unwrap_or_else(Location::caller);
            e.handler.take().map(|h| (h, origin, ready))
        };
        let Some((mut h, origin, ready)) = taken else {
            return;
        };
        if let Err(p) = self.guard(origin, || h.call(fd, ready)) {
            crate::fault::log_panic(Some("handler"), origin, p);
        }
        let mut hs = self.handlers.borrow_mut();
        match hs.get_mut(fd) {
            Some(e) if e.gen == gen && e.handler.is_none() => e.handler = Some(h),
            _ => {
                drop(hs);
                // Removed while it ran: dropped here, and what it owns may panic too.
                if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(h))) {
                    crate::fault::log_panic(Some("the drop of a handler"), origin, p);
                }
            }
        }
    }

    fn drain_remote(&self) {
        let mut items = mem::take(&mut *self.remote_spare.borrow_mut());
        self.shared.take(&mut items);
        for item in items.drain(..) {
            match item {
                Remote::Call(f, origin) => self
                    .queue
                    .borrow_mut()
                    .push_back(Job::Call(Callback { f, origin })),
                Remote::Wake(idx) => {
                    self.schedule_task(idx);
                }
            }
        }
        *self.remote_spare.borrow_mut() = items;
        if self.shared.stop.swap(false, Ordering::AcqRel) {
            self.running.set(false);
            self.stopped.set(true);
        }
        if self.shared.signal.swap(false, Ordering::AcqRel) {
            let sigs = self.signals.borrow();
            let mut q = self.queue.borrow_mut();
            for s in sigs.iter() {
                if s.flag.fired.swap(false, Ordering::AcqRel) {
                    q.push_back(Job::Signal(s.flag.clone()));
                }
            }
        }
    }

    /// Drops everything the loop holds, outside every borrow (drop code may call back
    /// into the loop: it finds it closed).
    fn teardown(&self, all_fds: bool) {
        self.closed.set(true);
        let remote = self.shared.close();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(remote)));
        self.watching.set(false);
        drop(self.watch.replace(None));
        let queue = mem::take(&mut *self.queue.borrow_mut());
        let _ = catch_unwind(AssertUnwindSafe(move || drop(queue)));
        let timers = self.timers.borrow_mut().drain();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(timers)));
        let (futures, outputs, wakers) = self.tasks.borrow_mut().cancel_all();
        for f in futures {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(f)));
        }
        let _ = catch_unwind(AssertUnwindSafe(move || drop(outputs)));
        for w in wakers {
            w.wake();
        }
        let signals = mem::take(&mut *self.signals.borrow_mut());
        let _ = catch_unwind(AssertUnwindSafe(move || drop(signals)));
        let mut handlers = mem::take(&mut *self.handlers.borrow_mut());
        let mut sources = Vec::with_capacity(handlers.count);
        for (i, slot) in handlers.slots.iter_mut().enumerate() {
            if !slot.registered {
                continue;
            }
            let fd = RawFd::try_from(i).unwrap_or(RawFd::MAX);
            if let Err(e) = self.poller.borrow_mut().unregister(fd) {
                log::debug!("close: unregister of fd {fd} failed: {e}");
            }
            let handler = slot.handler.take();
            let _ = catch_unwind(AssertUnwindSafe(move || drop(handler)));
            sources.extend(slot.source.take());
        }
        drop(handlers);
        if all_fds {
            drop(sources);
        } else {
            self.kept_sources.borrow_mut().extend(sources);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.get() {
            self.teardown(true);
        }
    }
}

/// Two handles are equal when they refer to the same loop.
impl PartialEq for IoLoop {
    fn eq(&self, other: &IoLoop) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for IoLoop {}

impl fmt::Debug for IoLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoLoop")
            .field("id", &self.inner.id)
            .field("poller", &self.inner.poller_name)
            .field("running", &self.inner.running.get())
            .field("closed", &self.inner.closed.get())
            .field("handlers", &self.inner.handlers.borrow().count)
            .field("callbacks", &self.inner.queue.borrow().len())
            .field("timeouts", &self.inner.timers.borrow().len())
            .field("tasks", &self.inner.tasks.borrow().len())
            .finish()
    }
}
