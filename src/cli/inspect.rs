//! `chunkring inspect`: attach to a live region and print `chunkring::inspect`'s view of it.

use std::path::Path;

use chunkring::region::{file, shm};

use super::{wants_help, Args, Failure};

pub const USAGE: &str = "\
usage: chunkring inspect (NAME | --file PATH) [--json]

Prints a live region's header, both rings (head, tail, occupancy), the worker's and the
client's state, and the stats counters. Read-only: attaching changes nothing.

  NAME         the region chunkring-NAME in POSIX shared memory (as in serve --name)
  --file PATH  a region kept in a file (as in serve --file)
  --json       print JSON instead of a table

exit status: 0 printed, 1 no such region or not a valid one, 2 bad usage.";

pub fn run(args: &[String]) -> Result<(), Failure> {
    if wants_help(args) {
        println!("{USAGE}");
        return Ok(());
    }
    let mut a = Args::new(args);
    let mut json = false;
    let mut region = None;
    while let Some(arg) = a.next() {
        match arg {
            "--json" => json = true,
            "--file" => {
                let path: String = a.value("--file")?;
                region = Some(
                    file::attach(Path::new(&path)).map_err(|e| Failure::failed(e.to_string()))?,
                );
            }
            name if !name.starts_with('-') => {
                region = Some(shm::attach(name).map_err(|e| Failure::failed(e.to_string()))?)
            }
            other => return Err(Failure::unknown("inspect", "argument", other)),
        }
    }
    let region = region.ok_or_else(|| Failure::missing("inspect", "NAME or --file PATH"))?;
    let v = chunkring::inspect::report(&region);
    if json {
        println!("{v:#}");
    } else {
        print!("{}", chunkring::inspect::table(&v));
    }
    Ok(())
}
