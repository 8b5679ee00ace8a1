//! Body arguments (urlencoded and multipart/form-data), query strings and cookies on
//! arbitrary bytes: never a panic, and the caps hold. The first byte picks the mode:
//! a multipart body as sent (any boundary), a multipart body built from the input's
//! pieces (so the part cap is reached often and each value can be checked), an
//! urlencoded body (every non-empty field is one argument), a query string, a Cookie
//! header.
//! The check itself is `fuzz_checks::body_args`, shared with the stable regression tests.
#![no_main]

use squall_httputil::fuzzing as fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::body_args(data));
