//! The shared poller conformance suite, run on kqueue (where squall-kqueue has its
//! backend: squall-poller's `cfg_kqueue!` list).

squall_poller::cfg_kqueue! {
    squall_poller::conformance_tests!(squall_kqueue::Kqueue::new().unwrap());
}
