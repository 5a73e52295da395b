//! Who may use a region, and whether a worker is using it (layout.md §12 "Region files and
//! ownership").
//!
//! A region is the channel between one user's client and worker: whoever can read it reads
//! every request, whoever can write it answers them. So both sides refuse a region that is not
//! a regular file owned by the current (effective) user with mode 0600, and a worker holds an
//! exclusive `flock(2)` on the region's file for as long as it serves it: a second `serve`
//! finds it locked and refuses before it truncates or re-initialises anything.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::RegionError;

/// The process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// Refuses `meta` (of the region at `path`) unless it is a regular file owned by the
/// effective user with permission bits exactly 0600.
///
/// # Errors
/// [`RegionError::Refused`] naming the rule the file breaks.
pub fn check_owner_only(meta: &Metadata, path: &Path) -> Result<(), RegionError> {
    if !meta.file_type().is_file() {
        return Err(RegionError::Refused(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(RegionError::Refused(format!(
            "{} is owned by uid {}, not by this user (uid {me})",
            path.display(),
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode != 0o600 {
        return Err(RegionError::Refused(format!(
            "{} has mode {mode:04o}, not 0600: another user could read or write it",
            path.display()
        )));
    }
    Ok(())
}

/// Takes the exclusive lock that marks `file` as served; held until `file` is closed.
///
/// # Errors
/// [`RegionError::Exists`] when another process holds it (a live worker serves the region);
/// [`RegionError::Os`] for any other failure.
pub fn lock_served(file: &File, path: &Path) -> Result<(), RegionError> {
    // SAFETY: flock(2) on a descriptor `file` owns for the duration of the call; no memory.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Err(RegionError::Exists(format!(
            "{} is in use: a live worker holds its lock",
            path.display()
        )));
    }
    Err(RegionError::Os(format!("flock {}: {e}", path.display())))
}

/// True when a worker holds the lock of the region at `path` (probes with a lock of its own,
/// released at once).
pub fn is_served(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    lock_served(&file, path).is_err()
}
