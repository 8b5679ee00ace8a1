//! Tornado's `ioloop_test.py`, in our own words, run against every backend.
//!
//! Each case is a function taking a loop factory; the `suite!` macro instantiates all of
//! them once per backend (a module per backend). The `default` module uses
//! `IoLoop::new()`, which honours `SQUALL_POLLER`, so CI re-runs it on each backend.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use squall_ioloop::{
    sleep, with_timeout, FdHandler, Interest, IoLoop, JoinError, LoopError, PeriodicCallback,
    PeriodicError, Ready, RunSyncError,
};
use squall_testing::{install_logger as init_logging, logs_here, start_guarded, PATIENCE};

type Mk = fn() -> IoLoop;

macro_rules! suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            fn mk() -> squall_ioloop::IoLoop {
                $make
            }
            suite!(@cases
                add_callback_wakeup,
                add_callback_wakeup_other_thread,
                add_callback_from_signal_other_thread,
                add_callback_while_closing,
                add_callback_while_stopping,
                stop_before_start,
                stop_then_start_resumes,
                test_reentrant,
                start_after_stop_in_the_same_turn,
                test_current,
                closing_the_current_loop_clears_current,
                test_multiple_add,
                test_remove_without_add,
                remove_hands_back_the_source,
                test_read_while_writeable,
                test_remove_timeout_after_fire,
                test_remove_timeout_cleanup,
                remove_timeout_inside_timer_cancels_another,
                remove_timeout_of_another_loop_is_a_no_op,
                test_timeout_with_arguments,
                call_later_order_and_delay,
                far_deadlines_are_never_due,
                update_handler_switches_interest,
                handler_removes_itself,
                weak_handler_is_called_while_its_owner_keeps_it,
                handler_closes_fd_pending_in_same_batch,
                many_weak_handlers_in_one_batch,
                reused_fd_number_gets_only_its_own_events,
                close_all_fds_closes_owned_sources,
                test_exception_logging,
                test_spawn_callback_panic_logged,
                a_panicking_drop_of_a_removed_handler_is_contained,
                turn_time_in_a_handler_is_taken_after_the_poll,
                spawn_join_handle,
                join_handle_abort,
                test_add_future_threads,
                add_future_is_deferred,
                remote_waker_wakes_task,
                run_sync_returns_value,
                run_sync_returns_error,
                run_sync_propagates_panic,
                run_sync_times_out,
                run_sync_stopped,
                sleep_and_with_timeout,
                periodic_callback_runs_on_schedule,
                periodic_callback_settings,
                periodic_callback_restarted_from_inside,
                periodic_async_callback_runs_never_overlap,
                periodic_async_restarted_during_a_run_does_not_overlap,
                periodic_callback_survives_a_panicking_panic_payload,
                futures_dropped_on_loop_drop,
                future_drop_code_may_use_the_loop,
                work_given_to_a_closed_loop_is_dropped_at_once,
                signal_callbacks_without_handles_are_let_go,
            );
        }
    };
    (@cases $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                crate::$case(mk);
            }
        )*
    };
}

suite!(default, squall_ioloop::IoLoop::new().expect("IoLoop::new"));

#[cfg(target_os = "linux")]
suite!(
    epoll,
    squall_ioloop::IoLoop::with_poller(Box::new(squall_epoll::Epoll::new().unwrap())).unwrap()
);

suite!(
    poll,
    squall_ioloop::IoLoop::with_poller(Box::new(squall_poll::Poll::new())).unwrap()
);

suite!(
    select,
    squall_ioloop::IoLoop::with_poller(Box::new(squall_select::Select::new())).unwrap()
);

// ------------------------------------------------------------------ helpers

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

fn read_some(fd: RawFd, s: &UnixStream) -> usize {
    assert_eq!(fd, s.as_raw_fd());
    let mut buf = [0u8; 256];
    (&*s).read(&mut buf).unwrap_or(0)
}

/// A value set by another thread, awaited on the loop: exercises cross-thread wakers.
#[derive(Clone, Default)]
struct Slot<T>(Arc<Mutex<(Option<T>, Option<Waker>)>>);

