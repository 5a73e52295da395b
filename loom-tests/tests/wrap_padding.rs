//! Interleaving targeted: a producer wrapping around a 4-chunk ring of 32-byte chunks while
//! the consumer reads and releases concurrently. Frames of 2, 3 and 1 chunks: the 3-chunk
//! frame does not fit the 2 chunks before the ring's end, so the producer writes a padding
//! frame (possibly while the ring is still full: `try_push` pads first, then reports Full)
//! and starts again at chunk 0, reusing chunks the consumer released. Every frame must arrive
//! exactly once, in order, byte-identical; the consumer skips the padding.
//!
//! loom's cell tracking reports a chunk read not ordered after its write ([R3]/[R5]) and a
//! chunk overwritten before the consumer's copy-out of it happened-before the overwrite
//! ([R1]/[R6]). Teeth: without [R1] (producer's `barrier_read` after loading head) or [R6]
//! (consumer's `barrier_write` before storing head) loom reports the producer's reuse of a
//! chunk as racing the consumer's earlier read of it.
#[cfg(chunkring_loom)]
mod tests {
    use chunkring::barrier::Step;
    use chunkring::ring::Consumer;
    use chunkring_loom_tests::{check, check_fails, consume, frames, spawn_producer, tiny_ring};

    /// Payload lengths for frames of 2, 3 and 1 chunks of 32 bytes (header 32 bytes).
    const LENS: [usize; 3] = [20, 40, 0];

    fn wrap(lens: &'static [usize], padding: u64) -> impl Fn() -> String + Sync + Send + 'static {
        move || {
            let mem = tiny_ring(4, 32);
            let sent = frames(lens);
            let producer = spawn_producer(mem.clone(), sent.clone(), false);
            let mut c = Consumer::new(mem);
            let (seen, obs) = consume(&mut c, sent.len());
            let padding_written = producer.join().unwrap();
            assert_eq!(seen, sent);
            assert_eq!(padding_written, padding, "padding frames written");
            assert_eq!(c.padding_frames(), padding, "padding frames skipped");
            obs
        }
    }

    #[test]
    fn wrap_around_with_padding_delivers_every_frame_in_order() {
        let r = check("wrap_padding", wrap(&LENS, 1));
        assert!(r.observations.len() >= 3, "{:?}", r.observations);
    }

    #[test]
    fn one_chunk_then_whole_ring_frames_wrap() {
        // 1 chunk, then 3 chunks ending exactly at the ring's end, then 2 chunks at chunk 0:
        // a wrap with no padding frame (the padding rule must not fire at `to_end == n`).
        let r = check("wrap_exact_end", wrap(&[0, 40, 20], 0));
        assert!(r.observations.len() >= 3, "{:?}", r.observations);
    }

    #[test]
    fn without_r1_loom_finds_an_overwrite_of_unread_chunks() {
        let m = check_fails("wrap_padding", Step::R1, wrap(&LENS, 1));
        assert!(m.contains("Causality violation"), "{m}");
    }

    #[test]
    fn without_r6_loom_finds_an_overwrite_of_unread_chunks() {
        let m = check_fails("wrap_padding", Step::R6, wrap(&LENS, 1));
        assert!(m.contains("Causality violation"), "{m}");
    }
}
