//! The connection's timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use squall_ioloop::Sleep;

/// One timer per connection, reused across waits: it is replaced only when a wait needs
/// an earlier deadline; when it fires early for a later deadline, it is re-armed. A
/// kept-alive connection serving a request a millisecond costs one timer a minute, not
/// one per request.
///
/// The timer is boxed: most busy periods never wait (a request answered from one read),
/// and a connection that is moved from one place to the next (its table entry, a
/// worker) stays small enough to be moved without a call to `memcpy`.
#[derive(Debug, Default)]
pub(super) struct LazyTimer {
    sleep: Option<Box<Sleep>>,
}

impl LazyTimer {
    /// Pending while a timer set before waits (the task is woken when it fires);
    /// Ready when none is set, or once it has fired (none is set then).
    pub(super) fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.sleep {
            Some(s) => {
                let fired = Pin::new(&mut **s).poll(cx);
                if fired.is_ready() {
                    self.sleep = None;
                }
                fired
            }
            None => Poll::Ready(()),
        }
    }

    /// Ready once `deadline` has passed; otherwise the task is woken when it does.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        loop {
            // A timer set for this deadline or an earlier one is kept; a later one is
            // replaced.
            if self.sleep.as_ref().is_none_or(|s| s.deadline() > deadline) {
                self.sleep = Some(Box::new(squall_ioloop::sleep_until(deadline)));
            }
            if self.poll_set(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
        }
    }
}

/// A write's wait for a slow peer, bounded by the idle timeout *without progress*: the
/// deadline moves on whenever the bytes still to send change, so a peer that reads a
/// large response steadily is never cut off however long the whole takes (Tornado has
/// no write timeout at all), while one that stops reading is let go an idle timeout
/// after it stopped.
#[derive(Debug, Default)]
pub(super) struct Stall {
    /// Since when `backlog` bytes have been waiting.
    since: Option<(Instant, usize)>,
}

impl Stall {
    /// The deadline for a write that waits with `backlog` bytes unsent: `idle` after
    /// the backlog last changed. The clock is read only when it changed.
    pub(super) fn deadline(&mut self, backlog: usize, idle: std::time::Duration) -> Instant {
        match self.since {
            Some((t, n)) if n == backlog => squall_ioloop::instant_after(t, idle),
            _ => {
                let now = Instant::now();
                self.since = Some((now, backlog));
                squall_ioloop::instant_after(now, idle)
            }
        }
    }

    /// Everything was sent: the next wait starts afresh.
    pub(super) fn clear(&mut self) {
        self.since = None;
    }
}
