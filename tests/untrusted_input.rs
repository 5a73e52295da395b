//! Shared memory is untrusted input (layout.md §6.5): every malformed frame gets an error
//! frame with a clear message, and the worker goes on serving the next good request.
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chunkring::frame::FrameHeader;
use chunkring::layout::*;
use chunkring::ops::encode_request;
use chunkring::ring::{RingMemory, Word};
use common::{Answer, TestClient, Worker};

fn good(c: &mut TestClient, id: u64) {
    let a = c.call(OP_ECHO, id, b"", b"still serving");
    assert_eq!(
        (a.error, a.payload.as_slice()),
        (false, &b"still serving"[..]),
        "{a:?}"
    );
}

fn error(c: &mut TestClient) -> Answer {
    let a = c.recv(Duration::from_secs(10));
    assert!(a.error, "expected an error frame, got {a:?}");
    a
}

fn msg(a: &Answer) -> String {
    String::from_utf8_lossy(&a.payload).into_owned()
}

#[test]
fn unknown_op_in_a_raw_frame() {
    let w = Worker::start("u-op", &[]);
    let mut c = w.client();
    let payload = encode_request(b"", b"x");
    c.send_raw(
        FrameHeader::message(0x4242, 9, payload.len() as u32, payload.len() as u64),
        &payload,
        1,
    );
    let a = error(&mut c);
    assert_eq!((a.id, a.status), (9, ERR_UNKNOWN_OP));
    assert_eq!(msg(&a), "unknown op 0x4242");
    good(&mut c, 10);
}

#[test]
fn length_beyond_the_ring() {
    let w = Worker::start("u-len", &["--size", "4096"]);
    let mut c = w.client();
    c.send_raw(FrameHeader::message(OP_ECHO, 11, 1 << 20, 1 << 20), b"", 1);
    let a = error(&mut c);
    // An untrusted extent resynchronises: id 0, every request in flight lost (§6.5).
    assert_eq!((a.id, a.status), (0, ERR_FRAME_LENGTH));
    assert!(msg(&a).contains("runs past"), "{}", msg(&a));
    good(&mut c, 12);
}

#[test]
fn length_beyond_what_was_published() {
    let w = Worker::start("u-pub", &[]);
    let mut c = w.client();
    c.send_raw(FrameHeader::message(OP_ECHO, 13, 500, 500), b"", 1);
    let a = error(&mut c);
    assert_eq!((a.id, a.status), (0, ERR_FRAME_LENGTH));
    assert!(msg(&a).contains("published"), "{}", msg(&a));
    good(&mut c, 14);
}

#[test]
fn corrupt_header_bad_magic() {
    let w = Worker::start("u-magic", &[]);
    let mut c = w.client();
    let mut h = FrameHeader::message(OP_ECHO, 15, 4, 4);
    h.magic = 0xdead;
    c.send_raw(h, &[0; 4], 1);
    let a = error(&mut c);
    assert_eq!((a.id, a.status), (0, ERR_MALFORMED_HEADER));
    assert!(msg(&a).contains("bad frame magic 0xdead"), "{}", msg(&a));
    good(&mut c, 16);
}

#[test]
fn unknown_flags_status_and_garbage() {
    let w = Worker::start("u-flags", &[]);
    let mut c = w.client();
    let payload = encode_request(b"", b"");
    let mut h = FrameHeader::message(OP_ECHO, 17, payload.len() as u32, payload.len() as u64);
    h.flags = 0x0100;
    c.send_raw(h, &payload, 1);
    let a = error(&mut c);
    assert_eq!((a.id, a.status), (17, ERR_MALFORMED_HEADER));
    assert!(msg(&a).contains("unknown flag bits 0x0100"), "{}", msg(&a));

    let mut h = FrameHeader::message(OP_ECHO, 18, payload.len() as u32, payload.len() as u64);
    h.status = 7;
    c.send_raw(h, &payload, 1);
    assert_eq!(error(&mut c).status, ERR_MALFORMED_HEADER);

    // 64 bytes of garbage: bad magic, resynchronised.
    c.send_raw(FrameHeader::decode(&[0xAB; 32]), &[0xCD; 32], 1);
    assert_eq!(error(&mut c).status, ERR_MALFORMED_HEADER);
    good(&mut c, 19);
}

#[test]
fn bad_fragment_sequences_and_params() {
    let w = Worker::start("u-frag", &[]);
    let mut c = w.client();
    // A continuation fragment with no open message.
    let mut h = FrameHeader::message(OP_ECHO, 20, 4, 8);
    h.fragment_index = 1;
    c.send_raw(h, &[1; 4], 1);
    let a = error(&mut c);
    assert_eq!((a.id, a.status), (20, ERR_FRAGMENT_SEQUENCE));
    // A single frame whose message_len lies.
    c.send_raw(FrameHeader::message(OP_ECHO, 21, 4, 9), &[1; 4], 1);
    assert_eq!(error(&mut c).status, ERR_FRAGMENT_SEQUENCE);
    // A payload shorter than its params_len prefix.
    let a = c.call(OP_ECHO, 22, b"", b"");
    assert!(!a.error);
    c.send_raw(
        FrameHeader::message(OP_ECHO, 23, 6, 6),
        &[0xff, 0xff, 0, 0, 1, 2],
        1,
    );
    let a = error(&mut c);
    assert_eq!((a.id, a.status), (23, ERR_BAD_PAYLOAD));
    assert!(msg(&a).contains("params_len"), "{}", msg(&a));
    // A message larger than the worker accepts.
    c.send_raw(FrameHeader::message(OP_ECHO, 24, 4, u64::MAX), &[0; 4], 1);
    assert_eq!(error(&mut c).status, ERR_FRAGMENT_SEQUENCE);
    let mut h = FrameHeader::message(OP_ECHO, 25, 4, 1 << 40);
    h.flags = FLAG_MORE;
    c.send_raw(h, &[0; 4], 1);
    let a = error(&mut c);
    assert_eq!((a.id, a.status), (25, ERR_MESSAGE_TOO_LARGE));
    good(&mut c, 26);
}

#[test]
fn an_impossible_tail_is_reported_not_followed() {
    let w = Worker::start("u-tail", &["--size", "4096"]);
    let mut c = w.client();
    good(&mut c, 1);
    // A hostile producer stores a tail far beyond head + capacity.
    let ring = w.region.request_ring().unwrap();
    let tail = ring.load(Word::Tail, Ordering::Relaxed);
    ring.store(Word::Tail, tail + 1_000_000, Ordering::Relaxed);
    c.wake_worker();
    let a = error(&mut c);
    assert_eq!((a.id, a.status), (0, ERR_FRAME_LENGTH));
    assert!(msg(&a).contains("outside head"), "{}", msg(&a));
    assert_eq!(w.region.header().worker_state(), WORKER_READY);
}
