//! [`HttpClient`]: the pool, the queue, redirects and timeouts around one exchange.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use squall_httputil::client::{RequestFraming, ResponseEvent, ResponseParser};
use squall_httputil::{basic_auth_value, Limits};
use squall_ioloop::with_timeout;
use squall_iostream::IoStream;
use squall_tcpserver::{ConnectOptions, Family, Resolver, TcpClient};

use crate::conn::{exchange, set_default, Exchanged, Failed, Outgoing};
use crate::error::{HttpClientError, TimeoutPhase};
use crate::pool::{Pool, PoolKey, Slots};
use crate::request::{BodyProducer, HttpRequest, Proxy};
use crate::response::HttpResponse;
use crate::url::{Scheme, Target};

/// The client's own settings (the per-request ones are on [`HttpRequest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Requests in flight at once, over all hosts; more wait in a queue (Tornado's
    /// `max_clients`, default 10).
    pub max_clients: usize,
    /// Idle keep-alive connections kept per host (default 8; 0 turns reuse off).
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept for reuse (default 30 s); it is closed then.
    pub idle_timeout: Duration,
    /// The `User-Agent` of requests that set none.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_clients: 10,
            max_idle_per_host: 8,
            idle_timeout: Duration::from_secs(30),
            user_agent: concat!("squall/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ClientConfig {
    /// The defaults with `max_clients` set.
    pub fn with_max_clients(mut self, max_clients: usize) -> Self {
        self.max_clients = max_clients;
        self
    }

    /// The defaults with `max_idle_per_host` set.
    pub fn with_max_idle_per_host(mut self, max: usize) -> Self {
        self.max_idle_per_host = max;
        self
    }
}

struct Inner {
    config: ClientConfig,
    /// `config.user_agent` as a header value, made once.
    user_agent: Option<HeaderValue>,
    /// The last URL parsed, and its parse: repeated fetches of one URL parse it once.
    last_target: RefCell<Option<(String, Rc<Target>)>>,
    slots: Rc<Slots>,
    pool: Rc<Pool>,
    tcp: TcpClient,
    closed: Cell<bool>,
    #[cfg(feature = "tls")]
    tls: crate::tls::TlsState,
}

/// A non-blocking HTTP/1.1 client on the current thread's [`IoLoop`](squall_ioloop::IoLoop).
/// Tornado's `AsyncHTTPClient` (its `simple_httpclient`).
///
/// A cheap handle (`Rc` inside, `!Send`): clones share the pool and the `max_clients`
/// queue. Make one per loop and keep it; dropping the last handle (or
/// [`close`](HttpClient::close)) closes the idle connections. A kept connection serves
/// only fetches on the loop it was made on: a client used on another loop closes the
/// idle connections of the first and makes its own.
#[doc(alias = "AsyncHTTPClient")]
#[doc(alias = "SimpleAsyncHTTPClient")]
#[derive(Clone)]
pub struct HttpClient {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .field("idle", &self.inner.pool.idle_count())
            .field("queued", &self.inner.slots.queued())
            .finish()
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

/// Methods Tornado's simple client knows (`_SUPPORTED_METHODS`).
fn is_standard(method: &Method) -> bool {
    matches!(
        method.as_str(),
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS"
    )
}

fn expects_body(method: &Method) -> bool {
    *method == Method::POST || *method == Method::PUT || *method == Method::PATCH
}

impl HttpClient {
    /// A client with the default [`ClientConfig`].
    pub fn new() -> HttpClient {
        HttpClient::with_config(ClientConfig::default())
    }

    /// A client with `config`.
    pub fn with_config(config: ClientConfig) -> HttpClient {
        HttpClient::with_tcp(config, TcpClient::new())
    }

    /// A client with `config` that resolves host names with `resolver` (Tornado's
    /// `AsyncHTTPClient(resolver=...)`). With an [`OverrideResolver`] it is Tornado's
    /// `hostname_mapping`: requests keep the URL's host (its `Host` header, the TLS
    /// server name it verifies) but connect where the mapping says.
    ///
    /// [`OverrideResolver`]: squall_tcpserver::OverrideResolver
    #[doc(alias = "hostname_mapping")]
    pub fn with_resolver(
        config: ClientConfig,
        resolver: impl Resolver + Send + Sync + 'static,
    ) -> HttpClient {
        HttpClient::with_tcp(config, TcpClient::with_resolver(resolver))
    }