impl<T> Slot<T> {
    fn set(&self, v: T) {
        let w = {
            let mut g = self.0.lock().unwrap();
            g.0 = Some(v);
            g.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl<T> Future for Slot<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut g = self.0.lock().unwrap();
        match g.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Sets its flag when dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

// -------------------------------------------------------------------- cases

/// test_add_callback_wakeup: a callback added from a timer runs on the next iteration,
/// without waiting for anything else.
fn add_callback_wakeup(mk: Mk) {
    let l = mk();
    let called = Rc::new(Cell::new(false));
    let (lp, c) = (l.clone(), called.clone());
    l.add_timeout(l.now(), move || {
        let lp2 = lp.clone();
        lp.add_callback(move || {
            c.set(true);
            lp2.stop();
        });
    });
    start_guarded(&l);
    assert!(called.get());
}

/// test_add_callback_wakeup_other_thread: a remote add_callback wakes a loop blocked in
/// poll with nothing else to do.
fn add_callback_wakeup_other_thread(mk: Mk) {
    let l = mk();
    let remote = l.remote();
    let ran_on = Rc::new(Cell::new(None));
    l.add_callback(move || {
        // The loop is running; the thread's callback arrives while it waits in poll.
        thread::spawn(move || {
            remote
                .add_callback(|| {
                    let l = IoLoop::current().expect("current while running");
                    l.stop();
                })
                .unwrap();
        });
    });
    let r2 = ran_on.clone();
    l.add_callback(move || r2.set(Some(thread::current().id())));
    start_guarded(&l);
    assert_eq!(ran_on.get(), Some(thread::current().id()));
}

/// test_add_callback_from_signal_other_thread: a signal callback triggered from
/// another thread runs on the loop's thread, once per burst.
fn add_callback_from_signal_other_thread(mk: Mk) {
    let l = mk();
    let runs = Rc::new(Cell::new(0));
    let (r, lp) = (runs.clone(), l.clone());
    let trigger = l.add_signal_callback(move || {
        r.set(r.get() + 1);
        lp.stop();
    });
    let t = thread::spawn(move || {
        for _ in 0..3 {
            trigger.trigger();
        }
    });
    t.join().unwrap();
    start_guarded(&l);
    assert_eq!(
        runs.get(),
        1,
        "three triggers before the loop ran coalesce into one run"
    );
}

/// test_add_callback_while_closing: a remote add_callback racing with close gets a
/// clean `Closed` error, never a panic or a lost callback that still runs.
fn add_callback_while_closing(mk: Mk) {
    let (tx, rx) = mpsc::channel();
    let (closing_tx, closing_rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let l = mk();
        tx.send(l.remote()).unwrap();
        let lp = l.clone();
        l.add_callback(move || lp.stop());
        l.start().unwrap();
        closing_tx.send(()).unwrap();
        l.close(true).unwrap();
    });
    let remote = rx.recv().unwrap();
    closing_rx.recv().unwrap();
    let mut refused = false;
    for _ in 0..100_000 {
        if remote.add_callback(|| {}).is_err() {
            refused = true;
            break;
        }
        thread::yield_now();
    }
    t.join().unwrap();
    assert!(refused || remote.add_callback(|| {}).is_err());
    assert!(remote.is_closed());
}

/// A callback added while the loop is stopping runs on the next start, not lost and not
/// run early.
fn add_callback_while_stopping(mk: Mk) {
    let l = mk();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (lp, lg) = (l.clone(), log.clone());
    l.add_callback(move || {
        lp.stop();
        let lg2 = lg.clone();
        lp.add_callback(move || lg2.borrow_mut().push("late"));
        lg.borrow_mut().push("stopping");
    });
    l.start().unwrap();
    assert_eq!(*log.borrow(), vec!["stopping"]);
    let lp = l.clone();
    l.add_callback(move || lp.stop());
    l.start().unwrap();
    assert_eq!(*log.borrow(), vec!["stopping", "late"]);
}

/// Tornado 4: a stop() before start() makes start() return at once, once.
fn stop_before_start(mk: Mk) {
    let l = mk();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    l.add_callback(move || r.set(true));
    l.stop();
    l.start().unwrap();
    assert!(
        !ran.get(),
        "start after stop returns before running anything"
    );
    let lp = l.clone();
    l.add_callback(move || lp.stop());
    l.start().unwrap();
    assert!(ran.get());
}

/// stop then start resumes: pending timers and handlers carry over.
fn stop_then_start_resumes(mk: Mk) {
    let l = mk();
    let (a, mut b) = pair();
    let got = Rc::new(Cell::new(0));
    let (g, lp) = (got.clone(), l.clone());
    l.add_handler(a.as_raw_fd(), Interest::READ, move |fd, _| {
        g.set(g.get() + read_some(fd, &a));
        lp.stop();
    })
    .unwrap();
    let lp = l.clone();
    l.add_callback(move || lp.stop());
    l.start().unwrap();
    assert_eq!(got.get(), 0);
    b.write_all(b"xyz").unwrap();
    start_guarded(&l);
    assert_eq!(got.get(), 3);
}

/// Tornado's contract behind `test_reentrant`, after a stop: a `start()` from a callback
/// that runs after `stop()` in the same turn is an error while the loop unwinds; it
/// never starts a second loop inside the first (nor do `close` and `run_sync`).
fn start_after_stop_in_the_same_turn(mk: Mk) {
    let l = mk();
    let res = Rc::new(RefCell::new(Vec::new()));
    let lp = l.clone();
    l.add_callback(move || lp.stop());
    let (lp, r) = (l.clone(), res.clone());
    l.add_callback(move || {
        // Twice: a first start must not swallow the stop and let a second one nest.
        r.borrow_mut().push(lp.start());
        r.borrow_mut().push(lp.start());
        r.borrow_mut().push(lp.close(false));
        let nested = lp.run_sync(async {}, None);
        assert!(
            matches!(nested, Err(RunSyncError::Loop(LoopError::AlreadyRunning))),
            "{nested:?}"
        );
    });
    start_guarded(&l);
    let res = res.borrow();
    assert_eq!(res.len(), 3);
    for r in res.iter() {
        assert!(matches!(r, Err(LoopError::AlreadyRunning)), "{r:?}");
    }
    // Once it has returned, the loop starts again as usual.
    assert!(!l.is_closed());
    assert_eq!(l.run_sync(async { 7 }, None).unwrap(), 7);
}

/// test_reentrant: start() inside the loop is an error, not a deadlock.
fn test_reentrant(mk: Mk) {
    let l = mk();
    let res = Rc::new(RefCell::new(None));
    let (lp, r) = (l.clone(), res.clone());
    l.add_callback(move || {
        *r.borrow_mut() = Some(lp.start());
        lp.stop();
    });
    start_guarded(&l);
    assert!(matches!(
        res.borrow_mut().take(),
        Some(Err(LoopError::AlreadyRunning))
    ));
    let err = l.run_sync(async {}, None);
    assert!(err.is_ok());
}

/// test_current: the running loop is current; it was not before and is not after.
fn test_current(mk: Mk) {
    let l = mk();
    IoLoop::clear_current();
    assert!(IoLoop::current().is_none());
    let seen = Rc::new(RefCell::new(None));
    let (s, lp) = (seen.clone(), l.clone());
    l.add_callback(move || {
        *s.borrow_mut() = IoLoop::current();
        lp.stop();
    });
    start_guarded(&l);
    assert_eq!(seen.borrow_mut().take().as_ref(), Some(&l));
    assert!(IoLoop::current().is_none());
    l.make_current();
    assert_eq!(IoLoop::current().as_ref(), Some(&l));
    IoLoop::clear_current();
}

/// Tornado's `close` clears the current loop when it is the one closed (the asyncio
/// loop's `close`: `if self.is_current: self._clear_current()`), so nothing made
/// afterwards (a server, a sleep, a connect) lands on a loop that can never run it. A
/// loop made current under a running one and closed meanwhile is not current again
/// when the running one stops.
fn closing_the_current_loop_clears_current(mk: Mk) {
    let l = mk();
    l.make_current();
    assert_eq!(IoLoop::current().as_ref(), Some(&l));
    l.close(true).unwrap();
    assert!(IoLoop::current().is_none(), "a closed loop stays current");
    // Another loop's close leaves the current one alone.
    let (a, b) = (mk(), mk());
    a.make_current();
    b.close(true).unwrap();
    assert_eq!(IoLoop::current().as_ref(), Some(&a));
    // `a` is current (made so above); `runner` runs and closes it from a callback.
    let runner = mk();
    let (r, closed) = (runner.clone(), a.clone());
    runner.add_callback(move || {
        closed.close(true).unwrap();
        r.stop();
    });
    start_guarded(&runner);
    assert!(
        IoLoop::current().is_none(),
        "the loop current before start was closed meanwhile"
    );
}

/// test_multiple_add: a second handler for the same fd is an error.
fn test_multiple_add(mk: Mk) {
    let l = mk();
    let (a, _b) = pair();
    l.add_handler(a.as_raw_fd(), Interest::READ, |_, _| {})
        .unwrap();
    let err = l
        .add_handler(a.as_raw_fd(), Interest::READ, |_, _| {})
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert!(l.remove_handler(a.as_raw_fd()).is_some());
}

/// test_remove_without_add: removing an fd that has no handler is not an error.
fn test_remove_without_add(mk: Mk) {
    let l = mk();
    let (a, _b) = pair();
    assert!(l.remove_handler(a.as_raw_fd()).is_none());
    assert!(l.remove_handler(-1).is_none());
    assert!(l.remove_handler(1 << 20).is_none());
    assert_eq!(
        l.update_handler(a.as_raw_fd(), Interest::WRITE)
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::NotFound
    );
}

/// remove_handler hands back what was registered: the number of a bare fd (the loop
/// keeps no box for it), or the owning source, which stays open until dropped;
/// discard_handler drops it instead.
fn remove_hands_back_the_source(mk: Mk) {
    let l = mk();
    let (a, mut b) = pair();
    let fd = a.as_raw_fd();
    l.add_handler(fd, Interest::READ, |_, _| {}).unwrap();
    let back = l.remove_handler(fd).expect("registered");
    assert_eq!(back.as_raw_fd(), fd);
    assert!(!l.has_handler(fd));
    // An owning source comes back open; dropping it closes the socket.
    l.add_handler(a, Interest::READ, |_, _| {}).unwrap();
    let back = l.remove_handler(fd).expect("registered");
    assert_eq!(back.as_raw_fd(), fd);
    b.write_all(b"still open").unwrap();
    drop(back);
    let mut buf = [0u8; 1];
    // Closed with unread data: the peer sees a reset (or end-of-file).
    match b.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("dropping the source did not close it: {other:?}"),
    }
    // discard_handler drops the source at once.
    let (c, mut d) = pair();
    let cfd = c.as_raw_fd();
    l.add_handler(c, Interest::READ, |_, _| {}).unwrap();
    assert!(l.discard_handler(cfd));
    assert!(!l.discard_handler(cfd));
    assert!(!l.has_handler(cfd));
    assert_eq!(d.read(&mut buf).unwrap(), 0, "discarding closed the source");
}

/// test_read_while_writeable: a READ-only handler of a writable socket gets READ only.
fn test_read_while_writeable(mk: Mk) {
    let l = mk();
    let (a, b) = pair();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (s, lp) = (seen.clone(), l.clone());
    l.add_handler(a.as_raw_fd(), Interest::READ, move |fd, ready| {
        s.borrow_mut().push(ready);
        read_some(fd, &a);
        lp.stop();
    })
    .unwrap();
    // Keep the peer open: a closed peer would add HUP.
    let b = Rc::new(b);
    let b2 = b.clone();
    l.call_later(Duration::from_millis(10), move || {
        (&*b2).write_all(b"asdf").unwrap()
    });
    start_guarded(&l);
    assert_eq!(*seen.borrow(), vec![Ready::READ]);
}

/// test_remove_timeout_after_fire: removing a timeout that ran is a no-op.
fn test_remove_timeout_after_fire(mk: Mk) {
    let l = mk();
    let lp = l.clone();
    let t = l.add_timeout(l.now(), move || lp.stop());
    start_guarded(&l);
    l.remove_timeout(t);
    l.remove_timeout(t);
    assert_eq!(l.pending_timeouts(), 0);
}

/// test_remove_timeout_cleanup: enough add/remove pairs to trigger the heap sweep.
fn test_remove_timeout_cleanup(mk: Mk) {
    let l = mk();
    for _ in 0..2000 {
        let t = l.call_later(Duration::from_secs(3600), || {});
        l.remove_timeout(t);
    }
    assert_eq!(l.pending_timeouts(), 0);
    let lp = l.clone();
    l.add_callback(move || {
        let lp2 = lp.clone();
        lp.add_callback(move || lp2.stop());
    });
    start_guarded(&l);
}

/// A timer that removes another timer due in the same iteration stops it from running.
fn remove_timeout_inside_timer_cancels_another(mk: Mk) {
    let l = mk();
    let at = l.now();
    let victim_ran = Rc::new(Cell::new(false));
    let victim = Rc::new(Cell::new(None));
    let (v, lp) = (victim.clone(), l.clone());
    l.call_at(at, move || lp.remove_timeout(v.get().unwrap()));
    let vr = victim_ran.clone();
    victim.set(Some(l.call_at(at, move || vr.set(true))));
    let lp = l.clone();
    l.call_at(at + Duration::from_millis(1), move || lp.stop());
    start_guarded(&l);
    assert!(!victim_ran.get());
}

/// test_timeout_with_arguments: every way of scheduling, in order.
fn test_timeout_with_arguments(mk: Mk) {
    let l = mk();
    let out = Rc::new(RefCell::new(Vec::new()));
    let o = out.clone();
    l.add_timeout(l.now(), move || o.borrow_mut().push(1));
    let o = out.clone();
    l.add_timeout(Duration::ZERO, move || o.borrow_mut().push(2));
    let o = out.clone();
    l.call_at(l.now(), move || o.borrow_mut().push(3));
    let o = out.clone();
    l.call_later(Duration::ZERO, move || o.borrow_mut().push(4));
    let o = out.clone();
    l.add_timeout(squall_ioloop::Deadline::at_time(l.time()), move || {
        o.borrow_mut().push(5)
    });
    let lp = l.clone();
    l.call_later(Duration::ZERO, move || lp.stop());
    start_guarded(&l);
    assert_eq!(*out.borrow(), vec![1, 2, 3, 4, 5]);
}

/// call_later runs in deadline order (ties in order added), never before its delay.
fn call_later_order_and_delay(mk: Mk) {
    let l = mk();
    let t0 = Instant::now();
    let out = Rc::new(RefCell::new(Vec::new()));
    for (name, ms) in [("c", 30u64), ("a", 10), ("b", 20), ("b2", 20), ("a2", 10)] {
        let o = out.clone();
        l.call_later(Duration::from_millis(ms), move || {
            o.borrow_mut().push((name, ms, t0.elapsed()));
        });
    }
    let lp = l.clone();
    l.call_later(Duration::from_millis(40), move || lp.stop());
    start_guarded(&l);
    let out = out.borrow();
    let names: Vec<_> = out.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(names, vec!["a", "a2", "b", "b2", "c"]);
    for (name, ms, at) in out.iter() {
        assert!(*at >= Duration::from_millis(*ms), "{name} ran after {at:?}");
    }
}

/// Deadlines days, a century or infinitely far away never run and never overflow the
/// poll's timeout (the loop still blocks, and a remote callback still wakes it), while a
/// loop time before the clock's epoch (or NaN) is due at once.
fn far_deadlines_are_never_due(mk: Mk) {
    let l = mk();
    let ran = Rc::new(RefCell::new(Vec::new()));
    let far: [(&str, squall_ioloop::Deadline); 4] = [
        ("3 days", Duration::from_secs(3 * 86_400).into()),
        ("Duration::MAX", Duration::MAX.into()),
        ("f64::MAX", squall_ioloop::Deadline::at_time(f64::MAX)),
        ("infinity", squall_ioloop::Deadline::at_time(f64::INFINITY)),
    ];
    for (name, deadline) in far {
        let r = ran.clone();
        l.add_timeout(deadline, move || r.borrow_mut().push(name));
    }
    for (name, secs) in [("-infinity", f64::NEG_INFINITY), ("NaN", f64::NAN)] {
        let r = ran.clone();
        l.add_timeout(squall_ioloop::Deadline::at_time(secs), move || {
            r.borrow_mut().push(name)
        });
    }
    // Only the far timers are left once the two at the epoch ran: the loop blocks on
    // them until the other thread's callback wakes it.
    let remote = l.remote();
    let t = thread::spawn(move || {
        let stop = remote.clone();
        remote.add_callback(move || stop.stop()).unwrap();
    });
    start_guarded(&l);
    t.join().unwrap();
    assert_eq!(*ran.borrow(), vec!["-infinity", "NaN"]);
    assert_eq!(l.pending_timeouts(), 4, "the far timers wait");
}

/// update_handler replaces the interest: WRITE starts and stops being reported.
fn update_handler_switches_interest(mk: Mk) {
    let l = mk();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (s, lp) = (seen.clone(), l.clone());
    l.add_handler(a, Interest::NONE, move |fd, ready| {
        s.borrow_mut().push(ready);
        lp.update_handler(fd, Interest::NONE).unwrap();
        let lp2 = lp.clone();
        // Two more iterations without WRITE interest, then stop.
        lp.add_callback(move || {
            let lp3 = lp2.clone();
            lp2.add_callback(move || lp3.stop());
        });
    })
    .unwrap();
    l.update_handler(fd, Interest::WRITE).unwrap();
    start_guarded(&l);
    assert_eq!(*seen.borrow(), vec![Ready::WRITE]);
}

/// A handler that removes itself gets no further events; the stream it owned is closed
/// when the handler is dropped (after it returns).
fn handler_removes_itself(mk: Mk) {
    let l = mk();
    let (a, mut b) = pair();
    let calls = Rc::new(Cell::new(0));
    let (c, lp) = (calls.clone(), l.clone());
    l.add_handler(a.as_raw_fd(), Interest::READ, move |fd, _| {
        c.set(c.get() + 1);
        // Do not read: the fd stays readable, so any later call would be a bug.
        assert!(lp.remove_handler(fd).is_some());
        let lp2 = lp.clone();
        lp.add_callback(move || {
            let lp3 = lp2.clone();
            lp2.add_callback(move || lp3.stop());
        });
        let _ = &a;
    })
    .unwrap();
    b.write_all(b"x").unwrap();
    start_guarded(&l);
    assert_eq!(calls.get(), 1);
    // The handler (and the stream it owned) is gone: the peer sees end-of-file.
    // (Unread data was discarded by the close, so a reset is as good as end-of-file.)
    b.set_nonblocking(false).unwrap();
    let mut buf = [0u8; 1];
    match b.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("peer still open: {other:?}"),
    }
}

