//! `ModelMemory`: a ring built from loom atomics and loom cells, so the model checker sees
//! every index access, every chunk access and every park/wake (STYLE.md §4). Built only with
//! `--cfg chunkring_loom`; `loom-tests/` drives the real `Producer`/`Consumer` over it.
//!
//! A chunk read that is not ordered after its write (a missing `barrier_write`/`barrier_read`)
//! is reported by loom's cell tracking as a data race. The futex is a loom `Mutex` + `Condvar`
//! that re-checks the word under the lock, which is exactly futex's contract; there is no
//! timeout, so a lost wake-up shows up as a loom deadlock.

use std::sync::Arc;
use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::{Condvar, Mutex};

use super::geometry::Geometry;
use super::memory::{Park, RingMemory, Word};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::wait::{ParkWord, WaitOutcome};

#[derive(Debug)]
struct Inner {
    chunk_bytes: usize,
    chunks: Box<[UnsafeCell<Vec<u8>>]>,
    head: AtomicU64,
    tail: AtomicU64,
}

/// Two park words and the modelled futex they share. A lone ring owns one; the two rings of
/// a [`ModelMemory::pair`] share one, as a real region's one-word-per-side layout does.
#[derive(Debug)]
struct Parks {
    /// The word of whoever consumes the (request) ring: the worker's.
    first: AtomicU32,
    /// The word of whoever produces into it: the client's.
    second: AtomicU32,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Parks {
    fn new() -> Parks {
        Parks {
            first: AtomicU32::new(0),
            second: AtomicU32::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }
}

// SAFETY: chunk cells are accessed only through loom's `with`/`with_mut`, which check for
// racing accesses; everything else is loom atomics and sync types.
unsafe impl Sync for Inner {}
// SAFETY: as for Sync.
unsafe impl Send for Inner {}

/// A loom-modelled ring; clone it to hand one end to another loom thread.
#[derive(Debug, Clone)]
pub struct ModelMemory {
    inner: Arc<Inner>,
    parks: Arc<Parks>,
    /// False: `Park::Consumer` is `parks.first`. True (the response ring of a pair): the
    /// consumer's word is `parks.second` and the producer's `parks.first`.
    flipped: bool,
}

impl ModelMemory {
    /// A ring of `chunks` chunks of `chunk_bytes` bytes (chunk_bytes ≥ 32, both powers of two)
    /// with park words of its own.
    pub fn new(chunks: u64, chunk_bytes: usize) -> ModelMemory {
        ModelMemory {
            inner: Self::ring(chunks, chunk_bytes),
            parks: Arc::new(Parks::new()),
            flipped: false,
        }
    }

    /// A request ring and a response ring sharing one park word per side, as in a region
    /// (layout.md §4): the request ring's consumer word is the response ring's producer word
    /// (the worker's), and the other way round (the client's).
    pub fn pair(chunks: u64, chunk_bytes: usize) -> (ModelMemory, ModelMemory) {
        let parks = Arc::new(Parks::new());
        let request = ModelMemory {
            inner: Self::ring(chunks, chunk_bytes),
            parks: Arc::clone(&parks),
            flipped: false,
        };
        let response = ModelMemory {
            inner: Self::ring(chunks, chunk_bytes),
            parks,
            flipped: true,
        };
        (request, response)
    }

    fn ring(chunks: u64, chunk_bytes: usize) -> Arc<Inner> {
        let cells = (0..chunks)
            .map(|_| UnsafeCell::new(vec![0u8; chunk_bytes]))
            .collect();
        Arc::new(Inner {
            chunk_bytes,
            chunks: cells,
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
        })
    }

    fn park_atomic(&self, p: Park) -> &AtomicU32 {
        match (p, self.flipped) {
            (Park::Consumer, false) | (Park::Producer, true) => &self.parks.first,
            (Park::Producer, false) | (Park::Consumer, true) => &self.parks.second,
        }
    }

    /// Visits the chunk pieces `offset..offset + len` covers: (chunk index, start, end).
    fn pieces(&self, offset: usize, len: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        let cb = self.inner.chunk_bytes;
        let mut at = offset;
        let end = offset + len;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let (chunk, start) = (at / cb, at % cb);
            let stop = (end - chunk * cb).min(cb);
            at = chunk * cb + stop;
            Some((chunk, start, stop))
        })
    }
}

impl RingMemory for ModelMemory {
    type ParkWord<'a> = ModelParkWord<'a>;

    fn geometry(&self) -> Geometry {
        Geometry {
            chunks: self.inner.chunks.len() as u64,
            chunk_bytes: self.inner.chunk_bytes,
        }
    }

    fn load(&self, w: Word, o: Ordering) -> u64 {
        match w {
            Word::Head => self.inner.head.load(o),
            Word::Tail => self.inner.tail.load(o),
        }
    }

    fn store(&self, w: Word, v: u64, o: Ordering) {
        match w {
            Word::Head => self.inner.head.store(v, o),
            Word::Tail => self.inner.tail.store(v, o),
        }
    }

    fn park_word(&self, p: Park) -> ModelParkWord<'_> {
        ModelParkWord {
            word: self.park_atomic(p),
            parks: &self.parks,
        }
    }

    unsafe fn write(&self, offset: usize, src: &[u8]) {
        let mut from = 0;
        for (chunk, start, stop) in self.pieces(offset, src.len()) {
            let n = stop - start;
            self.inner.chunks[chunk].with_mut(|p| {
                // SAFETY: loom checks this access does not race another access to the chunk;
                // the caller's contract keeps it inside the ring.
                unsafe { (&mut *p)[start..stop].copy_from_slice(&src[from..from + n]) }
            });
            from += n;
        }
    }

    unsafe fn read(&self, offset: usize, dst: &mut [u8]) {
        let mut to = 0;
        for (chunk, start, stop) in self.pieces(offset, dst.len()) {
            let n = stop - start;
            self.inner.chunks[chunk].with(|p| {
                // SAFETY: as in `write`, for a shared access.
                dst[to..to + n].copy_from_slice(unsafe { &(&*p)[start..stop] })
            });
            to += n;
        }
    }
}

/// One park word of a [`ModelMemory`] and the modelled futex it shares with the other word.
#[derive(Debug, Clone, Copy)]
pub struct ModelParkWord<'a> {
    word: &'a AtomicU32,
    parks: &'a Parks,
}

impl ParkWord for ModelParkWord<'_> {
    fn load(&self, o: Ordering) -> u32 {
        self.word.load(o)
    }

    fn store(&self, v: u32, o: Ordering) {
        self.word.store(v, o)
    }

    fn wait(&self, expected: u32, _timeout: Duration) -> WaitOutcome {
        let guard = self.parks.lock.lock().unwrap();
        // The futex contract: sleep only if the word still holds `expected`, checked
        // atomically with going to sleep (here: under the lock the waker also takes).
        if self.word.load(Ordering::Relaxed) != expected {
            return WaitOutcome::Changed;
        }
        drop(self.parks.cond.wait(guard).unwrap());
        WaitOutcome::Woken
    }

    fn wake(&self) {
        let _guard = self.parks.lock.lock().unwrap();
        self.parks.cond.notify_all();
    }
}
