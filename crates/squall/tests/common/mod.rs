//! What the tests of the `hello` example share: where its binary is, and a guard that
//! kills it if a test fails half-way.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Child;

/// The example binary that `cargo test` builds beside the tests
/// (`target/<profile>/examples/hello`).
pub(crate) fn hello_binary() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/hello
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let hello = profile_dir.join("examples").join("hello");
    assert!(
        hello.exists(),
        "{} is missing: `cargo test -p squall` builds it (a `--test` filter does not; \
         run `cargo build -p squall --example hello` first)",
        hello.display()
    );
    hello
}

/// Kills the child if the test fails half-way.
pub(crate) struct Reap(pub(crate) Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
