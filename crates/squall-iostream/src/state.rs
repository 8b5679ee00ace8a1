//! A stream's state machine: the flags, the rarely used part boxed on first use, the
//! interest armed on the loop, the fd's event handler and the close. The read engine
//! (`engine.rs`), the write path (`write.rs`) and the public API (`stream.rs`) all
//! drive this one state; the fd itself is touched only in `fdio.rs`.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use bytes::BytesMut;
use squall_ioloop::{FdHandler, Interest, IoLoop, Ready};

use crate::error::{CloseCause, StreamError};
use crate::stream::{DEFAULT_MAX_BUFFER_SIZE, DEFAULT_READ_CHUNK_SIZE};
use crate::wqueue::WriteQueue;

// Bits of `Inner::flags`.
/// A read syscall may return data: readiness is unknown or known true.
pub(crate) const READABLE: u32 = 1;
/// A write syscall may go through: we are not waiting for WRITE.
pub(crate) const WRITABLE: u32 = 1 << 1;
/// A non-blocking connect is in progress.
pub(crate) const CONNECTING: u32 = 1 << 2;
/// The stream is closed; `cause` says why.
pub(crate) const CLOSED: u32 = 1 << 3;
/// A read future holds the read slot.
pub(crate) const READ_ACTIVE: u32 = 1 << 4;
/// The fd has a handler on the loop.
pub(crate) const REGISTERED: u32 = 1 << 5;
/// READ interest is armed on the loop.
pub(crate) const ARMED_READ: u32 = 1 << 6;
/// WRITE interest is armed on the loop.
pub(crate) const ARMED_WRITE: u32 = 1 << 7;
/// The fd is known to be a socket (for `SO_ERROR` and `MSG_PEEK`).
pub(crate) const SOCKET: u32 = 1 << 8;
/// Some limit was changed from its default: read the limits from [`Cold`].
pub(crate) const LIMITS: u32 = 1 << 9;
/// Bits 10 to 12: why the stream closed, for the causes that carry nothing (the others
/// are kept in [`Cold`]).
pub(crate) const CAUSE_SHIFT: u32 = 10;
pub(crate) const CAUSE_MASK: u32 = 0b111 << CAUSE_SHIFT;
pub(crate) const CAUSE_EOF: u32 = 1;
pub(crate) const CAUSE_LOCAL: u32 = 2;
pub(crate) const CAUSE_BUFFER_FULL: u32 = 3;
pub(crate) const CAUSE_UNSATISFIABLE: u32 = 4;
/// The cause is in [`Cold::cause`] (it carries an OS error).
pub(crate) const CAUSE_COLD: u32 = 5;
/// `shutdown_write` was called: no more writes are accepted, and the write side is
/// shut down once the queue is empty.
pub(crate) const SHUT_PENDING: u32 = 1 << 13;
/// The write side is shut down (`shutdown(SHUT_WR)` done).
pub(crate) const SHUT_DONE: u32 = 1 << 14;
/// A [`Layer`](crate::Layer) sits between the fd and the buffers (in [`Cold::layer`]).
pub(crate) const LAYERED: u32 = 1 << 15;
/// The fd is not a socket (a pipe, a file: `recv` said `ENOTSOCK`): its reads and
/// writes are `read(2)` and `write(2)`.
pub(crate) const NOT_SOCKET: u32 = 1 << 16;
/// A read waits for the fd: `read_waker` is to be woken. The waker is kept after the
/// wake (and after the read ends), so a task that reads again, as a connection's
/// reader does request after request, waits with no clone of its waker.
pub(crate) const READ_WAIT: u32 = 1 << 17;
/// The last layered read came back short with more held in the layer (a TLS
/// `close_notify` read with the last data): the fd's next report may never come, so
/// the next read must not wait for it.
pub(crate) const LAYER_MORE: u32 = 1 << 18;
/// READ was reported while nobody read, and no read has run since. A second such
/// report is a repeat (a level-triggered backend, or epoll after the peer's close),
/// so READ interest is dropped until a read waits again: an unread stream must not
/// spin the loop.
pub(crate) const UNREAD_REPORT: u32 = 1 << 19;

