//! The shared poller conformance suite, run on kqueue (macOS and FreeBSD only).
#![cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "freebsd"
))]

squall_poller::conformance_tests!(squall_kqueue::Kqueue::new().unwrap());
