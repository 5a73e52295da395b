//! POSIX shm regions named `chunkring-<name>` (layout.md §1, §12), via the `shared_memory` crate.
//!
//! The object is created with `O_CREAT | O_EXCL` and mode 0600 (owner only) by the worker,
//! which alone unlinks it, and which holds the exclusive lock of [`guard`] on it while it
//! serves. A leftover object whose worker is gone (no lock, and a dead or stopped worker in
//! its header) is replaced; one whose worker is alive is refused. Attaching refuses an object
//! that is not this user's own with mode 0600.

use std::ptr::NonNull;
use std::sync::Arc;

use shared_memory::{Shmem, ShmemConf, ShmemError};

use super::{guard, sigbus, validate_name, Backing, Region, RegionConfig, RegionError};
use crate::layout::{WORKER_FAILED, WORKER_STOPPED};
use crate::liveness::pid_alive;

/// The shm object name for a region name (`/chunkring-<name>`).
pub fn os_id(name: &str) -> String {
    format!("/chunkring-{name}")
}

/// The path the object appears at on Linux.
pub fn dev_shm_path(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/dev/shm/chunkring-{name}"))
}

/// A POSIX shm mapping.
pub struct ShmBacking {
    /// First field, so dropped first: the mapping leaves the SIGBUS table before `shmem`
    /// unmaps it.
    _sigbus: sigbus::Registration,
    shmem: std::sync::Mutex<Shmem>,
    base: NonNull<u8>,
    len: usize,
    /// The worker's own descriptor of the object: holds the [`guard::lock_served`] lock.
    lock: Option<std::fs::File>,
}

// SAFETY: the mapping is process-wide; `Shmem` is only touched (dropped, owner flag) under the
// mutex, and the bytes are accessed with atomics and copies (see region/mod.rs).
unsafe impl Send for ShmBacking {}
// SAFETY: as for Send.
unsafe impl Sync for ShmBacking {}

impl std::fmt::Debug for ShmBacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmBacking")
            .field("base", &self.base)
            .field("len", &self.len)
            .finish()
    }
}

impl ShmBacking {
    fn from_shmem(shmem: Shmem) -> Result<ShmBacking, RegionError> {
        let len = shmem.len();
        let base = NonNull::new(shmem.as_ptr())
            .ok_or_else(|| RegionError::Os("mmap returned null".to_owned()))?;
        Ok(ShmBacking {
            _sigbus: sigbus::register(base.as_ptr(), len),
            shmem: std::sync::Mutex::new(shmem),
            base,
            len,
            lock: None,
        })
    }

    /// Whether dropping this backing unlinks the object.
    pub fn set_owner(&self, owner: bool) {
        if let Ok(mut s) = self.shmem.lock() {
            s.set_owner(owner);
        }
    }
}

impl Backing for ShmBacking {
    fn base(&self) -> NonNull<u8> {
        self.base
    }

    fn len(&self) -> usize {
        self.len
    }

    fn file_len(&self) -> Option<u64> {
        self.lock.as_ref()?.metadata().ok().map(|m| m.len())
    }
}

fn os_error(what: &str, name: &str, e: ShmemError) -> RegionError {
    match e {
        ShmemError::MappingIdExists => {
            RegionError::Exists(format!("chunkring-{name} already exists"))
        }
        ShmemError::MapOpenFailed(_) => {
            RegionError::NotFound(format!("no region chunkring-{name} ({e})"))
        }
        other => RegionError::Os(format!("{what} chunkring-{name}: {other}")),
    }
}

/// Creates `chunkring-<name>` for `config` and writes its header (state `STARTING`). A
/// leftover object whose worker is dead or stopped is unlinked and replaced.
///
/// # Errors
/// [`RegionError::Exists`] when a live worker serves that name; others as the OS reports.
pub fn create(name: &str, config: &RegionConfig) -> Result<(Region, Arc<ShmBacking>), RegionError> {
    validate_name(name)?;
    config.validate()?;
    let size = config.region_bytes() as usize;
    let shmem = match ShmemConf::new().os_id(os_id(name)).size(size).create() {
        Ok(s) => s,
        Err(ShmemError::MappingIdExists) => {
            replace_stale(name)?;
            ShmemConf::new()
                .os_id(os_id(name))
                .size(size)
                .create()
                .map_err(|e| os_error("create", name, e))?
        }
        Err(e) => return Err(os_error("create", name, e)),
    };
    let mut backing = ShmBacking::from_shmem(shmem)?;
    let path = dev_shm_path(name);
    let lock = std::fs::File::open(&path)
        .map_err(|e| RegionError::Os(format!("open {}: {e}", path.display())))?;
    guard::lock_served(&lock, &path)?;
    // shm_open's mode is filtered by the umask; make it exactly owner-only.
    lock.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| RegionError::Os(format!("chmod {}: {e}", path.display())))?;
    backing.lock = Some(lock);
    let backing = Arc::new(backing);
    let region = Region::init(backing.clone(), config)?;
    Ok((region, backing))
}

/// Attaches to an existing `chunkring-<name>` and validates its header; refuses an object
/// that is not this user's own with mode 0600.
///
/// # Errors
/// [`RegionError::NotFound`], [`RegionError::Refused`], [`RegionError::BadHeader`], or an
/// OS error.
pub fn attach(name: &str) -> Result<Region, RegionError> {
    validate_name(name)?;
    let shmem = ShmemConf::new()
        .os_id(os_id(name))
        .open()
        .map_err(|e| os_error("open", name, e))?;
    let backing = ShmBacking::from_shmem(shmem)?;
    backing.set_owner(false);
    let path = dev_shm_path(name);
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| RegionError::Os(format!("stat {}: {e}", path.display())))?;
    guard::check_owner_only(&meta, &path)?;
    let region = Region::wrap(Arc::new(backing));
    region.validate()?;
    Ok(region)
}

/// Unlinks a leftover object if the worker it names is gone.
fn replace_stale(name: &str) -> Result<(), RegionError> {
    if guard::is_served(&dev_shm_path(name)) {
        return Err(RegionError::Exists(format!(
            "chunkring-{name} is served by a live worker (it holds the region's lock)"
        )));
    }
    let stale = match attach(name) {
        Ok(region) => {
            let state = region.header().worker_state();
            state == WORKER_STOPPED || state == WORKER_FAILED || !pid_alive(region.header().worker_pid())
        }
        // A region we cannot read (torn creation, old version) is stale if nobody serves it;
        // we cannot know the pid, so refuse rather than guess.
        Err(e) => {
            return Err(RegionError::Exists(format!(
                "chunkring-{name} exists and is not a readable region ({e}); remove {} if no worker uses it",
                dev_shm_path(name).display()
            )))
        }
    };
    if !stale {
        return Err(RegionError::Exists(format!(
            "chunkring-{name} is served by a live worker"
        )));
    }
    std::fs::remove_file(dev_shm_path(name))
        .map_err(|e| RegionError::Os(format!("unlink stale chunkring-{name}: {e}")))
}
