//! Snapshot histories and logs on the chunked arena (layout.md §9.3, §9.4): the worker-wide
//! [`Store`] of named histories and logs, and the op handlers that act on it.
//!
//! Module map: [`xar`] the chunked arena; [`value`] the content-addressed, refcounted node
//! store on it; [`json`], [`marshal`] and [`encoding`] the wire encodings; [`history`] the
//! undo/redo semantics; [`diff`] RFC 6902 patches; [`batch`] `process`; [`persist`] save/load;
//! [`log`] append-only logs.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;

use super::{decode_list, Registry, Request, State};
use crate::error::{ErrorCode, OpError};
use crate::layout::*;

pub mod batch;
pub mod bigint;
pub mod diff;
pub mod encoding;
pub mod history;
pub mod json;
pub mod log;
pub mod marshal;
pub mod persist;
pub mod value;
pub mod xar;

use encoding::Encoding;
use history::{check_capacity, History, DEFAULT_CAPACITY};

/// All named histories and logs the worker keeps.
#[derive(Debug, Default)]
pub struct Store {
    /// Histories by name.
    pub histories: HashMap<String, History>,
    /// Logs by name.
    pub logs: HashMap<String, log::Log>,
}

impl Store {
    /// The history called `name`.
    ///
    /// # Errors
    /// `NotFound` naming it.
    pub fn history(&mut self, name: &str) -> Result<&mut History, OpError> {
        self.histories
            .get_mut(name)
            .ok_or_else(|| OpError::new(ErrorCode::NotFound, format!("unknown history {name:?}")))
    }
}

/// Registers the snapshot and log ops.
pub fn register(r: &mut Registry) {
    r.add(OP_SNAP_PUSH, "snap.push", push);
    r.add(OP_SNAP_PUSH_MANY, "snap.push_many", push_many);
    r.add(OP_SNAP_UNDO, "snap.undo", undo);
    r.add(OP_SNAP_REDO, "snap.redo", redo);
    r.add(OP_SNAP_JUMP, "snap.jump", jump);
    r.add(OP_SNAP_CURRENT, "snap.current", current);
    r.add(OP_SNAP_GET, "snap.get", get);
    r.add(OP_SNAP_LIST, "snap.list", list);
    r.add(OP_SNAP_DIFF, "snap.diff", diff_op);
    r.add(OP_SNAP_STATS, "snap.stats", stats);
    r.add(OP_SNAP_PROCESS, "snap.process", batch::process);
    r.add(OP_SNAP_SAVE, "snap.save", persist::save_history);
    r.add(OP_SNAP_LOAD, "snap.load", persist::load_history);
    r.add(OP_SNAP_DROP, "snap.drop", drop_history);
    log::register(r);
}

/// Names are 1..=256 bytes of UTF-8 (they are JSON strings already).
///
/// # Errors
/// `BadParams` for an empty or longer name.
pub fn check_name(name: &str) -> Result<(), OpError> {
    if name.is_empty() || name.len() > 256 {
        return Err(OpError::bad_params(format!(
            "name must be 1..=256 bytes, got {}",
            name.len()
        )));
    }
    Ok(())
}

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
}

/// Finds or creates the history a push names, applying `capacity` when given.
fn history_for_push<'s>(
    store: &'s mut Store,
    name: &str,
    capacity: Option<u64>,
) -> Result<&'s mut History, OpError> {
    check_name(name)?;
    let cap = capacity.map(check_capacity).transpose()?;
    let h = store
        .histories
        .entry(name.to_string())
        .or_insert_with(|| History::new(cap.unwrap_or(DEFAULT_CAPACITY)));
    if let Some(c) = cap {
        h.set_capacity(c);
    }
    Ok(h)
}

fn position_json(h: &History) -> serde_json::Value {
    let p = h.position();
    json!({"index": p.cursor, "len": p.len})
}

