//! The limits on connections: `max_clients` request slots with a FIFO queue, and the
//! idle keep-alive connections kept per host.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::IpAddr;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use squall_ioloop::{IoLoop, Timeout};
use squall_iostream::IoStream;

use crate::request::Proxy;
use crate::url::Scheme;

/// One waiter in the queue.
#[derive(Default)]
struct Waiter {
    granted: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

/// `max_clients` slots; a request without one waits its turn, first come first served.
pub(crate) struct Slots {
    max: usize,
    free: Cell<usize>,
    queue: RefCell<VecDeque<Rc<Waiter>>>,
}

/// A slot held; released (handed to the next waiter) when dropped.
pub(crate) struct Permit {
    slots: Rc<Slots>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.slots.release();
    }
}

impl Slots {
    pub(crate) fn new(max: usize) -> Rc<Slots> {
        Rc::new(Slots {
            max: max.max(1),
            free: Cell::new(max.max(1)),
            queue: RefCell::new(VecDeque::new()),
        })
    }

    /// Slots taken.
    pub(crate) fn active(&self) -> usize {
        self.max - self.free.get()
    }

    /// Requests waiting for a slot.
    pub(crate) fn queued(&self) -> usize {
        self.queue.borrow().len()
    }

    fn release(&self) {
        // A waiter whose future is gone has left the queue already (`QueueGuard`), so
        // the first one in line takes the slot.
        let next = self.queue.borrow_mut().pop_front();
        match next {
            Some(w) => {
                w.granted.set(true);
                if let Some(waker) = w.waker.take() {
                    waker.wake();
                }
            }
            None => self.free.set(self.free.get() + 1),
        }
    }

    /// A slot at once, if one is free and nobody is queued.
    pub(crate) fn try_acquire(self: &Rc<Slots>) -> Option<Permit> {
        if self.free.get() > 0 && self.queue.borrow().is_empty() {
            self.free.set(self.free.get() - 1);
            return Some(Permit {
                slots: self.clone(),
            });
        }
        None
    }

    /// Wait for a slot. Dropping the future leaves the queue (and passes on a slot it
    /// was granted meanwhile).
    pub(crate) async fn acquire(self: &Rc<Slots>) -> Permit {
        if let Some(p) = self.try_acquire() {
            return p;
        }
        let waiter = Rc::new(Waiter::default());
        self.queue.borrow_mut().push_back(waiter.clone());
        let mut guard = QueueGuard {
            slots: self.clone(),
            waiter,
            done: false,
        };
        poll_fn(|cx: &mut Context<'_>| {
            if guard.waiter.granted.get() {
                guard.done = true;
                Poll::Ready(())
            } else {
                guard.waiter.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        Permit {
            slots: self.clone(),
        }
    }
}

/// Removes a waiter whose future was dropped; a slot it had been granted goes on.
struct QueueGuard {
    slots: Rc<Slots>,
    waiter: Rc<Waiter>,
    done: bool,
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.waiter.granted.get() {
            self.slots.release();
        } else {
            self.slots
                .queue
                .borrow_mut()
                .retain(|w| !Rc::ptr_eq(w, &self.waiter));
        }
    }
}

/// Which connections may serve a request: same scheme, host and port, through the same
/// proxy with the same credentials, made under the same address family rule and from
/// the same source address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The proxy, credentials included: a `CONNECT` tunnel (or a connection a proxy
    /// authenticated) is authorised for the credentials it was opened with, and never
    /// carries a request made with others, or with none (RFC 9110 §11.7).
    pub(crate) proxy: Option<Proxy>,
    /// Whether the connection had to go to an IPv4 address (`allow_ipv6(false)`).
    pub(crate) ipv4_only: bool,
    /// The local address the connection was made from (`network_interface`).
    pub(crate) source_ip: Option<IpAddr>,
    /// The trust an https connection was made under.
    #[cfg(feature = "tls")]
    pub(crate) trust: Option<crate::tls::Trust>,
    /// The client certificate an https connection presented, if the request named one.
    #[cfg(feature = "tls")]
    pub(crate) identity: Option<crate::tls::Identity>,
}

struct Idle {
    stream: IoStream,
    since: Instant,
}

/// Idle keep-alive connections, per [`PoolKey`], most recently used last. A list
/// scanned in order, not a hash map: a client talks to few hosts, and comparing a key
/// costs less than hashing it.
///
/// The connections kept belong to one loop, the one they were made on: a stream is
/// served by its own loop's poller, and a fetch running on another loop (a client used
/// by `run_sync` on one loop, then on another) could write on it but never hear the
/// answer. A checkout or checkin on another loop than the kept connections' closes them
/// all first: the pool follows the loop the client is used on, as Tornado keeps one
/// client per `IOLoop`.
///
/// A connection idle for `idle_timeout` is closed then, by a timer on the loop, not
/// only when the next request to its host looks at it: a client that talked to many
/// hosts once would otherwise hold a socket open for each (most of them closed by
/// their server long ago) for as long as the client lives.
pub(crate) struct Pool {
    idle: RefCell<Vec<(PoolKey, Vec<Idle>)>>,
    max_per_host: usize,
    idle_timeout: Duration,
    /// The timer that closes expired connections: its loop, its handle, when it fires.
    sweep: RefCell<Option<(IoLoop, Timeout, Instant)>>,
}

