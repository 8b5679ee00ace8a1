//! The server's hold on its running connections: [`Control`] (graceful drain and forced
//! close) and [`HighWater`] (the most bytes a connection has held, for monitoring).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;

const RUN: u8 = 0;
const DRAIN: u8 = 1;
const FORCE: u8 = 2;

/// The server's grip on a running connection: graceful and forced close.
#[derive(Debug, Default)]
pub(crate) struct Control {
    state: Cell<u8>,
    waker: RefCell<Option<Waker>>,
}

impl Control {
    /// Wake `waker`'s task on the next drain or force.
    pub(crate) fn register(&self, waker: &Waker) {
        let mut w = self.waker.borrow_mut();
        match &*w {
            Some(old) if old.will_wake(waker) => {}
            _ => *w = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        let w = self.waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Finish the request in flight with `Connection: close`; close when idle.
    pub(crate) fn drain(&self) {
        if self.state.get() == RUN {
            self.state.set(DRAIN);
            self.wake();
        }
    }

    /// Close now, whatever is in flight.
    pub(crate) fn force(&self) {
        self.state.set(FORCE);
        self.wake();
    }

    /// A drain or a force was asked for.
    pub(crate) fn draining(&self) -> bool {
        self.state.get() != RUN
    }

    /// A force was asked for.
    pub(crate) fn forced(&self) -> bool {
        self.state.get() == FORCE
    }
}

/// A high-water mark of the bytes a connection holds in buffers (input, output, the
/// transport's own), shared by the connections of a server for tests and monitoring.
/// Updated only when a connection's own mark grows, so it costs nothing per request.
#[derive(Debug, Clone, Default)]
pub(crate) struct HighWater(pub(crate) Arc<AtomicUsize>);

impl HighWater {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}
