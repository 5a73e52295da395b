//! Worker-side cost of the snapshot ops (layout.md §9.3), measured through the op registry
//! without a ring: decoding and interning a ~30 KB UI-snapshot-like document pushed as JSON
//! and as marshal into a full 100-entry history, encoding the current snapshot back (what
//! undo pays), diffing two neighbours, and `process` over a batch of 100 of them and over a
//! batch of 100 of the ~10 KB documents `snapshot_peers.py` processes (answered as marshal,
//! as `Snapshots.process` asks for it). These are the costs the worker adds on top of the
//! ring round trip that `benches/python/snapshot_peers.py` measures from the Python side.
use chunkring::layout::*;
use chunkring::ops::{encode_list, Registry, State};
mod common;
use common::{as_marshal, call, peer_doc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use std::hint::black_box;

fn ui_doc(variant: usize) -> Value {
    let entries: Vec<Value> = (0..120)
        .map(|i| {
            json!({
                "role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": format!("message {i} {}", "lorem ipsum dolor sit amet ".repeat(7)),
                "ts": 1_700_000_000 + i,
                "v": if i == variant % 120 { variant } else { 0 },
            })
        })
        .collect();
    json!({
        "discussion": entries,
        "files": (0..40).map(|i| json!({"path": format!("src/file_{i}.rs"), "open": i % 3 == 0})).collect::<Vec<_>>(),
        "context_files": ["README.md", "layout.md"], "screenshots": [],
        "title": "session", "model": "m", "temperature": 0.7, "top_p": 1.0, "max_tokens": 4096,
        "system": "be brief", "cursor": 12, "scroll": 0.5, "dirty": true,
    })
}

fn bench(c: &mut Criterion) {
    let reg = Registry::with_all_ops();
    let mut st = State::default();
    let docs: Vec<Vec<u8>> = (0..200)
        .map(|v| serde_json::to_vec(&ui_doc(v)).unwrap())
        .collect();
    // marshal bytes of the same documents, produced by the worker's own encoder.
    let marshals: Vec<Vec<u8>> = docs.iter().map(|d| as_marshal(&reg, &mut st, d)).collect();
    for (d, m) in docs.iter().zip(&marshals).take(100) {
        call(&reg, &mut st, OP_SNAP_PUSH, br#"{"name":"j"}"#, d);
        call(
            &reg,
            &mut st,
            OP_SNAP_PUSH,
            br#"{"name":"m","encoding":"marshal"}"#,
            m,
        );
    }
    let mut g = c.benchmark_group("snapshots");
    g.throughput(Throughput::Bytes(docs[0].len() as u64));
    let mut i = 0;
    g.bench_function("push-json-30k-full-history", |b| {
        b.iter(|| {
            i = (i + 1) % docs.len();
            call(&reg, &mut st, OP_SNAP_PUSH, br#"{"name":"j"}"#, &docs[i])
        })
    });
    g.bench_function("push-marshal-30k-full-history", |b| {
        b.iter(|| {
            i = (i + 1) % marshals.len();
            call(
                &reg,
                &mut st,
                OP_SNAP_PUSH,
                br#"{"name":"m","encoding":"marshal"}"#,
                &marshals[i],
            )
        })
    });
    g.bench_function("current-as-marshal", |b| {
        b.iter(|| {
            black_box(call(
                &reg,
                &mut st,
                OP_SNAP_CURRENT,
                br#"{"name":"m"}"#,
                b"",
            ))
        })
    });
    g.bench_function("current-as-json", |b| {
        b.iter(|| {
            black_box(call(
                &reg,
                &mut st,
                OP_SNAP_CURRENT,
                br#"{"name":"m","encoding":"json"}"#,
                b"",
            ))
        })
    });
    g.bench_function("diff-neighbours", |b| {
        b.iter(|| {
            black_box(call(
                &reg,
                &mut st,
                OP_SNAP_DIFF,
                br#"{"name":"m","a":98,"b":99}"#,
                b"",
            ))
        })
    });
    // 39 entries: `entries_for(10)` of snapshot_peers.py, its 10 KB documents.
    let peers: Vec<Vec<u8>> = (0..100)
        .map(|v| {
            as_marshal(
                &reg,
                &mut st,
                &serde_json::to_vec(&peer_doc(39, v)).unwrap(),
            )
        })
        .collect();
    let batches: [(&str, &[u8], Vec<u8>); 2] = [
        (
            "process-100-marshal",
            br#"{"encoding":"marshal"}"#,
            encode_list(&marshals[..100]),
        ),
        (
            "process-100-marshal-10k",
            br#"{"encoding":"marshal","answer":"marshal"}"#,
            encode_list(&peers),
        ),
    ];
    for (name, params, batch) in &batches {
        g.throughput(Throughput::Bytes(batch.len() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| black_box(call(&reg, &mut st, OP_SNAP_PROCESS, params, batch)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
