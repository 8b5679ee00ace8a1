//! `fetch URL`: a small command-line fetcher, like `python -m tornado.httpclient URL`.
//!
//! ```text
//! cargo run -p squall-httpclient --example fetch -- [OPTIONS] URL...
//!   --method M            the method (default GET, or POST with --data)
//!   --header 'K: V'       a request header (repeatable)
//!   --data TEXT           the request body (@FILE reads a file)
//!   --follow-redirects    follow redirects (the default, as Tornado's)
//!   --no-follow-redirects return a redirect as the answer
//!   --max-redirects N     at most N redirects (default 5)
//!   --print-headers       print the status line and headers before the body
//!   --timeout SECS        connect and request timeout (default 20)
//!   --proxy URL           an HTTP proxy, http://[user:pass@]host:port
//!   --cacert FILE         trust the CA certificates of a PEM file for https
//!   --insecure            do not verify the https server's certificate
//!   --help, -h            print this usage and exit
//! ```
//!
//! https needs the crate's `tls` feature, which `cargo run --example` turns on.
//!
//! The body goes to standard output; a failure (a non-2xx status included) goes to
//! standard error, with exit status 1 (2 for a usage error). A non-2xx answer is
//! printed first, as any other (as Tornado's `main` prints an error's response): with
//! `--no-follow-redirects --print-headers` a redirect shows its `Location`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use http::Method;
use squall_httpclient::{HttpClient, HttpClientError, HttpRequest, Proxy};
use squall_ioloop::IoLoop;

struct Options {
    method: Option<Method>,
    headers: Vec<(String, String)>,
    data: Option<Vec<u8>>,
    follow: bool,
    max_redirects: u32,
    print_headers: bool,
    timeout: Duration,
    proxy: Option<Proxy>,
    cacert: Option<String>,
    insecure: bool,
    /// `--help`: the usage is the answer (on standard output, with success).
    help: bool,
    urls: Vec<String>,
}

const USAGE: &str = "usage: fetch [--method M] [--header 'K: V']... [--data TEXT|@FILE] [--follow-redirects|--no-follow-redirects] [--max-redirects N] [--print-headers] [--timeout SECS] [--proxy URL] [--cacert FILE] [--insecure] [--help] URL...";

fn usage(msg: &str) -> ExitCode {
    eprintln!("fetch: {msg}");
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options {
        method: None,
        headers: Vec::new(),
        data: None,
        follow: true,
        max_redirects: 5,
        print_headers: false,
        timeout: Duration::from_secs(20),
        proxy: None,
        cacert: None,
        insecure: false,
        help: false,
        urls: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--method" => {
                let m = value("--method")?;
                o.method = Some(
                    Method::from_bytes(m.as_bytes()).map_err(|_| format!("bad method {m:?}"))?,
                );
            }
            "--header" => {
                let h = value("--header")?;
                let (k, v) = h
                    .split_once(':')
                    .ok_or_else(|| format!("header {h:?} has no colon"))?;
                o.headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            "--data" => {
                let d = value("--data")?;
                o.data = Some(match d.strip_prefix('@') {
                    Some(path) => std::fs::read(path).map_err(|e| format!("{path}: {e}"))?,
                    None => d.into_bytes(),
                });
            }
            "--follow-redirects" => o.follow = true,
            "--no-follow-redirects" => o.follow = false,
            "--max-redirects" => {
                o.max_redirects = value("--max-redirects")?
                    .parse()
                    .map_err(|e| format!("--max-redirects: {e}"))?
            }
            "--print-headers" => o.print_headers = true,
            "--timeout" => {
                let secs: f64 = value("--timeout")?
                    .parse()
                    .map_err(|e| format!("--timeout: {e}"))?;
                o.timeout =
                    Duration::try_from_secs_f64(secs).map_err(|e| format!("--timeout: {e}"))?;
            }
            "--proxy" => o.proxy = Some(Proxy::parse(&value("--proxy")?)?),
            "--cacert" => o.cacert = Some(value("--cacert")?),
            "--insecure" => o.insecure = true,
            "--help" | "-h" => {
                o.help = true;
                return Ok(o);
            }
            f if f.starts_with("--") => return Err(format!("unknown option {f}")),
            _ => o.urls.push(arg),
        }
    }
    if o.urls.is_empty() {
        return Err("no URL given".into());
    }
    Ok(o)
}

/// `--cacert` and `--insecure`.
#[cfg(feature = "tls")]
fn with_tls_options(mut request: HttpRequest, o: &Options) -> Result<HttpRequest, String> {
    if let Some(ca) = &o.cacert {
        request = request.ca_certs(ca.as_str());
    }
    if o.insecure {
        request = request.validate_cert(false);
    }
    Ok(request)
}

/// Without TLS, `--cacert` and `--insecure` cannot be honoured.
#[cfg(not(feature = "tls"))]
fn with_tls_options(request: HttpRequest, o: &Options) -> Result<HttpRequest, String> {
    if o.cacert.is_some() || o.insecure {
        return Err("--cacert and --insecure need the `tls` feature".into());
    }
    Ok(request)
}

fn main() -> ExitCode {
    let o = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => return usage(&e),
    };
    if o.help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let io_loop = match IoLoop::new() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fetch: cannot create the loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = io_loop.run_sync(
        async move {
            let client = HttpClient::new();
            for url in &o.urls {
                let method = o.method.clone().unwrap_or(if o.data.is_some() {
                    Method::POST
                } else {
                    Method::GET
                });
                let mut request = HttpRequest::new(url.as_str())
                    .method(method)
                    .follow_redirects(o.follow)
                    .max_redirects(o.max_redirects)
                    .connect_timeout(o.timeout)
                    .request_timeout(o.timeout)
                    .allow_nonstandard_methods(true);
                for (k, v) in &o.headers {
                    request = request.header(k.as_str(), v.as_str());
                }
                if let Some(d) = &o.data {
                    request = request.body(d.clone());
                }
                if let Some(p) = &o.proxy {
                    request = request.proxy(p.clone());
                }
                request = with_tls_options(request, &o)?;
                // A non-2xx answer is printed as any other, as Tornado's `main` prints
                // an `HTTPError`'s response (a redirect's `Location` under
                // `--no-follow-redirects`), then reported as the failure.
                let (response, failure) = match client.fetch(request).await {
                    Ok(r) => (r, None),
                    Err(e) => {
                        let failure = format!("{url}: {e}");
                        match e {
                            HttpClientError::Http(r) => (*r, Some(failure)),
                            _ => return Err(failure),
                        }
                    }
                };
                let mut out = std::io::stdout().lock();
                let mut print = || -> std::io::Result<()> {
                    if o.print_headers {
                        writeln!(
                            out,
                            "{:?} {} {}",
                            response.version,
                            response.code.as_u16(),
                            response.reason
                        )?;
                        for (k, v) in &response.headers {
                            writeln!(out, "{k}: {}", String::from_utf8_lossy(v.as_bytes()))?;
                        }
                        writeln!(out)?;
                    }
                    out.write_all(&response.body)?;
                    out.flush()
                };
                print().map_err(|e| format!("writing the body: {e}"))?;
                if let Some(failure) = failure {
                    return Err(failure);
                }
            }
            Ok::<(), String>(())
        },
        None,
    );
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("fetch: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("fetch: {e}");
            ExitCode::FAILURE
        }
    }
}
