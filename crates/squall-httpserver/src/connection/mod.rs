//! [`Http1Connection`]: one task per connection, driving the sans-IO
//! [`ServerConn`] over a [`Transport`] and calling the delegates.
//!
//! The connection itself ([`Http1Connection`]: waiting for a request, holding nothing)
//! is here; a busy connection's steps are in `busy` (the read loop, flushing, closing)
//! and `request` (one request through its delegate); the timer and the log lines have
//! small modules of their own.

mod busy;
#[cfg(feature = "gzip")]
mod inflate;
mod logs;
mod request;
mod table;
mod timer;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::IpAddr;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::uri::Scheme;
use squall_httputil::h1::ServerConn;
use squall_httputil::{HeaderCase, HeaderCaseMap, Limits};
use squall_ioloop::instant_after;

use crate::config::HttpServerConfig;
use crate::control::{Control, HighWater};
use crate::delegate::{ConnectionInfo, HttpServerConnectionDelegate};
use crate::spare;
use crate::transport::Transport;
use crate::writer::Shared;

pub(crate) use self::logs::notify;
pub use self::logs::ACCESS_LOG_TARGET;
use self::logs::{log_io_error, Peer};
pub(crate) use self::table::ConnTable;
use self::timer::LazyTimer;

/// How long a closing connection keeps reading (and discarding) what the client still
/// sends, after shutting down its write side, so that the close does not turn into a
/// reset that destroys the response in flight (nginx's lingering close).
const LINGER_TIME: Duration = Duration::from_secs(2);
/// The most bytes discarded while lingering; past them the connection stays open,
/// unread, until [`LINGER_TIME`] is up (so a client that reads while it uploads, as
/// curl and squall's client do, has that time to read the answer before the close
/// resets: a close at the bound once reset the answer away). A client that reads only
/// once its whole body is sent (Python's `requests`) hears the answer if its body ends
/// within the bound plus the socket buffers; 16 MiB is more than those buffers hold
/// on a Linux loopback (4 MiB may wait in the client's, 6 MiB in the server's).
const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// Settings shared by every connection of a server on one thread.
#[derive(Debug)]
pub(crate) struct Params {
    pub(crate) config: HttpServerConfig,
    /// Shared by the connections' parsers (a pointer each, not a copy).
    pub(crate) limits: Arc<Limits>,
    /// `config.header_spellings`, shared the same way when `HeaderCase::Preserve`
    /// uses them.
    pub(crate) spellings: Option<Arc<HeaderCaseMap>>,
    /// The scheme of requests before any proxy header: the configured protocol, or
    /// `http`.
    pub(crate) scheme: Scheme,
}

impl Params {
    pub(crate) fn new(config: HttpServerConfig) -> Rc<Params> {
        let limits = Arc::new(config.limits());
        let spellings = (config.header_case == HeaderCase::Preserve)
            .then(|| Arc::new(config.header_spellings.clone()));
        Rc::new(Params {
            scheme: config.protocol.clone().unwrap_or(Scheme::HTTP),
            config,
            limits,
            spellings,
        })
    }
}

/// Where a connection meets its worker: the connection deposits itself and its input
/// buffer, the worker serves them where they lie (its future borrows them from here for
/// the busy period) and says when it is done. The connection is moved in once and out
/// once per busy period (a couple of hundred bytes), the worker never.
struct Handover<C> {
    held: RefCell<Option<(C, BytesMut)>>,
    state: Cell<Turn>,
}

/// Whose turn it is in a [`Handover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Nothing to serve: the worker waits.
    Empty,
    /// A connection was deposited: the worker serves it.
    Serve,
    /// Served, and idle again: the connection takes itself back.
    Idle,
    /// Served, and closed: the connection takes itself back.
    Closed,
}

/// A worker's slot, shared by the worker's future and whoever holds the worker.
type Slot<C> = Rc<Handover<C>>;

