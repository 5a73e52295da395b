//! The unsafe core under Miri (and, with larger counts, natively): the ring over a heap
//! region — the same `MappedMemory` raw-pointer code that runs over shm — driven through
//! wrap-around and padding, through park/wake between two threads with the real futex
//! calls, and by a hostile producer whose headers and tails lie, which must never make the
//! consumer read outside the ring (Miri reports any out-of-bounds or dangling access).
//! Counts shrink under `cfg!(miri)`. `ci/miri.sh` runs this file with strict provenance.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use chunkring::frame::{frame_crc, FrameError, FrameHeader};
use chunkring::layout::{
    FLAG_CRC, FLAG_PADDING, FRAME_CRC_BYTES, FRAME_HEADER_BYTES, FRAME_MAGIC, PARKED,
    PARKED_FOR_ROOM,
};
use chunkring::region::{heap::HeapBacking, Region, RegionConfig};
use chunkring::ring::{Consumer, PollError, Producer, PushError, RingMemory, Word};
use chunkring::wait::{notify, WaitPolicy};

/// A region with rings of 4096 bytes in 32-byte chunks (128 chunks): the smallest allowed.
fn small_region() -> Region {
    HeapBacking::region(&RegionConfig {
        ring_bytes: 4096,
        chunk_bytes: 32,
        ..Default::default()
    })
    .unwrap()
}

fn body(id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (id as u8).wrapping_mul(29) ^ i as u8)
        .collect()
}

/// xorshift64: deterministic "random" sizes and garbage.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn every_frame_size_crosses_the_wrap_point_with_padding() {
    let region = small_region();
    let mut p = Producer::new(region.request_ring().unwrap());
    let mut c = Consumer::new(region.request_ring().unwrap());
    let ring_bytes = 4096;
    // Frame sizes from 1 chunk to the whole ring, at positions that drift across the end.
    let step = if cfg!(miri) { 397 } else { 13 };
    let mut buf = Vec::new();
    let mut id = 0u64;
    for len in (0..=ring_bytes - FRAME_HEADER_BYTES).step_by(step) {
        for _ in 0..2 {
            id += 1;
            let b = body(id, len);
            let h = FrameHeader::message(1, id, len as u32, len as u64);
            if let Err(e) = p.try_push(&h, &b) {
                // A frame longer than the chunks left before the end may not fit even an
                // empty ring together with its padding: `try_push` writes the padding and
                // reports Full; once the padding is published and consumed, it fits.
                assert_eq!(e, PushError::Full, "frame {id} of {len} bytes");
                assert!(p.publish(), "the padding frame was written");
                assert!(c.poll(&mut buf).unwrap().is_none(), "padding is skipped");
                p.try_push(&h, &b).unwrap();
            }
            assert!(p.publish());
            let h = c.poll(&mut buf).unwrap().expect("published frame");
            assert_eq!((h.request_id, &buf[..h.payload_len as usize]), (id, &b[..]));
            assert!(c.poll(&mut buf).unwrap().is_none());
        }
    }
    assert!(p.padding_frames() > 0);
    assert_eq!(p.padding_frames(), c.padding_frames());
}

#[test]
fn checksummed_frames_cross_the_wrap_point_and_a_changed_one_is_refused() {
    let region = small_region();
    let mut p = Producer::new(region.request_ring().unwrap());
    let mut c = Consumer::new(region.request_ring().unwrap());
    c.require_crc(true);
    let step = if cfg!(miri) { 331 } else { 7 };
    let mut buf = Vec::new();
    let mut id = 0u64;
    // Every size up to the largest checksummed frame, drifting across the ring's end: the
    // trailer (and the padding's own trailer) must land inside the ring every time.
    for len in (0..=4096 - FRAME_HEADER_BYTES - FRAME_CRC_BYTES).step_by(step) {
        id += 1;
        let b = body(id, len);
        let mut h = FrameHeader::message(1, id, len as u32, len as u64);
        h.flags = FLAG_CRC;
        if p.try_push(&h, &b) == Err(PushError::Full) {
            assert!(p.publish(), "the padding frame was written");
            assert!(
                c.poll(&mut buf).unwrap().is_none(),
                "checked padding is skipped"
            );
            p.try_push(&h, &b).unwrap();
        }
        assert!(p.publish());
        let got = c.poll(&mut buf).unwrap().expect("published frame");
        assert!(got.has_crc());
        assert_eq!((got.request_id, &buf[..len]), (id, &b[..]));
    }
    assert!(p.padding_frames() > 0);
    assert_eq!(p.padding_frames(), c.padding_frames());
    // A frame whose payload changed after its checksum, on a fresh ring: refused, and
    // everything published with it (a good frame after it) is dropped.
    let region = small_region();
    let mut p = Producer::new(region.request_ring().unwrap());
    let mut c = Consumer::new(region.request_ring().unwrap());
    c.require_crc(true);
    let mut h = FrameHeader::message(1, 9, 3, 3);
    h.flags = FLAG_CRC;
    let header = h.encode();
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(b"abd");
    bytes.extend_from_slice(&frame_crc(&header, b"abc").to_le_bytes());
    p.push_raw(&bytes, 2).unwrap();
    h.request_id = 10;
    p.try_push(&h, b"abc").unwrap();
    p.publish();
    assert!(matches!(
        c.poll(&mut buf),
        Err(PollError::Malformed {
            error: FrameError::Checksum { .. },
            resynced: true,
            ..
        })
    ));
    assert!(c.poll(&mut buf).unwrap().is_none());
    // And a frame without a checksum where one is required.
    p.try_push(&FrameHeader::message(1, 10, 1, 1), b"x")
        .unwrap();
    p.publish();
    assert!(matches!(
        c.poll(&mut buf),
        Err(PollError::Malformed {
            error: FrameError::ChecksumMissing,
            resynced: true,
            ..
        })
    ));
}

