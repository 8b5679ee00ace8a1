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
