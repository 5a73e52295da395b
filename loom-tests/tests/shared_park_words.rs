//! Interleaving targeted: one park word per side, as in a real region (layout.md §4, §10,
//! §11). The worker consumes the request ring and produces into the response ring; the
//! client does the reverse; `ModelMemory::pair` makes the request ring's consumer word the
//! response ring's producer word (the worker's word) and the other way round (the client's).
//! One worker and one client, run over three scenarios. In the first, each answer fills the
//! whole 4-chunk response ring (two fragments), so the ring stays full until the client reads
//! the answer before it: the worker must park waiting
//! for room (`PARKED_FOR_ROOM`), be woken by the client's release, and the client, parked
//! waiting for answers (`PARKED`), must be woken by the worker's publish. A bit on the wrong
//! word, or a waker checking the wrong bit, leaves a side asleep forever: a loom deadlock
//! (the modelled futex never times out). Teeth: a worker that announces `PARKED` while it
//! waits for room is never woken by a release, and loom finds that deadlock.
//!
//! The client always submits everything before reading anything, draining answers and
//! announcing both bits while it waits for request-ring room (what the Python client does).
//! With answers larger than the response ring — published fragment by fragment while the
//! client sleeps for room — a client announcing only `PARKED_FOR_ROOM` deadlocks: loom finds
//! it, and with both bits none.
#[cfg(chunkring_loom)]
mod tests {
    use std::time::Duration;

    use chunkring::frame::FrameHeader;
    use chunkring::layout::{PARKED, PARKED_FOR_ROOM};
    use chunkring::ring::model::ModelMemory;
    use chunkring::ring::{Consumer, MessageWriter, Producer, PushError, Reassembled, Reassembler};
    use chunkring::wait::{WaitPolicy, Waited};
    use chunkring_loom_tests::{check, expect_failure, notify_consumer, notify_producer};

    /// One model: ring sizes, the traffic, and the bits each side announces when it waits
    /// for room (the worker for response-ring room, the client for request-ring room).
    #[derive(Clone, Copy)]
    struct Scenario {
        chunks: u64,
        requests: u64,
        request_len: usize,
        answer_len: usize,
        worker_room_bits: u32,
        client_room_bits: u32,
    }

    const BOTH: u32 = PARKED | PARKED_FOR_ROOM;

    /// 4-chunk rings; two empty requests; answers of 60 bytes (two fragments, the whole
    /// response ring), so the worker must wait for room while the client waits for answers.
    const ANSWERS_FILL_THE_RING: Scenario = Scenario {
        chunks: 4,
        requests: 2,
        request_len: 0,
        answer_len: 60,
        worker_room_bits: PARKED_FOR_ROOM,
        client_room_bits: BOTH,
    };

    /// 4-chunk rings; three 3-chunk requests, submitted before anything is read.
    const SUBMIT_ALL: Scenario = Scenario {
        chunks: 4,
        requests: 3,
        request_len: 60,
        answer_len: 60,
        worker_room_bits: PARKED_FOR_ROOM,
        client_room_bits: BOTH,
    };

    /// 2-chunk rings; four empty requests; answers of two fragments, each a whole ring: the
    /// worker is blocked mid-answer while the client sleeps waiting for request-ring room.
    const FRAGMENTED_ANSWERS: Scenario = Scenario {
        chunks: 2,
        requests: 4,
        request_len: 0,
        answer_len: 40,
        worker_room_bits: PARKED_FOR_ROOM,
        client_room_bits: BOTH,
    };

    fn policy() -> WaitPolicy {
        WaitPolicy {
            spin: Duration::ZERO,
            park_timeout: Duration::from_millis(50),
        }
    }

    fn answer_of(id: u64, sc: Scenario) -> Vec<u8> {
        vec![id as u8; sc.answer_len]
    }

    /// The worker: answer each request (fragmenting as needed); park for requests when idle,
    /// for room (announcing `sc.worker_room_bits`) when the response ring is full.
    fn worker(requests: ModelMemory, responses: ModelMemory, sc: Scenario) {
        let policy = policy();
        let mut rx = Consumer::new(requests);
        let mut tx = Producer::new(responses);
        let mut buf = Vec::new();
        let mut answered = 0;
        while answered < sc.requests {
            let Some(h) = rx.poll(&mut buf).unwrap() else {
                policy.park(rx.park_word(), PARKED, || rx.peek_ready());
                continue;
            };
            notify_producer(&rx); // request chunks released: wake a client waiting for room
            let mut answer = MessageWriter::new(1, h.request_id, answer_of(h.request_id, sc));
            let mut frames = 0;
            while !answer.write(&mut tx, &mut frames).unwrap() {
                tx.publish();
                notify_consumer(&tx);
                policy.park(tx.park_word(), sc.worker_room_bits, || tx.peek_room());
            }
            tx.publish();
            notify_consumer(&tx);
            answered += 1;
        }
    }

