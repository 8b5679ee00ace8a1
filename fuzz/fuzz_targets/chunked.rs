//! The chunked decoder on arbitrary bytes in arbitrary splits: never a panic, and any
//! split gives the same body and the same verdict as the whole input. Input layout:
//! `fuzz_checks::split_layout`.
//! The check itself is `fuzz_checks::chunked`, shared with the stable regression tests.
#![no_main]

use squall_httputil::fuzzing as fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::chunked(data));
