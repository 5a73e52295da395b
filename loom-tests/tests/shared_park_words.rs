//! Interleaving targeted: one park word per side, as in a real region (layout.md §4, §10,
//! §11). The worker consumes the request ring and produces into the response ring; the
//! client does the reverse; `ModelMemory::pair` makes the request ring's consumer word the
//! response ring's producer word (the worker's word) and the other way round (the client's).
//! Each answer takes 3 of the response ring's 4 chunks, so the second answer needs a padding
//! frame and the ring is full until the client reads the first: the worker must park waiting
//! for room (`PARKED_FOR_ROOM`), be woken by the client's release, and the client, parked
//! waiting for answers (`PARKED`), must be woken by the worker's publish. A bit on the wrong
//! word, or a waker checking the wrong bit, leaves a side asleep forever: a loom deadlock
//! (the modelled futex never times out). Teeth: a worker that announces `PARKED` while it
//! waits for room is never woken by a release, and loom finds that deadlock.
//!
//! Two more models have the client submit everything before reading anything, draining
//! answers and announcing both bits while it waits for request-ring room (what the Python
//! client does). With 3-chunk answers that fit the response ring, a client announcing only
//! `PARKED_FOR_ROOM` survives too (the worker's release before each answer wakes it). With
//! answers larger than the response ring — published fragment by fragment while the client
//! sleeps for room — it does not: loom finds the deadlock, and with both bits none.
#[cfg(chunkring_loom)]
mod tests {
    use std::time::Duration;

    use chunkring::frame::FrameHeader;
    use chunkring::layout::{PARKED, PARKED_FOR_ROOM};
    use chunkring::ring::model::ModelMemory;
    use chunkring::ring::{
        Consumer, MessageWriter, Park, Producer, PushError, Reassembled, Reassembler,
    };
    use chunkring::wait::{parked_bit, WaitPolicy};
    use chunkring_loom_tests::{check, expect_failure};

    const ANSWER_BYTES: usize = 60; // 32-byte header + 60 = 92 bytes: 3 chunks of 32
    const REQUESTS: u64 = 2;

    fn policy() -> WaitPolicy {
        WaitPolicy {
            spin: Duration::ZERO,
            park_timeout: Duration::from_millis(50),
        }
    }

