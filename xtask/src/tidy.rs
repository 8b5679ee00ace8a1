//! `cargo xtask tidy`: the house rules the compiler does not check. The same check runs
//! as a `#[test]` (so `cargo test` enforces it), and `cargo xtask ci` runs this task as
//! a step.
//!
//! * every `unsafe {` block in `crates/` has a `// SAFETY:` comment right above it (or
//!   above the statement it is part of); clippy's `undocumented_unsafe_blocks` says the
//!   same for code it compiles, tidy also covers `cfg`-gated code of other platforms;
//! * every crate in `crates/` (and `benches/`, `xtask/`) sets `[lints] workspace = true`;
//! * no `print!`/`println!`/`eprint!`/`eprintln!` in library code (`crates/*/src`,
//!   outside `src/bin`, `src/main.rs` and `#[cfg(test)]` code): libraries log with `log`.
//!   A print that must stay (a last word before `abort()` in test-support code) is marked
//!   `// tidy: allow(print) <why>` on its line or the line above;
//! * no `todo!(`, `unimplemented!(` or `dbg!(` anywhere in `crates/`;
//! * `.ci/run` ends with the test command the README gives.
//!
//! The checks read source text line by line, which is enough for rustfmt-formatted code;
//! the manifests are the workspace members `cargo metadata` lists, read with a TOML parser.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::flags::Flags;
use crate::util;

/// One broken rule, at a place.
#[derive(Debug, PartialEq, Eq)]
struct Problem {
    path: PathBuf,
    line: usize,
    what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.what)
    }
}

/// `cargo xtask tidy`.
pub(crate) fn run(args: Vec<String>) -> anyhow::Result<()> {
    Flags::new("tidy", args).finish()?;
    let problems = check(&util::project_root())?;
    for p in &problems {
        println!("{p}");
    }
    match problems.len() {
        0 => {
            println!("tidy: ok");
            Ok(())
        }
        n => anyhow::bail!("tidy: {n} problem(s)"),
    }
}

/// Checks the tree under `root`; paths in the problems are relative to it.
fn check(root: &Path) -> anyhow::Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let crates = root.join("crates");

    let mut files = Vec::new();
    rust_files(&crates, &mut files)?;
    files.sort();
    for file in &files {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let rel = file.strip_prefix(root).unwrap_or(file).to_path_buf();
        let mut found = Vec::new();
        found.extend(unsafe_without_safety(&text));
        found.extend(debug_macros(&text));
        if is_library_file(&rel) {
            found.extend(prints_in_library(&text));
        }
        found.sort();
        problems.extend(found.into_iter().map(|(line, what)| Problem {
            path: rel.clone(),
            line,
            what,
        }));
    }

    // The workspace's own manifests (crates/*, benches, xtask), from cargo.
    let metadata = util::Metadata::load(&root.join("Cargo.toml"))?;
    let mut manifests: Vec<PathBuf> = metadata
        .packages
        .into_iter()
        .map(|p| p.manifest_path)
        .collect();
    manifests.sort();
    for manifest in manifests {
        let text = fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let path = manifest
            .strip_prefix(root)
            .unwrap_or(&manifest)
            .to_path_buf();
        match uses_workspace_lints(&text) {
            Ok(true) => {}
            Ok(false) => problems.push(Problem {
                path,
                line: 1,
                what: "does not set `[lints] workspace = true`".to_owned(),
            }),
            Err(e) => problems.push(Problem {
                path,
                line: 1,
                what: format!("not TOML: {}", e.to_string().trim()),
            }),
        }
    }

    if let Some(p) = ci_run_matches_readme(root)? {
        problems.push(p);
    }
    Ok(problems)
}

/// Every `.rs` file under `dir`, skipping `target` folders and hidden ones.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Library code: `crates/<c>/src/**`, except binaries and test-only files.
fn is_library_file(rel: &Path) -> bool {
    let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
    if parts.len() < 4 || parts[0] != "crates" || parts[2] != "src" {
        return false;
    }
    let inner = &parts[3..];
    let last = inner.last().map(|s| s.as_ref()).unwrap_or("");
    !(inner[0] == "bin"
        || (inner.len() == 1 && last == "main.rs")
        || last == "tests.rs"
        || inner[..inner.len() - 1].iter().any(|d| d == "tests"))
}

