//! The history file loader (layout.md §9.3 "History files"), envelope and payload: any bytes
//! are refused cleanly or load into a history that saves back and loads again.
#![no_main]

use chunkring::store::file::envelope::HISTORY_MAGIC;
use chunkring::store::file::history;
use chunkring_fuzz::loads_back;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    loads_back(
        data,
        HISTORY_MAGIC,
        history::decode,
        history::encode,
        |a, b| a.len() == b.len(),
    );
});
