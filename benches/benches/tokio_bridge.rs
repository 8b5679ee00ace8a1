//! The cost of the door to tokio, per call, awaited from a squall task:
//!
//! - `bridge`: `TokioBridge::run(async { n })` on the bridge's current-thread runtime
//!   (spawn on tokio, wake the tokio thread, wake the loop back through its waker fd);
//! - `run_in_executor`: `IoLoop::run_in_executor(|| n)` on a one-thread pool, the same
//!   round trip through a plain thread;
//! - `local`: `IoLoop::spawn(async { n })` awaited on the loop, the floor (no thread).
//!
//! Calls are sequential (each awaited before the next), so each figure is one full
//! round trip's latency, the worst case; concurrent calls overlap their wake-ups.

use std::time::{Duration, Instant};

use criterion::Criterion;
use squall_ioloop::{run_on, IoLoop, ThreadPool};
use squall_tokio::TokioBridge;

/// Runs `iters` sequential calls of `call` inside one `run_sync`, timed inside the
/// loop (the loop's own start-up is not in the figure).
fn timed<F, Fut>(io_loop: &IoLoop, iters: u64, call: F) -> Duration
where
    F: Fn(u64) -> Fut + 'static,
    Fut: std::future::Future<Output = u64> + 'static,
{
    io_loop
        .run_sync(
            async move {
                let t0 = Instant::now();
                let mut sum = 0u64;
                for i in 0..iters {
                    sum = sum.wrapping_add(call(i).await);
                }
                std::hint::black_box(sum);
                t0.elapsed()
            },
            None,
        )
        .expect("run_sync")
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let io_loop = IoLoop::new().expect("loop");
    let bridge = TokioBridge::new().expect("bridge");
    let pool = ThreadPool::new(1, "bench-pool");
    let mut g = c.benchmark_group("door_call");
    g.bench_function("bridge", |b| {
        b.iter_custom(|iters| {
            let bridge = bridge.clone();
            timed(&io_loop, iters, move |i| {
                let call = bridge.run(async move { i });
                async move { call.await.expect("bridged") }
            })
        })
    });
    g.bench_function("run_in_executor", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            timed(&io_loop, iters, move |i| {
                let call = run_on(&pool, move || i);
                async move { call.await.expect("pool") }
            })
        })
    });
    g.bench_function("local", |b| {
        b.iter_custom(|iters| {
            let l = io_loop.clone();
            timed(&io_loop, iters, move |i| {
                let task = l.spawn(async move { i });
                async move { task.await.expect("task") }
            })
        })
    });
    g.finish();
    c.final_summary();
}
