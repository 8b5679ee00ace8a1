//! Tornado's `tornado.tcpserver`: [`TcpServer`] on one loop, and [`ServerThreads`]
//! (`bind` + `start(n)`) on n loops.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread;

use squall_ioloop::{IoLoop, RemoteHandle};
use squall_iostream::{IoStream, StreamError};

use crate::netutil::{
    add_accept_handler, bind_reuse_port_group, bind_sockets, AcceptHandle, Family, PeerAddr,
    DEFAULT_BACKLOG,
};
use crate::setup::StreamSetup;

/// What a connection handler's future may return: `()`, or a `Result` whose error is
/// logged (at debug level when it is a [`StreamError`] for a peer that went away, as
/// Tornado is quiet about those; at error level otherwise, in Tornado's words:
/// "Exception in callback (the handler of the connection from 127.0.0.1:4567): ...").
pub trait HandlerOutput {
    /// Whether the server calls [`report`](HandlerOutput::report) at all: `false` for
    /// `()`, whose report would do nothing. Only when it is `true` does the server keep
    /// its own copy of the peer's address for the life of the connection.
    const REPORTED: bool = true;

    /// Logs the outcome for the connection from `address`.
    fn report(self, address: &PeerAddr);
}

impl HandlerOutput for () {
    const REPORTED: bool = false;

    fn report(self, _address: &PeerAddr) {}
}

impl<E: fmt::Display + 'static> HandlerOutput for Result<(), E> {
    fn report(self, address: &PeerAddr) {
        if let Err(e) = self {
            let quiet = (&e as &dyn Any)
                .downcast_ref::<StreamError>()
                .is_some_and(|s| s.close_cause().is_some_and(|c| c.is_peer_gone()));
            if quiet {
                log::debug!("connection from {address} ended: {e}");
            } else {
                // Tornado's words for an exception of `handle_stream`'s coroutine,
                // which the loop uses for a panic too.
                log::error!(
                    "Exception in callback (the handler of the connection from {address}): {e}"
                );
            }
        }
    }
}

/// Tornado's `TCPServer.handle_stream`: called for every accepted connection with its
/// stream and the peer's address; the returned future runs as a task on the loop (boxed
/// once per connection). Implemented for every `Fn(IoStream, PeerAddr) -> impl Future`.
///
/// Either way its future is stored once, in the connection's task, rather than moved
/// into it (which would reserve room for it twice): a handler whose output is `()` is
/// called in the accept batch and its future spawned as it is, the task's whole state;
/// one whose output is reported (a `Result`, logged when it is an error) is called when
/// the connection's task first runs, on the loop turn after the accept (when Tornado's
/// coroutine would first yield), and its future awaited in place. The future itself
/// first runs on that next turn in both cases. A panic in `handle_stream` is caught and
/// logged like a panic in the future, and costs no other connection. A
/// [`TcpServer::stop`] from inside `handle_stream` stops accepting, but connections
/// accepted in the same batch are already accepted and are still handled.
pub trait StreamHandler: 'static {
    /// The connection's future.
    type Future: Future<Output = Self::Output> + 'static;
    /// What the future returns.
    type Output: HandlerOutput;
    /// Handles one connection.
    fn handle_stream(&self, stream: IoStream, address: PeerAddr) -> Self::Future;
}

impl<F, Fut> StreamHandler for F
where
    F: Fn(IoStream, PeerAddr) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    type Future = Fut;
    type Output = Fut::Output;
    fn handle_stream(&self, stream: IoStream, address: PeerAddr) -> Fut {
        self(stream, address)
    }
}

struct ServerInner {
    io_loop: IoLoop,
    on_connection: Rc<dyn Fn(OwnedFd, PeerAddr)>,
    accepting: RefCell<Vec<AcceptHandle>>,
    addrs: RefCell<Vec<SocketAddr>>,
    stopped: Cell<bool>,
    max_buffer_size: Rc<Cell<Option<usize>>>,
    setup: Rc<RefCell<Option<Arc<dyn StreamSetup>>>>,
}

/// Tornado's `TCPServer`: accepts connections on one [`IoLoop`] and hands each to a
/// [`StreamHandler`] as an [`IoStream`].
///
/// A cheap handle (`Rc` inside): keep a clone in a callback to [`stop`](TcpServer::stop)
/// the server from there. Dropping every handle does not stop the server, as in
/// Tornado: its listeners stay with the loop, accepting, until the loop is closed. For
/// several threads, see [`ServerThreads`] (Tornado's `bind` + `start(n)`).
///
/// ```
/// use squall_ioloop::IoLoop;
/// use squall_tcpserver::TcpServer;
///
/// let io_loop = IoLoop::new()?;
/// io_loop.run_sync(async {
///     let server = TcpServer::new(|stream: squall_iostream::IoStream, _addr| async move {
///         let line = stream.read_until(b"\n", Some(1024)).await?;
///         stream.write(line).await
///     })?;
///     let addrs = server.listen(0, "127.0.0.1")?;
///     let client = squall_iostream::IoStream::connect(addrs[0]).await?;
///     client.write(&b"ping\n"[..]).await?;
///     assert_eq!(&client.read_until(b"\n", None).await?[..], b"ping\n");
///     server.stop();
///     Ok::<(), Box<dyn std::error::Error>>(())
/// }, None)??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "TCPServer")]
#[derive(Clone)]
pub struct TcpServer {
    inner: Rc<ServerInner>,
}

