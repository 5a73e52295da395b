//! A region in an aligned heap buffer: the real ring code without shared memory, for unit
//! tests, two-thread tests and Miri (which cannot call shm_open or mmap).

use std::ptr::NonNull;
use std::sync::Arc;

use super::{Backing, Region, RegionConfig, RegionError};

/// Heap memory laid out like a mapped region.
///
/// The allocation is owned through a raw pointer, not a `Box` field: moving a struct that
/// holds a `Box` retags the box as unique, which under Stacked Borrows invalidates every raw
/// pointer derived from it earlier — `base`, and with it every ring access (Miri reported
/// exactly that). `Box::into_raw` gives up the uniqueness claim for good.
#[derive(Debug)]
pub struct HeapBacking {
    /// Start of the `words`-long `u64` allocation made by `Box::into_raw`; freed in `Drop`.
    base: NonNull<u8>,
    words: usize,
}

// SAFETY: the buffer is only accessed through raw pointers with atomics and copies whose
// exclusivity the ring protocol provides (the same rules as a shared mapping).
unsafe impl Send for HeapBacking {}
// SAFETY: as for Send.
unsafe impl Sync for HeapBacking {}

impl HeapBacking {
    /// A zero-filled, 8-byte aligned buffer of at least `len` bytes.
    pub fn new(len: usize) -> HeapBacking {
        let words = len.div_ceil(8);
        let raw: *mut [u64] = Box::into_raw(vec![0u64; words].into_boxed_slice());
        // The pointer is derived once, from the whole slice, so it may be used for every byte
        // of it (strict provenance). `Box::into_raw` never returns null.
        let base = NonNull::new(raw.cast::<u8>()).unwrap_or(NonNull::dangling());
        HeapBacking { base, words }
    }

    /// A heap region initialised for `config` (worker state `STARTING`).
    ///
    /// # Errors
    /// As [`Region::init`].
    pub fn region(config: &RegionConfig) -> Result<Region, RegionError> {
        Region::init(
            Arc::new(HeapBacking::new(config.region_bytes() as usize)),
            config,
        )
    }
}

impl Drop for HeapBacking {
    fn drop(&mut self) {
        let raw = std::ptr::slice_from_raw_parts_mut(self.base.as_ptr().cast::<u64>(), self.words);
        // SAFETY: `raw` is exactly the pointer and length `Box::into_raw` returned in `new`,
        // and this is the only place that frees it.
        drop(unsafe { Box::from_raw(raw) });
    }
}

impl Backing for HeapBacking {
    fn base(&self) -> NonNull<u8> {
        self.base
    }

    fn len(&self) -> usize {
        self.words * 8
    }
}
