//! Typed access to the header page (layout.md §3, §4): identity and sizes, worker and client
//! pids and states, the heartbeat, ring positions, park words and stats counters.
//!
//! This file and `region/mod.rs` are the only code that names header offsets. Every field is
//! one aligned atomic load or store of its width (Relaxed: readers treat header fields as
//! approximate, except `WORKER_STATE`, which [`Header::set_ready`] orders with a barrier).
//! A [`Header`] is reached through `Region::header`, which keeps the mapping alive.

use std::ptr::NonNull;

use crate::barrier::barrier_write;
use crate::layout::*;
use crate::sync::mapped;
use crate::sync::Ordering;

/// One ring's positions and size as last stored (for `inspect`; the ring ends keep their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingPositions {
    /// The consumer's head.
    pub head: u64,
    /// The producer's tail.
    pub tail: u64,
    /// Chunks in the ring.
    pub chunks: u64,
}

/// The header page of a mapped region (its first `HEADER_BYTES`).
#[derive(Debug)]
pub struct Header {
    /// Start of the mapping: 8-byte aligned, kept alive by the `Region` that owns this header.
    base: NonNull<u8>,
}

// SAFETY: Header only reads and writes the mapping with single atomic accesses (see module
// docs), which are sound from any thread; the owning Region keeps the mapping alive.
unsafe impl Send for Header {}
// SAFETY: as for Send: no method hands out references into the mapping.
unsafe impl Sync for Header {}

impl Header {
    /// The header of the mapping that starts at `base`.
    ///
    /// # Safety
    /// * `base` is 8-byte aligned and stays mapped for as long as this `Header` lives;
    /// * peers touch header fields only with aligned atomic-width accesses (layout.md §10).
    pub(super) unsafe fn new(base: NonNull<u8>) -> Header {
        Header { base }
    }

    fn word_ptr<T>(&self, offset: usize) -> *mut T {
        assert!(
            offset + std::mem::size_of::<T>() <= HEADER_BYTES as usize
                && offset.is_multiple_of(std::mem::size_of::<T>())
        );
        // SAFETY: `offset` is inside the header page (asserted; all callers pass layout.rs
        // constants), and every mapping is at least HEADER_BYTES long (checked at creation;
        // `Region::validate` checks an attached one before reading any field).
        unsafe { self.base.as_ptr().add(offset).cast::<T>() }
    }

    /// Loads a `u32` header field.
    pub(super) fn u32(&self, offset: usize) -> u32 {
        // SAFETY: aligned word inside the live mapping; peers use atomic-width accesses.
        unsafe { mapped::load_u32(self.word_ptr(offset), Ordering::Relaxed) }
    }

    /// Stores a `u32` header field.
    pub(super) fn set_u32(&self, offset: usize, v: u32) {
        // SAFETY: as in `u32`.
        unsafe { mapped::store_u32(self.word_ptr(offset), v, Ordering::Relaxed) }
    }

    /// Loads a `u64` header field.
    pub(super) fn u64(&self, offset: usize) -> u64 {
        // SAFETY: as in `u32`, for an 8-byte aligned word.
        unsafe { mapped::load_u64(self.word_ptr(offset), Ordering::Relaxed) }
    }

    /// Stores a `u64` header field.
    pub(super) fn set_u64(&self, offset: usize, v: u64) {
        // SAFETY: as in `u64`.
        unsafe { mapped::store_u64(self.word_ptr(offset), v, Ordering::Relaxed) }
    }

    /// The layout version the header was written with.
    pub fn layout_version(&self) -> u32 {
        self.u32(VERSION_OFFSET)
    }

    /// Total bytes of the region, as the header states.
    pub fn region_bytes(&self) -> u64 {
        self.u64(REGION_BYTES_OFFSET)
    }

    /// Bytes per chunk (both rings).
    pub fn chunk_bytes(&self) -> u32 {
        self.u32(CHUNK_BYTES_OFFSET)
    }

    /// Largest reassembled request the worker accepts.
    pub fn max_message_bytes(&self) -> u64 {
        self.u64(MAX_MESSAGE_BYTES_OFFSET)
    }

    /// The worker's park timeout in microseconds.
    pub fn park_timeout_us(&self) -> u64 {
        self.u64(PARK_TIMEOUT_US_OFFSET)
    }

    /// `FRAME_CRC`: the frame checksum mode (layout.md §6.6).
    pub fn frame_crc(&self) -> u32 {
        self.u32(FRAME_CRC_OFFSET)
    }

    /// The pid of the worker serving the region.
    pub fn worker_pid(&self) -> u32 {
        self.u32(WORKER_PID_OFFSET)
    }

    /// One of the `WORKER_*` states.
    pub fn worker_state(&self) -> u32 {
        self.u32(WORKER_STATE_OFFSET)
    }

    /// Stores a `WORKER_*` state (the worker only). For `WORKER_READY` use
    /// [`set_ready`](Self::set_ready), which orders the header before it.
    pub fn set_worker_state(&self, state: u32) {
        self.set_u32(WORKER_STATE_OFFSET, state);
    }

