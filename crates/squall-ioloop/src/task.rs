//! The executor's bookkeeping: a slab of tasks, their wakers, and [`JoinHandle`].
//!
//! Everything here is plain data behind the loop's `RefCell`s; no user code runs while a
//! borrow is held (futures, outputs and wakers are handed back to the caller to poll,
//! drop or wake outside the borrow).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Weak;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::error::JoinError;
use crate::ioloop::Inner;
use crate::remote::{Remote, Shared};

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

const NONE: u32 = u32::MAX;

enum Join {
    /// Nobody will read the output: free the slot as soon as the task ends.
    Detached,
    /// A [`JoinHandle`] exists, maybe waiting with a waker.
    Attached(Option<Waker>),
}

struct Slot {
    gen: u32,
    live: bool,
    scheduled: bool,
    /// `None` while the task is being polled, and once it has finished.
    future: Option<BoxTask>,
    /// This slot's waker, made once when the slot is created and reused by every task
    /// that lives here; `None` only while the task is being polled.
    waker: Option<Waker>,
    output: Option<Output>,
    join: Join,
    log_panic: bool,
    stop_on_done: bool,
    origin: &'static Location<'static>,
    next_free: u32,
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

#[derive(Default)]
pub(crate) struct TaskSlab {
    slots: Vec<Slot>,
    free: u32,
    live: usize,
}

impl TaskSlab {
    pub(crate) fn new() -> TaskSlab {
        TaskSlab {
            slots: Vec::new(),
            free: NONE,
            live: 0,
        }
    }

    /// How many tasks are alive (not yet finished, or finished but not yet joined).
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Stores a new task, already marked scheduled; the caller queues its first poll.
    pub(crate) fn insert(
        &mut self,
        future: BoxTask,
        origin: &'static Location<'static>,
        attached: bool,
        log_panic: bool,
        stop_on_done: bool,
        shared: &Arc<Shared>,
    ) -> (u32, u32) {
        let join = if attached {
            Join::Attached(None)
        } else {
            Join::Detached
        };
        let idx = if self.free != NONE {
            let idx = self.free;
            let s = &mut self.slots[idx as usize];
            self.free = s.next_free;
            s.live = true;
            s.scheduled = true;
            s.future = Some(future);
            s.output = None;
            s.join = join;
            s.log_panic = log_panic;
            s.stop_on_done = stop_on_done;
            s.origin = origin;
            idx
        } else {
            let idx = u32::try_from(self.slots.len())
                .ok()
                .filter(|&i| i != NONE)
                .expect("more than 4 billion live tasks");
            let waker = Waker::from(Arc::new(SlotWaker {
                index: idx,
                shared: shared.clone(),
            }));
            self.slots.push(Slot {
                gen: 0,
                live: true,
                scheduled: true,
                future: Some(future),
                waker: Some(waker),
                output: None,
                join,
                log_panic,
                stop_on_done,
                origin,
                next_free: NONE,
            });
            idx
        };
        self.live += 1;
        (idx, self.slots[idx as usize].gen)
    }

    /// Marks a task scheduled; returns its generation if it was not already (the caller
    /// then queues one poll). Duplicate wakes, and wakes of finished or freed tasks,
    /// return `None`.
    pub(crate) fn mark_scheduled(&mut self, idx: u32) -> Option<u32> {
        let s = self.slots.get_mut(idx as usize)?;
        if !s.live || s.scheduled || s.output.is_some() {
            return None;
        }
        s.scheduled = true;
        Some(s.gen)
    }

