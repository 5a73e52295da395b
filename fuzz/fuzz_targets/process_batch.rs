//! `OP_SNAP_PROCESS` on a marshal batch (layout.md §9.3 "Process"): the summary path, which
//! takes dicts over from the previous snapshot (`store::codec::recall`), must describe any
//! batch exactly as the node-store path does, records and errors alike.
//!
//! The input is a batch read leniently (`chunkring_fuzz::batch_items`), so that mutations
//! inside a snapshot keep the others.
#![no_main]

use chunkring::store::batch::{describe, describe_interned};
use chunkring::store::codec::Encoding;
use chunkring_fuzz::batch_items;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(items) = batch_items(data) else {
        return;
    };
    let fast = describe(Encoding::Marshal, &items).map_err(|e| e.to_string());
    let slow = describe_interned(Encoding::Marshal, &items).map_err(|e| e.to_string());
    assert_eq!(fast, slow);
});
