//! The client side of the Autobahn|Testsuite run: connects to `wstest -m fuzzingserver`,
//! runs every case (echoing each message back), then asks for the report.
//!
//! ```text
//! cargo run --release -p squall-websocket --example autobahn_client -- ws://127.0.0.1:9001 [--agent squall]
//! ```
//!
//! `cargo xtask autobahn` starts wstest and runs this.

use std::process::ExitCode;
use std::time::Duration;

use squall_ioloop::IoLoop;
use squall_websocket::{
    websocket_connect, ClientOptions, DeflateConfig, Message, WebSocketConfig, WebSocketError,
};

fn options() -> ClientOptions {
    let mut config = WebSocketConfig::default();
    // Section 9 sends messages of up to 16 MiB and expects them back.
    config.max_message_size = 64 << 20;
    config.max_write_buffer_size = 256 << 20;
    config.compression = Some(DeflateConfig::default());
    let mut options = ClientOptions::new(config);
    options.handshake_timeout = Some(Duration::from_secs(60));
    options
}

async fn run(base: &str, agent: &str) -> Result<(), WebSocketError> {
    let options = options();
    let ws = websocket_connect(&format!("{base}/getCaseCount"), &options).await?;
    let count: u32 = match ws.next().await {
        Some(Message::Text(text)) => text.trim().parse().unwrap_or(0),
        _ => 0,
    };
    while ws.next().await.is_some() {}
    println!("autobahn_client: {count} cases");
    for case in 1..=count {
        match websocket_connect(
            &format!("{base}/runCase?case={case}&agent={agent}"),
            &options,
        )
        .await
        {
            Ok(ws) => {
                while let Some(message) = ws.next().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => eprintln!("autobahn_client: case {case}: {e}"),
        }
    }
    let ws = websocket_connect(&format!("{base}/updateReports?agent={agent}"), &options).await?;
    while ws.next().await.is_some() {}
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let agent = match (args.next().as_deref(), args.next()) {
        (Some("--agent"), Some(agent)) => agent,
        _ => "squall".to_owned(),
    };
    let io_loop = match IoLoop::new() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autobahn_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    match io_loop.run_sync(async move { run(&base, &agent).await }, None) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("autobahn_client: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("autobahn_client: {e}");
            ExitCode::FAILURE
        }
    }
}
