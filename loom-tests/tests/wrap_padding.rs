//! Interleaving targeted: a producer wrapping around a 4-chunk ring (frames of 1..3 chunks,
//! so a padding frame is needed) while the consumer reads and releases concurrently. Every
//! frame must arrive exactly once, in order, byte-identical; loom's cell tracking reports any
//! chunk read not ordered after its write ([R3]/[R5]) or overwritten before its copy-out
//! finished ([R1]/[R6]).
#[cfg(chunkring_loom)]
mod tests {
    use chunkring::ring::{Consumer, Producer};
    use chunkring_loom_tests::{consume, push_blocking, tiny_ring};

    #[test]
    fn wrap_around_with_padding_delivers_every_frame_in_order() {
        loom::model(|| {
            let mem = tiny_ring(4, 32);
            // Payload lengths: 1 chunk (header only), 2 chunks, 2 chunks → the third must wrap.
            let sent: Vec<(u64, Vec<u8>)> = vec![(1, vec![]), (2, vec![7; 20]), (3, vec![9; 30])];
            let to_send = sent.clone();
            let pmem = mem.clone();
            let producer = loom::thread::spawn(move || {
                let mut p = Producer::new(pmem);
                for (id, payload) in &to_send {
                    push_blocking(&mut p, *id, payload);
                    p.publish();
                }
            });
            let mut c = Consumer::new(mem);
            let seen = consume(&mut c, sent.len());
            producer.join().unwrap();
            assert_eq!(seen, sent);
        });
    }
}