/// A handler kept by its owner, registered with `add_weak_handler`.
struct Owned {
    io_loop: IoLoop,
    stream: RefCell<UnixStream>,
    seen: RefCell<Vec<(RawFd, Ready, Vec<u8>)>>,
}

impl FdHandler for Owned {
    fn on_event(self: Rc<Self>, fd: RawFd, ready: Ready) {
        let mut buf = [0u8; 16];
        let n = self.stream.borrow_mut().read(&mut buf).unwrap_or(0);
        self.seen.borrow_mut().push((fd, ready, buf[..n].to_vec()));
        self.io_loop.stop();
    }
}

/// `add_weak_handler`: the loop calls the handler while its owner's `Rc` lives, with
/// the fd and the readiness an `add_handler` closure gets; once the owner lets go, an
/// event is dropped (no call, no panic) and the registration stays until removed.
fn weak_handler_is_called_while_its_owner_keeps_it(mk: Mk) {
    let l = mk();
    let (a, mut b) = pair();
    let fd = a.as_raw_fd();
    let owner = Rc::new(Owned {
        io_loop: l.clone(),
        stream: RefCell::new(a),
        seen: RefCell::new(Vec::new()),
    });
    l.add_weak_handler(fd, Interest::READ, &owner).unwrap();
    assert!(l.has_handler(fd));
    assert_eq!(
        l.add_weak_handler(fd, Interest::READ, &owner)
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::AlreadyExists
    );
    b.write_all(b"one").unwrap();
    start_guarded(&l);
    {
        let seen = owner.seen.borrow();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0, fd);
        assert!(seen[0].1.is_readable());
        assert_eq!(seen[0].2, b"one");
    }
    assert_eq!(Rc::weak_count(&owner), 1, "the loop holds a Weak");
    assert_eq!(Rc::strong_count(&owner), 1, "and no strong reference");

    // The owner lets go (its stream stays open, kept here): the next event finds
    // nobody to call.
    let Ok(Owned { stream, .. }) = Rc::try_unwrap(owner) else {
        panic!("the loop kept the handler alive");
    };
    b.write_all(b"two").unwrap();
    let lp = l.clone();
    l.add_callback(move || {
        let lp2 = lp.clone();
        lp.add_callback(move || lp2.stop());
    });
    start_guarded(&l);
    assert!(
        l.has_handler(fd),
        "the registration ends only with a removal"
    );
    let mut left = [0u8; 8];
    stream.borrow_mut().set_nonblocking(true).unwrap();
    let n = stream.borrow_mut().read(&mut left).unwrap();
    assert_eq!(&left[..n], b"two", "nobody read the second event's bytes");
    assert!(l.remove_handler(fd).is_some());
    assert!(!l.has_handler(fd));
}

