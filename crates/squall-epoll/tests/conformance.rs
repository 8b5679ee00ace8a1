//! The shared poller conformance suite, run on epoll.

squall_poller::cfg_epoll! {
    squall_poller::conformance_tests!(squall_epoll::Epoll::new().unwrap());
}
