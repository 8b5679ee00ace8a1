//! squall's main job: an HTTP/1.1 server on 127.0.0.1:8888 (Tornado's classic port).
//!
//! `GET /` answers `Hello, world!`, `POST /echo` answers with the request body, and
//! every request is logged on one line (method, path, status, time).
//!
//! ```text
//! cargo run --release --example hello -- [--port 8888] [--address 127.0.0.1] [--threads 1] [--quiet]
//! curl http://127.0.0.1:8888/
//! curl --data-binary @Cargo.toml http://127.0.0.1:8888/echo
//! ```
//!
//! `--threads N` serves on N threads, each with its own IOLoop, sharing the listening
//! socket. `--quiet` turns the per-request log off (the benchmarks use it).
//! `--tls-cert FILE --tls-key FILE` serves HTTPS with that certificate chain and key
//! (PEM): `curl --cacert ca.pem https://localhost:8888/`.

use std::process::ExitCode;
use std::sync::Arc;

use http::{Method, StatusCode};
use squall::http::{HttpServer, HttpServerConfig, HttpServerRequest, Response};

struct Args {
    port: u16,
    address: String,
    threads: usize,
    quiet: bool,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

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
                return Err(
                    "usage: hello [--port 8888] [--address 127.0.0.1] [--threads 1] \
                     [--quiet] [--tls-cert FILE --tls-key FILE]"
                        .into(),
                )
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
async fn app(req: HttpServerRequest) -> Response {
    match (req.path(), &req.method) {
        ("/", &Method::GET | &Method::HEAD) => Response::text("Hello, world!"),
        ("/echo", &Method::POST | &Method::PUT) => Response::bytes(req.body),
        ("/" | "/echo", _) => Response::new(StatusCode::METHOD_NOT_ALLOWED),
        _ => Response::text("Not found\n").with_status(StatusCode::NOT_FOUND),
    }
}

/// A logger for the example: one line per record on standard error.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
        }
    }
    fn flush(&self) {}
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(if args.quiet {
            log::LevelFilter::Warn
        } else {
            log::LevelFilter::Info
        });
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
    server.join();
    ExitCode::SUCCESS
}
