//! `OP_SNAP_PROCESS` on a marshal batch (layout.md §9.3 "Process"): the summary path, which
//! takes dicts over from the previous snapshot (`store::codec::recall`), must describe any
//! batch exactly as the node-store path does, records and errors alike.
//!
//! The input is a batch read leniently, so that mutations inside a snapshot keep the others:
//! one byte `k` (the number of snapshots, `k % 9`), `k` little-endian `u32` lengths, then the
//! snapshots one after the other, each cut at its length or at the end of the input.
#![no_main]

use chunkring::store::batch::{describe, describe_interned};
use chunkring::store::codec::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 9);
    if rest.len() < 4 * k {
        return;
    }
    let (lens, mut body) = rest.split_at(4 * k);
    let mut items = Vec::with_capacity(k);
    for len in lens.chunks_exact(4) {
        let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (item, tail) = body.split_at(n.min(body.len()));
        items.push(item);
        body = tail;
    }
    let fast = describe(Encoding::Marshal, &items).map_err(|e| e.to_string());
    let slow = describe_interned(Encoding::Marshal, &items).map_err(|e| e.to_string());
    assert_eq!(fast, slow);
});
