//! The shared poller conformance suite, run on epoll.
#![cfg(any(target_os = "linux", target_os = "android"))]

squall_poller::conformance_tests!(squall_epoll::Epoll::new().unwrap());