impl TcpServer {
    /// A server on the current thread's loop.
    ///
    /// # Errors
    ///
    /// `Other` if no [`IoLoop`] is current.
    pub fn new<H: StreamHandler>(handler: H) -> io::Result<TcpServer> {
        let io_loop = IoLoop::current().ok_or_else(|| {
            io::Error::other("no current IoLoop on this thread (use TcpServer::with_io_loop)")
        })?;
        Ok(TcpServer::with_io_loop(&io_loop, handler))
    }

    /// A server on `io_loop`.
    pub fn with_io_loop<H: StreamHandler>(io_loop: &IoLoop, handler: H) -> TcpServer {
        let l = io_loop.clone();
        let max_buffer_size = Rc::new(Cell::new(None));
        let limit = max_buffer_size.clone();
        let setup: Rc<RefCell<Option<Arc<dyn StreamSetup>>>> = Rc::default();
        let setup_of = setup.clone();
        let handler = Rc::new(handler);
        let on_connection = Rc::new(move |fd: OwnedFd, address: PeerAddr| {
            let stream = IoStream::from_nonblocking(&l, fd);
            if let Some(n) = limit.get() {
                stream.set_max_buffer_size(n);
            }
            let setup = setup_of.borrow().clone();
            match setup {
                None => spawn_connection(&l, handler.clone(), stream, address),
                Some(s) => spawn_after_setup(&l, handler.clone(), &*s, stream, address),
            }
        });
        TcpServer {
            inner: Rc::new(ServerInner {
                io_loop: io_loop.clone(),
                on_connection,
                accepting: RefCell::new(Vec::new()),
                addrs: RefCell::new(Vec::new()),
                stopped: Cell::new(false),
                max_buffer_size,
                setup,
            }),
        }
    }

    /// Sets `max_buffer_size` for the streams of connections accepted from now on
    /// (Tornado's `TCPServer(max_buffer_size=...)`).
    pub fn set_max_buffer_size(&self, limit: Option<usize>) {
        self.inner.max_buffer_size.set(limit);
    }

    /// Runs every connection accepted from now on through `setup` before the handler
    /// sees it: Tornado's `ssl_options`, with `squall-tls`'s `TlsAcceptor` as the setup.
    /// A connection whose setup fails is closed (logged at debug level).
    pub fn set_stream_setup(&self, setup: Arc<dyn StreamSetup>) {
        *self.inner.setup.borrow_mut() = Some(setup);
    }

    /// Binds `port` on `address` (empty: all interfaces; port 0: a free port shared by
    /// both families) and starts accepting. Tornado's `listen`. Returns the bound
    /// addresses. May be called more than once.
    ///
    /// # Errors
    ///
    /// As [`bind_sockets`] and [`add_sockets`](TcpServer::add_sockets).
    pub fn listen(&self, port: u16, address: &str) -> io::Result<Vec<SocketAddr>> {
        let listeners = bind_sockets(port, address, Family::Any, DEFAULT_BACKLOG, false)?;
        let addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        self.add_sockets(listeners)?;
        Ok(addrs)
    }

    /// Starts accepting on already bound, listening sockets (from [`bind_sockets`], or
    /// inherited). Tornado's `add_sockets`. They are made non-blocking.
    ///
    /// # Errors
    ///
    /// The OS error of `fcntl` or the loop's error registering a socket; `Other` if the
    /// server was stopped.
    pub fn add_sockets(&self, listeners: impl IntoIterator<Item = TcpListener>) -> io::Result<()> {
        for l in listeners {
            l.set_nonblocking(true)?;
            let addr = l.local_addr();
            self.add_listener(l)?;
            if let Ok(a) = addr {
                self.inner.addrs.borrow_mut().push(a);
            }
        }
        Ok(())
    }

