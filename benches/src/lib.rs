//! Shared helpers for squall's benchmarks, and the two tools of `cargo xtask bench`
//! that are ours rather than peers':
//!
//! - `floor`: "the floor", a bare epoll responder that counts request terminators and
//!   writes fixed responses: the syscall cost alone, what squall is measured against
//!   (binary `floor`);
//! - `loadgen`: a one-thread epoll HTTP/1.1 load generator used when `wrk` is absent
//!   (binary `loadgen`), which also holds idle connections for the memory run and
//!   drives the echo run.
//!
//! Both are epoll programs, so they (and `sys`) exist on Linux only; on other
//! platforms the library is empty and the two binaries say so and exit. The criterion
//! benches build everywhere.
//!
//! # Example
//!
//! ```
//! # #[cfg(target_os = "linux")] {
//! use std::net::TcpListener;
//! use std::time::Duration;
//! use squall_benches::{floor::Floor, loadgen};
//!
//! let mut floor = Floor::new(TcpListener::bind("127.0.0.1:0")?)?;
//! let addr = floor.local_addr()?;
//! let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
//! let server = std::thread::spawn({
//!     let stop = stop.clone();
//!     move || -> std::io::Result<()> {
//!         while !stop.load(std::sync::atomic::Ordering::Relaxed) {
//!             floor.turn(Some(Duration::from_millis(20)))?;
//!         }
//!         Ok(())
//!     }
//! });
//! let mut cfg = loadgen::Config::new(addr);
//! cfg.connections = 2;
//! cfg.duration = Duration::from_millis(100);
//! let report = loadgen::run(&cfg)?;
//! assert!(report.requests > 0);
//! assert_eq!(report.errors.total(), 0);
//! stop.store(true, std::sync::atomic::Ordering::Relaxed);
//! server.join().unwrap()?;
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```

#[cfg(target_os = "linux")]
pub mod floor;
#[cfg(target_os = "linux")]
pub mod loadgen;
#[cfg(target_os = "linux")]
pub mod sys;
