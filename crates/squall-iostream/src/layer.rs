//! [`Layer`]: a byte transform between a stream's fd and its buffers. TLS is the one
//! squall ships (in `squall-tls`): ciphertext read from the fd comes out as plaintext
//! for the read engine, and plaintext taken from the write queue goes to the fd as
//! ciphertext. The read engine, the write queue, the limits, the close causes and every
//! read kind (`read_until`, `read_bytes`, `read_parse`...) stay the stream's own: a
//! layer only replaces the three syscalls of `fdio.rs`.

use std::any::Any;
use std::cell::Cell;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use squall_ioloop::{Interest, Ready, Timeout};

use crate::error::{CloseCause, StreamError};
use crate::state::*;
use crate::stream::IoStream;
use crate::wqueue::queued;

/// A byte transform between a stream's fd and its buffers, installed with
/// [`IoStream::set_layer`]. TLS is the layer squall ships (`squall-tls`).
///
/// The stream calls the layer where it would call the OS, always on its own loop's
/// thread, and never while user code runs. A layer reports errors as `io::Error`s; the
/// stream closes with them as the cause ([`CloseCause::Io`], or
/// [`CloseCause::Reset`] for a reset), so a layer's own error type travels inside the
/// `io::Error`.
pub trait Layer: Any {
    /// Reads transformed bytes into `dst`, reading from `fd` as needed (and writing to
    /// it what the protocol must send meanwhile, as a TLS handshake does).
    ///
    /// Returns fewer than `dst.len()` bytes only when `fd` has nothing more for now and
    /// nothing is held back in the layer: the stream then waits for the fd to be
    /// readable. (The stream's registration is edge-triggered: a short read that left
    /// bytes in the fd would wait for a report that does not come.) `Ok(0)` is the end
    /// of the stream; `WouldBlock` means nothing can be read until the fd is readable
    /// again. `dst` is never empty.
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above; any other error closes the stream with it as the cause.
    fn read(&mut self, fd: &File, dst: &mut [u8]) -> io::Result<usize>;

