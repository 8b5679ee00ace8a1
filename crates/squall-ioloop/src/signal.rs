//! OS signals as loop callbacks: [`IoLoop::add_signal_handler`] (asyncio's
//! `loop.add_signal_handler`, which Tornado 5+ programs use), with no `unsafe` for the
//! caller and none in this crate.
//!
//! Each handler is a self-pipe: a Unix socket pair whose write end the process-wide
//! signal handler of the `signal-hook` crate writes one byte to (with `send`,
//! `MSG_DONTWAIT`: async-signal-safe, and chained with any other handler of the same
//! signal), and whose read end is an ordinary fd on the loop. The callback therefore
//! runs on the loop's thread, at its next iteration, like any fd handler, and may do
//! anything (allocate, log, start a shutdown).
//!
//! The signal numbers are re-exported here (`squall_ioloop::signal::SIGTERM`...), so
//! a program needs no `libc` to name them.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub use signal_hook::consts::signal::*;
/// Sends `signal` to this process (`raise(3)`), for tests and self-signalling.
pub use signal_hook::low_level::raise;
use signal_hook::SigId;

use crate::{Interest, IoLoop};

/// A handler added by [`IoLoop::add_signal_handler`]; pass it to
/// [`IoLoop::remove_signal_handler`] to take it away. Dropping the value leaves the
/// handler in place (as with [`IoLoop::add_handler`]); it goes when the loop closes.
pub struct SignalHandler {
    signal: i32,
    fd: RawFd,
    /// Whether the handler is still registered (it goes with the loop, too).
    alive: Rc<Cell<bool>>,
}

impl SignalHandler {
    /// The signal number.
    pub fn signal(&self) -> i32 {
        self.signal
    }

    /// Whether the handler is still installed (not removed, loop not closed).
    pub fn is_active(&self) -> bool {
        self.alive.get()
    }
}

impl fmt::Debug for SignalHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHandler")
            .field("signal", &self.signal)
            .field("active", &self.alive.get())
            .finish()
    }
}

/// Owned by the loop's fd handler: when that handler is dropped (removed, or the loop
/// closed), the process-wide action is unregistered, which also closes the write end.
struct Registration {
    signal: i32,
    id: SigId,
    alive: Rc<Cell<bool>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.id);
        release(self.signal);
        self.alive.set(false);
    }
}

/// Per signal: how many of our handlers are installed in the process, and the flag of
/// a signal-hook action that runs the signal's default action while none is. A signal
/// whose handlers are all gone behaves as before the first was added (SIGTERM ends the
/// process again) instead of being ignored, which is what signal-hook would leave.
static INSTALLED: Mutex<Vec<(i32, usize, Arc<AtomicBool>)>> = Mutex::new(Vec::new());

/// Counts one more handler of `signal`, installing the default-action fallback the
/// first time the signal is seen.
fn acquire(signal: i32) -> io::Result<()> {
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, count, none)) = installed.iter_mut().find(|(s, _, _)| *s == signal) {
        *count += 1;
        none.store(false, Ordering::SeqCst);
        return Ok(());
    }
    let none = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register_conditional_default(signal, none.clone())?;
    installed.push((signal, 1, none));
    Ok(())
}

/// Counts one handler of `signal` less; at zero the default action is back.
fn release(signal: i32) {
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, count, none)) = installed.iter_mut().find(|(s, _, _)| *s == signal) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            none.store(true, Ordering::SeqCst);
        }
    }
}

impl IoLoop {
    /// Runs `callback` on this loop's thread whenever the process receives `signal`
    /// (`SIGTERM`, `SIGINT`, `SIGHUP`, `SIGUSR1`... from [`crate::signal`]): asyncio's
    /// `loop.add_signal_handler`.
    ///
    /// The callback runs at the loop's next iteration after the signal, once for any
    /// number of signals that arrived since it last ran (the kernel merges pending
    /// signals too). Several handlers, on one loop or on the loops of several threads,
    /// may watch the same signal: each runs. The signal's default action (ending the
    /// process, for `SIGTERM` and `SIGINT`) does not happen while a handler is
    /// installed, and comes back when the last one goes.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a signal that cannot be caught or that signals a fault
    /// (`SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGILL`, `SIGFPE`; signal-hook's `FORBIDDEN`
    /// list) or that does not exist; the OS error of creating the socket pair or of
    /// `sigaction`; the loop's error registering the fd (closed loop).
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use squall_ioloop::{signal::SIGUSR1, IoLoop};
    ///
    /// let io_loop = IoLoop::new()?;
    /// let got = Rc::new(Cell::new(false));
    /// let (l, g) = (io_loop.clone(), got.clone());
    /// let handler = io_loop.add_signal_handler(SIGUSR1, move || {
    ///     g.set(true);
    ///     l.stop();
    /// })?;
    /// io_loop.add_callback(|| squall_ioloop::signal::raise(SIGUSR1).unwrap());
    /// let guard = io_loop.call_later(Duration::from_secs(10), || panic!("no signal"));
    /// io_loop.start()?;
    /// io_loop.remove_timeout(guard);
    /// io_loop.remove_signal_handler(&handler);
    /// assert!(got.get());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_signal_handler<F: FnMut() + 'static>(
        &self,
        signal: i32,
        mut callback: F,
    ) -> io::Result<SignalHandler> {
        if signal_hook::consts::FORBIDDEN.contains(&signal) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("signal {signal} cannot be handled (it cannot be caught, or it reports a fault)"),
            ));
        }
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        let fd = reader.as_raw_fd();
        acquire(signal)?;
        // Takes the write end; unregistering closes it.
        let id = match signal_hook::low_level::pipe::register(signal, writer) {
            Ok(id) => id,
            Err(e) => {
                release(signal);
                return Err(e);
            }
        };
        let alive = Rc::new(Cell::new(true));
        let registration = Registration {
            signal,
            id,
            alive: alive.clone(),
        };
        let handler = move |_fd: RawFd, _ready| {
            // Empty the pipe first, then act: a signal arriving during the callback
            // leaves a byte that runs it again (signal-hook's "correct order").
            let mut buf = [0u8; 64];
            loop {
                match (&reader).read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log::error!("signal {signal}: reading the self-pipe failed: {e}");
                        break;
                    }
                }
            }
            let _keep = &registration;
            callback();
        };
        // On error the closure is dropped, and with it the registration.
        self.add_handler(fd, Interest::READ, handler)?;
        Ok(SignalHandler { signal, fd, alive })
    }

    /// Removes a handler added by [`add_signal_handler`](Self::add_signal_handler);
    /// returns whether it was still installed. Once the last handler of a signal in
    /// the process is gone (removed, or its loop closed), the signal's default action
    /// is back: SIGTERM ends the process again.
    pub fn remove_signal_handler(&self, handler: &SignalHandler) -> bool {
        if !handler.alive.get() {
            return false;
        }
        // `alive` guards against a reused fd number: it turns false when the loop
        // drops the handler, whatever the reason.
        self.discard_handler(handler.fd)
    }
}
