//! Where one ring's index words, park words and chunks live (STYLE.md §4).
//!
//! The ring algorithm (`producer.rs`, `consumer.rs`) never touches raw memory: it goes
//! through [`RingMemory`]. [`MappedMemory`] is the production implementation over a mapped
//! region (shm, file, or an aligned heap buffer for unit tests and Miri); `model.rs` is the
//! loom one. Both are driven by byte-for-byte the same algorithm.
//!
//! Park words are handed out as values implementing `wait`'s [`ParkWord`]: the ring sits
//! above `wait` and implements what it asks for; `wait` knows nothing of rings.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use super::geometry::Geometry;
use crate::sync::mapped;
use crate::sync::Ordering;
use crate::wait::futex;
use crate::wait::{ParkWord, WaitOutcome};

/// A ring's 64-bit index words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// The consumer's position (written by the consumer only).
    Head,
    /// The producer's position (written by the producer only).
    Tail,
}

/// The 32-bit park (futex) words of the two sides of a ring (layout.md §4, §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Park {
    /// The word the consumer of this ring parks on while it waits for frames.
    Consumer,
    /// The word the producer of this ring parks on while it waits for room.
    Producer,
}

/// The memory one ring runs over: index words and chunk copies for the ring algorithm, park
/// words for `wait`.
pub trait RingMemory {
    /// A park word of this memory, borrowed from it.
    type ParkWord<'a>: ParkWord
    where
        Self: 'a;
    /// Chunk count and size: powers of two (chunk ≥ `FRAME_HEADER_BYTES`), validated when
    /// the region was attached.
    fn geometry(&self) -> Geometry;
    /// Loads an index word.
    fn load(&self, w: Word, o: Ordering) -> u64;
    /// Stores an index word.
    fn store(&self, w: Word, v: u64, o: Ordering);
    /// One side's park word ([W1]–[W6] run on it through `wait`).
    fn park_word(&self, p: Park) -> Self::ParkWord<'_>;
    /// Copies `src` into the ring's data at byte `offset`.
    ///
    /// # Safety
    /// * `offset + src.len()` ≤ `geometry().ring_bytes()`;
    /// * the caller is the producer and owns those bytes: they lie in chunks between the
    ///   published tail and `head + geometry().chunks` (checked by `Producer::try_push`).
    unsafe fn write(&self, offset: usize, src: &[u8]);
    /// Copies ring data at byte `offset` into `dst`.
    ///
    /// # Safety
    /// * `offset + dst.len()` ≤ `geometry().ring_bytes()`;
    /// * the caller is the consumer and the bytes lie in chunks between `head` and a `tail`
    ///   it loaded and ordered with `barrier_read()` ([R5]).
    unsafe fn read(&self, offset: usize, dst: &mut [u8]);
}

/// Keeps a mapping alive for as long as any [`MappedMemory`] over it exists.
pub trait KeepAlive: Send + Sync + fmt::Debug {}
impl<T: Send + Sync + fmt::Debug> KeepAlive for T {}

/// Where one ring lives inside a mapped region: byte offsets from the region's base.
#[derive(Debug, Clone, Copy)]
pub struct RingPlace {
    /// Offset of chunk 0.
    pub data_offset: usize,
    /// Number of chunks (power of two).
    pub chunk_count: u64,
    /// Bytes per chunk (power of two).
    pub chunk_bytes: usize,
    /// Offset of the `u64` head word.
    pub head_offset: usize,
    /// Offset of the `u64` tail word.
    pub tail_offset: usize,
    /// Offset of the consumer's `u32` park word.
    pub consumer_park_offset: usize,
    /// Offset of the producer's `u32` park word.
    pub producer_park_offset: usize,
}

/// A ring over mapped bytes that another process may write at any time.
///
/// It holds raw pointers only. The only references it ever forms into the mapping are the
/// `&AtomicU64`/`&AtomicU32` of a single load or store, which is sound because atomics allow
/// concurrent writers; chunk bytes are only ever copied with `ptr::copy_nonoverlapping`.
pub struct MappedMemory {
    base: NonNull<u8>,
    place: RingPlace,
    _keep: Arc<dyn KeepAlive>,
}

impl fmt::Debug for MappedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedMemory")
            .field("base", &self.base)
            .field("place", &self.place)
            .finish()
    }
}

// SAFETY: MappedMemory only holds a pointer into a mapping that `_keep` keeps alive; all
// accesses through it are atomics or copies whose exclusivity the ring protocol provides,
// which does not depend on the thread that performs them.
unsafe impl Send for MappedMemory {}

