//! The history ops that are not cursor moves (layout.md §9.3): `OP_SNAP_PUSH`,
//! `OP_SNAP_PUSH_MANY`, `OP_SNAP_LIST`, `OP_SNAP_DIFF`, `OP_SNAP_STATS`, `OP_SNAP_DROP`.
#![forbid(unsafe_code)]

use serde::Deserialize;
use serde_json::json;

use super::answer::{digest_hex, to_json};
use super::cursor_ops::peek_response;
use super::params::check_name;
use crate::error::OpError;
use crate::layout::PUSH_PEEK_MAX_BYTES;
use crate::ops::op::State;
use crate::ops::request::{decode_list, Request};
use crate::store::codec::Encoding;
use crate::store::edit::Step;
use crate::store::history::{self, check_capacity, History, Move};
use crate::store::Store;

#[derive(Deserialize)]
struct PushParams {
    name: String,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    labels: Option<Vec<Option<String>>>,
    #[serde(default)]
    capacity: Option<u64>,
    #[serde(default)]
    time: Option<f64>,
    /// Answer the patch of an undo after the push instead of the position ([`push_answer`]).
    #[serde(default)]
    peek: bool,
}

/// Finds or creates the history a push names, applying `capacity` when given.
fn history_for_push<'s>(
    store: &'s mut Store,
    name: &str,
    capacity: Option<u64>,
) -> Result<&'s mut History, OpError> {
    check_name(name)?;
    let cap = capacity.map(check_capacity).transpose()?;
    Ok(store.history_or_new(name, cap))
}

fn position_json(h: &History) -> serde_json::Value {
    let p = h.position();
    json!({"index": p.cursor, "len": p.len})
}

/// A push's answer: the position as JSON or, with `peek`, what an `OP_SNAP_MOVE`
/// `{"to": "undo", "peek": true, "compact": true}` sent right after it would answer (the
/// patch back to the snapshot before, for a client that steps back into its live state
/// without a round trip first). The push has happened either way: when that patch cannot be
/// made (an opaque snapshot on either side) or would take more than [`PUSH_PEEK_MAX_BYTES`],
/// the answer is the JSON, never an error.
fn push_answer(h: &History, peek: bool) -> Result<Vec<u8>, OpError> {
    if peek {
        match peek_response(h, Move::Undo, true) {
            Ok(answer) if answer.len() <= PUSH_PEEK_MAX_BYTES => return Ok(answer),
            _ => {}
        }
    }
    to_json(position_json(h))
}

/// The push's `time` param, or the worker's clock.
fn push_time(time: Option<f64>) -> Result<f64, OpError> {
    match time {
        Some(t) if t.is_finite() => Ok(t),
        Some(t) => Err(OpError::bad_params(format!(
            "time {t} is not a finite number"
        ))),
        None => Ok(history::now()),
    }
}

/// `OP_SNAP_PUSH`: decode the body and push it.
pub fn op_snap_push(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: PushParams = req.params()?;
    let time = push_time(p.time)?;
    let h = history_for_push(&mut state.snapshots, &p.name, p.capacity)?;
    h.push(p.encoding, req.body, p.label, time)?;
    push_answer(h, p.peek)
}

/// `OP_SNAP_PUSH_MANY`: decode every snapshot of a list body, then push them all (or none).
pub fn op_snap_push_many(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: PushParams = req.params()?;
    let items = decode_list(req.body)?;
    if let Some(labels) = &p.labels {
        if labels.len() != items.len() {
            return Err(OpError::bad_params(format!(
                "{} labels for {} snapshots",
                labels.len(),
                items.len()
            )));
        }
    }
    let h = history_for_push(&mut state.snapshots, &p.name, p.capacity)?;
    h.push_many(p.encoding, &items, p.labels.as_deref(), history::now())?;
    push_answer(h, p.peek)
}

#[derive(Deserialize)]
struct PushFieldsParams {
    name: String,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    label: Option<String>,
    paths: Vec<Vec<Step>>,
    #[serde(default)]
    remove: Vec<Vec<Step>>,
    #[serde(default)]
    time: Option<f64>,
    /// As for [`PushParams`].
    #[serde(default)]
    peek: bool,
}

