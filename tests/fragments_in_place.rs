//! A message copied out of the ring once (layout.md §6.4): the consumer copies each fragment
//! straight after the bytes already reassembled (`Consumer::poll_at` at
//! `Reassembler::landing`), into one buffer reused from message to message, and a writer
//! sends part of a buffer it was lent (`MessageWriter::part_of`, as echo answers). Sizes sit on
//! the chunk, frame and ring edges of a heap ring; every message arrives byte for byte.

use chunkring::region::{heap::HeapBacking, RegionConfig};
use chunkring::ring::{Consumer, MessageWriter, Producer, Reassembled, Reassembler};

const RING: usize = 4096;
const CHUNK: usize = 64;

fn bytes(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + seed * 7 + 1) as u8).collect()
}

/// Sends `buf[part]` through `p` while draining `c` into `out` (one buffer for all
/// messages); returns the message as the consumer saw it and its frame count.
fn send_and_receive(
    p: &mut Producer<chunkring::ring::MappedMemory>,
    c: &mut Consumer<chunkring::ring::MappedMemory>,
    r: &mut Reassembler,
    out: &mut Vec<u8>,
    buf: Vec<u8>,
    part: std::ops::Range<usize>,
) -> (Vec<u8>, u64, Vec<u8>) {
    let mut w = MessageWriter::part_of(1, 9, buf, part);
    let mut frames = 0;
    let mut written = false;
    loop {
        if !written {
            written = w.write(p, &mut frames).unwrap();
            p.publish();
        }
        while let Some(h) = c.poll_at(out, r.landing()).unwrap() {
            match r.accept(&h, out).unwrap() {
                Reassembled::Single(h) => {
                    let got = out[..h.payload_len as usize].to_vec();
                    return (got, frames, w.into_buffer());
                }
                Reassembled::Whole(h) => {
                    let got = out[..h.message_len as usize].to_vec();
                    return (got, frames, w.into_buffer());
                }
                Reassembled::Partial => {}
                Reassembled::Dropped => panic!("nothing is dropped here"),
            }
        }
    }
}

#[test]
fn messages_at_every_edge_arrive_byte_for_byte_through_one_reused_buffer() {
    let region = HeapBacking::region(&RegionConfig {
        ring_bytes: RING as u64,
        chunk_bytes: CHUNK as u32,
        ..Default::default()
    })
    .unwrap();
    let mut p = Producer::new(region.request_ring().unwrap());
    let mut c = Consumer::new(region.request_ring().unwrap());
    let max_frame = p.geometry().max_frame_payload();
    let mut r = Reassembler::new(1 << 20);
    let mut out = Vec::new();
    let mut sizes = vec![0, 1, CHUNK - 32, CHUNK, RING, 3 * RING + 5];
    for k in 1..=4 {
        sizes.extend([k * max_frame - 1, k * max_frame, k * max_frame + 1]);
    }
    // Large, then small, then large: the reused buffer is longer than most messages.
    sizes.sort_by_key(|&s| (s % 3, s));
    for (i, &len) in sizes.iter().enumerate() {
        // The message sits inside a larger buffer, as echo's body sits after its params.
        let lead = i % 5;
        let mut buf = vec![0xAA; lead];
        buf.extend(bytes(i, len));
        buf.extend([0xBB; 3]);
        let (got, frames, back) =
            send_and_receive(&mut p, &mut c, &mut r, &mut out, buf, lead..lead + len);
        assert_eq!(got, bytes(i, len), "message of {len} bytes");
        assert_eq!(
            frames as usize,
            len.div_ceil(max_frame).max(1),
            "{len} bytes"
        );
        assert_eq!(
            back.len(),
            lead + len + 3,
            "the lent buffer comes back whole"
        );
        assert_eq!(r.landing(), 0);
    }
}
