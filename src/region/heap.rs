//! A region in an aligned heap buffer: the real ring code without shared memory, for unit
//! tests, two-thread tests and Miri (which cannot call shm_open or mmap).

use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::Arc;

use super::{Backing, Region, RegionConfig, RegionError};

/// Heap memory laid out like a mapped region.
#[derive(Debug)]
pub struct HeapBacking {
    /// The allocation, held as a raw pointer (from `Box::into_raw`) rather than a `Box`: moving
    /// a `Box` asserts uniqueness and would invalidate `base` (Miri's Stacked Borrows caught
    /// exactly that). Freed in `Drop`.
    words: NonNull<[UnsafeCell<u64>]>,
    base: NonNull<u8>,
}

// SAFETY: the buffer is only accessed through raw pointers with atomics and copies whose
// exclusivity the ring protocol provides (the same rules as a shared mapping).
unsafe impl Send for HeapBacking {}
// SAFETY: as for Send.
unsafe impl Sync for HeapBacking {}

impl HeapBacking {
    /// A zero-filled, 8-byte aligned buffer of at least `len` bytes.
    pub fn new(len: usize) -> HeapBacking {
        let boxed: Box<[UnsafeCell<u64>]> = (0..len.div_ceil(8).max(1))
            .map(|_| UnsafeCell::new(0))
            .collect();
        let words = NonNull::from(Box::leak(boxed));
        // UnsafeCell<u64> has the layout of u64; the pointer is derived once, from the whole
        // slice, so it may be used for every byte of it (strict provenance).
        let base = words.cast::<u8>();
        HeapBacking { words, base }
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

impl Backing for HeapBacking {
    fn base(&self) -> NonNull<u8> {
        self.base
    }

    fn len(&self) -> usize {
        self.words.len() * 8
    }
}

impl Drop for HeapBacking {
    fn drop(&mut self) {
        // SAFETY: `words` came from `Box::leak` in `new` and is freed only here; every
        // `MappedMemory` over it holds an `Arc` to this backing, so none outlives it.
        drop(unsafe { Box::from_raw(self.words.as_ptr()) });
    }
}
