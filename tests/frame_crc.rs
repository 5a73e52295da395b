//! The optional frame checksum (layout.md §6.6) against the real worker binary: a client that
//! sends `FLAG_CRC` frames gets checked answers in kind, a frame changed after its checksum
//! was computed is refused with `CHECKSUM` (id 0, resynchronised) and the worker keeps
//! serving, and a `--crc` worker refuses frames without a checksum.
mod common;

use std::time::Duration;

use chunkring::frame::{frame_crc, FrameHeader};
use chunkring::layout::*;
use chunkring::ops::encode_request;
use common::{Answer, TestClient, Worker};

fn echo(c: &mut TestClient, id: u64, body: &[u8]) -> Answer {
    let a = c.call(OP_ECHO, id, b"", body);
    assert!(!a.error, "{a:?}");
    assert_eq!(a.payload, body, "echo of {} bytes", body.len());
    a
}

fn error(c: &mut TestClient) -> Answer {
    let a = c.recv(Duration::from_secs(10));
    assert!(a.error, "expected an error frame, got {a:?}");
    a
}

/// A one-frame echo request with `FLAG_CRC` whose trailer is `crc ^ flip`, as raw bytes.
fn crc_frame(id: u64, body: &[u8], flip: u32) -> (Vec<u8>, u64) {
    let payload = encode_request(b"", body);
    let mut h = FrameHeader::message(OP_ECHO, id, payload.len() as u32, payload.len() as u64);
    h.flags = FLAG_CRC;
    let header = h.encode();
    let crc = frame_crc(&header, &payload) ^ flip;
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&payload);
    bytes.extend_from_slice(&crc.to_le_bytes());
    (bytes, h.chunks(DEFAULT_CHUNK_BYTES as usize))
}

#[test]
fn echo_with_checksums_is_answered_in_kind_at_every_size() {
    let w = Worker::start("crc-echo", &["--size", "65536"]);
    let mut c = w.client();
    c.crc = true;
    // 0, across the trailer's chunk boundary (28 + 4 = one 64-byte chunk), several
    // chunks, and fragmented both ways (a quarter ring is 16 KiB).
    for (i, n) in [0usize, 24, 25, 26, 1000, 16_380, 200_000]
        .into_iter()
        .enumerate()
    {
        let body: Vec<u8> = (0..n).map(|j| (j * 7 + i) as u8).collect();
        let a = echo(&mut c, 100 + i as u64, &body);
        assert!(a.crc, "answer to a checksummed request carries FLAG_CRC");
    }
    // Optional mode: a request without a checksum is answered without one.
    c.crc = false;
    assert!(!echo(&mut c, 200, b"plain").crc);
}

#[test]
fn a_frame_changed_after_its_checksum_is_refused_and_service_continues() {
    let w = Worker::start("crc-bad", &[]);
    let mut c = w.client();
    c.crc = true;
    echo(&mut c, 1, b"before");
    let (bytes, chunks) = crc_frame(2, b"scribbled", 1);
    c.requests.push_raw(&bytes, chunks).unwrap();
    c.flush();
    let a = error(&mut c);
    // The header is covered too, so its id cannot be trusted: id 0, resynchronised (§6.5).
    assert_eq!(
        (a.id, a.op, a.status, a.crc),
        (0, 0, ERR_CHECKSUM, true),
        "{a:?}"
    );
    let text = String::from_utf8_lossy(&a.payload);
    assert!(text.contains("frame checksum mismatch"), "{text}");
    // A good checksummed frame built the same way is served.
    let (bytes, chunks) = crc_frame(3, b"good", 0);
    c.requests.push_raw(&bytes, chunks).unwrap();
    c.flush();
    let a = c.recv(Duration::from_secs(10));
    assert_eq!(
        (a.id, a.error, a.payload.as_slice()),
        (3, false, &b"good"[..])
    );
    echo(&mut c, 4, b"after");
}

#[test]
fn a_required_region_refuses_frames_without_a_checksum() {
    let w = Worker::start("crc-req", &["--crc"]);
    assert_eq!(w.region.header().frame_crc(), FRAME_CRC_REQUIRED);
    let mut c = w.client();
    let payload = encode_request(b"", b"no checksum");
    let mut got = Vec::new();
    c.send(OP_ECHO, 5, payload, &mut got);
    let a = got.pop().unwrap_or_else(|| error(&mut c));
    assert_eq!((a.id, a.status, a.crc), (0, ERR_CHECKSUM, true), "{a:?}");
    assert!(String::from_utf8_lossy(&a.payload).contains("requires one"));
    c.crc = true;
    assert!(echo(&mut c, 6, b"with checksum").crc);
}
