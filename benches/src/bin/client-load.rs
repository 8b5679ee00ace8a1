//! squall-httpclient as a load generator: the client side of the client benchmark.
//!
//! `client-load --url http://127.0.0.1:P/ [--connections N] [--seconds S]` runs N tasks
//! on one `IoLoop`, each fetching the URL in a loop through one shared `HttpClient`
//! (`max_clients` and idle connections per host both N), reading every body. It warms
//! up for a tenth of the run, then prints one line:
//! `requests=R seconds=S req_per_s=X cpu_us_per_req=Y`, where the CPU is this process's
//! user+system time (getrusage) over the counted part. `hyper-client-load` in
//! `benches/peers` does the same with hyper-util's client on tokio's current-thread
//! runtime.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use squall_httpclient::{ClientConfig, HttpClient, HttpRequest};
use squall_ioloop::IoLoop;

fn cpu_micros() -> f64 {
    // SAFETY: an all-zero rusage is a valid value to pass for getrusage to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the struct we pass.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
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
    let url: String = url.expect("--url");
    let io_loop = IoLoop::new().expect("loop");
    io_loop
        .run_sync(
            async move {
                let client = HttpClient::with_config(
                    ClientConfig::default()
                        .with_max_clients(connections)
                        .with_max_idle_per_host(connections),
                );
                let count = Rc::new(Cell::new(0u64));
                let stop = Rc::new(Cell::new(false));
                let l = IoLoop::current().expect("current loop");
                let mut tasks = Vec::new();
                for _ in 0..connections {
                    let (client, url, count, stop) =
                        (client.clone(), url.clone(), count.clone(), stop.clone());
                    tasks.push(l.spawn(async move {
                        while !stop.get() {
                            let r = client
                                .fetch(HttpRequest::new(url.as_str()).decompress_response(false))
                                .await
                                .expect("request");
                            std::hint::black_box(r.body);
                            count.set(count.get() + 1);
                        }
                    }));
                }
                squall_ioloop::sleep(Duration::from_secs_f64(seconds / 10.0)).await;
                let (n0, c0, t0) = (count.get(), cpu_micros(), Instant::now());
                squall_ioloop::sleep(Duration::from_secs_f64(seconds)).await;
                let (n1, c1, elapsed) = (count.get(), cpu_micros(), t0.elapsed().as_secs_f64());
                stop.set(true);
                for t in tasks {
                    t.await.expect("task");
                }
                let n = (n1 - n0) as f64;
                println!(
                    "requests={} seconds={elapsed:.3} req_per_s={:.0} cpu_us_per_req={:.2}",
                    n1 - n0,
                    n / elapsed,
                    (c1 - c0) / n
                );
            },
            None,
        )
        .expect("run");
}