/// The last poll-style read filled what it asked for: bytes are flowing in bulk, so
/// the next one asks the kernel for a whole read chunk (through the thread's buffer)
/// rather than for the caller's room ([`poll_read_chunk`](Inner::poll_read_chunk)).
pub(crate) const READ_FULL: u32 = 1 << 20;

/// The close threw away output that had not been sent (the write queue, or a layer's
/// records with no goodbye to carry them): the `AsyncWrite` flush and close of the
/// [`compat`](crate::compat) module report it, where a close that lost nothing is
/// flushed.
pub(crate) const LOST_OUTPUT: u32 = 1 << 21;

/// A stream's state: what every read and write touches is inline (144 bytes with the
/// `Rc` header); what most streams never use is in [`Cold`], allocated on first use.
///
/// `repr(C)`, hottest first: a request's event, read and write touch the `Rc` counts,
/// `flags`, `rbuf`, `read_waker`, `file` and the write counters, which so sit in the
/// first 88 bytes of the allocation (two cache lines, where the compiler's order spread
/// them over all three: with a thousand connections each is a miss per request).
#[repr(C)]
pub(crate) struct Inner {
    pub(crate) flags: Cell<u32>,
    pub(crate) fd: RawFd,
    /// Bytes received but not yet consumed by a read; `None` when there are none.
    /// Boxed, as the write queue: a stream that never had to buffer (every idle
    /// keep-alive connection whose responses went out at once) holds two pointers
    /// instead of 96 bytes of empty buffers, a fifth of such a connection's memory.
    pub(crate) rbuf: RefCell<Option<Box<BytesMut>>>,
    pub(crate) read_waker: Cell<Option<Waker>>,
    /// The owned fd (`None` once closed). A `File` because its `&File` reads and
    /// `writev`s any fd kind without `unsafe`.
    pub(crate) file: RefCell<Option<File>>,
    pub(crate) wbuf_len: Cell<usize>,
    /// Bytes ever handed to the OS: a write future waits until `written` reaches the
    /// total queued when it was made (`written + wbuf_len` then).
    pub(crate) written: Cell<u64>,
    /// The write future or connect waiter waiting (more of them wait in [`Cold`]).
    pub(crate) write_waker: Cell<Option<Waker>>,
    /// Queued output, in order; the front chunk may be partly written. Made at the
    /// first write that has to wait and kept (emptied, see `WriteQueue::consume`) for
    /// the stream's life, so that a writer the socket keeps waiting does not allocate
    /// it again for every wait. One chunk is held inline in the queue.
    pub(crate) wbuf: RefCell<Option<Box<WriteQueue>>>,
    pub(crate) io_loop: IoLoop,
    pub(crate) cold: RefCell<Option<Box<Cold>>>,
}

/// The rarely used part of a stream, boxed on first use: a close callback, a close
/// cause that carries an OS error, limits changed from their defaults, and the wakers
/// of a second and further concurrent write futures.
pub(crate) struct Cold {
    pub(crate) close_callback: Option<Box<dyn FnOnce()>>,
    pub(crate) cause: Option<CloseCause>,
    pub(crate) max_buffer_size: usize,
    pub(crate) read_chunk_size: usize,
    pub(crate) max_write_buffer_size: usize,
    pub(crate) write_wakers: Vec<Waker>,
    /// The byte transform (TLS), if one is installed.
    pub(crate) layer: Option<Box<dyn crate::Layer>>,
}

impl Default for Cold {
    fn default() -> Cold {
        Cold {
            close_callback: None,
            cause: None,
            max_buffer_size: DEFAULT_MAX_BUFFER_SIZE,
            read_chunk_size: DEFAULT_READ_CHUNK_SIZE,
            max_write_buffer_size: usize::MAX,
            write_wakers: Vec::new(),
            layer: None,
        }
    }
}

impl Inner {
    /// The state of a new stream over `fd`, which must be non-blocking.
    pub(crate) fn new(io_loop: &IoLoop, fd: OwnedFd) -> Inner {
        let raw = fd.as_raw_fd();
        Inner {
            io_loop: io_loop.clone(),
            file: RefCell::new(Some(File::from(fd))),
            fd: raw,
            flags: Cell::new(READABLE | WRITABLE),
            rbuf: RefCell::new(None),
            wbuf: RefCell::new(None),
            wbuf_len: Cell::new(0),
            written: Cell::new(0),
            read_waker: Cell::new(None),
            write_waker: Cell::new(None),
            cold: RefCell::new(None),
        }
    }

