//! The blocked-loop watchdog: a thread that reads a heartbeat the loop writes and logs,
//! while the loop is still stuck, which callback it is stuck in. No signals (Tornado's
//! `set_blocking_signal_threshold` used SIGALRM and was dropped in 5.0).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// What the loop publishes: `(sequence << 32) | origin`, where origin 0 means "idle in
/// poll" and `n > 0` is the `n - 1`th interned callback origin.
struct Heartbeat {
    beat: AtomicU64,
    origins: Mutex<Vec<&'static Location<'static>>>,
    stop: AtomicBool,
}

/// A hasher for pointer-sized keys (one multiply), for the loop-side origin table.
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The loop's side of a running watchdog.
pub(crate) struct Watch {
    hb: Arc<Heartbeat>,
    /// Origin address to its index in `hb.origins` (loop-local, no lock on a hit).
    interned: RefCell<HashMap<usize, u32, BuildHasherDefault<AddrHasher>>>,
    seq: Cell<u32>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watch {
    pub(crate) fn start(threshold: Duration, loop_name: String) -> io::Result<Watch> {
        let hb = Arc::new(Heartbeat {
            beat: AtomicU64::new(0),
            origins: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let theirs = hb.clone();
        let thread = thread::Builder::new()
            .name(format!("squall-watchdog-{loop_name}"))
            .spawn(move || watch(theirs, threshold))?;
        Ok(Watch {
            hb,
            interned: RefCell::new(HashMap::default()),
            seq: Cell::new(0),
            thread: Some(thread),
        })
    }

    fn next_seq(&self) -> u64 {
        let s = self.seq.get().wrapping_add(1);
        self.seq.set(s);
        u64::from(s) << 32
    }

    /// The loop is about to run the callback added at `origin`: one relaxed store (plus
    /// a table insert the first time an origin is seen).
    #[inline]
    pub(crate) fn busy(&self, origin: &'static Location<'static>) {
        let key = origin as *const Location<'static> as usize;
        let idx = match self.interned.borrow().get(&key) {
            Some(&i) => i,
            None => u32::MAX,
        };
        let idx = if idx == u32::MAX {
            self.intern(key, origin)
        } else {
            idx
        };
        let seq = self.next_seq();
        self.hb
            .beat
            .store(seq | u64::from(idx + 1), Ordering::Relaxed);
    }

    #[cold]
    fn intern(&self, key: usize, origin: &'static Location<'static>) -> u32 {
        let mut origins = self
            .hb
            .origins
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let idx = u32::try_from(origins.len()).unwrap_or(u32::MAX - 1);
        origins.push(origin);
        self.interned.borrow_mut().insert(key, idx);
        idx
    }

    /// The loop is about to wait in poll (or leave `start`): not blocked.
    #[inline]
    pub(crate) fn idle(&self) {
        let seq = self.next_seq();
        self.hb.beat.store(seq, Ordering::Relaxed);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.hb.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            if t.join().is_err() {
                log::error!("IOLoop watchdog thread panicked");
            }
        }
    }
}

fn watch(hb: Arc<Heartbeat>, threshold: Duration) {
    let tick = (threshold / 4).clamp(Duration::from_millis(1), Duration::from_millis(250));
    let mut last = hb.beat.load(Ordering::Relaxed);
    let mut since = Instant::now();
    let mut reported: Option<Instant> = None;
    loop {
        thread::park_timeout(tick);
        if hb.stop.load(Ordering::Acquire) {
            return;
        }
        let beat = hb.beat.load(Ordering::Relaxed);
        let now = Instant::now();
        if beat != last {
            last = beat;
            since = now;
            reported = None;
            continue;
        }
        let origin = (beat & 0xffff_ffff) as usize;
        if origin == 0 {
            continue;
        }
        let blocked = now.duration_since(since);
        let due = reported.is_none_or(|r| now.duration_since(r) >= threshold);
        if blocked >= threshold && due {
            let name = hb
                .origins
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(origin - 1)
                .map(|l| l.to_string())
                .unwrap_or_else(|| "<unknown>".into());
            log::warn!(
                "IOLoop blocked for {blocked:.3?} (threshold {threshold:?}), still in the callback added at {name}"
            );
            reported = Some(now);
        }
    }
}
