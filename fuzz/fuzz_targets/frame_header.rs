//! The frame header decoder and its checks (layout.md §6.1, §6.5) on any 32 bytes, with any
//! published/to-end geometry: nothing panics, and a header that passes `check` has an extent
//! inside what was published.
#![no_main]

use chunkring::layout::FRAME_HEADER_BYTES;
use chunkring::FrameHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((raw, geo)) = data.split_first_chunk::<FRAME_HEADER_BYTES>() else {
        return;
    };
    let header = FrameHeader::decode(raw);
    let chunk_bytes = 32usize << (geo.first().copied().unwrap_or(0) % 8);
    let published = u64::from(geo.get(1).copied().unwrap_or(1));
    let to_end = u64::from(geo.get(2).copied().unwrap_or(1)).max(published);
    if header.check(chunk_bytes, published, to_end).is_ok() {
        assert!(header.chunks(chunk_bytes) <= published);
        let _ = header.check_request();
    }
    assert_eq!(FrameHeader::decode(&header.encode()), header);
});
