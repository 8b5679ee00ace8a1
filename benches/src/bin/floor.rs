//! `floor [--port P]`: runs "the floor" (see `squall_benches::floor`) on 127.0.0.1,
//! prints `listening on ADDR` once bound, and serves until killed.

use std::io::Write;
use std::net::TcpListener;

use squall_benches::floor::Floor;

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