fn to_json(v: serde_json::Value) -> Result<Vec<u8>, OpError> {
    serde_json::to_vec(&v).map_err(|e| OpError::new(ErrorCode::Internal, e.to_string()))
}

/// `OP_SNAP_PUSH`: decode the body and push it.
fn push(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: PushParams = req.params()?;
    let time = match p.time {
        Some(t) if t.is_finite() => t,
        Some(t) => {
            return Err(OpError::bad_params(format!(
                "time {t} is not a finite number"
            )))
        }
        None => history::now(),
    };
    let h = history_for_push(&mut state.snapshots, &p.name, p.capacity)?;
    h.push(p.encoding, req.body, p.label, time)?;
    to_json(position_json(h))
}

/// `OP_SNAP_PUSH_MANY`: decode every snapshot of a list body, then push them all (or none).
fn push_many(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
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
    let mut roots = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match encoding::decode(
            &mut h.store,
            p.encoding,
            item,
            p.encoding != Encoding::Bytes,
        ) {
            Ok(root) => roots.push(root),
            Err(e) => {
                for r in roots {
                    h.store.decref(r);
                }
                return Err(OpError::new(e.code, format!("snapshot {i}: {}", e.message)));
            }
        }
    }
    let time = history::now();
    for (i, (root, item)) in roots.into_iter().zip(&items).enumerate() {
        let label = p.labels.as_ref().and_then(|l| l.get(i).cloned().flatten());
        h.push_root(history::Entry {
            root,
            encoding: p.encoding,
            label,
            time,
            size: item.len(),
        });
    }
    to_json(position_json(h))
}

#[derive(Deserialize)]
struct CursorParams {
    name: String,
    #[serde(default)]
    encoding: Option<Encoding>,
    #[serde(default)]
    index: Option<u64>,
    /// `OP_SNAP_GET` only: the entry at `cursor + offset` (when `index` is absent); out of
    /// range is a status-0 answer, not an error, so a client can prefetch speculatively.
    #[serde(default)]
    offset: Option<i64>,
    /// `OP_SNAP_UNDO`/`OP_SNAP_REDO`: false answers the cursor header without the snapshot
    /// (for a client that already holds it, e.g. from a prefetching `OP_SNAP_GET`).
    #[serde(default = "yes")]
    snapshot: bool,
}

fn yes() -> bool {
    true
}

/// Bytes of the cursor-response header (layout.md §9.3).
pub const CURSOR_HEADER_BYTES: usize = 12;

/// Builds a cursor response: `status | encoding | reserved u16 | cursor u32 | len u32 | snapshot`.
fn cursor_response(h: &History, moved: bool, want: Option<Encoding>) -> Result<Vec<u8>, OpError> {
    cursor_response_with(h, moved, want, true)
}

