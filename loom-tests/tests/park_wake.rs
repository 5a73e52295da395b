//! Interleaving targeted: park/wake with a Rust producer. The consumer polls, and when the
//! ring is empty waits with `WaitPolicy { spin: 0 }.wait` — back off once, then park:
//! [W1] store PARKED, [W2] `barrier_memory()`, [W3] re-check the tail, [W4] futex wait. The
//! producer publishes each frame ([R4]) and runs `notify_consumer(&p)`: [W5]
//! `barrier_memory()`, [W6] load the park word and wake if PARKED. The modelled futex
//! (`ModelMemory`: a loom Mutex + Condvar that re-checks the word under the lock) has no
//! timeout, so a lost wake-up — the consumer's re-check reading the old tail while the
//! producer reads AWAKE — leaves the consumer asleep forever, which loom reports as a
//! deadlock. With both fences no execution deadlocks; teeth: without [W2] or without [W5]
//! loom finds the deadlock (the store-buffering outcome the SeqCst fences forbid).
#[cfg(chunkring_loom)]
mod tests {
    use chunkring::barrier::Step;
    use chunkring::layout::PARKED;
    use chunkring::ring::Consumer;
    use chunkring::wait::Waited;
    use chunkring_loom_tests::{
        check, check_fails, consume_waiting, frames, park_at_once, spawn_producer, tiny_ring,
    };

    fn park_wake() -> String {
        let mem = tiny_ring(4, 64);
        let sent = frames(&[4, 12]);
        let producer = spawn_producer(mem.clone(), sent.clone(), true);
        let policy = park_at_once();
        let mut c = Consumer::new(mem);
        let (seen, obs) = consume_waiting(&mut c, sent.len(), |c| {
            match policy.wait(c.park_word(), PARKED, || c.peek_ready()) {
                Waited::Spun => 's',
                Waited::Rechecked => 'r',
                Waited::Woken => 'w',
                Waited::TimedOut { .. } => 't',
            }
        });
        producer.join().unwrap();
        assert_eq!(seen, sent);
        assert!(!obs.contains('t'), "the model futex never times out");
        obs
    }

    #[test]
    fn a_parked_consumer_is_always_woken_by_a_rust_producer() {
        let r = check("park_wake", park_wake);
        // The interesting paths must all have been explored: a re-check that caught the
        // publication ([W3]) and a real sleep ended by the producer's wake ([W6]).
        let all: String = r.observations.iter().cloned().collect();
        assert!(
            all.contains('r') && all.contains('w'),
            "{:?}",
            r.observations
        );
    }

    #[test]
    fn without_w2_loom_finds_a_lost_wakeup() {
        let m = check_fails("park_wake", Step::W2, park_wake);
        assert!(m.contains("deadlock"), "{m}");
    }

    #[test]
    fn without_w5_loom_finds_a_lost_wakeup() {
        let m = check_fails("park_wake", Step::W5, park_wake);
        assert!(m.contains("deadlock"), "{m}");
    }
}
