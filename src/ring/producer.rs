//! The producer end of a ring: reserve → copy in → publish (layout.md §6.3, steps [R1]–[R4]).

use std::fmt;

use super::geometry::Geometry;
use super::memory::{Park, RingMemory, Word};
use crate::barrier::{barrier_read_at, barrier_write_at, Step};
use crate::frame::{frame_chunks, frame_crc, trailer_len, FrameHeader};
use crate::layout::FRAME_HEADER_BYTES;
use crate::sync::Ordering;

/// Why a frame was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// Not enough free chunks now; retry after the consumer releases some.
    Full,
    /// The frame needs more chunks than the ring has; it can never be written.
    TooLarge {
        /// Chunks the frame needs.
        needed: u64,
        /// Chunks in the ring.
        chunks: u64,
    },
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full => f.write_str("full ring"),
            PushError::TooLarge { needed, chunks } => {
                write!(
                    f,
                    "frame of {needed} chunks does not fit a ring of {chunks} chunks"
                )
            }
        }
    }
}

impl std::error::Error for PushError {}

/// Writes frames into a ring and publishes them with one tail store per batch.
#[derive(Debug)]
pub struct Producer<M: RingMemory> {
    mem: M,
    geo: Geometry,
    /// Next position to write. Always in sync: only we write it.
    tail: u64,
    /// The tail value last stored to shared memory.
    published: u64,
    /// The consumer's head as last loaded. May be stale (only ever behind).
    cached_head: u64,
    /// Padding frames written so far.
    padding_frames: u64,
}

impl<M: RingMemory> Producer<M> {
    /// Takes the producer end of `mem`, continuing from the tail stored there.
    pub fn new(mem: M) -> Producer<M> {
        let geo = mem.geometry();
        // ORDERING: Relaxed; we are the only writer of tail, and [R1] below orders head.
        let tail = mem.load(Word::Tail, Ordering::Relaxed);
        let mut p = Producer {
            mem,
            geo,
            tail,
            published: tail,
            cached_head: tail.saturating_sub(geo.chunks),
            padding_frames: 0,
        };
        p.refresh_head();
        p
    }

