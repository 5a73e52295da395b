//! Interleaving targeted: the lean call's release without a room check (layout.md §11
//! "Deferred wake check", `python/chunkring/_lean.py`). After the head store ([R6]) that
//! releases its answer, the lean call skips [W5]–[W6] for `PARKED_FOR_ROOM` when no request
//! was written after its own: the worker answers one message per request, in order (§1), so
//! it owes no answer after ours and cannot be parked for room, and the next request's
//! publish ([R3]–[R4]) comes after our head store, so the worker that reads it sees the room.
//! With a later request written before the release, the check stays.
//!
//! The worker is the real `Consumer`/`Producer` pair: it parks for requests
//! (`PARKED`) and, when its response ring is full, for room (`PARKED_FOR_ROOM`), with
//! `WaitPolicy::park`. Each answer takes 3 of the response ring's 4 chunks, so the second
//! answer needs the first one's release. The modelled futexes have no timeout: a lost
//! wake-up is a loom deadlock. Teeth: skipping the room check although a later request was
//! written lets loom find the worker asleep for room forever.
#[cfg(chunkring_loom)]
mod tests {
    use chunkring::layout::{PARKED, PARKED_FOR_ROOM};
    use chunkring::ring::model::ModelMemory;
    use chunkring::ring::{Consumer, Producer, PushError};
    use chunkring::wait::{notify, Waited};
    use chunkring_loom_tests::{
        check, expect_failure, frames, header, park_at_once, push_blocking, tiny_ring,
    };

    /// The worker: answer every request (same id and payload) in order; park for requests
    /// when none is there, for room when the answer does not fit. Returns its room parks and
    /// its parks for requests that ended by a wake.
    fn worker(req: ModelMemory, resp: ModelMemory, n: usize) -> (u32, u32) {
        let policy = park_at_once();
        let mut c = Consumer::new(req);
        let mut p = Producer::new(resp);
        let (mut buf, mut answered, mut room_parks, mut woken) = (Vec::new(), 0, 0, 0);
        while answered < n {
            match c.poll(&mut buf) {
                Ok(Some(h)) => {
                    let payload = buf[..h.payload_len as usize].to_vec();
                    loop {
                        match p.try_push(&header(h.request_id, payload.len()), &payload) {
                            Ok(()) => break,
                            Err(PushError::Full) => {
                                p.publish();
                                notify(p.consumer_park_word(), PARKED);
                                room_parks += 1;
                                let _ =
                                    policy.park(p.park_word(), PARKED_FOR_ROOM, || p.peek_room());
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    p.publish();
                    notify(p.consumer_park_word(), PARKED);
                    answered += 1;
                }
                Ok(None) => {
                    if policy.park(c.park_word(), PARKED, || c.peek_ready()) == Waited::Woken {
                        woken += 1;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        (room_parks, woken)
    }

    /// The client's wait for the next answer: poll (which releases it, [R6]), else park on
    /// its own word until the worker's publish wakes it.
    fn take(c: &mut Consumer<ModelMemory>, buf: &mut Vec<u8>) -> (u64, Vec<u8>) {
        let policy = park_at_once();
        loop {
            if let Some(h) = c.poll(buf).unwrap() {
                return (h.request_id, buf[..h.payload_len as usize].to_vec());
            }
            let w = policy.park(c.park_word(), PARKED, || c.peek_ready());
            assert!(!matches!(w, Waited::TimedOut { .. }), "no model timeout");
        }
    }

    /// Sends `sent` in `groups` (all of a group's requests written and published, each with
    /// [W5]–[W6], before the first of its answers is taken), taking each answer in turn.
    /// After taking an answer, [W5]–[W6] for room runs only when a request of the group was
    /// written after it, unless `skip_always` (the teeth).
    fn client(
        req: ModelMemory,
        resp: ModelMemory,
        sent: &[(u64, Vec<u8>)],
        groups: &[usize],
        skip_always: bool,
    ) -> Vec<(u64, Vec<u8>)> {
        let mut p = Producer::new(req);
        let mut c = Consumer::new(resp);
        let (mut buf, mut seen, mut next) = (Vec::new(), Vec::new(), 0);
        for &k in groups {
            for (id, payload) in &sent[next..next + k] {
                push_blocking(&mut p, *id, payload);
                p.publish();
                notify(p.consumer_park_word(), PARKED);
            }
            for i in 0..k {
                seen.push(take(&mut c, &mut buf));
                let later_written = i + 1 < k;
                if later_written && !skip_always {
                    notify(c.producer_park_word(), PARKED_FOR_ROOM);
                }
            }
            next += k;
        }
        seen
    }

    fn model(groups: &'static [usize], skip_always: bool) -> String {
        // Each payload makes a 3-chunk frame of 64-byte chunks: two answers never fit in
        // the 4-chunk response ring; the request ring (8 chunks) holds two requests.
        let (req, resp) = (tiny_ring(8, 64), tiny_ring(4, 64));
        let n: usize = groups.iter().sum();
        let sent = frames(&vec![150; n]);
        let (wreq, wresp) = (req.clone(), resp.clone());
        let w = loom::thread::spawn(move || worker(wreq, wresp, n));
        let seen = client(req, resp, &sent, groups, skip_always);
        let (room_parks, woken) = w.join().unwrap();
        assert_eq!(seen, sent, "every answer, in order, byte-identical");
        format!("room parks {room_parks}, woken for requests {woken}")
    }

    #[test]
    fn one_call_at_a_time_releases_without_a_room_check() {
        let r = check("lean_release_sequential", || model(&[1, 1], false));
        // The worker never waits for room (it reads the second request only after the
        // release), whether or not it parked for requests in between.
        assert!(
            r.observations.iter().all(|o| o.starts_with("room parks 0"))
                && r.observations.len() > 1,
            "{:?}",
            r.observations
        );
    }

    #[test]
    fn with_a_later_request_written_the_room_check_wakes_the_worker() {
        let r = check("lean_release_overlap", || model(&[2], false));
        // Explored: the worker parked for room and was woken by the client's check.
        assert!(
            r.observations.iter().any(|o| o.starts_with("room parks 1")),
            "{:?}",
            r.observations
        );
    }

    #[test]
    fn skipping_the_room_check_with_a_later_request_written_loses_a_wakeup() {
        let m = expect_failure("lean_release skipping the room check", || model(&[2], true));
        assert!(m.contains("deadlock"), "{m}");
    }
}