    /// Starts loading this state into the CPU's cache: every line of it, and of the
    /// reference counts just before it (a stream's requests touch all of it).
    #[inline]
    pub(crate) fn prefetch(&self) {
        squall_poller::sys::prefetch_counted(self, mem::size_of::<Inner>());
    }

    #[inline]
    pub(crate) fn has(&self, bit: u32) -> bool {
        self.flags.get() & bit != 0
    }

    #[inline]
    pub(crate) fn set(&self, bit: u32) {
        self.flags.set(self.flags.get() | bit);
    }

    #[inline]
    pub(crate) fn clear(&self, bit: u32) {
        self.flags.set(self.flags.get() & !bit);
    }

    pub(crate) fn closed_error(&self) -> StreamError {
        StreamError::Closed(self.cause().unwrap_or(CloseCause::Local))
    }

    /// Why the stream closed (`None` while open).
    pub(crate) fn cause(&self) -> Option<CloseCause> {
        match (self.flags.get() & CAUSE_MASK) >> CAUSE_SHIFT {
            0 => None,
            CAUSE_EOF => Some(CloseCause::Eof),
            CAUSE_LOCAL => Some(CloseCause::Local),
            CAUSE_BUFFER_FULL => Some(CloseCause::BufferFull),
            CAUSE_UNSATISFIABLE => Some(CloseCause::Unsatisfiable),
            _ => self.cold.borrow().as_ref().and_then(|c| c.cause.clone()),
        }
    }

    /// Records why the stream closed: in the flags, or in [`Cold`] if it carries an OS
    /// error.
    pub(crate) fn set_cause(&self, cause: CloseCause) {
        let code = match cause {
            CloseCause::Eof => CAUSE_EOF,
            CloseCause::Local => CAUSE_LOCAL,
            CloseCause::BufferFull => CAUSE_BUFFER_FULL,
            CloseCause::Unsatisfiable => CAUSE_UNSATISFIABLE,
            other => {
                self.with_cold(|c| c.cause = Some(other));
                CAUSE_COLD
            }
        };
        self.flags
            .set((self.flags.get() & !CAUSE_MASK) | (code << CAUSE_SHIFT));
    }

    /// Runs `f` on the cold part, boxing it first if needed. `f` must not call user
    /// code (the part is borrowed meanwhile).
    pub(crate) fn with_cold<R>(&self, f: impl FnOnce(&mut Cold) -> R) -> R {
        let mut cold = self.cold.borrow_mut();
        f(cold.get_or_insert_with(Box::default))
    }

    pub(crate) fn set_limit(&self, f: impl FnOnce(&mut Cold)) {
        self.with_cold(f);
        self.set(LIMITS);
    }

    /// A limit kept in the cold part, or its default while no limit was ever changed
    /// (the common case: one flag test, no borrow).
    #[inline]
    pub(crate) fn limit(&self, default: usize, pick: fn(&Cold) -> usize) -> usize {
        if !self.has(LIMITS) {
            return default;
        }
        self.cold.borrow().as_deref().map_or(default, pick)
    }

    #[inline]
    pub(crate) fn max_buffer_size(&self) -> usize {
        self.limit(DEFAULT_MAX_BUFFER_SIZE, |c| c.max_buffer_size)
    }

    #[inline]
    pub(crate) fn read_chunk_size(&self) -> usize {
        self.limit(DEFAULT_READ_CHUNK_SIZE, |c| c.read_chunk_size)
    }

    #[inline]
    pub(crate) fn max_write_buffer_size(&self) -> usize {
        self.limit(usize::MAX, |c| c.max_write_buffer_size)
    }

    pub(crate) fn has_close_callback(&self) -> bool {
        self.cold
            .borrow()
            .as_ref()
            .is_some_and(|c| c.close_callback.is_some())
    }

    pub(crate) fn has_write_waker(&self) -> bool {
        let w = self.write_waker.take();
        let some = w.is_some();
        self.write_waker.set(w);
        some
    }

    pub(crate) fn has_read_waker(&self) -> bool {
        self.has(READ_WAIT)
    }

