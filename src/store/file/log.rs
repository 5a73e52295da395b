//! The log file payload (layout.md §9.4 "Log files"): the name, the record count, then
//! `len u32 | bytes` per record; saved and loaded inside the crash-safe
//! [`envelope`].
#![forbid(unsafe_code)]

use std::path::Path;

use crate::store::error::StoreError;
use crate::store::file::envelope::{self, LOG_MAGIC};
use crate::store::file::payload::{put_text, put_u32, Reader};
use crate::store::log::Log;

/// Saves `log` as `name` to `path` crash-safely; returns the file's size in bytes.
///
/// # Errors
/// As [`envelope::save`].
pub fn save(path: &Path, name: &str, log: &Log) -> Result<usize, StoreError> {
    envelope::save(path, LOG_MAGIC, &encode(name, log))
}

/// Loads the log saved in `path`; returns its saved name and the log.
///
/// # Errors
/// As [`envelope::load`] and [`decode`].
pub fn load(path: &Path) -> Result<(String, Log), StoreError> {
    envelope::load(path, LOG_MAGIC, decode)
}

/// Serializes a log: name, record count, then `len u32 | bytes` per record.
pub fn encode(name: &str, log: &Log) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + log.record_bytes() + 4 * log.len());
    put_text(&mut out, name);
    out.extend_from_slice(&(log.len() as u64).to_le_bytes());
    for r in log.range(0, log.len()) {
        put_u32(&mut out, r.len());
        out.extend_from_slice(r);
    }
    out
}

/// Rebuilds a log from a payload.
///
/// # Errors
/// [`StoreError::Corrupt`] when the records do not exactly fill the payload.
pub fn decode(payload: &[u8]) -> Result<(String, Log), StoreError> {
    let mut c = Reader::new(payload);
    let name = c.text()?.to_string();
    let n = c.u64()?;
    if n.saturating_mul(4) > (payload.len() - c.at()) as u64 {
        return Err(StoreError::corrupt("record count runs past the payload"));
    }
    let mut log = Log::new();
    for _ in 0..n {
        let len = c.count(1)?;
        log.append(c.take(len)?)?;
    }
    if c.at() != payload.len() {
        return Err(StoreError::corrupt("bytes left over after the records"));
    }
    Ok((name, log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::file::envelope::{frame, unframe, write_atomic};
    use std::fs;

    #[test]
    fn logs_round_trip_and_writes_are_atomic() {
        let mut log = Log::new();
        for i in 0..1000u32 {
            log.append(format!("record {i}").as_bytes()).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("chunkring-persist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("comms.log");
        write_atomic(&path, &frame(LOG_MAGIC, &encode("comms", &log))).unwrap();
        let file = fs::read(&path).unwrap();
        let (name, back) = decode(unframe(LOG_MAGIC, &file).unwrap()).unwrap();
        assert_eq!(name, "comms");
        assert_eq!(back.range(0, 2000), log.range(0, 2000));
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
        fs::remove_dir_all(&dir).unwrap();
    }
}
