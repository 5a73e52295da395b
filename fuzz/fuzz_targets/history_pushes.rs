//! Marshal pushes into a history (layout.md §9.3 "Storage"): a push that takes dicts over
//! from the last one (`store::push_memory`) must store exactly the node a full read of the
//! same bytes gives, or fail with the same error, and release everything it held.
//!
//! The input is read as `process_batch`'s is (`chunkring_fuzz::batch_items`): a batch of
//! pushes, each cut at its length or at the end of the input.
#![no_main]

use chunkring::store::codec::{self, Encoding};
use chunkring::store::node_store::NodeStore;
use chunkring::store::push_memory::PushMemory;
use chunkring_fuzz::batch_items;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(items) = batch_items(data) else {
        return;
    };
    let mut store = NodeStore::new();
    let mut memory = PushMemory::default();
    let mut roots = Vec::new();
    for item in items {
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
