//! `floor [--port P]`: runs "the floor" (see `squall_benches::floor`) on 127.0.0.1,
//! prints `listening on ADDR` once bound, and serves until killed. Linux only (epoll).

#[cfg(target_os = "linux")]
use std::io::Write;
#[cfg(target_os = "linux")]
use std::net::TcpListener;

#[cfg(target_os = "linux")]
use squall_benches::floor::Floor;

#[cfg(target_os = "linux")]
fn main() {
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next().map(|v| v.parse::<u16>())) {
            ("--port", Some(Ok(p))) => port = p,
            _ => {
                eprintln!("usage: floor [--port P]");
                std::process::exit(2);
            }
        }
    }
    let result = TcpListener::bind(("127.0.0.1", port))
        .and_then(Floor::new)
        .and_then(|mut floor| {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {}", floor.local_addr()?)?;
            out.flush()?;
            floor.run()
        });
    if let Err(e) = result {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}

/// The floor is an epoll program: elsewhere it says so and exits.
#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!(
        "floor: an epoll program, Linux only (this is {})",
        std::env::consts::OS
    );
    std::process::exit(1);
}