    /// Starts accepting on a listening Unix socket (from
    /// [`bind_unix_socket`](crate::bind_unix_socket)); peers get [`PeerAddr::Unix`].
    ///
    /// # Errors
    ///
    /// As [`add_sockets`](TcpServer::add_sockets).
    pub fn add_unix_socket(&self, listener: UnixListener) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        self.add_listener(listener)
    }

    fn add_listener<L: std::os::fd::AsRawFd + 'static>(&self, l: L) -> io::Result<()> {
        if self.inner.stopped.get() {
            return Err(io::Error::other("the server was stopped"));
        }
        let on = self.inner.on_connection.clone();
        let handle = add_accept_handler(&self.inner.io_loop, l, move |fd, addr| on(fd, addr))?;
        self.inner.accepting.borrow_mut().push(handle);
        Ok(())
    }

    /// Stops accepting and closes the listening sockets. Tornado's `stop`: idempotent,
    /// safe from inside a connection handler or the accept loop; connections already
    /// accepted go on.
    pub fn stop(&self) {
        if self.inner.stopped.replace(true) {
            return;
        }
        let handles = std::mem::take(&mut *self.inner.accepting.borrow_mut());
        for h in &handles {
            h.remove();
        }
        self.inner.addrs.borrow_mut().clear();
    }

    /// The addresses the server listens on (TCP listeners only); empty once it is
    /// stopped.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.addrs.borrow().clone()
    }

    /// The accept registrations, for inspection (paused listeners, accept counts).
    pub fn accept_handles(&self) -> Vec<(std::os::fd::RawFd, bool, u64)> {
        self.inner
            .accepting
            .borrow()
            .iter()
            .map(|h| (h.fd(), h.is_paused(), h.accept_calls()))
            .collect()
    }
}

/// Runs one connection as a task.
///
/// When the handler's output is not reported, its future *is* the task: the handler is
/// called here and its future spawned as it is, so the task keeps nothing else for the
/// connection's whole life. When the output is reported, the handler is called inside
/// the task and its future awaited in place (an `async` block that captured a
/// ready-made future and awaited it would keep two slots of that future's size); that
/// task also keeps the handler's `Rc`, the stream handle and the peer's address.
fn spawn_connection<H: StreamHandler>(
    io_loop: &IoLoop,
    handler: Rc<H>,
    stream: IoStream,
    address: PeerAddr,
) {
    if <H::Output as HandlerOutput>::REPORTED {
        drop(io_loop.spawn(async move {
            // The handler's `Rc` is let go before the connection's first await.
            let fut = {
                let h = handler;
                h.handle_stream(stream, address.clone())
            };
            fut.await.report(&address);
        }));
    } else {
        let fut = handler.handle_stream(stream, address);
        drop(handler);
        drop(io_loop.spawn(fut));
    }
}

/// Runs one connection as a task, after its [`StreamSetup`] (a TLS handshake).
fn spawn_after_setup<H: StreamHandler>(
    io_loop: &IoLoop,
    handler: Rc<H>,
    setup: &dyn StreamSetup,
    stream: IoStream,
    address: PeerAddr,
) {
    let ready = setup.setup(stream);
    drop(io_loop.spawn(async move {
        match ready.await {
            Ok(stream) => {
                let fut = handler.handle_stream(stream, address.clone());
                drop(handler);
                fut.await.report(&address);
            }
            Err(e) => log::debug!("connection from {address}: setup failed: {e}"),
        }
    }));
}

impl fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServer")
            .field("addrs", &*self.inner.addrs.borrow())
            .field("stopped", &self.inner.stopped.get())
            .finish()
    }
}