    /// The word this producer parks on while it waits for room (`PARKED_FOR_ROOM`,
    /// [W1]–[W4] in `wait::WaitPolicy::park`).
    pub fn park_word(&self) -> M::ParkWord<'_> {
        self.mem.park_word(Park::Producer)
    }

    /// The word the consumer parks on while it waits for frames. After [`publish`](Self::publish)
    /// reports a tail store, the owner of the decision (the worker) wakes the consumer through
    /// it with `wait::notify` ([W5]–[W6]); the producer itself never wakes anyone.
    pub fn consumer_park_word(&self) -> M::ParkWord<'_> {
        self.mem.park_word(Park::Consumer)
    }

    /// The ring's geometry.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// Padding frames written since this producer was created.
    pub fn padding_frames(&self) -> u64 {
        self.padding_frames
    }

    /// Free chunks according to the cached head.
    fn free(&self) -> u64 {
        self.geo.chunks - (self.tail - self.cached_head)
    }

    /// [R1]: reload the consumer's head. A value outside `cached_head..=published` cannot come
    /// from a correct consumer and is ignored (we keep the old, safe value).
    fn refresh_head(&mut self) {
        // ORDERING [R1]: Relaxed load, made an acquire by the barrier_read() below.
        let head = self.mem.load(Word::Head, Ordering::Relaxed);
        // [R1] The consumer's copy-out of the chunks it released happens-before our overwrite
        // of them. Pairs with barrier_write() before the head store in `Consumer::release`.
        barrier_read_at(Step::R1);
        if head >= self.cached_head && head <= self.published {
            self.cached_head = head;
        }
    }

    /// Has the consumer released chunks since we last looked? One Relaxed load, no side
    /// effects: for the re-check of a park ([W3]); `try_push` does the ordered load ([R1]).
    pub fn peek_room(&self) -> bool {
        // ORDERING: Relaxed; [W2]'s barrier_memory() orders it after the PARKED store.
        self.mem.load(Word::Head, Ordering::Relaxed) != self.cached_head
    }

    /// Is there room for a frame of `payload_len` bytes (padding included)? Reloads the head.
    pub fn has_room(&mut self, payload_len: usize) -> bool {
        let need = self.chunks_needed(frame_chunks(payload_len, self.geo.chunk_bytes));
        need <= self.free() || {
            self.refresh_head();
            need <= self.free()
        }
    }

    fn chunks_needed(&self, n: u64) -> u64 {
        let to_end = self.geo.to_end(self.tail);
        if n > to_end {
            n + to_end
        } else {
            n
        }
    }

    /// Writes one frame (and a padding frame first if it would cross the ring's end), without
    /// publishing it. `header.payload_len` is set from `payload`. With `FLAG_CRC` in
    /// `header.flags` the frame (and its padding) gets its CRC-32 trailer (layout.md §6.6),
    /// computed from `header` and `payload`, never read back from the ring.
    ///
    /// # Errors
    /// [`PushError::Full`] when the consumer has not released enough chunks (a padding frame
    /// may have been written, so the retry starts at chunk 0); [`PushError::TooLarge`] when the
    /// frame can never fit.
    pub fn try_push(&mut self, header: &FrameHeader, payload: &[u8]) -> Result<(), PushError> {
        let trailer = trailer_len(header.flags);
        let n = frame_chunks(payload.len() + trailer, self.geo.chunk_bytes);
        if n > self.geo.chunks || payload.len() > u32::MAX as usize {
            return Err(PushError::TooLarge {
                needed: n,
                chunks: self.geo.chunks,
            });
        }
        let to_end = self.geo.to_end(self.tail);
        let pad = if n > to_end { to_end } else { 0 };
        if self.free() < pad + n {
            self.refresh_head();
            if self.free() < pad + n {
                if pad > 0 && self.free() >= pad {
                    self.write_padding(pad, trailer > 0);
                }
                return Err(PushError::Full);
            }
        }
        if pad > 0 {
            self.write_padding(pad, trailer > 0);
        }
        let mut h = *header;
        h.payload_len = payload.len() as u32;
        let offset = self.geo.offset(self.tail);
        let encoded = h.encode();
        // SAFETY: chunks `tail .. tail + n` are free (`free() >= n` above, so they lie below
        // `cached_head + chunks`) and owned by this producer; `offset + 32 + len + trailer` ≤
        // `offset + n * chunk_bytes` ≤ ring bytes because `n` ≤ `to_end` after padding.
        unsafe {
            self.mem.write(offset, &encoded);
            self.mem.write(offset + FRAME_HEADER_BYTES, payload);
            if trailer > 0 {
                let crc = frame_crc(&encoded, payload).to_le_bytes();
                self.mem
                    .write(offset + FRAME_HEADER_BYTES + payload.len(), &crc);
            }
        }
        self.tail += n;
        Ok(())
    }

    /// Writes `bytes` verbatim at the tail as if they were a frame of `chunks` chunks (no
    /// padding, no validation), unpublished. For tests and fuzzers that need malformed frames.
    ///
    /// # Errors
    /// [`PushError::Full`] or [`PushError::TooLarge`] when the chunks are not free before the end.
    #[doc(hidden)]
    pub fn push_raw(&mut self, bytes: &[u8], chunks: u64) -> Result<(), PushError> {
        let fits = chunks >= 1 && bytes.len() as u64 <= chunks * self.geo.chunk_bytes as u64;
        if !fits || chunks > self.geo.to_end(self.tail) {
            return Err(PushError::TooLarge {
                needed: chunks,
                chunks: self.geo.to_end(self.tail),
            });
        }
        if self.free() < chunks {
            self.refresh_head();
            if self.free() < chunks {
                return Err(PushError::Full);
            }
        }
        // SAFETY: `chunks` free chunks before the ring's end (checked above) are ours and
        // hold `bytes` (checked above).
        unsafe { self.mem.write(self.geo.offset(self.tail), bytes) };
        self.tail += chunks;
        Ok(())
    }

    /// [R2] for a padding frame covering the `pad` chunks up to the ring's end, with a CRC
    /// trailer (of its header alone) when `crc` and it has room for one (layout.md §6.6).
    fn write_padding(&mut self, pad: u64, crc: bool) {
        let h = FrameHeader::padding(pad, self.geo.chunk_bytes, crc);
        let offset = self.geo.offset(self.tail);
        let encoded = h.encode();
        // SAFETY: the caller checked `free() >= pad`, so the chunks up to the ring's end are
        // ours; the header fits the first of them (chunk_bytes ≥ 32).
        unsafe { self.mem.write(offset, &encoded) };
        if h.has_crc() {
            let at = offset + FRAME_HEADER_BYTES + h.payload_len as usize;
            // SAFETY: the same chunks, ours as above; `payload_len` leaves the trailer's 4
            // bytes before the ring's end, so they end exactly there.
            unsafe { self.mem.write(at, &frame_crc(&encoded, &[]).to_le_bytes()) };
        }
        self.tail += pad;
        self.padding_frames += 1;
    }

    /// Makes every frame written since the last publish visible with one tail store.
    /// Returns whether the tail moved (false when there was nothing to publish); only then
    /// may a parked consumer need a wake ([W5]–[W6], the caller's decision).
    pub fn publish(&mut self) -> bool {
        if self.tail == self.published {
            return false;
        }
        // [R3] The frame bytes written above happen-before the tail store below, otherwise
        // the consumer could see the new tail and read a torn frame.
        // Pairs with barrier_read() after the tail load in `Consumer::refresh_tail` and in
        // `_ring.py` (the client's consumer).
        barrier_write_at(Step::R3);
        // ORDERING [R4]: Relaxed store; the release comes from barrier_write() above.
        self.mem.store(Word::Tail, self.tail, Ordering::Relaxed);
        self.published = self.tail;
        true
    }

    /// Chunks written but not yet published.
    pub fn unpublished_chunks(&self) -> u64 {
        self.tail - self.published
    }
}