    pub(crate) fn begin_poll(&mut self, idx: u32, gen: u32) -> Option<Polling> {
        let s = self.slots.get_mut(idx as usize)?;
        if s.gen != gen || !s.live {
            return None;
        }
        s.scheduled = false;
        let future = s.future.take()?;
        let waker = s.waker.take().expect("task slot without its waker");
        Some(Polling {
            future,
            waker,
            origin: s.origin,
            log_panic: s.log_panic,
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
        match self.slots.get_mut(idx as usize) {
            Some(s) if s.gen == gen && s.live => {
                s.waker = Some(waker);
                if s.output.is_some() {
                    // Aborted during its own poll.
                    if matches!(s.join, Join::Detached) {
                        s.output = None;
                        self.release(idx);
                    }
                    Some(future)
                } else {
                    s.future = Some(future);
                    None
                }
            }
            _ => Some(future),
        }
    }

    /// Records a task's end: frees the slot if detached, else keeps the output for the
    /// handle. (An output that arrives after an abort is discarded.)
    pub(crate) fn finish(&mut self, idx: u32, gen: u32, waker: Waker, out: Output) -> Finished {
        let Some(s) = self.slots.get_mut(idx as usize) else {
            return Finished {
                discard: Some(out),
                wake: None,
                stop: false,
            };
        };
        if s.gen != gen || !s.live {
            return Finished {
                discard: Some(out),
                wake: None,
                stop: false,
            };
        }
        s.waker = Some(waker);
        let stop = s.stop_on_done;
        if s.output.is_some() {
            // Aborted during its own (last) poll.
            if matches!(s.join, Join::Detached) {
                s.output = None;
                self.release(idx);
            }
            return Finished {
                discard: Some(out),
                wake: None,
                stop,
            };
        }
        match &mut s.join {
            Join::Detached => {
                self.release(idx);
                Finished {
                    discard: Some(out),
                    wake: None,
                    stop,
                }
            }
            Join::Attached(w) => {
                let wake = w.take();
                s.output = Some(out);
                Finished {
                    discard: None,
                    wake,
                    stop,
                }
            }
        }
    }

    fn release(&mut self, idx: u32) {
        let s = &mut self.slots[idx as usize];
        s.gen = s.gen.wrapping_add(1);
        s.live = false;
        s.scheduled = false;
        s.join = Join::Detached;
        s.next_free = self.free;
        self.free = idx;
        self.live -= 1;
    }

    /// A handle's poll: the output if there is one (freeing the slot), else registers
    /// `waker`. `Err(Cancelled)` for a slot that is gone.
    pub(crate) fn poll_join(
        &mut self,
        idx: u32,
        gen: u32,
        waker: Option<&Waker>,
    ) -> Option<Output> {
        let Some(s) = self.slots.get_mut(idx as usize) else {
            return Some(Err(JoinError::Cancelled));
        };
        if s.gen != gen || !s.live {
            return Some(Err(JoinError::Cancelled));
        }
        if let Some(out) = s.output.take() {
            self.release(idx);
            return Some(out);
        }
        if let (Join::Attached(slot), Some(w)) = (&mut s.join, waker) {
            match slot {
                Some(old) if old.will_wake(w) => {}
                _ => *slot = Some(w.clone()),
            }
        }
        None
    }

    pub(crate) fn is_finished(&self, idx: u32, gen: u32) -> bool {
        match self.slots.get(idx as usize) {
            Some(s) if s.gen == gen && s.live => s.output.is_some(),
            _ => true,
        }
    }

    /// A handle was dropped: detach the task, or free its slot if it already ended
    /// (returning the unread output, for the caller to drop).
    pub(crate) fn detach(&mut self, idx: u32, gen: u32) -> Option<Output> {
        let s = self.slots.get_mut(idx as usize)?;
        if s.gen != gen || !s.live {
            return None;
        }
        if s.output.is_some() {
            let out = s.output.take();
            self.release(idx);
            return out;
        }
        s.join = Join::Detached;
        None
    }

    /// Cancels a task that has not ended: its output becomes `Cancelled` and its future
    /// is returned for the caller to drop (if it is being polled right now, the poll's
    /// end drops it). Returns the join waker to wake.
    pub(crate) fn abort(&mut self, idx: u32, gen: u32) -> (Option<BoxTask>, Option<Waker>) {
        let Some(s) = self.slots.get_mut(idx as usize) else {
            return (None, None);
        };
        if s.gen != gen || !s.live || s.output.is_some() {
            return (None, None);
        }
        let future = s.future.take();
        s.scheduled = false;
        match &mut s.join {
            Join::Attached(w) => {
                let wake = w.take();
                s.output = Some(Err(JoinError::Cancelled));
                (future, wake)
            }
            Join::Detached if future.is_some() => {
                self.release(idx);
                (future, None)
            }
            Join::Detached => {
                // Being polled: the end of that poll frees the slot.
                s.output = Some(Err(JoinError::Cancelled));
                (None, None)
            }
        }
    }

    /// Cancels everything (loop close or drop). Slots with a handle keep a `Cancelled`
    /// output; the rest are freed.
    pub(crate) fn cancel_all(&mut self) -> (Vec<BoxTask>, Vec<Output>, Vec<Waker>) {
        let mut futures = Vec::new();
        let mut outputs = Vec::new();
        let mut wakers = Vec::new();
        for idx in 0..self.slots.len() as u32 {
            let s = &mut self.slots[idx as usize];
            if !s.live {
                continue;
            }
            futures.extend(s.future.take());
            s.scheduled = false;
            match &mut s.join {
                Join::Detached => {
                    outputs.extend(s.output.take());
                    self.release(idx);
                }
                Join::Attached(w) => {
                    wakers.extend(w.take());
                    // A finished output that nobody read yet stays readable.
                    if s.output.is_none() {
                        s.output = Some(Err(JoinError::Cancelled));
                    }
                }
            }
        }
        (futures, outputs, wakers)
    }
}

/// The waker of one task slot. Made once per slot (not per task, not per poll, not per
/// wake) and shared by every task that lives in that slot over time.
///
/// On the loop's own thread, while the loop is current there, a wake is a thread-local
/// lookup and a push onto the loop's run queue (no atomics, no allocation). From any
/// other thread it goes through the remote queue and the waker fd. A stale waker (kept
/// by a future of an earlier task in the same slot) can only cause a spurious poll of
/// the slot's current task, which futures must tolerate anyway.
pub(crate) struct SlotWaker {
    index: u32,
    shared: Arc<Shared>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !crate::ioloop::wake_local(self.shared.id, self.index) {
            // A closed loop has no task to wake: dropping the item is right.
            let _ = self.shared.push(Remote::Wake(self.index));
        }
    }
}

/// A handle to a spawned task's output: a future that resolves to it.
///
/// Returned by [`IoLoop::spawn`](crate::IoLoop::spawn). Dropping the handle detaches the
/// task (it keeps running; its output is dropped). [`abort`](JoinHandle::abort) cancels
/// it. Resolves to `Err(JoinError::Panicked)` if the task panicked (the panic is also
/// logged by the loop) and `Err(JoinError::Cancelled)` if it was aborted, or the loop
/// was closed or dropped first.
///
/// The handle holds no strong reference to the loop, so a task may keep handles of
/// other tasks without keeping the loop alive.
pub struct JoinHandle<T> {
    pub(crate) inner: Weak<Inner>,
    pub(crate) idx: u32,
    pub(crate) gen: u32,
    pub(crate) done: bool,
    pub(crate) _output: PhantomData<fn() -> T>,
}

impl<T: 'static> JoinHandle<T> {
    pub(crate) fn cancelled() -> JoinHandle<T> {
        JoinHandle {
            inner: Weak::new(),
            idx: NONE,
            gen: 0,
            done: false,
            _output: PhantomData,
        }
    }

