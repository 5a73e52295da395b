//! Interleaving targeted: publish/consume FIFO. The producer writes and publishes three
//! single-chunk frames one by one ([R2] → [R3] → [R4] each) while the consumer polls
//! concurrently ([R5], copy-out, [R6]); loom tries every placement of the consumer's tail
//! loads between the producer's steps. Every frame must be seen exactly once, in order,
//! byte-identical, and loom's cell tracking reports any chunk read not ordered after its
//! write. Teeth: without [R3] (producer's `barrier_write`) or [R5] (consumer's
//! `barrier_read`) loom reports the frame read as racing its write.
#[cfg(chunkring_loom)]
mod tests {
    use chunkring::barrier::Step;
    use chunkring::ring::Consumer;
    use chunkring_loom_tests::{check, check_fails, consume, frames, spawn_producer, tiny_ring};

    /// 4 chunks of 64 bytes; three frames of 1 chunk each (payloads of 1, 16 and 32 bytes).
    fn fifo() -> String {
        let mem = tiny_ring(4, 64);
        let sent = frames(&[1, 16, 32]);
        let producer = spawn_producer(mem.clone(), sent.clone(), false);
        let mut c = Consumer::new(mem);
        let (seen, obs) = consume(&mut c, sent.len());
        producer.join().unwrap();
        assert_eq!(seen, sent);
        obs
    }

    #[test]
    fn frames_arrive_once_in_order_and_byte_identical() {
        let r = check("publish_fifo", fifo);
        // The consumer must have met the producer in different states (nothing yet, one
        // frame, several frames): otherwise the model is serialised and proves nothing.
        println!("observations: {:?}", r.observations);
        assert!(r.observations.len() >= 4, "{:?}", r.observations);
    }

    #[test]
    fn without_r3_loom_finds_a_torn_frame() {
        let m = check_fails("publish_fifo", Step::R3, fifo);
        assert!(m.contains("Causality violation"), "{m}");
    }

    #[test]
    fn without_r5_loom_finds_a_torn_frame() {
        let m = check_fails("publish_fifo", Step::R5, fifo);
        assert!(m.contains("Causality violation"), "{m}");
    }
}
