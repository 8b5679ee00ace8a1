//! The fuzz targets' checks on stable, over every seed of `fuzz/corpus/<target>/seed-*`
//! and every input kept in `fuzz/regressions/<target>/` (inputs that once crashed a
//! target, kept once fixed). A new finding is added by copying the file from
//! `fuzz/artifacts/<target>/` into `fuzz/regressions/<target>/`.

use squall_httputil::fuzzing as fuzz_checks;

use std::fs;
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_file() && (dir == "regressions" || name.starts_with("seed-")) {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn run(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no seeds found for {target}");
    for f in files {
        let data = fs::read(&f).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: {} fails its check", f.display());
        }
    }
}

#[test]
fn head_inputs() {
    run("head", fuzz_checks::head);
}

#[test]
fn chunked_inputs() {
    run("chunked", fuzz_checks::chunked);
}

#[test]
fn h1_conn_inputs() {
    run("h1_conn", fuzz_checks::h1_conn);
}

#[test]
fn body_args_inputs() {
    run("body_args", fuzz_checks::body_args);
}

/// The seeds of the split targets reach past the request line: with the count byte
/// outside the input (it used to be consumed as a cut byte, so every seed began with a
/// byte no request can start with), each seed's input is a request.
#[test]
fn split_seeds_start_with_a_request() {
    for target in ["h1_conn"] {
        for f in inputs(target) {
            let data = fs::read(&f).unwrap();
            let (_, input) = fuzz_checks::split_layout(&data);
            assert!(
                input.first().is_some_and(u8::is_ascii_uppercase),
                "{}: the input does not start with a method",
                f.display()
            );
        }
    }
    for f in inputs("chunked") {
        let data = fs::read(&f).unwrap();
        let (_, input) = fuzz_checks::split_layout(&data);
        assert!(
            input.first().is_some_and(u8::is_ascii_hexdigit),
            "{}: the input does not start with a chunk size",
            f.display()
        );
    }
}
