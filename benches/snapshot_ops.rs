//! The worker's cost per snapshot op at the sizes `benches/python/snapshot_peers.py` uses
//! (UI snapshots of about 10 and 50 KB as marshal, 100-entry histories), through the op
//! registry without a ring: a full push, a one-path `push_fields`, an undo answering the next
//! snapshot (`next`, what `undo()` asks for) and a move answering the next compact patch
//! (what `undo(into=)` asks for), and a refill of 16 snapshots or 16 patches ahead (what a run of
//! fresh `undo()`s or of `undo(into=)`s asks for). `snapshot_peers.py` reports the worker's CPU per op; this
//! splits out the op itself from the waiting around it.
use chunkring::layout::*;
use chunkring::ops::{Registry, State};
mod common;
use common::{as_marshal, call, peer_doc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

/// Writes `other` (larger than the last-level cache), so the next op finds its data in
/// memory only.
fn evict(other: &mut [u8]) {
    for (i, b) in other.iter_mut().step_by(64).enumerate() {
        *b = i as u8;
    }
    black_box(other);
}

fn bench(c: &mut Criterion) {
    let reg = Registry::with_all_ops();
    for (kb, n) in [(10, 39), (50, 234)] {
        let mut st = State::default();
        // marshal bytes of the documents, from the worker's own encoder.
        let marshals: Vec<Vec<u8>> = (0..200)
            .map(|v| as_marshal(&reg, &mut st, &serde_json::to_vec(&peer_doc(n, v)).unwrap()))
            .collect();
        let push = br#"{"name":"h","encoding":"marshal"}"#;
        for m in &marshals[..100] {
            call(&reg, &mut st, OP_SNAP_PUSH, push, m);
        }
        let mut g = c.benchmark_group(format!("snapshot-ops-{kb}k"));
        g.throughput(Throughput::Bytes(marshals[0].len() as u64));
        let mut i = 0;
        g.bench_function("push-marshal", |b| {
            b.iter(|| {
                i = (i + 1) % marshals.len();
                call(&reg, &mut st, OP_SNAP_PUSH, push, &marshals[i])
            })
        });
        // One entry's text, as `push(state, changed=[path])` sends it: a list of one value.
        let fields = br#"{"name":"h","encoding":"marshal","paths":[["discussion",3,"content"]]}"#;
        let body = b"[\x01\x00\x00\x00\x7a\x0bedited text";
        g.bench_function("push-fields-one-path", |b| {
            b.iter(|| call(&reg, &mut st, OP_SNAP_PUSH_FIELDS, fields, body))
        });
        // Refill with distinct snapshots, then undo/redo runs answering the next snapshot or
        // the next compact patch (a move at either end answers nothing: turn around there).
        for m in &marshals[100..] {
            call(&reg, &mut st, OP_SNAP_PUSH, push, m);
        }
        let steps = |undo: &'static [u8], redo: &'static [u8], ops: (u16, u16)| {
            let mut back = true;
            let mut at = 99usize;
            move |reg: &Registry, st: &mut State| {
                if at == 1 {
                    back = false;
                } else if at == 98 {
                    back = true;
                }
                at = if back { at - 1 } else { at + 1 };
                let (op, params) = if back { (ops.0, undo) } else { (ops.1, redo) };
                call(reg, st, op, params, b"")
            }
        };
        let mut step = steps(
            br#"{"name":"h","snapshot":false,"next":true}"#,
            br#"{"name":"h","snapshot":false,"next":true}"#,
            (OP_SNAP_UNDO, OP_SNAP_REDO),
        );
        g.bench_function("undo-next-snapshot", |b| {
            b.iter(|| black_box(step(&reg, &mut st)))
        });
        // As a worker at 60 Hz runs it: the caches filled with other work since its last op.
        let mut other = vec![0u8; 32 << 20];
        g.bench_function("undo-next-snapshot-cold", |b| {
            b.iter_batched(
                || evict(&mut other),
                |_| black_box(step(&reg, &mut st)),
                criterion::BatchSize::PerIteration,
            )
        });
        let mut step = steps(
            br#"{"name":"h","to":"undo","compact":true,"next":true}"#,
            br#"{"name":"h","to":"redo","compact":true,"next":true}"#,
            (OP_SNAP_MOVE, OP_SNAP_MOVE),
        );
        g.bench_function("move-next-compact-patch", |b| {
            b.iter(|| black_box(step(&reg, &mut st)))
        });
        // What a fresh run's refill asks: the next 16 snapshots back from the end, cut at
        // AHEAD_MAX_BYTES (5 at 50 KB), without moving the cursor.
        call(
            &reg,
            &mut st,
            OP_SNAP_JUMP,
            br#"{"name":"h","index":99}"#,
            b"",
        );
        let ahead = br#"{"name":"h","to":"undo","count":16,"snapshots":true}"#;
        g.bench_function("ahead-16-snapshots", |b| {
            b.iter(|| black_box(call(&reg, &mut st, OP_SNAP_AHEAD, ahead, b"")))
        });
        // What a run of `undo(into=)`s asks: the next 16 compact patches.
        let ahead = br#"{"name":"h","to":"undo","count":16}"#;
        g.bench_function("ahead-16-patches", |b| {
            b.iter(|| black_box(call(&reg, &mut st, OP_SNAP_AHEAD, ahead, b"")))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
