//! A server thread's connections without a task each: [`ConnTable`].
//!
//! An idle keep-alive connection is an entry in the table (its stream, its
//! [`ConnectionInfo`], links in the list of idle connections) and the stream's
//! registration with the loop, whose read waker is the entry's own [`KeyWaker`]. When
//! bytes arrive, that waker puts the entry's key on the table's ready queue and wakes a
//! *worker*: a task that takes the connection out of the table, serves its busy period
//! (the state of serving, a few KB, lives in the worker's future and is reused), and
//! parks it again. Workers are made when every worker is busy and kept between busy
//! periods (up to [`MAX_SPARE_WORKERS`] waiting), so a warm thread allocates nothing per
//! busy period. One more task per thread, the *keeper*, closes the connections that stay
//! idle too long (they all share one timeout, so the list of idle connections, in the
//! order they went idle, is also the order of their deadlines, and one timer at its
//! front is enough), and makes a worker when a connection is ready and no worker waits.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::mem;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use squall_ioloop::{instant_after, IoLoop, RemoteHandle};

use super::logs::{log_io_error, notify, Peer};
use super::timer::LazyTimer;
use super::{remote_ip, Http1Connection, Params};
use crate::control::{Control, HighWater};
use crate::delegate::{ConnectionInfo, HttpServerConnectionDelegate};
use crate::spare;
use crate::transport::Transport;

/// No entry (the end of a list).
const NIL: u32 = u32::MAX;

/// The most workers kept waiting for work on a thread (each a few KB); a worker that
/// finds this many waiting when its busy period ends stops.
const MAX_SPARE_WORKERS: usize = 16;

/// What the connections' wakers tell the table: the keys of the connections that have
/// something to do, and who to wake for them. It lives on the table's thread, where
/// the wakers are woken in practice (by the loop's streams): a wake there reaches it
/// through [`READY`] with no lock and no atomic operation. A wake from another thread
/// is sent to the loop's thread first ([`KeyWaker`]).
#[derive(Default)]
struct ReadyState {
    /// Keys of connections to look at, in the order they were woken (a key may be there
    /// more than once, or be stale: the table checks).
    keys: VecDeque<u32>,
    /// Workers with nothing to do; the last one to wait is woken first.
    waiting: Vec<Waker>,
    /// The keeper, when it waits: woken when a key arrives and no worker waits or
    /// is about to look.
    keeper: Option<Waker>,
    /// A waiting worker was woken for a key and has not looked at the keys yet: when it
    /// does, it takes every key queued by then, so the keys queued meanwhile (the
    /// other connections of the same poll) need nobody else woken.
    worker_woken: bool,
}

impl ReadyState {
    /// Queues `keys` and says who to wake for them: a waiting worker (which then counts
    /// as woken), none if a woken worker has yet to look, else the keeper.
    fn queue(&mut self, keys: impl IntoIterator<Item = u32>) -> Option<Waker> {
        self.keys.extend(keys);
        match self.waiting.pop() {
            Some(w) => {
                self.worker_woken = true;
                Some(w)
            }
            None if self.worker_woken => None,
            None => self.keeper.take(),
        }
    }
}

type Ready = Rc<RefCell<ReadyState>>;

thread_local! {
    /// The ready state of each table on this thread, by table id.
    static READY: RefCell<Vec<(u64, Ready)>> = const { RefCell::new(Vec::new()) };
}

/// Table ids, unique in the process (a waker outliving its table must not reach
/// another one).
static NEXT_TABLE_ID: AtomicU64 = AtomicU64::new(0);

/// Queues `key` on this thread's table `table` and wakes a waiting worker, else the
/// keeper; `false` when this thread has no such table (the wake came from another
/// thread, or the table is gone).
fn wake_key(table: u64, key: u32) -> bool {
    let found = READY.try_with(|tables| {
        let tables = tables.borrow();
        let (_, ready) = tables.iter().find(|(id, _)| *id == table)?;
        let w = ready.borrow_mut().queue([key]);
        Some(w)
    });
    let Ok(Some(w)) = found else {
        return false;
    };
    // Woken with no borrow held: the worker or keeper may run at once.
    if let Some(w) = w {
        w.wake();
    }
    true
}

/// `at` as a table entry keeps its deadline: nanoseconds after `epoch` (past 584 years
/// from it, as good as never).
fn nanos_after(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// The waker of one entry of the table, made once per entry and kept by it (an entry
/// whose connection ended serves the next connection with the same waker): waking it
/// queues the key and wakes a waiting worker, else the keeper. Woken on another thread
/// (which a stream of the loop never does, but a waker may be sent anywhere), it asks
/// the loop's thread to do that at its next turn.
struct KeyWaker {
    key: u32,
    table: u64,
    remote: RemoteHandle,
}

impl Wake for KeyWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !wake_key(self.table, self.key) {
            let (table, key) = (self.table, self.key);
            // A closed loop has no connections left to serve: nothing to tell.
            let _ = self.remote.add_callback(move || {
                wake_key(table, key);
            });
        }
    }
}

/// What an idle connection keeps: its stream and who it is. The rest of an
/// [`Http1Connection`] is the server's (shared by every connection) or the worker's.
struct Idle<T> {
    transport: T,
    /// Boxed: see `Http1Connection::info`.
    info: Box<ConnectionInfo>,
    own_high: usize,
}

