//! The consumer end of a ring: poll → copy out → validate → release (layout.md §6.5,
//! steps [R5]–[R6]).
//!
//! Shared memory is untrusted: the header is copied out before any field is read, every
//! length is checked against the published chunks and the ring's end before the payload is
//! copied, and a frame that fails a check is skipped (or, when its extent cannot be trusted,
//! everything published is discarded) and reported — never a panic, never an out-of-bounds read.

use std::fmt;

use super::geometry::Geometry;
use super::memory::{Park, RingMemory, Word};
use crate::barrier::{barrier_read_at, barrier_write_at, Step};
use crate::frame::{frame_crc, FrameError, FrameHeader};
use crate::layout::{FRAME_CRC_BYTES, FRAME_HEADER_BYTES};
use crate::sync::Ordering;

/// Why `poll` returned no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollError {
    /// A frame broke a rule of layout.md §6; it was skipped (or the ring resynchronised).
    Malformed {
        /// The header as copied (fields may be garbage).
        header: FrameHeader,
        /// The rule it broke.
        error: FrameError,
        /// True when everything published was discarded (§6.5).
        resynced: bool,
    },
    /// The producer stored a tail outside `head..=head + chunks`, or moved it backwards.
    TailOutOfRange {
        /// The tail it stored.
        tail: u64,
        /// Our head.
        head: u64,
    },
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::Malformed {
                error,
                resynced: true,
                ..
            } => {
                write!(f, "{error}; discarded everything published up to now")
            }
            PollError::Malformed { error, .. } => write!(f, "{error}; frame skipped"),
            PollError::TailOutOfRange { tail, head } => {
                write!(
                    f,
                    "producer stored tail {tail}, outside head {head} ..= head + ring chunks"
                )
            }
        }
    }
}

impl std::error::Error for PollError {}

/// Reads frames from a ring.
#[derive(Debug)]
pub struct Consumer<M: RingMemory> {
    mem: M,
    geo: Geometry,
    /// Next position to read. Always in sync: only we write it.
    head: u64,
    /// The producer's tail as last loaded and validated. May be stale (only ever behind).
    cached_tail: u64,
    /// A bad tail already reported, so it is reported once, not on every poll.
    reported_bad_tail: Option<u64>,
    /// Padding frames skipped so far.
    padding_frames: u64,
    /// Refuse frames without `FLAG_CRC` (layout.md §6.6, `FRAME_CRC_REQUIRED`).
    require_crc: bool,
}

impl<M: RingMemory> Consumer<M> {
    /// Takes the consumer end of `mem`, continuing from the head stored there.
    pub fn new(mem: M) -> Consumer<M> {
        let geo = mem.geometry();
        // ORDERING: Relaxed; we are the only writer of head.
        let head = mem.load(Word::Head, Ordering::Relaxed);
        Consumer {
            mem,
            geo,
            head,
            cached_tail: head,
            reported_bad_tail: None,
            padding_frames: 0,
            require_crc: false,
        }
    }

    /// From now on refuse (and resynchronise on) every frame without `FLAG_CRC`, padding
    /// included (layout.md §6.6, `FRAME_CRC_REQUIRED`).
    pub fn require_crc(&mut self, on: bool) {
        self.require_crc = on;
    }