    /// Takes bytes from `src` to send through `fd`; returns how many were taken (maybe
    /// fewer than offered, maybe 0, when `fd` is full or the layer [is not
    /// ready](Layer::is_ready)).
    ///
    /// # Errors
    ///
    /// Any error closes the stream with it as the cause (`WouldBlock` is treated as
    /// `Ok(0)`).
    fn write(&mut self, fd: &File, src: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Sends what the layer holds for the peer. `Ok(())` when nothing is left.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when `fd` is full (the stream waits for WRITE and calls again); any
    /// other error closes the stream.
    fn flush(&mut self, fd: &File) -> io::Result<()>;

    /// Reads from `fd` whatever it has and processes it, keeping any data received for
    /// a later [`read`](Layer::read): how the stream moves a handshake on while nobody
    /// reads. While the layer is not [ready](Layer::is_ready) afterwards, the fd must
    /// have had nothing more (the stream waits for its next report); a drive that made
    /// the layer ready may stop early (the stream reads next).
    ///
    /// # Errors
    ///
    /// Any error but `WouldBlock` closes the stream with it as the cause; `Ok(true)`
    /// means the fd reached end of file.
    fn drive(&mut self, fd: &File) -> io::Result<bool>;

    /// Whether bytes wait in the layer to be sent.
    fn wants_write(&self) -> bool;

    /// Whether bytes received are held in the layer, so a read must not wait for the fd.
    fn has_buffered_input(&mut self) -> bool;

    /// Whether the layer carries data (a TLS handshake is done). While it is not, writes
    /// wait, and the stream keeps READ armed to move it on.
    fn is_ready(&self) -> bool;

    /// The stream is closing (or its write side shutting down): queue the goodbye the
    /// protocol sends (a TLS `close_notify`), which [`flush`](Layer::flush) sends. If
    /// the fd has no room for all of it at a close, the stream is closed for its users
    /// but the loop keeps the fd and calls [`flush`](Layer::flush) again on its WRITE
    /// reports until the layer holds nothing, the fd fails, or
    /// [`GOODBYE_TIMEOUT`] has passed.
    fn close(&mut self);

    /// The stream is about to close its fd: read, without waiting, what the protocol
    /// sent that nobody will read (a TLS 1.3 server's session tickets, which a client
    /// that only writes never reads; after a failure, whatever the peer sent since). A
    /// socket closed with bytes unread is reset rather than closed, and a reset makes
    /// the peer's kernel drop what it had not read yet of ours (the alert that says
    /// why). What is read here may be dropped. The default reads nothing.
    fn drain(&mut self, fd: &File) {
        let _ = fd;
    }

    /// The layer as `Any`, so its owner can reach its own type.
    fn as_any(&self) -> &dyn Any;

    /// The layer as `Any`, mutably.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// What a layered write is blocked on.
pub(crate) enum LayerWrite {
    /// The layer holds ciphertext the fd would not take: wait for WRITE.
    FdFull,
    /// The layer is not ready (a handshake runs): wait for READ.
    NotReady,
}

/// How a layered write of the queue ended.
pub(crate) enum LayeredWrite {
    /// The queue is empty and the layer holds nothing to send.
    Done,
    /// Waiting for the fd (or the handshake).
    Blocked(LayerWrite),
    /// The layer or the fd failed: the stream closes with this.
    Failed(io::Error),
}

impl Inner {
    /// Runs `f` on the layer. `f` must not call back into the stream.
    pub(crate) fn with_layer<R>(&self, f: impl FnOnce(&mut dyn Layer) -> R) -> Option<R> {
        if !self.has(LAYERED) {
            return None;
        }
        let mut cold = self.cold.borrow_mut();
        let layer = cold.as_mut()?.layer.as_mut()?;
        Some(f(&mut **layer))
    }

    /// The layered `read(2)`: see [`Layer::read`]. Whatever the layer has to send
    /// meanwhile (a handshake's reply) is sent, or WRITE armed for it.
    pub(crate) fn layer_read(self: &Rc<Self>, buf: &mut [u8]) -> io::Result<usize> {
        // One borrow of the fd and the layer for the read and the questions after it.
        let (res, finished, wants_write) = {
            let file = self.file.borrow();
            let Some(file) = file.as_ref() else {
                return Ok(0);
            };
            let mut cold = self.cold.borrow_mut();
            let Some(layer) = cold.as_mut().and_then(|c| c.layer.as_mut()) else {
                return Ok(0);
            };
            let was_pending = !layer.is_ready();
            let res = layer.read(file, buf);
            // Short, yet the layer holds more (the end of the stream read with the last
            // data): the read after this one must not wait for the fd.
            if matches!(res, Ok(n) if n > 0 && n < buf.len()) && layer.has_buffered_input() {
                self.set(LAYER_MORE);
            }
            (res, was_pending && layer.is_ready(), layer.wants_write())
        };
        if finished {
            // The handshake finished under this read: writes queued meanwhile go, and
            // `wait_for_handshake` wakes.
            self.set(WRITABLE);
            self.handle_write();
            self.wake_writers();
        } else if wants_write {
            self.handle_write();
        }
        res
    }

    /// The layered write of the queue: what the layer holds goes first, then the queue,
    /// taken by the layer as it can, until both are empty or the fd (or the handshake)
    /// blocks. One borrow of the fd and the layer for it all; the caller acts on the
    /// outcome once they are released.
    pub(crate) fn layer_write_queue(&self) -> LayeredWrite {
        let file = self.file.borrow();
        let Some(file) = file.as_ref() else {
            return LayeredWrite::Done;
        };
        let mut cold = self.cold.borrow_mut();
        let Some(layer) = cold.as_mut().and_then(|c| c.layer.as_mut()) else {
            return LayeredWrite::Done;
        };
        loop {
            if layer.wants_write() {
                match layer.flush(file) {
                    Ok(()) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) =>
                    {
                        return LayeredWrite::Blocked(LayerWrite::FdFull)
                    }
                    Err(e) => return LayeredWrite::Failed(e),
                }
            }
            if self.wbuf_len.get() == 0 {
                return LayeredWrite::Done;
            }
            if !layer.is_ready() {
                return LayeredWrite::Blocked(LayerWrite::NotReady);
            }
            let res = {
                let wbuf = self.wbuf.borrow();
                match queued(&wbuf) {
                    // The usual case (a response is one chunk): no array of slices to
                    // fill first.
                    [only] => layer.write(file, &[IoSlice::new(only)]),
                    chunks => {
                        let mut slices = [IoSlice::new(&[]); 64];
                        let mut n = 0;
                        for chunk in chunks.iter().take(slices.len()) {
                            slices[n] = IoSlice::new(chunk);
                            n += 1;
                        }
                        layer.write(file, &slices[..n])
                    }
                }
            };
            match res {
                Ok(w) if w > 0 => self.consume_written(w),
                Ok(_) => return LayeredWrite::Blocked(LayerWrite::FdFull),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return LayeredWrite::Blocked(LayerWrite::FdFull)
                }
                Err(e) => return LayeredWrite::Failed(e),
            }
        }
    }