/// The part of a line that is code: without a trailing `//` comment, and with string and
/// char literal contents blanked (so braces and macro names inside them do not count).
fn code_part(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '/' if chars.get(i + 1) == Some(&'/') => break,
            '"' => {
                out.push('"');
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                out.push('"');
            }
            '\'' if chars.get(i + 2) == Some(&'\'') => {
                out.push_str("' '");
                i += 2;
            }
            '\'' if chars.get(i + 1) == Some(&'\\') => {
                out.push_str("' '");
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// The text of a doc comment line (`///`, `//!`), if it is one.
fn doc_text(line: &str) -> Option<&str> {
    let t = line.trim_start();
    t.strip_prefix("///").or_else(|| t.strip_prefix("//!"))
}

/// Whether `code` calls the macro `name` (`name!(`, not `my_name!(`).
fn calls_macro(code: &str, name: &str) -> bool {
    let pat = format!("{name}!");
    code.match_indices(&pat).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Whether `code` opens an unsafe block (`unsafe {`, not `unsafe fn`/`unsafe impl`).
fn opens_unsafe_block(code: &str) -> bool {
    code.match_indices("unsafe").any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + "unsafe".len()..].trim_start();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with('{')
    })
}

/// `unsafe {` blocks with no `// SAFETY:` comment above them. The comment may sit right
/// above the line, or above the statement the block is part of (code lines that continue
/// a statement, ending in `(`, `,`, `=` and the like, may come between).
fn unsafe_without_safety(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !opens_unsafe_block(&code_part(line)) || doc_text(line).is_some() {
            continue;
        }
        if !has_safety_comment_above(&lines, i) {
            out.push((
                i + 1,
                "`unsafe` block without a `// SAFETY:` comment above it".to_owned(),
            ));
        }
    }
    out
}

fn has_safety_comment_above(lines: &[&str], at: usize) -> bool {
    if lines[at].contains("// SAFETY:") {
        return true;
    }
    let mut in_comment_run = false;
    for line in lines[..at].iter().rev() {
        let t = line.trim();
        if t.starts_with("//") {
            if t.starts_with("// SAFETY:") {
                return true;
            }
            in_comment_run = true;
        } else if t.starts_with("#[") || t.starts_with("#![") {
            continue;
        } else if in_comment_run || t.is_empty() {
            return false;
        } else {
            // A code line: the block may be an argument of a statement that began above.
            let code = code_part(t);
            let code = code.trim_end();
            let continues = [
                "(", ",", "=", "[", "&&", "||", "+", "-", "*", "|", "=>", "?", ".", "!",
            ]
            .iter()
            .any(|end| code.ends_with(end))
                || code.starts_with('.');
            if !continues {
                return false;
            }
        }
    }
    false
}

/// `todo!(`, `unimplemented!(` and `dbg!(` in code or doc examples (not in `//` notes).
fn debug_macros(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = match doc_text(line) {
            Some(doc) => code_part(doc),
            None => code_part(line),
        };
        for name in ["todo", "unimplemented", "dbg"] {
            if calls_macro(&code, name) {
                out.push((i + 1, format!("`{name}!` left in the code")));
            }
        }
    }
    out
}

/// The marker that allows one print in library code, on its line or in a `//` comment
/// right above it, followed by the reason (say, a message just before `abort()` in test
/// support code, where no logger may be installed).
const ALLOW_PRINT: &str = "tidy: allow(print)";

/// Printing macros in library code outside `#[cfg(test)]` items.
fn prints_in_library(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    // After `#[cfg(test)]`: the next item, up to its closing brace or `;`, is test code.
    let mut test_attr = false;
    let mut test_depth: Option<i64> = None;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let code = code_part(line);
        let t = code.trim();
        if let Some(depth) = test_depth.as_mut() {
            *depth += brace_balance(&code);
            if *depth <= 0 && (code.contains('}') || t.ends_with(';')) {
                test_depth = None;
            }
            continue;
        }
        if t.starts_with("#[cfg(test)]") || t.starts_with("#[cfg(all(test") {
            test_attr = true;
            continue;
        }
        if test_attr && !t.is_empty() && !t.starts_with("#[") {
            test_attr = false;
            let depth = brace_balance(&code);
            if depth > 0 {
                test_depth = Some(depth);
            }
            continue;
        }
        let allowed = line.contains(ALLOW_PRINT)
            || (i > 0
                && lines[i - 1]
                    .trim_start()
                    .starts_with(&format!("// {ALLOW_PRINT}")));
        for name in ["println", "print", "eprintln", "eprint"] {
            if calls_macro(&code, name) && !allowed {
                out.push((
                    i + 1,
                    format!("`{name}!` in library code (log with the `log` crate)"),
                ));
            }
        }
    }
    out
}

fn brace_balance(code: &str) -> i64 {
    code.chars().fold(0, |n, c| match c {
        '{' => n + 1,
        '}' => n - 1,
        _ => n,
    })
}

/// Whether a manifest inherits the workspace lints (`[lints] workspace = true`, in any
/// TOML spelling).
fn uses_workspace_lints(manifest: &str) -> Result<bool, toml_edit::TomlError> {
    let doc = toml_edit::Document::parse(manifest)?;
    let workspace = doc.get("lints").and_then(|l| l.get("workspace"));
    Ok(workspace.and_then(|w| w.as_bool()) == Some(true))
}

