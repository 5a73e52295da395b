//! The request payload parser (layout.md §9.1: `params_len | params | body`) and the list
//! encoding, on any bytes: a clear error or a parse whose parts lie inside the input.
#![no_main]

use chunkring::ops::decode_list;
use chunkring::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::parse(data) {
        assert_eq!(4 + req.params.len() + req.body.len(), data.len());
        let _ = req.check_params();
        if let Ok(items) = decode_list(req.body) {
            assert!(items.iter().map(|i| i.len()).sum::<usize>() <= req.body.len());
        }
    }
});