/// A handler that removes and closes another fd whose event is pending in the same
/// batch: the closed fd's handler is not called, and a new fd that takes the number at
/// once gets none of the old events.
fn handler_closes_fd_pending_in_same_batch(mk: Mk) {
    let l = mk();
    let (a1, mut b1) = pair();
    let (a2, mut b2) = pair();
    let fds = [a1.as_raw_fd(), a2.as_raw_fd()];
    let calls = Rc::new(RefCell::new(Vec::new()));
    let fresh: Rc<RefCell<Vec<UnixStream>>> = Rc::new(RefCell::new(Vec::new()));
    let fresh_events = Rc::new(Cell::new(0));
    for (i, src) in [a1, a2].into_iter().enumerate() {
        let other = fds[1 - i];
        let (c, lp, fr, fe) = (
            calls.clone(),
            l.clone(),
            fresh.clone(),
            fresh_events.clone(),
        );
        l.add_handler(src, Interest::READ, move |fd, _| {
            c.borrow_mut().push(fd);
            if let Some(src) = lp.remove_handler(other) {
                drop(src); // closes it
                let (n, peer) = pair();
                let fe = fe.clone();
                lp.add_handler(n.as_raw_fd(), Interest::READ, move |_, _| {
                    fe.set(fe.get() + 1)
                })
                .unwrap();
                fr.borrow_mut().push(n);
                fr.borrow_mut().push(peer);
            }
            lp.remove_handler(fd);
            let lp2 = lp.clone();
            lp.add_callback(move || {
                let lp3 = lp2.clone();
                lp2.add_callback(move || lp3.stop());
            });
        })
        .unwrap();
    }
    b1.write_all(b"1").unwrap();
    b2.write_all(b"2").unwrap();
    start_guarded(&l);
    assert_eq!(calls.borrow().len(), 1, "{:?}", calls.borrow());
    assert_eq!(fresh_events.get(), 0, "the new fd got a stale event");
}

struct Many {
    fd: RawFd,
    shared: Rc<ManyShared>,
    /// Its `prefetch` panics (which the loop logs and goes on).
    panics: bool,
}

struct ManyShared {
    io_loop: IoLoop,
    owners: RefCell<Vec<Option<Rc<Many>>>>,
    called: RefCell<Vec<RawFd>>,
    dropped: Cell<usize>,
}

impl FdHandler for Many {
    fn prefetch(&self) {
        assert!(!self.panics, "boom in prefetch");
    }

    fn on_event(self: Rc<Self>, fd: RawFd, ready: Ready) {
        assert_eq!(fd, self.fd);
        assert!(ready.is_readable() || ready.is_hup(), "{ready:?}");
        let s = &self.shared;
        s.io_loop.remove_handler(fd);
        let first = s.called.borrow().is_empty();
        s.called.borrow_mut().push(fd);
        if first {
            // Half the others lose their owner while their events wait in this batch
            // (and stay registered): those events are dropped, with no call.
            let gone: Vec<Rc<Many>> = s
                .owners
                .borrow_mut()
                .iter_mut()
                .enumerate()
                .filter(|(i, o)| i % 2 == 1 && o.as_ref().is_some_and(|o| o.fd != fd))
                .filter_map(|(_, o)| o.take())
                .collect();
            s.dropped.set(gone.len());
        }
        if s.called.borrow().len() + s.dropped.get() == s.owners.borrow().len() {
            s.io_loop.stop();
        }
    }
}

