//! The crash-safe file envelope every saved history or log travels in (layout.md §9.3
//! "History files", §9.4 "Log files").
//!
//! A file is a 24-byte header (`magic[8] | payload_len u64 | crc32 u32 | reserved u32`) and
//! the payload. Save writes a temp file beside the target, fsyncs it, renames it over the
//! target and fsyncs the directory, so a crash leaves the old file or the new one. Load opens
//! a regular file only (never blocking on a FIFO), checks the header against the file's size
//! before reading the payload, and the CRC-32 (zlib's) before decoding anything, so a torn or
//! corrupted file is refused with [`StoreError::Corrupt`] and never half-loaded.
#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::error::StoreError;
use crate::store::file::beneath::{self, OpenError};

/// Magic of a history file.
pub const HISTORY_MAGIC: [u8; 8] = *b"CRSNAP\x00\x01";
/// Magic of a log file.
pub const LOG_MAGIC: [u8; 8] = *b"CRLOG\x00\x00\x01";
/// Header bytes before the payload.
pub const HEADER_BYTES: usize = 24;

/// CRC-32 of `data` (IEEE 802.3, reflected), equal to Python's `zlib.crc32(data)`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Header + payload bytes of a file.
pub fn frame(magic: [u8; 8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    out
}

/// Checks the magic and that the header's `payload_len` is `payload_len`.
fn check_header(magic: [u8; 8], head: &[u8], payload_len: u64) -> Result<(), StoreError> {
    if head.get(..8) != Some(&magic[..]) {
        return Err(StoreError::corrupt(
            "bad magic: not a chunkring file of this kind",
        ));
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(head.get(8..16).unwrap_or(&[0; 8]));
    let len = u64::from_le_bytes(w);
    if payload_len != len {
        return Err(StoreError::corrupt(format!(
            "torn file: header says {len} payload bytes, file holds {payload_len}"
        )));
    }
    Ok(())
}

/// Checks magic, length and CRC and returns the payload.
///
/// # Errors
/// [`StoreError::Corrupt`] saying which check failed.
pub fn unframe(magic: [u8; 8], file: &[u8]) -> Result<&[u8], StoreError> {
    let head = file.get(..HEADER_BYTES).ok_or_else(|| {
        StoreError::corrupt(format!(
            "file of {} bytes is shorter than its header",
            file.len()
        ))
    })?;
    let payload = &file[HEADER_BYTES..];
    check_header(magic, head, payload.len() as u64)?;
    let mut c = [0u8; 4];
    c.copy_from_slice(&head[16..20]);
    if crc32(payload) != u32::from_le_bytes(c) {
        return Err(StoreError::corrupt(
            "checksum mismatch: the file is corrupted",
        ));
    }
    Ok(payload)
}

/// Writes `bytes` to `path` crash-safely: temp file, fsync, rename, fsync of the directory.
///
/// The temp file is created beside `path` under a random name (`.NAME.tmp-<16 hex digits>`)
/// with `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600: a name planted in advance (a symbolic
/// link, a file) is never opened, only skipped, so another user cannot make the worker write
/// through it; the saved file is the owner's alone.
///
/// # Errors
/// [`StoreError::Io`] naming the step and the path; [`StoreError::NoFileName`] for a path
/// without a file name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let name = path
        .file_name()
        .ok_or_else(|| StoreError::NoFileName(path.to_path_buf()))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (mut f, tmp) = create_temp(dir, name)?;
    let result = (|| {
        f.write_all(bytes)
            .map_err(|e| StoreError::io("cannot write", &tmp, e))?;
        f.sync_all()
            .map_err(|e| StoreError::io("cannot fsync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| StoreError::io("cannot rename onto", path, e))?;
        if let Ok(d) = File::open(dir) {
            // Makes the rename durable; not every filesystem supports fsync on a directory.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates a new, empty, 0600 temp file in `dir` for `name` under a random name that did not
/// exist (`O_CREAT | O_EXCL | O_NOFOLLOW`), trying a few names before giving up.
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> Result<(File, PathBuf), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut last = None;
    for _ in 0..8 {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{:016x}", random_u64()));
        let tmp = dir.join(tmp_name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((e, tmp)),
            Err(e) => return Err(StoreError::io("cannot create", &tmp, e)),
        }
    }
    let (e, tmp) = last.unwrap_or_else(|| (std::io::Error::other("no name tried"), dir.into()));
    Err(StoreError::io("cannot create", &tmp, e))
}

/// 64 random bits from the kernel (`/dev/urandom`); if that cannot be read, the clock's
/// nanoseconds mixed with the pid (`O_EXCL` keeps a guessed name harmless either way).
fn random_u64() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now ^ (u64::from(std::process::id()) << 40)
}

/// Saves `payload` to `path` crash-safely in an envelope with `magic`; returns the file's
/// size in bytes.
///
/// # Errors
/// As [`write_atomic`].
pub fn save(path: &Path, magic: [u8; 8], payload: &[u8]) -> Result<usize, StoreError> {
    let file = frame(magic, payload);
    write_atomic(path, &file)?;
    Ok(file.len())
}

/// Reads the file at `path`, checks its envelope and hands the payload to `decode`.
///
/// # Errors
/// As [`read_file`] and [`unframe`], or `decode`'s error.
pub fn load<T>(
    path: &Path,
    magic: [u8; 8],
    decode: impl FnOnce(&[u8]) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let file = read_file(path, magic)?;
    decode(unframe(magic, &file)?)
}

/// Largest history or log file `load` reads.
pub const MAX_FILE_BYTES: u64 = 1 << 32;

/// Reads a whole file for [`unframe`], refusing anything but a regular file of at most
/// [`MAX_FILE_BYTES`].
///
/// The file is opened with `O_NONBLOCK` (a FIFO is refused, never waited on), its type and
/// size are checked on the open descriptor, and the header's magic and `payload_len` are
/// checked against `magic` and the file's size before the payload is read: a file that is not
/// ours costs 24 bytes of reading, whatever its size.
///
/// # Errors
/// [`StoreError::NotARegularFile`], [`StoreError::FileTooLarge`], [`StoreError::Io`];
/// [`StoreError::Corrupt`] for a header that does not match, as [`unframe`] says it.
pub fn read_file(path: &Path, magic: [u8; 8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Read;
    let (mut f, size) = beneath::open_regular(path, MAX_FILE_BYTES).map_err(|e| match e {
        OpenError::NotRegular => StoreError::NotARegularFile(path.to_path_buf()),
        OpenError::TooLarge { .. } => StoreError::FileTooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_BYTES,
        },
        OpenError::Io(e) => StoreError::io("cannot open", path, e),
        other => StoreError::io(
            "cannot open",
            path,
            std::io::Error::other(other.to_string()),
        ),
    })?;
    let Some(payload_len) = size.checked_sub(HEADER_BYTES as u64) else {
        // Too short for a header: `unframe` says so.
        return beneath::read_all(f, size).map_err(|e| StoreError::io("cannot read", path, e));
    };
    let mut head = [0u8; HEADER_BYTES];
    f.read_exact(&mut head)
        .map_err(|e| StoreError::io("cannot read", path, e))?;
    check_header(magic, &head, payload_len)?;
    let mut out = head.to_vec();
    out.extend(
        beneath::read_all(f, payload_len).map_err(|e| StoreError::io("cannot read", path, e))?,
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_zlib() {
        // zlib.crc32(b"123456789") == 0xCBF43926 (the CRC-32 check value).
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
