//! The ops that move or read a history's cursor and answer in the cursor-response shape
//! (layout.md §9.3): `OP_SNAP_UNDO`, `OP_SNAP_REDO`, `OP_SNAP_JUMP`, `OP_SNAP_CURRENT`,
//! `OP_SNAP_GET`.
#![forbid(unsafe_code)]

use serde::Deserialize;

use crate::error::OpError;
use crate::ops::op::State;
use crate::ops::request::{encode_list, Request};
use crate::store::codec::Encoding;
use crate::store::error::StoreError;
use crate::store::history::{History, Move};
use crate::store::node::NodeId;
use crate::store::node_store::NodeStore;
use crate::store::patch;

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
    /// `OP_SNAP_UNDO`/`OP_SNAP_REDO`: answer the snapshot the next move the same way would
    /// make current (what a prefetching `OP_SNAP_GET` would), not the one now current.
    #[serde(default)]
    next: bool,
}

fn yes() -> bool {
    true
}

/// Bytes of the cursor-response header (layout.md §9.3).
pub const CURSOR_HEADER_BYTES: usize = 12;

/// The cursor-response header `status | encoding | reserved u16 | cursor u32 | len u32`,
/// in a buffer with room for `body` more bytes.
pub(super) fn header(h: &History, status: u8, enc: u8, body: usize) -> Vec<u8> {
    let pos = h.position();
    let mut out = Vec::with_capacity(CURSOR_HEADER_BYTES + body);
    out.extend_from_slice(&[status, enc, 0, 0]);
    out.extend_from_slice(&pos.cursor.map_or(u32::MAX, |c| c as u32).to_le_bytes());
    out.extend_from_slice(&(pos.len as u32).to_le_bytes());
    out
}

/// A status-1 cursor response carrying `bytes` in `enc`: a snapshot, or (`OP_SNAP_AHEAD`) the
/// marshal list of the patches ahead.
pub(super) fn with_body(h: &History, enc: Encoding, bytes: &[u8]) -> Vec<u8> {
    let mut out = header(h, 1, enc.code(), bytes.len());
    out.extend_from_slice(bytes);
    out
}

/// A status-1 cursor response carrying entry `i` in `want`, encoded straight after the
/// header (no copy of the snapshot).
fn snapshot_response(h: &History, i: usize, want: Option<Encoding>) -> Result<Vec<u8>, OpError> {
    let mut out = header(h, 1, 0, 0);
    let enc = h.encode_into(i, want, &mut out)?;
    out[1] = enc.code();
    Ok(out)
}

/// Builds a cursor response: the header, then the snapshot at the cursor.
fn cursor_response(h: &History, moved: bool, want: Option<Encoding>) -> Result<Vec<u8>, OpError> {
    cursor_response_with(h, moved, want, true)
}

/// As [`cursor_response`]; `with_snapshot` false leaves the snapshot out (`encoding` 0).
fn cursor_response_with(
    h: &History,
    moved: bool,
    want: Option<Encoding>,
    snapshot: bool,
) -> Result<Vec<u8>, OpError> {
    Ok(match (moved, h.position().cursor) {
        (true, Some(c)) if snapshot => snapshot_response(h, c, want)?,
        (true, Some(_)) => header(h, 1, 0, 0),
        _ => header(h, 0, 0, 0),
    })
}

/// `OP_SNAP_UNDO`: one step back.
pub fn op_snap_undo(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    let h = state.snapshots.history(&p.name)?;
    let moved = h.undo();
    if p.next {
        return at_offset(h, -1, p.encoding);
    }
    cursor_response_with(h, moved, p.encoding, p.snapshot)
}

/// `OP_SNAP_REDO`: one step forward.
pub fn op_snap_redo(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    let h = state.snapshots.history(&p.name)?;
    let moved = h.redo();
    if p.next {
        return at_offset(h, 1, p.encoding);
    }
    cursor_response_with(h, moved, p.encoding, p.snapshot)
}

fn required_index(p: &CursorParams) -> Result<u64, OpError> {
    p.index
        .ok_or_else(|| OpError::bad_params("params: missing field `index`"))
}

/// `OP_SNAP_JUMP`: the cursor to `index`.
pub fn op_snap_jump(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    let i = required_index(&p)?;
    let h = state.snapshots.history(&p.name)?;
    // Encode first so a failing encoding leaves the cursor where it was; the answer carries
    // these same bytes (the entry at the new cursor), so it is encoded once.
    let (enc, bytes) = h.encode(h.check_index(i)?, p.encoding)?;
    h.jump(i)?;
    Ok(with_body(h, enc, &bytes))
}

/// `OP_SNAP_CURRENT`: the snapshot at the cursor.
pub fn op_snap_current(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    let h = state.snapshots.history(&p.name)?;
    cursor_response(h, true, p.encoding)
}

/// `OP_SNAP_GET`: entry `index` (or `cursor + offset`) in the cursor-response shape; the
/// cursor does not move.
pub fn op_snap_get(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: CursorParams = req.params()?;
    if let (None, Some(offset)) = (p.index, p.offset) {
        return at_offset(state.snapshots.history(&p.name)?, offset, p.encoding);
    }
    let i = required_index(&p)?;
    let h = state.snapshots.history(&p.name)?;
    get_at(h, i, p.encoding)
}