/// `OP_SNAP_PUSH_FIELDS`: push the current snapshot with the body's values set at `paths`
/// and the `remove` paths removed.
pub fn op_snap_push_fields(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: PushFieldsParams = req.params()?;
    let time = push_time(p.time)?;
    let h = history_for_push(&mut state.snapshots, &p.name, None)?;
    h.push_fields(p.encoding, req.body, &p.paths, &p.remove, p.label, time)?;
    push_answer(h, p.peek)
}

#[derive(Deserialize)]
struct NameParams {
    name: String,
}

/// `OP_SNAP_LIST`: index, label, time, size, encoding and digest of every entry.
pub fn op_snap_list(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: NameParams = req.params()?;
    let h = state.snapshots.history(&p.name)?;
    let entries: Vec<serde_json::Value> = h
        .entries()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "index": i,
                "label": e.label,
                "time": e.time,
                "size": e.size,
                "encoding": e.encoding.name(),
                "digest": digest_hex(h.store.hash(e.root)),
            })
        })
        .collect();
    let pos = h.position();
    to_json(json!({
        "cursor": pos.cursor,
        "capacity": h.capacity(),
        "entries": entries,
    }))
}

#[derive(Deserialize)]
struct DiffParams {
    name: String,
    a: u64,
    b: u64,
}

/// `OP_SNAP_DIFF`: the RFC 6902 patch from entry `a` to entry `b`.
pub fn op_snap_diff(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: DiffParams = req.params()?;
    let h = state.snapshots.history(&p.name)?;
    Ok(h.diff(p.a, p.b)?)
}

#[derive(Deserialize)]
struct StatsParams {
    #[serde(default)]
    name: Option<String>,
}

/// The stats object of one history (layout.md §9.3 `OP_SNAP_STATS`).
pub fn history_stats(name: &str, h: &History) -> serde_json::Value {
    let (s, stored) = h.stored_bytes();
    let pos = h.position();
    let logical = h.logical_bytes();
    json!({
        "name": name,
        "snapshots": pos.len,
        "capacity": h.capacity(),
        "cursor": pos.cursor,
        "can_undo": pos.cursor.is_some_and(|c| c > 0),
        "can_redo": pos.cursor.is_some_and(|c| c + 1 < pos.len),
        "logical_bytes": logical,
        "stored_bytes": stored,
        "sharing_ratio": if stored == 0 { 0.0 } else { logical as f64 / stored as f64 },
        "nodes": s.nodes,
        "free_slots": s.free_slots,
        "arena_bytes": s.arena_bytes,
        "heap_bytes": s.heap_bytes,
        "index_bytes": s.index_bytes,
        "entry_bytes": h.entry_bytes(),
    })
}

/// `OP_SNAP_STATS`: one history's stats, or totals over every history and log.
pub fn op_snap_stats(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: StatsParams = req.params()?;
    let store = &mut state.snapshots;
    if let Some(name) = p.name {
        let h = store.history(&name)?;
        return to_json(history_stats(&name, h));
    }
    let (mut snaps, mut logical, mut stored) = (0, 0usize, 0);
    for h in store.histories.values() {
        snaps += h.len();
        // (each history's sum fits a usize, checked at load; their total may not)
        logical = logical.saturating_add(h.logical_bytes());
        stored += h.stored_bytes().1;
    }
    let (mut records, mut log_bytes) = (0, 0);
    for l in store.logs.values() {
        records += l.len();
        log_bytes += l.stored_bytes();
    }
    to_json(json!({
        "histories": store.histories.len(),
        "logs": store.logs.len(),
        "snapshots": snaps,
        "logical_bytes": logical,
        "stored_bytes": stored,
        "log_records": records,
        "log_stored_bytes": log_bytes,
    }))
}

/// `OP_SNAP_DROP`: forget a history.
pub fn op_snap_drop(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: NameParams = req.params()?;
    let h = state.snapshots.remove_history(&p.name)?;
    to_json(json!({"dropped": p.name, "snapshots": h.len()}))
}
