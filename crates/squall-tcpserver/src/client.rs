//! Tornado's `tornado.tcpclient`: [`TcpClient`] with a pluggable [`Resolver`], an
//! address family, a source address, and happy eyeballs (the logic is in
//! `connector.rs`; this file drives it with real connects and timers).

use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use squall_ioloop::{run_on, sleep, sleep_until, with_timeout, ThreadPool};
use squall_iostream::{IoStream, StreamError};

use crate::connector::{Action, Connector, Outcome};
use crate::netutil::Family;

/// Tornado's `_INITIAL_CONNECT_TIMEOUT`: how long the first address family gets before
/// the second one is tried beside it.
pub const HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(300);

/// The future a [`Resolver`] returns: the addresses, in the order to try them.
pub type Resolving = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>>>>;

/// Turns a host name into addresses. Tornado's `netutil.Resolver`; plug one in with
/// [`TcpClient::with_resolver`] (a cache, a DNS client, or a scripted list in tests).
///
/// The future runs on the loop's thread and must not block it.
pub trait Resolver {
    /// Resolves `host` for `port`. `family` is what the caller asked for (a resolver may
    /// use it to narrow its lookup; [`TcpClient`] drops addresses of another family
    /// either way). The order of the result is the order of preference.
    fn resolve(&self, host: &str, port: u16, family: Family) -> Resolving;
}

/// The default [`Resolver`]: a literal IP address at once (`[::1]` may be bracketed),
/// anything else with the system's `getaddrinfo` on a pool of 10 threads shared by the
/// process, so that the loop never blocks (Tornado's `ThreadedResolver`, whose default
/// size this is; its `DefaultExecutorResolver` also runs on a bounded pool). A burst of
/// lookups waits for a thread of the pool; a lookup given up before a thread takes it
/// (its connect timed out) is skipped.
///
/// Only addresses of the `family` asked for come back, as from Tornado's resolvers
/// (`getaddrinfo` with that family): a name or literal with none of them is a
/// `NotFound` error, never an empty list.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultResolver;

impl Resolver for DefaultResolver {
    fn resolve(&self, host: &str, port: u16, family: Family) -> Resolving {
        let host = host.to_owned();
        Box::pin(async move {
            let mut addrs = resolve_system(&host, port).await?;
            addrs.retain(|a| family.admits(&a.ip()));
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} has no address of family {family:?}"),
                ));
            }
            Ok(addrs)
        })
    }
}

/// A [`Resolver`] that sends some names, or some name and port pairs, somewhere else
/// before it asks the resolver it wraps: Tornado's `netutil.OverrideResolver` (and the
/// `hostname_mapping` of its HTTP client). Tests point a real name at a local server
/// with it; the name stays the one the caller used (an HTTP client's `Host` header,
/// its TLS server name), only the addresses change.
///
/// A name and port pair is looked up first, then the name alone (which keeps the
/// port). Names compare without regard to ASCII case, as DNS names do.
///
/// ```
/// use squall_ioloop::IoLoop;
/// use squall_tcpserver::{Family, OverrideResolver, Resolver};
///
/// let resolver = OverrideResolver::new()
///     .host("www.example.com", "127.0.0.1")
///     .endpoint(("api.example.com", 443), ("127.0.0.1", 8443));
/// let io_loop = IoLoop::new()?;
/// let api = io_loop.run_sync(resolver.resolve("API.example.com", 443, Family::Any), None)?;
/// assert_eq!(api?, ["127.0.0.1:8443".parse()?]);
/// let www = io_loop.run_sync(resolver.resolve("www.example.com", 80, Family::Any), None)?;
/// assert_eq!(www?, ["127.0.0.1:80".parse()?]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "hostname_mapping")]
#[derive(Debug, Clone, Default)]
pub struct OverrideResolver<R = DefaultResolver> {
    inner: R,
    hosts: Vec<(String, String)>,
    endpoints: Vec<((String, u16), (String, u16))>,
}

impl OverrideResolver {
    /// No overrides yet, over the [`DefaultResolver`].
    pub fn new() -> OverrideResolver {
        OverrideResolver::default()
    }
}

impl<R> OverrideResolver<R> {
    /// No overrides yet, over `inner`, which resolves every name after its override.
    pub fn wrapping(inner: R) -> OverrideResolver<R> {
        OverrideResolver {
            inner,
            hosts: Vec::new(),
            endpoints: Vec::new(),
        }
    }