    fn with_tcp(config: ClientConfig, tcp: TcpClient) -> HttpClient {
        HttpClient {
            inner: Rc::new(Inner {
                user_agent: HeaderValue::from_str(&config.user_agent).ok(),
                last_target: RefCell::new(None),
                slots: Slots::new(config.max_clients),
                pool: Pool::new(config.max_idle_per_host, config.idle_timeout),
                tcp,
                closed: Cell::new(false),
                #[cfg(feature = "tls")]
                tls: crate::tls::TlsState::default(),
                config,
            }),
        }
    }

    /// The client's settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Idle keep-alive connections held for reuse.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }

    /// Requests holding one of the `max_clients` slots (in flight).
    pub fn active(&self) -> usize {
        self.inner.slots.active()
    }

    /// Requests waiting for one of the `max_clients` slots.
    pub fn queued(&self) -> usize {
        self.inner.slots.queued()
    }

    /// The TLS configuration of https requests that name no trust of their own
    /// (default: the system's root certificates, loaded at the first https request).
    /// A connection made under the previous one never serves a request again: the idle
    /// ones are closed at once, and the ones in flight when their request is done.
    #[cfg(feature = "tls")]
    pub fn set_tls_config(&self, config: squall_tls::TlsClientConfig) {
        self.inner.tls.set_default(config);
        // A kept connection was verified under the configuration it was made with: one
        // made under an old default would now serve requests the new one governs. The
        // idle ones close now, the ones in flight when they are done (`may_keep`).
        let tls = &self.inner.tls;
        (self.inner.pool).close_where(|key| key.trust.as_ref().is_some_and(|t| !tls.is_current(t)));
    }

    /// Close the idle connections; later fetches fail with
    /// [`HttpClientError::Closed`]. Fetches in flight finish. Tornado's `close`.
    pub fn close(&self) {
        self.inner.closed.set(true);
        self.inner.pool.clear();
    }

    /// Fetch `request` (a URL converts into a GET) and resolve with the response.
    /// Tornado's `fetch`.
    ///
    /// The request waits for one of `max_clients` slots, then uses an idle keep-alive
    /// connection to the same host or opens one, writes the request and reads the
    /// response; redirects are followed as the request says. Dropping the future
    /// cancels the fetch and closes its connection.
    ///
    /// # Errors
    /// [`HttpClientError::Http`] for a non-2xx final response (unless
    /// `raise_error(false)`); [`Timeout`](HttpClientError::Timeout) in the queue, while
    /// connecting or during the request; [`Connect`](HttpClientError::Connect);
    /// [`Stream`](HttpClientError::Stream) for a connection that failed;
    /// [`Response`](HttpClientError::Response) for a response that breaks HTTP's rules
    /// ([`ExtraData`](HttpClientError::ExtraData) for a proxy's);
    /// [`InvalidRequest`](HttpClientError::InvalidRequest) before anything is sent;
    /// [`BodyProducer`](HttpClientError::BodyProducer); [`Proxy`](HttpClientError::Proxy);
    /// [`Closed`](HttpClientError::Closed).
    pub async fn fetch(
        &self,
        request: impl Into<HttpRequest>,
    ) -> Result<HttpResponse, HttpClientError> {
        let req: HttpRequest = request.into();
        if self.inner.closed.get() {
            return Err(HttpClientError::Closed);
        }
        if let Some(e) = &req.error {
            return Err(HttpClientError::invalid(e.clone()));
        }
        check_method_and_body(&req)?;
        let source_ip = req.source_ip().map_err(HttpClientError::InvalidRequest)?;
        let mut target = self.parse_url(&req.url)?;
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        let mut producer = req.body_producer.clone();
        let mut headers = req.headers.clone();
        let mut auth = req.auth.clone().or_else(|| target.userinfo.clone());
        let mut redirects = 0u32;
        loop {
            let follow = req.follow_redirects && redirects < req.max_redirects;
            let hop = Hop {
                req: &req,
                method: &method,
                headers: &headers,
                body: body.as_ref(),
                producer: producer.as_ref(),
                target: &target,
                auth: auth.as_ref(),
                follow,
                source_ip,
            };
            let (ex, hop_time, hop_start) = self.fetch_hop(&hop).await?;
            let location = ex
                .head
                .headers
                .get(header::LOCATION)
                .map(|v| crate::url::escape_url(v.as_bytes()).into_owned());
            if let (true, Some(location)) = (crate::conn::follows(&ex.head, follow), location) {
                let next = Rc::new(
                    target
                        .join(&location)
                        .map_err(HttpClientError::InvalidRequest)?,
                );
                let status = ex.head.status;
                // Tornado: 303 turns into GET (HEAD stays HEAD), and so do 301 and 302
                // after a POST, as browsers do; the body goes.
                if (status == StatusCode::SEE_OTHER && method != Method::HEAD)
                    || (matches!(status.as_u16(), 301 | 302) && method == Method::POST)
                {
                    method = Method::GET;
                    body = None;
                    producer = None;
                    for h in [
                        header::CONTENT_LENGTH,
                        header::CONTENT_TYPE,
                        header::CONTENT_ENCODING,
                        header::TRANSFER_ENCODING,
                    ] {
                        headers.remove(h);
                    }
                }
                headers.remove(header::HOST);
                if !next.same_origin(&target) {
                    // Credentials are not handed to another origin.
                    headers.remove(header::AUTHORIZATION);
                    headers.remove(header::COOKIE);
                    auth = next.userinfo.clone();
                }
                log::debug!("httpclient: {} redirects to {}", target.url(), next.url());
                target = next;
                redirects += 1;
                continue;
            }
            let response = HttpResponse {
                code: ex.head.status,
                reason: crate::response::reason_or_standard(ex.head.reason, ex.head.status),
                version: ex.head.version,
                headers: ex.head.headers,
                body: ex.body,
                trailers: ex.trailers,
                // The URL as sent: escaped as the request line was.
                effective_url: if redirects == 0 {
                    crate::url::escape_url(req.url.as_bytes()).into_owned()
                } else {
                    target.url()
                },
                redirects,
                request_time: hop_time,
                start_time: hop_start,
            };
            return if req.raise_error && !response.is_success() {
                Err(HttpClientError::Http(Box::new(response)))
            } else {
                Ok(response)
            };
        }
    }