    /// Claims the read slot; `false` if another read holds it.
    pub(crate) fn claim_read(&self) -> bool {
        if self.has(READ_ACTIVE) {
            false
        } else {
            self.set(READ_ACTIVE);
            true
        }
    }

    /// Gives the read slot back (a read finished or was dropped). A close callback
    /// that lost READ interest while the read had bytes to take (see [`UNREAD_REPORT`])
    /// gets it back, to hear the close that may be queued behind them (Tornado's
    /// `_maybe_add_error_listener` after a read).
    pub(crate) fn release_read(self: &Rc<Self>) {
        self.clear(READ_ACTIVE | READ_WAIT);
        if !self.has(ARMED_READ) && self.has_close_callback() {
            self.watch_for_close();
        }
    }

    /// Arms READ, with nobody reading, so that a close is noticed (for a close
    /// callback); a failure to arm closes the stream with its error.
    pub(crate) fn watch_for_close(self: &Rc<Self>) {
        if self.has(CONNECTING | CLOSED | ARMED_READ) {
            return;
        }
        if let Err(e) = self.arm(Interest::READ) {
            self.close_with(CloseCause::Io(Arc::new(e)));
        }
    }

    pub(crate) fn add_write_waker(&self, waker: &Waker) {
        match self.write_waker.take() {
            None => self.write_waker.set(Some(waker.clone())),
            Some(first) => {
                let same = first.will_wake(waker);
                self.write_waker.set(Some(first));
                if !same {
                    // A second concurrent writer: rare, kept in the cold part.
                    self.with_cold(|c| {
                        if !c.write_wakers.iter().any(|w| w.will_wake(waker)) {
                            c.write_wakers.push(waker.clone());
                        }
                    });
                }
            }
        }
    }