    /// Resolves `from` (any port) as `to`, keeping the port. A later override of the
    /// same name replaces an earlier one.
    pub fn host(mut self, from: &str, to: &str) -> Self {
        self.hosts.retain(|(f, _)| !f.eq_ignore_ascii_case(from));
        self.hosts.push((from.to_owned(), to.to_owned()));
        self
    }

    /// Resolves `from` (a name and a port) as `to` (another name, or an IP address
    /// literal, and port). A later override of the same pair replaces an earlier one.
    pub fn endpoint(mut self, from: (&str, u16), to: (&str, u16)) -> Self {
        self.endpoints
            .retain(|((h, p), _)| !(h.eq_ignore_ascii_case(from.0) && *p == from.1));
        self.endpoints
            .push(((from.0.to_owned(), from.1), (to.0.to_owned(), to.1)));
        self
    }

    /// Where `host:port` goes: its override, or itself.
    fn map<'a>(&'a self, host: &'a str, port: u16) -> (&'a str, u16) {
        if let Some((_, (h, p))) = self
            .endpoints
            .iter()
            .find(|((h, p), _)| *p == port && h.eq_ignore_ascii_case(host))
        {
            return (h, *p);
        }
        match self
            .hosts
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(host))
        {
            Some((_, to)) => (to, port),
            None => (host, port),
        }
    }
}

impl<R: Resolver> Resolver for OverrideResolver<R> {
    fn resolve(&self, host: &str, port: u16, family: Family) -> Resolving {
        let (host, port) = self.map(host, port);
        self.inner.resolve(host, port, family)
    }
}

/// How [`TcpClient::connect_with`] connects: Tornado's `connect(af=..., source_ip=...,
/// source_port=..., timeout=...)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    family: Family,
    source_ip: Option<IpAddr>,
    source_port: Option<u16>,
    timeout: Option<Duration>,
}

impl ConnectOptions {
    /// Any family, no source address, no timeout.
    pub fn new() -> ConnectOptions {
        ConnectOptions::default()
    }

    /// Connects only to addresses of `family` (Tornado's `af`).
    pub fn family(mut self, family: Family) -> ConnectOptions {
        self.family = family;
        self
    }

    /// Binds the socket to this local address before connecting (Tornado's
    /// `source_ip`). An address of the other family makes that attempt fail.
    pub fn source_ip(mut self, ip: IpAddr) -> ConnectOptions {
        self.source_ip = Some(ip);
        self
    }

    /// Binds the socket to this local port before connecting (Tornado's
    /// `source_port`), on `source_ip` if set, else on the unspecified address of the
    /// target's family.
    pub fn source_port(mut self, port: u16) -> ConnectOptions {
        self.source_port = Some(port);
        self
    }