/// Handlers with state of their own (`add_weak_handler`), more of them than the count
/// from which the loop asks the CPU to load each one's state ahead of its event
/// (`squall_poller::sys::PREFETCH_FROM`), all ready in one poll: each live one is
/// called once, and those whose owner let go meanwhile are not called. Those whose
/// `prefetch` panics are still called, and the panic is logged.
fn many_weak_handlers_in_one_batch(mk: Mk) {
    init_logging();
    let l = mk();
    let n = squall_poller::sys::PREFETCH_FROM + 44;
    let shared = Rc::new(ManyShared {
        io_loop: l.clone(),
        owners: RefCell::new(Vec::new()),
        called: RefCell::new(Vec::new()),
        dropped: Cell::new(0),
    });
    let mut ends = Vec::new();
    for i in 0..n {
        // The peer writes and closes at once: one fd per handler stays open.
        let (a, mut b) = pair();
        b.write_all(b"x").unwrap();
        drop(b);
        let h = Rc::new(Many {
            fd: a.as_raw_fd(),
            shared: shared.clone(),
            panics: i % 10 == 4,
        });
        l.add_weak_handler(a.as_raw_fd(), Interest::READ, &h)
            .unwrap();
        shared.owners.borrow_mut().push(Some(h));
        ends.push(a);
    }
    start_guarded(&l);
    let called = shared.called.borrow().clone();
    let live: Vec<RawFd> = shared
        .owners
        .borrow()
        .iter()
        .flatten()
        .map(|h| h.fd)
        .collect();
    assert_eq!(called.len(), live.len(), "{called:?}");
    let mut sorted = called.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        called.len(),
        "a handler was called twice: {called:?}"
    );
    assert!(called.iter().all(|fd| live.contains(fd)));
    assert_eq!(live.len() + shared.dropped.get(), n);
    assert!(shared.dropped.get() >= n / 2 - 1);
    let panicked = shared
        .owners
        .borrow()
        .iter()
        .flatten()
        .filter(|h| h.panics)
        .count();
    assert!(panicked > 0 && panicked * 10 >= n - 10, "{panicked}");
    assert!(logs_here(log::Level::Error)
        .iter()
        .any(|m| m.contains("Exception in callback") && m.contains("boom in prefetch")));
    for a in &ends {
        l.remove_handler(a.as_raw_fd());
    }
    // The owners hold the shared state that holds them.
    shared.owners.borrow_mut().clear();
}

/// A reused fd number gets only its own events.
fn reused_fd_number_gets_only_its_own_events(mk: Mk) {
    let l = mk();
    let (a, mut b) = pair();
    let old_calls = Rc::new(Cell::new(0));
    let oc = old_calls.clone();
    let old_fd = a.as_raw_fd();
    l.add_handler(a, Interest::READ, move |_, _| oc.set(oc.get() + 1))
        .unwrap();
    b.write_all(b"x").unwrap();
    // Close the old one; open a new one (often with the same number) and register it.
    drop(l.remove_handler(old_fd));
    let (n, mut peer) = pair();
    let new_calls = Rc::new(Cell::new(0));
    let (nc, lp) = (new_calls.clone(), l.clone());
    let nfd = n.as_raw_fd();
    l.add_handler(nfd, Interest::READ, move |fd, _| {
        nc.set(nc.get() + 1);
        read_some(fd, &n);
        lp.stop();
    })
    .unwrap();
    // Two idle iterations: nothing for the new fd yet.
    let lp = l.clone();
    l.add_callback(move || {
        let lp2 = lp.clone();
        lp.add_callback(move || lp2.stop());
    });
    start_guarded(&l);
    assert_eq!((old_calls.get(), new_calls.get()), (0, 0));
    peer.write_all(b"y").unwrap();
    start_guarded(&l);
    assert_eq!((old_calls.get(), new_calls.get()), (0, 1));
}

/// test_close_file_object: close(all_fds) closes sources that own their fd, and leaves
/// bare fds alone.
fn close_all_fds_closes_owned_sources(mk: Mk) {
    let l = mk();
    let (a, mut peer_a) = pair();
    let (b, mut peer_b) = pair();
    l.add_handler(a, Interest::READ, |_, _| {}).unwrap();
    l.add_handler(b.as_raw_fd(), Interest::READ, |_, _| {})
        .unwrap();
    l.close(true).unwrap();
    l.close(true).unwrap();
    assert!(l.is_closed());
    peer_a.set_nonblocking(false).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(peer_a.read(&mut buf).unwrap(), 0, "owned source was closed");
    // The bare fd is still open and usable.
    peer_b.write_all(b"z").unwrap();
    b.set_nonblocking(false).unwrap();
    assert_eq!((&b).read(&mut buf).unwrap(), 1);
    assert!(matches!(l.start(), Err(LoopError::Closed)));
    let err = l.add_handler(b.as_raw_fd(), Interest::READ, |_, _| {});
    assert!(err.is_err());
}

/// test_exception_logging (and test_spawn_callback): a panicking callback, timer,
/// handler, task and periodic callback are each logged as Tornado words it
/// ("Exception in callback", with the message) and the loop goes on.
fn test_exception_logging(mk: Mk) {
    init_logging();
    let l = mk();
    let (a, mut b) = pair();
    l.add_callback(|| panic!("boom in callback"));
    l.call_later(Duration::ZERO, || panic!("boom in timer"));
    l.add_handler(a, Interest::READ, |_, _| panic!("boom in handler"))
        .unwrap();
    drop(l.spawn(async { panic!("boom in task") }));
    let pc =
        PeriodicCallback::new(&l, Duration::from_millis(1), || panic!("boom in periodic")).unwrap();
    pc.start();
    b.write_all(b"x").unwrap();
    let lp = l.clone();
    l.call_later(Duration::from_millis(5), move || lp.stop());
    start_guarded(&l);
    pc.stop();
    let logs = logs_here(log::Level::Error);
    for what in ["callback", "timer", "handler", "task", "periodic"] {
        assert!(
            logs.iter()
                .any(|m| m.contains("Exception in callback")
                    && m.contains(&format!("boom in {what}"))),
            "{what}: {logs:?}"
        );
    }
}

/// TestPeriodicCallbackAsync: an async callback's run is awaited before the next is
/// scheduled, so runs that outlast the period never overlap; a panic in one is logged
/// and the schedule goes on.
fn periodic_async_callback_runs_never_overlap(mk: Mk) {
    init_logging();
    let l = mk();
    let (busy, runs, overlapped) = (
        Rc::new(Cell::new(false)),
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(false)),
    );
    let (b, r, o, lp) = (busy.clone(), runs.clone(), overlapped.clone(), l.clone());
    let pc = PeriodicCallback::new_async(&l, Duration::from_millis(1), move || {
        let (b, r, o, lp) = (b.clone(), r.clone(), o.clone(), lp.clone());
        async move {
            o.set(o.get() || b.replace(true));
            r.set(r.get() + 1);
            // Several periods long.
            sleep(Duration::from_millis(5)).await;
            b.set(false);
            match r.get() {
                1 => panic!("boom in async periodic"),
                3 => lp.stop(),
                _ => {}
            }
        }
    })
    .unwrap();
    pc.start();
    start_guarded(&l);
    pc.stop();
    assert_eq!(runs.get(), 3);
    assert!(!overlapped.get(), "two runs of the callback overlapped");
    assert!(logs_here(log::Level::Error).iter().any(|m| m
        .contains("Exception in callback (a periodic callback)")
        && m.contains("boom in async periodic")));
}

