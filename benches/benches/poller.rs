//! One poll round trip per backend: make one fd ready, poll, collect the events, drain
//! the fd again. With 1 registered fd, and with 1,000 (999 idle fds beside the ready
//! one), so that the cost of the size of the interest set is visible: epoll keeps it in
//! the kernel, poll and select hand the whole set over and scan it on every wait. The
//! ready fd is the last one both backends' kernels look at (their worst case).
//!
//! Run with `cargo bench -p squall-benches --bench poller`.

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use squall_poller::{sys, Events, Interest, Poller};

/// Makes a fresh poller.
type MakePoller = fn() -> Box<dyn Poller>;

/// The backends measured, by name.
fn backends() -> Vec<(&'static str, MakePoller)> {
    vec![
        #[cfg(any(target_os = "linux", target_os = "android"))]
        ("epoll", || {
            Box::new(squall_epoll::Epoll::new().expect("epoll"))
        }),
        ("poll", || Box::new(squall_poll::Poll::new())),
        ("select", || Box::new(squall_select::Select::new())),
    ]
}

/// A poller with `n` registered fds, one of which (`hot`) the round trip makes ready.
struct Setup {
    poller: Box<dyn Poller>,
    hot_read: File,
    hot_write: File,
    _idle: Vec<OwnedFd>,
    _idle_writer: OwnedFd,
}

fn setup(make: MakePoller, n: usize) -> Setup {
    let mut poller = make();
    let (idle_read, idle_writer) = sys::pipe().expect("pipe");
    // Dups of an empty pipe end: open, registered, never ready.
    let idle: Vec<OwnedFd> = (1..n)
        .map(|_| idle_read.try_clone().expect("dup"))
        .collect();
    // The ready fd comes last both in fd order (select's scan) and in registration order
    // (poll's scan): the kernel looks at every idle fd, and sets up a wait-queue entry for
    // each, before it finds the ready one. The same worst case for both.
    let (hot_read, hot_write) = sys::pipe().expect("pipe");
    for fd in &idle {
        poller
            .register(fd.as_raw_fd(), Interest::READ)
            .expect("register idle fd");
    }
    poller
        .register(hot_read.as_raw_fd(), Interest::READ)
        .expect("register hot fd");
    Setup {
        poller,
        hot_read: File::from(hot_read),
        hot_write: File::from(hot_write),
        _idle: idle,
        _idle_writer: idle_writer,
    }
}

fn poll_round_trip(c: &mut Criterion) {
    raise_nofile_limit(1100);
    let mut group = c.benchmark_group("poll_round_trip");
    for (name, make) in backends() {
        for n in [1usize, 1000] {
            let mut s = setup(make, n);
            let hot = s.hot_read.as_raw_fd();
            let mut events = Events::with_capacity(1024);
            let mut byte = [0u8; 1];
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    (&s.hot_write).write_all(b"x").expect("write");
                    let got = s
                        .poller
                        .poll(&mut events, Some(Duration::from_secs(5)))
                        .expect("poll");
                    let mut ready = 0;
                    for e in &events {
                        if e.fd == hot && e.ready.is_readable() {
                            ready += 1;
                        }
                    }
                    assert_eq!((got, ready), (1, 1), "the hot fd alone is ready");
                    (&s.hot_read).read_exact(&mut byte).expect("read");
                    black_box(byte);
                });
            });
        }
    }
    group.finish();
}

/// 1,000 fds plus criterion's own may pass a soft limit of 1024.
fn raise_nofile_limit(want: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < want {
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: `lim` is a live rlimit whose soft limit does not exceed the hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            eprintln!(
                "could not raise RLIMIT_NOFILE: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

criterion_group!(benches, poll_round_trip);
criterion_main!(benches);
