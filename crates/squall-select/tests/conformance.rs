//! The shared poller conformance suite, run on select(2).
//!
//! Linux only: on macOS and the BSDs this backend cannot report a refused connect as
//! ERROR (see the crate docs), so `error_for_refused_connect` does not hold there, and
//! kqueue is the backend those systems use.

// The Linux kernels are the epoll systems of squall-poller's `os` lists.
squall_poller::cfg_epoll! {
    squall_poller::conformance_tests!(squall_select::Select::new());
}