impl MappedMemory {
    /// A ring at `place` inside the mapping that starts at `base`.
    ///
    /// # Safety
    /// * `base` points to a mapping of at least `len` bytes that stays mapped while `keep` lives;
    /// * `base` is 8-byte aligned;
    /// * every other process or thread touches the index and park words only with aligned
    ///   atomic-width accesses (layout.md §10 "Atomicity assumptions").
    ///
    /// # Errors
    /// A message when `place` does not fit in `len` bytes or a word is misaligned.
    pub unsafe fn new(
        base: NonNull<u8>,
        len: usize,
        place: RingPlace,
        keep: Arc<dyn KeepAlive>,
    ) -> Result<Self, String> {
        let data_end = (place.chunk_count as usize)
            .checked_mul(place.chunk_bytes)
            .and_then(|n| n.checked_add(place.data_offset));
        if data_end.is_none_or(|end| end > len) {
            return Err(format!(
                "ring at {:#x} of {} chunks runs past the {len}-byte mapping",
                place.data_offset, place.chunk_count
            ));
        }
        for (off, width) in [
            (place.head_offset, 8),
            (place.tail_offset, 8),
            (place.consumer_park_offset, 4),
            (place.producer_park_offset, 4),
        ] {
            if off % width != 0 || off + width > len {
                return Err(format!(
                    "control word at {off:#x} is misaligned or outside the mapping"
                ));
            }
        }
        if !(base.as_ptr() as usize).is_multiple_of(8) {
            return Err("mapping base is not 8-byte aligned".to_owned());
        }
        Ok(MappedMemory {
            base,
            place,
            _keep: keep,
        })
    }

    fn word64(&self, w: Word) -> *mut u64 {
        let off = match w {
            Word::Head => self.place.head_offset,
            Word::Tail => self.place.tail_offset,
        };
        // SAFETY: `new` checked that `off + 8` lies inside the mapping.
        unsafe { self.base.as_ptr().add(off).cast::<u64>() }
    }

    fn word32(&self, p: Park) -> *mut u32 {
        let off = match p {
            Park::Consumer => self.place.consumer_park_offset,
            Park::Producer => self.place.producer_park_offset,
        };
        // SAFETY: `new` checked that `off + 4` lies inside the mapping.
        unsafe { self.base.as_ptr().add(off).cast::<u32>() }
    }

    fn data(&self, offset: usize, len: usize) -> *mut u8 {
        debug_assert!(offset + len <= self.place.chunk_count as usize * self.place.chunk_bytes);
        // SAFETY: the caller's contract (RingMemory::read/write) keeps `offset + len` inside the
        // ring's data, which `new` checked lies inside the mapping.
        unsafe { self.base.as_ptr().add(self.place.data_offset + offset) }
    }
}

impl RingMemory for MappedMemory {
    type ParkWord<'a> = MappedParkWord<'a>;

    fn geometry(&self) -> Geometry {
        Geometry {
            chunks: self.place.chunk_count,
            chunk_bytes: self.place.chunk_bytes,
        }
    }

    fn load(&self, w: Word, o: Ordering) -> u64 {
        // SAFETY: aligned, inside the live mapping (checked in `new`); every writer uses
        // atomic-width accesses (the `new` contract), so no data race in Rust's sense.
        unsafe { mapped::load_u64(self.word64(w), o) }
    }

    fn store(&self, w: Word, v: u64, o: Ordering) {
        // SAFETY: as in `load`.
        unsafe { mapped::store_u64(self.word64(w), v, o) }
    }

    fn park_word(&self, p: Park) -> MappedParkWord<'_> {
        MappedParkWord {
            word: self.word32(p),
            _mem: PhantomData,
        }
    }

    unsafe fn write(&self, offset: usize, src: &[u8]) {
        // SAFETY: the destination is inside the ring (caller contract) and owned by this
        // producer, so no one reads it concurrently; `src` is our own buffer and cannot overlap
        // the mapping's ring data because we never form slices into it.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.data(offset, src.len()), src.len())
        }
    }

    unsafe fn read(&self, offset: usize, dst: &mut [u8]) {
        // SAFETY: the source is inside the ring and published (caller contract); `dst` is our
        // own buffer. A hostile producer may still be writing those bytes: we only copy them,
        // never reference them, and validate the copy afterwards.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data(offset, dst.len()), dst.as_mut_ptr(), dst.len())
        }
    }
}

/// A park word inside a mapped region; the borrow of its [`MappedMemory`] keeps the mapping
/// alive while the word is used.
#[derive(Debug, Clone, Copy)]
pub struct MappedParkWord<'a> {
    /// 4-byte aligned and inside the mapping (checked by `MappedMemory::new`).
    word: *mut u32,
    _mem: PhantomData<&'a MappedMemory>,
}

impl ParkWord for MappedParkWord<'_> {
    fn load(&self, o: Ordering) -> u32 {
        // SAFETY: aligned, inside the mapping the borrowed MappedMemory keeps alive (checked in
        // `MappedMemory::new`); every writer uses atomic-width accesses (the `new` contract).
        unsafe { mapped::load_u32(self.word, o) }
    }

    fn store(&self, v: u32, o: Ordering) {
        // SAFETY: as in `load`.
        unsafe { mapped::store_u32(self.word, v, o) }
    }

    fn wait(&self, expected: u32, timeout: Duration) -> WaitOutcome {
        futex::wait(self.word, expected, timeout)
    }

    fn wake(&self) {
        futex::wake(self.word);
    }
}
