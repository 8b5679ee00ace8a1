//! The executor's bookkeeping: a slab of tasks and their wakers (made by the loop's
//! executor, `executor.rs`, which also holds [`JoinHandle`](crate::JoinHandle)).
//!
//! Everything here is plain data behind the loop's `RefCell`s; no user code runs while a
//! borrow is held (futures, outputs and wakers are handed back to the caller to poll,
//! drop or wake outside the borrow).

use std::any::Any;
use std::future::Future;
use std::mem;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::error::JoinError;

/// A spawned future with its output type erased: a finished task hands back its output
/// boxed as `dyn Any` (a zero-sized output such as `()` allocates nothing).
pub(crate) trait TaskFuture {
    fn poll_task(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Box<dyn Any>>;
}

impl<F> TaskFuture for F
where
    F: Future,
    F::Output: 'static,
{
    fn poll_task(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Box<dyn Any>> {
        self.poll(cx).map(|v| Box::new(v) as Box<dyn Any>)
    }
}

pub(crate) type BoxTask = Pin<Box<dyn TaskFuture>>;
pub(crate) type Output = Result<Box<dyn Any>, JoinError>;

pub(crate) const NONE: u32 = u32::MAX;
/// The fewest slots the slab grows by.
const SLAB_STEP: usize = 64;

// Bits of `Slot::link` while the slot is live.
/// A poll is queued.
const SCHEDULED: u32 = 1;
/// A [`JoinHandle`] may read the output (else it is dropped as soon as the task ends).
const ATTACHED: u32 = 1 << 1;
/// A panic is logged (a `run_sync` future's panic is resumed instead).
const LOG_PANIC: u32 = 1 << 2;
/// The loop stops when the task ends (`run_sync`).
const STOP_ON_DONE: u32 = 1 << 3;

/// What a slot holds.
#[derive(Default)]
enum State {
    /// No task: `link` is the next free slot.
    #[default]
    Free,
    /// A live task: its future, `None` while it is being polled.
    Pending(Option<BoxTask>),
    /// The task ended (finished, panicked or was cancelled); the output waits for its
    /// handle. While the task is being polled, this means it was aborted meanwhile.
    Done(Output),
}

/// One task slot: 72 bytes.
#[derive(Default)]
struct Slot {
    gen: u32,
    /// The next free slot while free; the flag bits above while live.
    link: u32,
    state: State,
    /// This slot's waker, made once when the slot is first used and reused by every
    /// task that lives here; `None` only while the task is being polled.
    waker: Option<Waker>,
    /// The waker of a [`JoinHandle`] waiting for the output.
    join_waker: Option<Waker>,
    origin: Option<&'static Location<'static>>,
}

impl Slot {
    #[inline]
    fn live(&self) -> bool {
        !matches!(self.state, State::Free)
    }
    #[inline]
    fn done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }
    #[inline]
    fn take_output(&mut self) -> Option<Output> {
        if !self.done() {
            return None;
        }
        match mem::replace(&mut self.state, State::Pending(None)) {
            State::Done(out) => Some(out),
            other => {
                self.state = other;
                None
            }
        }
    }
}

/// What a caller must do after a task ended, outside the borrow.
pub(crate) struct Finished {
    pub(crate) discard: Option<Output>,
    pub(crate) wake: Option<Waker>,
    pub(crate) stop: bool,
}

/// What polling a task needs, taken out of its slot.
pub(crate) struct Polling {
    pub(crate) future: BoxTask,
    pub(crate) waker: Waker,
    pub(crate) origin: &'static Location<'static>,
    pub(crate) log_panic: bool,
}

/// The task slots. A plain `Vec` (one load less per lookup than pages: a spawn touches
/// its slot five times), grown by a quarter at a time rather than doubled, so at most a
/// fifth of it is slack; slots move when it grows, which nothing minds (every access is
/// by index, under the loop's borrow).
pub(crate) struct TaskSlab {
    slots: Vec<Slot>,
    /// Slots ever used (`slots.len()`).
    used: u32,
    free: u32,
    live: usize,
}

impl Default for TaskSlab {
    fn default() -> Self {
        TaskSlab::new()
    }
}

impl TaskSlab {
    pub(crate) fn new() -> TaskSlab {
        TaskSlab {
            slots: Vec::new(),
            used: 0,
            free: NONE,
            live: 0,
        }
    }

