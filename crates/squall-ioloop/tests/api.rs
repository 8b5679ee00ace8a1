//! Backend-independent API facts: thread-safety of the handles, poller selection, and
//! a remote stop.

use std::io::ErrorKind;
use std::sync::mpsc;
use std::thread;

use squall_ioloop::{poller_by_name, IoLoop, RemoteHandle, SignalCallback};
use squall_testing::start_guarded;

fn send_sync<T: Send + Sync + Clone + 'static>() {}

#[test]
fn remote_handles_are_send_and_sync() {
    send_sync::<RemoteHandle>();
    send_sync::<SignalCallback>();
}

#[test]
fn pollers_by_name() {
    assert_eq!(poller_by_name("poll").unwrap().name(), "poll");
    assert_eq!(poller_by_name("select").unwrap().name(), "select");
    #[cfg(target_os = "linux")]
    assert_eq!(poller_by_name("epoll").unwrap().name(), "epoll");
    #[cfg(target_os = "linux")]
    assert_eq!(
        poller_by_name("kqueue").err().unwrap().kind(),
        ErrorKind::Unsupported
    );
    let err = poller_by_name("epol").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("SQUALL_POLLER"), "{err}");
}

#[test]
fn default_loop_names_its_poller() {
    let l = IoLoop::new().unwrap();
    let expected = match std::env::var("SQUALL_POLLER") {
        Ok(name) if !name.trim().is_empty() => name.trim().to_owned(),
        _ if cfg!(target_os = "linux") => "epoll".to_owned(),
        _ => l.poller_name().to_owned(),
    };
    assert_eq!(l.poller_name(), expected);
}

/// A stop from another thread ends a loop blocked in poll.
#[test]
fn remote_stop_wakes_a_blocked_loop() {
    let l = IoLoop::new().unwrap();
    let (tx, rx) = mpsc::channel::<RemoteHandle>();
    let t = thread::spawn(move || {
        let remote = rx.recv().unwrap();
        remote.stop();
    });
    let remote = l.remote();
    l.add_callback(move || tx.send(remote).unwrap());
    start_guarded(&l);
    t.join().unwrap();
    assert!(!l.is_running());
}

/// A remote stop before start makes start return at once, like a local one.
#[test]
fn remote_stop_before_start() {
    let l = IoLoop::new().unwrap();
    let ran = std::rc::Rc::new(std::cell::Cell::new(false));
    let r = ran.clone();
    l.add_callback(move || r.set(true));
    l.remote().stop();
    l.start().unwrap();
    assert!(!ran.get());
}

/// Many remote callbacks from many threads all run, each thread's in order.
#[test]
fn remote_callbacks_from_many_threads() {
    let l = IoLoop::new().unwrap();
    let remote = l.remote();
    let (tx, rx) = mpsc::channel::<(usize, usize)>();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (remote, tx) = (remote.clone(), tx.clone());
            thread::spawn(move || {
                for i in 0..1000 {
                    let tx = tx.clone();
                    remote
                        .add_callback(move || tx.send((t, i)).unwrap())
                        .unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    remote
        .add_callback(move || IoLoop::current().unwrap().stop())
        .unwrap();
    start_guarded(&l);
    drop(tx);
    let mut next = [0usize; 4];
    for (t, i) in rx.try_iter() {
        assert_eq!(i, next[t]);
        next[t] += 1;
    }
    assert_eq!(next, [1000; 4]);
}
