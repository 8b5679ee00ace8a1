//! `IoLoop::run_in_executor` and `ThreadPool`: results come back on the loop, panics
//! are typed errors, the pool is bounded, and unstarted work is skipped when its
//! future is dropped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use squall_ioloop::{run_on, Executor, IoLoop, Job, JoinError, ThreadPool};

/// Generous: a deadline for things that must happen, never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn test_run_in_executor_result_arrives_on_the_loop() {
    let io_loop = IoLoop::new().unwrap();
    let loop_thread = thread::current().id();
    let (value, worker) = io_loop
        .run_sync(
            async move {
                let l = IoLoop::current().unwrap();
                let out = l
                    .run_in_executor(|| (thread::current().id(), 6 * 7))
                    .await
                    .unwrap();
                // The task resumed on the loop's own thread.
                assert_eq!(thread::current().id(), loop_thread);
                (out.1, out.0)
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert_eq!(value, 42);
    assert_ne!(worker, loop_thread, "the work ran on a pool thread");
}

#[test]
fn test_run_in_executor_panic_is_a_typed_error() {
    let io_loop = IoLoop::new().unwrap();
    let err = io_loop
        .run_sync(
            async {
                let l = IoLoop::current().unwrap();
                l.run_in_executor(|| -> u32 { panic!("disk on fire") })
                    .await
            },
            Some(PATIENCE),
        )
        .unwrap()
        .unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("disk on fire"), "{err}");
    let payload = err.into_panic().unwrap();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"disk on fire"));
    // The loop and the default pool go on.
    let ok = io_loop
        .run_sync(
            async { IoLoop::current().unwrap().run_in_executor(|| 1).await },
            Some(PATIENCE),
        )
        .unwrap();
    assert_eq!(ok.unwrap(), 1);
}

/// Counts jobs running at once and the most there ever were.
#[derive(Default)]
struct Gauge {
    state: Mutex<(usize, usize)>,
    changed: Condvar,
}

impl Gauge {
    fn enter(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        s.1 = s.1.max(s.0);
        self.changed.notify_all();
    }
    fn leave(&self) {
        self.state.lock().unwrap().0 -= 1;
    }
    /// Waits (bounded) until `n` jobs have been running at once.
    fn wait_peak(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        let mut s = self.state.lock().unwrap();
        while s.1 < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "never saw {n} jobs at once (peak {})", s.1);
            s = self.changed.wait_timeout(s, left).unwrap().0;
        }
    }
    fn peak(&self) -> usize {
        self.state.lock().unwrap().1
    }
}

