//! The whole sans-IO HTTP/1.1 server connection fed arbitrary bytes in arbitrary
//! splits, answered as a server would. Invariants: no panic; the unparsed input stays
//! bounded; every response is well-formed and there is exactly one per request
//! answered (plus one for a rejected request); a request that does not keep the
//! connection alive is answered with `Connection: close` (on HTTP/1.1) and nothing after
//! it is parsed, however much more arrives; after a rejection nothing more is parsed;
//! either way the connection closes. Input layout: `fuzz_checks::split_layout`.
//! The check itself is `fuzz_checks::h1_conn`, shared with the stable regression tests.
#![no_main]

use squall_httputil::fuzzing as fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::h1_conn(data));
