//! Shutting down on SIGTERM or SIGINT: the one call a deployed server needs
//! ([`HttpServer::shutdown_on_signal`], [`HttpServer::run_until_signal`]).

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use squall_ioloop::signal::{SIGINT, SIGTERM};
use squall_ioloop::IoLoop;

use super::{ForceAll, HttpServer};
use crate::delegate::HttpServerConnectionDelegate;

/// What the signal handlers tell the waiting future.
#[derive(Default)]
struct Caught {
    first: Cell<Option<i32>>,
    count: Cell<u32>,
    waker: Cell<Option<Waker>>,
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "a signal",
    }
}

impl<D: HttpServerConnectionDelegate> HttpServer<D> {
    /// Waits for SIGTERM or SIGINT, then shuts down gracefully as
    /// [`shutdown`](Self::shutdown) does (stop accepting, finish the requests in
    /// flight with `Connection: close`, close idle connections, force-close what is
    /// left after `grace`), and resolves to the signal's number once every connection
    /// is gone. A second signal during the drain closes the remaining connections at
    /// once. The handlers are installed on the current loop by this call (the future
    /// must be awaited on that loop) and removed when the future resolves; before and
    /// after, the signals are not ours.
    ///
    /// For a server on the current loop ([`listen`](Self::listen)), await it as the
    /// loop's main future:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use squall_httpserver::{HttpServer, Response};
    /// use squall_ioloop::IoLoop;
    ///
    /// let mut server = HttpServer::new(|_req| async { Response::text("hi") });
    /// IoLoop::new()?.run_sync(async move {
    ///     server.listen(8888, "127.0.0.1")?;
    ///     server.shutdown_on_signal(Duration::from_secs(10))?.await;
    ///     Ok::<_, std::io::Error>(())
    /// }, None)??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A server on threads of its own ([`start`](Self::start)) uses
    /// [`run_until_signal`](Self::run_until_signal).
    ///
    /// # Errors
    /// An error if no loop is current, or installing a handler failed.
    pub fn shutdown_on_signal(
        &self,
        grace: Duration,
    ) -> io::Result<impl Future<Output = i32> + 'static> {
        let io_loop = IoLoop::current().ok_or_else(|| {
            io::Error::other("HttpServer::shutdown_on_signal needs a current IoLoop")
        })?;
        self.shutdown_on_signal_with(&io_loop, grace)
    }

    fn shutdown_on_signal_with(
        &self,
        io_loop: &IoLoop,
        grace: Duration,
    ) -> io::Result<impl Future<Output = i32> + 'static> {
        let shared = self.shared.clone();
        let stop_loops = self.threads.is_some();
        let caught = Rc::new(Caught::default());
        let mut handlers = Vec::with_capacity(2);
        for signal in [SIGTERM, SIGINT] {
            let c = caught.clone();
            let added = io_loop.add_signal_handler(signal, move || {
                if c.first.get().is_none() {
                    c.first.set(Some(signal));
                }
                c.count.set(c.count.get() + 1);
                if let Some(w) = c.waker.take() {
                    w.wake();
                }
            });
            match added {
                Ok(h) => handlers.push(h),
                Err(e) => {
                    for h in &handlers {
                        io_loop.remove_signal_handler(h);
                    }
                    return Err(e);
                }
            }
        }
        log::info!("SIGTERM or SIGINT shuts the HTTP server down, with {grace:?} of grace");
        let io_loop = io_loop.clone();
        Ok(async move {
            let signal = poll_fn(|cx| match caught.first.get() {
                Some(s) => Poll::Ready(s),
                None => {
                    caught.waker.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            })
            .await;
            // Asks every loop of the server to stop accepting and drain, now.
            let mut drain = pin!(shared.shutdown(stop_loops, grace));
            log::info!(
                "{}: shutting down; requests in flight have {grace:?} to finish",
                signal_name(signal)
            );
            let mut force = None;
            poll_fn(|cx| {
                if force.is_none() && caught.count.get() > 1 {
                    log::warn!("second signal: closing the remaining connections now");
                    force = Some(Box::pin(
                        ForceAll {
                            shared: shared.clone(),
                        }
                        .run(),
                    ));
                }
                if let Some(f) = &mut force {
                    let _ = f.as_mut().poll(cx);
                }
                if drain.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                caught.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            })
            .await;
            for h in &handlers {
                io_loop.remove_signal_handler(h);
            }
            signal
        })
    }

    /// For a server on its own threads ([`start`](Self::start)): blocks the calling
    /// thread until SIGTERM or SIGINT, shuts down gracefully with `grace` (see
    /// [`shutdown_on_signal`](Self::shutdown_on_signal)), waits for the server's
    /// threads to end, and returns the signal's number. What a `main` ends with:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use squall_httpserver::{HttpServer, Response};
    ///
    /// let mut server = HttpServer::new(|_req| async { Response::text("hi") });
    /// server.bind(8888, "127.0.0.1")?;
    /// server.start(4)?;
    /// server.run_until_signal(Duration::from_secs(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Creating the waiting thread's loop or installing a handler failed (the server
    /// is then shut down at once, without grace).
    pub fn run_until_signal(&mut self, grace: Duration) -> io::Result<i32> {
        let io_loop = IoLoop::new()?;
        let outcome = self
            .shutdown_on_signal_with(&io_loop, grace)
            .and_then(|wait| io_loop.run_sync(wait, None).map_err(io::Error::from));
        if outcome.is_err() {
            let _ = io_loop.run_sync(self.shutdown(Duration::ZERO), None);
        }
        self.join();
        let _ = io_loop.close(true);
        outcome
    }
}