    /// How many tasks are alive (not yet finished, or finished but not yet joined).
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    #[inline]
    fn slot(&mut self, idx: u32) -> Option<&mut Slot> {
        self.slots.get_mut(idx as usize)
    }

    /// The live slot `idx` of generation `gen`.
    #[inline]
    fn current(&mut self, idx: u32, gen: u32) -> Option<&mut Slot> {
        self.slot(idx).filter(|s| s.gen == gen && s.live())
    }

    /// Stores a new task, already marked scheduled; the caller queues its first poll.
    pub(crate) fn insert(
        &mut self,
        future: BoxTask,
        origin: &'static Location<'static>,
        attached: bool,
        log_panic: bool,
        stop_on_done: bool,
        new_waker: impl FnOnce(u32) -> Waker,
    ) -> (u32, u32) {
        let idx = if self.free != NONE {
            let idx = self.free;
            self.free = self.slots.get(idx as usize).map_or(NONE, |s| s.link);
            idx
        } else {
            let idx = self.used;
            assert!(idx != NONE, "more than 4 billion live tasks");
            self.used += 1;
            idx
        };
        if idx as usize == self.slots.len() {
            if self.slots.len() == self.slots.capacity() {
                self.slots
                    .reserve_exact((self.slots.len() / 4).max(SLAB_STEP));
            }
            self.slots.push(Slot::default());
        }
        let s = &mut self.slots[idx as usize];
        if s.waker.is_none() {
            s.waker = Some(new_waker(idx));
        }
        s.link = SCHEDULED
            | if attached { ATTACHED } else { 0 }
            | if log_panic { LOG_PANIC } else { 0 }
            | if stop_on_done { STOP_ON_DONE } else { 0 };
        s.state = State::Pending(Some(future));
        s.origin = Some(origin);
        let gen = s.gen;
        self.live += 1;
        (idx, gen)
    }

    /// Marks a task scheduled; returns its generation if it was not already (the caller
    /// then queues one poll). Duplicate wakes, and wakes of finished or freed tasks,
    /// return `None`.
    pub(crate) fn mark_scheduled(&mut self, idx: u32) -> Option<u32> {
        let s = self.slot(idx)?;
        if !matches!(s.state, State::Pending(_)) || s.link & SCHEDULED != 0 {
            return None;
        }
        s.link |= SCHEDULED;
        Some(s.gen)
    }

    pub(crate) fn begin_poll(&mut self, idx: u32, gen: u32) -> Option<Polling> {
        let s = self.current(idx, gen)?;
        s.link &= !SCHEDULED;
        let State::Pending(future) = &mut s.state else {
            return None;
        };
        let future = future.take()?;
        let waker = s.waker.take().expect("task slot without its waker");
        Some(Polling {
            future,
            waker,
            origin: s.origin.unwrap_or_else(Location::caller),
            log_panic: s.link & LOG_PANIC != 0,
        })
    }

    /// Puts a pending task back; returns it if its slot no longer wants it (aborted or
    /// the slab was cleared during the poll), for the caller to drop.
    pub(crate) fn end_pending(
        &mut self,
        idx: u32,
        gen: u32,
        future: BoxTask,
        waker: Waker,
    ) -> Option<BoxTask> {
        let Some(s) = self.current(idx, gen) else {
            return Some(future);
        };
        s.waker = Some(waker);
        if s.done() {
            // Aborted during its own poll.
            if s.link & ATTACHED == 0 {
                self.release(idx);
            }
            Some(future)
        } else {
            s.state = State::Pending(Some(future));
            None
        }
    }

    /// Records a task's end: frees the slot if detached, else keeps the output for the
    /// handle. (An output that arrives after an abort is discarded.)
    pub(crate) fn finish(&mut self, idx: u32, gen: u32, waker: Waker, out: Output) -> Finished {
        let Some(s) = self.current(idx, gen) else {
            return Finished {
                discard: Some(out),
                wake: None,
                stop: false,
            };
        };
        s.waker = Some(waker);
        let stop = s.link & STOP_ON_DONE != 0;
        if s.done() {
            // Aborted during its own (last) poll.
            if s.link & ATTACHED == 0 {
                self.release(idx);
            }
            return Finished {
                discard: Some(out),
                wake: None,
                stop,
            };
        }
        if s.link & ATTACHED == 0 {
            self.release(idx);
            Finished {
                discard: Some(out),
                wake: None,
                stop,
            }
        } else {
            let wake = s.join_waker.take();
            s.state = State::Done(out);
            Finished {
                discard: None,
                wake,
                stop,
            }
        }
    }

