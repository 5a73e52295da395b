//! The language-neutral vectors of `tests/vectors/` (layout.md §15): decode each hex, compare
//! the fields, re-encode and compare the bytes. `python/tests/test_vectors.py` does the same
//! from the other side.

use std::path::Path;

use chunkring::error::ErrorCode;
use chunkring::frame::{frame_crc, trailer_len, FrameError, FrameHeader};
use chunkring::layout::{FRAME_CRC_BYTES, FRAME_HEADER_BYTES};
use chunkring::ops::{decode_list, encode_list, encode_request, Request};
use chunkring::region::heap::HeapBacking;
use chunkring::region::RegionConfig;
use chunkring::ring::{Consumer, PollError, Producer};
use chunkring::ring::{Reassembled, Reassembler};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    let entries = v.as_array().unwrap().clone();
    assert!(!entries.is_empty(), "{name} has no vectors");
    entries
}

fn unhex(s: &str) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split('-')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn hexes(entry: &Value) -> Vec<Vec<u8>> {
    match (&entry["hex"], &entry["hexes"]) {
        (Value::String(h), _) => vec![unhex(h)],
        (_, Value::Array(hs)) => hs.iter().map(|h| unhex(h.as_str().unwrap())).collect(),
        _ => panic!("vector {} has no hex", entry["name"]),
    }
}

/// Decodes a frame vector, checks every field, re-encodes; returns header and payload.
fn check_frame(entry: &Value) -> (FrameHeader, Vec<u8>) {
    let name = entry["name"].as_str().unwrap();
    let f = &entry["fields"];
    let mut result = None;
    for bytes in hexes(entry) {
        let header = FrameHeader::decode(bytes[..FRAME_HEADER_BYTES].try_into().unwrap());
        let expect = FrameHeader {
            magic: f["magic"].as_u64().unwrap() as u16,
            flags: f["flags"].as_u64().unwrap() as u16,
            op: f["op"].as_u64().unwrap() as u16,
            status: f["status"].as_u64().unwrap() as u16,
            request_id: f["request_id"].as_u64().unwrap(),
            payload_len: f["payload_len"].as_u64().unwrap() as u32,
            fragment_index: f["fragment_index"].as_u64().unwrap() as u32,
            message_len: f["message_len"].as_u64().unwrap(),
        };
        assert_eq!(header, expect, "{name}: fields");
        // A frame with FLAG_CRC ends with its 4-byte trailer (layout.md §6.6).
        let end = bytes.len() - trailer_len(header.flags);
        let payload = bytes[FRAME_HEADER_BYTES..end].to_vec();
        assert_eq!(
            payload,
            unhex(f["payload_hex"].as_str().unwrap()),
            "{name}: payload"
        );
        let mut again = expect.encode().to_vec();
        again.extend_from_slice(&payload);
        if header.has_crc() {
            let crc = f["crc"].as_u64().unwrap() as u32;
            again.extend_from_slice(&crc.to_le_bytes());
        }
        assert_eq!(again, bytes, "{name}: re-encoding");
        result = Some((header, payload));
    }
    result.unwrap()
}

#[test]
fn frame_headers() {
    for e in load("10.frame-header.json") {
        let (h, payload) = check_frame(&e);
        assert!(h.check(64, 1 << 20, 1 << 20).is_ok(), "{}", e["name"]);
        assert_eq!(h.payload_len as usize, payload.len());
    }
}

#[test]
fn padding_frames() {
    for e in load("20.padding.json") {
        let (h, _) = check_frame(&e);
        assert!(h.is_padding());
        // A padding frame must end exactly at the ring's end: find the chunk size it fits.
        let fits = [32usize, 64]
            .iter()
            .any(|&cb| h.check(cb, 64, h.chunks(cb)).is_ok());
        assert!(fits, "{}", e["name"]);
    }
}