/// An async periodic callback restarted (stop, then start) while a run is still in
/// flight starts its new schedule once that run is over: the runs never overlap, as
/// the type promises, where the restart used to schedule a run beside the one going on.
fn periodic_async_restarted_during_a_run_does_not_overlap(mk: Mk) {
    let l = mk();
    let (busy, runs, overlapped) = (
        Rc::new(Cell::new(false)),
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(false)),
    );
    let me: Rc<RefCell<Option<PeriodicCallback>>> = Rc::default();
    let (b, r, o, m, lp) = (
        busy.clone(),
        runs.clone(),
        overlapped.clone(),
        me.clone(),
        l.clone(),
    );
    let pc = PeriodicCallback::new_async(&l, Duration::from_millis(1), move || {
        let (b, r, o, m, lp) = (b.clone(), r.clone(), o.clone(), m.clone(), lp.clone());
        async move {
            o.set(o.get() || b.replace(true));
            r.set(r.get() + 1);
            if r.get() == 1 {
                let pc = m.borrow().clone().unwrap();
                pc.stop();
                pc.start();
                assert!(pc.is_running());
            }
            // Several periods long.
            sleep(Duration::from_millis(5)).await;
            b.set(false);
            if r.get() == 3 {
                lp.stop();
            }
        }
    })
    .unwrap();
    *me.borrow_mut() = Some(pc.clone());
    pc.start();
    start_guarded(&l);
    pc.stop();
    me.borrow_mut().take();
    assert_eq!(runs.get(), 3);
    assert!(!overlapped.get(), "two runs of the callback overlapped");
}

/// Something whose drop panics.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("boom in drop");
    }
}

/// A periodic callback that panics with a payload whose drop panics too keeps its
/// schedule: the panic is logged and the next run comes.
fn periodic_callback_survives_a_panicking_panic_payload(mk: Mk) {
    init_logging();
    let l = mk();
    let runs = Rc::new(Cell::new(0));
    let (r, lp) = (runs.clone(), l.clone());
    let pc = PeriodicCallback::new(&l, Duration::from_millis(1), move || {
        r.set(r.get() + 1);
        if r.get() == 1 {
            std::panic::panic_any(PanicOnDrop);
        }
        lp.stop();
    })
    .unwrap();
    pc.start();
    start_guarded(&l);
    pc.stop();
    assert_eq!(runs.get(), 2);
    assert!(logs_here(log::Level::Error)
        .iter()
        .any(|m| m.contains("Exception in callback (a periodic callback)")));
}

/// A handler that removes itself is dropped by the loop once it returns; a panic in
/// that drop (in something it owns) is logged, and the loop can still stop, start and
/// close.
fn a_panicking_drop_of_a_removed_handler_is_contained(mk: Mk) {
    init_logging();
    let l = mk();
    let (a, mut b) = pair();
    let lp = l.clone();
    let owned = PanicOnDrop;
    l.add_handler(a, Interest::READ, move |fd, _| {
        let _keep = &owned;
        lp.remove_handler(fd);
        lp.stop();
    })
    .unwrap();
    b.write_all(b"x").unwrap();
    start_guarded(&l);
    assert!(logs_here(log::Level::Error)
        .iter()
        .any(|m| m.contains("Exception in callback") && m.contains("boom in drop")));
    assert_eq!(l.run_sync(async { 1 }, Some(PATIENCE)).unwrap(), 1);
    l.close(true).unwrap();
}

/// `turn_time` is read when the poll returns: a handler's reading is not as old as the
/// wait before its event.
fn turn_time_in_a_handler_is_taken_after_the_poll(mk: Mk) {
    let l = mk();
    let (a, b) = pair();
    let got = Rc::new(Cell::new(None));
    let (g, lp) = (got.clone(), l.clone());
    l.add_handler(a, Interest::READ, move |_, _| {
        g.set(Some((squall_ioloop::turn_time(), Instant::now())));
        lp.stop();
    })
    .unwrap();
    // The poll blocks while the other thread waits: that wait is the point, not a
    // synchronisation.
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(400));
        let before_write = Instant::now();
        (&b).write_all(b"x").unwrap();
        (b, before_write)
    });
    start_guarded(&l);
    let (_b, before_write) = writer.join().unwrap();
    let (turn, now) = got.get().unwrap();
    // The poll returned after the write, so a reading taken after it cannot be older
    // (no bound on how late the handler ran: a loaded machine may run it late).
    assert!(
        turn >= before_write && turn <= now,
        "turn_time in a handler is {:?} before the write",
        before_write.saturating_duration_since(turn)
    );
}

/// test_spawn_callback: a panicking task is logged and its handle reports the panic.
fn test_spawn_callback_panic_logged(mk: Mk) {
    init_logging();
    let l = mk();
    let h = l.spawn(async { panic!("boom in task") });
    let res = l.run_sync(h, Some(PATIENCE)).unwrap();
    let err = res.unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("boom in task"), "{err}");
    let logs = logs_here(log::Level::Error);
    assert!(logs.iter().any(|m| m.contains("boom in task")), "{logs:?}");
}