    /// The word this consumer parks on while it waits for frames (`PARKED`, [W1]–[W4] in
    /// `wait::WaitPolicy::park`).
    pub fn park_word(&self) -> M::ParkWord<'_> {
        self.mem.park_word(Park::Consumer)
    }

    /// The word the producer parks on while it waits for room. When [`head`](Self::head) has
    /// moved (every `poll` that returns a frame releases its chunks), the owner of the decision
    /// (the worker) wakes the producer through it with `wait::notify` ([W5]–[W6]); the
    /// consumer itself never wakes anyone.
    pub fn producer_park_word(&self) -> M::ParkWord<'_> {
        self.mem.park_word(Park::Producer)
    }

    /// The ring's geometry.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// The next position to read (our head; stored to shared memory on every release).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Padding frames skipped since this consumer was created.
    pub fn padding_frames(&self) -> u64 {
        self.padding_frames
    }

    /// [R5]: reload the producer's tail and validate it.
    fn refresh_tail(&mut self) -> Result<(), PollError> {
        // ORDERING [R5]: Relaxed load, made an acquire by the barrier_read() below.
        let tail = self.mem.load(Word::Tail, Ordering::Relaxed);
        // [R5] Frame reads below happen after the producer's frame writes. Pairs with
        // barrier_write() before the tail store in `Producer::publish` and in `_ring.py`.
        barrier_read_at(Step::R5);
        if tail < self.cached_tail || tail - self.head > self.geo.chunks {
            if self.reported_bad_tail == Some(tail) {
                return Ok(());
            }
            self.reported_bad_tail = Some(tail);
            return Err(PollError::TailOutOfRange {
                tail,
                head: self.head,
            });
        }
        self.cached_tail = tail;
        Ok(())
    }

    /// Is a frame (or padding) published and not yet read? Reloads the tail when needed.
    pub fn has_data(&mut self) -> bool {
        self.head != self.cached_tail || {
            // A bad tail is reported by the next `poll`; here it only means "look".
            let bad = self.refresh_tail().is_err();
            bad || self.head != self.cached_tail
        }
    }

    /// Has the producer published past our head? One Relaxed load, no side effects: for the
    /// re-check of a park ([W3]); `poll` does the ordered load ([R5]).
    pub fn peek_ready(&self) -> bool {
        // ORDERING: Relaxed; [W2]'s barrier_memory() orders it after the PARKED store, and
        // the frame itself is read only after `poll`'s [R5].
        self.mem.load(Word::Tail, Ordering::Relaxed) != self.head
    }

    /// Reads the next frame: its header is returned and its payload copied into
    /// `buf[..header.payload_len]` (`buf` grows as needed and is never shrunk). Padding frames
    /// are skipped. `Ok(None)` when nothing is published.
    ///
    /// # Errors
    /// [`PollError::Malformed`] for a frame that breaks layout.md §6 (already skipped);
    /// [`PollError::TailOutOfRange`] for a producer that stored an impossible tail.
    pub fn poll(&mut self, buf: &mut Vec<u8>) -> Result<Option<FrameHeader>, PollError> {
        self.poll_at(buf, 0)
    }

    /// [`poll`](Self::poll), with the payload copied to `buf[at..at + header.payload_len]`:
    /// a fragment lands straight after the bytes already reassembled
    /// (`Reassembler::landing`), so a message is copied out of the ring once. `buf` grows
    /// as needed (to at most `at` + one ring) and is never shrunk.
    ///
    /// # Errors
    /// As for [`poll`](Self::poll).
    pub fn poll_at(
        &mut self,
        buf: &mut Vec<u8>,
        at: usize,
    ) -> Result<Option<FrameHeader>, PollError> {
        loop {
            if self.head == self.cached_tail {
                self.refresh_tail()?;
                if self.head == self.cached_tail {
                    return Ok(None);
                }
            }
            let offset = self.geo.offset(self.head);
            let mut raw = [0u8; FRAME_HEADER_BYTES];
            // SAFETY: chunk `head` is published (`head < cached_tail`, ordered by [R5]) and the
            // header fits inside it (chunk_bytes ≥ 32), so `offset + 32` ≤ ring bytes.
            unsafe { self.mem.read(offset, &mut raw) };
            let header = FrameHeader::decode(&raw);
            let published = self.cached_tail - self.head;
            let to_end = self.geo.to_end(self.head);
            let checked = header.check(self.geo.chunk_bytes, published, to_end);
            if let Err(error) = checked {
                if error.needs_resync() {
                    return Err(self.resync(header, error));
                }
            }
            // The extent is within the published chunks and the ring: safe to read, not yet
            // trusted. With a checksum nothing else is trusted before it matches (§6.6).
            let n = header.chunks(self.geo.chunk_bytes);
            let len = header.crc_covered_len();
            if buf.len() < at + len {
                buf.resize(at + len, 0);
            }
            let dst = &mut buf[at..at + len];
            // SAFETY: `check` proved the frame's `n` chunks are published and end before the
            // ring's end, so `offset + 32 + len` ≤ `offset + n * chunk_bytes` ≤ ring bytes;
            // `dst` is `len` bytes of our own buffer (resized above to `at + len`), which no
            // other process can see.
            unsafe { self.mem.read(offset + FRAME_HEADER_BYTES, dst) };
            if let Err(error) = self.verify_crc(&raw, &header, offset, dst) {
                return Err(self.resync(header, error));
            }
            self.head += n;
            self.release();
            if let Err(error) = checked {
                return Err(PollError::Malformed {
                    header,
                    error,
                    resynced: false,
                });
            }
            if header.is_padding() {
                self.padding_frames += 1;
                continue;
            }
            return Ok(Some(header));
        }
    }

    /// §6.5: the frame at `head` cannot be trusted, so neither can anything after it up to
    /// the observed tail: discard it all.
    fn resync(&mut self, header: FrameHeader, error: FrameError) -> PollError {
        self.head = self.cached_tail;
        self.release();
        PollError::Malformed {
            header,
            error,
            resynced: true,
        }
    }

    /// §6.6: a frame with `FLAG_CRC` must match its trailer (computed over our copies of the
    /// header and payload, so a write after the copy cannot slip in); a frame without it is
    /// refused when checksums are required.
    fn verify_crc(
        &self,
        raw: &[u8; FRAME_HEADER_BYTES],
        header: &FrameHeader,
        offset: usize,
        covered: &[u8],
    ) -> Result<(), FrameError> {
        if !header.has_crc() {
            // `check` proved a padding frame ends the ring; one of 32 bytes cannot hold a
            // trailer, and no checksummed frame fits there to be mistaken for it.
            let exempt = header.is_padding_without_room_for_crc(self.geo.chunk_bytes);
            return if self.require_crc && !exempt {
                Err(FrameError::ChecksumMissing)
            } else {
                Ok(())
            };
        }
        let mut trailer = [0u8; FRAME_CRC_BYTES];
        let at = offset + FRAME_HEADER_BYTES + header.payload_len as usize;
        // SAFETY: `header.chunks` counts the trailer (FLAG_CRC), and `check` proved those
        // chunks published and inside the ring, so `at + 4` ≤ ring bytes.
        unsafe { self.mem.read(at, &mut trailer) };
        let trailer = u32::from_le_bytes(trailer);
        let computed = frame_crc(raw, covered);
        if trailer == computed {
            Ok(())
        } else {
            Err(FrameError::Checksum { trailer, computed })
        }
    }

    /// [R6]: hands the chunks before `head` back to the producer.
    fn release(&mut self) {
        // [R6] Our copy-out above happens-before the head store, otherwise the producer could
        // overwrite chunks we are still reading. Pairs with barrier_read() after the head load
        // in `Producer::refresh_head` and in `_ring.py`.
        barrier_write_at(Step::R6);
        // ORDERING [R6]: Relaxed store; the release comes from barrier_write() above.
        self.mem.store(Word::Head, self.head, Ordering::Relaxed);
    }

    /// Chunks published and not yet read, as last observed.
    pub fn pending_chunks(&self) -> u64 {
        self.cached_tail - self.head
    }
}
