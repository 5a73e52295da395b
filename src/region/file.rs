//! Regions in an ordinary file (`--file PATH`), mapped with memmap2 (layout.md §1).
//!
//! The worker creates the file (or reuses one of its own regions: a regular file it owns that is
//! empty or starts with the region magic and that no live worker has locked), sets mode 0600,
//! takes the exclusive lock of [`guard`] and only then sizes and initialises it; the client maps
//! the same file after checking that it is the user's own and 0600. The file is left in place at
//! exit so it can be inspected.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use memmap2::MmapMut;

use super::{guard, sigbus, Backing, Region, RegionConfig, RegionError};
use crate::layout::REGION_MAGIC;

/// A file mapping.
#[derive(Debug)]
pub struct FileBacking {
    /// First field, so dropped first: the mapping leaves the SIGBUS table before `map`
    /// unmaps it.
    _sigbus: sigbus::Registration,
    map: MmapMut,
    base: NonNull<u8>,
    /// The worker's open file: holds the [`guard::lock_served`] lock while the region lives.
    _lock: Option<File>,
}

// SAFETY: the mapping is process-wide and accessed only with atomics and copies through raw
// pointers (see region/mod.rs); `map` is only dropped.
unsafe impl Send for FileBacking {}
// SAFETY: as for Send.
unsafe impl Sync for FileBacking {}

impl Backing for FileBacking {
    fn base(&self) -> NonNull<u8> {
        self.base
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn file_len(&self) -> Option<u64> {
        self._lock.as_ref()?.metadata().ok().map(|m| m.len())
    }
}

fn map(file: &File, path: &Path) -> Result<FileBacking, RegionError> {
    // SAFETY: the mapping aliases a file other processes may change; we never form references
    // into it (only raw-pointer atomics and copies), which is what memmap2's contract asks.
    let mut map = unsafe { MmapMut::map_mut(file) }
        .map_err(|e| RegionError::Os(format!("mmap {}: {e}", path.display())))?;
    let base = NonNull::new(map.as_mut_ptr())
        .ok_or_else(|| RegionError::Os("mmap returned null".to_owned()))?;
    Ok(FileBacking {
        _sigbus: sigbus::register(base.as_ptr(), map.len()),
        map,
        base,
        _lock: None,
    })
}

/// Creates `path` (or reuses it when it is an unserved region of this user's), makes it 0600,
/// locks it, sizes it for `config` and writes the header.
///
/// Nothing is truncated before every check passed: a symbolic link (`O_NOFOLLOW`), a file
/// that is not regular or not owned by this user, a non-empty file that does not start with
/// the region magic, and a region a live worker has locked are all refused untouched.
///
/// # Errors
/// [`RegionError::Refused`], [`RegionError::Exists`] (in use), or OS errors opening, sizing
/// or mapping the file.
pub fn create(path: &Path, config: &RegionConfig) -> Result<Region, RegionError> {
    config.validate()?;
    let os =
        |what: &str, e: std::io::Error| RegionError::Os(format!("{what} {}: {e}", path.display()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| os("create", e))?;
    let meta = file.metadata().map_err(|e| os("stat", e))?;
    if !meta.is_file() {
        return Err(RegionError::Refused(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if std::os::unix::fs::MetadataExt::uid(&meta) != guard::effective_uid() {
        return Err(RegionError::Refused(format!(
            "{} belongs to another user; refusing to use it",
            path.display()
        )));
    }
    guard::lock_served(&file, path)?;
    if meta.len() > 0 {
        let mut magic = [0u8; 8];
        let n = file.read_at(&mut magic, 0).map_err(|e| os("read", e))?;
        if magic[..n] != REGION_MAGIC[..n] && magic[..n].iter().any(|&b| b != 0) {
            return Err(RegionError::Refused(format!(
                "{} exists and is not a chunkring region; refusing to overwrite it",
                path.display()
            )));
        }
    }
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| os("chmod", e))?;
    file.set_len(0).map_err(|e| os("truncate", e))?;
    file.set_len(config.region_bytes())
        .map_err(|e| os("size", e))?;
    let mut backing = map(&file, path)?;
    backing._lock = Some(file);
    Region::init(Arc::new(backing), config)
}

/// Maps an existing region file and validates its header; refuses a file that is not this
/// user's own with mode 0600 (or is a symbolic link).
///
/// # Errors
/// [`RegionError::NotFound`], [`RegionError::Refused`], [`RegionError::BadHeader`], or an OS
/// error.
pub fn attach(path: &Path) -> Result<Region, RegionError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                RegionError::NotFound(format!("{} does not exist", path.display()))
            }
            _ => RegionError::Os(format!("open {}: {e}", path.display())),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| RegionError::Os(format!("stat {}: {e}", path.display())))?;
    guard::check_owner_only(&meta, path)?;
    let region = Region::wrap(Arc::new(map(&file, path)?));
    region.validate()?;
    Ok(region)
}