/// Tornado's `TCPServer.bind` + `start(n)`, with threads where Tornado forks: `n`
/// threads, each with its own [`IoLoop`] and its own `SO_REUSEPORT` listener on the same
/// port, so the kernel spreads connections over them and no lock is shared.
///
/// Each thread calls `factory()` once to make its handler, so handlers may hold `Rc`
/// state of their own; only the factory crosses threads (`Send + Sync`). Dropping a
/// `ServerThreads` stops and joins the threads.
///
/// ```
/// use squall_tcpserver::ServerThreads;
///
/// let threads = ServerThreads::start(2, 0, "127.0.0.1", || {
///     |stream: squall_iostream::IoStream, _addr| async move {
///         let data = stream.read_until_close().await?;
///         drop(data);
///         Ok::<(), squall_iostream::StreamError>(())
///     }
/// })?;
/// assert!(threads.local_addrs()[0].port() != 0);
/// threads.stop();
/// threads.join();
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(alias = "bind")]
#[doc(alias = "start")]
pub struct ServerThreads {
    addrs: Vec<SocketAddr>,
    remotes: Vec<RemoteHandle>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl ServerThreads {
    /// Binds `port` on `address` once per thread (`SO_REUSEPORT`; with port 0 the first
    /// bind picks the port and the others share it) and starts `n` threads serving it;
    /// `n == 0` means one per CPU, as Tornado's `start(0)`.
    ///
    /// # Errors
    ///
    /// The first bind error (nothing is started then), or the error of creating a
    /// thread's loop or registering its listeners (the threads already started are
    /// stopped).
    pub fn start<F, H>(n: usize, port: u16, address: &str, factory: F) -> io::Result<ServerThreads>
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: StreamHandler,
    {
        let n = if n == 0 {
            thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            n
        };
        let mut port = port;
        let mut sets = Vec::with_capacity(n);
        let mut addrs = Vec::new();
        for i in 0..n {
            let ls = if i == 0 {
                bind_reuse_port_group(port, address, Family::Any, DEFAULT_BACKLOG)?
            } else {
                bind_sockets(port, address, Family::Any, DEFAULT_BACKLOG, true)?
            };
            if port == 0 {
                port = ls
                    .first()
                    .map(TcpListener::local_addr)
                    .transpose()?
                    .map_or(0, |a| a.port());
            }
            if addrs.is_empty() {
                addrs = ls
                    .iter()
                    .map(TcpListener::local_addr)
                    .collect::<io::Result<_>>()?;
            }
            sets.push(ls);
        }
        let factory = Arc::new(factory);
        let setups = sets.into_iter().map(|listeners| {
            let factory = factory.clone();
            move |io_loop: &IoLoop| -> io::Result<Teardown> {
                let server = TcpServer::with_io_loop(io_loop, factory());
                server.add_sockets(listeners)?;
                Ok(Box::new(move || server.stop()))
            }
        });
        let mut out = ServerThreads::spawn("squall-server", setups)?;
        out.addrs = addrs;
        Ok(out)
    }

    /// Starts one thread per item of `setups`, each with its own [`IoLoop`], made
    /// current on it: the thread calls its setup with the loop (to register listeners,
    /// install per-thread state), runs the loop until [`stop`](ServerThreads::stop),
    /// then runs the teardown the setup returned and closes the loop (logging a failure
    /// to close). Threads are named `{name}-{i}`. [`start`](ServerThreads::start) and
    /// the HTTP server's multi-threaded start are both built on it.
    ///
    /// Returns once every thread has run its setup. [`local_addrs`](Self::local_addrs)
    /// is empty: the setups own their sockets.
    ///
    /// # Errors
    ///
    /// The first setup's error, or the error of creating a thread or its loop; the
    /// threads already started are stopped and joined first.
    pub fn spawn<I, S>(name: &str, setups: I) -> io::Result<ServerThreads>
    where
        I: IntoIterator<Item = S>,
        S: FnOnce(&IoLoop) -> io::Result<Teardown> + Send + 'static,
    {
        let mut out = ServerThreads {
            addrs: Vec::new(),
            remotes: Vec::new(),
            threads: Vec::new(),
        };
        for (i, setup) in setups.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel::<io::Result<RemoteHandle>>();
            let t = thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || serve_thread(setup, tx))?;
            out.threads.push(t);
            match rx.recv() {
                Ok(Ok(remote)) => out.remotes.push(remote),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("a server thread died while starting")),
            }
        }
        Ok(out)
    }

    /// The addresses the first thread listens on (every thread shares the port); empty
    /// for threads made by [`spawn`](ServerThreads::spawn).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// How many threads serve.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether no thread serves.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Asks every thread's loop to stop (it closes its listener and its connections).
    /// Idempotent; returns at once (see [`join`](ServerThreads::join)).
    pub fn stop(&self) {
        for r in &self.remotes {
            r.stop();
        }
    }

    /// Waits for every thread to finish (after [`stop`](ServerThreads::stop), or for
    /// ever if nobody stops them).
    pub fn join(mut self) {
        self.join_all();
    }

    fn join_all(&mut self) {
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::error!("a server thread panicked");
            }
        }
    }
}

impl Drop for ServerThreads {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop();
            self.join_all();
        }
    }
}

impl fmt::Debug for ServerThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerThreads")
            .field("addrs", &self.addrs)
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// What a thread started by [`ServerThreads::spawn`] runs once its loop has stopped
/// (before the loop is closed): stop its servers, flush what it keeps.
pub type Teardown = Box<dyn FnOnce()>;

/// The body of every server thread: a loop made current, the setup, the loop until it
/// is stopped, the teardown, and the loop's close.
fn serve_thread<S>(setup: S, tx: mpsc::Sender<io::Result<RemoteHandle>>)
where
    S: FnOnce(&IoLoop) -> io::Result<Teardown>,
{
    let io_loop = match IoLoop::new() {
        Ok(l) => l,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    io_loop.make_current();
    let teardown = match setup(&io_loop) {
        Ok(t) => t,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    if tx.send(Ok(io_loop.remote())).is_err() {
        return;
    }
    if let Err(e) = io_loop.start() {
        log::error!("server loop failed: {e}");
    }
    teardown();
    if let Err(e) = io_loop.close(true) {
        log::error!("closing the server loop failed: {e}");
    }
}
