//! The snapshot JSON decoder (layout.md §9.3 "Encodings"): any bytes decode or fail cleanly,
//! leave nothing behind on failure, and what decodes writes back to bytes that decode to the
//! same node, within the depth and expansion limits.
#![no_main]

use chunkring::store::builder::{MAX_DEPTH, MAX_EXPANDED_BYTES};
use chunkring::store::codec::json;
use chunkring::store::node_store::NodeStore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut store = NodeStore::new();
    match json::decode(&mut store, data) {
        Ok(id) => {
            let shape = store.shape(id);
            assert!(
                shape.depth as usize <= MAX_DEPTH && shape.expanded_bytes <= MAX_EXPANDED_BYTES
            );
            if let Ok(text) = json::encode(&store, id) {
                assert_eq!(json::decode(&mut store, &text).ok(), Some(id));
            }
        }
        Err(_) => assert_eq!(store.stats().nodes, 0),
    }
});
