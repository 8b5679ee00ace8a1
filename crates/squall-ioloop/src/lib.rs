//! squall's IOLoop: Tornado's reactor (`tornado/ioloop.py`) and a single-threaded
//! futures executor on the same loop (with `gen.sleep` and `gen.with_timeout`).
//!
//! One [`IoLoop`] per thread runs, turn after turn: the callbacks queued before the
//! turn began, then the timers that were due when it began, then one wait on the
//! [`Poller`] (no wait at all if callbacks are queued, else
//! until the next timer) and the handlers of the fds it reported. Futures are tasks on
//! the same queue: a woken task is one more entry in the next turn.
//!
//! # The callback style
//!
//! ```
//! use std::cell::RefCell;
//! use std::io::{Read, Write};
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use squall_ioloop::{Interest, IoLoop};
//!
//! let io_loop = IoLoop::new()?;
//! let (mut ours, theirs) = UnixStream::pair()?;
//! theirs.set_nonblocking(true)?;
//! let got = Rc::new(RefCell::new(Vec::new()));
//!
//! // Register the bare fd (the handler owns the stream); read until end-of-file.
//! let (l, g) = (io_loop.clone(), got.clone());
//! io_loop.add_handler(theirs.as_raw_fd(), Interest::READ, move |fd, ready| {
//!     assert!(ready.is_readable());
//!     let mut buf = [0u8; 64];
//!     match (&theirs).read(&mut buf) {
//!         Ok(0) | Err(_) => {
//!             l.remove_handler(fd); // drops this closure, and so the stream, after it returns
//!             l.stop();
//!         }
//!         Ok(n) => g.borrow_mut().extend_from_slice(&buf[..n]),
//!     }
//! })?;
//! io_loop.add_callback(move || ours.write_all(b"hello").unwrap());
//! // `ours` is dropped after the write: the reader sees end-of-file.
//! let timeout = io_loop.call_later(Duration::from_secs(10), || panic!("too slow"));
//! io_loop.start()?;
//! io_loop.remove_timeout(timeout);
//! assert_eq!(&got.borrow()[..], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The async style
//!
//! ```
//! use std::time::Duration;
//! use squall_ioloop::{sleep, with_timeout, IoLoop};
//!
//! let io_loop = IoLoop::new()?;
//! let answer = io_loop.run_sync(async {
//!     let io_loop = IoLoop::current().expect("run_sync makes the loop current");
//!     let task = io_loop.spawn(async {
//!         sleep(Duration::from_millis(5)).await;
//!         21
//!     });
//!     let slow = with_timeout(Duration::from_millis(5), sleep(Duration::from_secs(60))).await;
//!     assert!(slow.is_err());
//!     task.await.unwrap() * 2
//! }, Some(Duration::from_secs(10)))?;
//! assert_eq!(answer, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Choosing the poller
//!
//! [`IoLoop::new`] takes the platform's default backend (epoll on Linux, kqueue on macOS
//! and FreeBSD, poll(2) elsewhere), or the one
//! named by the environment variable **`SQUALL_POLLER`** (`epoll`, `kqueue`, `poll`,
//! `select`), so CI re-runs every suite above the pollers on each backend.
//! [`IoLoop::with_poller`] takes any [`Poller`].
//!
//! # Threads and signals
//!
//! An `IoLoop` is `!Send`. Other threads get a [`RemoteHandle`] (`Send + Sync`) whose
//! [`add_callback`](RemoteHandle::add_callback) and [`stop`](RemoteHandle::stop) wake a
//! blocked poll through the loop's [`Waker`](squall_poller::Waker) fd; wakes are merged
//! by an atomic flag, so a burst costs one `write(2)`. Signal handlers use
//! [`RemoteHandle::wake`], [`RemoteHandle::stop`] or a pre-registered
//! [`SignalCallback`], none of which allocates or locks.
//!
//! [`IoLoop::add_signal_handler`] turns an OS signal into a callback on the loop's
//! thread (a self-pipe; no `unsafe` for the caller), and
//! [`IoLoop::run_in_executor`] runs blocking work on a bounded [`ThreadPool`] and
//! resolves on the loop: the pool thread wakes the awaiting task through its `Send`
//! waker, which goes through the remote queue like `add_callback`.
//!
//! # Faults
//!
//! A panic in a callback, handler, timer, task or periodic callback (or in the drop of
//! one) is caught, logged with `log::error!` in Tornado's words ("Exception in callback
//! added at src/x.rs:12:5: the message", with what it was for any but a plain callback:
//! "Exception in callback (a task) added at ..."), and the loop goes on. [`IoLoop::set_slow_callback_threshold`] logs callbacks that ran too
//! long; [`IoLoop::enable_watchdog`] starts a thread that logs *while* the loop is still
//! blocked, naming where the callback was added (every callback is named by the
//! `#[track_caller]` location of the call that added it).
//!
//! # Differences from Tornado, and why
//!
//! - **Sources are owned.** `add_handler` takes anything `AsRawFd + 'static` and keeps
//!   it; `remove_handler` hands it back, and `close(true)` drops it, which closes types
//!   that own their fd (`OwnedFd`, `TcpStream`) but never a bare `RawFd`. Python's
//!   `close(all_fds=True)` calls `close()` on whatever was registered; in Rust, dropping
//!   is closing, and ownership says who may do it. Handlers get `(RawFd, Ready)`.
//! - **`IoLoop::current()` returns `Option`** instead of creating a loop.
//! - **`run_sync` resumes a panic** with `resume_unwind` where Tornado re-raises, and its
//!   error type ([`RunSyncError`]) tells a timeout from a stop.
//! - **`with_timeout` drops the inner future** on timeout (Tornado leaves it running):
//!   dropping is how Rust cancels.
//! - **`start()` and `close()` return errors** (`AlreadyRunning`, `Closed`) where Tornado
//!   raises `RuntimeError`.
//! - **Signal-safe callbacks are registered ahead** ([`IoLoop::add_signal_callback`]):
//!   Tornado's `add_callback_from_signal` allocated in the handler, which is not
//!   async-signal-safe.
//! - **The watchdog is back**: Tornado 4's SIGALRM-based blocking log was removed in 5.0;
//!   ours is a thread reading a heartbeat.
//!
//! # Executor design
//!
//! This crate is `#![forbid(unsafe_code)]`, so its wakers are built with the safe
//! [`std::task::Wake`] trait rather than a hand-made `RawWaker` that packs a task id
//! and generation into the data pointer (which needs `unsafe`). What keeps wakes cheap:
//!
//! - Tasks live in a slab; each **slot** gets one `Arc` waker when the slot is first
//!   created, reused by every later task in that slot, so spawning allocates only the
//!   boxed future (once per task, never per poll), and polling passes `&Waker` without a
//!   clone.
//! - A wake on the loop's thread while the loop is current is a thread-local lookup, a
//!   non-atomic "already queued?" check and a queue push: no atomics, no allocation,
//!   duplicate wakes ignored. Cloning or dropping a waker is an uncontended reference
//!   count change (futures that keep a waker compare with `will_wake` first).
//! - From any other thread, a wake queues the slot index on the remote queue and wakes
//!   the fd, exactly like [`RemoteHandle::add_callback`].
//! - A waker kept from an earlier task of the same slot can cause a spurious poll of
//!   the current task, which every future tolerates; it can never reach another loop.
//! - A finished task's output is handed to its [`JoinHandle`] as a `Box<dyn Any>`
//!   (no allocation for `()` and other zero-sized outputs).
//!
//! # Memory per connection
//!
//! Handlers live in a table indexed by fd that grows 256 entries at a time (no
//! doubling slack, entries never move): a handler entry is 64 bytes (one cache line),
//! plus the handler's box (none for a closure that captures nothing, or a handler
//! registered with [`IoLoop::add_weak_handler`]) and, unless the source is a bare
//! `RawFd`, the source's box. Tasks live
//! in a slab that grows by a quarter at a time: a task slot is 72 bytes plus its boxed
//! future and its slot's waker (one `Arc`, made once per slot). The run queue lets go
//! of what a burst made it grow to once it is empty.
//!
//! Dropping (or closing) the loop drops every pending future, callback and timer, with
//! no borrow held, so their drop code may call back into the loop (it finds it closed).
//! A task that holds a strong [`IoLoop`] clone keeps the loop alive (an `Rc` cycle):
//! call [`IoLoop::close`] to tear such a loop down, or hold a `Weak` reference.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod backend;
mod blocking;
mod clock;
mod error;
mod executor;
mod fault;
mod gen;
mod handlers;
mod ioloop;
pub mod logger;
mod pages;
mod periodic;
mod remote;
pub mod signal;
mod task;
mod timer;
mod watchdog;

pub use backend::{default_poller, poller_by_name};
pub use blocking::{run_on, Executor, ExecutorFuture, Job, ThreadPool};
pub use clock::instant_after;
pub use error::{Closed, JoinError, LoopError, PeriodicError, RunSyncError, TimeoutError};
pub use executor::JoinHandle;
pub use fault::{panic_message, panic_text};
pub use gen::{sleep, sleep_until, with_timeout, Sleep};
pub use handlers::FdHandler;
pub use ioloop::{turn_time, IoLoop};
pub use periodic::PeriodicCallback;
pub use remote::{RemoteHandle, SignalCallback};
pub use signal::SignalHandler;
pub use squall_poller::{Interest, Poller, Ready};
pub use timer::{Deadline, Timeout};
