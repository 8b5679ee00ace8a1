//! The loop's table of fd handlers, indexed by fd number, with the generation that
//! keeps a reused fd from getting a stale event.

use std::any::TypeId;
use std::os::fd::{AsRawFd, RawFd};

use squall_poller::{Interest, Ready};

use crate::fault::Origin;
use crate::pages::Pages;

/// The handler of one fd number. Kept in [`Pages`] indexed by the fd, so an idle
/// connection costs one 48-byte entry, its handler's box (nothing for a closure that
/// captures nothing), and no box for its source when that is a bare `RawFd`.
#[derive(Default)]
pub(crate) struct HandlerSlot {
    /// Registrations of this fd number so far: events polled for an earlier
    /// registration are told apart from the current one's.
    pub(crate) gen: u32,
    pub(crate) registered: bool,
    pub(crate) interest: Interest,
    /// The registered source, or `None` for a bare `RawFd` (the slot's index is the
    /// fd, so there is nothing to keep, and nothing to box).
    pub(crate) source: Option<Box<dyn AsRawFd>>,
    /// `None` while it runs (it is taken out so that no borrow is held across it).
    pub(crate) handler: Option<Box<dyn FnMut(RawFd, Ready)>>,
    pub(crate) origin: Option<Origin>,
}

/// A removed registration: its source and handler, for the caller to drop or return.
pub(crate) struct Removed {
    pub(crate) fd: RawFd,
    pub(crate) source: Option<Box<dyn AsRawFd>>,
    pub(crate) handler: Option<Box<dyn FnMut(RawFd, Ready)>>,
}

#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) slots: Pages<HandlerSlot>,
    pub(crate) count: usize,
}

impl Handlers {
    #[inline]
    pub(crate) fn get(&self, fd: RawFd) -> Option<&HandlerSlot> {
        self.slots
            .get(usize::try_from(fd).ok()?)
            .filter(|s| s.registered)
    }
    #[inline]
    pub(crate) fn get_mut(&mut self, fd: RawFd) -> Option<&mut HandlerSlot> {
        self.slots
            .get_mut(usize::try_from(fd).ok()?)
            .filter(|s| s.registered)
    }
    pub(crate) fn remove(&mut self, fd: RawFd) -> Option<Removed> {
        let s = self.get_mut(fd)?;
        s.registered = false;
        s.interest = Interest::NONE;
        s.origin = None;
        let removed = Removed {
            fd,
            source: s.source.take(),
            handler: s.handler.take(),
        };
        self.count -= 1;
        Some(removed)
    }
}

/// Boxes a handler's source unless it is a bare `RawFd`, which needs no keeping: the
/// table's index is the fd, and dropping a `RawFd` does nothing.
pub(crate) fn keep_source<S: AsRawFd + 'static>(source: S) -> Option<Box<dyn AsRawFd>> {
    if TypeId::of::<S>() == TypeId::of::<RawFd>() {
        None
    } else {
        Some(Box::new(source))
    }
}

/// `ready` without the directions `interest` does not ask for (ERROR and HUP stay).
#[inline]
pub(crate) fn masked(mut ready: Ready, interest: Interest) -> Ready {
    if !interest.is_readable() {
        ready = ready - Ready::READ;
    }
    if !interest.is_writable() {
        ready = ready - Ready::WRITE;
    }
    ready
}