impl<T: Transport> Idle<T> {
    /// What of a connection stays in its entry while it is idle (the rest is the
    /// thread's, or the worker's).
    fn of<D: HttpServerConnectionDelegate>(conn: Http1Connection<T, D>) -> Idle<T> {
        let Http1Connection {
            transport,
            info,
            own_high,
            ..
        } = conn;
        Idle {
            transport,
            info,
            own_high,
        }
    }
}

enum State<T> {
    /// No connection: the next free entry. Kept in a word, so that the variants'
    /// payloads start at the same aligned offset: with a `u32` here the payload began
    /// at offset 4, and parking a connection copied bytes 4..32 of an `Idle` just
    /// written as words at 8..32, misaligned loads across those stores that stalled
    /// the CPU on every park (`perf annotate`).
    Free(u64),
    /// A worker serves the connection.
    Busy,
    /// Idle, in the list of idle connections.
    Parked(Idle<T>),
}

/// One entry of the table: one cache line for a stream's connection (64 bytes, aligned
/// to 64). A request touches its entry and its neighbour's in the idle list; at 72
/// bytes (the deadline an `Instant`) most entries straddled two lines, and with a
/// thousand connections each line is a miss per request.
#[repr(align(64))]
struct Slot<T> {
    /// This entry's waker, reused by every connection that lives here.
    waker: Waker,
    /// Neighbours in the list of idle connections, while parked.
    prev: u32,
    next: u32,
    /// When the connection, parked, times out: nanoseconds after the table's `epoch`.
    deadline: u64,
    state: State<T>,
}

const _: () = assert!(std::mem::size_of::<Slot<crate::IoStreamTransport>>() == 64);

/// How a park ended.
enum Parked {
    /// In the table, waiting for bytes.
    Waiting,
    /// Closed (end of file, an error, a drain).
    Closed,
    /// Bytes were already there: the connection stays with the worker, to serve them.
    Data,
}

/// A server thread's connections (see the module's documentation): the idle ones, with
/// no task, and the busy ones, each served by a worker.
pub(crate) struct ConnTable<T: Transport, D: HttpServerConnectionDelegate> {
    io_loop: IoLoop,
    delegate: Rc<D>,
    params: Rc<Params>,
    high_water: Option<Rc<HighWater>>,
    slots: RefCell<Vec<Slot<T>>>,
    /// What the entries' deadlines count from (the table's creation).
    epoch: Instant,
    /// The last clock reading a deadline was made from, and that deadline: the parks of
    /// one loop turn share the turn's reading, and so its deadline.
    last_deadline: Cell<(Instant, u64)>,
    /// The first free entry.
    free: Cell<u32>,
    /// Open connections.
    len: Cell<usize>,
    /// The list of idle connections, the first to go idle first (and so the first to
    /// time out: they all have the same timeout).
    head: Cell<u32>,
    tail: Cell<u32>,
    /// Drain or force, for every connection of the thread (as `Control`'s state).
    control: Control,
    /// This table's id in [`READY`], and its ready state there.
    id: u64,
    ready: Ready,
    /// Every live worker's control, to pass a drain or a force on to its busy period.
    workers: RefCell<Vec<Rc<Control>>>,
    /// Whether the keeper task is alive.
    keeper: Cell<bool>,
    /// Whether the keeper's timer is set (for the first idle connection's deadline, or
    /// an earlier one); when it is not, the next park wakes the keeper to set it.
    armed: Cell<bool>,
    /// Called after a connection is removed, with how many are left.
    on_removed: Box<dyn Fn(usize)>,
}

impl<T: Transport, D: HttpServerConnectionDelegate> Drop for ConnTable<T, D> {
    fn drop(&mut self) {
        // Its wakers may outlive it: from now on they find no table and do nothing.
        // (During thread teardown the list may be gone already.)
        let _ = READY.try_with(|tables| {
            if let Ok(mut tables) = tables.try_borrow_mut() {
                tables.retain(|(id, _)| *id != self.id);
            }
        });
    }
}