    /// Sends what the layer holds: `Ok(true)` when it is all gone.
    pub(crate) fn layer_flush(&self) -> io::Result<bool> {
        match self.file.borrow().as_ref() {
            Some(file) => self.layer_flush_on(file),
            None => Ok(true),
        }
    }

    /// [`layer_flush`](Inner::layer_flush) through `file`: the stream's fd, or the one
    /// a [`Goodbye`] keeps after the close.
    fn layer_flush_on(&self, file: &File) -> io::Result<bool> {
        match self.with_layer(|l| l.flush(file)) {
            None | Some(Ok(())) => Ok(true),
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Some(Err(e)) => Err(e),
        }
    }

    /// Whether the layer holds bytes to send (never, for a stream without one).
    pub(crate) fn layer_wants_write(&self) -> bool {
        self.has(LAYERED) && self.with_layer(|l| l.wants_write()) == Some(true)
    }

    /// Whether anything written has not reached the fd: bytes in the queue, or a
    /// layer's output (TLS records) not sent yet.
    pub(crate) fn unsent(&self) -> bool {
        self.wbuf_len.get() > 0 || self.layer_wants_write()
    }

    /// Whether the layer is not ready yet (its handshake runs).
    pub(crate) fn layer_pending(&self) -> bool {
        self.with_layer(|l| !l.is_ready()) == Some(true)
    }

    /// Moves the layer on after a READ event with nobody reading (a handshake): the
    /// fd's bytes go into the layer, its replies out; once it is ready, queued writes
    /// go and waiters wake.
    pub(crate) fn drive_layer(self: &Rc<Self>) {
        let res = {
            let file = self.file.borrow();
            let Some(file) = file.as_ref() else { return };
            self.with_layer(|l| l.drive(file))
        };
        match res {
            None => return,
            Some(Ok(true)) => {
                self.close_with(CloseCause::Eof);
                return;
            }
            Some(Ok(false)) => {}
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Some(Err(e)) => {
                // A peer that fails the handshake: the error goes to whoever waits
                // for it (`wait_for_handshake`, a queued write), logged at debug here.
                self.close_returned(CloseCause::from_io(e));
                return;
            }
        }
        // A drive that ends with the handshake still running ended on an fd with
        // nothing more (`Layer::drive`'s contract); one that finished it may have left
        // bytes in the fd, and the registration is edge-triggered: the next read tries.
        let pending = self.layer_pending();
        if !pending || self.with_layer(|l| l.has_buffered_input()) == Some(true) {
            self.set(READABLE);
        } else {
            self.clear(READABLE);
        }
        if !pending {
            self.set(WRITABLE);
            self.handle_write();
            self.wake_writers();
        } else if self.layer_wants_write() {
            self.handle_write();
        }
    }

    /// Waits for what a layered write is blocked on.
    pub(crate) fn layer_blocked(self: &Rc<Self>, on: LayerWrite) {
        match on {
            LayerWrite::NotReady => {
                // The handshake moves on READ events (`drive_layer`).
                if let Err(e) = self.arm(Interest::READ) {
                    self.close_with(CloseCause::Io(Arc::new(e)));
                }
            }
            LayerWrite::FdFull => self.wait_writable(),
        }
    }

