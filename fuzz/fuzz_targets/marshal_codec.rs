//! The CPython marshal decoder (layout.md §9.3 "Encodings"), back-references included: any
//! bytes decode or fail cleanly, and what decodes is within the depth and expansion limits
//! and writes back to bytes that decode to the same node.
#![no_main]

use chunkring::store::builder::{MAX_DEPTH, MAX_EXPANDED_BYTES};
use chunkring::store::codec::marshal;
use chunkring::store::node_store::NodeStore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut store = NodeStore::new();
    match marshal::decode(&mut store, data) {
        Ok(id) => {
            let shape = store.shape(id);
            assert!(
                shape.depth as usize <= MAX_DEPTH && shape.expanded_bytes <= MAX_EXPANDED_BYTES
            );
            if let Ok(bytes) = marshal::encode(&store, id) {
                assert_eq!(marshal::decode(&mut store, &bytes).ok(), Some(id));
            }
        }
        Err(_) => assert_eq!(store.stats().nodes, 0),
    }
});
