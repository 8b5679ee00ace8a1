//! `bind_sockets` with port 0 on a host whose IPv6 ports are busy: a test binary of its
//! own, since it holds 500 listeners, whose fd numbers would push the other tests' fds
//! towards select's `FD_SETSIZE`.

use squall_tcpserver::{bind_sockets, Family};

// Tornado: test_same_port_allocation, with ports taken. With port 0 the kernel picks a
// port free for the first family only: an IPv6-only listener on it does not stop the
// IPv4 bind, and the IPv6 bind on the same port then fails with EADDRINUSE (about one
// bind in twenty with 500 listeners on ::1, checked on Linux). bind_sockets takes
// another port then, where Tornado gives up.
#[test]
fn port_zero_finds_a_port_free_for_every_family() {
    let mut busy = Vec::new();
    for _ in 0..500 {
        match bind_sockets(0, "::1", Family::V6, 1, false) {
            Ok(mut ls) => busy.append(&mut ls),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
                ) =>
            {
                eprintln!("SKIP: cannot bind ::1 ({e}); this host has no IPv6 loopback");
                return;
            }
            Err(e) => panic!("bind ::1: {e}"),
        }
    }
    for _ in 0..200 {
        let ls = bind_sockets(0, "", Family::Any, 16, false).unwrap();
        let ports: Vec<u16> = ls.iter().map(|l| l.local_addr().unwrap().port()).collect();
        assert!(ports.iter().all(|&p| p == ports[0]), "{ports:?}");
    }
}
