//! squall's IOLoop beside tokio's current-thread runtime, same work in the same run:
//!
//! - `callbacks`: N `add_callback`s run to completion (tokio: N spawned closures);
//! - `spawn`: N trivial futures spawned and completed;
//! - `timers`: 1M timers scheduled and cancelled (tokio: 1M `sleep`s registered with
//!   the timer wheel by one poll each, then dropped);
//! - `dispatch`: ping-pong of one byte over a socket pair, one handler call (tokio: one
//!   task wake) per event.
//!
//! After the criterion groups, a short best-of-5 run of each prints the ratio
//! tokio time / squall time (above 1 means squall is faster).

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use squall_ioloop::{Interest, IoLoop};

const CALLBACKS: u64 = 10_000;
const SPAWNS: u64 = 10_000;
const TIMERS: u64 = 1_000_000;
const PINGS: u64 = 2_000;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    COUNT.with(|c| c.set(c.get() + 1));
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ------------------------------------------------------------------ the work

fn squall_callbacks(l: &IoLoop, n: u64) {
    for _ in 0..n {
        l.add_callback(bump);
    }
    let lp = l.clone();
    l.add_callback(move || lp.stop());
    l.start().unwrap();
}

fn tokio_callbacks(rt: &tokio::runtime::Runtime, n: u64) {
    rt.block_on(async {
        for _ in 1..n {
            drop(tokio::spawn(async { bump() }));
        }
        tokio::spawn(async { bump() }).await.unwrap();
    });
}

fn squall_spawn(l: &IoLoop, n: u64) {
    let lp = l.clone();
    l.run_sync(
        async move {
            for _ in 1..n {
                drop(lp.spawn(async { bump() }));
            }
            lp.spawn(async { bump() }).await.unwrap();
        },
        None,
    )
    .unwrap();
}

fn tokio_spawn(rt: &tokio::runtime::Runtime, n: u64) {
    rt.block_on(async {
        for _ in 1..n {
            drop(tokio::spawn(async { bump() }));
        }
        tokio::spawn(async { bump() }).await.unwrap();
    });
}

fn squall_timers(l: &IoLoop, handles: &mut Vec<squall_ioloop::Timeout>, n: u64) {
    handles.clear();
    for i in 0..n {
        handles.push(l.call_later(Duration::from_secs(3600 + (i % 1000)), bump));
    }
    for &t in handles.iter() {
        l.remove_timeout(t);
    }
}

fn tokio_timers(rt: &tokio::runtime::Runtime, n: u64) {
    rt.block_on(async {
        let mut sleeps: Vec<Pin<Box<tokio::time::Sleep>>> = (0..n)
            .map(|i| Box::pin(tokio::time::sleep(Duration::from_secs(3600 + (i % 1000)))))
            .collect();
        // One poll each registers the timer with the wheel, as call_later does.
        poll_fn(|cx| {
            for s in sleeps.iter_mut() {
                let _ = s.as_mut().poll(cx);
            }
            Poll::Ready(())
        })
        .await;
        drop(sleeps);
    });
}

/// Two handlers bounce one byte `n` times: each event is a dispatch, a read and a write.
fn squall_dispatch(l: &IoLoop, n: u64) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let left = Rc::new(Cell::new(n));
    let fds = [a.as_raw_fd(), b.as_raw_fd()];
    // Kick off: a byte for `b`; from then on each handler answers its peer.
    (&a).write_all(b"x").unwrap();
    for s in [a, b] {
        let (lp, left) = (l.clone(), left.clone());
        l.add_handler(s.as_raw_fd(), Interest::READ, move |_, _| {
            let mut buf = [0u8; 1];
            if (&s).read(&mut buf).unwrap_or(0) == 0 {
                return;
            }
            let k = left.get() - 1;
            left.set(k);
            if k == 0 {
                lp.stop();
            } else {
                (&s).write_all(b"x").unwrap();
            }
        })
        .unwrap();
    }
    l.start().unwrap();
    for fd in fds {
        drop(l.remove_handler(fd));
    }
}