/// Entry `i` in the cursor-response shape; the cursor does not move.
/// The entry at `cursor + offset` in the cursor-response shape, or a status-0 answer when
/// there is none (the cursor does not move).
fn at_offset(h: &History, offset: i64, want: Option<Encoding>) -> Result<Vec<u8>, OpError> {
    let pos = h.position();
    let target = pos
        .cursor
        .and_then(|c| (c as i64).checked_add(offset))
        .filter(|&t| t >= 0 && (t as usize) < pos.len);
    match target {
        Some(t) => get_at(h, t as u64, want),
        None => cursor_response(h, false, None),
    }
}

fn get_at(h: &History, i: u64, want: Option<Encoding>) -> Result<Vec<u8>, OpError> {
    snapshot_response(h, h.check_index(i)?, want)
}

#[derive(Deserialize)]
struct MoveParams {
    name: String,
    /// `"undo"`, `"redo"` or an index to jump to.
    to: serde_json::Value,
    /// Answer the patch without moving.
    #[serde(default)]
    peek: bool,
    /// False: move and answer the header only (a client that peeked the patch before).
    #[serde(default = "yes")]
    patch: bool,
    /// True: the patch as one marshal blob (`store::patch::marshal_patch`).
    #[serde(default)]
    compact: bool,
    /// True: move without a patch, then answer the patch of the next move the same way (the
    /// peek a run of undos or redos would send next), so a run costs one request per step.
    #[serde(default)]
    next: bool,
}

/// A move patch in its wire form: the list encoding of the JSON ops and one marshal blob per
/// value, or (`compact`) one marshal blob.
fn wire_patch(compact: bool) -> impl Fn(&NodeStore, NodeId, NodeId) -> Result<Vec<u8>, StoreError> {
    move |store, a, b| {
        if compact {
            return patch::marshal_patch(store, a, b);
        }
        let p = patch::patch(store, a, b)?;
        let mut items: Vec<&[u8]> = Vec::with_capacity(1 + p.values.len());
        items.push(&p.ops);
        items.extend(p.values.iter().map(Vec::as_slice));
        Ok(encode_list(&items))
    }
}

/// `OP_SNAP_MOVE`: undo, redo or jump; the cursor header (`encoding` 2: the values are
/// marshal) followed by the patch from the snapshot that was current to the one now current,
/// in the list encoding: the ops as JSON, then one marshal blob per `add`/`replace` (or, with
/// `compact`, one marshal blob). With `peek` the patch of the move without moving; with
/// `patch: false` the move without a patch; with `next` the move without a patch, followed by
/// the patch of the next move the same way (none when that one would not move).
pub fn op_snap_move(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: MoveParams = req.params()?;
    let to = match &p.to {
        serde_json::Value::String(s) if s == "undo" => Move::Undo,
        serde_json::Value::String(s) if s == "redo" => Move::Redo,
        serde_json::Value::Number(n) if n.as_u64().is_some() => Move::Jump(n.as_u64().unwrap_or(0)),
        other => {
            return Err(OpError::bad_params(format!(
                "to must be \"undo\", \"redo\" or an index >= 0, not {other}"
            )))
        }
    };
    let h = state.snapshots.history(&p.name)?;
    let (moved, patch) = match (p.peek, p.patch) {
        _ if p.next => {
            if p.peek || !matches!(to, Move::Undo | Move::Redo) {
                return Err(OpError::bad_params(
                    "next goes with to \"undo\" or \"redo\" and no peek",
                ));
            }
            let moved = h.move_to(to)?;
            let next = if moved {
                h.peek_with(to, wire_patch(p.compact))?
            } else {
                None
            };
            (moved, next)
        }
        (true, _) => return peek_response(h, to, p.compact),
        (false, true) => {
            let patch = h.move_with(to, wire_patch(p.compact))?;
            (patch.is_some(), patch)
        }
        (false, false) => (h.move_to(to)?, None),
    };
    Ok(move_response(h, moved, patch))
}

/// What an `OP_SNAP_MOVE` with `peek` to `to` answers: the patch of that move, made without
/// moving (also the answer of a push with `peek`, layout.md §9.3).
///
/// # Errors
/// What making the patch raises (a snapshot on either side that is opaque).
pub(super) fn peek_response(h: &History, to: Move, compact: bool) -> Result<Vec<u8>, OpError> {
    let patch = h.peek_with(to, wire_patch(compact))?;
    Ok(move_response(h, patch.is_some(), patch))
}

/// The cursor header (`encoding` 2 when a patch follows, else 0), then the patch.
fn move_response(h: &History, moved: bool, patch: Option<Vec<u8>>) -> Vec<u8> {
    let enc = if patch.is_some() {
        Encoding::Marshal.code()
    } else {
        0
    };
    let mut out = header(h, u8::from(moved), enc, patch.as_ref().map_or(0, Vec::len));
    if let Some(patch) = patch {
        out.extend_from_slice(&patch);
    }
    out
}
