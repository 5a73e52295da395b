//! The log file loader (layout.md §9.4 "Log files"), envelope and payload: any bytes are
//! refused cleanly or load into a log that saves back and loads again, record for record.
#![no_main]

use chunkring::store::file::envelope::LOG_MAGIC;
use chunkring::store::file::log;
use chunkring_fuzz::loads_back;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    loads_back(data, LOG_MAGIC, log::decode, log::encode, |a, b| {
        a.range(0, a.len()) == b.range(0, b.len())
    });
});
