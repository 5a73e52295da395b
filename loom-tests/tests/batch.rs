//! Interleaving targeted: batched publication. The producer writes two batches of two frames
//! ([R2] × 2) and makes each visible with one `publish()` ([R3] then a single [R4] tail
//! store) while the consumer polls. The consumer must see either none of a batch or all of
//! it: once a batch's first frame arrives, the next poll returns its second frame without an
//! empty poll in between, and all four frames are byte-identical. Teeth: without [R3] or [R5] loom reports the
//! frame reads racing the writes.
#[cfg(chunkring_loom)]
mod tests {
    use chunkring::barrier::Step;
    use chunkring::ring::{Consumer, Producer};
    use chunkring_loom_tests::{check, check_fails, consume, frames, header, tiny_ring};

    fn batch() -> String {
        let mem = tiny_ring(4, 64);
        let sent = frames(&[8, 0, 32, 1]);
        let to_send = sent.clone();
        let pmem = mem.clone();
        let producer = loom::thread::spawn(move || {
            let mut p = Producer::new(pmem);
            for batch in to_send.chunks(2) {
                for (id, payload) in batch {
                    p.try_push(&header(*id, payload.len()), payload).unwrap();
                }
                assert_eq!(p.unpublished_chunks(), 2);
                assert!(p.publish(), "one tail store for the whole batch");
                assert!(!p.publish(), "nothing left to publish");
            }
        });
        let mut c = Consumer::new(mem);
        let (seen, obs) = consume(&mut c, sent.len());
        producer.join().unwrap();
        assert_eq!(seen, sent);
        // `.` marks an empty poll: nothing may separate the frames of one batch.
        assert!(
            !obs.contains("1.2") && !obs.contains("3.4"),
            "batch split: {obs}"
        );
        obs
    }

    #[test]
    fn one_tail_store_makes_the_whole_batch_visible() {
        let r = check("batch", batch);
        // Both "batches seen together" and "batches seen apart" must have been explored.
        assert!(r.observations.len() >= 2, "{:?}", r.observations);
    }

    #[test]
    fn without_r3_loom_finds_a_torn_batch() {
        let m = check_fails("batch", Step::R3, batch);
        assert!(m.contains("Causality violation"), "{m}");
    }

    #[test]
    fn without_r5_loom_finds_a_torn_batch() {
        let m = check_fails("batch", Step::R5, batch);
        assert!(m.contains("Causality violation"), "{m}");
    }
}
