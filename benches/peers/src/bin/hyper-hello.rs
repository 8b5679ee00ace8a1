//! hyper 1.x hello-world server, the main peer of `cargo xtask bench`.
//!
//! `hyper-hello [--runtime current|multi] [--port P] [--threads N]` answers every request
//! with `Hello, world!` (13 bytes, `Content-Type: text/plain`), keep-alive on and
//! pipelined responses flushed together (`pipeline_flush`). `--threads` is the number of
//! worker threads of the multi-thread runtime (ignored by the current-thread one).
//! It prints `listening on ADDR` once bound and runs until killed.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = b"Hello, world!";

struct Args {
    multi: bool,
    port: u16,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        multi: false,
        port: 0,
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--runtime" => match value()?.as_str() {
                "current" => args.multi = false,
                "multi" => args.multi = true,
                other => {
                    return Err(format!(
                        "--runtime: expected current or multi, got {other:?}"
                    ))
                }
            },
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--threads" => {
                args.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?;
                if args.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and friends: report and keep serving the open connections.
                eprintln!("hyper-hello: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .keep_alive(true)
                .pipeline_flush(true)
                .serve_connection(TokioIo::new(stream), service_fn(hello));
            if let Err(e) = conn.await {
                if !e.is_incomplete_message() {
                    eprintln!("hyper-hello: connection: {e}");
                }
            }
        });
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hyper-hello: {e}");
            eprintln!("usage: hyper-hello [--runtime current|multi] [--port P] [--threads N]");
            std::process::exit(2);
        }
    };
    let rt = if args.multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let rt = rt.unwrap_or_else(|e| {
        eprintln!("hyper-hello: runtime: {e}");
        std::process::exit(1);
    });
    if let Err(e) = rt.block_on(serve(args.port)) {
        eprintln!("hyper-hello: {e}");
        std::process::exit(1);
    }
}
