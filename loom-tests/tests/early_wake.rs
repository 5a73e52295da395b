//! Interleaving targeted: the early wake [W7] (layout.md §11 "Early wake"), optional for a
//! client (the Python client does not use it). Before it writes a request, a client that
//! finds the worker parked for requests stores AWAKE and wakes it — a [W6] with no frame
//! behind it yet and no [W5] fence before it — so the worker's wake-up may overlap the
//! client's encoding. The worker waits through `WaitPolicy::wait_planned` (the serve
//! loop's idle path) and, finding nothing, parks again. The protocol's claim: the early wake
//! is only a hint; the [W5]–[W6] after the publish still delivers every frame. Teeth: a
//! client that skips the wake after publishing because its early wake already woke the
//! worker leaves the worker asleep forever once it has re-parked, and loom reports the
//! deadlock (the modelled futex has no timeout).
#[cfg(chunkring_loom)]
mod tests {
    use std::time::Instant;

    use chunkring::layout::{AWAKE, PARKED};
    use chunkring::ring::model::ModelMemory;
    use chunkring::ring::{Consumer, Producer};
    use chunkring::wait::{ParkWord, Plan, Waited};
    use chunkring_loom_tests::{
        check, consume_waiting, expect_failure, frames, notify_consumer, park_at_once,
        push_blocking, tiny_ring,
    };
    use loom::sync::atomic::Ordering;

    /// [W7]: load the worker's word (Relaxed, no fence); if it parked for requests, store
    /// AWAKE and wake it. True when a wake was issued.
    fn early_wake(p: &Producer<ModelMemory>) -> bool {
        let w = p.consumer_park_word();
        if w.load(Ordering::Relaxed) & PARKED != 0 {
            w.store(AWAKE, Ordering::Relaxed);
            w.wake();
            return true;
        }
        false
    }

    fn model(skip_wake_after_early: bool) -> String {
        let mem = tiny_ring(4, 64);
        let sent = frames(&[4, 12]);
        let to_send = sent.clone();
        let pmem = mem.clone();
        let producer = loom::thread::spawn(move || {
            let mut p = Producer::new(pmem);
            let mut early = 0;
            for (id, payload) in &to_send {
                let woke = early_wake(&p);
                early += u32::from(woke);
                push_blocking(&mut p, *id, payload);
                p.publish();
                if !(skip_wake_after_early && woke) {
                    notify_consumer(&p);
                }
            }
            early
        });
        let policy = park_at_once();
        let mut c = Consumer::new(mem);
        let (seen, obs) = consume_waiting(&mut c, sent.len(), |c| {
            let plan = Plan {
                doze_until: None,
                spin_until: Instant::now(),
            };
            let (w, _) = policy.wait_planned(|| c.park_word(), PARKED, || c.peek_ready(), plan, 1);
            match w {
                Waited::Woken if !c.peek_ready() => 'e', // woken with nothing: early
                Waited::Woken => 'w',
                Waited::Rechecked => 'r',
                Waited::Spun => 's',
                Waited::TimedOut { .. } => 't',
            }
        });
        let early = producer.join().unwrap();
        assert_eq!(seen, sent);
        assert!(!obs.contains('t'), "the model futex never times out");
        format!("{obs}/{early}")
    }

    #[test]
    fn an_early_wake_never_replaces_the_wake_after_publishing() {
        let r = check("early_wake", || model(false));
        // Explored: an early wake that found the worker parked and woke it with nothing to
        // read ('e'), and a worker parked again and woken by the publish ('w').
        let all: String = r.observations.iter().cloned().collect();
        assert!(
            all.contains('e') && all.contains('w'),
            "{:?}",
            r.observations
        );
    }

    #[test]
    fn skipping_the_wake_after_an_early_wake_loses_a_wakeup() {
        let m = expect_failure("early_wake skipping [W5]-[W6] after [W7]", || model(true));
        assert!(m.contains("deadlock"), "{m}");
    }
}
