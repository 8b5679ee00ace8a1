//! The tokio bridge: results, panics, cancellation both ways, and many calls at once,
//! awaited on a squall loop.

use std::sync::mpsc;
use std::time::Duration;

use squall_ioloop::{IoLoop, JoinError};
use squall_tokio::TokioBridge;

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn a_tokio_future_runs_on_the_bridge_and_resolves_on_the_loop() {
    let bridge = TokioBridge::new().unwrap();
    let io_loop = IoLoop::new().unwrap();
    let loop_thread = std::thread::current().id();
    let (out, tokio_thread) = io_loop
        .run_sync(
            async move {
                let out = bridge
                    .run(async {
                        // Needs tokio's timer: this would panic on the squall thread.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        let name = std::thread::current().name().map(str::to_owned);
                        (7, name)
                    })
                    .await
                    .unwrap();
                assert_eq!(std::thread::current().id(), loop_thread);
                out
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert_eq!(out, 7);
    assert_eq!(tokio_thread.as_deref(), Some("squall-tokio"));
}

#[test]
fn a_panic_on_the_tokio_side_is_a_typed_error_and_the_runtime_goes_on() {
    let bridge = TokioBridge::new().unwrap();
    let io_loop = IoLoop::new().unwrap();
    let (first, second) = io_loop
        .run_sync(
            async move {
                let first = bridge.run(async { panic!("driver bug") }).await;
                let second = bridge.run(async { 2 }).await;
                (first, second)
            },
            Some(PATIENCE),
        )
        .unwrap();
    let err = first.unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("driver bug"), "{err}");
    assert_eq!(second.unwrap(), 2);
}

/// Tells the test when it is dropped (on whichever thread drops it).
struct DropSignal(mpsc::Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[test]
fn dropping_the_bridged_future_cancels_the_tokio_task() {
    let bridge = TokioBridge::new().unwrap();
    let (tx, rx) = mpsc::channel();
    let (started_tx, started_rx) = mpsc::channel();
    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async move {
                let pending = bridge.run(async move {
                    let _signal = DropSignal(tx);
                    started_tx.send(()).unwrap();
                    std::future::pending::<()>().await;
                });
                started_rx.recv_timeout(PATIENCE).unwrap();
                drop(pending);
            },
            Some(PATIENCE),
        )
        .unwrap();
    rx.recv_timeout(PATIENCE)
        .expect("the tokio task was dropped after its Bridged future");
}

#[test]
fn dropping_the_last_bridge_stops_its_runtime_and_cancels_what_runs() {
    let bridge = TokioBridge::new().unwrap();
    let io_loop = IoLoop::new().unwrap();
    let outcome = io_loop
        .run_sync(
            async move {
                let pending = bridge.run(std::future::pending::<()>());
                // The runtime is told to stop here; its task is cancelled.
                drop(bridge);
                pending.await
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert!(matches!(outcome, Err(JoinError::Cancelled)), "{outcome:?}");
}

// A blocking task (spawn_blocking) still running does not hold up the drop of the
// last bridge: that drop happens on a loop's thread. The task finishes on its own.
#[test]
fn dropping_the_last_bridge_does_not_wait_for_blocking_work() {
    let bridge = TokioBridge::new().unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let (finished_tx, finished) = mpsc::channel();
    drop(bridge.handle().spawn_blocking(move || {
        started_tx.send(()).unwrap();
        let _ = released.recv();
        finished_tx.send(()).unwrap();
    }));
    started.recv_timeout(PATIENCE).unwrap();
    let (dropped_tx, dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(bridge);
        dropped_tx.send(()).unwrap();
    });
    // Deterministic: the blocking task cannot end before `release`, so a drop that
    // waited for it would never report.
    dropped
        .recv_timeout(PATIENCE)
        .expect("dropping the bridge waited for the blocking task");
    release.send(()).unwrap();
    finished.recv_timeout(PATIENCE).unwrap();
}

// A tokio task that holds the runtime's thread without yielding (a blocking call in
// async code, against tokio's rules) does not hold up the drop of the last bridge
// either: the drop tells the runtime to stop and does not wait for its thread.
#[test]
fn dropping_the_last_bridge_does_not_wait_for_a_task_that_never_yields() {
    let bridge = TokioBridge::new().unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    drop(bridge.handle().spawn(async move {
        started_tx.send(()).unwrap();
        let _ = released.recv();
    }));
    started.recv_timeout(PATIENCE).unwrap();
    let (dropped_tx, dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(bridge);
        dropped_tx.send(()).unwrap();
    });
    // Deterministic: the task cannot yield before `release`, so a drop that joined
    // the runtime's thread would never report.
    dropped
        .recv_timeout(PATIENCE)
        .expect("dropping the bridge waited for the runtime's thread");
    release.send(()).unwrap();
}

#[test]
fn many_calls_at_once_from_many_tasks() {
    const CALLS: u64 = 500;
    let bridge = TokioBridge::new().unwrap();
    let io_loop = IoLoop::new().unwrap();
    let sum = io_loop
        .run_sync(
            async move {
                let l = IoLoop::current().unwrap();
                let tasks: Vec<_> = (0..CALLS)
                    .map(|i| {
                        let b = bridge.clone();
                        l.spawn(async move {
                            b.run(async move {
                                tokio::task::yield_now().await;
                                i
                            })
                            .await
                            .unwrap()
                        })
                    })
                    .collect();
                let mut sum = 0;
                for t in tasks {
                    sum += t.await.unwrap();
                }
                sum
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert_eq!(sum, (0..CALLS).sum::<u64>());
}

#[test]
fn a_runtime_of_your_own() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _ = runtime.block_on(stop_rx);
    });
    let bridge = TokioBridge::from_handle(handle);
    let io_loop = IoLoop::new().unwrap();
    let n = io_loop
        .run_sync(async move { bridge.run(async { 5 }).await }, Some(PATIENCE))
        .unwrap()
        .unwrap();
    assert_eq!(n, 5);
    stop_tx.send(()).unwrap();
    thread.join().unwrap();
}