    pub(crate) fn wake_writers(&self) {
        let first = self.write_waker.take();
        let more = match self.cold.try_borrow_mut() {
            Ok(mut c) => c
                .as_mut()
                .map(|c| mem::take(&mut c.write_wakers))
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        if let Some(w) = first {
            w.wake();
        }
        for w in more {
            w.wake();
        }
    }

    /// Wakes the read that waits, if one does; its waker stays for the next wait.
    pub(crate) fn wake_reader(&self) {
        if !self.has(READ_WAIT) {
            return;
        }
        self.clear(READ_WAIT);
        let w = self.read_waker.take();
        if let Some(w) = &w {
            w.wake_by_ref();
        }
        self.read_waker.set(w);
    }

    /// The interest the stream registers with before its directions: the
    /// [`EDGE`](Interest::EDGE) hint. The stream keeps the hint's promise: `READABLE`
    /// and `WRITABLE` are set by every report and cleared only by a read or write that
    /// found the fd drained (`EAGAIN`, or a short transfer; a [`Layer`](crate::Layer)'s
    /// short read means the same by its contract), so epoll does not look at the fd
    /// again on every wait after reporting it.
    const BASE_INTEREST: Interest = Interest::EDGE;

    /// Adds `add` to the interest the loop watches, registering the fd on first use.
    /// No syscall if it is already armed.
    pub(crate) fn arm(self: &Rc<Self>, add: Interest) -> io::Result<()> {
        let mut want = Self::BASE_INTEREST;
        if self.has(ARMED_READ) {
            want |= Interest::READ;
        }
        if self.has(ARMED_WRITE) {
            want |= Interest::WRITE;
        }
        if want.contains(add) && self.has(REGISTERED) {
            return Ok(());
        }
        want |= add;
        if self.has(REGISTERED) {
            self.io_loop.update_handler(self.fd, want)?;
        } else {
            // Held by `Weak` (the stream owns the loop, not the other way round), with
            // no closure box between the loop's entry and this state.
            self.io_loop.add_weak_handler(self.fd, want, self)?;
            self.set(REGISTERED);
        }
        if want.is_readable() {
            // A fresh registration: the next report is not a repeat.
            self.set(ARMED_READ);
            self.clear(UNREAD_REPORT);
        }
        if want.is_writable() {
            self.set(ARMED_WRITE);
        }
        Ok(())
    }

    /// Removes `rm` from the watched interest (one `epoll_ctl`).
    pub(crate) fn disarm(&self, rm: Interest) {
        if !self.has(REGISTERED) {
            return;
        }
        let mut want = Self::BASE_INTEREST;
        if self.has(ARMED_READ) && !rm.is_readable() {
            want |= Interest::READ;
        }
        if self.has(ARMED_WRITE) && !rm.is_writable() {
            want |= Interest::WRITE;
        }
        match self.io_loop.update_handler(self.fd, want) {
            Ok(()) => {
                if rm.is_readable() {
                    self.clear(ARMED_READ);
                }
                if rm.is_writable() {
                    self.clear(ARMED_WRITE);
                }
            }
            Err(e) => log::debug!("IoStream fd {}: update_handler failed: {e}", self.fd),
        }
    }

    /// Takes the fd off the loop entirely (after a hang-up or error nobody waits for:
    /// even a NONE registration would keep reporting it).
    pub(crate) fn park(&self) {
        if self.has(REGISTERED) {
            self.io_loop.discard_handler(self.fd);
            self.clear(REGISTERED | ARMED_READ | ARMED_WRITE);
        }
        self.set(READABLE | WRITABLE);
    }

    /// The fd's handler.
    pub(crate) fn on_event(self: &Rc<Self>, ready: Ready) {
        if self.has(CLOSED) {
            return;
        }
        if self.has(CONNECTING) {
            if ready.is_writable() || ready.is_error() || ready.is_hup() {
                self.finish_connect();
            }
            if self.has(CLOSED) || !ready.is_readable() {
                return;
            }
        }
        if ready.is_error() && self.has(SOCKET) {
            // What arrived before the error is read first, as Tornado's `_handle_events`
            // reads before it handles an error: a peer that answers and then resets
            // loses nothing to the reset. The read that finds the queue empty meets
            // the error (a socket reports it before its end of file) and closes with
            // it; a pending read is then served from the buffer.
            self.read_ahead_eof();
            if self.has(CLOSED) {
                return;
            }
            // A pending socket error no read met (the buffer is full, or the fd is not
            // read): take it (this consumes it; the select backend does not) and close
            // with it. Logged at warn only when no pending read or write will return it.
            if let Some(e) = self.take_socket_error() {
                self.close_met_outside(CloseCause::from_io(e));
                return;
            }
        }
        let trouble = ready.is_error() || ready.is_hup();
        let layered = self.has(LAYERED);
        if ready.is_writable() {
            // Kept even with nothing to send: an edge-triggered report comes once.
            self.set(WRITABLE);
        }
        if (ready.is_writable() || trouble) && self.unsent() {
            self.set(WRITABLE);
            self.handle_write();
            if self.has(CLOSED) {
                return;
            }
        }
        if ready.is_readable() || trouble {
            self.set(READABLE);
            // (A reader moves a handshake on by itself: the layer is asked only
            // when nobody reads.)
            if layered && !self.has_read_waker() && self.layer_pending() {
                // Nobody reads, but the layer's handshake must move on for the writers
                // and `wait_for_handshake` waiting on it.
                self.drive_layer();
                return;
            }
            if self.has_read_waker() {
                self.wake_reader();
                return;
            }
            if self.has_close_callback() {
                // Nobody reads, but someone wants to hear about a close.
                if let Some(cause) = self.peer_gone() {
                    self.close_with(cause);
                }
                if self.has(CLOSED) {
                    return;
                }
            }
            if trouble && !(self.has(ARMED_WRITE) && self.wbuf_len.get() > 0) {
                self.park();
            } else if self.has(UNREAD_REPORT) {
                // Reported again with no read in between: the backend repeats what
                // nobody takes (level-triggered, or epoll after the peer's close). READ
                // waits for the next read that has to wait (or, for a close callback,
                // for the end of the read that takes the bytes).
                self.disarm(Interest::READ);
            } else {
                // Nobody is waiting: `READABLE` remembers the report for the next read,
                // and an edge-triggered registration reports once, so READ stays armed
                // (no `epoll_ctl` now and again when a reader comes).
                self.set(UNREAD_REPORT);
            }
        }
    }

    /// Closes with `cause`; see [`IoStream::close`].
    /// An OS error nobody will see otherwise is logged at warn level (once: a stream
    /// closes once).
    pub(crate) fn close_with(self: &Rc<Self>, cause: CloseCause) {
        self.close_logged(cause, true);
    }

    /// Closes with `cause`, an error met outside any read or write (on an event, or
    /// reading ahead): returned to a read or write that waits, if one does
    /// ([`close_returned`](Self::close_returned)), else logged
    /// ([`close_with`](Self::close_with)).
    pub(crate) fn close_met_outside(self: &Rc<Self>, cause: CloseCause) {
        if self.has_read_waker() || self.has_write_waker() {
            self.close_returned(cause);
        } else {
            self.close_with(cause);
        }
    }

    /// Closes with `cause` when the error goes back to the caller of the operation
    /// that met it (a read's future): the caller decides whether to log it, so it is
    /// logged here at debug level only (Tornado raises an inline read error unlogged).
    pub(crate) fn close_returned(self: &Rc<Self>, cause: CloseCause) {
        self.close_logged(cause, false);
    }

    fn close_logged(self: &Rc<Self>, cause: CloseCause, warn: bool) {
        if self.has(CLOSED) {
            return;
        }
        match &cause {
            CloseCause::Io(_) if warn => log::warn!("IoStream fd {} closed: {cause}", self.fd),
            CloseCause::Eof | CloseCause::Reset(_) | CloseCause::Local | CloseCause::Io(_) => {
                log::debug!("IoStream fd {} closed: {cause}", self.fd)
            }
            CloseCause::BufferFull | CloseCause::Unsatisfiable => {
                log::info!("IoStream fd {} closed: {cause}", self.fd)
            }
        }
        let layer_output = self.has(LAYERED) && self.layer_wants_write();
        // A local close says goodbye (TLS `close_notify`), and so does the end the peer
        // announced: RFC 8446 §6.1 and RFC 5246 §7.2.1 ask for ours in answer.
        let owed = self.has(LAYERED)
            && !self.has(CONNECTING)
            && self.layer_goodbye(matches!(cause, CloseCause::Local | CloseCause::Eof));
        // The layer's output is lost only if its last flush could not send it and no
        // lingering goodbye will (a flush that sent everything lost nothing).
        if self.wbuf_len.get() > 0 || (layer_output && !owed && self.layer_wants_write()) {
            self.set(LOST_OUTPUT);
        }
        self.set(CLOSED);
        self.clear(CONNECTING | READABLE | WRITABLE);
        self.set_cause(cause);
        if self.has(REGISTERED) {
            self.io_loop.discard_handler(self.fd);
            self.clear(REGISTERED | ARMED_READ | ARMED_WRITE);
        }
        let file = self.file.borrow_mut().take();
        match file {
            // What the layer could not send yet goes out after the close, on the loop.
            Some(file) if owed => self.linger_for_goodbye(file),
            other => drop(other),
        }
        let queued = self.wbuf.borrow_mut().take();
        self.wbuf_len.set(0);
        drop(queued);
        self.wake_reader();
        self.wake_writers();
        if let Some(cb) = self.take_close_callback() {
            self.io_loop.add_callback(cb);
        }
    }

    /// Takes the close callback out, if one is set (drop it with no borrow held: its
    /// captures may touch the stream).
    pub(crate) fn take_close_callback(&self) -> Option<Box<dyn FnOnce()>> {
        self.cold.borrow_mut().as_mut()?.close_callback.take()
    }

    /// Closes as [`IoStream::close`](crate::IoStream::close) does (the layer's goodbye
    /// included), less the close callback: how the last handle's drop closes, since
    /// dropping is not an event.
    pub(crate) fn close_dropped(self: &Rc<Self>) {
        drop(self.take_close_callback());
        self.close_with(CloseCause::Local);
    }
}

impl FdHandler for Inner {
    fn on_event(self: Rc<Self>, _fd: RawFd, ready: Ready) {
        Inner::on_event(&self, ready);
    }

    /// What an event touches past this state: the read waker's (a server's connection
    /// table keeps one per connection).
    fn prefetch(&self) {
        let w = self.read_waker.take();
        if let Some(w) = &w {
            squall_poller::sys::prefetch(w.data());
        }
        self.read_waker.set(w);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.has(REGISTERED) {
            self.io_loop.discard_handler(self.fd);
        }
    }
}
