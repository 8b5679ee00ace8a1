//! `IoLoop::add_signal_handler`: real signals become loop callbacks. Each test uses its
//! own signal, since signals are process-wide and tests run in parallel.

use std::cell::Cell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use squall_ioloop::signal::{raise, SIGKILL, SIGSEGV, SIGUSR1, SIGUSR2, SIGWINCH};
use squall_ioloop::IoLoop;

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn test_signal_runs_the_callback_on_the_loop_thread() {
    let io_loop = IoLoop::new().unwrap();
    let count = Rc::new(Cell::new(0));
    let (l, c) = (io_loop.clone(), count.clone());
    let handler = io_loop
        .add_signal_handler(SIGUSR1, move || {
            c.set(c.get() + 1);
            l.stop();
        })
        .unwrap();
    assert_eq!(handler.signal(), SIGUSR1);
    assert!(handler.is_active());
    io_loop.add_callback(|| raise(SIGUSR1).unwrap());
    let guard = io_loop.call_later(PATIENCE, || panic!("the signal never arrived"));
    io_loop.start().unwrap();
    io_loop.remove_timeout(guard);
    assert_eq!(count.get(), 1);
    assert!(io_loop.remove_signal_handler(&handler));
    assert!(!handler.is_active());
    assert!(
        !io_loop.remove_signal_handler(&handler),
        "removing twice is a no-op"
    );
}

#[test]
fn test_a_signal_reaches_every_loop_that_watches_it() {
    // Two loops on two threads, one signal: both callbacks run.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let (ready_tx, done_tx) = (ready_tx.clone(), done_tx.clone());
            thread::spawn(move || {
                let io_loop = IoLoop::new().unwrap();
                let l = io_loop.clone();
                let _h = io_loop
                    .add_signal_handler(SIGUSR2, move || {
                        done_tx.send(i).unwrap();
                        l.stop();
                    })
                    .unwrap();
                let guard = io_loop.call_later(PATIENCE, || panic!("no signal"));
                ready_tx.send(()).unwrap();
                io_loop.start().unwrap();
                io_loop.remove_timeout(guard);
                io_loop.close(true).unwrap();
            })
        })
        .collect();
    for _ in 0..2 {
        ready_rx.recv_timeout(PATIENCE).unwrap();
    }
    raise(SIGUSR2).unwrap();
    let mut got = vec![
        done_rx.recv_timeout(PATIENCE).unwrap(),
        done_rx.recv_timeout(PATIENCE).unwrap(),
    ];
    got.sort_unstable();
    assert_eq!(got, vec![0, 1]);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn test_closing_the_loop_removes_its_signal_handlers() {
    let io_loop = IoLoop::new().unwrap();
    let handler = io_loop.add_signal_handler(SIGWINCH, || {}).unwrap();
    assert!(handler.is_active());
    io_loop.close(true).unwrap();
    assert!(!handler.is_active());
    // A signal after that reaches nobody and harms nothing.
    raise(SIGWINCH).unwrap();
}

#[test]
fn test_uncatchable_and_fault_signals_are_refused() {
    let io_loop = IoLoop::new().unwrap();
    for sig in [SIGKILL, SIGSEGV] {
        let err = io_loop.add_signal_handler(sig, || {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    let err = io_loop.add_signal_handler(100_000, || {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// Run only in a child process (see the next test): adds and removes a SIGUSR1
/// handler, then raises SIGUSR1, whose default action must end the process.
#[test]
#[ignore = "runs in a child process of test_removing_the_last_handler_restores_the_default_action"]
fn child_removes_its_handler_then_raises() {
    let io_loop = IoLoop::new().unwrap();
    let handler = io_loop.add_signal_handler(SIGUSR1, || {}).unwrap();
    assert!(io_loop.remove_signal_handler(&handler));
    raise(SIGUSR1).unwrap();
    // Not reached when SIGUSR1's default action is back.
    std::process::exit(3);
}

#[test]
fn test_removing_the_last_handler_restores_the_default_action() {
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_removes_its_handler_then_raises",
            "--ignored",
            "--nocapture",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(SIGUSR1),
        "the child should die of SIGUSR1: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
