//! Interleaving targeted: a message larger than the whole ring. 129 payload bytes go through
//! a ring of 4 chunks of 32 bytes (128 bytes) as 5 fragments of at most 32 bytes (a quarter
//! of the ring, layout.md §6.4), written with the real `MessageWriter` (resuming after
//! `Full`) and reassembled with the real `Reassembler` while the consumer releases chunks
//! concurrently. The reassembled message must equal the payload exactly; padding frames
//! appear wherever a 2-chunk fragment meets the ring's end. No message size deadlocks.
#[cfg(chunkring_loom)]
mod tests {
    use chunkring::ring::{Consumer, MessageWriter, Producer, Reassembled, Reassembler};
    use chunkring_loom_tests::{check, payload, tiny_ring};

    const LEN: usize = 129;

    #[test]
    fn a_payload_larger_than_the_ring_is_reassembled_exactly() {
        let r = check("fragments", || {
            let mem = tiny_ring(4, 32);
            let pmem = mem.clone();
            let producer = loom::thread::spawn(move || {
                let mut p = Producer::new(pmem);
                let mut w = MessageWriter::new(1, 42, payload(42, LEN));
                let mut frames = 0;
                loop {
                    let done = w.write(&mut p, &mut frames).unwrap();
                    p.publish();
                    if done {
                        return frames;
                    }
                    loom::thread::yield_now();
                }
            });
            let mut c = Consumer::new(mem);
            let mut r = Reassembler::new(1 << 20);
            let mut buf = Vec::new();
            let mut obs = String::new();
            let whole = loop {
                match c.poll_at(&mut buf, r.landing()) {
                    Ok(Some(h)) => {
                        obs.push_str(&h.fragment_index.to_string());
                        match r.accept(&h, &mut buf).unwrap() {
                            Reassembled::Partial => {}
                            Reassembled::Whole(h) => {
                                break (h, buf[..h.message_len as usize].to_vec())
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    Ok(None) => {
                        if !obs.ends_with('.') {
                            obs.push('.');
                        }
                        loom::thread::yield_now()
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            let frames = producer.join().unwrap();
            assert_eq!(frames, 5);
            assert_eq!((whole.0.request_id, whole.0.message_len), (42, LEN as u64));
            assert_eq!(whole.1, payload(42, LEN));
            obs
        });
        assert!(r.observations.len() >= 3, "{:?}", r.observations);
    }
}
