//! Shared test support: run an async test on a loop over a named backend.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use squall_ioloop::{IoLoop, Poller};

/// A loop over the named backend.
pub fn new_loop(poller: &str) -> IoLoop {
    let p: Box<dyn Poller> = match poller {
        "epoll" => Box::new(squall_epoll::Epoll::new().expect("epoll")),
        "poll" => Box::new(squall_poll::Poll::new()),
        "select" => Box::new(squall_select::Select::new()),
        other => panic!("unknown backend {other}"),
    };
    IoLoop::with_poller(p).expect("loop")
}

/// Runs `f()` to completion on a fresh loop over `poller`, with a generous timeout.
pub fn run<F, Fut>(poller: &str, f: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let io_loop = new_loop(poller);
    let fut = f();
    io_loop
        .run_sync(fut, Some(Duration::from_secs(30)))
        .expect("test timed out or the loop failed");
    io_loop.close(true).expect("close");
}

/// Instantiates every listed `async fn` test once per Linux backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod epoll {
            $( #[test] fn $name() { $crate::common::run("epoll", super::$name) } )*
        }
        mod poll {
            $( #[test] fn $name() { $crate::common::run("poll", super::$name) } )*
        }
        mod select {
            $( #[test] fn $name() { $crate::common::run("select", super::$name) } )*
        }
    };
}