#[test]
fn a_frame_larger_than_the_ring_is_refused_not_written() {
    let region = small_region();
    let mut p = Producer::new(region.request_ring().unwrap());
    let len = 4096 - FRAME_HEADER_BYTES + 1;
    let e = p
        .try_push(&FrameHeader::message(1, 1, 0, 0), &vec![0; len])
        .unwrap_err();
    assert_eq!(
        e,
        PushError::TooLarge {
            needed: 129,
            chunks: 128
        }
    );
    assert!(!p.publish());
}

#[test]
fn two_threads_park_and_wake_over_a_heap_ring() {
    let n: u64 = if cfg!(miri) { 12 } else { 20_000 };
    let region = small_region();
    let mut p = Producer::new(region.request_ring().unwrap());
    let mut c = Consumer::new(region.request_ring().unwrap());
    let policy = WaitPolicy {
        spin: Duration::ZERO,
        park_timeout: Duration::from_millis(if cfg!(miri) { 5 } else { 50 }),
    };
    let producer = thread::spawn(move || {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for id in 1..=n {
            let len = (next(&mut seed) % 200) as usize;
            let b = body(id, len);
            let h = FrameHeader::message(1, id, len as u32, len as u64);
            loop {
                match p.try_push(&h, &b) {
                    Ok(()) => break,
                    Err(PushError::Full) => {
                        p.publish();
                        notify(p.consumer_park_word(), PARKED);
                        policy.wait(p.park_word(), PARKED_FOR_ROOM, || p.peek_room());
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            if id.is_multiple_of(3) || id == n {
                p.publish();
                notify(p.consumer_park_word(), PARKED);
            }
        }
    });
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = Vec::new();
    let mut id = 0;
    while id < n {
        match c.poll(&mut buf).unwrap() {
            Some(h) => {
                id += 1;
                let len = (next(&mut seed) % 200) as usize;
                assert_eq!(h.request_id, id);
                assert_eq!(&buf[..h.payload_len as usize], &body(id, len)[..]);
                notify(c.producer_park_word(), PARKED_FOR_ROOM);
            }
            None => {
                let ready = |c: &Consumer<_>| c.peek_ready();
                policy.wait(c.park_word(), PARKED, || ready(&c));
            }
        }
    }
    producer.join().unwrap();
}

#[test]
fn a_hostile_producer_cannot_make_the_consumer_read_out_of_bounds() {
    let rounds = if cfg!(miri) { 60 } else { 20_000 };
    let region = small_region();
    let mem = region.request_ring().unwrap();
    let chunks = mem.geometry().chunks;
    let mut c = Consumer::new(region.request_ring().unwrap());
    let mut buf = Vec::new();
    let mut seed = 0x1234_5678_9ABC_DEF1u64;
    let (mut frames, mut malformed, mut bad_tails) = (0u32, 0u32, 0u32);
    for _ in 0..rounds {
        // Garbage in a few chunks at and after the consumer's head; sometimes a header that
        // looks right (good magic) but lies about its length or padding.
        let head = mem.load(Word::Head, Ordering::Relaxed);
        for k in 0..3 {
            let idx = (head + k) & (chunks - 1);
            let mut chunk = [0u8; 32];
            for b in chunk.iter_mut() {
                *b = next(&mut seed) as u8;
            }
            if next(&mut seed).is_multiple_of(2) {
                chunk[..2].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
                if next(&mut seed).is_multiple_of(3) {
                    chunk[2..4].copy_from_slice(&FLAG_PADDING.to_le_bytes());
                }
                if next(&mut seed).is_multiple_of(4) {
                    // A well-formed header: flags 0, status 0, payload within 3 chunks.
                    chunk[2..8].fill(0);
                }
                let len = match next(&mut seed) % 5 {
                    0 => u32::MAX,
                    1 => (next(&mut seed) % 8192) as u32,
                    2 => (next(&mut seed) % 33) as u32,
                    _ => (next(&mut seed) % 64) as u32,
                };
                chunk[16..20].copy_from_slice(&len.to_le_bytes());
            }
            // SAFETY: chunk `idx` lies inside the ring (idx < chunks, 32-byte chunks); this
            // test is the only producer, and the consumer reads it only through `poll`.
            unsafe { mem.write(idx as usize * 32, &chunk) };
        }
        // A tail that may be behind, ahead, or beyond the ring's capacity.
        let tail = match next(&mut seed) % 5 {
            0 => head.wrapping_sub(1 + next(&mut seed) % 4),
            1 => head + chunks + 1 + next(&mut seed) % 100,
            2 => u64::MAX - next(&mut seed) % 3,
            _ => head + next(&mut seed) % 4,
        };
        mem.store(Word::Tail, tail, Ordering::Release);
        for _ in 0..4 {
            match c.poll(&mut buf) {
                Ok(Some(h)) => {
                    frames += 1;
                    assert!((h.payload_len as usize) <= buf.len());
                }
                Ok(None) => break,
                Err(PollError::Malformed { .. }) => malformed += 1,
                Err(PollError::TailOutOfRange { .. }) => bad_tails += 1,
            }
        }
        // A real producer's tail never runs behind the consumer: put it back in range.
        let head = mem.load(Word::Head, Ordering::Relaxed);
        mem.store(Word::Tail, head, Ordering::Release);
        c.poll(&mut buf).ok();
    }
    // Every kind of lie must actually have been exercised.
    assert!(
        frames > 0 && malformed > 0 && bad_tails > 0,
        "frames {frames}, malformed {malformed}, bad tails {bad_tails}"
    );
}
