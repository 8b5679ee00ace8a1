//! A door from squall's `IoLoop` to the tokio ecosystem: run tokio-based futures (a
//! database driver, an HTTP API client, anything that calls `tokio::spawn` or needs
//! tokio's reactor) from a squall handler, and await their results on the loop.
//!
//! squall stays its own reactor. A [`TokioBridge`] owns (or borrows) a tokio runtime
//! that runs on threads of its own; [`TokioBridge::run`] spawns a future there and
//! returns a [`Bridged`] future that the squall task awaits. When the tokio task
//! finishes, tokio wakes the squall task through its waker, which is `Send`: the wake
//! goes through the loop's remote queue and waker fd, as any wake from another thread
//! does. Nothing of tokio runs on the loop's thread, and nothing of squall on tokio's.
//!
//! ```text
//!  loop thread (squall)                     "squall-tokio" thread (tokio runtime)
//!  handler: bridge.run(fut).await  --spawn-->  fut runs (tokio I/O, timers, spawn)
//!        ... serves other requests ...          |
//!  task polled again, gets the output <--wake---  fut done: JoinHandle wakes our waker
//! ```
//!
//! A call costs a task spawn on tokio, a wake of the tokio thread, and a wake of the
//! loop through its waker fd; BENCHMARKS.md has the figure. Futures that need no tokio
//! (squall's own streams, `IoStream` under the `tokio` I/O traits) should simply be
//! awaited on the loop.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use squall_ioloop::IoLoop;
//! use squall_tokio::TokioBridge;
//!
//! let bridge = TokioBridge::new()?;
//! let io_loop = IoLoop::new()?;
//! let answer = io_loop.run_sync(async move {
//!     // tokio's timer: it panics outside a tokio runtime, and works through the bridge.
//!     bridge
//!         .run(async {
//!             tokio::time::sleep(Duration::from_millis(1)).await;
//!             42
//!         })
//!         .await
//! }, Some(Duration::from_secs(10)))??;
//! assert_eq!(answer, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Which runtime
//!
//! [`TokioBridge::new`] starts a current-thread runtime on one helper thread (tokio's
//! I/O and timer drivers enabled): enough for clients that mostly wait on the network.
//! To spread tokio work over several threads, build a multi-thread runtime yourself
//! and pass its handle to [`TokioBridge::from_handle`]. Clones of a bridge share the
//! runtime, so one bridge can serve every loop of a multi-threaded server; the runtime
//! that `new` started shuts down when the last clone is dropped: its async tasks are
//! cancelled and its thread ends on its own, unjoined, while `spawn_blocking` work
//! still running (which cannot be cancelled) finishes on its own thread, unawaited, so
//! that the drop never blocks the loop that makes it, even when a task holds the tokio
//! thread without yielding.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use squall_ioloop::JoinError;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// A handle to a tokio runtime that squall's futures can hand work to. Cheap to clone,
/// `Send + Sync`.
#[derive(Clone)]
pub struct TokioBridge {
    handle: Handle,
    /// The runtime thread `new` started (`None` for a borrowed runtime).
    owned: Option<Arc<OwnedRuntime>>,
}

/// The helper thread of a runtime made by [`TokioBridge::new`]: told to stop (not
/// joined) when the last bridge goes.
struct OwnedRuntime {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TokioBridge {
    /// Starts a tokio current-thread runtime, with its I/O and timer drivers, on a
    /// helper thread named `squall-tokio`.
    ///
    /// # Errors
    ///
    /// The OS error of building the runtime (its epoll and timer) or starting the
    /// thread.
    pub fn new() -> io::Result<TokioBridge> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        // The thread is never joined (its handle is dropped here): it ends once the
        // task it runs yields and the runtime has shut down, and a task that holds it
        // without yielding (blocking in async code, against tokio's rules) would
        // otherwise hold up the loop that drops the last bridge.
        std::thread::Builder::new()
            .name("squall-tokio".to_owned())
            .spawn(move || {
                // Runs spawned tasks until told to stop; then the shutdown cancels
                // whatever async work is still running there. Work handed to
                // `spawn_blocking` (a host-name lookup, `tokio::fs`) cannot be
                // cancelled: it finishes on its own thread, unawaited, since the
                // thread that drops the last bridge is a loop's, which must not wait
                // for it (tokio's plain drop would).
                let _ = runtime.block_on(stopped);
                runtime.shutdown_background();
            })?;
        Ok(TokioBridge {
            handle,
            owned: Some(Arc::new(OwnedRuntime { stop: Some(stop) })),
        })
    }

    /// A bridge to a runtime you own (a multi-thread runtime, or the one your program
    /// already has). Keep the runtime alive as long as the bridge is used: futures
    /// handed to a runtime that has shut down resolve to [`JoinError::Cancelled`].
    pub fn from_handle(handle: Handle) -> TokioBridge {
        TokioBridge {
            handle,
            owned: None,
        }
    }

    /// The runtime's handle (to `spawn` on it yourself, or `enter` it).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Spawns `future` on the tokio runtime and returns a future, to await on the
    /// squall loop, of its output. The work starts at once, whether or not the result
    /// is awaited; dropping the [`Bridged`] future cancels it (tokio drops it at its
    /// next await point), as dropping is how Rust cancels.
    ///
    /// # Errors
    ///
    /// The [`Bridged`] future resolves to [`JoinError::Panicked`] if `future` panicked
    /// (the runtime goes on), and to [`JoinError::Cancelled`] if the runtime shut down
    /// first.
    ///
    /// Build tokio-based clients inside the future (or in an earlier `run`): their
    /// constructors often need the runtime's context, which only the tokio thread has.
    pub fn run<F>(&self, future: F) -> Bridged<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Bridged {
            join: self.handle.spawn(future),
        }
    }
}

impl fmt::Debug for TokioBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioBridge")
            .field("runtime", &self.handle.runtime_flavor())
            .field("owned", &self.owned.is_some())
            .finish()
    }
}

/// The output of a future run by [`TokioBridge::run`], awaited on the squall loop.
/// Dropping it cancels the tokio task.
#[must_use = "the work runs anyway; dropping this cancels it"]
pub struct Bridged<T> {
    join: tokio::task::JoinHandle<T>,
}

impl<T> Future for Bridged<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.join).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(v)) => Poll::Ready(Ok(v)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(match e.try_into_panic() {
                Ok(payload) => JoinError::Panicked(payload),
                Err(_) => JoinError::Cancelled,
            })),
        }
    }
}

impl<T> Drop for Bridged<T> {
    fn drop(&mut self) {
        // A no-op once the task has finished.
        self.join.abort();
    }
}

impl<T> fmt::Debug for Bridged<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridged")
            .field("finished", &self.join.is_finished())
            .finish()
    }
}