fn tokio_dispatch(rt: &tokio::runtime::Runtime, n: u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rt.block_on(async {
        let (mut a, mut b) = tokio::net::UnixStream::pair().unwrap();
        let half = n / 2;
        let t = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            for _ in 0..half {
                b.read_exact(&mut buf).await.unwrap();
                b.write_all(b"x").await.unwrap();
            }
        });
        let mut buf = [0u8; 1];
        for _ in 0..half {
            a.write_all(b"x").await.unwrap();
            a.read_exact(&mut buf).await.unwrap();
        }
        t.await.unwrap();
    });
}

// ---------------------------------------------------------------- criterion

fn benches(c: &mut Criterion) {
    let l = IoLoop::new().unwrap();
    let rt = tokio_rt();

    let mut g = c.benchmark_group("ioloop/callbacks");
    g.throughput(Throughput::Elements(CALLBACKS));
    g.bench_function(BenchmarkId::new("squall", CALLBACKS), |b| {
        b.iter(|| squall_callbacks(&l, CALLBACKS))
    });
    g.bench_function(BenchmarkId::new("tokio", CALLBACKS), |b| {
        b.iter(|| tokio_callbacks(&rt, CALLBACKS))
    });
    g.finish();

    let mut g = c.benchmark_group("ioloop/spawn");
    g.throughput(Throughput::Elements(SPAWNS));
    g.bench_function(BenchmarkId::new("squall", SPAWNS), |b| {
        b.iter(|| squall_spawn(&l, SPAWNS))
    });
    g.bench_function(BenchmarkId::new("tokio", SPAWNS), |b| {
        b.iter(|| tokio_spawn(&rt, SPAWNS))
    });
    g.finish();

    let mut g = c.benchmark_group("ioloop/timers");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TIMERS));
    let mut handles = Vec::with_capacity(TIMERS as usize);
    g.bench_function(BenchmarkId::new("squall", TIMERS), |b| {
        b.iter(|| squall_timers(&l, &mut handles, TIMERS))
    });
    g.bench_function(BenchmarkId::new("tokio", TIMERS), |b| {
        b.iter(|| tokio_timers(&rt, TIMERS))
    });
    g.finish();

    let mut g = c.benchmark_group("ioloop/dispatch");
    g.throughput(Throughput::Elements(PINGS));
    g.bench_function(BenchmarkId::new("squall", PINGS), |b| {
        b.iter(|| squall_dispatch(&l, PINGS))
    });
    g.bench_function(BenchmarkId::new("tokio", PINGS), |b| {
        b.iter(|| tokio_dispatch(&rt, PINGS))
    });
    g.finish();
}

/// Best of `reps` runs of `f`.
fn best(reps: usize, mut f: impl FnMut()) -> Duration {
    (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn ratios() {
    let l = IoLoop::new().unwrap();
    let rt = tokio_rt();
    let mut handles = Vec::with_capacity(TIMERS as usize);
    let rows: [(&str, Duration, Duration, f64); 4] = [
        (
            "callbacks",
            best(5, || squall_callbacks(&l, CALLBACKS)),
            best(5, || tokio_callbacks(&rt, CALLBACKS)),
            2.0,
        ),
        (
            "spawn",
            best(5, || squall_spawn(&l, SPAWNS)),
            best(5, || tokio_spawn(&rt, SPAWNS)),
            2.0,
        ),
        (
            "timers",
            best(3, || squall_timers(&l, &mut handles, TIMERS)),
            best(3, || tokio_timers(&rt, TIMERS)),
            1.5,
        ),
        (
            "dispatch",
            best(5, || squall_dispatch(&l, PINGS)),
            best(5, || tokio_dispatch(&rt, PINGS)),
            1.0,
        ),
    ];
    println!("\nioloop: tokio time / squall time (higher is better for squall)");
    for (name, ours, theirs, aim) in rows {
        let ratio = theirs.as_secs_f64() / ours.as_secs_f64().max(1e-12);
        println!(
            "  {name:<10} squall {ours:>10.3?}  tokio {theirs:>10.3?}  ratio {ratio:5.2}x  (aim {aim}x)"
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    ratios();
}