    /// Before the fd closes: the layer's goodbye (after a local close, once what waits
    /// in the fd is read, so that the close is not a reset) or the alert it queued for
    /// a failure, sent in one best-effort try, and then what waits in the fd read (the
    /// layer decides what is worth reading), so that the close does not reset the
    /// alert away.
    ///
    /// Whether the layer is left holding output the fd had no room for (records queued
    /// before the goodbye, a record half sent): the fd must then outlive the stream,
    /// [`linger_for_goodbye`](Inner::linger_for_goodbye), or the peer reads a cut
    /// record and no goodbye.
    pub(crate) fn layer_goodbye(&self, local: bool) -> bool {
        if !self.has(LAYERED) {
            return false;
        }
        if local {
            self.layer_drain();
            self.with_layer(|l| l.close());
        }
        let owed = match self.layer_flush() {
            Ok(done) => !done,
            Err(e) => {
                log::debug!("IoStream fd {}: last layer flush: {e}", self.fd);
                false
            }
        };
        if !local {
            self.layer_drain();
        }
        owed
    }

    /// Keeps the fd of a stream that has just closed until the layer's last output has
    /// gone (sent on WRITE reports), the fd fails, or [`GOODBYE_TIMEOUT`] has passed,
    /// whichever comes first; then what waits in the fd is read (as at any layered
    /// close) and the fd closed. The stream is closed for its users meanwhile: only the
    /// loop holds this, and a closed loop drops it (closing the fd) at once.
    pub(crate) fn linger_for_goodbye(self: &Rc<Self>, file: File) {
        let fd = file.as_raw_fd();
        let goodbye = Rc::new(Goodbye {
            stream: self.clone(),
            file,
            deadline: Cell::new(None),
        });
        let weak = Rc::downgrade(&goodbye);
        let deadline = self.io_loop.call_later(GOODBYE_TIMEOUT, move || {
            if let Some(goodbye) = weak.upgrade() {
                log::debug!(
                    "IoStream fd {fd}: the layer's last output did not go out within {GOODBYE_TIMEOUT:?}"
                );
                goodbye.finish();
            }
        });
        goodbye.deadline.set(Some(deadline));
        // The handler owns the fd: the loop drops it, closing the fd, once it has
        // unregistered it (when the goodbye is done, or the loop closes), or at once if
        // it cannot register it.
        let on_write = move |_: RawFd, _: Ready| goodbye.send();
        if let Err(e) = self.io_loop.add_handler(fd, Interest::WRITE, on_write) {
            log::debug!("IoStream fd {fd}: the layer's last output is dropped: {e}");
            self.io_loop.remove_timeout(deadline);
        }
    }

    fn layer_drain(&self) {
        if let Some(file) = self.file.borrow().as_ref() {
            self.with_layer(|l| l.drain(file));
        }
    }
}

/// How long a layered stream's fd outlives its close to send what the layer still
/// holds (a TLS `close_notify`, and the records the fd had no room for before it): a
/// peer that does not read cannot hold the fd for longer.
///
/// The loop runs this goodbye, as it runs a task: a loop that is not run again lets go
/// of it (closing the fd) when it is closed ([`IoLoop::close`](squall_ioloop::IoLoop::close)),
/// which is how a loop whose tasks hold streams is torn down too.
pub const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);

/// A closed layered stream's fd, kept by the loop until the layer's last output is
/// sent ([`Inner::linger_for_goodbye`]).
struct Goodbye {
    stream: Rc<Inner>,
    file: File,
    deadline: Cell<Option<Timeout>>,
}

impl Goodbye {
    /// A WRITE report: the layer sends what it can; done or failed, the fd closes.
    fn send(&self) {
        match self.stream.layer_flush_on(&self.file) {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => log::debug!("IoStream fd {}: last layer flush: {e}", self.stream.fd),
        }
        self.finish();
    }

    /// Reads what waits in the fd (so that the close is not a reset) and hands the fd
    /// back to the loop, which closes it.
    fn finish(&self) {
        if let Some(deadline) = self.deadline.take() {
            // A no-op if it is the deadline that runs this.
            self.stream.io_loop.remove_timeout(deadline);
        }
        self.stream.with_layer(|l| l.drain(&self.file));
        self.stream.io_loop.discard_handler(self.file.as_raw_fd());
    }
}

