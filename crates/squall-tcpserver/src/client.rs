//! Tornado's `tornado.tcpclient`: [`TcpClient::connect`] with happy eyeballs.

use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use squall_ioloop::{sleep, with_timeout, Sleep};
use squall_iostream::{IoStream, StreamError};

/// Tornado's `_INITIAL_CONNECT_TIMEOUT`: how long the first address family gets before
/// the second one is tried beside it.
pub const HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(300);

/// Tornado's `TCPClient`: resolves a host and connects to it, trying every address.
#[doc(alias = "TCPClient")]
#[derive(Debug, Clone)]
pub struct TcpClient {
    delay: Duration,
}

impl Default for TcpClient {
    fn default() -> Self {
        TcpClient {
            delay: HAPPY_EYEBALLS_DELAY,
        }
    }
}

type Attempt = Pin<Box<dyn Future<Output = Result<IoStream, StreamError>>>>;

struct Lane {
    addrs: std::vec::IntoIter<SocketAddr>,
    current: Option<Attempt>,
    started: bool,
}

impl Lane {
    fn new(addrs: Vec<SocketAddr>) -> Lane {
        Lane {
            addrs: addrs.into_iter(),
            current: None,
            started: false,
        }
    }

    /// Starts the next address; `false` if there is none.
    fn start_next(&mut self) -> bool {
        self.started = true;
        match self.addrs.next() {
            Some(a) => {
                self.current = Some(Box::pin(IoStream::connect(a)));
                true
            }
            None => false,
        }
    }

    fn exhausted(&self) -> bool {
        self.started && self.current.is_none() && self.addrs.len() == 0
    }
}

impl TcpClient {
    /// A client with Tornado's 0.3 s happy-eyeballs delay.
    pub fn new() -> TcpClient {
        TcpClient::default()
    }

    /// Sets how long the first address family runs alone before the second starts.
    pub fn set_happy_eyeballs_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    /// Connects to `host:port` and resolves to the stream. Tornado's
    /// `TCPClient.connect`.
    ///
    /// `host` is resolved (a literal IP without a lookup; a name with `getaddrinfo` on a
    /// helper thread, so the loop never blocks). The addresses are split by family, the
    /// family of the first one first (Tornado's `_Connector.split`); its addresses are
    /// tried one after another, and the other family starts after 0.3 s or as soon as
    /// the first fails, whichever comes first. The first connection up wins; the others
    /// are closed. `timeout` spans the lookup and every attempt.
    ///
    /// # Errors
    ///
    /// The resolver's error; `TimedOut` after `timeout`; otherwise the last attempt's OS
    /// error (a refused connection is `ConnectionRefused` with its errno).
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        timeout: Option<Duration>,
    ) -> io::Result<IoStream> {
        let work = self.connect_inner(host.to_owned(), port);
        match timeout {
            None => work.await,
            Some(t) => match with_timeout(t, work).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {host}:{port} timed out after {t:?}"),
                )),
            },
        }
    }

    async fn connect_inner(&self, host: String, port: u16) -> io::Result<IoStream> {
        let addrs = resolve(host.clone(), port).await?;
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address"),
            ));
        }
        let (primary, secondary) = split(addrs);
        let mut lanes = [Lane::new(primary), Lane::new(secondary)];
        let mut timer: Option<Pin<Box<Sleep>>> = if lanes[1].addrs.len() > 0 {
            Some(Box::pin(sleep(self.delay)))
        } else {
            None
        };
        let mut last_err: Option<StreamError> = None;
        lanes[0].start_next();
        poll_fn(move |cx: &mut Context<'_>| loop {
            let mut progressed = false;
            if let Some(t) = timer.as_mut() {
                if t.as_mut().poll(cx).is_ready() {
                    timer = None;
                    if !lanes[1].started {
                        lanes[1].start_next();
                        progressed = true;
                    }
                }
            }
            for lane in lanes.iter_mut() {
                let Some(att) = lane.current.as_mut() else {
                    continue;
                };
                match att.as_mut().poll(cx) {
                    Poll::Pending => {}
                    Poll::Ready(Ok(stream)) => return Poll::Ready(Ok(stream)),
                    Poll::Ready(Err(e)) => {
                        log::debug!("connect attempt failed: {e}");
                        last_err = Some(e);
                        lane.current = None;
                        lane.start_next();
                        progressed = true;
                    }
                }
            }
            // The first family failed for good: start the second at once.
            if lanes[0].exhausted() && !lanes[1].started {
                timer = None;
                lanes[1].start_next();
                progressed = true;
            }
            if lanes
                .iter()
                .all(|l| l.exhausted() || (!l.started && l.addrs.len() == 0))
            {
                let e = last_err.take().map_or_else(
                    || io::Error::new(io::ErrorKind::NotFound, "no address to connect to"),
                    stream_to_io,
                );
                return Poll::Ready(Err(e));
            }
            if !progressed {
                return Poll::Pending;
            }
        })
        .await
    }
}

/// Splits addresses by family: the family of the first address, then the rest, each
/// in resolver order (Tornado's `_Connector.split`).
fn split(addrs: Vec<SocketAddr>) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let first_v4 = addrs[0].is_ipv4();
    addrs.into_iter().partition(|a| a.is_ipv4() == first_v4)
}

/// The OS error behind a stream error, rebuilt from its errno when there is one so that
/// `raw_os_error()` works.
fn stream_to_io(e: StreamError) -> io::Error {
    match e.io_error().and_then(io::Error::raw_os_error) {
        Some(code) => io::Error::from_raw_os_error(code),
        None => e.into(),
    }
}

struct Slot {
    result: Option<io::Result<Vec<SocketAddr>>>,
    waker: Option<Waker>,
}

/// Resolves `host` without blocking the loop: a literal IP at once, a name on a helper
/// thread that wakes the task when done.
async fn resolve(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let slot = Arc::new(Mutex::new(Slot {
        result: None,
        waker: None,
    }));
    let s = slot.clone();
    std::thread::Builder::new()
        .name("squall-resolve".into())
        .spawn(move || {
            let r = (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect);
            let waker = {
                let mut g = s.lock().unwrap_or_else(PoisonError::into_inner);
                g.result = Some(r);
                g.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        })?;
    poll_fn(move |cx| {
        let mut g = slot.lock().unwrap_or_else(PoisonError::into_inner);
        match g.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                g.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_order_within_family() {
        let a: Vec<SocketAddr> = ["[::1]:1", "127.0.0.1:2", "[::2]:3", "10.0.0.1:4"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let (p, s) = split(a.clone());
        assert_eq!(p, vec![a[0], a[2]]);
        assert_eq!(s, vec![a[1], a[3]]);
        let (p, s) = split(vec![a[1], a[0]]);
        assert_eq!((p, s), (vec![a[1]], vec![a[0]]));
    }
}
