//! The loop's executor: spawning futures as tasks, polling them, their wakers and
//! [`JoinHandle`]. The task slab itself (plain data) is in `task.rs`.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::error::{JoinError, LoopError, RunSyncError};
use crate::fault::Origin;
use crate::ioloop::{wake_local, Inner, IoLoop, Job};
use crate::remote::{Remote, Shared};
use crate::task::{BoxTask, Output, NONE};

impl IoLoop {
    /// Runs `future` as a task on this loop and returns a handle to its output. Tornado's
    /// `spawn_callback` (and asyncio's `create_task`). The future is boxed once, here;
    /// it is first polled on the next iteration. A panic in the task is caught and
    /// logged, and the handle resolves to [`JoinError::Panicked`]. On a closed loop the
    /// future is dropped and the handle resolves to [`JoinError::Cancelled`].
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_task(Box::pin(future), Location::caller(), true, true, false)
    }

    pub(crate) fn spawn_task<T: 'static>(
        &self,
        future: BoxTask,
        origin: Origin,
        attached: bool,
        log_panic: bool,
        stop_on_done: bool,
    ) -> JoinHandle<T> {
        let inner = &*self.inner;
        if inner.closed.get() {
            drop(future);
            return JoinHandle::cancelled();
        }
        let (idx, gen) = inner.tasks.borrow_mut().insert(
            future,
            origin,
            attached,
            log_panic,
            stop_on_done,
            |index| {
                Waker::from(Arc::new(SlotWaker {
                    index,
                    shared: inner.shared.clone(),
                }))
            },
        );
        inner.queue.borrow_mut().push_back(Job::Poll(idx, gen));
        JoinHandle {
            inner: if attached {
                Rc::downgrade(&self.inner)
            } else {
                Weak::new()
            },
            idx,
            gen,
            done: !attached,
            _output: PhantomData,
        }
    }

    /// Calls `callback(output)` on a later iteration once `future` completes. Tornado's
    /// `add_future`: the callback is always deferred through the callback queue, never
    /// run inline.
    #[track_caller]
    pub fn add_future<F, C>(&self, future: F, callback: C)
    where
        F: Future + 'static,
        F::Output: 'static,
        C: FnOnce(F::Output) + 'static,
    {
        let origin = Location::caller();
        let weak = Rc::downgrade(&self.inner);
        let task = async move {
            let out = future.await;
            if let Some(inner) = weak.upgrade() {
                IoLoop { inner }.push_callback(Box::new(move || callback(out)), origin);
            }
        };
        drop(self.spawn_task::<()>(Box::pin(task), origin, false, true, false));
    }

    /// Runs the loop until `future` completes and returns its output. Tornado's
    /// `run_sync`. The loop is current while it runs.
    ///
    /// A panic in the future is resumed in the caller (`std::panic::resume_unwind`),
    /// as Tornado re-raises. A future that returns a `Result` gives it back as is.
    ///
    /// # Errors
    ///
    /// [`RunSyncError::Timeout`] if `timeout` passes first and
    /// [`RunSyncError::Stopped`] if the loop is stopped first (the future is dropped in
    /// both cases); [`RunSyncError::Loop`] if the loop is closed, already running, or its
    /// poller fails.
    #[track_caller]
    pub fn run_sync<F>(
        &self,
        future: F,
        timeout: Option<Duration>,
    ) -> Result<F::Output, RunSyncError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let origin = Location::caller();
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err(LoopError::Closed.into());
        }
        if inner.entered.get() {
            return Err(LoopError::AlreadyRunning.into());
        }
        let mut handle: JoinHandle<F::Output> =
            self.spawn_task(Box::pin(future), origin, true, false, true);
        let timed_out = Rc::new(Cell::new(false));
        let timer = timeout.map(|d| {
            let flag = timed_out.clone();
            let weak = Rc::downgrade(&self.inner);
            self.call_later(d, move || {
                flag.set(true);
                if let Some(inner) = weak.upgrade() {
                    IoLoop { inner }.stop();
                }
            })
        });
        let started = self.start();
        if let Some(t) = timer {
            self.remove_timeout(t);
        }
        match handle.try_take() {
            Some(Ok(v)) => return Ok(v),
            Some(Err(JoinError::Panicked(p))) => resume_unwind(p),
            Some(Err(_)) => {}
            None => handle.abort(),
        }
        started?;
        match timeout {
            Some(d) if timed_out.get() => Err(RunSyncError::Timeout(d)),
            _ => Err(RunSyncError::Stopped),
        }
    }

    /// How many tasks are alive on this loop (spawned and not yet finished, or finished
    /// with an output not yet read).
    pub fn task_count(&self) -> usize {
        self.inner.tasks.borrow().len()
    }
}

impl Inner {
    /// Queues a poll of task `idx` unless it is already queued; `false` if the slab is
    /// busy (never while user code runs; the caller then takes the remote path).
    pub(crate) fn schedule_task(&self, idx: u32) -> bool {
        let Ok(mut tasks) = self.tasks.try_borrow_mut() else {
            return false;
        };
        if let Some(gen) = tasks.mark_scheduled(idx) {
            drop(tasks);
            self.queue.borrow_mut().push_back(Job::Poll(idx, gen));
        }
        true
    }

    pub(crate) fn poll_task(&self, idx: u32, gen: u32) {
        let polling = self.tasks.borrow_mut().begin_poll(idx, gen);
        let Some(mut p) = polling else {
            return;
        };
        let res = self.guard(p.origin, || {
            let mut cx = Context::from_waker(&p.waker);
            p.future.as_mut().poll_task(&mut cx)
        });
        match res {
            Ok(Poll::Pending) => {
                let back = self
                    .tasks
                    .borrow_mut()
                    .end_pending(idx, gen, p.future, p.waker);
                if let Some(f) = back {
                    self.drop_task_future(f, p.origin);
                }
            }
            Ok(Poll::Ready(out)) => {
                self.drop_task_future(p.future, p.origin);
                self.finish_task(idx, gen, p.waker, Ok(out));
            }
            Err(payload) => {
                if p.log_panic {
                    crate::fault::log_exception(Some("a task"), p.origin, &*payload);
                }
                self.drop_task_future(p.future, p.origin);
                self.finish_task(idx, gen, p.waker, Err(JoinError::Panicked(payload)));
            }
        }
    }

    fn drop_task_future(&self, f: BoxTask, origin: Origin) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(f))) {
            crate::fault::log_panic(Some("the drop of the task"), origin, p);
        }
    }

    fn finish_task(&self, idx: u32, gen: u32, waker: Waker, out: crate::task::Output) {
        let done = self.tasks.borrow_mut().finish(idx, gen, waker, out);
        if let Some(d) = done.discard {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(d)));
        }
        if let Some(w) = done.wake {
            w.wake();
        }
        if done.stop {
            self.running.set(false);
            self.stopped.set(true);
        }
    }

    pub(crate) fn abort_task(&self, idx: u32, gen: u32) {
        let (future, wake) = self.tasks.borrow_mut().abort(idx, gen);
        if let Some(f) = future {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(f)));
        }
        if let Some(w) = wake {
            w.wake();
        }
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
        if !wake_local(self.shared.id, self.index) {
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
