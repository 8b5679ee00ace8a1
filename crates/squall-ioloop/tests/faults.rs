//! Fault reporting that does not depend on the backend: the slow-callback log, the
//! watchdog, and a callback triggered from a real signal handler.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use squall_ioloop::{IoLoop, SignalCallback};
use squall_testing::{
    install_logger as init_logging, logs_containing, logs_here, start_guarded, PATIENCE,
};

fn spin(d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// A callback slower than the threshold is logged with where it was added; a fast one
/// is not.
#[test]
fn slow_callback_is_logged() {
    init_logging();
    let l = IoLoop::new().unwrap();
    l.set_slow_callback_threshold(Some(Duration::from_millis(5)));
    l.add_callback(|| spin(Duration::from_millis(30)));
    let lp = l.clone();
    l.add_callback(move || lp.stop());
    start_guarded(&l);
    let slow: Vec<_> = logs_here(log::Level::Warn)
        .into_iter()
        .filter(|m| m.contains("Slow callback"))
        .collect();
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert!(slow[0].contains("faults.rs"), "{slow:?}");
    l.set_slow_callback_threshold(None);
}

/// The watchdog logs while the loop is still blocked, naming the callback: the callback
/// itself waits until the log line appears.
#[test]
fn watchdog_logs_while_blocked() {
    init_logging();
    let l = IoLoop::new().unwrap();
    l.enable_watchdog(Duration::from_millis(20)).unwrap();
    let seen_while_blocked = Rc::new(Cell::new(false));
    let s = seen_while_blocked.clone();
    let line = line!() + 1;
    l.add_callback(move || {
        let t0 = Instant::now();
        let needle = format!("faults.rs:{line}");
        while t0.elapsed() < PATIENCE {
            if logs_containing("IOLoop blocked")
                .iter()
                .any(|m| m.contains(&needle))
            {
                s.set(true);
                break;
            }
            std::thread::yield_now();
        }
    });
    let lp = l.clone();
    l.add_callback(move || lp.stop());
    start_guarded(&l);
    assert!(seen_while_blocked.get());
    l.disable_watchdog();
}

/// A quiet loop (blocked in poll, not in a callback) is not reported by the watchdog.
#[test]
fn watchdog_ignores_an_idle_loop() {
    init_logging();
    let l = IoLoop::new().unwrap();
    l.enable_watchdog(Duration::from_millis(5)).unwrap();
    let line = line!() + 1;
    let lp = l.clone();
    l.call_later(Duration::from_millis(60), move || lp.stop());
    start_guarded(&l);
    l.disable_watchdog();
    let needle = format!("faults.rs:{line}");
    assert!(logs_containing("IOLoop blocked")
        .iter()
        .all(|m| !m.contains(&needle)));
}

static TRIGGER: OnceLock<SignalCallback> = OnceLock::new();

extern "C" fn on_sigusr1(_: libc::c_int) {
    // Async-signal-safe: an atomic load, two atomic stores and one write(2).
    if let Some(t) = TRIGGER.get() {
        t.trigger();
    }
}

/// Tornado's add_callback_from_signal, with a real signal: the handler triggers a
/// pre-registered callback, which runs on the loop thread.
#[test]
fn add_callback_from_signal() {
    let l = IoLoop::new().unwrap();
    let ran = Rc::new(Cell::new(0));
    let (r, lp) = (ran.clone(), l.clone());
    let cb = l.add_signal_callback(move || {
        r.set(r.get() + 1);
        lp.stop();
    });
    assert!(TRIGGER.set(cb).is_ok());
    let handler = on_sigusr1 as extern "C" fn(libc::c_int);
    // SAFETY: the handler only does async-signal-safe work (see on_sigusr1).
    let old = unsafe { libc::signal(libc::SIGUSR1, handler as libc::sighandler_t) };
    assert_ne!(old, libc::SIG_ERR);
    // SAFETY: raise has no memory preconditions; the handler is installed above.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
    start_guarded(&l);
    assert_eq!(ran.get(), 1);
    // SAFETY: restores the default disposition.
    unsafe { libc::signal(libc::SIGUSR1, libc::SIG_DFL) };
}