impl Pool {
    pub(crate) fn new(max_per_host: usize, idle_timeout: Duration) -> Rc<Pool> {
        Rc::new(Pool {
            idle: RefCell::new(Vec::new()),
            max_per_host,
            idle_timeout,
            sweep: RefCell::new(None),
        })
    }

    /// A live idle connection for `key`, if there is one. Connections that were closed
    /// by the server, that hold unexpected bytes, or that idled too long are dropped.
    /// Only a connection made on the current loop is handed out.
    pub(crate) fn checkout(&self, key: &PoolKey) -> Option<IoStream> {
        self.leave_other_loops(IoLoop::current().as_ref());
        let mut idle = self.idle.borrow_mut();
        let at = idle.iter().position(|(k, _)| k == key)?;
        let list = &mut idle[at].1;
        let now = Instant::now();
        let mut found = None;
        while let Some(c) = list.pop() {
            if now.duration_since(c.since) < self.idle_timeout && is_quiet(&c.stream) {
                // In use again: its reads notice a close from now on.
                c.stream.clear_close_callback();
                found = Some(c.stream);
                break;
            }
            log::debug!(
                "httpclient: dropping a stale idle connection to {}",
                key.host
            );
        }
        if list.is_empty() {
            idle.swap_remove(at);
        }
        found
    }

    /// Keep `stream` for a later request to `key`.
    pub(crate) fn checkin(self: &Rc<Pool>, key: PoolKey, stream: IoStream) {
        if self.max_per_host == 0 || stream.closed() || stream.buffered_len() > 0 {
            stream.close();
            return;
        }
        self.leave_other_loops(Some(stream.io_loop()));
        // Watched for the server's close while idle (a keep-alive timeout): nobody reads
        // an idle connection, and one whose last answer was read without waiting is not
        // watched otherwise, so its close would go unseen and the next request (a POST,
        // that may not be sent again) would be written into it. With a close callback
        // the stream peeks at the socket when it reports, and closes on its end.
        stream.set_close_callback(|| {});
        self.keep(key, stream);
        self.expire();
    }

