//! hyper-util's pooled client as a load generator: the peer of `squall-client-load`.
//!
//! `hyper-client-load --url http://127.0.0.1:P/ [--connections N] [--seconds S]` runs N
//! tasks on tokio's current-thread runtime, each fetching the URL in a loop through one
//! shared `hyper_util::client::legacy::Client` (keep-alive pool, at most N idle
//! connections), reading every body to the end. It warms up for a tenth of the run, then
//! prints one line: `requests=R seconds=S req_per_s=X cpu_us_per_req=Y`, where the CPU
//! is this process's user+system time (getrusage) over the counted part.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn cpu_micros() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc_rusage::Rusage>::zeroed();
    // SAFETY: getrusage writes one rusage into the zeroed struct we pass.
    let rc = unsafe { libc_rusage::getrusage(0, ru.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: getrusage succeeded, so the struct is initialised.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc_rusage::Timeval| t.sec as f64 * 1e6 + t.usec as f64;
    tv(ru.utime) + tv(ru.stime)
}

/// The two fields of `struct rusage` we read, declared here so the peers need no libc
/// crate (Linux x86_64/aarch64 layout: two timevals first).
mod libc_rusage {
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct Timeval {
        pub sec: i64,
        pub usec: i64,
    }
    #[repr(C)]
    pub struct Rusage {
        pub utime: Timeval,
        pub stime: Timeval,
        pub rest: [i64; 14],
    }
    extern "C" {
        pub fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
}

fn main() {
    let mut url = None;
    let mut connections = 1usize;
    let mut seconds = 5.0f64;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value),
            "--connections" => connections = value.parse().expect("--connections"),
            "--seconds" => seconds = value.parse().expect("--seconds"),
            other => panic!("unknown argument {other:?}"),
        }
    }
    let url: hyper::Uri = url.expect("--url").parse().expect("a valid URL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .build_http();
        let count = Rc::new(Cell::new(0u64));
        let stop = Rc::new(Cell::new(false));
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (client, url, count, stop) = (client.clone(), url.clone(), count.clone(), stop.clone());
            tasks.push(tokio::task::spawn_local(async move {
                while !stop.get() {
                    let res = client.get(url.clone()).await.expect("request");
                    assert!(res.status().is_success());
                    let body = res.into_body().collect().await.expect("body");
                    std::hint::black_box(body.to_bytes());
                    count.set(count.get() + 1);
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs_f64(seconds / 10.0)).await;
        let (n0, c0, t0) = (count.get(), cpu_micros(), Instant::now());
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let (n1, c1, elapsed) = (count.get(), cpu_micros(), t0.elapsed().as_secs_f64());
        stop.set(true);
        for t in tasks {
            let _ = t.await;
        }
        let n = (n1 - n0) as f64;
        println!(
            "requests={} seconds={elapsed:.3} req_per_s={:.0} cpu_us_per_req={:.2}",
            n1 - n0,
            n / elapsed,
            (c1 - c0) / n
        );
    });
}