impl<T: Transport + 'static, D: HttpServerConnectionDelegate> ConnTable<T, D> {
    pub(crate) fn new(
        io_loop: IoLoop,
        delegate: Rc<D>,
        params: Rc<Params>,
        high_water: Option<HighWater>,
        on_removed: Box<dyn Fn(usize)>,
    ) -> Rc<Self> {
        let id = NEXT_TABLE_ID.fetch_add(1, Ordering::Relaxed);
        // The deadline cache starts true (the epoch's own deadline), so that no reading
        // can match a placeholder.
        let epoch = Instant::now();
        let first = nanos_after(
            epoch,
            instant_after(epoch, params.config.idle_connection_timeout),
        );
        let ready = Ready::default();
        READY.with(|tables| tables.borrow_mut().push((id, ready.clone())));
        Rc::new(ConnTable {
            io_loop,
            delegate,
            params,
            high_water: high_water.map(Rc::new),
            slots: RefCell::new(Vec::new()),
            epoch,
            last_deadline: Cell::new((epoch, first)),
            free: Cell::new(NIL),
            len: Cell::new(0),
            head: Cell::new(NIL),
            tail: Cell::new(NIL),
            control: Control::default(),
            id,
            ready,
            workers: RefCell::new(Vec::new()),
            keeper: Cell::new(false),
            armed: Cell::new(false),
            on_removed,
        })
    }

    /// The settings of the server's connections on this thread.
    pub(crate) fn params(&self) -> &Rc<Params> {
        &self.params
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    /// Serve a new connection: it waits in the table like an idle one, and is looked
    /// at at once (its first bytes may be there already).
    pub(crate) fn admit(self: &Rc<Self>, transport: T, info: ConnectionInfo) {
        if !self.keeper.get() {
            self.keeper.set(true);
            drop(self.io_loop.spawn(keeper(self.clone())));
        }
        let key = {
            let mut slots = self.slots.borrow_mut();
            let idle = State::Parked(Idle {
                transport,
                info: Box::new(info),
                own_high: 0,
            });
            let key = self.free.get();
            if key == NIL {
                let key = u32::try_from(slots.len())
                    .ok()
                    .filter(|k| *k != NIL)
                    .expect("fewer than 4 billion connections");
                let waker = Waker::from(Arc::new(KeyWaker {
                    key,
                    table: self.id,
                    remote: self.io_loop.remote(),
                }));
                slots.push(Slot {
                    waker,
                    prev: NIL,
                    next: NIL,
                    deadline: 0,
                    state: idle,
                });
                key
            } else {
                let slot = &mut slots[key as usize];
                let State::Free(next) = slot.state else {
                    unreachable!("the free list holds free entries");
                };
                // Written from a `u32` by `remove`.
                self.free.set(next as u32);
                slot.state = idle;
                key
            }
        };
        self.len.set(self.len.get() + 1);
        self.link(key, Instant::now());
        let waker = self.slots.borrow()[key as usize].waker.clone();
        waker.wake();
    }

    /// Stop keeping connections alive: busy ones finish their request with
    /// `Connection: close`, idle ones close (after answering a request that is already
    /// there).
    pub(crate) fn drain(&self) {
        self.control.drain();
        self.pass_on(|c| c.drain());
    }

    /// Close every connection now.
    pub(crate) fn force(&self) {
        self.control.force();
        self.pass_on(|c| c.force());
    }

    /// Tell every worker, and queue every idle connection to be looked at.
    fn pass_on(&self, op: impl Fn(&Control)) {
        let workers = self.workers.borrow().clone();
        for c in &workers {
            op(c);
        }
        let mut keys = Vec::new();
        {
            let slots = self.slots.borrow();
            let mut k = self.head.get();
            while k != NIL {
                keys.push(k);
                k = slots[k as usize].next;
            }
        }
        if keys.is_empty() {
            return;
        }
        let w = self.ready.borrow_mut().queue(keys);
        if let Some(w) = w {
            w.wake();
        }
    }

    /// The deadline of a connection going idle at `from`, as an entry keeps it
    /// (nanoseconds after the epoch). Made once per loop turn: the turn's parks share
    /// `from`, and the sum and the conversion cost about 60 instructions.
    fn deadline_after(&self, from: Instant) -> u64 {
        let (seen, deadline) = self.last_deadline.get();
        if seen == from {
            return deadline;
        }
        let at = instant_after(from, self.params.config.idle_connection_timeout);
        let deadline = nanos_after(self.epoch, at);
        self.last_deadline.set((from, deadline));
        deadline
    }

    /// Append `key` to the list of idle connections, timing out the idle timeout after
    /// `from`.
    fn link(&self, key: u32, from: Instant) {
        let deadline = self.deadline_after(from);
        {
            let mut slots = self.slots.borrow_mut();
            let tail = self.tail.get();
            let s = &mut slots[key as usize];
            s.prev = tail;
            s.next = NIL;
            s.deadline = deadline;
            if tail == NIL {
                self.head.set(key);
            } else {
                slots[tail as usize].next = key;
            }
            self.tail.set(key);
        }
        if !self.armed.get() {
            // The keeper sets its timer for the front of the list.
            self.armed.set(true);
            self.wake_keeper();
        }
    }

    /// Take parked entry `key` out of the list of idle connections, and its
    /// connection out of the entry, which is busy from now on.
    fn take_parked(&self, key: u32) -> Idle<T> {
        let slots = &mut *self.slots.borrow_mut();
        let (prev, next) = {
            let s = &mut slots[key as usize];
            (
                mem::replace(&mut s.prev, NIL),
                mem::replace(&mut s.next, NIL),
            )
        };
        if prev == NIL {
            self.head.set(next);
        } else {
            slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail.set(prev);
        } else {
            slots[next as usize].prev = prev;
        }
        match mem::replace(&mut slots[key as usize].state, State::Busy) {
            State::Parked(idle) => idle,
            _ => unreachable!("the list holds parked entries only"),
        }
    }

    fn wake_keeper(&self) {
        let w = self.ready.borrow_mut().keeper.take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Free entry `key` (its connection is gone).
    fn remove(&self, key: u32) {
        {
            let mut slots = self.slots.borrow_mut();
            let s = &mut slots[key as usize];
            s.state = State::Free(u64::from(self.free.get()));
            self.free.set(key);
        }
        self.len.set(self.len.get() - 1);
        (self.on_removed)(self.len.get());
    }

    /// Close an idle connection taken out of the table (and out of the list).
    fn close(&self, key: u32, idle: Idle<T>) {
        let mut idle = idle;
        idle.transport.close();
        notify("on_close", &idle.info, || {
            self.delegate.on_close(&idle.info)
        });
        drop(idle);
        self.remove(key);
    }

    /// The connection of a parked entry with bytes to read, read into `inbuf`; `None`
    /// for an entry with nothing to do (a stale or spurious wake), or whose connection
    /// was closed here (end of file, an error, a drain or a force).
    fn unpark(&self, key: u32, inbuf: &mut BytesMut) -> Option<Idle<T>> {
        let outcome = {
            let mut slots = self.slots.borrow_mut();
            let s = slots.get_mut(key as usize)?;
            let State::Parked(idle) = &mut s.state else {
                return None;
            };
            if self.control.forced() {
                None
            } else {
                // Polled with the entry's waker: if nothing is there yet, the entry goes
                // on waiting as it was.
                let mut cx = Context::from_waker(&s.waker);
                match pin!(idle.transport.read(inbuf)).poll(&mut cx) {
                    Poll::Pending if !self.control.draining() => return None,
                    Poll::Pending => None,
                    Poll::Ready(r) => Some(r),
                }
            }
        };
        let idle = self.take_parked(key);
        match outcome {
            Some(Ok(n)) if n > 0 => Some(idle),
            Some(Err(e)) => {
                log_io_error("error reading from HTTP connection", &e);
                self.close(key, idle);
                None
            }
            Some(Ok(_)) | None => {
                self.close(key, idle);
                None
            }
        }
    }

    /// The whole connection of `idle`, to serve with `control`.
    fn assemble(&self, idle: Idle<T>, control: &Rc<Control>) -> Http1Connection<T, D> {
        Http1Connection {
            transport: idle.transport,
            delegate: self.delegate.clone(),
            params: self.params.clone(),
            remote_ip: remote_ip(&idle.info),
            info: idle.info,
            control: control.clone(),
            timer: LazyTimer::default(),
            high_water: self.high_water.clone(),
            own_high: idle.own_high,
        }
    }

    /// Put the worker's connection (`conn`), whose busy period ended idle, back in
    /// entry `key`, waiting for its next bytes with the entry's waker; or leave it with
    /// the worker, as it is, if its next bytes are already there.
    fn park(
        &self,
        key: u32,
        conn: &mut Option<Http1Connection<T, D>>,
        inbuf: &mut BytesMut,
    ) -> Parked {
        // The input buffer (empty) is the worker's: it stays with the worker for the
        // next connection it serves, not with the parked one.
        spare::trim(inbuf);
        let read = match conn.as_mut() {
            Some(c) if !self.control.forced() => {
                let slots = self.slots.borrow();
                let mut cx = Context::from_waker(&slots[key as usize].waker);
                let read = pin!(c.transport.read(inbuf)).poll(&mut cx);
                Some(read)
            }
            _ => None,
        };
        let waiting = match read {
            Some(Poll::Ready(Ok(n))) if n > 0 => return Parked::Data,
            Some(Poll::Ready(Err(e))) => {
                log_io_error("error reading from HTTP connection", &e);
                false
            }
            Some(Poll::Pending) => !self.control.draining(),
            // Forced, or at its end of file.
            _ => false,
        };
        let Some(c) = conn.take() else {
            // Not reached (a worker parks the connection it served): the entry is freed.
            self.remove(key);
            return Parked::Closed;
        };
        let idle = Idle::of(c);
        if !waiting {
            self.close(key, idle);
            return Parked::Closed;
        }
        let Idle {
            transport,
            info,
            own_high,
        } = idle;
        self.put_parked(key, transport, info, own_high);
        // The turn's clock reading: a deadline an hour away needs no finer.
        self.link(key, squall_ioloop::turn_time());
        Parked::Waiting
    }

    /// Entry `key`'s connection is idle again, with these parts. Out of line and given
    /// the parts one by one, so that they arrive in registers: a whole `Idle` moved
    /// into the entry went through stack slots written as words just before and read
    /// back as wider ones, a stall on every park (`perf annotate`). The entry's `Busy`
    /// state holds nothing, so it is overwritten without a drop.
    #[inline(never)]
    fn put_parked(&self, key: u32, transport: T, info: Box<ConnectionInfo>, own_high: usize) {
        let mut slots = self.slots.borrow_mut();
        let state = &mut slots[key as usize].state;
        if matches!(state, State::Busy) {
            *state = State::Parked(Idle {
                transport,
                info,
                own_high,
            });
        } else {
            drop(slots);
            self.replace_parked(key, transport, info, own_high);
        }
    }

    /// [`put_parked`](Self::put_parked) over an entry that is not `Busy`. Not reached
    /// (a worker parks only the connection it took from here); apart, so that the
    /// common path keeps its parts in registers.
    #[cold]
    #[inline(never)]
    fn replace_parked(&self, key: u32, transport: T, info: Box<ConnectionInfo>, own_high: usize) {
        let idle = Idle {
            transport,
            info,
            own_high,
        };
        self.slots.borrow_mut()[key as usize].state = State::Parked(idle);
    }

    /// A worker's wait for work: the next connection with bytes to read (and the bytes,
    /// in `inbuf`), or `None` when enough workers wait already and this one should stop.
    fn poll_next(
        &self,
        cx: &mut Context<'_>,
        control: &Rc<Control>,
        inbuf: &mut BytesMut,
        conn: &mut Option<Http1Connection<T, D>>,
    ) -> Poll<Option<u32>> {
        loop {
            let key = {
                let mut r = self.ready.borrow_mut();
                // This worker looks at the keys now (whichever worker was woken).
                r.worker_woken = false;
                match r.keys.pop_front() {
                    Some(k) => {
                        if self.len.get() >= squall_poller::sys::PREFETCH_FROM {
                            self.prefetch_ahead(r.keys.front().copied(), r.keys.get(1).copied());
                        }
                        // Not waiting any more (if it was, woken for something else): a
                        // wake for the next key must go to a worker that is free.
                        if let Some(i) = r.waiting.iter().position(|w| w.will_wake(cx.waker())) {
                            r.waiting.remove(i);
                        }
                        k
                    }
                    None => {
                        // A worker already waiting can be polled again without a key
                        // (a timer of its last busy period, a spurious wake): it counts
                        // once, and one that stops takes its waker with it. A waker
                        // left behind would be woken for the next key, as if it were a
                        // worker on its way, and the key would wait for an unrelated
                        // event (the task slot's next owner is woken instead).
                        let mine = r.waiting.iter().position(|w| w.will_wake(cx.waker()));
                        let others = r.waiting.len() - usize::from(mine.is_some());
                        if others >= MAX_SPARE_WORKERS {
                            if let Some(i) = mine {
                                r.waiting.swap_remove(i);
                            }
                            return Poll::Ready(None);
                        }
                        if mine.is_none() {
                            r.waiting.push(cx.waker().clone());
                        }
                        return Poll::Pending;
                    }
                }
            };
            if let Some(idle) = self.unpark(key, inbuf) {
                // Written where the worker keeps it: returned by value, the freshly
                // written connection was copied at once, a store-forwarding stall on
                // every busy period.
                *conn = Some(self.assemble(idle, control));
                return Poll::Ready(Some(key));
            }
        }
    }

    /// With many connections (`PREFETCH_FROM` or more), the lines of a connection's
    /// state were evicted since its last request (by the others' requests and the
    /// kernel's work for them); loaded as each is needed, each is a wait of its own, a
    /// third of the request path's user time at a thousand connections (`perf
    /// annotate`). So the worker, as it takes a key, asks the CPU to start loading what
    /// the connections after it will touch: the entry of the one after next, and the
    /// state behind the next one's entry (its stream, its information, its neighbours
    /// in the idle list), asked for one key earlier so that the entry is there to read.
    #[inline]
    fn prefetch_ahead(&self, next: Option<u32>, after: Option<u32>) {
        use squall_poller::sys::prefetch;
        let slots = self.slots.borrow();
        if let Some(s) = next.and_then(|k| slots.get(k as usize)) {
            if let State::Parked(idle) = &s.state {
                idle.transport.prefetch();
                prefetch(&*idle.info);
                for k in [s.prev, s.next] {
                    if let Some(n) = slots.get(k as usize) {
                        prefetch(n);
                    }
                }
            }
        }
        if let Some(s) = after.and_then(|k| slots.get(k as usize)) {
            prefetch(s);
        }
    }

    /// A busy period has to wait: if connections are ready and no worker waits to
    /// serve them, the keeper makes one.
    fn blocked(&self) {
        let w = {
            let mut r = self.ready.borrow_mut();
            if r.keys.is_empty() || !r.waiting.is_empty() || r.worker_woken {
                return;
            }
            r.keeper.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Start a worker task.
    fn spawn_worker(self: &Rc<Self>) {
        let control = Rc::new(Control::default());
        if self.control.forced() {
            control.force();
        } else if self.control.draining() {
            control.drain();
        }
        self.workers.borrow_mut().push(control.clone());
        drop(self.io_loop.spawn(worker(self.clone(), control)));
    }

    /// The keeper's turn: make a worker if connections are ready and none waits, close
    /// the connections idle past their deadline, and set the timer for the next one.
    fn keep(self: &Rc<Self>, cx: &mut Context<'_>, timer: &mut LazyTimer) {
        let spawn = {
            let mut r = self.ready.borrow_mut();
            match &r.keeper {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => r.keeper = Some(cx.waker().clone()),
            }
            !r.keys.is_empty() && r.waiting.is_empty() && !r.worker_woken
        };
        if spawn {
            self.spawn_worker();
        }
        loop {
            let head = self.head.get();
            if head == NIL {
                // No idle connection. A timer already set is left to fire (once, for a
                // connection that is busy now): while it waits the keeper counts as
                // armed, so a connection parked meanwhile wakes nobody. Deadlines only
                // grow, so that timer is never later than the next one the list needs;
                // when it fires the keeper looks at the list again.
                let waiting = timer.poll_set(cx).is_pending();
                self.armed.set(waiting);
                return;
            }
            let deadline = self.slots.borrow()[head as usize].deadline;
            let deadline = instant_after(self.epoch, Duration::from_nanos(deadline));
            if timer.poll(cx, deadline).is_pending() {
                self.armed.set(true);
                return;
            }
            let idle = self.take_parked(head);
            log::debug!("closing connection from {}: idle timeout", Peer(&idle.info));
            self.close(head, idle);
        }
    }

    /// The keeper is gone (the loop closed): the idle connections go with it.
    fn keeper_gone(&self) {
        self.keeper.set(false);
        self.armed.set(false);
        loop {
            let head = self.head.get();
            if head == NIL {
                return;
            }
            drop(self.take_parked(head));
            self.remove(head);
        }
    }
}

/// A worker: serves the busy periods of whichever connections have bytes to read, one
/// at a time, until enough workers wait.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice"
)]
fn worker<T: Transport + 'static, D: HttpServerConnectionDelegate>(
    table: Rc<ConnTable<T, D>>,
    control: Rc<Control>,
) -> impl Future<Output = ()> {
    async move {
        let _retired = Retire {
            table: &table,
            control: &control,
        };
        // The worker's buffers, kept (empty) from one busy period to the next.
        let mut inbuf = BytesMut::new();
        let shared = Http1Connection::<T, D>::serving_state(&table.params);
        // The connection being served: filled by `poll_next`, emptied by `park` (or
        // at its close), read in place in between.
        let mut conn: Option<Http1Connection<T, D>> = None;
        while let Some(key) =
            poll_fn(|cx| table.poll_next(cx, &control, &mut inbuf, &mut conn)).await
        {
            let mut serving = Serving {
                table: &table,
                key: Some(key),
            };
            while let Some(c) = conn.as_mut() {
                c.note_memory(inbuf.capacity());
                let idle = {
                    let mut busy = pin!(c.busy(&mut inbuf, &shared));
                    let mut first = true;
                    poll_fn(|cx| {
                        let p = busy.as_mut().poll(cx);
                        if p.is_pending() && mem::take(&mut first) {
                            table.blocked();
                        }
                        p
                    })
                    .await
                };
                if !idle {
                    notify("on_close", &c.info, || c.delegate.on_close(&c.info));
                    conn = None;
                    serving.key = None;
                    table.remove(key);
                    break;
                }
                match table.park(key, &mut conn, &mut inbuf) {
                    Parked::Data => {}
                    Parked::Waiting | Parked::Closed => {
                        serving.key = None;
                        break;
                    }
                }
            }
            inbuf.clear();
        }
        spare::give(&mut inbuf);
        let mut out = std::mem::take(&mut shared.borrow_mut().out);
        out.clear();
        spare::give(&mut out);
    }
}