/// Why the connection stops serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Not an end: no request is in flight and nothing is buffered (but blank lines);
    /// the connection waits for the next request without its serving state.
    Idle,
    /// Nothing more to read: send what is queued, then close.
    Done,
    /// Part of the request is unread: send what is queued, read and discard for a
    /// while, then close.
    Linger,
    /// Stop now: the peer is gone, timed out, or the server forces the close.
    Dead,
    /// A `101 Switching Protocols` went out and the delegate detached: send what is
    /// queued, then hand the stream and the unread input to the new owner.
    Detach,
}

enum ReadOutcome {
    Data,
    Eof,
    Timeout,
    Shutdown,
    Error(io::Error),
}

/// After a request: go on to the next one, or close.
enum Flow {
    Next,
    Close(End),
}

/// One HTTP/1.x server connection: Tornado's `HTTP1ServerConnection` and
/// `HTTP1Connection`, server side.
///
/// [`serve`](Self::serve) is the connection's whole life as one future: spawn it once
/// per connection and it serves request after request until the connection closes. It
/// is generic over the transport and the delegate, so nothing is dynamically
/// dispatched. Between requests the connection is *idle* and holds only itself and a
/// wait for the next bytes; the state of serving (the parser, the output buffer, the
/// request in flight with its delegate's futures) lives in a worker, boxed once at the
/// first busy period and kept for the next: no allocation per busy period.
///
/// [`HttpServer`](crate::HttpServer) serves its connections the same way without this
/// future: an idle connection of a server has no task at all, only an entry in its
/// thread's connection table, and a worker task takes it when bytes arrive.
///
/// Requests are handled in order; for each the delegate's methods are awaited in turn.
/// **Pipelining is batching**: every request already buffered is parsed and answered
/// before anything is sent, the responses accumulating in one output buffer, which is
/// sent in one write when the input is exhausted (or while a delegate waits).
///
/// **A client that goes away is noticed while its request is handled.** Once a
/// request has been read to its end and the delegate's future is pending (never for a
/// handler ready at its first poll), the connection watches the transport: at
/// end-of-file (a close, or a shutdown of the client's sending side) or an error, the
/// future is dropped, cancelling the handler (as hyper drops its service future), a
/// streaming delegate's [`on_connection_close`](crate::HttpMessageDelegate::on_connection_close)
/// is called, and the connection closes, logging at debug level only. Bytes that come
/// instead (a pipelined request) are kept for after the response, and the watch waits
/// until then.
///
/// ```
/// use std::rc::Rc;
/// use squall_httpserver::{handler_fn, Http1Connection, HttpServerConfig, MemoryTransport, Response};
/// use squall_ioloop::IoLoop;
///
/// let io_loop = IoLoop::new()?;
/// let (transport, peer) = MemoryTransport::pair();
/// let handler = handler_fn(|_req| async { Response::text("Hello, world!") });
/// let conn = Http1Connection::new(transport, Rc::new(handler), HttpServerConfig::default(), None);
/// peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
/// io_loop.run_sync(conn.serve(), None)?;
/// let out = peer.take_output();
/// assert_eq!(peer.write_calls(), 1, "both responses in one write");
/// assert_eq!(String::from_utf8_lossy(&out).matches("Hello, world!").count(), 2);
/// assert!(peer.is_closed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "HTTP1Connection")]
#[doc(alias = "HTTP1ServerConnection")]
pub struct Http1Connection<T: Transport, D: HttpServerConnectionDelegate> {
    transport: T,
    delegate: Rc<D>,
    params: Rc<Params>,
    /// Boxed once per connection: an `Option<SocketAddr>` moves as pieces at odd
    /// offsets, and the connection's parts move between its table entry and a worker
    /// every busy period; the request's copy of it (`RequestStart::connection`) read
    /// those pieces just written, a store-forwarding stall per request under `perf`.
    info: Box<ConnectionInfo>,
    /// The peer's address as requests report it (an IPv4-mapped IPv6 address as
    /// IPv4), worked out when the connection is assembled for a busy period, long
    /// before a request reads it. Made per request, this `Option<IpAddr>` (17 bytes
    /// aligned to one) was assembled byte by byte and read back at once, the
    /// connection code's hottest instruction under `perf`; kept here rather than with
    /// the idle connection, whose memory it would grow.
    remote_ip: Option<IpAddr>,
    control: Rc<Control>,
    timer: LazyTimer,
    /// The server's mark, shared per thread: an `Rc` so that a table's connections
    /// take it up for each busy period without an atomic increment.
    high_water: Option<Rc<HighWater>>,
    own_high: usize,
}

