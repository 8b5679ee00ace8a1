//! `IoStream` reads over a Unix socket pair, checked against a reference model: the
//! model and its driver live in `squall_iostream::model` (the `model` feature), where
//! they are unit-tested and also run as a proptest on every `cargo test`; see that
//! module for what the input means and which invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
init: {
    // libFuzzer's own `main` leaves SIGPIPE at its default (the std runtime that sets
    // it to SIG_IGN does not run): a write into a socket whose reader closed on a limit
    // would kill the process instead of failing with EPIPE.
    // SAFETY: setting a signal disposition to SIG_IGN before any thread of ours runs;
    // no handler function is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
},
|input: &[u8]| {
    squall_iostream::model::run(input);
});