    /// `url` parsed, or the parse of the previous fetch if it was the same URL.
    fn parse_url(&self, url: &str) -> Result<Rc<Target>, HttpClientError> {
        if let Some((last, target)) = &*self.inner.last_target.borrow() {
            if last == url {
                return Ok(target.clone());
            }
        }
        let target = Rc::new(Target::parse(url).map_err(HttpClientError::InvalidRequest)?);
        *self.inner.last_target.borrow_mut() = Some((url.to_owned(), target.clone()));
        Ok(target)
    }

    /// One request of a fetch (the first, or one after a redirect), with its own slot
    /// and timeouts, as Tornado fetches each redirect anew; and its time, from when it
    /// had its slot to the end of its response (Tornado's `request_time`: the queue is
    /// not counted; a request sent again on a new connection is), with the wall-clock
    /// time it had its slot (Tornado's `start_time`).
    async fn fetch_hop(
        &self,
        hop: &Hop<'_>,
    ) -> Result<(Exchanged, Duration, SystemTime), HttpClientError> {
        let req = hop.req;
        let queue_timeout = req.connect_limit().min(req.request_limit());
        // The queue's timer is only armed when the request has to wait.
        let permit = match self.inner.slots.try_acquire() {
            Some(p) => p,
            None => with_timeout(queue_timeout, self.inner.slots.acquire())
                .await
                .map_err(|_| HttpClientError::Timeout(TimeoutPhase::Queue))?,
        };
        let started = Instant::now();
        let started_wall = SystemTime::now();
        let deadline = squall_ioloop::instant_after(started, req.request_limit());
        // The phase the request timeout names if it runs out: Tornado's message is
        // "while connecting" when the shorter of the two timeouts ends a connection
        // still being made.
        let phase = Cell::new(TimeoutPhase::Request);
        let result = with_timeout(deadline, self.exchange_hop(hop, &phase)).await;
        let took = started.elapsed();
        drop(permit);
        let ex = result.map_err(|_| HttpClientError::Timeout(phase.get()))??;
        Ok((ex, took, started_wall))
    }