/// The peer's address of `info` as requests report it: canonical (an IPv4-mapped
/// IPv6 address as IPv4).
pub(crate) fn remote_ip(info: &ConnectionInfo) -> Option<IpAddr> {
    info.peer_addr.map(|a| a.ip().to_canonical())
}

impl<T: Transport, D: HttpServerConnectionDelegate> std::fmt::Debug for Http1Connection<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Connection")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<T: Transport, D: HttpServerConnectionDelegate> Http1Connection<T, D> {
    /// A connection over `transport` from `peer_addr`, handing requests to `delegate`.
    pub fn new(
        transport: T,
        delegate: Rc<D>,
        config: HttpServerConfig,
        peer_addr: Option<std::net::SocketAddr>,
    ) -> Self {
        Self::with_params(
            transport,
            delegate,
            Params::new(config),
            ConnectionInfo::new(peer_addr, 0),
            Rc::new(Control::default()),
            None,
        )
    }

    pub(crate) fn with_params(
        transport: T,
        delegate: Rc<D>,
        params: Rc<Params>,
        info: ConnectionInfo,
        control: Rc<Control>,
        high_water: Option<Rc<HighWater>>,
    ) -> Self {
        Http1Connection {
            transport,
            delegate,
            params,
            remote_ip: remote_ip(&info),
            info: Box::new(info),
            control,
            timer: LazyTimer::default(),
            high_water,
            own_high: 0,
        }
    }

    /// Serve requests until the connection closes; the transport is closed on return.
    /// Tornado's `HTTP1ServerConnection.start_serving`.
    ///
    /// # Panics
    /// The future panics if polled on a thread without a current `IoLoop` (its
    /// timeouts are loop timers).
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn stores its arguments twice"
    )]
    pub fn serve(mut self) -> impl Future<Output = ()>
    where
        T: 'static,
    {
        // An `async` block rather than an `async fn`: the connection is captured once,
        // where an `async fn` keeps its arguments twice (as passed and as locals), which
        // every idle connection would pay for. (For the same reason the connection is
        // not rebound to a local: the captured value and the local would both be kept.)
        async move {
            let mut inbuf = BytesMut::new();
            // Made for the first busy period and kept for the next: the state of serving
            // lives in its box, so the idle wait holds only a pointer to it.
            let mut worker = None;
            while self.wait_next(&mut inbuf).await {
                // The worker serves the busy period: the connection is handed to it and
                // handed back. Nothing of the few KB is built or moved per busy period.
                let (worker, slot) = worker.get_or_insert_with(Self::worker);
                *slot.held.borrow_mut() = Some((self, inbuf));
                slot.state.set(Turn::Serve);
                let idle = poll_fn(|cx| {
                    // Polled with this task's context: whatever the busy period waits
                    // for wakes this task. A worker never completes.
                    let _ = worker.as_mut().poll(cx);
                    match slot.state.get() {
                        Turn::Idle => Poll::Ready(true),
                        Turn::Closed => Poll::Ready(false),
                        Turn::Empty | Turn::Serve => Poll::Pending,
                    }
                })
                .await;
                slot.state.set(Turn::Empty);
                let back = slot.held.borrow_mut().take();
                let Some((back, buf)) = back else {
                    unreachable!("a worker hands back the connection it was given");
                };
                self = back;
                inbuf = buf;
                if !idle {
                    break;
                }
            }
            notify("on_close", &self.info, || {
                self.delegate.on_close(&self.info)
            });
        }
    }

    /// A new worker: a future that never completes, boxed once, and its slot. Each time
    /// it is polled with a connection in the slot, it serves the connection's busy
    /// period ([`busy`](Self::busy)) and puts the connection back; with the slot empty
    /// it returns `Pending` without registering a waker (its holder polls it).
    #[expect(
        clippy::await_holding_refcell_ref,
        reason = "the slot's owner does not borrow it while the worker serves"
    )]
    fn worker() -> (Pin<Box<impl Future<Output = ()>>>, Slot<Self>) {
        let slot: Slot<Self> = Rc::new(Handover {
            held: RefCell::new(None),
            state: Cell::new(Turn::Empty),
        });
        let s = slot.clone();
        let fut = async move {
            // The worker's serving state, kept from one busy period to the next (made
            // for the first).
            let mut shared: Option<RefCell<Shared>> = None;
            loop {
                poll_fn(|_| match s.state.get() {
                    Turn::Serve => Poll::Ready(()),
                    _ => Poll::Pending,
                })
                .await;
                let idle = {
                    // Borrowed for the busy period: nothing else touches the slot's
                    // connection until the state says the worker is done (taking it
                    // out instead would move it once more each way).
                    let mut held = s.held.borrow_mut();
                    match &mut *held {
                        Some((conn, inbuf)) => {
                            let shared =
                                shared.get_or_insert_with(|| Self::serving_state(&conn.params));
                            conn.busy(inbuf, shared).await
                        }
                        None => false,
                    }
                };
                s.state.set(if idle { Turn::Idle } else { Turn::Closed });
            }
        };
        // Allocating first and writing the future into the box builds it in place:
        // `Box::pin(f)` would build it on the stack and copy its few KB in.
        (Box::into_pin(Box::write(Box::new_uninit(), fut)), slot)
    }

    /// Wait for the first bytes of the next request, holding nothing else. `false` once
    /// the connection is closed: end of file, the idle timeout, a shutdown, an error.
    ///
    /// Not an `async` block: the idle connection's whole wait is this `poll_fn`, which
    /// keeps two references and the deadline (an `async` read future pinned across the
    /// wait, with its own copies of its arguments, made every idle connection about
    /// 120 bytes bigger). The transport's read future is made anew at each poll, which
    /// its cancel-safety allows.
    fn wait_next<'a>(&'a mut self, inbuf: &'a mut BytesMut) -> impl Future<Output = bool> + 'a {
        let deadline = instant_after(Instant::now(), self.params.config.idle_connection_timeout);
        // A connection waiting with nothing buffered holds no input buffer (the
        // transport takes one when bytes arrive).
        spare::give(inbuf);
        poll_fn(move |cx| {
            let outcome = match self.poll_idle(cx, inbuf, deadline) {
                Poll::Ready(outcome) => outcome,
                Poll::Pending => return Poll::Pending,
            };
            match outcome {
                ReadOutcome::Data => {
                    self.note_memory(inbuf.capacity());
                    return Poll::Ready(true);
                }
                ReadOutcome::Eof | ReadOutcome::Shutdown => {}
                ReadOutcome::Timeout => {
                    log::debug!("closing connection from {}: idle timeout", Peer(&self.info));
                }
                ReadOutcome::Error(e) => {
                    log_io_error("error reading from HTTP connection", &e);
                }
            }
            self.transport.close();
            Poll::Ready(false)
        })
    }

    /// One poll of the idle wait: [`read`](Self::read)'s, with a read future that lives
    /// for this poll only.
    fn poll_idle(
        &mut self,
        cx: &mut std::task::Context<'_>,
        inbuf: &mut BytesMut,
        deadline: Instant,
    ) -> Poll<ReadOutcome> {
        if self.control.forced() {
            return Poll::Ready(ReadOutcome::Shutdown);
        }
        // The transport first: a request that arrived on an idle connection as the
        // server began to drain is served, not dropped.
        if let Poll::Ready(outcome) = self.poll_read(cx, inbuf) {
            return Poll::Ready(outcome);
        }
        if self.control.draining() {
            return Poll::Ready(ReadOutcome::Shutdown);
        }
        if self.timer.poll(cx, deadline).is_ready() {
            return Poll::Ready(ReadOutcome::Timeout);
        }
        self.control.register(cx.waker());
        Poll::Pending
    }

    /// One poll of a transport read into `inbuf`, with a read future that lives for
    /// this poll only (its cancel-safety allows it): the idle wait's, and the watch for
    /// a client that goes away while a delegate works ([`Busy::drive`]). `Pending`
    /// leaves `cx`'s waker with the transport.
    #[inline(always)]
    fn poll_read(
        &mut self,
        cx: &mut std::task::Context<'_>,
        inbuf: &mut BytesMut,
    ) -> Poll<ReadOutcome> {
        match pin!(self.transport.read(inbuf)).poll(cx) {
            Poll::Ready(Ok(0)) => Poll::Ready(ReadOutcome::Eof),
            Poll::Ready(Ok(_)) => Poll::Ready(ReadOutcome::Data),
            Poll::Ready(Err(e)) => Poll::Ready(ReadOutcome::Error(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Serve what `inbuf` holds and what follows, until the connection is idle again
    /// (`true`) or closed (`false`).
    ///
    /// `shared` is the caller's serving state ([`serving_state`](Self::serving_state)),
    /// kept from one busy period to the next (of whichever connection): it is reset
    /// here, its parser's settings and output buffer kept.
    async fn busy(&mut self, inbuf: &mut BytesMut, shared: &RefCell<Shared>) -> bool {
        let config = &self.params.config;
        // Draining: the request that woke an idle connection is answered with
        // `Connection: close`.
        shared
            .borrow_mut()
            .begin_busy(config, config.no_keep_alive || self.control.draining());
        let mut busy = Busy {
            conn: self,
            shared,
            inbuf,
        };
        match busy.run().await {
            End::Idle => true,
            End::Detach => {
                busy.detach().await;
                false
            }
            end => {
                busy.close(end).await;
                false
            }
        }
    }

    /// The state a worker serves busy periods with, for the server `params` describe:
    /// a parser with the server's settings, and an output buffer.
    fn serving_state(params: &Params) -> RefCell<Shared> {
        let config = &params.config;
        let mut h1 = ServerConn::new(params.limits.clone());
        h1.set_server_header(config.server_header.clone());
        if config.header_case != HeaderCase::Lower {
            h1.set_header_case(config.header_case, params.spellings.clone());
        }
        RefCell::new(Shared::new(h1, config))
    }

    /// Raise the high-water mark if `buffers` plus the transport's own is a new high.
    fn note_memory(&mut self, buffers: usize) {
        if let Some(hw) = &self.high_water {
            let held = buffers + self.transport.buffered_len();
            if held > self.own_high {
                self.own_high = held;
                hw.0.fetch_max(held, Ordering::Relaxed);
            }
        }
    }

    /// Wait for input until `deadline`, in a busy period (a graceful shutdown does
    /// not end this wait: the request in flight is finished first).
    ///
    /// A plain function returning an `async move` block, not an `async fn` (which
    /// would keep its arguments twice).
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn stores its arguments twice"
    )]
    fn read<'a>(
        &'a mut self,
        inbuf: &'a mut BytesMut,
        out_cap: usize,
        deadline: Instant,
    ) -> impl Future<Output = ReadOutcome> + 'a {
        async move {
            // A connection waiting with nothing buffered holds no input buffer (the
            // transport takes one when bytes arrive).
            spare::give(inbuf);
            let outcome = {
                let Self {
                    transport,
                    timer,
                    control,
                    ..
                } = self;
                let mut fut = pin!(transport.read(inbuf));
                poll_fn(|cx| {
                    if control.forced() {
                        return Poll::Ready(ReadOutcome::Shutdown);
                    }
                    match fut.as_mut().poll(cx) {
                        Poll::Ready(Ok(0)) => return Poll::Ready(ReadOutcome::Eof),
                        Poll::Ready(Ok(_)) => return Poll::Ready(ReadOutcome::Data),
                        Poll::Ready(Err(e)) => return Poll::Ready(ReadOutcome::Error(e)),
                        Poll::Pending => {}
                    }
                    if timer.poll(cx, deadline).is_ready() {
                        return Poll::Ready(ReadOutcome::Timeout);
                    }
                    control.register(cx.waker());
                    Poll::Pending
                })
                .await
            };
            self.note_memory(inbuf.capacity() + out_cap);
            outcome
        }
    }
}