    /// Fails with `TimedOut` if the lookup and the connect together take longer
    /// (Tornado's `timeout`).
    pub fn timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.timeout = Some(timeout);
        self
    }

    /// The local address to bind for a connect to `target`, if any.
    fn source_for(&self, target: &SocketAddr) -> Option<SocketAddr> {
        if self.source_ip.is_none() && self.source_port.is_none() {
            return None;
        }
        let ip = self.source_ip.unwrap_or(match target {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        Some(SocketAddr::new(ip, self.source_port.unwrap_or(0)))
    }
}

/// Tornado's `TCPClient`: resolves a host and connects to it, trying every address
/// with happy eyeballs.
#[doc(alias = "TCPClient")]
#[derive(Clone)]
pub struct TcpClient {
    delay: Duration,
    resolver: Arc<dyn Resolver + Send + Sync>,
}

impl Default for TcpClient {
    fn default() -> Self {
        TcpClient {
            delay: HAPPY_EYEBALLS_DELAY,
            resolver: Arc::new(DefaultResolver),
        }
    }
}

impl fmt::Debug for TcpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpClient")
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

type Attempt = Pin<Box<dyn Future<Output = Result<IoStream, StreamError>>>>;

impl TcpClient {
    /// A client with the [`DefaultResolver`] and Tornado's 0.3 s happy-eyeballs delay.
    pub fn new() -> TcpClient {
        TcpClient::default()
    }

    /// A client that resolves names with `resolver` (Tornado's
    /// `TCPClient(resolver=...)`).
    pub fn with_resolver(resolver: impl Resolver + Send + Sync + 'static) -> TcpClient {
        TcpClient {
            resolver: Arc::new(resolver),
            ..TcpClient::default()
        }
    }

    /// Sets how long the first address family runs alone before the second starts.
    pub fn set_happy_eyeballs_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    /// Connects to `host:port` with the default options and an optional timeout.
    /// Tornado's `TCPClient.connect(host, port, timeout=...)`; see
    /// [`connect_with`](TcpClient::connect_with).
    ///
    /// # Errors
    ///
    /// As [`connect_with`](TcpClient::connect_with).
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        timeout: Option<Duration>,
    ) -> io::Result<IoStream> {
        let mut options = ConnectOptions::new();
        options.timeout = timeout;
        self.connect_with(host, port, &options).await
    }

    /// Connects to `host:port` and resolves to the stream. Tornado's
    /// `TCPClient.connect`.
    ///
    /// `host` goes through the client's [`Resolver`]; addresses of another family than
    /// `options`' are dropped. The rest are split by family, the family of the first
    /// address first (Tornado's `_Connector.split`); a family's addresses are tried one
    /// after another, and the other family starts after the happy-eyeballs delay (0.3 s)
    /// or as soon as an attempt fails, whichever comes first. The first connection up
    /// wins; every other attempt is closed. The timeout spans the lookup and every
    /// attempt.
    ///
    /// # Errors
    ///
    /// The resolver's error; `NotFound` if no address of the family is left; `TimedOut`
    /// after the timeout; otherwise the last attempt's OS error (a refused connection
    /// is `ConnectionRefused` with its errno; a source address that cannot be bound,
    /// `AddrNotAvailable` or `AddrInUse`).
    pub async fn connect_with(
        &self,
        host: &str,
        port: u16,
        options: &ConnectOptions,
    ) -> io::Result<IoStream> {
        let deadline = options
            .timeout
            .map(|t| squall_ioloop::instant_after(Instant::now(), t));
        let timed_out = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connect to {host}:{port} timed out after {:?}",
                    options.timeout.unwrap_or_default()
                ),
            )
        };
        let lookup = self.resolver.resolve(host, port, options.family);
        let addrs = match deadline {
            None => lookup.await?,
            Some(d) => with_timeout(d, lookup).await.map_err(|_| timed_out())??,
        };
        let addrs: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| options.family.admits(&a.ip()))
            .collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address of the family asked for"),
            ));
        }
        match self.happy_eyeballs(&addrs, options, deadline).await {
            // Our deadline, worded with the timeout; a kernel's own `ETIMEDOUT` (an
            // attempt that got no answer at all) keeps its OS error.
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut
                    && e.raw_os_error().is_none()
                    && deadline.is_some() =>
            {
                Err(timed_out())
            }
            other => other,
        }
    }

    /// Drives a [`Connector`] over `addrs` with real connects, the happy-eyeballs timer
    /// and the deadline.
    async fn happy_eyeballs(
        &self,
        addrs: &[SocketAddr],
        options: &ConnectOptions,
        deadline: Option<Instant>,
    ) -> io::Result<IoStream> {
        let mut conn = Connector::new(addrs);
        let mut delay = conn.has_secondary().then(|| Box::pin(sleep(self.delay)));
        let mut deadline = deadline.map(|d| Box::pin(sleep_until(d)));
        let mut attempts: Vec<(usize, Attempt)> = Vec::new();
        let mut actions = conn.start();
        poll_fn(move |cx: &mut Context<'_>| loop {
            for action in actions.drain(..) {
                match action {
                    Action::Connect(i) => {
                        let attempt = connect_one(addrs[i], options.source_for(&addrs[i]));
                        attempts.push((i, Box::pin(attempt)));
                    }
                    // Dropping a connecting stream closes its socket.
                    Action::Close(i) => attempts.retain(|(j, _)| *j != i),
                }
            }
            match conn.take_outcome() {
                Some(Outcome::Failed(e)) => return Poll::Ready(Err(e)),
                Some(Outcome::TimedOut) => {
                    return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                }
                // Returned below, with its stream.
                Some(Outcome::Connected(_)) | None => {}
            }
            if let Some(d) = deadline.as_mut() {
                if d.as_mut().poll(cx).is_ready() {
                    deadline = None;
                    actions.extend(conn.on_connect_timeout());
                    continue;
                }
            }
            if let Some(t) = delay.as_mut() {
                if t.as_mut().poll(cx).is_ready() {
                    delay = None;
                    actions.extend(conn.on_timeout());
                }
            }
            let mut k = 0;
            while k < attempts.len() {
                let res = match attempts[k].1.as_mut().poll(cx) {
                    Poll::Pending => {
                        k += 1;
                        continue;
                    }
                    Poll::Ready(res) => res,
                };
                let (i, _) = attempts.swap_remove(k);
                match res {
                    Ok(stream) => {
                        actions.extend(conn.on_success(i));
                        if let Some(Outcome::Connected(w)) = conn.take_outcome() {
                            debug_assert_eq!(w, i);
                            // The other attempts are dropped, so closed, with the future.
                            return Poll::Ready(Ok(stream));
                        }
                        // A late winner: dropped, so closed.
                    }
                    Err(e) => {
                        log::debug!("connect to {} failed: {e}", addrs[i]);
                        let primary = conn.is_primary(addrs, i);
                        actions.extend(conn.on_failure(i, primary, stream_to_io(e)));
                    }
                }
            }
            if actions.is_empty() && !conn.has_outcome() {
                return Poll::Pending;
            }
        })
        .await
    }
}