    /// The worker: answer each of `n` requests with a 3-chunk frame; park for requests when
    /// idle, for room (with `room_bits`) when the response ring is full.
    fn worker(requests: ModelMemory, responses: ModelMemory, n: u64, room_bits: u32) {
        let policy = policy();
        let mut rx = Consumer::new(requests);
        let mut tx = Producer::new(responses);
        let mut buf = Vec::new();
        let mut answered = 0;
        while answered < n {
            let Some(h) = rx.poll(&mut buf).unwrap() else {
                policy.park(rx.memory(), Park::Consumer, || rx.peek_ready());
                continue;
            };
            rx.notify_producer(); // request chunks released: wake a client waiting for room
            let answer =
                FrameHeader::message(1, h.request_id, ANSWER_BYTES as u32, ANSWER_BYTES as u64);
            loop {
                match tx.try_push(&answer, &[h.request_id as u8; ANSWER_BYTES]) {
                    Ok(()) => break,
                    Err(PushError::Full) => {
                        tx.publish(); // a padding frame may be waiting
                        tx.notify_consumer();
                        policy.park_for(tx.memory(), Park::Producer, room_bits, || tx.peek_room());
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            tx.publish();
            tx.notify_consumer();
            answered += 1;
        }
    }

    /// The client: publish both requests, then read both answers, parking for answers and
    /// waking the worker for room after each release.
    fn client(requests: ModelMemory, responses: ModelMemory) -> String {
        let policy = policy();
        let mut tx = Producer::new(requests);
        for id in 1..=REQUESTS {
            tx.try_push(&FrameHeader::message(1, id, 0, 0), b"")
                .unwrap();
        }
        tx.publish();
        tx.notify_consumer();
        let mut rx = Consumer::new(responses);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        let mut obs = String::new();
        while (seen.len() as u64) < REQUESTS {
            match rx.poll(&mut buf).unwrap() {
                Some(h) => {
                    assert_eq!(
                        &buf[..h.payload_len as usize],
                        &[h.request_id as u8; ANSWER_BYTES][..]
                    );
                    seen.push(h.request_id);
                    rx.notify_producer(); // response chunks released: wake a worker waiting for room
                    obs.push('a');
                }
                None => {
                    let w = policy.park(rx.memory(), Park::Consumer, || rx.peek_ready());
                    obs.push(if matches!(w, chunkring::wait::Waited::Woken) {
                        'w'
                    } else {
                        'r'
                    });
                }
            }
        }
        assert_eq!(seen, (1..=REQUESTS).collect::<Vec<_>>());
        obs
    }

    fn model(room_bits: u32) -> String {
        let (requests, responses) = ModelMemory::pair(4, 32);
        let (wreq, wresp) = (requests.clone(), responses.clone());
        let w = loom::thread::spawn(move || worker(wreq, wresp, REQUESTS, room_bits));
        let obs = client(requests, responses);
        w.join().unwrap();
        obs
    }

    /// A client that submits everything before reading anything (as the Python client may):
    /// while it waits for request-ring room it drains answers, and announces both bits —
    /// `client_bits` — so the worker's publish *or* release wakes it.
    fn submitting_client(
        requests: ModelMemory,
        responses: ModelMemory,
        client_bits: u32,
    ) -> String {
        let policy = policy();
        let mut tx = Producer::new(requests);
        let mut rx = Consumer::new(responses);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        let mut obs = String::new();
        let mut drain = |rx: &mut Consumer<ModelMemory>, seen: &mut Vec<u64>, obs: &mut String| {
            while let Some(h) = rx.poll(&mut buf).unwrap() {
                seen.push(h.request_id);
                rx.notify_producer();
                obs.push('a');
            }
        };
        for id in 1..=3u64 {
            let h = FrameHeader::message(1, id, ANSWER_BYTES as u32, ANSWER_BYTES as u64);
            loop {
                match tx.try_push(&h, &[0; ANSWER_BYTES]) {
                    Ok(()) => break,
                    Err(PushError::Full) => {
                        tx.publish();
                        tx.notify_consumer();
                        drain(&mut rx, &mut seen, &mut obs);
                        let (t, r) = (&tx, &rx);
                        policy.park_for(t.memory(), Park::Producer, client_bits, || {
                            t.peek_room() || r.peek_ready()
                        });
                        obs.push('p');
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            tx.publish();
            tx.notify_consumer();
        }
        while seen.len() < 3 {
            drain(&mut rx, &mut seen, &mut obs);
            if seen.len() < 3 {
                let r = &rx;
                policy.park(r.memory(), Park::Consumer, || r.peek_ready());
            }
        }
        assert_eq!(seen, vec![1, 2, 3]);
        obs
    }

    fn submit_all_model(client_bits: u32) -> String {
        let (requests, responses) = ModelMemory::pair(4, 32);
        let (wreq, wresp) = (requests.clone(), responses.clone());
        let w = loom::thread::spawn(move || worker(wreq, wresp, 3, PARKED_FOR_ROOM));
        let obs = submitting_client(requests, responses, client_bits);
        w.join().unwrap();
        obs
    }

    #[test]
    fn a_client_waiting_for_room_with_both_bits_keeps_both_sides_moving() {
        let r = check("shared_park_words_submit_all", || {
            submit_all_model(PARKED | PARKED_FOR_ROOM)
        });
        assert!(
            r.observations.iter().any(|o| o.contains('p')),
            "{:?}",
            r.observations
        );
    }

    /// Answers larger than the response ring: the worker publishes an answer fragment by
    /// fragment (each a whole 2-chunk ring) while the client, blocked on request-ring room,
    /// must drain them. Rings of 2 chunks; 4 one-chunk requests; answers of 2 fragments.
    fn fragmenting_model(client_bits: u32) -> String {
        let (requests, responses) = ModelMemory::pair(2, 32);
        let (wreq, wresp) = (requests.clone(), responses.clone());
        let w = loom::thread::spawn(move || {
            let policy = policy();
            let mut rx = Consumer::new(wreq);
            let mut tx = Producer::new(wresp);
            let mut buf = Vec::new();
            let mut answered = 0;
            while answered < 4 {
                let Some(h) = rx.poll(&mut buf).unwrap() else {
                    policy.park(rx.memory(), Park::Consumer, || rx.peek_ready());
                    continue;
                };
                rx.notify_producer();
                let mut answer = MessageWriter::new(1, h.request_id, vec![h.request_id as u8; 40]);
                let mut frames = 0;
                while !answer.write(&mut tx, &mut frames).unwrap() {
                    tx.publish();
                    tx.notify_consumer();
                    policy.park(tx.memory(), Park::Producer, || tx.peek_room());
                }
                tx.publish();
                tx.notify_consumer();
                answered += 1;
            }
        });
        let policy = policy();
        let mut tx = Producer::new(requests);
        let mut rx = Consumer::new(responses);
        let mut asm = Reassembler::new(1 << 10);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        let mut obs = String::new();
        let mut drain = |rx: &mut Consumer<ModelMemory>, seen: &mut Vec<u64>| {
            while let Some(h) = rx.poll(&mut buf).unwrap() {
                rx.notify_producer();
                if let Reassembled::Whole(h, msg) =
                    asm.accept(&h, &buf[..h.payload_len as usize]).unwrap()
                {
                    assert_eq!(msg, vec![h.request_id as u8; 40]);
                    seen.push(h.request_id);
                }
            }
        };
        for id in 1..=4u64 {
            loop {
                match tx.try_push(&FrameHeader::message(1, id, 0, 0), b"") {
                    Ok(()) => break,
                    Err(PushError::Full) => {
                        tx.publish();
                        tx.notify_consumer();
                        drain(&mut rx, &mut seen);
                        let (t, r) = (&tx, &rx);
                        policy.park_for(t.memory(), Park::Producer, client_bits, || {
                            t.peek_room() || r.peek_ready()
                        });
                        obs.push('p');
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            tx.publish();
            tx.notify_consumer();
        }
        while seen.len() < 4 {
            drain(&mut rx, &mut seen);
            if seen.len() < 4 {
                let r = &rx;
                policy.park(r.memory(), Park::Consumer, || r.peek_ready());
            }
        }
        w.join().unwrap();
        assert_eq!(seen, vec![1, 2, 3, 4]);
        obs
    }

    #[test]
    fn a_client_draining_fragmented_answers_while_it_waits_for_room_needs_both_bits() {
        let r = check("shared_park_words_fragments", || {
            fragmenting_model(PARKED | PARKED_FOR_ROOM)
        });
        assert!(
            r.observations.iter().any(|o| o.contains('p')),
            "{:?}",
            r.observations
        );
        let m = expect_failure(
            "shared_park_words_fragments with PARKED_FOR_ROOM only",
            || fragmenting_model(PARKED_FOR_ROOM),
        );
        assert!(m.contains("deadlock"), "{m}");
    }

    #[test]
    fn both_sides_are_woken_through_shared_words_for_what_they_wait_for() {
        assert_eq!(parked_bit(Park::Producer), PARKED_FOR_ROOM);
        let r = check("shared_park_words", || model(PARKED_FOR_ROOM));
        assert!(r.observations.len() >= 2, "{:?}", r.observations);
    }

    #[test]
    fn a_worker_announcing_the_wrong_bit_while_it_waits_for_room_is_never_woken() {
        let m = expect_failure("shared_park_words with PARKED for room", || model(PARKED));
        assert!(m.contains("deadlock"), "{m}");
    }
}
