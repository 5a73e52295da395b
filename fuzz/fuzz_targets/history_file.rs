//! The history file loader (layout.md §9.3 "History files"), envelope and payload: any bytes
//! are refused cleanly or load into a history that saves back and loads again.
#![no_main]

use chunkring::store::file::envelope::{unframe, HISTORY_MAGIC};
use chunkring::store::file::history;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Most inputs fail the CRC; decode the payload directly too, so the fuzzer reaches it.
    let _ = unframe(HISTORY_MAGIC, data).map(history::decode);
    if let Ok((name, h)) = history::decode(data) {
        let again = history::encode(&name, &h);
        let (name2, h2) = history::decode(&again).expect("what saves loads");
        assert_eq!(name2, name);
        assert_eq!(h2.len(), h.len());
    }
});