    fn keep(&self, key: PoolKey, stream: IoStream) {
        let mut idle = self.idle.borrow_mut();
        let at = match idle.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                idle.push((key, Vec::new()));
                idle.len() - 1
            }
        };
        let list = &mut idle[at].1;
        if list.len() >= self.max_per_host {
            list.remove(0).stream.close();
        }
        list.push(Idle {
            stream,
            since: Instant::now(),
        });
    }

    /// Close the connections idle for `idle_timeout` or more, over all hosts, and arm
    /// the timer for the next one to expire.
    fn expire(self: &Rc<Pool>) {
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut oldest: Option<Instant> = None;
        {
            let mut idle = self.idle.borrow_mut();
            for (_, list) in idle.iter_mut() {
                // Oldest first: the expired ones are a prefix.
                let keep_from = list
                    .iter()
                    .position(|c| now.duration_since(c.since) < self.idle_timeout)
                    .unwrap_or(list.len());
                expired.extend(list.drain(..keep_from).map(|c| c.stream));
                if let Some(first) = list.first() {
                    oldest = Some(oldest.map_or(first.since, |o| o.min(first.since)));
                }
            }
            idle.retain(|(_, list)| !list.is_empty());
        }
        for stream in expired {
            log::debug!(
                "httpclient: closing a connection idle for {:?}",
                self.idle_timeout
            );
            stream.close();
        }
        match oldest {
            Some(since) => self.arm(since + self.idle_timeout, now),
            None => self.disarm(),
        }
    }

    /// Have the sweep run at `due` on the current loop, unless it is armed there for then
    /// or earlier already. (A timer whose time has passed without it running belongs to
    /// a loop that no longer runs, and is replaced, as is one on another loop.)
    fn arm(self: &Rc<Pool>, due: Instant, now: Instant) {
        let current = IoLoop::current();
        if let Some((io_loop, _, at)) = &*self.sweep.borrow() {
            if *at <= due && *at > now && current.as_ref() == Some(io_loop) {
                return;
            }
        }
        self.disarm();
        let Some(io_loop) = current else {
            return;
        };
        let pool = Rc::downgrade(self);
        let timer = io_loop.call_at(due, move || {
            if let Some(pool) = pool.upgrade() {
                pool.sweep.borrow_mut().take();
                pool.expire();
            }
        });
        *self.sweep.borrow_mut() = Some((io_loop, timer, due));
    }

    fn disarm(&self) {
        if let Some((io_loop, timer, _)) = self.sweep.borrow_mut().take() {
            io_loop.remove_timeout(timer);
        }
    }

    /// Close every idle connection if they belong to another loop than `here` (all kept
    /// connections share one loop, so the first tells). Without a loop, nothing kept can
    /// serve, and nothing is kept.
    fn leave_other_loops(&self, here: Option<&IoLoop>) {
        let elsewhere = self
            .idle
            .borrow()
            .first()
            .and_then(|(_, list)| list.first())
            .is_some_and(|c| here != Some(c.stream.io_loop()));
        if elsewhere {
            log::debug!("httpclient: closing the idle connections of another loop");
            self.clear();
        }
    }

    /// Idle connections kept, over all hosts: open ones only (one the server closed
    /// waits in its list for the next checkout or the sweep, but serves no request).
    pub(crate) fn idle_count(&self) -> usize {
        self.idle
            .borrow()
            .iter()
            .flat_map(|(_, l)| l)
            .filter(|c| !c.stream.closed())
            .count()
    }

    /// Close the idle connections whose key `doomed` picks.
    #[cfg(feature = "tls")]
    pub(crate) fn close_where(&self, doomed: impl Fn(&PoolKey) -> bool) {
        let mut closed = Vec::new();
        self.idle.borrow_mut().retain_mut(|(key, list)| {
            if doomed(key) {
                closed.append(list);
            }
            !list.is_empty()
        });
        for c in closed {
            c.stream.close();
        }
    }

    /// Close every idle connection.
    pub(crate) fn clear(&self) {
        self.disarm();
        let drained: Vec<_> = self.idle.borrow_mut().drain(..).collect();
        for (_, list) in drained {
            for c in list {
                c.stream.close();
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.clear();
    }
}

/// An idle connection is usable if nothing can be read from it: no end of file, no
/// error and no stray bytes. The check reads without waiting (a no-op waker).
fn is_quiet(stream: &IoStream) -> bool {
    if stream.closed() || stream.buffered_len() > 0 {
        return false;
    }
    let mut cx = Context::from_waker(Waker::noop());
    let mut probe = BytesMut::new();
    match stream.poll_read_buf(&mut cx, &mut probe) {
        Poll::Pending => true,
        Poll::Ready(_) => {
            stream.close();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn key() -> PoolKey {
        PoolKey {
            scheme: Scheme::Http,
            host: "127.0.0.1".into(),
            port: 80,
            proxy: None,
            ipv4_only: false,
            source_ip: None,
            #[cfg(feature = "tls")]
            trust: None,
            #[cfg(feature = "tls")]
            identity: None,
        }
    }

    /// Waits (at most 10 s, a loop turn at a time) until the pool holds no open idle
    /// connection: the close of a peer that was dropped is in its socket already, and
    /// the loop hears it within turns.
    async fn until_none_idle(pool: &Pool) {
        for _ in 0..10_000 {
            if pool.idle_count() == 0 {
                return;
            }
            squall_ioloop::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A kept connection the server closes while it idles (nginx's `keepalive_timeout`)
    /// is not handed out again, also when its last response was read without waiting
    /// (on loopback a small answer is there before the client reads): the pool watches
    /// every idle connection for its close. (Such a connection was never watched: the
    /// close went unseen, and the next request, a POST that may not be sent twice, was
    /// written into it and failed with a broken pipe.) Every backend.
    #[test]
    fn a_close_while_idle_is_noticed_after_a_read_that_did_not_wait() {
        squall_testing::for_each_backend(|| async {
            let (stream, mut peer) = squall_testing::tcp_with_std_peer().await;
            // The answer is in the socket before the read: nothing waits.
            peer.write_all(b"ok").unwrap();
            let mut buf = BytesMut::new();
            let got = poll_fn(|cx| stream.poll_read_buf(cx, &mut buf)).await;
            assert_eq!(got.unwrap(), 2);
            let pool = Pool::new(8, Duration::from_secs(30));
            pool.checkin(key(), stream);
            assert_eq!(pool.idle_count(), 1);
            drop(peer);
            until_none_idle(&pool).await;
            assert!(pool.checkout(&key()).is_none());
        });
    }

    /// A kept connection the server has closed is not counted among the idle ones
    /// (`HttpClient::idle_connections`: those held for reuse), though it leaves the
    /// list only at the next checkout for its host or when it expires. (It was counted
    /// until then.) Every backend.
    #[test]
    fn a_connection_closed_while_idle_is_not_counted() {
        squall_testing::for_each_backend(|| async {
            let (stream, peer) = squall_testing::tcp_with_std_peer().await;
            let pool = Pool::new(8, Duration::from_secs(30));
            pool.checkin(key(), stream);
            assert_eq!(pool.idle_count(), 1);
            drop(peer);
            until_none_idle(&pool).await;
            assert_eq!(pool.idle_count(), 0);
        });
    }
}
