//! Interleaving targeted: a full ring. Three frames of 2 chunks (6 chunks) go through a ring
//! of 4 chunks of 32 bytes, so the producer meets a full ring and must wait for the consumer
//! to release chunks ([R6] → [R1]) before it reuses them; it never overwrites a chunk that
//! has not been copied out. Every frame's bytes are distinct, so an overwrite would fail the
//! byte comparison even if loom's cell tracking did not report it first.
//!
//! Two waiting styles: the producer retrying with yields, and the producer parking on its
//! futex word ([W1]–[W4] announcing `PARKED_FOR_ROOM`) woken by `notify_producer(&c)`
//! after each release ([W5]–[W6]); the modelled futex has no timeout, so a lost wake-up of
//! the producer would be reported as a deadlock.
#[cfg(chunkring_loom)]
mod tests {
    use std::time::Duration;

    use chunkring::layout::PARKED_FOR_ROOM;
    use chunkring::ring::{Consumer, Producer, PushError};
    use chunkring::wait::WaitPolicy;
    use chunkring_loom_tests::{
        check, consume, frames, header, notify_consumer, notify_producer, spawn_producer, tiny_ring,
    };

    /// Payloads of 20 bytes: 2 chunks each.
    const LENS: [usize; 3] = [20, 20, 20];

    #[test]
    fn a_yielding_producer_never_overwrites_unread_chunks() {
        let r = check("full_ring_yield", || {
            let mem = tiny_ring(4, 32);
            let sent = frames(&LENS);
            let producer = spawn_producer(mem.clone(), sent.clone(), false);
            let mut c = Consumer::new(mem);
            let (seen, obs) = consume(&mut c, sent.len());
            producer.join().unwrap();
            assert_eq!(seen, sent);
            obs
        });
        assert!(r.observations.len() >= 3, "{:?}", r.observations);
    }

    #[test]
    fn a_parked_producer_is_woken_when_room_is_freed() {
        let r = check("full_ring_park", || {
            let mem = tiny_ring(4, 32);
            let sent = frames(&LENS);
            let to_send = sent.clone();
            let pmem = mem.clone();
            let producer = loom::thread::spawn(move || {
                let policy = WaitPolicy {
                    spin: Duration::ZERO,
                    park_timeout: Duration::from_millis(50),
                };
                let mut p = Producer::new(pmem);
                let mut parks = 0;
                for (id, payload) in &to_send {
                    let h = header(*id, payload.len());
                    loop {
                        match p.try_push(&h, payload) {
                            Ok(()) => break,
                            Err(PushError::Full) => {
                                p.publish();
                                notify_consumer(&p);
                                let w =
                                    policy.park(p.park_word(), PARKED_FOR_ROOM, || p.peek_room());
                                parks += u32::from(matches!(w, chunkring::wait::Waited::Woken));
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    p.publish();
                }
                parks
            });
            let mut c = Consumer::new(mem);
            let mut seen = Vec::new();
            let mut buf = Vec::new();
            while seen.len() < sent.len() {
                match c.poll(&mut buf) {
                    Ok(Some(h)) => {
                        seen.push((h.request_id, buf[..h.payload_len as usize].to_vec()));
                        notify_producer(&c);
                    }
                    Ok(None) => loom::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            let parks = producer.join().unwrap();
            assert_eq!(seen, sent);
            format!("woken {parks}")
        });
        // Some execution must really have slept on the futex and been woken.
        assert!(
            r.observations.iter().any(|o| o != "woken 0"),
            "{:?}",
            r.observations
        );
    }
}
