//! The conformance suite run over the example's third-party poller (a counting wrapper
//! around the platform backend), plus a check that it counts right.

#[path = "../examples/counting_poller.rs"]
#[allow(dead_code, unreachable_pub)]
mod counting_poller;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use counting_poller::{platform_backend, Counting, Counts};
use squall_poller::{Events, Interest, Poller};

squall_poller::conformance_tests!(Counting::new(platform_backend()));

#[test]
fn counts_every_call_including_failed_ones() {
    let mut p = Counting::new(platform_backend());
    let counts = p.counts();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    p.register(fd, Interest::READ).unwrap();
    assert!(p.register(fd, Interest::READ).is_err());
    p.modify(fd, Interest::BOTH).unwrap();
    let mut ev = Events::with_capacity(4);
    p.poll(&mut ev, Some(Duration::from_secs(5))).unwrap();
    assert!(ev.get(fd).is_some_and(|r| r.is_writable()));
    p.unregister(fd).unwrap();
    let boxed: Box<dyn Poller> = Box::new(p);
    drop(boxed);
    assert_eq!(
        counts.get(),
        Counts {
            register: 2,
            modify: 1,
            unregister: 1,
            poll: 1
        }
    );
}