/// A busy connection: the connection, the state the delegates reach, and the input
/// buffer, carried together through every step of serving (the methods in `busy` and
/// `request`).
struct Busy<'c, T: Transport, D: HttpServerConnectionDelegate> {
    conn: &'c mut Http1Connection<T, D>,
    shared: &'c RefCell<Shared>,
    inbuf: &'c mut BytesMut,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{handler_fn, MemoryTransport, Response};
    use squall_ioloop::IoLoop;

    async fn until(mut cond: impl FnMut() -> bool) {
        while !cond() {
            squall_ioloop::sleep(Duration::ZERO).await;
        }
    }

    /// A request that reaches an idle keep-alive connection in the same turn as the
    /// server's drain is answered (with `Connection: close`), then the connection
    /// closes; an idle connection with nothing to read just closes.
    #[test]
    fn a_request_racing_a_drain_is_answered() {
        for racing in [true, false] {
            let io_loop = IoLoop::new().unwrap();
            let (transport, peer) = MemoryTransport::pair();
            let control = Rc::new(Control::default());
            let handler = Rc::new(handler_fn(|_req| async { Response::text("hi") }));
            let conn = Http1Connection::with_params(
                transport,
                handler,
                Params::new(HttpServerConfig::default()),
                ConnectionInfo::new(None, 0),
                control.clone(),
                None,
            );
            let out = io_loop
                .run_sync(
                    async move {
                        let task = IoLoop::current().unwrap().spawn(conn.serve());
                        peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                        until(|| peer.write_calls() == 1).await;
                        if racing {
                            peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                        }
                        control.drain();
                        task.await.unwrap();
                        assert!(peer.is_closed());
                        String::from_utf8(peer.take_output().to_vec()).unwrap()
                    },
                    Some(Duration::from_secs(30)),
                )
                .unwrap();
            let answers: Vec<&str> = out.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
            assert_eq!(answers.len(), if racing { 2 } else { 1 }, "{out}");
            assert!(!answers[0].contains("Connection: close"), "{out}");
            if racing {
                assert!(answers[1].contains("Connection: close\r\n"), "{out}");
            }
        }
    }

    /// A connection task cancelled in the middle of a busy period (as at a forced
    /// shutdown) drops its worker and the request in flight with it; the next
    /// connection of the thread is served by a worker of its own.
    #[test]
    fn a_cancelled_busy_period_drops_its_worker() {
        let io_loop = IoLoop::new().unwrap();
        let token = Rc::new(());
        let params = Params::new(HttpServerConfig::default());
        let t = token.clone();
        let handler = Rc::new(handler_fn(
            move |req: squall_httputil::HttpServerRequest| {
                let t = t.clone();
                async move {
                    if req.path() == "/hang" {
                        let _t = t;
                        std::future::pending::<()>().await;
                    }
                    Response::text("hi")
                }
            },
        ));
        let connection = |transport| {
            Http1Connection::with_params(
                transport,
                handler.clone(),
                params.clone(),
                ConnectionInfo::new(None, 0),
                Rc::new(Control::default()),
                None,
            )
        };
        let (t1, peer1) = MemoryTransport::pair();
        let (t2, peer2) = MemoryTransport::pair();
        let (c1, c2) = (connection(t1), connection(t2));
        let token2 = token.clone();
        io_loop
            .run_sync(
                async move {
                    let l = IoLoop::current().unwrap();
                    let hung = l.spawn(c1.serve());
                    peer1.send(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
                    until(|| Rc::strong_count(&token2) == 4).await;
                    hung.abort();
                    assert_eq!(
                        Rc::strong_count(&token2),
                        3,
                        "the request in flight is dropped"
                    );
                    let ok = l.spawn(c2.serve());
                    peer2.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                    ok.await.unwrap();
                    let out = String::from_utf8(peer2.take_output().to_vec()).unwrap();
                    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
                    assert!(out.ends_with("hi"), "{out}");
                },
                Some(Duration::from_secs(30)),
            )
            .unwrap();
    }
}
