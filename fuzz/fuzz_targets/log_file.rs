//! The log file loader (layout.md §9.4 "Log files"), envelope and payload: any bytes are
//! refused cleanly or load into a log that saves back and loads again, record for record.
#![no_main]

use chunkring::store::file::envelope::{unframe, LOG_MAGIC};
use chunkring::store::file::log;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Most inputs fail the CRC; decode the payload directly too, so the fuzzer reaches it.
    let _ = unframe(LOG_MAGIC, data).map(log::decode);
    if let Ok((name, l)) = log::decode(data) {
        let again = log::encode(&name, &l);
        let (name2, l2) = log::decode(&again).expect("what saves loads");
        assert_eq!(name2, name);
        assert_eq!(l2.range(0, l2.len()), l.range(0, l.len()));
    }
});
