//! `chunkring serve`: argument parsing → `chunkring::worker::serve`.

use std::path::PathBuf;
use std::time::Duration;

use chunkring::layout::FRAME_CRC_REQUIRED;
use chunkring::region::RegionConfig;
use chunkring::worker::{serve, Place, ServeOptions, StopReason};

use super::{wants_help, Args, Failure};

pub const USAGE: &str = "\
usage: chunkring serve (--name NAME | --file PATH) [--size RING_BYTES] [--chunk-size BYTES]
                       [--owner-pid PID] [--spin-us N] [--park-timeout-ms N]
                       [--max-message BYTES] [--crc]

Creates a region and answers requests on it until SIGINT/SIGTERM, an OP_SHUTDOWN request,
or the death of --owner-pid. Client.spawn() starts one of these; Client.attach(NAME) joins
one started by hand.

  --name NAME            POSIX shared memory chunkring-NAME (a file under /dev/shm)
  --file PATH            a file mapped into memory instead (left in place for inspect)
  --size RING_BYTES      bytes of each ring, a power of two (default 4 MiB)
  --chunk-size BYTES     bytes per chunk, a power of two in 32..=4096 (default 64)
  --owner-pid PID        stop when this process is gone
  --spin-us N            keep polling this long after a request before parking (default 2000;
                         a steady cadence of longer gaps is learned and dozed through)
  --park-timeout-ms N    longest park before a liveness check (default 50)
  --max-message BYTES    largest request accepted (default 1 GiB)
  --crc                  every frame in both rings carries a CRC-32 (layout.md §6.6): torn or
                         overwritten frames are refused instead of misread

exit status: 0 stopped cleanly, 1 the region could not be created or served, 2 bad usage.";

pub fn run(args: &[String]) -> Result<(), Failure> {
    if wants_help(args) {
        println!("{USAGE}");
        return Ok(());
    }
    let opts = parse(args)?;
    let reason = serve(&opts).map_err(|e| Failure::failed(e.to_string()))?;
    eprintln!("chunkring: worker stopped ({reason:?})");
    if reason == StopReason::RegionLost {
        return Err(Failure::failed(
            "region truncated by another process while serving; stopped (the requests in flight are lost)"
                .to_string(),
        ));
    }
    if reason == StopReason::HeaderChanged {
        return Err(Failure::failed(
            "the region header was overwritten while serving".to_string(),
        ));
    }
    Ok(())
}

fn parse(args: &[String]) -> Result<ServeOptions, Failure> {
    let mut a = Args::new(args);
    let mut place = None;
    let mut config = RegionConfig::default();
    let mut owner_pid = None;
    let mut spin = Duration::from_micros(2000);
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
            "--crc" => config.frame_crc = FRAME_CRC_REQUIRED,
            other => return Err(Failure::unknown("serve", "argument", other)),
        }
    }
    let place = place.ok_or_else(|| Failure::missing("serve", "--name NAME or --file PATH"))?;
    Ok(ServeOptions {
        place,
        config,
        owner_pid,
        spin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::words;

    #[test]
    fn flags_fill_the_options() {
        let o = parse(&words(
            "--name ui --size 65536 --chunk-size 128 --owner-pid 7 --park-timeout-ms 3",
        ))
        .unwrap();
        assert!(matches!(o.place, Place::Shm(ref n) if n == "ui"));
        assert_eq!((o.config.ring_bytes, o.config.chunk_bytes), (65536, 128));
        assert_eq!((o.owner_pid, o.config.park_timeout_us), (Some(7), 3000));
        assert_eq!(o.config.frame_crc, chunkring::layout::FRAME_CRC_OPTIONAL);
        let o = parse(&words("--name ui --crc")).unwrap();
        assert_eq!(o.config.frame_crc, FRAME_CRC_REQUIRED);
    }

    #[test]
    fn a_missing_place_or_an_unknown_flag_is_a_usage_error() {
        assert_eq!(parse(&words("--size 4096")).unwrap_err().status, 2);
        let e = parse(&words("--name x --bogus")).unwrap_err();
        assert_eq!(e.status, 2);
        assert!(e.message.contains("\"--bogus\""), "{}", e.message);
    }
}
