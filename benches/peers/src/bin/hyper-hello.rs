//! hyper 1.x hello-world server, the main peer of `cargo xtask bench`.
//!
//! `hyper-hello [--runtime current|multi] [--port P] [--threads N]` answers every request
//! with `Hello, world!` (13 bytes, `Content-Type: text/plain`), keep-alive on and
//! pipelined responses flushed together (`pipeline_flush`). `--threads` is the number of
//! worker threads of the multi-thread runtime (ignored by the current-thread one).
//! It prints `listening on ADDR` once bound and runs until killed.
//!
//! `--tls-cert FILE --tls-key FILE` serves HTTPS instead, through tokio-rustls with
//! rustls's `ring` provider (the TLS stack and crypto squall-tls uses), ALPN
//! `http/1.1`: the peer of the HTTPS row in BENCHMARKS.md.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const BODY: &[u8] = b"Hello, world!";

struct Args {
    multi: bool,
    port: u16,
    threads: usize,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        multi: false,
        port: 0,
        threads: 1,
        tls_cert: None,
        tls_key: None,
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
            "--tls-cert" => args.tls_cert = Some(value()?),
            "--tls-key" => args.tls_key = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(args)
}

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

/// The TLS acceptor for `--tls-cert`/`--tls-key`: rustls on the `ring` provider.
fn tls_acceptor(cert: &str, key: &str) -> Result<TlsAcceptor, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{cert}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
    #[allow(deprecated)] // ring's provider: the same one squall-tls uses.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One connection, plain or TLS.
async fn serve_connection<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: I) {
    let conn = http1::Builder::new()
        .keep_alive(true)
        .pipeline_flush(true)
        .serve_connection(TokioIo::new(io), service_fn(hello));
    if let Err(e) = conn.await {
        if !e.is_incomplete_message() {
            eprintln!("hyper-hello: connection: {e}");
        }
    }
}

async fn serve(port: u16, tls: Option<TlsAcceptor>) -> std::io::Result<()> {
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
        match &tls {
            None => drop(tokio::spawn(serve_connection(stream))),
            Some(acceptor) => {
                let accept = acceptor.accept(stream);
                tokio::spawn(async move {
                    match accept.await {
                        Ok(tls) => serve_connection(tls).await,
                        Err(e) => eprintln!("hyper-hello: handshake: {e}"),
                    }
                });
            }
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hyper-hello: {e}");
            eprintln!(
                "usage: hyper-hello [--runtime current|multi] [--port P] [--threads N] \
                 [--tls-cert FILE --tls-key FILE]"
            );
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
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key).unwrap_or_else(|e| {
            eprintln!("hyper-hello: {e}");
            std::process::exit(1);
        })),
        _ => None,
    };
    if let Err(e) = rt.block_on(serve(args.port, tls)) {
        eprintln!("hyper-hello: {e}");
        std::process::exit(1);
    }
}