impl IoStream {
    /// Installs a byte transform between the fd and the stream's buffers (TLS: what
    /// `squall-tls`'s `start_tls` does). Every read and write after it goes through the
    /// layer; the stream's API, buffers, limits and close causes stay as they are.
    /// The layer starts at once: what it has to send (a TLS client's hello) goes if the
    /// fd takes it, and until it [is ready](Layer::is_ready) READ is armed and the fd
    /// handler moves it on ([`Layer::drive`]), whether or not the stream is used.
    ///
    /// # Errors
    ///
    /// Gives the layer back if the stream is not idle, as Tornado's `start_tls` refuses
    /// it: closed, connecting, a read pending, bytes buffered unread, writes queued, or
    /// a layer already there.
    pub fn set_layer(&self, layer: Box<dyn Layer>) -> Result<(), Box<dyn Layer>> {
        let inner = &self.inner;
        if inner.has(CLOSED | CONNECTING | READ_ACTIVE | LAYERED | SHUT_PENDING)
            || inner.wbuf_len.get() > 0
            || self.buffered_len() > 0
        {
            return Err(layer);
        }
        inner.with_cold(|c| c.layer = Some(layer));
        inner.set(LAYERED);
        // The layer starts at once, as Tornado's SSLIOStream starts its handshake
        // without waiting for its user: its first output (a TLS client's hello) goes if
        // the fd takes it, and while it is not ready READ is armed, on whose reports the
        // fd handler moves it on (`drive_layer`), with nobody reading or writing. So an
        // empty write or a flush needs nothing of its own.
        if inner.has(WRITABLE) && inner.layer_wants_write() {
            inner.handle_write();
        }
        if !inner.has(CLOSED) && inner.layer_pending() {
            inner.layer_blocked(LayerWrite::NotReady);
        }
        Ok(())
    }

    /// Closes the stream with `error` as its cause ([`CloseCause::Io`], or
    /// [`CloseCause::Reset`] for a reset): Tornado's `close(exc_info=...)`. A layer's
    /// owner closes this way when the layer fails outside a read or write (a TLS
    /// handshake timeout). Logged at debug level only: the caller holds the error and
    /// decides whether it is worth a warning (Tornado's `close` logs nothing).
    /// Idempotent, like [`close`](IoStream::close).
    pub fn close_with_error(&self, error: io::Error) {
        self.inner.close_returned(CloseCause::from_io(error));
    }

    /// Whether a layer is installed.
    pub fn has_layer(&self) -> bool {
        self.inner.has(LAYERED)
    }

    /// Runs `f` on the installed layer (`None` without one): how `squall-tls` reaches
    /// its session for the handshake's results. `f` must not use the stream.
    pub fn with_layer<R>(&self, f: impl FnOnce(&mut dyn Layer) -> R) -> Option<R> {
        self.inner.with_layer(f)
    }

    /// Moves the layer on until it [is ready](Layer::is_ready) (a TLS handshake is done):
    /// `Ready(Ok(()))` then, or at once without a layer. Tornado's `wait_for_handshake`
    /// is this in a future. A layer that became ready stays so: once the handshake is
    /// done this is `Ok` even if the stream has closed since (a read that ran the
    /// handshake may have met the peer's end right behind it), as Tornado's handshake
    /// future resolves when the handshake completes.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] with the cause (the layer's error: a failed handshake),
    /// when the stream closed before its layer was ready, or, without a layer, once it
    /// is closed.
    pub fn poll_layer_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), StreamError>> {
        let inner = &self.inner;
        if inner.has(LAYERED) && !inner.layer_pending() {
            return Poll::Ready(Ok(()));
        }
        if inner.has(CLOSED) {
            return Poll::Ready(Err(inner.closed_error()));
        }
        if !inner.layer_pending() {
            return Poll::Ready(Ok(()));
        }
        // Send what the layer holds (a client's hello), then read what came.
        if inner.layer_wants_write() {
            inner.handle_write();
        }
        if inner.has(READABLE) && !inner.has(READ_ACTIVE) {
            inner.drive_layer();
            if inner.has(CLOSED) {
                return Poll::Ready(Err(inner.closed_error()));
            }
            if !inner.layer_pending() {
                return Poll::Ready(Ok(()));
            }
        }
        if let Err(e) = inner.arm(Interest::READ) {
            inner.close_with(CloseCause::Io(Arc::new(e)));
            return Poll::Ready(Err(inner.closed_error()));
        }
        inner.add_write_waker(cx.waker());
        Poll::Pending
    }
}