    /// Marks the worker ready ([`WORKER_READY`]) after the header is complete.
    pub fn set_ready(&self) {
        // The header fields written in `init` happen-before WORKER_READY: a client that loads
        // READY and then runs barrier_read() sees a complete header (layout.md §12 "Start").
        barrier_write();
        self.set_worker_state(WORKER_READY);
    }

    /// The attached client's pid (written by the client).
    pub fn client_pid(&self) -> u32 {
        self.u32(CLIENT_PID_OFFSET)
    }

    /// One of the `CLIENT_*` states (written by the client; the worker marks a dead one
    /// `CLIENT_DETACHED`).
    pub fn client_state(&self) -> u32 {
        self.u32(CLIENT_STATE_OFFSET)
    }

    /// Stores a `CLIENT_*` state.
    pub fn set_client_state(&self, state: u32) {
        self.set_u32(CLIENT_STATE_OFFSET, state);
    }

    /// Frees the client slot of a client found dead: one compare-and-swap of the 8-byte word
    /// `CLIENT_PID | CLIENT_STATE` from (`pid`, `CLIENT_ATTACHED`) to (0, `CLIENT_DETACHED`),
    /// the same word a client claims with its own compare-and-swap (layout.md §12 "Attach").
    /// A client that claimed the slot meanwhile changed the word, so the swap fails and its
    /// claim stands. Returns whether the slot was freed.
    pub fn release_dead_client(&self, pid: u32) -> bool {
        const _: () = assert!(
            CLIENT_PID_OFFSET.is_multiple_of(8) && CLIENT_STATE_OFFSET == CLIENT_PID_OFFSET + 4
        );
        let attached = u64::from(pid) | (u64::from(CLIENT_ATTACHED) << 32);
        let detached = u64::from(CLIENT_DETACHED) << 32;
        // SAFETY: an aligned word inside the live mapping (asserted above); peers use
        // atomic-width accesses (the client's claim is an 8-byte CAS, its stores 4-byte).
        unsafe {
            mapped::compare_exchange_u64(self.word_ptr(CLIENT_PID_OFFSET), attached, detached)
        }
        .is_ok()
    }

    /// The worker's last heartbeat, `CLOCK_MONOTONIC` nanoseconds (0: none yet).
    pub fn heartbeat_ns(&self) -> u64 {
        self.u64(WORKER_HEARTBEAT_NS_OFFSET)
    }

    /// Stores the worker's heartbeat.
    pub fn set_heartbeat_ns(&self, ns: u64) {
        self.set_u64(WORKER_HEARTBEAT_NS_OFFSET, ns);
    }

    /// The worker's park word (`AWAKE` or its `PARKED*` bits), as last stored.
    pub fn worker_futex(&self) -> u32 {
        self.u32(WORKER_FUTEX_OFFSET)
    }

    /// The client's park word, as last stored.
    pub fn client_futex(&self) -> u32 {
        self.u32(CLIENT_FUTEX_OFFSET)
    }

    /// The request ring's head, tail and size as last stored.
    pub fn request_positions(&self) -> RingPositions {
        RingPositions {
            head: self.u64(REQ_HEAD_OFFSET),
            tail: self.u64(REQ_TAIL_OFFSET),
            chunks: self.u64(REQ_RING_CHUNKS_OFFSET),
        }
    }

    /// The response ring's head, tail and size as last stored.
    pub fn response_positions(&self) -> RingPositions {
        RingPositions {
            head: self.u64(RESP_HEAD_OFFSET),
            tail: self.u64(RESP_TAIL_OFFSET),
            chunks: self.u64(RESP_RING_CHUNKS_OFFSET),
        }
    }

    /// Adds to a stats counter (`STAT_*` index). Only the worker writes counters, so a
    /// load + store is enough (no read-modify-write needed across processes).
    /// Adding 0 touches nothing, which keeps the header's stats line out of the hot path when
    /// a batch changed few counters.
    pub fn stat_add(&self, index: usize, n: u64) {
        if n != 0 && index < STATS_COUNT {
            let off = STATS_OFFSET + 8 * index;
            self.set_u64(off, self.u64(off).wrapping_add(n));
        }
    }

    /// Adds `counts[i]` to counter `i` for every nonzero entry (see [`stat_add`](Self::stat_add)).
    pub fn add_stats(&self, counts: &[u64; STATS_COUNT]) {
        for (index, &n) in counts.iter().enumerate() {
            self.stat_add(index, n);
        }
    }

    /// Reads a stats counter (0 for an index past `STATS_COUNT`).
    pub fn stat(&self, index: usize) -> u64 {
        if index < STATS_COUNT {
            self.u64(STATS_OFFSET + 8 * index)
        } else {
            0
        }
    }

    /// Every counter slot, by `STAT_*` index.
    pub fn stats(&self) -> [u64; STATS_COUNT] {
        std::array::from_fn(|i| self.stat(i))
    }
}
