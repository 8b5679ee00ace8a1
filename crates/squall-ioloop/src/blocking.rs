//! Blocking work off the loop: [`IoLoop::run_in_executor`] and the bounded
//! [`ThreadPool`] it runs on by default (Tornado's `IOLoop.run_in_executor` and its
//! default `ThreadPoolExecutor`).
//!
//! The work runs on a pool thread; its result is handed to the loop through the
//! awaiting task's waker, which is `Send`: a wake from a pool thread goes through the
//! loop's remote queue and waker fd, exactly like
//! [`RemoteHandle::add_callback`](crate::RemoteHandle::add_callback).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::JoinError;
use crate::fault::panic_message;
use crate::IoLoop;

/// One piece of work handed to an [`Executor`].
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Something that runs jobs on other threads: the seam behind
/// [`IoLoop::run_in_executor`] (Python's `concurrent.futures.Executor`).
///
/// [`ThreadPool`] is the one squall ships; implement this to hand blocking work to a
/// pool of your own (rayon's, a database driver's).
pub trait Executor: Send + Sync + 'static {
    /// Runs `job` on some thread, eventually. An executor that cannot run it (it is
    /// shutting down) drops it: the future of [`IoLoop::run_in_executor`] then resolves
    /// to [`JoinError::Cancelled`].
    fn execute(&self, job: Job);
}

/// How long an idle pool thread waits for work before it exits (the pool starts
/// threads again on demand).
const IDLE_EXIT: Duration = Duration::from_secs(60);

/// A bounded pool of threads: Python's `ThreadPoolExecutor(max_workers)`.
///
/// Threads are started on demand, one per job while fewer than `max_threads` exist and
/// none is idle, and exit after a minute without work; jobs beyond `max_threads`
/// wait in a FIFO queue. A panicking job is caught (its future gets
/// [`JoinError::Panicked`]) and the thread goes on. Dropping the last handle lets the
/// threads finish the jobs already queued, then exit; it does not wait for them.
///
/// Cheap to clone: clones share one pool.
#[doc(alias = "ThreadPoolExecutor")]
#[derive(Clone)]
pub struct ThreadPool {
    handle: Arc<PoolHandle>,
}

/// The owners' side of a pool: when the last [`ThreadPool`] goes, the pool shuts down.
struct PoolHandle {
    pool: Arc<Pool>,
}

struct Pool {
    max_threads: usize,
    name: String,
    state: Mutex<PoolState>,
    work: Condvar,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

impl ThreadPool {
    /// A pool of at most `max_threads` threads (at least 1), named `"{name}-{n}"`.
    pub fn new(max_threads: usize, name: &str) -> ThreadPool {
        ThreadPool {
            handle: Arc::new(PoolHandle {
                pool: Arc::new(Pool {
                    max_threads: max_threads.max(1),
                    name: name.to_owned(),
                    state: Mutex::new(PoolState::default()),
                    work: Condvar::new(),
                }),
            }),
        }
    }

    /// The size Tornado gives its default executor: five threads per CPU (blocking
    /// work mostly waits, on disk or on a remote service).
    pub fn default_size() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get()) * 5
    }

    /// The most threads this pool runs at once.
    pub fn max_threads(&self) -> usize {
        self.handle.pool.max_threads
    }

    /// How many threads the pool has now (busy or idle).
    pub fn threads(&self) -> usize {
        self.handle.pool.lock().threads
    }

    /// How many jobs wait for a thread.
    pub fn queued(&self) -> usize {
        self.handle.pool.lock().queue.len()
    }
}

impl Executor for ThreadPool {
    fn execute(&self, job: Job) {
        let pool = &self.handle.pool;
        let mut state = pool.lock();
        if state.shutdown {
            drop(state);
            drop(job);
            return;
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            pool.work.notify_one();
        }
        // Idle threads take queued jobs; start another thread only for jobs beyond
        // them (an idle thread that was notified may not have woken yet, so `idle`
        // alone would undercount the work waiting).
        if state.queue.len() <= state.idle || state.threads >= pool.max_threads {
            return;
        }
        state.threads += 1;
        let n = state.threads;
        drop(state);
        let worker = pool.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{n}", pool.name))
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            let mut state = pool.lock();
            state.threads -= 1;
            // With no thread at all, nobody would ever run the queue: give the jobs
            // back (their futures see `Cancelled`). Otherwise the running threads will.
            let orphans = if state.threads == 0 {
                std::mem::take(&mut state.queue)
            } else {
                VecDeque::new()
            };
            drop(state);
            log::error!("thread pool {}: cannot start a thread: {e}", pool.name);
            drop(orphans);
        }
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Jobs never run under the lock, so a poisoned lock still holds a consistent
        // state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker thread: run queued jobs until the pool shuts down and its queue is
    /// empty, or until no work came for a while.
    fn run(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                if let Err(p) = catch_unwind(AssertUnwindSafe(job)) {
                    // `run_in_executor` catches its own panics; this is a raw job.
                    log::error!(
                        "thread pool {}: a job panicked: {}",
                        self.name,
                        panic_message(&*p)
                    );
                }
                state = self.lock();
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let (next, timeout) = self
                .work
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.pool.lock().shutdown = true;
        self.pool.work.notify_all();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.handle.pool.lock();
        f.debug_struct("ThreadPool")
            .field("name", &self.handle.pool.name)
            .field("max_threads", &self.handle.pool.max_threads)
            .field("threads", &state.threads)
            .field("queued", &state.queue.len())
            .finish()
    }
}

