//! The shared poller conformance suite, run on poll(2).

squall_poller::conformance_tests!(squall_poll::Poll::new());
