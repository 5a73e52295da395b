//! Regions in an ordinary file (`--file PATH`), mapped with memmap2 (layout.md §1).
//!
//! The worker creates (or truncates) the file with mode 0600 and maps it shared; the client
//! maps the same file. The file is left in place at exit so it can be inspected.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use memmap2::MmapMut;

use super::{Backing, Region, RegionConfig, RegionError};

/// A file mapping.
#[derive(Debug)]
pub struct FileBacking {
    map: MmapMut,
    base: NonNull<u8>,
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
}

fn map(file: &std::fs::File, path: &Path) -> Result<FileBacking, RegionError> {
    // SAFETY: the mapping aliases a file other processes may change; we never form references
    // into it (only raw-pointer atomics and copies), which is what memmap2's contract asks.
    let mut map = unsafe { MmapMut::map_mut(file) }
        .map_err(|e| RegionError::Os(format!("mmap {}: {e}", path.display())))?;
    let base = NonNull::new(map.as_mut_ptr())
        .ok_or_else(|| RegionError::Os("mmap returned null".to_owned()))?;
    Ok(FileBacking { map, base })
}

/// Creates (or truncates) `path` with mode 0600, sizes it for `config` and writes the header.
///
/// # Errors
/// OS errors opening, sizing or mapping the file.
pub fn create(path: &Path, config: &RegionConfig) -> Result<Region, RegionError> {
    config.validate()?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| RegionError::Os(format!("create {}: {e}", path.display())))?;
    file.set_len(config.region_bytes())
        .map_err(|e| RegionError::Os(format!("size {}: {e}", path.display())))?;
    Region::init(Arc::new(map(&file, path)?), config)
}

/// Maps an existing region file and validates its header.
///
/// # Errors
/// [`RegionError::NotFound`], [`RegionError::BadHeader`], or an OS error.
pub fn attach(path: &Path) -> Result<Region, RegionError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                RegionError::NotFound(format!("{} does not exist", path.display()))
            }
            _ => RegionError::Os(format!("open {}: {e}", path.display())),
        })?;
    let region = Region::wrap(Arc::new(map(&file, path)?));
    region.validate()?;
    Ok(region)
}
