//! A tiny hand-rolled flag parser: tasks take a few boolean flags and options, not
//! enough to pay for a dependency.

use anyhow::{bail, Context};

/// The arguments of one task, consumed flag by flag; [`Flags::finish`] rejects leftovers.
pub(crate) struct Flags {
    task: &'static str,
    args: Vec<String>,
}

impl Flags {
    /// Wraps the arguments that follow the task name.
    pub(crate) fn new(task: &'static str, args: Vec<String>) -> Self {
        Flags { task, args }
    }

    /// Takes `--name` if present (every occurrence).
    pub(crate) fn flag(&mut self, name: &str) -> bool {
        let before = self.args.len();
        self.args.retain(|a| a != name);
        self.args.len() != before
    }

    /// Takes `--name VALUE` or `--name=VALUE` if present (the last occurrence wins).
    // Kept for the tasks that take options (bench, fuzz, soak); `ci` takes only flags.
    #[allow(dead_code)]
    pub(crate) fn option(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        let mut value = None;
        let mut i = 0;
        while i < self.args.len() {
            if self.args[i] == name {
                self.args.remove(i);
                if i >= self.args.len() {
                    bail!("`{} {name}` needs a value", self.task);
                }
                value = Some(self.args.remove(i));
            } else if let Some(v) = self.args[i]
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('='))
            {
                value = Some(v.to_owned());
                self.args.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(value)
    }

    /// Like [`Flags::option`], parsed with `FromStr`.
    #[allow(dead_code)]
    pub(crate) fn parsed<T>(&mut self, name: &str) -> anyhow::Result<Option<T>>
    where
        T: std::str::FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.option(name)? {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .with_context(|| format!("`{} {name} {v}`: not a valid value", self.task)),
        }
    }

    /// The arguments not taken, as positional values (`cargo xtask fuzz head chunked`);
    /// fails on any that looks like a flag (starts with `-`), since no flag is left to
    /// take it.
    pub(crate) fn positionals(self) -> anyhow::Result<Vec<String>> {
        if let Some(bad) = self.args.iter().find(|a| a.starts_with('-')) {
            bail!(
                "`cargo xtask {}` does not take {bad} (see `cargo xtask help`)",
                self.task
            );
        }
        Ok(self.args)
    }

    /// Fails if any argument was not taken.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        if self.args.is_empty() {
            Ok(())
        } else {
            bail!(
                "`cargo xtask {}` does not take {} (see `cargo xtask help`)",
                self.task,
                self.args.join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Flags;

    fn flags(args: &[&str]) -> Flags {
        Flags::new("t", args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn flags_are_taken_and_leftovers_rejected() {
        let mut f = flags(&["--quick", "--bogus"]);
        assert!(f.flag("--quick"));
        assert!(!f.flag("--no-cross"));
        let err = f.finish().unwrap_err().to_string();
        assert!(err.contains("--bogus"), "{err}");

        let mut f = flags(&["--quick"]);
        assert!(f.flag("--quick"));
        f.finish().unwrap();
    }

    #[test]
    fn options_take_both_spellings() {
        let mut f = flags(&["--time", "5", "--name=x", "--n=7"]);
        assert_eq!(f.option("--time").unwrap().as_deref(), Some("5"));
        assert_eq!(f.option("--name").unwrap().as_deref(), Some("x"));
        assert_eq!(f.parsed::<u32>("--n").unwrap(), Some(7));
        f.finish().unwrap();

        let mut f = flags(&["--time"]);
        assert!(f.option("--time").is_err());

        let mut f = flags(&["--n", "seven"]);
        assert!(f.parsed::<u32>("--n").is_err());
    }

    #[test]
    fn positionals_are_what_is_left() {
        let mut f = flags(&["head", "--seconds", "5", "chunked"]);
        assert_eq!(f.parsed::<u64>("--seconds").unwrap(), Some(5));
        assert_eq!(f.positionals().unwrap(), vec!["head", "chunked"]);

        let mut f = flags(&["head", "--bogus"]);
        assert_eq!(f.parsed::<u64>("--seconds").unwrap(), None);
        let err = f.positionals().unwrap_err().to_string();
        assert!(err.contains("--bogus"), "{err}");
    }
}
