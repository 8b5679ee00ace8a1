//! The loop's table of fd handlers, indexed by fd number, with the generation that
//! keeps a reused fd from getting a stale event.

use std::any::TypeId;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::{Rc, Weak};

use squall_poller::{Interest, Ready};

use crate::fault::Origin;
use crate::pages::Pages;

/// The handler of one fd number. Kept in [`Pages`] indexed by the fd, so an idle
/// connection costs one 64-byte entry, no box for a handler registered by `Weak` (or a
/// closure that captures nothing), and no box for its source when that is a bare
/// `RawFd`.
///
/// One cache line each (56 bytes of fields, aligned to 64): at 48 bytes (before the
/// `Weak` handler widened it) every other entry straddled two lines, and with a
/// thousand connections an event's lookup of its entry missed one and a half lines
/// instead of one.
#[derive(Default)]
#[repr(align(64))]
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
    pub(crate) handler: Option<Handler>,
    pub(crate) origin: Option<Origin>,
}

/// A removed registration: its source and handler, for the caller to drop or return.
pub(crate) struct Removed {
    pub(crate) fd: RawFd,
    pub(crate) source: Option<Box<dyn AsRawFd>>,
    pub(crate) handler: Option<Handler>,
}

// One entry per cache line, not two.
const _: () = assert!(std::mem::size_of::<HandlerSlot>() == 64);

/// What the loop calls for an fd's events: what
/// [`add_handler`](crate::IoLoop::add_handler) or
/// [`add_weak_handler`](crate::IoLoop::add_weak_handler) registered.
pub(crate) enum Handler {
    /// A closure, boxed.
    Fn(Box<dyn FnMut(RawFd, Ready)>),
    /// A handler its owner keeps: called while it lives, with no box of the loop's
    /// own between the entry and the handler's state.
    Weak(Weak<dyn FdHandler>),
}

impl Handler {
    #[inline]
    pub(crate) fn call(&mut self, fd: RawFd, ready: Ready) {
        match self {
            Handler::Fn(f) => f(fd, ready),
            Handler::Weak(w) => {
                if let Some(h) = w.upgrade() {
                    h.on_event(fd, ready);
                }
            }
        }
    }
}

/// An fd's handler that its owner keeps in an `Rc`, registered with
/// [`IoLoop::add_weak_handler`](crate::IoLoop::add_weak_handler): the loop holds only a
/// `Weak` to it, and calls it while the owner's `Rc` lives.
///
/// What a closure registered with [`add_handler`](crate::IoLoop::add_handler) that
/// captures a `Weak` does, without the closure's box: for an object that lives as long
/// as its registration (a stream), the loop's entry points straight at its state, one
/// allocation and one pointer hop fewer per event.
///
/// ```
/// use std::cell::{Cell, RefCell};
/// use std::io::{Read, Write};
/// use std::os::fd::{AsRawFd, RawFd};
/// use std::os::unix::net::UnixStream;
/// use std::rc::Rc;
/// use squall_ioloop::{FdHandler, Interest, IoLoop, Ready};
///
/// struct Reader {
///     io_loop: IoLoop,
///     stream: RefCell<UnixStream>,
///     got: Cell<usize>,
/// }
///
/// impl FdHandler for Reader {
///     fn on_event(self: Rc<Self>, _fd: RawFd, ready: Ready) {
///         assert!(ready.is_readable());
///         let mut buf = [0u8; 64];
///         let n = self.stream.borrow_mut().read(&mut buf).unwrap_or(0);
///         self.got.set(self.got.get() + n);
///         self.io_loop.stop();
///     }
/// }
///
/// let io_loop = IoLoop::new()?;
/// let (mut ours, theirs) = UnixStream::pair()?;
/// theirs.set_nonblocking(true)?;
/// let fd = theirs.as_raw_fd();
/// let reader = Rc::new(Reader {
///     io_loop: io_loop.clone(),
///     stream: RefCell::new(theirs),
///     got: Cell::new(0),
/// });
/// // The loop keeps a `Weak`: `reader` stays ours.
/// io_loop.add_weak_handler(fd, Interest::READ, &reader)?;
/// ours.write_all(b"hello")?;
/// io_loop.start()?;
/// assert_eq!(reader.got.get(), 5);
/// io_loop.remove_handler(fd);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait FdHandler {
    /// `fd` is ready for `ready` (masked to the registration's interest, plus ERROR
    /// and HUP). Runs as a handler does: a panic is caught and logged by the loop.
    fn on_event(self: Rc<Self>, fd: RawFd, ready: Ready);

    /// A hint, called when the loop is about to call [`on_event`](Self::on_event) (after
    /// the event before it, when one poll found several): the handler may ask the CPU
    /// to start loading the memory `on_event` will touch beyond the handler itself
    /// (which the loop has asked for already), with `squall_poller::sys::prefetch`.
    /// It should do nothing observable; a panic there is caught and logged, as one in
    /// `on_event` is, and the event is still handled. Default: nothing.
    fn prefetch(&self) {}
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
