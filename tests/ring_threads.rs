//! Two threads, one ring, a heap region (rtrb's `parallel` style): every frame arrives once,
//! in order, byte-identical, across many wrap-arounds, with frames of random sizes and
//! fragmented messages; counts shrink under Miri.

use std::thread;

use chunkring::frame::FrameHeader;
use chunkring::region::{heap::HeapBacking, RegionConfig};
use chunkring::ring::{Consumer, MessageWriter, Producer, PushError, Reassembled, Reassembler};

fn payload(i: u64, max: u64) -> Vec<u8> {
    let len = (i.wrapping_mul(2654435761) >> 7) % max;
    (0..len).map(|b| (b ^ i) as u8).collect()
}

#[test]
fn frames_cross_threads_in_order_through_many_wraps() {
    let n: u64 = if cfg!(miri) { 60 } else { 50_000 };
    let region = HeapBacking::region(&RegionConfig {
        ring_bytes: 4096,
        chunk_bytes: 32,
        ..Default::default()
    })
    .unwrap();
    let mut p = Producer::new(region.request_ring().unwrap());
    let mut c = Consumer::new(region.request_ring().unwrap());
    let producer = thread::spawn(move || {
        for i in 0..n {
            let body = payload(i, 300);
            let h = FrameHeader::message(1, i, body.len() as u32, body.len() as u64);
            loop {
                match p.try_push(&h, &body) {
                    Ok(()) => break,
                    Err(PushError::Full) => {
                        p.publish();
                        thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            if i % 7 == 0 {
                p.publish(); // batches of up to 7 frames per tail store
            }
        }
        p.publish();
        p.padding_frames()
    });
    let mut buf = Vec::new();
    let mut next = 0;
    while next < n {
        match c.poll(&mut buf).unwrap() {
            Some(h) => {
                assert_eq!(h.request_id, next);
                assert_eq!(
                    &buf[..h.payload_len as usize],
                    payload(next, 300).as_slice(),
                    "frame {next}"
                );
                next += 1;
            }
            None => thread::yield_now(),
        }
    }
    let padding = producer.join().unwrap();
    assert_eq!(c.padding_frames(), padding);
    if !cfg!(miri) {
        assert!(
            padding > 100,
            "only {padding} padding frames: the test did not wrap enough"
        );
    }
    assert!(c.poll(&mut buf).unwrap().is_none());
}

#[test]
fn fragmented_messages_larger_than_the_ring_reassemble() {
    let n: u64 = if cfg!(miri) { 3 } else { 200 };
    let region = HeapBacking::region(&RegionConfig {
        ring_bytes: 4096,
        chunk_bytes: 64,
        ..Default::default()
    })
    .unwrap();
    let mut p = Producer::new(region.request_ring().unwrap());
    let mut c = Consumer::new(region.request_ring().unwrap());
    let producer = thread::spawn(move || {
        for i in 0..n {
            let mut w = MessageWriter::new(2, i, payload(i, 20_000));
            let mut frames = 0;
            while !w.write(&mut p, &mut frames).unwrap() {
                p.publish();
                thread::yield_now();
            }
            p.publish();
        }
    });
    let mut r = Reassembler::new(1 << 20);
    let mut buf = Vec::new();
    let mut next = 0;
    while next < n {
        let Some(h) = c.poll_at(&mut buf, r.landing()).unwrap() else {
            thread::yield_now();
            continue;
        };
        let got = match r.accept(&h, &mut buf).unwrap() {
            Reassembled::Single(_) => buf[..h.payload_len as usize].to_vec(),
            Reassembled::Whole(h) => buf[..h.message_len as usize].to_vec(),
            _ => continue,
        };
        assert_eq!(got, payload(next, 20_000), "message {next}");
        next += 1;
    }
    producer.join().unwrap();
}
