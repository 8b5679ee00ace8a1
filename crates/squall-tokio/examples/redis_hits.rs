//! An HTTP endpoint that counts its hits in Redis, through the tokio-based `redis`
//! crate, on squall's loop: what a Tornado user does with an asyncio Redis client.
//!
//! ```text
//! redis-server --port 6379 &
//! cargo run -p squall-tokio --example redis_hits -- [--port 8888] [--redis redis://127.0.0.1:6379/]
//! curl http://127.0.0.1:8888/hits      # 1, then 2, 3...
//! ```
//!
//! `GET /hits` increments the counter `squall:hits` and answers its new value; Redis
//! being down is a 503 with the client's error, not a crash. SIGTERM or Ctrl-C shuts
//! down gracefully.
//!
//! The squall loop serves HTTP; the Redis client lives on the bridge's tokio thread.
//! Each request hands one `INCR` to tokio with `bridge.run(...)` and awaits the answer
//! on the loop.

use std::process::ExitCode;
use std::time::Duration;

use http::StatusCode;
use squall_httpserver::{HttpServer, HttpServerRequest, Response};
use squall_ioloop::IoLoop;
use squall_tokio::TokioBridge;

/// The key the endpoint increments.
const KEY: &str = "squall:hits";
/// How long one Redis call may take.
const REDIS_DEADLINE: Duration = Duration::from_secs(5);

struct Args {
    port: u16,
    address: String,
    redis: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 8888,
        address: "127.0.0.1".to_owned(),
        redis: "redis://127.0.0.1:6379/".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                let v = value("--port")?;
                args.port = v.parse().map_err(|e| format!("--port {v}: {e}"))?;
            }
            "--address" => args.address = value("--address")?,
            "--redis" => args.redis = value("--redis")?,
            _ => {
                return Err(
                    "usage: redis_hits [--port 8888] [--address 127.0.0.1] [--redis URL]".into(),
                )
            }
        }
    }
    Ok(args)
}

/// The handler: one `INCR` on the tokio side per hit.
async fn hits(
    req: HttpServerRequest,
    bridge: TokioBridge,
    conn: redis::aio::MultiplexedConnection,
) -> Response {
    if req.path() != "/hits" {
        return Response::text("try /hits\n").with_status(StatusCode::NOT_FOUND);
    }
    let incr = bridge.run(async move {
        let mut conn = conn;
        let mut incr = redis::cmd("INCR");
        let query = incr.arg(KEY).query_async::<i64>(&mut conn);
        // A deadline of our own: a Redis that stops answering is a 503, not a hang.
        match tokio::time::timeout(REDIS_DEADLINE, query).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {REDIS_DEADLINE:?}")),
        }
    });
    match incr.await {
        Ok(Ok(n)) => Response::text(format!("{n}\n")),
        Ok(Err(e)) => {
            Response::text(format!("redis: {e}\n")).with_status(StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(e) => Response::text(format!("the redis call failed: {e}\n"))
            .with_status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redis_hits: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let bridge = TokioBridge::new()?;
    let client = redis::Client::open(args.redis.as_str())?;
    let io_loop = IoLoop::new()?;
    // Connect once, on the tokio side (the multiplexed connection's driver is a tokio
    // task); its handle is cheap to clone into each request.
    let conn = io_loop.run_sync(
        bridge.run(async move { client.get_multiplexed_async_connection().await }),
        Some(Duration::from_secs(10)),
    )???;
    let b = bridge.clone();
    let mut server = HttpServer::new(move |req| hits(req, b.clone(), conn.clone()));
    io_loop.run_sync(
        async move {
            let addr = server.listen(args.port, &args.address)?;
            let until_signal = server.shutdown_on_signal(Duration::from_secs(10))?;
            println!("redis_hits listening on http://{addr}/hits");
            until_signal.await;
            Ok::<_, std::io::Error>(())
        },
        None,
    )??;
    Ok(())
}