    /// Frees a slot. Its state must hold nothing (the caller took the future and the
    /// output), or be an output nobody will read.
    fn release(&mut self, idx: u32) {
        let free = self.free;
        if let Some(s) = self.slot(idx) {
            s.gen = s.gen.wrapping_add(1);
            s.state = State::Free;
            s.join_waker = None;
            s.origin = None;
            s.link = free;
            self.free = idx;
            self.live -= 1;
        }
    }

    /// A handle's poll: the output if there is one (freeing the slot), else registers
    /// `waker`. `Err(Cancelled)` for a slot that is gone.
    pub(crate) fn poll_join(
        &mut self,
        idx: u32,
        gen: u32,
        waker: Option<&Waker>,
    ) -> Option<Output> {
        let Some(s) = self.current(idx, gen) else {
            return Some(Err(JoinError::Cancelled));
        };
        if let Some(out) = s.take_output() {
            self.release(idx);
            return Some(out);
        }
        if let (true, Some(w)) = (s.link & ATTACHED != 0, waker) {
            match &s.join_waker {
                Some(old) if old.will_wake(w) => {}
                _ => s.join_waker = Some(w.clone()),
            }
        }
        None
    }

    pub(crate) fn is_finished(&self, idx: u32, gen: u32) -> bool {
        match self.slots.get(idx as usize) {
            Some(s) if s.gen == gen && s.live() => s.done(),
            _ => true,
        }
    }

    /// A handle was dropped: detach the task, or free its slot if it already ended
    /// (returning the unread output, for the caller to drop).
    pub(crate) fn detach(&mut self, idx: u32, gen: u32) -> Option<Output> {
        let s = self.current(idx, gen)?;
        if let Some(out) = s.take_output() {
            self.release(idx);
            return Some(out);
        }
        s.link &= !ATTACHED;
        s.join_waker = None;
        None
    }

    /// Cancels a task that has not ended: its output becomes `Cancelled` and its future
    /// is returned for the caller to drop (if it is being polled right now, the poll's
    /// end drops it). Returns the join waker to wake.
    pub(crate) fn abort(&mut self, idx: u32, gen: u32) -> (Option<BoxTask>, Option<Waker>) {
        let Some(s) = self.current(idx, gen) else {
            return (None, None);
        };
        let State::Pending(future) = &mut s.state else {
            return (None, None);
        };
        let future = future.take();
        s.link &= !SCHEDULED;
        if s.link & ATTACHED != 0 {
            let wake = s.join_waker.take();
            s.state = State::Done(Err(JoinError::Cancelled));
            (future, wake)
        } else if future.is_some() {
            self.release(idx);
            (future, None)
        } else {
            // Being polled: the end of that poll frees the slot.
            s.state = State::Done(Err(JoinError::Cancelled));
            (None, None)
        }
    }

    /// Cancels everything (loop close or drop). Slots with a handle keep a `Cancelled`
    /// output; the rest are freed.
    pub(crate) fn cancel_all(&mut self) -> (Vec<BoxTask>, Vec<Output>, Vec<Waker>) {
        let mut futures = Vec::new();
        let mut outputs = Vec::new();
        let mut wakers = Vec::new();
        for idx in 0..self.used {
            let Some(s) = self.slot(idx) else { break };
            if !s.live() {
                continue;
            }
            s.link &= !SCHEDULED;
            let attached = s.link & ATTACHED != 0;
            match mem::take(&mut s.state) {
                State::Free => unreachable!("checked live"),
                State::Pending(f) => {
                    futures.extend(f);
                    if attached {
                        wakers.extend(s.join_waker.take());
                        s.state = State::Done(Err(JoinError::Cancelled));
                    } else {
                        self.release(idx);
                    }
                }
                State::Done(out) => {
                    if attached {
                        // A finished output that nobody read yet stays readable.
                        wakers.extend(s.join_waker.take());
                        s.state = State::Done(out);
                    } else {
                        outputs.push(out);
                        self.release(idx);
                    }
                }
            }
        }
        (futures, outputs, wakers)
    }
}