#[test]
fn fragments_reassemble() {
    let mut r = Reassembler::new(1 << 20);
    let mut whole = Vec::new();
    let mut buf = Vec::new();
    let mut done = None;
    for e in load("30.fragments.json") {
        let (h, payload) = check_frame(&e);
        whole.extend_from_slice(&payload);
        // Where `Consumer::poll_at` would copy it: after the bytes received so far.
        buf.truncate(r.landing());
        buf.extend_from_slice(&payload);
        match r.accept(&h, &mut buf).unwrap() {
            Reassembled::Whole(h) => done = Some(buf[..h.message_len as usize].to_vec()),
            Reassembled::Partial => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(done.unwrap(), whole);
}

#[test]
fn error_frames() {
    for e in load("40.error-frames.json") {
        let (h, payload) = check_frame(&e);
        assert!(h.is_error());
        let code = ErrorCode::from_u16(h.status).expect("a code layout.md defines");
        assert_ne!(code, ErrorCode::Ok);
        let msg = std::str::from_utf8(&payload).unwrap();
        assert!(
            msg.chars().next().unwrap().is_lowercase() && !msg.ends_with('.'),
            "{msg}"
        );
    }
}

#[test]
fn op_payloads() {
    for e in load("50.ops.json") {
        let name = e["name"].as_str().unwrap();
        let f = &e["fields"];
        let bytes = &hexes(&e)[0];
        if f["compact_patch"] == true || f["process_answer"] == true || f["ahead_patches"] == true {
            continue; // the worker's answers: tested below against the handlers
        }
        if let Some(items) = f["items_hex"].as_array() {
            let items: Vec<Vec<u8>> = items.iter().map(|i| unhex(i.as_str().unwrap())).collect();
            let decoded: Vec<Vec<u8>> = decode_list(bytes)
                .unwrap()
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect();
            assert_eq!(decoded, items, "{name}");
            assert_eq!(&encode_list(&items), bytes, "{name}");
        } else {
            let params = f["params"].as_str().unwrap().as_bytes();
            let body = unhex(f["body_hex"].as_str().unwrap());
            let req = Request::parse(bytes).unwrap();
            assert_eq!((req.params, req.body), (params, body.as_slice()), "{name}");
            assert_eq!(&encode_request(params, &body), bytes, "{name}");
        }
    }
}

#[test]
fn the_aggregate_report_vector_is_the_workers_answer_to_the_request_vector() {
    let by_name = |n: &str| {
        load("50.ops.json")
            .into_iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("no vector {n:?}"))
    };
    let request = &hexes(&by_name(
        "aggregate request with on_error note and a report",
    ))[0];
    let answer = &hexes(&by_name("aggregate answer with a report item"))[0];
    let reg = chunkring::ops::Registry::with_all_ops();
    let req = Request::parse(request).unwrap();
    let handler = reg.get(chunkring::layout::OP_MD_AGGREGATE).unwrap().handler;
    let out = handler(&mut chunkring::ops::State::default(), &req).unwrap();
    assert_eq!(&out, answer);
}

#[test]
fn the_compact_move_vector_is_the_workers_patch() {
    use chunkring::layout::{OP_SNAP_MOVE, OP_SNAP_PUSH};
    let e = load("50.ops.json")
        .into_iter()
        .find(|e| e["fields"]["compact_patch"] == true)
        .expect("a compact move patch vector");
    let f = &e["fields"];
    let reg = chunkring::ops::Registry::with_all_ops();
    let mut state = chunkring::ops::State::default();
    let mut run = |op: u16, params: &str, body: &[u8]| {
        let bytes = encode_request(params.as_bytes(), body);
        let req = Request::parse(&bytes).unwrap();
        (reg.get(op).unwrap().handler)(&mut state, &req).unwrap()
    };
    for snap in [&f["after"], &f["before"]] {
        run(
            OP_SNAP_PUSH,
            r#"{"name":"ui"}"#,
            snap.to_string().as_bytes(),
        );
    }
    let out = run(
        OP_SNAP_MOVE,
        r#"{"name":"ui","to":"undo","compact":true}"#,
        b"",
    );
    assert_eq!(&out[12..], hexes(&e)[0].as_slice());
}

#[test]
fn the_ahead_vectors_are_the_workers_answers_to_the_ahead_request_vectors() {
    ahead_vector_is_the_workers_answer("ahead_patches", "snap.ahead request: ");
    ahead_vector_is_the_workers_answer("ahead_snapshots", "snap.ahead request with snapshots");
}

/// Pushes the answer vector's (`flag` true) snapshots, sends the request vector named
/// `request`, and compares the worker's answer with the vector's header fields and bytes.
fn ahead_vector_is_the_workers_answer(flag: &str, request: &str) {
    use chunkring::layout::{OP_SNAP_AHEAD, OP_SNAP_PUSH};
    let vectors = load("50.ops.json");
    let answer = vectors
        .iter()
        .find(|e| e["fields"][flag] == true)
        .expect("an ahead answer vector");
    let request = vectors
        .iter()
        .find(|e| e["name"].as_str().unwrap().starts_with(request))
        .expect("an ahead request vector");
    let f = &answer["fields"];
    let reg = chunkring::ops::Registry::with_all_ops();
    let mut state = chunkring::ops::State::default();
    let mut run = |op: u16, bytes: &[u8]| {
        let req = Request::parse(bytes).unwrap();
        (reg.get(op).unwrap().handler)(&mut state, &req).unwrap()
    };
    for snap in f["snapshots"].as_array().unwrap() {
        run(
            OP_SNAP_PUSH,
            &encode_request(br#"{"name":"ui"}"#, snap.to_string().as_bytes()),
        );
    }
    let params: serde_json::Value =
        serde_json::from_str(request["fields"]["params"].as_str().unwrap()).unwrap();
    assert_eq!(params, f["request"], "the answer is the request vector's");
    let out = run(OP_SNAP_AHEAD, &hexes(request)[0]);
    let h = &f["header"];
    assert_eq!(
        (out[0], out[1]),
        (
            h["status"].as_u64().unwrap() as u8,
            h["encoding"].as_u64().unwrap() as u8
        )
    );
    assert_eq!(
        u32::from_le_bytes(out[4..8].try_into().unwrap()) as u64,
        h["cursor"].as_u64().unwrap()
    );
    assert_eq!(&out[12..], hexes(answer)[0].as_slice());
}

#[test]
fn the_push_with_peek_vector_answers_the_compact_move_vector() {
    use chunkring::layout::OP_SNAP_PUSH;
    let vectors = load("50.ops.json");
    let compact = vectors
        .iter()
        .find(|e| e["fields"]["compact_patch"] == true)
        .expect("a compact move patch vector");
    let push = vectors
        .iter()
        .find(|e| {
            e["name"]
                .as_str()
                .unwrap()
                .starts_with("snap.push request with peek")
        })
        .expect("a push-with-peek vector");
    let reg = chunkring::ops::Registry::with_all_ops();
    let mut state = chunkring::ops::State::default();
    let mut run = |op: u16, bytes: &[u8]| {
        let req = Request::parse(bytes).unwrap();
        (reg.get(op).unwrap().handler)(&mut state, &req).unwrap()
    };
    let after = compact["fields"]["after"].to_string();
    run(
        OP_SNAP_PUSH,
        &encode_request(br#"{"name":"ui"}"#, after.as_bytes()),
    );
    let out = run(OP_SNAP_PUSH, &hexes(push)[0]);
    assert_eq!(&out[..2], &[1, 2], "moved-status header, marshal patch");
    assert_eq!(&out[12..], hexes(compact)[0].as_slice());
}

#[test]
fn the_process_marshal_vector_is_the_workers_answer() {
    use chunkring::layout::OP_SNAP_PROCESS;
    let e = load("50.ops.json")
        .into_iter()
        .find(|e| e["fields"]["process_answer"] == true)
        .expect("a process answer vector");
    let f = &e["fields"];
    let items: Vec<Vec<u8>> = f["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().as_bytes().to_vec())
        .collect();
    let body = encode_list(&items);
    let bytes = encode_request(f["params"].as_str().unwrap().as_bytes(), &body);
    let req = Request::parse(&bytes).unwrap();
    let reg = chunkring::ops::Registry::with_all_ops();
    let out =
        (reg.get(OP_SNAP_PROCESS).unwrap().handler)(&mut chunkring::ops::State::default(), &req)
            .unwrap();
    assert_eq!(out, hexes(&e)[0]);
}

#[test]
fn checksum_frames() {
    let entries = load("60.checksums.json");
    for e in &entries {
        let (h, payload) = check_frame(e);
        assert!(h.has_crc(), "{}", e["name"]);
        let f = &e["fields"];
        let covered = if h.is_padding() {
            &[][..]
        } else {
            &payload[..]
        };
        let computed = frame_crc(&h.encode(), covered);
        let ok = f["crc_ok"].as_bool().unwrap();
        assert_eq!(
            computed == f["crc"].as_u64().unwrap() as u32,
            ok,
            "{}",
            e["name"]
        );
        if !ok {
            assert_eq!(u64::from(computed), f["computed_crc"].as_u64().unwrap());
        }
    }
    // The consumer over a real ring: good frames come out, a changed one is refused with
    // CHECKSUM and everything published is discarded (§6.5).
    let region = HeapBacking::region(&RegionConfig {
        ring_bytes: 4096,
        ..RegionConfig::default()
    })
    .unwrap();
    let mut producer = Producer::new(region.request_ring().unwrap());
    let mut consumer = Consumer::new(region.request_ring().unwrap());
    consumer.require_crc(true);
    let mut buf = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e["fields"]["flags"].as_u64().unwrap() & 1 == 0)
    {
        let bytes = &hexes(e)[0];
        let chunks = bytes.len().div_ceil(64) as u64;
        producer.push_raw(bytes, chunks).unwrap();
        producer.publish();
        let got = consumer.poll(&mut buf);
        if e["fields"]["crc_ok"].as_bool().unwrap() {
            let h = got.unwrap().expect("a frame");
            assert_eq!(
                &buf[..h.payload_len as usize],
                &bytes[32..bytes.len() - FRAME_CRC_BYTES]
            );
        } else {
            match got {
                Err(PollError::Malformed {
                    error: error @ FrameError::Checksum { .. },
                    resynced: true,
                    ..
                }) => assert_eq!(error.code(), ErrorCode::Checksum),
                other => panic!("{}: {other:?}", e["name"]),
            }
        }
    }
}