    /// The client: submit every request before reading anything (as the Python client may),
    /// draining answers and announcing `sc.client_room_bits` while it waits for request-ring
    /// room; then read the rest, parking for answers. Observations: `a` an answer, `p` a wait
    /// for room, `w`/`r` a wait for answers that slept / was caught by the re-check.
    fn client(requests: ModelMemory, responses: ModelMemory, sc: Scenario) -> String {
        let policy = policy();
        let mut tx = Producer::new(requests);
        let mut rx = Consumer::new(responses);
        let mut asm = Reassembler::new(1 << 10);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        let mut obs = String::new();
        let mut drain = |rx: &mut Consumer<ModelMemory>, seen: &mut Vec<u64>, obs: &mut String| {
            while let Some(h) = rx.poll_at(&mut buf, asm.landing()).unwrap() {
                notify_producer(rx); // response chunks released: wake a worker waiting for room
                let whole = match asm.accept(&h, &mut buf).unwrap() {
                    Reassembled::Single(h) => Some((h, buf[..h.payload_len as usize].to_vec())),
                    Reassembled::Whole(h) => Some((h, buf[..h.message_len as usize].to_vec())),
                    _ => None,
                };
                if let Some((h, msg)) = whole {
                    assert_eq!(msg, answer_of(h.request_id, sc));
                    seen.push(h.request_id);
                    obs.push('a');
                }
            }
        };
        for id in 1..=sc.requests {
            let h = FrameHeader::message(1, id, sc.request_len as u32, sc.request_len as u64);
            loop {
                match tx.try_push(&h, &vec![0; sc.request_len]) {
                    Ok(()) => break,
                    Err(PushError::Full) => {
                        tx.publish();
                        notify_consumer(&tx);
                        drain(&mut rx, &mut seen, &mut obs);
                        let (t, r) = (&tx, &rx);
                        policy.park(t.park_word(), sc.client_room_bits, || {
                            t.peek_room() || r.peek_ready()
                        });
                        obs.push('p');
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            tx.publish();
            notify_consumer(&tx);
        }
        while (seen.len() as u64) < sc.requests {
            drain(&mut rx, &mut seen, &mut obs);
            if (seen.len() as u64) < sc.requests {
                let r = &rx;
                let w = policy.park(r.park_word(), PARKED, || r.peek_ready());
                obs.push(if matches!(w, Waited::Woken) { 'w' } else { 'r' });
            }
        }
        assert_eq!(seen, (1..=sc.requests).collect::<Vec<_>>());
        obs
    }

    fn model(sc: Scenario) -> String {
        let (requests, responses) = ModelMemory::pair(sc.chunks, 32);
        let (wreq, wresp) = (requests.clone(), responses.clone());
        let w = loom::thread::spawn(move || worker(wreq, wresp, sc));
        let obs = client(requests, responses, sc);
        w.join().unwrap();
        obs
    }

    #[test]
    fn both_sides_are_woken_through_shared_words_for_what_they_wait_for() {
        let r = check("shared_park_words", || model(ANSWERS_FILL_THE_RING));
        assert!(r.observations.len() >= 2, "{:?}", r.observations);
    }

    #[test]
    fn a_worker_announcing_the_wrong_bit_while_it_waits_for_room_is_never_woken() {
        let sc = Scenario {
            worker_room_bits: PARKED,
            ..ANSWERS_FILL_THE_RING
        };
        let m = expect_failure("shared_park_words with PARKED for room", move || model(sc));
        assert!(m.contains("deadlock"), "{m}");
    }

    #[test]
    fn a_client_waiting_for_room_with_both_bits_keeps_both_sides_moving() {
        let r = check("shared_park_words_submit_all", || model(SUBMIT_ALL));
        assert!(
            r.observations.iter().any(|o| o.contains('p')),
            "{:?}",
            r.observations
        );
    }

    #[test]
    fn a_client_draining_fragmented_answers_while_it_waits_for_room_needs_both_bits() {
        let r = check("shared_park_words_fragments", || model(FRAGMENTED_ANSWERS));
        assert!(
            r.observations.iter().any(|o| o.contains('p')),
            "{:?}",
            r.observations
        );
        let sc = Scenario {
            client_room_bits: PARKED_FOR_ROOM,
            ..FRAGMENTED_ANSWERS
        };
        let m = expect_failure(
            "shared_park_words_fragments with PARKED_FOR_ROOM only",
            move || model(sc),
        );
        assert!(m.contains("deadlock"), "{m}");
    }
}
