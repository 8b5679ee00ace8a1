//! The thread-safe side of the loop: the remote queue, the waker fd, and the handles
//! other threads and signal handlers use.

use std::fmt;
use std::mem;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use squall_poller::Waker;

use crate::error::Closed;

/// Work handed to the loop from another thread.
pub(crate) enum Remote {
    /// A callback to run on the loop thread.
    Call(Box<dyn FnOnce() + Send>, &'static Location<'static>),
    /// A task (slot index) to poll.
    Wake(u32),
}

pub(crate) struct RemoteQueue {
    pub(crate) items: Vec<Remote>,
    pub(crate) closed: bool,
}

/// The part of a loop shared with other threads (behind an `Arc`).
pub(crate) struct Shared {
    /// The loop's id, to tell its wakers apart from other loops'.
    pub(crate) id: u64,
    pub(crate) waker: Waker,
    /// Set by a producer that has queued work and woken (or will wake) the fd; wakes
    /// are merged on it so a burst of remote work costs one `write(2)`.
    pub(crate) pending: AtomicBool,
    pub(crate) queue: Mutex<RemoteQueue>,
    /// A stop asked from another thread or a signal handler.
    pub(crate) stop: AtomicBool,
    /// Some signal callback was triggered.
    pub(crate) signal: AtomicBool,
}

impl Shared {
    pub(crate) fn new(id: u64) -> std::io::Result<Shared> {
        Ok(Shared {
            id,
            waker: Waker::new()?,
            pending: AtomicBool::new(false),
            queue: Mutex::new(RemoteQueue {
                items: Vec::new(),
                closed: false,
            }),
            stop: AtomicBool::new(false),
            signal: AtomicBool::new(false),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, RemoteQueue> {
        // Nothing user-written runs under this lock, so a poisoned lock still holds a
        // consistent queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues remote work and wakes the loop; `Err` gives the item back if the loop is
    /// closed (the caller drops it outside the lock).
    pub(crate) fn push(&self, item: Remote) -> Result<(), Remote> {
        {
            let mut q = self.lock();
            if q.closed {
                return Err(item);
            }
            q.items.push(item);
        }
        self.notify();
        Ok(())
    }

    /// Wakes the loop's poll unless a wake is already pending. Async-signal-safe: one
    /// atomic swap and at most one `write(2)`.
    pub(crate) fn notify(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                // Not reachable in practice (a full pipe counts as success); never
                // silent. Logging is not signal-safe, but neither is this situation.
                log::error!("IOLoop waker failed: {e}");
            }
        }
    }

    /// Takes every queued item (swapping in `spare`, so the vector is reused), after
    /// clearing the wake flag and draining the fd, in that order, so no wake is lost.
    pub(crate) fn take(&self, spare: &mut Vec<Remote>) {
        if let Err(e) = self.waker.drain() {
            log::error!("IOLoop waker drain failed: {e}");
        }
        self.pending.store(false, Ordering::SeqCst);
        let mut q = self.lock();
        mem::swap(&mut q.items, spare);
    }

    /// Marks the queue closed and returns what was still in it.
    pub(crate) fn close(&self) -> Vec<Remote> {
        let mut q = self.lock();
        q.closed = true;
        mem::take(&mut q.items)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// A `Send + Sync` handle to an [`IoLoop`](crate::IoLoop), for other threads and signal
/// handlers: Tornado's rule that `add_callback` is the one thread-safe method.
///
/// Get one with [`IoLoop::remote`](crate::IoLoop::remote); clone it freely.
/// [`add_callback`](RemoteHandle::add_callback) takes a lock and allocates, so it is for
/// threads; [`wake`](RemoteHandle::wake), [`stop`](RemoteHandle::stop) and
/// [`SignalCallback::trigger`] are async-signal-safe (atomics and one `write(2)`).
#[derive(Clone)]
pub struct RemoteHandle {
    pub(crate) shared: Arc<Shared>,
}

impl RemoteHandle {
    /// Runs `f` on the loop's thread at its next iteration, waking a blocked poll.
    ///
    /// Tornado's `IOLoop.add_callback` called from another thread. Callbacks from one
    /// thread run in the order they were added.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the loop has been closed or dropped; `f` is dropped then, on the
    /// calling thread.
    #[track_caller]
    pub fn add_callback<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), Closed> {
        let origin = Location::caller();
        self.shared
            .push(Remote::Call(Box::new(f), origin))
            .map_err(|_| Closed::new())
    }

    /// Stops the loop as [`IoLoop::stop`](crate::IoLoop::stop) does, from any thread.
    /// Async-signal-safe.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.notify();
    }

    /// Wakes the loop's poll without giving it work (its next iteration starts at once).
    /// Async-signal-safe.
    pub fn wake(&self) {
        self.shared.notify();
    }

    /// Whether the loop has been closed or dropped.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl fmt::Debug for RemoteHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteHandle")
            .field("loop_id", &self.shared.id)
            .finish()
    }
}

pub(crate) struct SignalFlag {
    pub(crate) fired: AtomicBool,
}

/// A callback registered ahead of time that a signal handler can trigger: the
/// async-signal-safe form of Tornado's `add_callback_from_signal`.
///
/// Made by [`IoLoop::add_signal_callback`](crate::IoLoop::add_signal_callback), which keeps
/// the callback on the loop thread. [`trigger`](SignalCallback::trigger) neither
/// allocates nor locks: it sets two atomic flags and writes to the loop's waker fd, all
/// of which POSIX allows in a signal handler. The callback then runs once on the loop
/// thread at its next iteration, however many triggers arrived since the last run.
#[doc(alias = "add_callback_from_signal")]
#[derive(Clone)]
pub struct SignalCallback {
    pub(crate) flag: Arc<SignalFlag>,
    pub(crate) shared: Arc<Shared>,
}

impl SignalCallback {
    /// Asks the loop to run the callback. Async-signal-safe; callable from any thread.
    #[doc(alias = "add_callback_from_signal")]
    pub fn trigger(&self) {
        self.flag.fired.store(true, Ordering::Release);
        self.shared.signal.store(true, Ordering::Release);
        self.shared.notify();
    }
}

impl fmt::Debug for SignalCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalCallback")
            .field("loop_id", &self.shared.id)
            .finish()
    }
}
