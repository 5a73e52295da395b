//! The pieces of the `chunkring` binary's command line, one file per command.

pub mod call;
pub mod inspect;
pub mod python;
pub mod serve;

use chunkring::layout::LAYOUT_VERSION;

/// The top-level help.
pub const USAGE: &str = "\
chunkring: a shared-memory worker for Python (the client is `import chunkring`)

usage: chunkring <command> [options]

commands:
  serve      run a worker on a shared-memory region (what Client.spawn starts)
  inspect    print a live region's header, rings and counters
  call       run one op once, body from files or stdin, answer on stdout (pipe mode)
  demo       run chunkring on a folder against the pure-Python way (needs the Python package)
  bench      run the benchmarks (needs the Python package)

options:
  -h, --help     show this help; `chunkring <command> --help` shows a command's
  -V, --version  print the version of chunkring and of its wire layout

exit status: 0 success, 1 the command failed, 2 bad usage; `call` exits with the
wire error code of a failed op (chunkring call --help).
The wire contract is layout.md; pipe mode is its section 17.";

/// `chunkring 0.1.0 (layout 1)`: the package version (Cargo.toml, which the wheel's version
/// also comes from) and the wire layout version.
pub fn version_line() -> String {
    format!(
        "chunkring {} (layout {LAYOUT_VERSION})",
        env!("CARGO_PKG_VERSION")
    )
}

/// Why a command stopped: a one-line message for stderr and the exit status.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub status: u8,
}

impl Failure {
    /// Exit status 1: the command was well formed but failed.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: 1,
        }
    }

    /// Exit status 2: the command line is wrong.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: 2,
        }
    }

    /// Exit status 2: `command` was given `what`, which it does not take.
    pub fn unknown(command: &str, what: &str, arg: &str) -> Failure {
        Failure::usage(format!(
            "{command}: unknown {what} {arg:?} (try chunkring {command} --help)"
        ))
    }

    /// Exit status 2: `command` misses `what`.
    pub fn missing(command: &str, what: &str) -> Failure {
        Failure::usage(format!(
            "{command} needs {what} (try chunkring {command} --help)"
        ))
    }
}

/// Splits a command line on whitespace (tests).
#[cfg(test)]
pub fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// Is any argument `-h` or `--help`?
pub fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "-h" || a == "--help")
}

/// Pulls `--flag VALUE` pairs and bare words out of `args`.
pub struct Args<'a> {
    rest: &'a [String],
}

impl<'a> Args<'a> {
    pub fn new(rest: &'a [String]) -> Args<'a> {
        Args { rest }
    }

    #[allow(clippy::should_implement_trait)] // not an Iterator: `value` also consumes words
    pub fn next(&mut self) -> Option<&'a str> {
        let (first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    /// The word after `flag`, parsed.
    pub fn value<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, Failure> {
        let v = self
            .next()
            .ok_or_else(|| Failure::usage(format!("{flag} needs a value")))?;
        v.parse()
            .map_err(|_| Failure::usage(format!("{flag}: cannot parse {v:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_or_name_their_flag() {
        let w = words("--size 4096 --spin-us x --name");
        let mut a = Args::new(&w);
        assert_eq!(a.next(), Some("--size"));
        assert_eq!(a.value::<u64>("--size"), Ok(4096));
        assert_eq!(a.next(), Some("--spin-us"));
        let e = a.value::<u64>("--spin-us").unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (2, "--spin-us: cannot parse \"x\"")
        );
        assert_eq!(a.next(), Some("--name"));
        assert_eq!(
            a.value::<String>("--name").unwrap_err().message,
            "--name needs a value"
        );
    }

    #[test]
    fn help_is_found_anywhere_and_the_version_names_the_layout() {
        assert!(wants_help(&words("--name x --help")));
        assert!(wants_help(&words("-h")));
        assert!(!wants_help(&words("--name help")));
        assert!(version_line().starts_with("chunkring 0."));
        assert!(version_line().ends_with("(layout 1)"));
    }
}
