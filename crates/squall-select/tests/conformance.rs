//! The shared poller conformance suite, run on select(2).

squall_poller::conformance_tests!(squall_select::Select::new());