/// Frees the entry of a connection whose worker is dropped in the middle of its busy
/// period (the loop closed, a panic): the connection is dropped with the worker.
struct Serving<'a, T: Transport + 'static, D: HttpServerConnectionDelegate> {
    table: &'a ConnTable<T, D>,
    key: Option<u32>,
}

impl<T: Transport + 'static, D: HttpServerConnectionDelegate> Drop for Serving<'_, T, D> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.table.remove(key);
        }
    }
}

/// Takes a worker's control off the table's list when the worker ends.
struct Retire<'a, T: Transport + 'static, D: HttpServerConnectionDelegate> {
    table: &'a ConnTable<T, D>,
    control: &'a Rc<Control>,
}

impl<T: Transport + 'static, D: HttpServerConnectionDelegate> Drop for Retire<'_, T, D> {
    fn drop(&mut self) {
        self.table
            .workers
            .borrow_mut()
            .retain(|c| !Rc::ptr_eq(c, self.control));
    }
}

/// The keeper task (see the module's documentation); when the loop drops it, the idle
/// connections are dropped too.
fn keeper<T: Transport + 'static, D: HttpServerConnectionDelegate>(
    table: Rc<ConnTable<T, D>>,
) -> impl Future<Output = ()> {
    struct Keeper<T: Transport + 'static, D: HttpServerConnectionDelegate> {
        table: Rc<ConnTable<T, D>>,
        timer: LazyTimer,
    }
    impl<T: Transport + 'static, D: HttpServerConnectionDelegate> Drop for Keeper<T, D> {
        fn drop(&mut self) {
            self.table.keeper_gone();
        }
    }
    let mut k = Keeper {
        table,
        timer: LazyTimer::default(),
    };
    poll_fn(move |cx| {
        let Keeper { table, timer } = &mut k;
        table.keep(cx, timer);
        Poll::<()>::Pending
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Waker;
    use std::time::Duration;

    use super::*;
    use crate::delegate::HttpMessageDelegate;
    use crate::{handler_fn, HttpServerConfig, MemoryPeer, MemoryTransport, Response};

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    const HANG: &[u8] = b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n";

    async fn until(mut cond: impl FnMut() -> bool) {
        while !cond() {
            squall_ioloop::sleep(Duration::ZERO).await;
        }
    }

    /// A delegate that records the connections it was told are closed.
    struct Counted<H> {
        inner: H,
        closed: Rc<RefCell<Vec<u64>>>,
    }

    impl<H: HttpServerConnectionDelegate> HttpServerConnectionDelegate for Counted<H>
    where
        for<'a> H::Message<'a>: HttpMessageDelegate,
    {
        type Message<'a>
            = H::Message<'a>
        where
            Self: 'a;

        fn start_request<'a>(&'a self, connection: &ConnectionInfo) -> Self::Message<'a> {
            self.inner.start_request(connection)
        }

        fn on_close(&self, connection: &ConnectionInfo) {
            self.closed.borrow_mut().push(connection.id);
        }
    }

    struct Setup<D: HttpServerConnectionDelegate> {
        table: Rc<ConnTable<MemoryTransport, D>>,
        closed: Rc<RefCell<Vec<u64>>>,
        /// `/hang` answers once this is set.
        release: Rc<Cell<bool>>,
        removed: Rc<Cell<usize>>,
    }

    impl<D: HttpServerConnectionDelegate> Setup<D> {
        fn connect(&self, id: u64) -> MemoryPeer {
            let (transport, peer) = MemoryTransport::pair();
            self.table.admit(transport, ConnectionInfo::new(None, id));
            peer
        }

        fn closed(&self) -> Vec<u64> {
            let mut v = self.closed.borrow().clone();
            v.sort_unstable();
            v
        }
    }

    /// A table on the current loop whose handler answers `hi`, or waits for `release`
    /// first on `/hang`.
    fn setup(config: HttpServerConfig) -> Setup<impl HttpServerConnectionDelegate> {
        let release = Rc::new(Cell::new(false));
        let r = release.clone();
        let handler = handler_fn(move |req: squall_httputil::HttpServerRequest| {
            let r = r.clone();
            async move {
                if req.path() == "/hang" {
                    until(|| r.get()).await;
                }
                Response::text("hi")
            }
        });
        let closed = Rc::new(RefCell::new(Vec::new()));
        let removed = Rc::new(Cell::new(0));
        let counter = removed.clone();
        let table = ConnTable::new(
            IoLoop::current().unwrap(),
            Rc::new(Counted {
                inner: handler,
                closed: closed.clone(),
            }),
            Params::new(config),
            None,
            Box::new(move |_| counter.set(counter.get() + 1)),
        );
        Setup {
            table,
            closed,
            release,
            removed,
        }
    }

    fn output(peer: &MemoryPeer) -> String {
        String::from_utf8(peer.take_output().to_vec()).unwrap()
    }

    fn run(f: impl Future<Output = ()> + 'static) {
        let io_loop = IoLoop::new().unwrap();
        io_loop.run_sync(f, Some(Duration::from_secs(30))).unwrap();
    }

    /// Idle connections have no task: a hundred connections, each served twice, leave
    /// the keeper and one worker; each connection's end is told once.
    #[test]
    fn idle_connections_hold_no_task() {
        run(async {
            let l = IoLoop::current().unwrap();
            let before = l.task_count();
            let s = setup(HttpServerConfig::default());
            let peers: Vec<MemoryPeer> = (0..100).map(|i| s.connect(i)).collect();
            for round in 1..=2 {
                for p in &peers {
                    p.send(GET);
                }
                until(|| peers.iter().all(|p| p.write_calls() == round)).await;
                assert_eq!(l.task_count() - before, 2, "the keeper and one worker");
            }
            for p in &peers {
                assert_eq!(output(p).matches("\r\n\r\nhi").count(), 2);
            }
            assert_eq!(s.table.len(), 100);
            for p in &peers {
                p.close();
            }
            until(|| s.table.len() == 0).await;
            assert_eq!(s.closed(), (0..100).collect::<Vec<u64>>());
            assert_eq!(s.removed.get(), 100);
            assert!(peers.iter().all(MemoryPeer::is_closed));
        });
    }

    /// A worker that stops because enough others wait takes its waker out of the
    /// waiting list: left there, the next key would be handed to it (a stopped task)
    /// and wait, with `worker_woken` set, for an unrelated event (the audit's hang
    /// after a burst of uploads).
    #[test]
    fn a_worker_that_stops_leaves_no_waker_behind() {
        run(async {
            let s = setup(HttpServerConfig::default());
            let woken = Arc::new(AtomicUsize::new(0));
            struct Count(Arc<AtomicUsize>);
            impl std::task::Wake for Count {
                fn wake(self: Arc<Self>) {
                    self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            // MAX_SPARE_WORKERS others wait; a worker already waiting (its own waker
            // among them) is polled again with no key.
            let others: Vec<Waker> = (0..MAX_SPARE_WORKERS)
                .map(|_| Waker::from(Arc::new(Count(woken.clone()))))
                .collect();
            let mine = Waker::from(Arc::new(Count(woken.clone())));
            {
                let mut r = s.table.ready.borrow_mut();
                r.waiting.extend(others.iter().cloned());
                r.waiting.push(mine.clone());
            }
            let control = Rc::new(Control::default());
            let mut inbuf = BytesMut::new();
            let mut conn = None;
            let mut cx = Context::from_waker(&mine);
            assert!(matches!(
                s.table.poll_next(&mut cx, &control, &mut inbuf, &mut conn),
                Poll::Ready(None)
            ));
            let r = s.table.ready.borrow();
            assert_eq!(r.waiting.len(), MAX_SPARE_WORKERS);
            assert!(!r.waiting.iter().any(|w| w.will_wake(&mine)));
            drop(r);
            // Polled again while waiting (not one too many): it stays, once.
            let mut r = s.table.ready.borrow_mut();
            r.waiting.pop();
            r.waiting.push(mine.clone());
            drop(r);
            assert!(s
                .table
                .poll_next(&mut cx, &control, &mut inbuf, &mut conn)
                .is_pending());
            let r = s.table.ready.borrow();
            assert_eq!(r.waiting.iter().filter(|w| w.will_wake(&mine)).count(), 1);
            assert_eq!(r.waiting.len(), MAX_SPARE_WORKERS);
        });
    }

    /// A connection's waker woken on another thread (which the loop's streams never
    /// do, but a waker may be sent anywhere) still gets the connection served: the
    /// wake is passed to the loop's thread. A waker whose table is gone does nothing.
    #[test]
    fn a_wake_from_another_thread_is_served() {
        run(async {
            let s = setup(HttpServerConfig::default());
            let peer = s.connect(1);
            // Parked once its first look found nothing to read.
            let mut waker = None;
            until(|| {
                waker = peer.take_read_waker();
                waker.is_some()
            })
            .await;
            let waker = waker.unwrap();
            // Queued with nobody woken: only the other thread's wake can serve it.
            peer.send(GET);
            std::thread::spawn(move || waker.wake()).join().unwrap();
            until(|| peer.write_calls() == 1).await;
            assert!(output(&peer).ends_with("hi"));
            assert!(!wake_key(u64::MAX, 0), "no table has that id");
        });
    }

    /// A busy period that waits does not hold up the others: another worker serves
    /// them meanwhile.
    #[test]
    fn a_waiting_request_holds_up_no_other_connection() {
        run(async {
            let s = setup(HttpServerConfig::default());
            let (hung, other) = (s.connect(1), s.connect(2));
            hung.send(HANG);
            other.send(GET);
            until(|| other.write_calls() == 1).await;
            other.send(GET);
            until(|| other.write_calls() == 2).await;
            assert_eq!(hung.write_calls(), 0);
            s.release.set(true);
            until(|| hung.write_calls() == 1).await;
            assert!(output(&hung).ends_with("hi"));
            assert_eq!(s.table.len(), 2);
        });
    }

    /// An idle connection closes after `idle_connection_timeout`, whether it never
    /// said anything or was answered; a busy one does not.
    #[test]
    fn idle_timeout_closes() {
        run(async {
            let timeout = Duration::from_millis(50);
            let s = setup(HttpServerConfig {
                idle_connection_timeout: timeout,
                ..HttpServerConfig::default()
            });
            let started = Instant::now();
            let (silent, answered, hung) = (s.connect(1), s.connect(2), s.connect(3));
            hung.send(HANG);
            // Idle again after its answer, which is after this.
            let asked = Instant::now();
            answered.send(GET);
            until(|| answered.write_calls() == 1).await;
            until(|| s.closed().len() == 2).await;
            assert!(started.elapsed() >= timeout);
            assert!(asked.elapsed() >= timeout);
            assert_eq!(s.closed(), [1, 2]);
            assert!(silent.is_closed() && answered.is_closed());
            assert!(output(&silent).is_empty());
            assert!(!hung.is_closed());
            s.release.set(true);
            until(|| hung.write_calls() == 1).await;
            hung.close();
            until(|| s.table.len() == 0).await;
            assert_eq!(s.closed(), [1, 2, 3]);
        });
    }

    /// A drain closes idle connections at once, answers a request that reached an
    /// idle connection in the same turn (with `Connection: close`), and lets a request
    /// in flight finish, also with `Connection: close`.
    #[test]
    fn drain() {
        run(async {
            let s = setup(HttpServerConfig::default());
            let (idle, racing, busy) = (s.connect(1), s.connect(2), s.connect(3));
            idle.send(GET);
            racing.send(GET);
            busy.send(HANG);
            until(|| idle.write_calls() == 1 && racing.write_calls() == 1).await;
            let _ = (output(&idle), output(&racing));
            racing.send(GET);
            s.table.drain();
            until(|| s.closed().len() == 2).await;
            assert_eq!(s.closed(), [1, 2]);
            assert!(output(&idle).is_empty());
            let out = output(&racing);
            assert!(
                out.contains("Connection: close\r\n") && out.ends_with("hi"),
                "{out}"
            );
            s.release.set(true);
            until(|| s.table.len() == 0).await;
            let out = output(&busy);
            assert!(
                out.contains("Connection: close\r\n") && out.ends_with("hi"),
                "{out}"
            );
            assert_eq!(s.closed(), [1, 2, 3]);
            // A connection made after the drain is closed as soon as it is idle.
            let late = s.connect(4);
            until(|| s.table.len() == 0).await;
            assert!(late.is_closed());
        });
    }

    /// A force closes every connection at once, idle or busy.
    #[test]
    fn force() {
        run(async {
            let s = setup(HttpServerConfig::default());
            let (idle, busy) = (s.connect(1), s.connect(2));
            busy.send(HANG);
            // The second entry's connection is with a worker, in its request.
            until(|| matches!(s.table.slots.borrow()[1].state, State::Busy)).await;
            s.table.force();
            until(|| s.table.len() == 0).await;
            assert_eq!(s.closed(), [1, 2]);
            assert!(idle.is_closed() && busy.is_closed());
            assert!(output(&busy).is_empty());
        });
    }

    /// When the loop closes, its tasks go and the idle connections with them (told
    /// nothing, as a task dropped with its loop is not).
    #[test]
    fn idle_connections_go_with_the_loop() {
        let io_loop = IoLoop::new().unwrap();
        let s = io_loop
            .run_sync(
                async {
                    let s = setup(HttpServerConfig::default());
                    let peer = s.connect(1);
                    peer.send(GET);
                    until(|| peer.write_calls() == 1).await;
                    s
                },
                Some(Duration::from_secs(30)),
            )
            .unwrap();
        assert_eq!(s.table.len(), 1);
        io_loop.close(false).unwrap();
        assert_eq!(s.table.len(), 0);
        assert!(s.closed().is_empty());
    }
}
