//! An echo server: every byte a client sends comes back.
//!
//! ```text
//! cargo run --release -p squall-tcpserver --example echo -- --port 8888 [--address 127.0.0.1] [--threads 1]
//! ```
//!
//! Then `nc 127.0.0.1 8888`. The bench harness runs it with `--port P`.

use std::process::ExitCode;

use squall_ioloop::IoLoop;
use squall_iostream::{IoStream, StreamError};
use squall_tcpserver::{PeerAddr, ServerThreads, TcpServer};

/// The connection handler: read whatever arrived (up to 64 KiB), write it back.
async fn echo(stream: IoStream, _addr: PeerAddr) -> Result<(), StreamError> {
    stream.set_nodelay(true).ok();
    loop {
        let data = match stream.read_bytes(64 * 1024, true).await {
            Ok(d) => d,
            Err(StreamError::Closed(c)) if c.is_peer_gone() => return Ok(()),
            Err(e) => return Err(e),
        };
        stream.write(data).await?;
    }
}

fn main() -> ExitCode {
    let mut port: u16 = 8888;
    let mut address = String::from("127.0.0.1");
    let mut threads: usize = 1;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        let ok = match (a.as_str(), v) {
            ("--port", Some(v)) => v.parse().map(|p| port = p).is_ok(),
            ("--address", Some(v)) => {
                address = v;
                true
            }
            ("--threads", Some(v)) => v.parse().map(|n| threads = n).is_ok(),
            _ => false,
        };
        if !ok {
            eprintln!("usage: echo [--port PORT] [--address ADDR] [--threads N]");
            return ExitCode::from(2);
        }
    }
    if threads > 1 {
        let servers = match ServerThreads::start(threads, port, &address, || echo) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("echo: cannot listen on {address}:{port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "echo: listening on {:?} with {threads} threads",
            servers.local_addrs()
        );
        servers.join();
        return ExitCode::SUCCESS;
    }
    let io_loop = match IoLoop::new() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo: cannot create the loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = TcpServer::with_io_loop(&io_loop, echo);
    match server.listen(port, &address) {
        Ok(addrs) => println!(
            "echo: listening on {addrs:?} ({} poller)",
            io_loop.poller_name()
        ),
        Err(e) => {
            eprintln!("echo: cannot listen on {address}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = io_loop.start() {
        eprintln!("echo: loop failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
