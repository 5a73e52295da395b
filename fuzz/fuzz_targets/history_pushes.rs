//! Marshal pushes into a history (layout.md §9.3 "Storage"): a push that takes dicts over
//! from the last one (`store::push_memory`) must store exactly the node a full read of the
//! same bytes gives, or fail with the same error, and release everything it held.
//!
//! The input is read as `process_batch`'s is: one byte `k` (the number of pushes, `k % 9`),
//! `k` little-endian `u32` lengths, then the pushes one after the other, each cut at its
//! length or at the end of the input.
#![no_main]

use chunkring::store::codec::{self, Encoding};
use chunkring::store::node_store::NodeStore;
use chunkring::store::push_memory::PushMemory;
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
    let mut store = NodeStore::new();
    let mut memory = PushMemory::default();
    let mut roots = Vec::new();
    for len in lens.chunks_exact(4) {
        let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (item, tail) = body.split_at(n.min(body.len()));
        body = tail;
        let got = memory.decode(&mut store, item);
        let full = codec::decode(&mut store, Encoding::Marshal, item, true);
        match (&got, &full) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("{got:?} != {full:?}"),
        }
        roots.extend(got.ok());
        roots.extend(full.ok());
    }
    roots.into_iter().for_each(|r| store.decref(r));
    memory.release(&mut store);
    assert_eq!(store.stats().nodes, 0);
});
