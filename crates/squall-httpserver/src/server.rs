//! [`HttpServer`]: listening sockets, connections served without a task while idle, on
//! one loop or across threads, with graceful shutdown.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use squall_httputil::HttpServerRequest;
use squall_ioloop::{IoLoop, RemoteHandle};
use squall_iostream::IoStream;
use squall_tcpserver::{
    bind_reuse_port_group, bind_sockets, Family, PeerAddr, ServerThreads, TcpServer, Teardown,
    DEFAULT_BACKLOG,
};

use crate::config::HttpServerConfig;
use crate::connection::{notify, ConnTable, Params};
use crate::control::HighWater;
use crate::delegate::{ConnectionInfo, HttpServerConnectionDelegate};
use crate::handler::{handler_fn, FnHandler, Response};
use crate::iostream::IoStreamTransport;

mod signals;
mod unix;
pub use unix::DEFAULT_UNIX_SOCKET_MODE;

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

/// State every thread of a server shares. Touched when a connection opens or closes and
/// at shutdown, never per request.
#[derive(Debug)]
struct ServerShared {
    id: u64,
    /// The loops serving this server, to reach them from any thread.
    loops: Mutex<Vec<RemoteHandle>>,
    high_water: HighWater,
    accepted: AtomicU64,
    open: AtomicUsize,
}

impl ServerShared {
    fn remotes(&self) -> Vec<RemoteHandle> {
        self.loops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Run `op` on every loop serving this server; the countdown reaches zero when each
    /// has run it (loops already gone count as done).
    fn on_every_loop(
        &self,
        op: impl Fn(&dyn LocalOps, Arc<Countdown>) + Send + Sync + Clone + 'static,
    ) -> Arc<Countdown> {
        let remotes = self.remotes();
        let countdown = Countdown::new(remotes.len());
        let id = self.id;
        for r in remotes {
            let (c, op) = (countdown.clone(), op.clone());
            let c2 = countdown.clone();
            let sent = r.add_callback(move || {
                let mut ran = false;
                with_local(id, |l| {
                    ran = true;
                    op(l, c.clone());
                });
                if !ran {
                    c.done_one();
                }
            });
            if sent.is_err() {
                c2.done_one();
            }
        }
        countdown
    }

    /// [`HttpServer::stop`]: at once on this thread's loop when it serves the server
    /// (Tornado's `stop` closes the listening sockets before it returns), on each other
    /// loop's next turn.
    fn stop(&self) {
        with_local(self.id, |l| l.stop_accepting());
        let _ = self.on_every_loop(|l, c| {
            l.stop_accepting();
            c.done_one();
        });
    }

    /// [`HttpServer::shutdown`]; `stop_loops`: the server runs on threads of its own,
    /// whose loops end with it.
    fn shutdown(
        self: &Arc<Self>,
        stop_loops: bool,
        grace: Duration,
    ) -> impl Future<Output = ()> + 'static {
        self.stop();
        let drained = self.on_every_loop(|l, c| {
            l.drain();
            l.when_empty(Box::new(move || c.done_one()));
        });
        let force = ForceAll {
            shared: self.clone(),
        };
        let remotes: Vec<RemoteHandle> = if stop_loops {
            self.remotes()
        } else {
            Vec::new()
        };
        async move {
            let finished = {
                let mut wait = pin!(drained.wait());
                let mut timer = pin!(squall_ioloop::sleep(grace));
                poll_fn(|cx| {
                    if wait.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(true);
                    }
                    timer.as_mut().poll(cx).map(|()| false)
                })
                .await
            };
            if !finished {
                log::info!("shutdown grace period over; closing the remaining connections");
                force.run().await;
            }
            for r in remotes {
                r.stop();
            }
        }
    }
}

/// A countdown that a future on any thread can wait for.
#[derive(Debug, Default)]
struct Countdown {
    state: Mutex<(usize, Option<Waker>)>,
}

impl Countdown {
    fn new(n: usize) -> Arc<Countdown> {
        Arc::new(Countdown {
            state: Mutex::new((n, None)),
        })
    }