/// `.ci/run` must end with the test command the README gives (the last command of the
/// script appears on a line of its own in the README).
fn ci_run_matches_readme(root: &Path) -> anyhow::Result<Option<Problem>> {
    let (Ok(script), Ok(readme)) = (
        fs::read_to_string(root.join(".ci/run")),
        fs::read_to_string(root.join("README.md")),
    ) else {
        return Ok(None);
    };
    let last = script
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let command = last.strip_prefix("exec ").unwrap_or(last);
    if readme.lines().any(|l| l.trim() == command) {
        Ok(None)
    } else {
        Ok(Some(Problem {
            path: ".ci/run".into(),
            line: script.lines().count(),
            what: format!("ends with `{command}`, which is not the README's test command"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_workspace() {
        let problems = check(&util::project_root()).unwrap();
        let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            problems.is_empty(),
            "house rules broken (see `cargo xtask tidy`):\n{}",
            list.join("\n")
        );
    }

    fn lines(found: Vec<(usize, String)>) -> Vec<usize> {
        found.into_iter().map(|(l, _)| l).collect()
    }

    #[test]
    fn unsafe_needs_a_safety_comment() {
        let text = "\
fn a() {
    // SAFETY: fd is open.
    let n = syscall!(unsafe { libc::close(fd) })?;
    let m = unsafe { f() };
    // A plain note.
    let k = unsafe { g() };
    // SAFETY: both pointers are valid.
    let r = call(
        a,
        unsafe { h() },
    );
    foo();
    let s = unsafe {
        i()
    };
    /// unsafe { in docs }
    // unsafe { in a note }
    let s = \"unsafe { in a string }\";
    unsafe fn ok() {}
    #[allow(x)]
    let t = unsafe { j() }; // SAFETY: on the same line
}";
        assert_eq!(lines(unsafe_without_safety(text)), vec![4, 6, 13]);
    }

    #[test]
    fn safety_above_attributes_counts_but_not_across_blank_lines() {
        let text =
            "// SAFETY: ok\n#[allow(clippy::x)]\nunsafe { a() }\n// SAFETY: x\n\nunsafe { b() }\n";
        assert_eq!(lines(unsafe_without_safety(text)), vec![6]);
    }

    #[test]
    fn debug_macros_are_found_in_code_and_doc_examples() {
        let text = "\
let a = todo!();
// todo!() in a plain note is fine
/// dbg!(x) in a doc example is not
let s = \"unimplemented!()\";
my_todo!(x);
unimplemented!(\"later\")";
        assert_eq!(lines(debug_macros(text)), vec![1, 3, 6]);
    }

    #[test]
    fn prints_are_found_outside_test_code() {
        let text = "\
//! println!(\"doc example\");
fn f() {
    println!(\"no\");
    log::info!(\"yes\");
    let c = '{';
    eprintln!(\"no\");
}
#[cfg(test)]
mod tests {
    fn g() {
        println!(\"fine in tests\");
    }
}
fn h() {
    print!(\"no\");
}
#[cfg(test)]
use std::println;
fn k() { eprint!(\"no\") }
fn abort() {
    // tidy: allow(print) the last word before abort(), with no logger installed
    eprintln!(\"aborting\");
    eprintln!(\"not this one\");
    eprintln!(\"nor this\"); // tidy: allow(print) one of a kind
}";
        assert_eq!(lines(prints_in_library(text)), vec![3, 6, 15, 19, 23]);
    }

    #[test]
    fn library_files() {
        for (path, lib) in [
            ("crates/squall-poller/src/lib.rs", true),
            ("crates/squall-poller/src/sys/mod.rs", true),
            ("crates/squall-poller/src/main.rs", false),
            ("crates/squall-poller/src/bin/tool.rs", false),
            ("crates/squall-poller/src/tests.rs", false),
            ("crates/squall-poller/src/tests/cases.rs", false),
            ("crates/squall-poller/tests/conformance.rs", false),
            ("crates/squall-poller/examples/counting.rs", false),
            ("xtask/src/main.rs", false),
        ] {
            assert_eq!(is_library_file(Path::new(path)), lib, "{path}");
        }
    }

    #[test]
    fn workspace_lints_spellings() {
        let lints = |text: &str| uses_workspace_lints(text).unwrap();
        assert!(lints(
            "[package]\nname = \"a\"\n\n[lints]\nworkspace = true\n"
        ));
        assert!(lints("lints.workspace = true\n[package]\n"));
        assert!(lints("lints = { workspace = true }\n"));
        assert!(!lints("[package]\nname = \"a\"\n"));
        assert!(!lints("[package]\nworkspace = true\n"));
        assert!(!lints("[lints]\nworkspace = false\n"));
        assert!(!lints("[lints]\n# workspace = true\n"));
        assert!(uses_workspace_lints("[lints\nworkspace = true\n").is_err());
    }
}