fn spawn_join_handle(mk: Mk) {
    let l = mk();
    let lp = l.clone();
    let v = l
        .run_sync(
            async move {
                let hs: Vec<_> = (0..100u32)
                    .map(|i| lp.spawn(async move { i * 2 }))
                    .collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                sum
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert_eq!(v, 9900);
    assert_eq!(l.task_count(), 0);
}

fn join_handle_abort(mk: Mk) {
    let l = mk();
    let dropped = Rc::new(Cell::new(false));
    let d = DropFlag(dropped.clone());
    let h = l.spawn(async move {
        let _d = d;
        std::future::pending::<()>().await;
    });
    let lp = l.clone();
    let res = l
        .run_sync(
            async move {
                sleep(Duration::from_millis(1)).await;
                h.abort();
                let _ = &lp;
                h.await
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert!(matches!(res, Err(JoinError::Cancelled)));
    assert!(dropped.get());
    assert_eq!(l.task_count(), 0);
}

/// test_add_future_threads: a future completed on another thread; the callback runs on
/// the loop thread.
fn test_add_future_threads(mk: Mk) {
    let l = mk();
    let slot = Slot::<u32>::default();
    let s = slot.clone();
    let got = Rc::new(Cell::new(None));
    let (g, lp) = (got.clone(), l.clone());
    l.add_future(slot, move |v| {
        g.set(Some((v, thread::current().id())));
        lp.stop();
    });
    let t = thread::spawn(move || s.set(7));
    start_guarded(&l);
    t.join().unwrap();
    assert_eq!(got.get(), Some((7, thread::current().id())));
}

/// add_future's callback is deferred to a later iteration even for a ready future.
fn add_future_is_deferred(mk: Mk) {
    let l = mk();
    let order = Rc::new(RefCell::new(Vec::new()));
    let (o, lp) = (order.clone(), l.clone());
    l.add_future(async { 1 }, move |v| {
        o.borrow_mut().push(v);
        lp.stop();
    });
    // The task is polled in the first iteration; this callback was queued earlier in it
    // than the completion callback, so it must come first.
    let o = order.clone();
    l.add_callback(move || o.borrow_mut().push(0));
    start_guarded(&l);
    assert_eq!(*order.borrow(), vec![0, 1]);
}

/// A task's waker used from another thread goes through the remote queue.
fn remote_waker_wakes_task(mk: Mk) {
    let l = mk();
    let v = l
        .run_sync(
            async {
                let mut total = 0;
                for i in 0..20u32 {
                    let slot = Slot::<u32>::default();
                    let s = slot.clone();
                    let t = thread::spawn(move || s.set(i));
                    total += slot.await;
                    t.join().unwrap();
                }
                total
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert_eq!(v, 190);
}

/// TestIOLoopRunSync.test_sync_result / test_async_result.
fn run_sync_returns_value(mk: Mk) {
    let l = mk();
    assert_eq!(l.run_sync(async { 42 }, None).unwrap(), 42);
    let v = l
        .run_sync(
            async {
                sleep(Duration::ZERO).await;
                "later"
            },
            Some(PATIENCE),
        )
        .unwrap();
    assert_eq!(v, "later");
}

/// TestIOLoopRunSync.test_async_exception: an error result comes back as is.
fn run_sync_returns_error(mk: Mk) {
    let l = mk();
    let r: Result<Result<(), std::io::Error>, RunSyncError> = l.run_sync(
        async {
            sleep(Duration::ZERO).await;
            Err(std::io::Error::other("nope"))
        },
        Some(PATIENCE),
    );
    assert_eq!(r.unwrap().unwrap_err().to_string(), "nope");
}

/// TestIOLoopRunSync.test_sync_exception: a panic is resumed in the caller; the loop
/// stays usable.
fn run_sync_propagates_panic(mk: Mk) {
    let l = mk();
    let lp = l.clone();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        lp.run_sync(
            async {
                sleep(Duration::ZERO).await;
                panic!("boom in run_sync")
            },
            Some(PATIENCE),
        )
    }));
    let payload = caught.unwrap_err();
    assert_eq!(*payload.downcast_ref::<&str>().unwrap(), "boom in run_sync");
    assert!(!l.is_running());
    assert_eq!(l.run_sync(async { 1 }, None).unwrap(), 1);
    assert_eq!(l.task_count(), 0);
}

/// TestIOLoopRunSync.test_timeout: the future is dropped and Timeout is returned.
fn run_sync_times_out(mk: Mk) {
    let l = mk();
    let dropped = Rc::new(Cell::new(false));
    let d = DropFlag(dropped.clone());
    let t0 = Instant::now();
    let r = l.run_sync(
        async move {
            let _d = d;
            sleep(Duration::from_secs(3600)).await;
        },
        Some(Duration::from_millis(20)),
    );
    assert!(matches!(r, Err(RunSyncError::Timeout(d)) if d == Duration::from_millis(20)));
    assert!(t0.elapsed() >= Duration::from_millis(20));
    assert!(dropped.get());
    assert_eq!(
        l.pending_timeouts(),
        0,
        "the future's sleep timer was cancelled"
    );
}

/// TestIOLoopRunSync.test_stop_no_timeout: stop() inside run_sync ends it with an error.
fn run_sync_stopped(mk: Mk) {
    let l = mk();
    let lp = l.clone();
    let r = l.run_sync(
        async move {
            lp.stop();
            sleep(Duration::from_secs(3600)).await;
        },
        Some(PATIENCE),
    );
    assert!(matches!(r, Err(RunSyncError::Stopped)), "{r:?}");
}

/// gen.sleep waits at least its duration; with_timeout passes a fast future through and
/// times out a slow one.
fn sleep_and_with_timeout(mk: Mk) {
    let l = mk();
    let lp = l.clone();
    l.run_sync(
        async move {
            let t0 = Instant::now();
            sleep(Duration::from_millis(15)).await;
            assert!(t0.elapsed() >= Duration::from_millis(15));
            let t0 = Instant::now();
            lp.sleep(Duration::from_millis(5)).await;
            assert!(t0.elapsed() >= Duration::from_millis(5));
            let fast = with_timeout(PATIENCE, async { 5 }).await;
            assert_eq!(fast.unwrap(), 5);
            let t0 = Instant::now();
            let slow = lp
                .with_timeout(Duration::from_millis(10), sleep(Duration::from_secs(3600)))
                .await;
            assert!(slow.is_err());
            assert!(t0.elapsed() >= Duration::from_millis(10));
        },
        Some(PATIENCE),
    )
    .unwrap();
    assert_eq!(l.pending_timeouts(), 0);
}

/// A PeriodicCallback runs every period (never early), can be stopped from inside, and
/// a panic in it does not break the schedule.
fn periodic_callback_runs_on_schedule(mk: Mk) {
    init_logging();
    let l = mk();
    let period = Duration::from_millis(5);
    let runs = Rc::new(RefCell::new(Vec::new()));
    let holder: Rc<RefCell<Option<PeriodicCallback>>> = Rc::new(RefCell::new(None));
    let (r, h, lp) = (runs.clone(), holder.clone(), l.clone());
    let t0 = Instant::now();
    let pc = PeriodicCallback::new(&l, period, move || {
        r.borrow_mut().push(t0.elapsed());
        let n = r.borrow().len();
        if n == 2 {
            panic!("boom in periodic");
        }
        if n == 4 {
            h.borrow().as_ref().unwrap().stop();
            let lp2 = lp.clone();
            lp.call_later(Duration::from_millis(20), move || lp2.stop());
        }
    })
    .unwrap()
    .with_jitter(0.1)
    .unwrap();
    *holder.borrow_mut() = Some(pc.clone());
    pc.start();
    pc.start(); // no-op
    assert!(pc.is_running());
    start_guarded(&l);
    assert!(!pc.is_running());
    let runs = runs.borrow();
    assert_eq!(runs.len(), 4, "{runs:?}");
    // With jitter 0.1 every period is at least 0.95 of the nominal one, and the
    // schedule is anchored, so run n comes no earlier than n * 0.95 * period.
    for (i, at) in runs.iter().enumerate() {
        let min = period.mul_f64(0.95 * (i + 1) as f64);
        assert!(*at >= min, "run {i} at {at:?} < {min:?}");
    }
    assert!(logs_here(log::Level::Error)
        .iter()
        .any(|m| m.contains("boom in periodic")));
    holder.borrow_mut().take();
}

fn periodic_callback_settings(mk: Mk) {
    let l = mk();
    assert!(matches!(
        PeriodicCallback::new(&l, Duration::ZERO, || {}),
        Err(PeriodicError::ZeroPeriod)
    ));
    let pc = PeriodicCallback::new(&l, Duration::from_secs(1), || {}).unwrap();
    assert_eq!(pc.period(), Duration::from_secs(1));
    assert!(matches!(
        pc.clone().with_jitter(1.5),
        Err(PeriodicError::BadJitter(_))
    ));
    assert!(pc.clone().with_jitter(f64::NAN).is_err());
    // The period is given back exactly, and any Duration is a period (one that never
    // comes is never due): neither rounds through seconds as f64 nor panics.
    for period in [Duration::MAX, Duration::new(1_000_000_000, 1)] {
        let far = PeriodicCallback::new(&l, period, || {}).unwrap();
        assert_eq!(far.period(), period);
        assert!(format!("{far:?}").contains("running: false"));
        far.start();
        far.stop();
    }
    pc.start();
    assert_eq!(l.pending_timeouts(), 1);
    pc.stop();
    assert_eq!(l.pending_timeouts(), 0);
    assert!(!pc.is_running());
    // A closed loop runs nothing: a schedule on it is not running, started before the
    // close or after.
    pc.start();
    l.close(true).unwrap();
    assert!(!pc.is_running());
    pc.start();
    assert!(!pc.is_running());
}

/// A periodic callback that stops and restarts itself from inside its callback keeps
/// one schedule, not two: one pending timeout after the run, none after `stop`.
fn periodic_callback_restarted_from_inside(mk: Mk) {
    let l = mk();
    let holder: Rc<RefCell<Option<PeriodicCallback>>> = Rc::new(RefCell::new(None));
    let pending = Rc::new(Cell::new(None));
    let (h, lp, seen) = (holder.clone(), l.clone(), pending.clone());
    let pc = PeriodicCallback::new(&l, Duration::from_millis(1), move || {
        let pc = h.borrow().clone().unwrap();
        let before = lp.pending_timeouts();
        pc.stop();
        pc.start();
        // Runs after this run has made its next schedule.
        let (lp2, seen) = (lp.clone(), seen.clone());
        lp.add_callback(move || {
            seen.set(Some(lp2.pending_timeouts() - before));
            pc.stop();
            lp2.stop();
        });
    })
    .unwrap();
    *holder.borrow_mut() = Some(pc.clone());
    pc.start();
    start_guarded(&l);
    assert_eq!(
        pending.get(),
        Some(1),
        "timeouts the periodic callback left"
    );
    assert_eq!(l.pending_timeouts(), 0, "a timeout outlived stop()");
    holder.borrow_mut().take();
}

/// Dropping the loop drops its pending futures, callbacks and timers (no leak, no
/// panic); handles of its tasks resolve to Cancelled.
fn futures_dropped_on_loop_drop(mk: Mk) {
    let l = mk();
    let flags: Vec<Rc<Cell<bool>>> = (0..4).map(|_| Rc::new(Cell::new(false))).collect();
    let d0 = DropFlag(flags[0].clone());
    let waiting = l.spawn(async move {
        let _d = d0;
        std::future::pending::<()>().await;
    });
    let d1 = DropFlag(flags[1].clone());
    // A task that has been polled and is parked on a timer.
    let d3 = DropFlag(flags[3].clone());
    l.spawn(async move {
        let _d = d3;
        sleep(Duration::from_secs(3600)).await;
    });
    let lp = l.clone();
    l.add_callback(move || lp.stop());
    l.start().unwrap();
    l.add_callback(move || drop(d1));
    let d2 = DropFlag(flags[2].clone());
    l.call_later(Duration::from_secs(3600), move || drop(d2));
    drop(l);
    assert!(flags.iter().all(|f| f.get()), "{flags:?}");
    assert!(waiting.is_finished());
    let other = mk();
    let r = other.run_sync(waiting, Some(PATIENCE)).unwrap();
    assert!(matches!(r, Err(JoinError::Cancelled)));
}

/// A future whose drop code calls back into the loop (even one that holds a strong
/// handle, which close() tears down) is dropped safely.
fn future_drop_code_may_use_the_loop(mk: Mk) {
    struct Reenter(IoLoop, Rc<Cell<bool>>, RawFd);
    impl Drop for Reenter {
        fn drop(&mut self) {
            let l = &self.0;
            l.add_callback(|| {});
            l.call_later(Duration::from_secs(1), || {});
            let h = l.spawn(async {});
            assert!(h.is_finished());
            l.remove_handler(self.2);
            let _ = l.add_handler(self.2, Interest::READ, |_, _| {});
            self.1.set(true);
        }
    }
    let l = mk();
    let (a, _b) = pair();
    l.add_handler(a.as_raw_fd(), Interest::READ, |_, _| {})
        .unwrap();
    let dropped = Rc::new(Cell::new(false));
    let r = Reenter(l.clone(), dropped.clone(), a.as_raw_fd());
    l.spawn(async move {
        let _r = r;
        std::future::pending::<()>().await;
    });
    l.close(false).unwrap();
    assert!(dropped.get());
    let flag = Arc::new(AtomicBool::new(false));
    assert!(l
        .remote()
        .add_callback({
            let f = flag.clone();
            move || f.store(true, Ordering::SeqCst)
        })
        .is_err());
    assert!(!flag.load(Ordering::SeqCst));
}

/// A closed loop keeps nothing it is given afterwards: callbacks, timers and signal
/// callbacks are dropped at once (they would never run).
fn work_given_to_a_closed_loop_is_dropped_at_once(mk: Mk) {
    let l = mk();
    l.close(true).unwrap();
    let flags: Vec<Rc<Cell<bool>>> = (0..3).map(|_| Rc::new(Cell::new(false))).collect();
    let d = DropFlag(flags[0].clone());
    l.add_callback(move || drop(d));
    let d = DropFlag(flags[1].clone());
    l.call_later(Duration::from_secs(1), move || drop(d));
    let d = DropFlag(flags[2].clone());
    let trigger = l.add_signal_callback(move || {
        let _keep = &d;
    });
    trigger.trigger();
    assert!(flags.iter().all(|f| f.get()), "{flags:?}");
}

/// A timeout handle of one loop removes nothing on another, though both loops' first
/// timers sit in the same slot at the same generation.
fn remove_timeout_of_another_loop_is_a_no_op(mk: Mk) {
    let (a, b) = (mk(), mk());
    let theirs = a.call_later(Duration::from_secs(3600), || {});
    let ours = b.call_later(Duration::from_secs(3600), || {});
    b.remove_timeout(theirs);
    assert_eq!(b.pending_timeouts(), 1, "b's own timer was removed");
    a.remove_timeout(ours);
    assert_eq!(a.pending_timeouts(), 1, "a's own timer was removed");
    b.remove_timeout(ours);
    a.remove_timeout(theirs);
    assert_eq!((a.pending_timeouts(), b.pending_timeouts()), (0, 0));
}

/// A signal callback whose every handle is dropped can never run again: the loop lets
/// it go (by the next registration), except one triggered before its handle went,
/// which runs first.
fn signal_callbacks_without_handles_are_let_go(mk: Mk) {
    let l = mk();
    let gone = Rc::new(Cell::new(false));
    let d = DropFlag(gone.clone());
    drop(l.add_signal_callback(move || {
        let _keep = &d;
    }));
    let ran = Rc::new(Cell::new(false));
    let (r, lp) = (ran.clone(), l.clone());
    let last = l.add_signal_callback(move || {
        r.set(true);
        lp.stop();
    });
    assert!(gone.get(), "a callback no handle can trigger was kept");
    last.trigger();
    drop(last);
    let _other = l.add_signal_callback(|| {});
    start_guarded(&l);
    assert!(
        ran.get(),
        "a callback triggered before its handle was dropped did not run"
    );
}