    async fn exchange_hop(
        &self,
        hop: &Hop<'_>,
        phase: &Cell<TimeoutPhase>,
    ) -> Result<Exchanged, HttpClientError> {
        let req = hop.req;
        let target = hop.target;
        let key = PoolKey {
            scheme: target.scheme,
            host: target.host.to_ascii_lowercase(),
            port: target.port,
            proxy: req.proxy.clone(),
            ipv4_only: !req.allow_ipv6,
            source_ip: hop.source_ip,
            #[cfg(feature = "tls")]
            trust: (target.scheme == Scheme::Https).then(|| self.inner.tls.trust(req)),
            #[cfg(feature = "tls")]
            identity: (target.scheme == Scheme::Https)
                .then(|| req.identity.clone())
                .flatten(),
        };
        let mut out = self.outgoing(hop)?;
        // A request that met a kept connection's close is sent again on a new one only
        // if doing it twice is harmless: an idempotent method (RFC 9110 §9.2.2; the
        // server may have acted on a POST before the connection dropped), and no body
        // producer (which cannot always run twice).
        let idempotent = matches!(
            *out.method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );
        let replayable = idempotent && hop.producer.is_none();
        let mut reused = self.inner.pool.checkout(&key);
        loop {
            let was_reused = reused.is_some();
            let stream = match reused.take() {
                Some(s) => s,
                None => {
                    phase.set(TimeoutPhase::Connect);
                    let stream = self.connect(hop, &key).await?;
                    phase.set(TimeoutPhase::Request);
                    stream
                }
            };
            // Closed unless handed back to the pool, also when this future is dropped
            // mid-exchange (a request timeout, a cancelled fetch).
            let conn = ClosingConn::new(stream);
            let retry_408 = was_reused && replayable;
            match exchange(&conn.stream, &out, retry_408).await {
                // RFC 9110 §15.5.9: a server that times out an idle connection may send
                // 408 as it closes, and a request that crossed it on the wire "MAY" be
                // repeated; browsers do, once, on a new connection.
                Ok(ex) if retry_408 && ex.head.status == StatusCode::REQUEST_TIMEOUT => {
                    drop(conn);
                    log::debug!(
                        "httpclient: kept connection to {} answered 408 as it timed out; retrying on a new one",
                        target.host
                    );
                    continue;
                }
                // RFC 9110 §10.1.1: a client that receives 417 to a request with a
                // 100-continue expectation SHOULD send it again without; once, since the
                // request sent again carries none.
                Ok(ex) if ex.expectation_failed && out.expect_continue => {
                    drop(conn);
                    log::debug!(
                        "httpclient: {} refused Expect: 100-continue (417); sending again without",
                        target.host
                    );
                    out.expect_continue = false;
                    out.headers.remove(header::EXPECT);
                    continue;
                }
                Ok(ex) => {
                    if ex.reusable && self.may_keep(&key) {
                        self.inner.pool.checkin(key, conn.keep());
                    }
                    return Ok(ex);
                }
                Err(Failed {
                    error,
                    nothing_received,
                }) => {
                    drop(conn);
                    if was_reused && nothing_received && replayable {
                        log::debug!(
                            "httpclient: kept connection to {} was closed ({error}); retrying on a new one",
                            target.host
                        );
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Whether a connection that served `key` may be kept for another request: not once
    /// the client is closed, nor when it was made under a default TLS configuration
    /// that has been replaced meanwhile.
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    fn may_keep(&self, key: &PoolKey) -> bool {
        #[cfg(feature = "tls")]
        if let Some(trust) = &key.trust {
            if !self.inner.tls.is_current(trust) {
                return false;
            }
        }
        !self.inner.closed.get()
    }

    /// The head of one hop: target form, Host, defaults, credentials and framing.
    fn outgoing<'a>(&self, hop: &Hop<'a>) -> Result<Outgoing<'a>, HttpClientError> {
        let req = hop.req;
        let target = hop.target;
        let mut headers = hop.headers.clone();
        if !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, target.host_value.clone());
        }
        // The request's `user_agent` wins over a `User-Agent` header, as Tornado; the
        // client's default only fills one in.
        match (&req.user_agent, &self.inner.user_agent) {
            (Some(agent), _) => {
                let value = crate::request::latin1_value(agent)
                    .map_err(|e| HttpClientError::invalid(format!("user_agent: {e}")))?;
                headers.insert(header::USER_AGENT, value);
            }
            (None, Some(agent)) if !headers.contains_key(header::USER_AGENT) => {
                headers.insert(header::USER_AGENT, agent.clone());
            }
            (None, _) => {}
        }
        if req.decompress_response {
            set_default(&mut headers, header::ACCEPT_ENCODING, "gzip");
        }
        if let Some((user, pass)) = hop.auth {
            set_default(
                &mut headers,
                header::AUTHORIZATION,
                &basic_auth_value(user, pass),
            );
        }
        let has_body = hop.body.is_some() || hop.producer.is_some();
        if *hop.method == Method::POST && has_body {
            set_default(
                &mut headers,
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        }
        // RFC 9110 §10.1.1: no 100-continue expectation without content to hold back.
        let expect_continue =
            req.expect_100_continue && crate::conn::has_content(hop.body, hop.producer);
        if expect_continue {
            set_default(&mut headers, header::EXPECT, "100-continue");
        }
        let declared = headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        let framing = if let Some(b) = hop.body {
            RequestFraming::Length(b.len() as u64)
        } else if hop.producer.is_some() {
            match declared {
                Some(v) => RequestFraming::Length(
                    v.to_str()
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or_else(|| {
                            HttpClientError::invalid("Content-Length is not a number")
                        })?,
                ),
                None => RequestFraming::Chunked,
            }
        } else if expects_body(hop.method) {
            RequestFraming::Length(0)
        } else {
            RequestFraming::None
        };
        let uri = match (&req.proxy, target.scheme) {
            (Some(proxy), Scheme::Http) => {
                if let Some((user, pass)) = &proxy.auth {
                    set_default(
                        &mut headers,
                        header::PROXY_AUTHORIZATION,
                        &basic_auth_value(user, pass),
                    );
                }
                target.absolute().map_err(HttpClientError::InvalidRequest)?
            }
            _ => http::Uri::from(target.path.clone()),
        };
        Ok(Outgoing {
            request: req,
            method: hop.method,
            target: uri,
            headers,
            framing,
            body: hop.body,
            producer: hop.producer,
            follow: hop.follow,
            expect_continue,
        })
    }

    /// A new connection for `hop`: to the server, or to the proxy (through a CONNECT
    /// tunnel for https), within one `connect_timeout` for all of it (the TCP
    /// handshake, the tunnel and the TLS handshake), as Tornado's connect timeout
    /// covers the TLS handshake too. (The request timeout, which is also running,
    /// is the caller's.)
    async fn connect(&self, hop: &Hop<'_>, key: &PoolKey) -> Result<IoStream, HttpClientError> {
        let deadline = squall_ioloop::instant_after(Instant::now(), hop.req.connect_limit());
        with_timeout(deadline, self.connect_within(hop, key, deadline))
            .await
            .map_err(|_| HttpClientError::Timeout(TimeoutPhase::Connect))?
    }

    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    async fn connect_within(
        &self,
        hop: &Hop<'_>,
        key: &PoolKey,
        deadline: Instant,
    ) -> Result<IoStream, HttpClientError> {
        let req = hop.req;
        let target = hop.target;
        #[cfg(not(feature = "tls"))]
        if target.scheme == Scheme::Https {
            return Err(HttpClientError::invalid(format!(
                "https needs squall-httpclient's `tls` feature: {}",
                target.url()
            )));
        }
        let (host, port) = match &req.proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (target.host.as_str(), target.port),
        };
        let mut options =
            ConnectOptions::new().timeout(deadline.saturating_duration_since(Instant::now()));
        if key.ipv4_only {
            options = options.family(Family::V4);
        }
        if let Some(ip) = key.source_ip {
            options = options.source_ip(ip);
        }
        let stream = match self.inner.tcp.connect_with(host, port, &options).await {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(HttpClientError::Timeout(TimeoutPhase::Connect))
            }
            Err(e) => return Err(HttpClientError::Connect(e)),
        };
        // Latency over batching: a request is written in one piece anyway.
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("httpclient: TCP_NODELAY on a new connection failed: {e}");
        }
        // The key's trust: an https key has one, worked out when the key was made.
        #[cfg(feature = "tls")]
        if let (Scheme::Https, Some(trust)) = (target.scheme, &key.trust) {
            if let Some(proxy) = &req.proxy {
                connect_tunnel(&stream, proxy, &target.host, target.port).await?;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.inner
                .tls
                .handshake(
                    &stream,
                    &target.host,
                    trust,
                    req.tls_config.as_ref(),
                    req.identity.as_ref(),
                    left,
                )
                .await?;
        }
        Ok(stream)
    }
}

/// Open a `CONNECT` tunnel to `host:port` through `proxy` on `stream`. The tunnel is
/// what the TLS layer runs over for `https://` URLs.
///
/// # Errors
/// [`HttpClientError::Proxy`] for a refusal; stream and parse errors.
pub async fn connect_tunnel(
    stream: &IoStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), HttpClientError> {
    use std::future::poll_fn;

    use bytes::BytesMut;
    use squall_httputil::client::encode_request_head;

    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let target: http::Uri = authority
        .parse()
        .map_err(|e| HttpClientError::invalid(format!("CONNECT target {authority}: {e}")))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&authority).map_err(|e| HttpClientError::invalid(e.to_string()))?,
    );
    if let Some((user, pass)) = &proxy.auth {
        headers.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_str(&basic_auth_value(user, pass))
                .map_err(|e| HttpClientError::invalid(e.to_string()))?,
        );
    }
    let mut wire = BytesMut::new();
    encode_request_head(
        &mut wire,
        &Method::CONNECT,
        &target,
        &headers,
        RequestFraming::None,
    )?;
    stream.write(wire.freeze()).await?;
    let mut parser = ResponseParser::new(&Method::CONNECT, Limits::default());
    let mut buf = BytesMut::new();
    loop {
        while let Some(ev) = parser.poll(&mut buf)? {
            match ev {
                ResponseEvent::Head(h) if h.status.is_success() => {
                    if !buf.is_empty() {
                        return Err(HttpClientError::ExtraData { len: buf.len() });
                    }
                    return Ok(());
                }
                ResponseEvent::Head(h) => return Err(HttpClientError::Proxy(h.status)),
                _ => {}
            }
        }
        if poll_fn(|cx| stream.poll_read_buf(cx, &mut buf)).await? == 0 {
            parser.eof()?;
        }
    }
}

