//! The `chunkring` command line: `serve`, `inspect` and `call` in Rust; `demo` and `bench`
//! handed to the Python package (`python -m chunkring`). Argument parsing only: the work is in
//! `chunkring::worker`, `chunkring::inspect` and `chunkring::pipe`.
//!
//! Installed from the wheel, this binary is the environment's `chunkring` script (maturin
//! `bindings = "bin"`), which is why it is also the entry point for the Python commands.
//!
//! Exit status: 0 success; 1 the command failed; 2 bad usage; `call` exits with the wire
//! error code of a failed op (see `chunkring call --help`).

use std::process::ExitCode;

mod cli;

use cli::{Failure, USAGE};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("serve") => cli::serve::run(rest),
        Some("inspect") => cli::inspect::run(rest),
        Some("call") => cli::call::run(rest),
        Some(command @ ("demo" | "bench")) => cli::python::run(command, rest),
        Some("-V" | "--version" | "version") => {
            println!("{}", cli::version_line());
            Ok(())
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(Failure::usage(format!(
            "unknown command {other:?} (try chunkring --help)"
        ))),
        None => Err(Failure::usage(
            "expected a command: serve, inspect, call, demo or bench (try chunkring --help)",
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("chunkring: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}
