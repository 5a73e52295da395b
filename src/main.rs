//! `chunkring` command line: `serve` and `inspect`. Argument parsing only; the work is in
//! `chunkring::worker` and `chunkring::inspect`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chunkring::region::{file, shm, RegionConfig};
use chunkring::worker::{serve, Place, ServeOptions};

const USAGE: &str = "\
usage:
  chunkring serve (--name NAME | --file PATH) [--size RING_BYTES] [--chunk-size BYTES]
                  [--owner-pid PID] [--spin-us N] [--park-timeout-ms N] [--max-message BYTES]
  chunkring inspect (NAME | --file PATH) [--json]

serve    creates the region (POSIX shm chunkring-NAME, or the file) and answers requests
         until SIGINT/SIGTERM, an OP_SHUTDOWN request, or the death of --owner-pid.
         --size is the bytes of each ring (power of two, default 4 MiB);
         --chunk-size the bytes per chunk (power of two, 32..=4096, default 64).
inspect  prints a live region's header, rings and counters.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => cmd_serve(&args[1..]),
        Some("inspect") => cmd_inspect(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("expected a command\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chunkring: {e}");
            ExitCode::from(2)
        }
    }
}

/// Pulls `--flag VALUE` pairs and bare words out of `args`.
struct Args<'a> {
    rest: &'a [String],
}

impl<'a> Args<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let (first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    fn value<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, String> {
        let v = self.next().ok_or_else(|| format!("{flag} needs a value"))?;
        v.parse().map_err(|_| format!("{flag}: cannot parse {v:?}"))
    }
}

fn cmd_serve(args: &[String]) -> Result<(), String> {
    let mut a = Args { rest: args };
    let mut place = None;
    let mut config = RegionConfig::default();
    let mut owner_pid = None;
    let mut spin = Duration::from_micros(50);
    while let Some(flag) = a.next() {
        match flag {
            "--name" => place = Some(Place::Shm(a.value("--name")?)),
            "--file" => place = Some(Place::File(PathBuf::from(a.value::<String>("--file")?))),
            "--size" => config.ring_bytes = a.value("--size")?,
            "--chunk-size" => config.chunk_bytes = a.value("--chunk-size")?,
            "--owner-pid" => owner_pid = Some(a.value("--owner-pid")?),
            "--spin-us" => spin = Duration::from_micros(a.value("--spin-us")?),
            "--park-timeout-ms" => {
                config.park_timeout_us = a.value::<u64>("--park-timeout-ms")?.saturating_mul(1000)
            }
            "--max-message" => config.max_message_bytes = a.value("--max-message")?,
            other => return Err(format!("serve: unknown argument {other:?}\n{USAGE}")),
        }
    }
    let place = place.ok_or_else(|| format!("serve needs --name NAME or --file PATH\n{USAGE}"))?;
    let reason = serve(&ServeOptions {
        place,
        config,
        owner_pid,
        spin,
    })
    .map_err(|e| e.to_string())?;
    eprintln!("chunkring: worker stopped ({reason:?})");
    Ok(())
}

fn cmd_inspect(args: &[String]) -> Result<(), String> {
    let mut a = Args { rest: args };
    let mut json = false;
    let mut region = None;
    while let Some(arg) = a.next() {
        match arg {
            "--json" => json = true,
            "--file" => {
                let path: String = a.value("--file")?;
                region =
                    Some(file::attach(std::path::Path::new(&path)).map_err(|e| e.to_string())?);
            }
            name if !name.starts_with('-') => {
                region = Some(shm::attach(name).map_err(|e| e.to_string())?)
            }
            other => return Err(format!("inspect: unknown argument {other:?}\n{USAGE}")),
        }
    }
    let region = region.ok_or_else(|| format!("inspect needs NAME or --file PATH\n{USAGE}"))?;
    let v = chunkring::inspect::report(&region);
    if json {
        println!("{v:#}");
    } else {
        print!("{}", chunkring::inspect::table(&v));
    }
    Ok(())
}