/// A connection in use, closed when dropped unless [`keep`](ClosingConn::keep) takes it
/// back. Dropping the last handle of a stream is not enough: a stream with output still
/// queued (the rest of a request body) goes on sending it for a while, so a fetch that
/// timed out or was cancelled would keep uploading after it returned.
struct ClosingConn {
    stream: IoStream,
    kept: bool,
}

impl ClosingConn {
    fn new(stream: IoStream) -> ClosingConn {
        ClosingConn {
            stream,
            kept: false,
        }
    }

    fn keep(mut self) -> IoStream {
        self.kept = true;
        self.stream.clone()
    }
}

impl Drop for ClosingConn {
    fn drop(&mut self) {
        if !self.kept {
            self.stream.close();
        }
    }
}

/// One hop of a fetch, as `fetch` hands it down.
struct Hop<'a> {
    req: &'a HttpRequest,
    method: &'a Method,
    headers: &'a HeaderMap,
    body: Option<&'a Bytes>,
    producer: Option<&'a BodyProducer>,
    target: &'a Target,
    auth: Option<&'a (String, String)>,
    follow: bool,
    /// The request's `network_interface`, parsed once per fetch.
    source_ip: Option<std::net::IpAddr>,
}

/// Tornado's checks in `_HTTPConnection.run`: a known method, and a body exactly when
/// the method expects one, unless `allow_nonstandard_methods`.
fn check_method_and_body(req: &HttpRequest) -> Result<(), HttpClientError> {
    if req.allow_nonstandard_methods {
        return Ok(());
    }
    if !is_standard(&req.method) {
        return Err(HttpClientError::invalid(format!(
            "unknown method {} (allow_nonstandard_methods to send it)",
            req.method
        )));
    }
    let present = req.body.is_some() || req.body_producer.is_some();
    let expected = expects_body(&req.method);
    if expected != present {
        return Err(HttpClientError::invalid(format!(
            "Body must {}be None for method {} (unless allow_nonstandard_methods is true)",
            if expected { "not " } else { "" },
            req.method
        )));
    }
    Ok(())
}
