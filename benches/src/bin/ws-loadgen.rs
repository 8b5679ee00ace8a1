//! `ws-loadgen`: WebSocket echo load for `cargo xtask wsbench`.
//!
//! ```text
//! ws-loadgen --url ws://127.0.0.1:P/ [--connections 64] [--duration SECS] [--size BYTES]
//! ws-loadgen --url ws://127.0.0.1:P/ --hold N
//! ```
//!
//! The load run keeps `connections` WebSockets busy, each sending one small text message
//! and waiting for its echo before the next (round trips, not a pipeline), and prints one
//! line of JSON: `{"round_trips":N,"per_sec":X,"errors":E}`. `--hold N` opens N
//! WebSockets, exchanges one message on each, prints `{"held":N}` and keeps them open
//! until its standard input closes (the memory run). It runs on squall's own client, on
//! one thread.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;
use std::time::{Duration, Instant};

use squall_ioloop::IoLoop;
use squall_websocket::{websocket_connect, ClientOptions, WebSocket};

struct Args {
    url: String,
    connections: usize,
    duration: Duration,
    size: usize,
    hold: Option<usize>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        connections: 64,
        duration: Duration::from_secs(5),
        size: 16,
        hold: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {value:?}"))
        };
        match flag.as_str() {
            "--url" => args.url = value.clone(),
            "--connections" => args.connections = number()?.max(1),
            "--duration" => {
                args.duration = Duration::from_secs_f64(
                    value
                        .parse::<f64>()
                        .map_err(|_| format!("--duration: {value:?}"))?,
                )
            }
            "--size" => args.size = number()?,
            "--hold" => args.hold = Some(number()?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.url.is_empty() {
        return Err("--url is required".into());
    }
    Ok(args)
}

async fn connect(url: &str) -> Option<WebSocket> {
    websocket_connect(url, &ClientOptions::default()).await.ok()
}

async fn load(args: Args) -> String {
    let io_loop = IoLoop::current().expect("a loop");
    let round_trips = Rc::new(Cell::new(0u64));
    let errors = Rc::new(Cell::new(0u64));
    let message = "x".repeat(args.size);
    let mut sockets = Vec::new();
    for _ in 0..args.connections {
        match connect(&args.url).await {
            Some(ws) => sockets.push(ws),
            None => errors.set(errors.get() + 1),
        }
    }
    let start = Instant::now();
    let deadline = start + args.duration;
    let mut tasks = Vec::new();
    for ws in sockets {
        let (round_trips, errors, message) = (round_trips.clone(), errors.clone(), message.clone());
        tasks.push(io_loop.spawn(async move {
            while Instant::now() < deadline {
                if ws.write_message(message.as_str()).is_err() || ws.next().await.is_none() {
                    errors.set(errors.get() + 1);
                    return;
                }
                round_trips.set(round_trips.get() + 1);
            }
            let _ = ws.close(None, "");
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let secs = start.elapsed().as_secs_f64();
    format!(
        "{{\"round_trips\":{},\"per_sec\":{:.1},\"errors\":{}}}",
        round_trips.get(),
        round_trips.get() as f64 / secs,
        errors.get()
    )
}

async fn hold(url: String, n: usize) -> Result<Vec<WebSocket>, String> {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let ws = connect(&url)
            .await
            .ok_or_else(|| format!("connection {i} failed"))?;
        ws.write_message("hello").map_err(|e| e.to_string())?;
        ws.next()
            .await
            .ok_or_else(|| format!("connection {i}: no echo"))?;
        held.push(ws);
    }
    Ok(held)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ws-loadgen: {e}");
            std::process::exit(2);
        }
    };
    let io_loop = IoLoop::new().expect("an IoLoop");
    match args.hold {
        Some(n) => match io_loop.run_sync(hold(args.url, n), None) {
            Ok(Ok(held)) => {
                println!("{{\"held\":{}}}", held.len());
                // Keep them until the parent closes our standard input.
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
                drop(held);
            }
            Ok(Err(e)) => {
                eprintln!("ws-loadgen: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("ws-loadgen: {e}");
                std::process::exit(1);
            }
        },
        None => match io_loop.run_sync(load(args), None) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("ws-loadgen: {e}");
                std::process::exit(1);
            }
        },
    }
}