/// The pool every loop uses until [`IoLoop::set_default_executor`] gives it another:
/// one per process, [`ThreadPool::default_size`] threads, made on first use.
fn process_default() -> Arc<dyn Executor> {
    static DEFAULT: OnceLock<Arc<dyn Executor>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            Arc::new(ThreadPool::new(
                ThreadPool::default_size(),
                "squall-executor",
            ))
        })
        .clone()
}

/// Where a job's result meets the future that waits for it.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

enum SlotState<T> {
    /// Queued or running; the waker of the task that waits, if it has polled.
    Waiting(Option<Waker>),
    /// The future was dropped: a job that has not started yet is skipped.
    Abandoned,
    Done(Result<T, JoinError>),
    Taken,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the outcome and wakes the waiting task (outside the lock).
    fn complete(&self, outcome: Result<T, JoinError>) {
        let mut state = self.lock();
        if let SlotState::Waiting(waker) = &mut *state {
            let waker = waker.take();
            *state = SlotState::Done(outcome);
            drop(state);
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

/// Completes the slot with [`JoinError::Cancelled`] if the job is dropped without
/// having run (the executor shut down or refused it).
struct Sender<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.complete(Err(JoinError::Cancelled));
        }
    }
}

/// The future of [`IoLoop::run_in_executor`]: resolves on the loop to the work's
/// result. Dropping it before the work starts skips the work; work already running
/// runs to its end (a thread cannot be interrupted) and its result is dropped.
#[must_use = "the work runs anyway; await the future for its result"]
pub struct ExecutorFuture<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Future for ExecutorFuture<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.lock();
        match &mut *state {
            SlotState::Waiting(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            SlotState::Done(_) => match std::mem::replace(&mut *state, SlotState::Taken) {
                SlotState::Done(outcome) => Poll::Ready(outcome),
                _ => unreachable!("matched Done above"),
            },
            SlotState::Abandoned | SlotState::Taken => Poll::Ready(Err(JoinError::Cancelled)),
        }
    }
}

impl<T> Drop for ExecutorFuture<T> {
    fn drop(&mut self) {
        let mut state = self.slot.lock();
        if let SlotState::Waiting(_) = &*state {
            *state = SlotState::Abandoned;
        }
    }
}

impl<T> fmt::Debug for ExecutorFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.slot.lock() {
            SlotState::Waiting(_) => "waiting",
            SlotState::Abandoned => "abandoned",
            SlotState::Done(_) => "done",
            SlotState::Taken => "taken",
        };
        f.debug_struct("ExecutorFuture")
            .field("state", &state)
            .finish()
    }
}

/// Hands `work` to `executor` and returns the future of its result.
pub fn run_on<E, F, T>(executor: &E, work: F) -> ExecutorFuture<T>
where
    E: Executor + ?Sized,
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState::Waiting(None)),
    });
    let mut sender = Sender {
        slot: Some(slot.clone()),
    };
    executor.execute(Box::new(move || {
        let Some(slot) = sender.slot.take() else {
            return;
        };
        if matches!(&*slot.lock(), SlotState::Abandoned) {
            return;
        }
        let outcome = catch_unwind(AssertUnwindSafe(work)).map_err(JoinError::Panicked);
        slot.complete(outcome);
    }));
    ExecutorFuture { slot }
}

impl IoLoop {
    /// Runs blocking `work` on the loop's executor and returns a future that resolves
    /// on this loop to its result: Tornado's `IOLoop.run_in_executor(None, func)`.
    ///
    /// The executor is the one given to [`set_default_executor`](Self::set_default_executor),
    /// or else a [`ThreadPool`] of [`ThreadPool::default_size`] threads shared by every
    /// loop of the process. To use another executor for one call, use
    /// [`run_on`]`(&executor, work)`. The work starts whether or not the future is
    /// polled; dropping the future before it starts skips it.
    ///
    /// # Errors
    ///
    /// The future resolves to [`JoinError::Panicked`] (with the payload) if `work`
    /// panicked, and [`JoinError::Cancelled`] if the executor dropped it unrun.
    ///
    /// ```
    /// use std::time::Duration;
    /// use squall_ioloop::IoLoop;
    ///
    /// let io_loop = IoLoop::new()?;
    /// let n = io_loop.run_sync(async {
    ///     let io_loop = IoLoop::current().unwrap();
    ///     // A blocking call (a file read, a DNS lookup, a C library) off the loop.
    ///     io_loop.run_in_executor(|| (1..=10u64).product::<u64>()).await
    /// }, Some(Duration::from_secs(10)))??;
    /// assert_eq!(n, 3_628_800);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_in_executor<F, T>(&self, work: F) -> ExecutorFuture<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let executor = self.inner.executor.borrow().clone();
        let executor = executor.unwrap_or_else(process_default);
        run_on(&*executor, work)
    }

    /// Makes `executor` this loop's default for [`run_in_executor`](Self::run_in_executor)
    /// (Tornado's `set_default_executor`). Jobs already handed to the previous one
    /// stay there.
    pub fn set_default_executor<E: Executor>(&self, executor: E) {
        let old = self.inner.executor.borrow_mut().replace(Arc::new(executor));
        drop(old);
    }
}