    fn done_one(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = s.0.saturating_sub(1);
        if s.0 == 0 {
            if let Some(w) = s.1.take() {
                w.wake();
            }
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.0 == 0 {
                Poll::Ready(())
            } else {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// What a thread's part of a server does on request from any thread.
trait LocalOps {
    fn stop_accepting(&self);
    fn drain(&self);
    fn force(&self);
    /// Run `f` once no connection is left (at once if none is).
    fn when_empty(&self, f: Box<dyn FnOnce()>);
}

thread_local! {
    /// This thread's part of each server serving on it, by server id.
    static LOCALS: RefCell<HashMap<u64, Rc<dyn LocalOps>>> = RefCell::new(HashMap::new());
}

fn with_local(id: u64, f: impl FnOnce(&dyn LocalOps)) {
    let local = LOCALS.with(|l| l.borrow().get(&id).cloned());
    if let Some(local) = local {
        f(&*local);
    }
}

/// A server's state on one thread: its delegate, its listeners and its connections.
struct LocalServer<D: HttpServerConnectionDelegate> {
    io_loop: IoLoop,
    delegate: Rc<D>,
    shared: Arc<ServerShared>,
    /// The connections, idle ones without a task (see `ConnTable`).
    conns: Rc<ConnTable<IoStreamTransport, D>>,
    next_id: Cell<u64>,
    /// The accept loop on this thread's listeners (`None` before the first and after
    /// `stop`).
    accepting: RefCell<Option<TcpServer>>,
    empty_waiters: RefCell<Vec<Box<dyn FnOnce()>>>,
}

impl<D: HttpServerConnectionDelegate> LocalServer<D> {
    /// This thread's part of the server, registered so other threads can reach it.
    fn install(
        io_loop: &IoLoop,
        delegate: D,
        config: HttpServerConfig,
        shared: Arc<ServerShared>,
    ) -> Rc<Self> {
        let mut config = config;
        if config.protocol.is_none() {
            // A TLS setup makes every request `https` (Tornado: an `SSLIOStream`).
            let scheme = config.stream_setup.as_ref().and_then(|s| s.scheme());
            config.protocol = scheme.and_then(|s| http::uri::Scheme::try_from(s).ok());
        }
        let delegate = Rc::new(delegate);
        let local = Rc::new_cyclic(|weak: &Weak<Self>| {
            // When a connection is gone: the count, and whoever waits for none to be
            // left.
            let (weak, counts) = (weak.clone(), shared.clone());
            let on_removed = Box::new(move |left: usize| {
                counts.open.fetch_sub(1, Ordering::Relaxed);
                if left == 0 {
                    if let Some(local) = weak.upgrade() {
                        let waiters = std::mem::take(&mut *local.empty_waiters.borrow_mut());
                        for w in waiters {
                            w();
                        }
                    }
                }
            });
            LocalServer {
                io_loop: io_loop.clone(),
                delegate: delegate.clone(),
                shared: shared.clone(),
                conns: ConnTable::new(
                    io_loop.clone(),
                    delegate,
                    Params::new(config),
                    Some(shared.high_water.clone()),
                    on_removed,
                ),
                next_id: Cell::new(1),
                accepting: RefCell::new(None),
                empty_waiters: RefCell::new(Vec::new()),
            }
        });
        let ops: Rc<dyn LocalOps> = local.clone();
        LOCALS.with(|l| l.borrow_mut().insert(shared.id, ops));
        shared
            .loops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(io_loop.remote());
        local
    }

    /// Start accepting on `listeners`, through `squall-tcpserver`'s accept loop
    /// (`accept4` in batches, paused with a backoff when the process runs out of fds).
    fn serve_listeners(self: &Rc<Self>, listeners: Vec<TcpListener>) -> io::Result<()> {
        self.accept_server().add_sockets(listeners)
    }

    /// This thread's accept loop, made on first use.
    fn accept_server(self: &Rc<Self>) -> TcpServer {
        self.accepting
            .borrow_mut()
            .get_or_insert_with(|| {
                let weak = Rc::downgrade(self);
                let delegate = self.delegate.clone();
                let server = TcpServer::with_io_loop(&self.io_loop, move |stream, peer| {
                    Self::accepted(&weak, &delegate, stream, peer)
                });
                if let Some(setup) = &self.conns.params().config.stream_setup {
                    server.set_stream_setup(setup.clone());
                }
                server
            })
            .clone()
    }

    /// A connection from the accept loop: it goes into the table at once, so its task
    /// (the accept loop's, or the stream setup's) ends here. If the server's state on
    /// this thread is gone, the connection is closed at once.
    fn accepted(
        weak: &Weak<Self>,
        delegate: &Rc<D>,
        stream: IoStream,
        peer: PeerAddr,
    ) -> std::future::Ready<()> {
        let addr = peer.inet();
        match weak.upgrade() {
            Some(local) => local.admit(stream, addr),
            None => {
                stream.close();
                let info = ConnectionInfo::new(addr, 0);
                notify("on_close", &info, || delegate.on_close(&info));
            }
        }
        std::future::ready(())
    }

    /// Serve one accepted connection on this thread's loop (Tornado's
    /// `HTTPServer.handle_stream`).
    fn handle_stream(self: &Rc<Self>, stream: IoStream, addr: SocketAddr) {
        self.admit(stream, Some(addr));
    }

    /// Register a connection and serve it.
    fn admit(self: &Rc<Self>, stream: IoStream, addr: Option<SocketAddr>) {
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("TCP_NODELAY on connection from {addr:?}: {e}");
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.shared.accepted.fetch_add(1, Ordering::Relaxed);
        self.shared.open.fetch_add(1, Ordering::Relaxed);
        let setup = (self.conns.params().config.stream_setup.as_ref())
            .and_then(|setup| setup.setup_info(&stream));
        self.conns.admit(
            IoStreamTransport::new(stream),
            ConnectionInfo::new(addr, id).with_setup(setup),
        );
    }
}

impl<D: HttpServerConnectionDelegate> LocalOps for LocalServer<D> {
    fn stop_accepting(&self) {
        let server = self.accepting.borrow_mut().take();
        if let Some(server) = server {
            // Closes the listeners.
            server.stop();
        }
    }

    fn drain(&self) {
        self.conns.drain();
    }

    fn force(&self) {
        self.conns.force();
    }

    fn when_empty(&self, f: Box<dyn FnOnce()>) {
        if self.conns.len() == 0 {
            f();
        } else {
            self.empty_waiters.borrow_mut().push(f);
        }
    }
}

/// An HTTP/1.1 server: Tornado's `HTTPServer`.
///
/// Made from a simple handler ([`HttpServer::new`]) or a streaming delegate
/// ([`HttpServer::with_delegate`]), configured with [`HttpServerConfig`], then served:
///
/// - on the current thread's loop with [`listen`](Self::listen) or
///   [`add_sockets`](Self::add_sockets), then run the loop;
/// - on `n` threads, each with its own loop, with [`bind`](Self::bind) then
///   [`start`](Self::start); the delegate is cloned once per thread (so it must be
///   `Clone + Send`), and each thread has listeners of its own on the same port
///   (`SO_REUSEPORT`).
///
/// [`stop`](Self::stop) stops accepting; [`close_all_connections`](Self::close_all_connections)
/// closes every connection; [`shutdown`](Self::shutdown) does it gracefully.
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use squall_httpserver::{HttpServer, Response};
/// use squall_ioloop::IoLoop;
///
/// let io_loop = IoLoop::new()?;
/// let mut server = HttpServer::new(|_req| async { Response::text("Hello, world!") });
/// let addr = io_loop.run_sync(async move {
///     let addr = server.listen(0, "127.0.0.1")?;
///     // A blocking client on another thread.
///     let client = std::thread::spawn(move || {
///         let mut s = std::net::TcpStream::connect(addr).unwrap();
///         s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
///         let mut reply = String::new();
///         s.read_to_string(&mut reply).unwrap();
///         reply
///     });
///     while !client.is_finished() {
///         squall_ioloop::sleep(Duration::from_millis(1)).await;
///     }
///     assert!(client.join().unwrap().ends_with("Hello, world!"));
///     server.shutdown(Duration::from_secs(1)).await;
///     Ok::<_, std::io::Error>(addr)
/// }, Some(Duration::from_secs(10)))??;
/// assert_eq!(addr.ip().to_string(), "127.0.0.1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "HTTPServer")]
pub struct HttpServer<D: HttpServerConnectionDelegate> {
    delegate: D,
    config: HttpServerConfig,
    shared: Arc<ServerShared>,
    bound: Vec<Bound>,
    threads: Option<ServerThreads>,
    local: Option<Rc<LocalServer<D>>>,
}

impl<D: HttpServerConnectionDelegate> std::fmt::Debug for HttpServer<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("id", &self.shared.id)
            .field("config", &self.config)
            .field(
                "threads",
                &self.threads.as_ref().map_or(0, ServerThreads::len),
            )
            .finish_non_exhaustive()
    }
}

impl<F, Fut> HttpServer<FnHandler<F>>
where
    F: Fn(HttpServerRequest) -> Fut + 'static,
    Fut: Future<Output = Response>,
{
    /// A server answering every request with `handler`, an async function from a whole
    /// request to a [`Response`] (see [`handler_fn`]). Tornado's
    /// `HTTPServer(request_callback)`.
    pub fn new(handler: F) -> Self {
        HttpServer::with_delegate(handler_fn(handler))
    }
}

impl<D: HttpServerConnectionDelegate> HttpServer<D> {
    /// A server handing each request to `delegate` (Tornado's
    /// `HTTPServer(HTTPServerConnectionDelegate)`).
    pub fn with_delegate(delegate: D) -> Self {
        HttpServer {
            delegate,
            config: HttpServerConfig::default(),
            shared: Arc::new(ServerShared {
                id: NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed),
                loops: Mutex::new(Vec::new()),
                high_water: HighWater::default(),
                accepted: AtomicU64::new(0),
                open: AtomicUsize::new(0),
            }),
            bound: Vec::new(),
            threads: None,
            local: None,
        }
    }

    /// The same server with `config` (set it before serving).
    pub fn with_config(mut self, config: HttpServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The settings.
    pub fn config(&self) -> &HttpServerConfig {
        &self.config
    }

    fn current_local(&mut self) -> io::Result<Rc<LocalServer<D>>>
    where
        D: Clone,
    {
        if let Some(l) = &self.local {
            return Ok(l.clone());
        }
        let io_loop = IoLoop::current().ok_or_else(|| {
            io::Error::other("HttpServer::listen/add_sockets need a current IoLoop (call them inside run_sync or start)")
        })?;
        let local = LocalServer::install(
            &io_loop,
            self.delegate.clone(),
            self.config.clone(),
            self.shared.clone(),
        );
        self.local = Some(local.clone());
        Ok(local)
    }

    /// Bind `address:port` and serve it on the current thread's loop (Tornado's
    /// `listen`). Every address `address` resolves to is bound (an empty `address`:
    /// all interfaces, IPv4 and IPv6), as `squall_tcpserver::bind_sockets` does; port 0
    /// picks a free port, shared by all of them. The first bound address is returned.
    ///
    /// # Errors
    /// The resolution or `bind(2)`/`listen(2)` error; an error if no loop is current.
    pub fn listen(&mut self, port: u16, address: &str) -> io::Result<SocketAddr>
    where
        D: Clone,
    {
        let listeners = bind_sockets(port, address, Family::Any, DEFAULT_BACKLOG, false)?;
        let addr = first_addr(&listeners)?;
        self.add_sockets(listeners)?;
        Ok(addr)
    }

    /// Serve already-bound listening sockets on the current thread's loop (Tornado's
    /// `add_sockets`). They are made non-blocking, and accepted from by
    /// `squall-tcpserver`'s accept loop.
    ///
    /// # Errors
    /// An error if no loop is current; the errors of registering the sockets.
    pub fn add_sockets(&mut self, listeners: Vec<TcpListener>) -> io::Result<()>
    where
        D: Clone,
    {
        self.current_local()?.serve_listeners(listeners)
    }

    /// Serve one already-accepted stream on the current thread's loop (Tornado's
    /// `HTTPServer.handle_stream`), for streams accepted elsewhere.
    ///
    /// # Errors
    /// An error if no loop is current.
    pub fn handle_stream(&mut self, stream: IoStream, peer: SocketAddr) -> io::Result<()>
    where
        D: Clone,
    {
        self.current_local()?.handle_stream(stream, peer);
        Ok(())
    }

    /// Bind `address:port` for [`start`](Self::start) (Tornado's `bind`): every
    /// address `address` resolves to, with `SO_REUSEPORT` so that each thread of
    /// `start` gets listeners of its own on the same port. Port 0 picks a free port; the
    /// first bound address is returned.
    ///
    /// # Errors
    /// The resolution or `bind(2)`/`listen(2)` error.
    pub fn bind(&mut self, port: u16, address: &str) -> io::Result<SocketAddr> {
        let listeners = bind_reuse_port_group(port, address, Family::Any, DEFAULT_BACKLOG)?;
        let addr = first_addr(&listeners)?;
        self.bound.push(Bound {
            address: address.to_owned(),
            port: addr.port(),
            listeners,
        });
        Ok(addr)
    }

    /// Serve the sockets from [`bind`](Self::bind) on `threads` new threads, each
    /// running its own loop with its own clone of the delegate (`0`: one per CPU).
    /// Tornado forks processes; here, as in `squall_tcpserver::ServerThreads`, each
    /// thread accepts from listeners of its own bound to the same port with
    /// `SO_REUSEPORT` (the first thread takes the sockets `bind` made), so the kernel
    /// spreads connections over the threads and they share no lock. The call returns
    /// once every thread is serving; [`join`](Self::join) waits for them to end (after
    /// [`shutdown`](Self::shutdown)).
    ///
    /// The threads are [`ServerThreads`]: each has its loop made current, and dropping
    /// the server stops and joins them.
    ///
    /// # Errors
    /// Binding a thread's listeners, creating a thread or a loop, or registering a
    /// listener failed (threads already started are stopped).
    pub fn start(&mut self, threads: usize) -> io::Result<()>
    where
        D: Clone + Send,
    {
        let n = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        // Every thread's listeners, bound before any thread starts.
        let mut sets: Vec<Vec<TcpListener>> = Vec::with_capacity(n);
        sets.push(Vec::new());
        for _ in 1..n {
            let mut set = Vec::new();
            for b in &self.bound {
                set.extend(bind_sockets(
                    b.port,
                    &b.address,
                    Family::Any,
                    DEFAULT_BACKLOG,
                    true,
                )?);
            }
            sets.push(set);
        }
        for b in self.bound.drain(..) {
            sets[0].extend(b.listeners);
        }
        let setups = sets.into_iter().map(|listeners| {
            let (delegate, config) = (self.delegate.clone(), self.config.clone());
            let shared = self.shared.clone();
            move |io_loop: &IoLoop| -> io::Result<Teardown> {
                let local = LocalServer::install(io_loop, delegate, config, shared);
                local.serve_listeners(listeners)?;
                Ok(Box::new(|| ()))
            }
        });
        // Threads already started are stopped and joined if one fails.
        self.threads = Some(ServerThreads::spawn("squall-http", setups)?);
        Ok(())
    }

    /// Stop accepting new connections and close the listening sockets (Tornado's
    /// `stop`). Connections already open go on. Idempotent; on the calling thread's
    /// loop (when it serves this server) the listeners are closed before this returns,
    /// on the others at their next turn.
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Close every open connection at once (Tornado's `close_all_connections`); the
    /// future resolves when they are all gone. Call [`stop`](Self::stop) first, or new
    /// connections keep coming.
    pub fn close_all_connections(&self) -> impl Future<Output = ()> + Send + 'static {
        ForceAll {
            shared: self.shared.clone(),
        }
        .run()
    }

    /// Shut down gracefully: stop accepting, close idle connections, let requests in
    /// flight finish (their responses say `Connection: close`), then after `grace`
    /// close whatever is left. Resolves when every connection is gone; then the loops
    /// of threads made by [`start`](Self::start) are stopped.
    ///
    /// The future runs on any loop (it waits on a timer of the loop that polls it).
    pub fn shutdown(&self, grace: Duration) -> impl Future<Output = ()> + 'static {
        self.shared.shutdown(self.threads.is_some(), grace)
    }

    /// Wait for the threads made by [`start`](Self::start) to end (their loops stop at
    /// the end of [`shutdown`](Self::shutdown)).
    pub fn join(&mut self) {
        if let Some(threads) = self.threads.take() {
            threads.join();
        }
    }

    /// Counters of this server, readable from any thread.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            shared: self.shared.clone(),
        }
    }
}