/// One connect attempt, from `source` if set.
async fn connect_one(
    addr: SocketAddr,
    source: Option<SocketAddr>,
) -> Result<IoStream, StreamError> {
    let stream = IoStream::start_connect_from(addr, source)?;
    stream.wait_connected().await?;
    Ok(stream)
}

/// The OS error behind a stream error, rebuilt from its errno when there is one so that
/// `raw_os_error()` works.
fn stream_to_io(e: StreamError) -> io::Error {
    match e.io_error().and_then(io::Error::raw_os_error) {
        Some(code) => io::Error::from_raw_os_error(code),
        None => e.into(),
    }
}

/// How many lookups run at once: Tornado's `ThreadedResolver` default
/// (`num_threads=10`). Further lookups wait in the pool's queue.
const RESOLVER_THREADS: usize = 10;

/// The threads that run `getaddrinfo` for every loop of the process: a bounded pool, as
/// Tornado's resolvers use, so a burst of lookups never starts a thread per lookup.
fn resolver_pool() -> &'static ThreadPool {
    static POOL: OnceLock<ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| ThreadPool::new(RESOLVER_THREADS, "squall-resolve"))
}

/// Resolves `host` without blocking the loop: a literal IP at once, a name on the
/// resolver pool, which wakes the task when done. A lookup whose future is dropped
/// before a thread takes it is skipped.
async fn resolve_system(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host = host.to_owned();
    let lookup = run_on(resolver_pool(), move || {
        (host.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect)
    });
    match lookup.await {
        Ok(result) => result,
        Err(e) => Err(io::Error::other(format!("name lookup failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pair's override before the name's; the last override of a key wins; names
    /// compare without case; anything else passes through.
    #[test]
    fn overrides_are_looked_up_pair_first() {
        let r = OverrideResolver::new()
            .host("a.test", "10.0.0.1")
            .host("A.test", "10.0.0.2")
            .endpoint(("a.test", 443), ("10.0.0.3", 8443))
            .endpoint(("a.test", 443), ("10.0.0.4", 9443));
        assert_eq!(r.map("a.TEST", 443), ("10.0.0.4", 9443));
        assert_eq!(r.map("a.test", 80), ("10.0.0.2", 80));
        assert_eq!(r.map("b.test", 443), ("b.test", 443));
    }

    #[test]
    fn source_address_follows_the_options() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[fe80::1]:80".parse().unwrap();
        assert_eq!(ConnectOptions::new().source_for(&v4), None);
        let port_only = ConnectOptions::new().source_port(4000);
        assert_eq!(
            port_only.source_for(&v4),
            Some("0.0.0.0:4000".parse().unwrap())
        );
        assert_eq!(
            port_only.source_for(&v6),
            Some("[::]:4000".parse().unwrap())
        );
        let ip_only = ConnectOptions::new().source_ip("127.0.0.1".parse().unwrap());
        assert_eq!(
            ip_only.source_for(&v4),
            Some("127.0.0.1:0".parse().unwrap())
        );
    }
}