    /// Whether the task has ended (finished, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        match self.inner.upgrade() {
            Some(inner) => self.done || inner.tasks.borrow().is_finished(self.idx, self.gen),
            None => true,
        }
    }

    /// Cancels the task: its future is dropped (at once, or at the end of its current
    /// poll if it aborts itself) and the handle resolves to `Err(JoinError::Cancelled)`.
    /// No-op if it already ended.
    pub fn abort(&self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.abort_task(self.idx, self.gen);
        }
    }

    /// Takes the output now if the task has ended.
    pub(crate) fn try_take(&mut self) -> Option<Result<T, JoinError>> {
        if self.done {
            return None;
        }
        let out = match self.inner.upgrade() {
            Some(inner) => inner.tasks.borrow_mut().poll_join(self.idx, self.gen, None),
            None => Some(Err(JoinError::Cancelled)),
        };
        out.map(|o| {
            self.done = true;
            downcast(o)
        })
    }
}

fn downcast<T: 'static>(out: Output) -> Result<T, JoinError> {
    out.map(|b| {
        *b.downcast::<T>()
            .unwrap_or_else(|_| unreachable!("a task's output has the type it was spawned with"))
    })
}

impl<T: 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.done, "JoinHandle polled after it completed");
        let out = match self.inner.upgrade() {
            Some(inner) => {
                let r = inner
                    .tasks
                    .borrow_mut()
                    .poll_join(self.idx, self.gen, Some(cx.waker()));
                r
            }
            None => Some(Err(JoinError::Cancelled)),
        };
        match out {
            Some(o) => {
                self.done = true;
                Poll::Ready(downcast(o))
            }
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(inner) = self.inner.upgrade() {
            let unread = match inner.tasks.try_borrow_mut() {
                Ok(mut t) => t.detach(self.idx, self.gen),
                Err(_) => None,
            };
            drop(unread);
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("task", &self.idx)
            .field("generation", &self.gen)
            .finish()
    }
}