/// A server's counters, readable from any thread (`Send + Sync`, cheap to clone).
/// They are updated when connections open and close, never per request.
#[derive(Debug, Clone)]
pub struct ServerStats {
    shared: Arc<ServerShared>,
}

impl ServerStats {
    /// The most bytes any one connection of the server has held in its buffers at once
    /// (its input and output buffers and the stream's own), measured after each read
    /// and before each flush: how flat a streaming upload keeps memory.
    pub fn buffer_high_water(&self) -> usize {
        self.shared.high_water.get()
    }

    /// How many connections the server has accepted.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }
}

/// `close_all_connections` without a borrow of the server, for `shutdown`'s future.
struct ForceAll {
    shared: Arc<ServerShared>,
}

impl ForceAll {
    async fn run(self) {
        let remotes = self
            .shared
            .loops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let countdown = Countdown::new(remotes.len());
        let id = self.shared.id;
        for r in remotes {
            let c = countdown.clone();
            let c2 = countdown.clone();
            let sent = r.add_callback(move || {
                let mut ran = false;
                with_local(id, |l| {
                    ran = true;
                    l.force();
                    let c = c.clone();
                    l.when_empty(Box::new(move || c.done_one()));
                });
                if !ran {
                    c.done_one();
                }
            });
            if sent.is_err() {
                c2.done_one();
            }
        }
        countdown.wait().await;
    }
}

/// Sockets from [`HttpServer::bind`], waiting for [`HttpServer::start`].
#[derive(Debug)]
struct Bound {
    /// As given to `bind`, to bind the other threads' listeners the same way.
    address: String,
    /// The port bound (the one picked, for port 0).
    port: u16,
    listeners: Vec<TcpListener>,
}

fn first_addr(listeners: &[TcpListener]) -> io::Result<SocketAddr> {
    listeners
        .first()
        .ok_or_else(|| io::Error::other("no address was bound"))?
        .local_addr()
}
