//! A WebSocket echo server: every message comes back as it was sent.
//!
//! ```text
//! cargo run --release -p squall-websocket --example ws_echo -- [--port 8888] [--address 127.0.0.1] [--plain]
//! ```
//!
//! Connect to `ws://127.0.0.1:8888/` (any path); a plain `GET` gets a line of text. It
//! accepts any origin and permessage-deflate (unless `--plain`), with limits large
//! enough for the Autobahn|Testsuite (`cargo xtask autobahn` runs it; `cargo xtask
//! wsbench` runs it `--plain`).

use std::process::ExitCode;

use squall_httpserver::{HttpServer, Response};
use squall_ioloop::IoLoop;
use squall_websocket::{
    websocket_response, DeflateConfig, Message, WebSocket, WebSocketConfig, WebSocketHandler,
};

struct Echo;

impl WebSocketHandler for Echo {
    fn check_origin(&self, _origin: &str, _host: &str) -> bool {
        true
    }

    async fn on_message(&mut self, ws: &WebSocket, message: Message) {
        let _ = ws.write_message(message);
    }
}

fn config(compression: bool) -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    // The suite's section 9 sends messages of up to 16 MiB and expects them back.
    config.max_message_size = 64 << 20;
    config.max_write_buffer_size = 256 << 20;
    config.compression = compression.then(DeflateConfig::default);
    config
}

fn main() -> ExitCode {
    let mut port: u16 = 8888;
    let mut address = String::from("127.0.0.1");
    let mut compression = true;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--plain" {
            compression = false;
            continue;
        }
        let ok = match (flag.as_str(), args.next()) {
            ("--port", Some(v)) => v.parse().map(|p| port = p).is_ok(),
            ("--address", Some(v)) => {
                address = v;
                true
            }
            _ => false,
        };
        if !ok {
            eprintln!("usage: ws_echo [--port PORT] [--address ADDR] [--plain]");
            return ExitCode::from(2);
        }
    }
    let result = IoLoop::new()
        .map_err(|e| e.to_string())
        .and_then(|io_loop| {
            let serve = async move {
                let config = config(compression);
                let mut server = HttpServer::new(move |req| {
                    let config = config.clone();
                    async move {
                        // A WebSocket handshake names `websocket` in Upgrade; any
                        // other upgrade (`h2c`) is ignored, as RFC 9110 §7.8 allows.
                        let websocket = req
                            .headers()
                            .get_all(http::header::UPGRADE)
                            .iter()
                            .filter_map(|v| v.to_str().ok())
                            .flat_map(|v| v.split(','))
                            .any(|t| t.trim().eq_ignore_ascii_case("websocket"));
                        if websocket {
                            websocket_response(&req, &config, Echo)
                        } else {
                            Response::text("A WebSocket echo server: connect with ws://\n")
                        }
                    }
                });
                let addr = server.listen(port, &address)?;
                println!("ws_echo: listening on ws://{addr}/");
                std::future::pending::<std::io::Result<()>>().await
            };
            match io_loop.run_sync(serve, None) {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws_echo: {e}");
            ExitCode::FAILURE
        }
    }
}
