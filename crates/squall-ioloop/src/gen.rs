//! Futures helpers on the loop's timers: Tornado's `gen.sleep` and `gen.with_timeout`.

use std::future::{poll_fn, Future};
use std::panic::Location;
use std::pin::{pin, Pin};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::TimeoutError;
use crate::ioloop::{Inner, IoLoop, TimerAction};
use crate::timer::{Deadline, Timeout};

/// A future that completes at a deadline: Tornado's `gen.sleep`.
///
/// Made by [`sleep`] (on the loop current when first polled) or
/// [`IoLoop::sleep`](crate::IoLoop::sleep) (on that loop). Its timer is registered on
/// the first poll and cancelled if the future is dropped first; polling it costs no
/// allocation (the loop's timer keeps the task's waker). It always yields to the loop
/// once, even when the deadline has already passed. If its loop is dropped, it
/// completes.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
    io_loop: Option<Weak<Inner>>,
    timer: Option<Timeout>,
    done: bool,
    origin: &'static Location<'static>,
}

impl Sleep {
    pub(crate) fn new(
        deadline: Instant,
        io_loop: Option<Weak<Inner>>,
        origin: &'static Location<'static>,
    ) -> Sleep {
        Sleep {
            deadline,
            io_loop,
            timer: None,
            done: false,
            origin,
        }
    }

    /// When this sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// Sleeps for `duration` on the loop current when the future is first polled (normally
/// the loop running the task). Tornado's `gen.sleep`.
///
/// # Panics
///
/// The returned future panics if it is first polled on a thread with no current
/// [`IoLoop`] (outside `start`/`run_sync` and without `make_current`).
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    Sleep::new(crate::clock::after(duration), None, Location::caller())
}

/// Sleeps until `deadline`; see [`sleep`].
///
/// # Panics
///
/// As [`sleep`].
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(deadline, None, Location::caller())
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        let inner = match &self.io_loop {
            Some(w) => w.upgrade(),
            None => {
                let l = IoLoop::current()
                    .expect("squall_ioloop::sleep polled on a thread without a current IoLoop");
                self.io_loop = Some(Rc::downgrade(&l.inner));
                Some(l.inner)
            }
        };
        let Some(inner) = inner else {
            // The loop is gone: nothing will ever fire; do not hang the caller.
            self.done = true;
            return Poll::Ready(());
        };
        match self.timer {
            None => {
                let l = IoLoop { inner };
                match l.schedule_wake(self.deadline, cx.waker().clone(), self.origin) {
                    Some(t) => {
                        self.timer = Some(t);
                        Poll::Pending
                    }
                    None => {
                        self.done = true;
                        Poll::Ready(())
                    }
                }
            }
            Some(t) => {
                let pending = inner.timers.borrow_mut().with_action(t, |a| {
                    if let TimerAction::Wake(w, _) = a {
                        if !w.will_wake(cx.waker()) {
                            *w = cx.waker().clone();
                        }
                    }
                });
                if pending {
                    Poll::Pending
                } else {
                    self.timer = None;
                    self.done = true;
                    Poll::Ready(())
                }
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let (Some(t), Some(w)) = (self.timer, &self.io_loop) else {
            return;
        };
        if let Some(inner) = w.upgrade() {
            let action = match inner.timers.try_borrow_mut() {
                Ok(mut timers) => timers.cancel(t),
                Err(_) => None,
            };
            drop(action);
        }
    }
}

/// Runs `future` until `deadline` (a [`Duration`] from now or an [`Instant`]), on the
/// loop current when first polled. Tornado's `gen.with_timeout`: resolves to
/// `Err(TimeoutError)` if the deadline comes first, and then drops the future (which
/// cancels it; Tornado leaves it running).
///
/// # Panics
///
/// As [`sleep`], if first polled without a current loop.
#[track_caller]
pub fn with_timeout<D, F>(
    deadline: D,
    future: F,
) -> impl Future<Output = Result<F::Output, TimeoutError>>
where
    D: Into<Deadline>,
    F: Future,
{
    let timer = sleep_until(deadline.into().0);
    race(timer, future)
}

pub(crate) async fn race<F: Future>(
    mut timer: Sleep,
    future: F,
) -> Result<F::Output, TimeoutError> {
    let mut future = pin!(future);
    poll_fn(move |cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TimeoutError::new())),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

impl IoLoop {
    /// [`with_timeout`] on this loop (usable before the loop runs, and from futures
    /// polled by another executor on the same thread).
    #[track_caller]
    pub fn with_timeout<D, F>(
        &self,
        deadline: D,
        future: F,
    ) -> impl Future<Output = Result<F::Output, TimeoutError>>
    where
        D: Into<Deadline>,
        F: Future,
    {
        let timer = Sleep::new(
            deadline.into().0,
            Some(Rc::downgrade(&self.inner)),
            Location::caller(),
        );
        race(timer, future)
    }
}
