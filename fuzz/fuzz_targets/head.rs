//! The request-head parser on arbitrary bytes, checked against an independent
//! reference (RFC 9112's grammar written out plainly, in
//! `crates/squall-httputil/src/fuzzing/reference_head.rs`; not httparse, which squall
//! parses with): whatever squall accepts, the reference accepts too, with the same
//! method, target, version and fields. The incremental parser agrees with the one-shot
//! one on every split, and refuses no prefix of a head it accepts whole.
//! The check itself is `fuzz_checks::head`, shared with the stable regression tests.
#![no_main]

use squall_httputil::fuzzing as fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::head(data));
