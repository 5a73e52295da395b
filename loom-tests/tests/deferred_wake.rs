//! Interleaving targeted: the lean call's deferred wake check (layout.md §11 "Deferred wake
//! check", `python/chunkring/_lean.py`). After its tail store ([R4]) the client loads the
//! worker's park word *without* the [W5] fence — a hint, which wakes the worker if it reads
//! PARKED — and spins a bounded number of polls of the response ring. Answered within the
//! spin, it never fences (the worker has read the request: no wake is owed). Otherwise it
//! runs the fenced [W5]–[W6] before any longer wait, then parks for the answer ([W1]–[W4]
//! on its own word, which the worker's [W5]–[W6] after publishing the answer wakes).
//!
//! The claim: whatever the hint reads, the request is answered; a worker that parked at the
//! instant of the publish (its [W3] re-check missed the tail while the hint read AWAKE) is
//! woken by the deferred check, a short delay, never a lost request. The worker is the real
//! `Consumer`/`Producer` pair and `WaitPolicy::park`; the modelled futexes have no timeout,
//! so a lost wake-up is a loom deadlock. Teeth: the deferred check without its fence (a
//! second hint) lets loom find that deadlock.
#[cfg(chunkring_loom)]
mod tests {
    use chunkring::barrier::barrier_memory;
    use chunkring::layout::{AWAKE, PARKED};
    use chunkring::ring::model::ModelMemory;
    use chunkring::ring::{Consumer, Producer};
    use chunkring::wait::{notify, ParkWord, Waited};
    use chunkring_loom_tests::{
        check, expect_failure, frames, park_at_once, push_blocking, tiny_ring,
    };
    use loom::sync::atomic::Ordering;

    /// Polls of the response ring in the client's bounded spin (the lean path's 128, cut
    /// to what loom can explore; each poll yields to the model's scheduler).
    const SPIN_POLLS: usize = 1;

    /// [W6] on the worker's word: wake it if it parked for requests; true when woken.
    /// `fenced`: [W5] first (the deferred check); else the unfenced hint.
    fn wake_if_parked(word: impl ParkWord, fenced: bool) -> bool {
        if fenced {
            // [W5] StoreLoad: the tail store before the load below; pairs with the
            // worker's [W2] in `WaitPolicy::park`.
            barrier_memory();
        }
        // ORDERING [W6]: Relaxed load (the hint may be satisfied before the tail store).
        if word.load(Ordering::Relaxed) & PARKED != 0 {
            word.store(AWAKE, Ordering::Relaxed);
            word.wake();
            return true;
        }
        false
    }

    /// The worker: answer every request (same id and payload) in order, parking when the
    /// request ring is empty and waking the client after each published answer.
    fn worker(req: ModelMemory, resp: ModelMemory, n: usize) {
        let policy = park_at_once();
        let mut c = Consumer::new(req);
        let mut p = Producer::new(resp);
        let mut buf = Vec::new();
        let mut answered = 0;
        while answered < n {
            match c.poll(&mut buf) {
                Ok(Some(h)) => {
                    push_blocking(&mut p, h.request_id, &buf[..h.payload_len as usize]);
                    p.publish();
                    notify(p.consumer_park_word(), PARKED);
                    answered += 1;
                }
                Ok(None) => {
                    let _ = policy.park(c.park_word(), PARKED, || c.peek_ready());
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The client's lean calls, one request in flight at a time. Returns the answers and an
    /// observation per call: `s` answered within the spin (no fence), `h` the hint woke the
    /// worker, `d` the deferred check woke it, `p` neither (the answer came while parked or
    /// at the re-check).
    fn client(
        req: ModelMemory,
        resp: ModelMemory,
        sent: &[(u64, Vec<u8>)],
        deferred_fenced: bool,
    ) -> (Vec<(u64, Vec<u8>)>, String) {
        let policy = park_at_once();
        let mut p = Producer::new(req);
        let mut c = Consumer::new(resp);
        let mut buf = Vec::new();
        let (mut seen, mut obs) = (Vec::new(), String::new());
        for (id, payload) in sent {
            push_blocking(&mut p, *id, payload);
            p.publish(); // [R3]-[R4]
            let hinted = wake_if_parked(p.consumer_park_word(), false);
            let mut answer = None;
            for _ in 0..SPIN_POLLS {
                if let Some(h) = c.poll(&mut buf).unwrap() {
                    answer = Some(h);
                    break;
                }
                loom::thread::yield_now();
            }
            let mut tag = if hinted { 'h' } else { 's' };
            if answer.is_none() {
                // Not answered within the spin: the deferred [W5]-[W6], then wait.
                if wake_if_parked(p.consumer_park_word(), deferred_fenced) {
                    tag = 'd';
                } else if !hinted {
                    tag = 'p';
                }
                while answer.is_none() {
                    answer = c.poll(&mut buf).unwrap();
                    if answer.is_none() {
                        let w = policy.park(c.park_word(), PARKED, || c.peek_ready());
                        assert!(!matches!(w, Waited::TimedOut { .. }), "no model timeout");
                    }
                }
            }
            let h = answer.unwrap();
            seen.push((h.request_id, buf[..h.payload_len as usize].to_vec()));
            obs.push(tag);
        }
        (seen, obs)
    }

    fn model(deferred_fenced: bool) -> String {
        let (req, resp) = (tiny_ring(4, 64), tiny_ring(4, 64));
        let sent = frames(&[4, 12]);
        let n = sent.len();
        let (wreq, wresp) = (req.clone(), resp.clone());
        let w = loom::thread::spawn(move || worker(wreq, wresp, n));
        let (seen, obs) = client(req, resp, &sent, deferred_fenced);
        w.join().unwrap();
        assert_eq!(seen, sent, "every answer, in order, byte-identical");
        obs
    }

    #[test]
    fn a_worker_parked_behind_the_unfenced_hint_is_woken_by_the_deferred_check() {
        let r = check("deferred_wake", || model(true));
        // Explored: an answer within the spin (no fence at all), a wake by the hint, and
        // a worker that parked while the hint read AWAKE, woken by the deferred check.
        let all: String = r.observations.iter().cloned().collect();
        assert!(
            all.contains('s') && all.contains('h') && all.contains('d'),
            "{:?}",
            r.observations
        );
    }

    #[test]
    fn without_the_deferred_fence_loom_finds_the_lost_wakeup() {
        let m = expect_failure("deferred_wake without its [W5] fence", || model(false));
        assert!(m.contains("deadlock"), "{m}");
    }
}