#[test]
fn test_many_concurrent_jobs_are_bounded_by_the_pool() {
    const THREADS: usize = 3;
    const JOBS: usize = 40;
    let io_loop = IoLoop::new().unwrap();
    let pool = ThreadPool::new(THREADS, "bounded-test");
    io_loop.set_default_executor(pool.clone());
    let gauge = Arc::new(Gauge::default());
    let sum = io_loop
        .run_sync(
            {
                let gauge = gauge.clone();
                async move {
                    let l = IoLoop::current().unwrap();
                    let futures: Vec<_> = (0..JOBS)
                        .map(|i| {
                            let g = gauge.clone();
                            l.run_in_executor(move || {
                                g.enter();
                                // The first jobs wait until the pool is full, so the
                                // bound is reached, not merely respected.
                                g.wait_peak(THREADS);
                                g.leave();
                                i
                            })
                        })
                        .collect();
                    let mut sum = 0;
                    for f in futures {
                        sum += f.await.unwrap();
                    }
                    sum
                }
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert_eq!(sum, (0..JOBS).sum::<usize>());
    assert_eq!(
        gauge.peak(),
        THREADS,
        "never more jobs at once than threads"
    );
    assert!(pool.threads() <= THREADS);
    assert_eq!(pool.max_threads(), THREADS);
    assert_eq!(pool.queued(), 0);
}

#[test]
fn test_a_warm_pool_still_grows_to_its_bound() {
    // One thread has run a job and now idles; three jobs that need each other running
    // at once must still get three threads.
    let pool = ThreadPool::new(3, "warm-test");
    let (tx, rx) = mpsc::channel();
    pool.execute(Box::new(move || tx.send(()).unwrap()));
    rx.recv_timeout(PATIENCE).unwrap();
    let gauge = Arc::new(Gauge::default());
    let (done_tx, done_rx) = mpsc::channel();
    for _ in 0..3 {
        let (g, done) = (gauge.clone(), done_tx.clone());
        pool.execute(Box::new(move || {
            g.enter();
            g.wait_peak(3);
            g.leave();
            done.send(()).unwrap();
        }));
    }
    for _ in 0..3 {
        done_rx.recv_timeout(PATIENCE).unwrap();
    }
    assert_eq!(gauge.peak(), 3);
    assert!(pool.threads() <= 3);
}

#[test]
fn test_default_pool_size_follows_tornado() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(ThreadPool::default_size(), cpus * 5);
    assert_eq!(ThreadPool::new(0, "x").max_threads(), 1);
}

#[test]
fn test_dropped_future_skips_unstarted_work() {
    let pool = ThreadPool::new(1, "skip-test");
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let ran = Arc::new(AtomicBool::new(false));
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            {
                let (pool, ran) = (pool.clone(), ran.clone());
                async move {
                    // Occupies the only thread until released.
                    let first = run_on(&pool, move || {
                        started_tx.send(()).unwrap();
                        release_rx.recv_timeout(PATIENCE).unwrap();
                    });
                    started_rx.recv_timeout(PATIENCE).unwrap();
                    let r = ran.clone();
                    let second = run_on(&pool, move || r.store(true, Ordering::SeqCst));
                    assert_eq!(pool.queued(), 1);
                    drop(second);
                    release_tx.send(()).unwrap();
                    first.await.unwrap();
                    // A job after the skipped one proves the queue has moved past it.
                    run_on(&pool, || ()).await.unwrap();
                }
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert!(
        !ran.load(Ordering::SeqCst),
        "a dropped future's work never starts"
    );
}

/// An executor that refuses everything, as one that is shutting down does.
struct Refuse(Arc<AtomicUsize>);

impl Executor for Refuse {
    fn execute(&self, job: Job) {
        self.0.fetch_add(1, Ordering::SeqCst);
        drop(job);
    }
}

#[test]
fn test_set_default_executor_and_a_dropped_job_is_cancelled() {
    let io_loop = IoLoop::new().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    io_loop.set_default_executor(Refuse(calls.clone()));
    let err = io_loop
        .run_sync(
            async { IoLoop::current().unwrap().run_in_executor(|| 5).await },
            Some(PATIENCE),
        )
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, JoinError::Cancelled));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Another loop still has the process-wide pool.
    let other = IoLoop::new().unwrap();
    let ok = other
        .run_sync(
            async { IoLoop::current().unwrap().run_in_executor(|| 5).await },
            Some(PATIENCE),
        )
        .unwrap();
    assert_eq!(ok.unwrap(), 5);
}

#[test]
fn test_raw_job_panic_does_not_kill_the_pool_thread() {
    let pool = ThreadPool::new(1, "raw-test");
    pool.execute(Box::new(|| panic!("raw job")));
    let (tx, rx) = mpsc::channel();
    pool.execute(Box::new(move || {
        tx.send(thread::current().name().map(str::to_owned))
            .unwrap()
    }));
    let name = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(name.as_deref(), Some("raw-test-1"));
    assert_eq!(pool.threads(), 1);
}

#[test]
fn test_dropping_the_pool_runs_queued_jobs_then_stops() {
    let pool = ThreadPool::new(1, "drop-test");
    let (tx, rx) = mpsc::channel();
    for i in 0..5 {
        let tx = tx.clone();
        pool.execute(Box::new(move || tx.send(i).unwrap()));
    }
    drop(tx);
    drop(pool);
    let got: Vec<i32> = rx.iter().collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}
