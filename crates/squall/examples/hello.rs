//! squall's main job: an HTTP/1.1 server on 127.0.0.1:8888 (Tornado's classic port).
//!
//! `GET /` answers `Hello, world!`, `POST /echo` answers with the request body, and
//! every request is logged on one line on standard error (status, method, path, client,
//! time), Tornado's access log.
//!
//! ```text
//! cargo run --release --example hello -- [--port 8888] [--address 127.0.0.1] [--threads 1] [--quiet]
//! curl http://127.0.0.1:8888/
//! curl --data-binary @Cargo.toml http://127.0.0.1:8888/echo
//! ```
//!
//! `--threads N` serves on N threads, each with its own IOLoop, sharing the listening
//! socket; with one (the default) the server runs on the main thread's loop, and the
//! process has no other thread. `--quiet` turns the per-request log off (and logs warnings and errors only,
//! unless `RUST_LOG` says otherwise).
//!
//! The log costs no system call per request: squall's [`LoopLogger`] formats each line
//! into a buffer of the thread that served the request and writes the buffer once per
//! loop iteration, so a busy server writes many lines at once. `RUST_LOG` chooses what is
//! logged, as with `env_logger` (`RUST_LOG=debug`, `RUST_LOG=warn,squall_httpserver=info`;
//! the access log's target is `squall_httpserver::access`); without it, `info`.
//!
//! `--tls-cert FILE --tls-key FILE` serves HTTPS with that certificate chain and key
//! (PEM): `curl --cacert ca.pem https://localhost:8888/`.
//!
//! SIGTERM or Ctrl-C shuts down gracefully: requests in flight finish, then the process
//! exits 0.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http::header::ALLOW;
use http::{HeaderValue, Method, StatusCode};
use log::LevelFilter;
use squall::http::{HttpServer, HttpServerConfig, HttpServerRequest, Response, ACCESS_LOG_TARGET};
use squall::ioloop::logger::{Filter, LoopLogger};
use squall::IoLoop;

struct Args {
    port: u16,
    address: String,
    threads: usize,
    quiet: bool,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

/// The command line, for `--help`.
const USAGE: &str = "usage: hello [--port 8888] [--address 127.0.0.1] [--threads 1] \
                     [--quiet] [--tls-cert FILE --tls-key FILE]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 8888,
        address: "127.0.0.1".to_owned(),
        threads: 1,
        quiet: false,
        tls_cert: None,
        tls_key: None,
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
            "--threads" => {
                let v = value("--threads")?;
                args.threads = v.parse().map_err(|e| format!("--threads {v}: {e}"))?;
                if args.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "--quiet" => args.quiet = true,
            "--tls-cert" => args.tls_cert = Some(value("--tls-cert")?),
            "--tls-key" => args.tls_key = Some(value("--tls-key")?),
            "-h" | "--help" => {
                // Asked for: on stdout, and a success.
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(args)
}

/// The whole application: two routes.
///
/// A function returning an `async move` block rather than an `async fn`: an `async fn`
/// keeps its argument twice in its future (as passed, and as the local it becomes), so
/// each request would be copied once more (about 280 bytes).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn stores its argument twice"
)]
fn app(req: HttpServerRequest) -> impl Future<Output = Response> {
    async move {
        match (req.path(), &req.method) {
            ("/", &Method::GET | &Method::HEAD) => Response::text("Hello, world!"),
            ("/echo", &Method::POST | &Method::PUT) => Response::bytes(req.body),
            // RFC 9110 §15.5.6: a 405 names the methods the resource allows.
            ("/", _) => Response::new(StatusCode::METHOD_NOT_ALLOWED)
                .with_header(ALLOW, HeaderValue::from_static("GET, HEAD")),
            ("/echo", _) => Response::new(StatusCode::METHOD_NOT_ALLOWED)
                .with_header(ALLOW, HeaderValue::from_static("POST, PUT")),
            _ => Response::text("Not found\n").with_status(StatusCode::NOT_FOUND),
        }
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
    let default = if args.quiet { "warn" } else { "info" };
    let filter = match Filter::from_env("RUST_LOG", default) {
        Ok(f) if args.quiet => f.directive(ACCESS_LOG_TARGET, LevelFilter::Off),
        Ok(f) => f,
        Err(e) => {
            eprintln!("RUST_LOG: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = LoopLogger::new(filter).init() {
        eprintln!("cannot set up the log: {e}");
        return ExitCode::FAILURE;
    }

    let mut server = HttpServer::new(app);
    let mut scheme = "http";
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        // Checked here, at start-up: a bad file fails now, not at the first client.
        let tls = match squall_tls::TlsServerConfig::from_pem_files(cert, key) {
            Ok(tls) => tls,
            Err(e) => {
                eprintln!("cannot load the TLS certificate: {e}");
                return ExitCode::FAILURE;
            }
        };
        let config = HttpServerConfig {
            stream_setup: Some(Arc::new(squall_tls::TlsAcceptor::new(tls))),
            ..server.config().clone()
        };
        server = server.with_config(config);
        scheme = "https";
    }
    // SIGTERM or Ctrl-C: finish the requests in flight (for up to 10 s), then exit.
    let grace = Duration::from_secs(10);
    if args.threads == 1 {
        // One thread: the server runs on this thread's own loop (as tokio's
        // current-thread runtime does), so the process has no other thread. That is
        // cheaper than a serving thread beside a waiting one: the C library and the
        // kernel skip their locking for a single-threaded process (the kernel's
        // reference count on each fd lookup, glibc's allocator locks).
        let io_loop = match IoLoop::new() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot create the loop: {e}");
                return ExitCode::FAILURE;
            }
        };
        let served = io_loop.run_sync(
            async move {
                let addr = server
                    .listen(args.port, &args.address)
                    .map_err(|e| format!("cannot listen on {}:{}: {e}", args.address, args.port))?;
                println!("squall hello listening on {scheme}://{addr}/ with 1 thread(s)");
                let signal = server
                    .shutdown_on_signal(grace)
                    .map_err(|e| format!("cannot wait for a shutdown signal: {e}"))?;
                signal.await;
                Ok::<(), String>(())
            },
            None,
        );
        return match served {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("the loop failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let addr = match server.bind(args.port, &args.address) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("cannot listen on {}:{}: {e}", args.address, args.port);
            return ExitCode::FAILURE;
        }
    };
    // On standard output, whatever the log level: it is what the user waits for, not a
    // warning.
    println!(
        "squall hello listening on {scheme}://{addr}/ with {} thread(s)",
        args.threads
    );
    if let Err(e) = server.start(args.threads) {
        eprintln!("cannot start the server threads: {e}");
        return ExitCode::FAILURE;
    }
    match server.run_until_signal(grace) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot wait for a shutdown signal: {e}");
            ExitCode::FAILURE
        }
    }
}