/// As [`cursor_response`]; `with_snapshot` false leaves the snapshot out (`encoding` 0).
fn cursor_response_with(
    h: &History,
    moved: bool,
    want: Option<Encoding>,
    with_snapshot: bool,
) -> Result<Vec<u8>, OpError> {
    let pos = h.position();
    let (status, enc, body) = match (moved, pos.cursor) {
        (true, Some(c)) if with_snapshot => {
            let (enc, bytes) = h.encode(c, want)?;
            (1u8, enc.code(), bytes)
        }
        (true, Some(_)) => (1u8, 0u8, Vec::new()),
        _ => (0u8, 0u8, Vec::new()),
    };
    let mut out = Vec::with_capacity(CURSOR_HEADER_BYTES + body.len());
    out.push(status);
    out.push(enc);
    out.extend_from_slice(&[0, 0]);
    let cursor = pos.cursor.map_or(u32::MAX, |c| c as u32);
    out.extend_from_slice(&cursor.to_le_bytes());
    out.extend_from_slice(&(pos.len as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn undo(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    let h = state.snapshots.history(&p.name)?;
    let moved = h.undo();
    cursor_response_with(h, moved, p.encoding, p.snapshot)
}

fn redo(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    let h = state.snapshots.history(&p.name)?;
    let moved = h.redo();
    cursor_response_with(h, moved, p.encoding, p.snapshot)
}

fn required_index(p: &CursorParams) -> Result<u64, OpError> {
    p.index
        .ok_or_else(|| OpError::bad_params("params: missing field `index`"))
}

fn jump(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    let i = required_index(&p)?;
    let h = state.snapshots.history(&p.name)?;
    // Encode first so a failing encoding leaves the cursor where it was.
    let idx = h.check_index(i)?;
    h.encode(idx, p.encoding)?;
    h.jump(i)?;
    cursor_response(h, true, p.encoding)
}

fn current(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    let h = state.snapshots.history(&p.name)?;
    cursor_response(h, true, p.encoding)
}

/// `OP_SNAP_GET`: entry `index` in the cursor-response shape; the cursor does not move.
fn get(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    if let (None, Some(offset)) = (p.index, p.offset) {
        let h = state.snapshots.history(&p.name)?;
        let pos = h.position();
        let target = pos
            .cursor
            .and_then(|c| (c as i64).checked_add(offset))
            .filter(|&t| t >= 0 && (t as usize) < pos.len);
        return match target {
            Some(t) => get_at(h, t as u64, p.encoding),
            None => cursor_response(h, false, None),
        };
    }
    let i = required_index(&p)?;
    let h = state.snapshots.history(&p.name)?;
    get_at(h, i, p.encoding)
}

/// Entry `i` in the cursor-response shape; the cursor does not move.
fn get_at(h: &History, i: u64, want: Option<Encoding>) -> Result<Vec<u8>, OpError> {
    let idx = h.check_index(i)?;
    let (enc, bytes) = h.encode(idx, want)?;
    let pos = h.position();
    let mut out = Vec::with_capacity(CURSOR_HEADER_BYTES + bytes.len());
    out.extend_from_slice(&[1, enc.code(), 0, 0]);
    out.extend_from_slice(&pos.cursor.map_or(u32::MAX, |c| c as u32).to_le_bytes());
    out.extend_from_slice(&(pos.len as u32).to_le_bytes());
    out.extend_from_slice(&bytes);
    Ok(out)
}

#[derive(Deserialize)]
struct NameParams {
    name: String,
}

/// The 16-hex-digit digest of a stored value (its structural hash).
pub fn digest_hex(hash: u64) -> String {
    format!("{hash:016x}")
}

fn list(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
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

fn diff_op(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: DiffParams = req.params()?;
    let h = state.snapshots.history(&p.name)?;
    let mut roots = [0; 2];
    for (slot, i) in roots.iter_mut().zip([p.a, p.b]) {
        let idx = h.check_index(i)?;
        let e = h
            .entry(idx)
            .ok_or_else(|| OpError::new(ErrorCode::Internal, "entry"))?;
        if e.encoding == Encoding::Bytes {
            return Err(OpError::bad_params(format!(
                "snapshot {i} was pushed as opaque bytes; diff needs json or marshal snapshots"
            )));
        }
        *slot = e.root;
    }
    diff::diff(&h.store, roots[0], roots[1])
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

fn stats(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: StatsParams = req.params()?;
    let store = &mut state.snapshots;
    if let Some(name) = p.name {
        let h = store.history(&name)?;
        return to_json(history_stats(&name, h));
    }
    let (mut snaps, mut logical, mut stored) = (0, 0, 0);
    for h in store.histories.values() {
        snaps += h.len();
        logical += h.logical_bytes();
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

fn drop_history(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: NameParams = req.params()?;
    match state.snapshots.histories.remove(&p.name) {
        Some(h) => to_json(json!({"dropped": p.name, "snapshots": h.len()})),
        None => Err(OpError::new(
            ErrorCode::NotFound,
            format!("unknown history {:?}", p.name),
        )),
    }
}
