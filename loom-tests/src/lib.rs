//! Shared pieces of the loom models of the chunkring protocol. Built only with
//! `--cfg chunkring_loom` (see `ci/test.sh`); every model drives the crate's real `Producer`
//! and `Consumer` over `ModelMemory`.
#![cfg(chunkring_loom)]

use chunkring::frame::FrameHeader;
use chunkring::ring::model::ModelMemory;
use chunkring::ring::{Consumer, Producer, PushError};

/// A tiny ring: few chunks keep loom's state space small (tokio uses 4-slot queues).
pub fn tiny_ring(chunks: u64, chunk_bytes: usize) -> ModelMemory {
    ModelMemory::new(chunks, chunk_bytes)
}

/// Pushes one frame, yielding while the ring is full.
pub fn push_blocking(p: &mut Producer<ModelMemory>, id: u64, payload: &[u8]) {
    let h = FrameHeader::message(1, id, payload.len() as u32, payload.len() as u64);
    loop {
        match p.try_push(&h, payload) {
            Ok(()) => return,
            Err(PushError::Full) => {
                p.publish();
                loom::thread::yield_now();
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Polls until `n` frames arrived; returns (request id, payload) pairs.
pub fn consume(c: &mut Consumer<ModelMemory>, n: usize) -> Vec<(u64, Vec<u8>)> {
    let mut seen = Vec::new();
    let mut buf = Vec::new();
    while seen.len() < n {
        match c.poll(&mut buf) {
            Ok(Some(h)) => seen.push((h.request_id, buf[..h.payload_len as usize].to_vec())),
            Ok(None) => loom::thread::yield_now(),
            Err(e) => panic!("consumer saw a malformed frame: {e}"),
        }
    }
    seen
}
