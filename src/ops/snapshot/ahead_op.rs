//! `OP_SNAP_AHEAD` (layout.md §9.3 "Steps ahead"): a client stepping its live state through a
//! history sends the steps it took since it last told the worker (`by`), and asks for the
//! patches of the next `count` steps the way it goes, all in one request: a run of undos or
//! redos then costs one request per `count` steps, not one per step. With `snapshots` it
//! answers the snapshots those steps make current instead (for a client returning fresh
//! snapshots).
#![forbid(unsafe_code)]

use serde::Deserialize;

use super::cursor_ops::{header, with_body};
use crate::error::OpError;
use crate::layout::{AHEAD_MAX_BYTES, AHEAD_MAX_STEPS};
use crate::ops::op::State;
use crate::ops::request::Request;
use crate::store::codec::Encoding;
use crate::store::history::{History, Move};

#[derive(Deserialize)]
struct AheadParams {
    name: String,
    /// Steps to move the cursor first: back (undos) when negative, forward when positive.
    #[serde(default)]
    by: i64,
    /// `"undo"` or `"redo"`: the way the patches go (required when `count` > 0).
    #[serde(default)]
    to: Option<String>,
    /// How many steps' patches to answer, 0..=`AHEAD_MAX_STEPS`.
    #[serde(default)]
    count: u64,
    /// True: answer the snapshots the steps make current, not the patches between them.
    #[serde(default)]
    snapshots: bool,
    /// Steps (after the move) whose items the client holds already: the answer starts after
    /// them.
    #[serde(default)]
    skip: u64,
}

/// `OP_SNAP_AHEAD`: moves the cursor `by` steps (all or nothing), then answers the cursor
/// header (`status` 1 and `encoding` 2 when patches follow, else 0 and 0) and one marshal list
/// of the compact patches of the `count` steps the way `to` goes after the first `skip`, as successive
/// `OP_SNAP_MOVE` `peek`s would answer them: fewer where the history ends, where a snapshot on
/// the way is opaque, or past `AHEAD_MAX_BYTES`. With `snapshots`, after the header (`encoding`
/// 0) the list encoding of the snapshots instead, each in the cursor-response shape.
pub fn op_snap_ahead(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: AheadParams = req.params()?;
    let to = match p.to.as_deref() {
        Some("undo") => Some(Move::Undo),
        Some("redo") => Some(Move::Redo),
        None if p.count == 0 => None,
        other => {
            return Err(OpError::bad_params(format!(
                "to must be \"undo\" or \"redo\" (required with a count above 0), not {other:?}"
            )))
        }
    };
    if p.count > AHEAD_MAX_STEPS {
        return Err(OpError::bad_params(format!(
            "count must be 0..={AHEAD_MAX_STEPS}, not {}",
            p.count
        )));
    }
    let h = state.snapshots.history(&p.name)?;
    h.move_by(p.by)?;
    let skip = usize::try_from(p.skip).unwrap_or(usize::MAX);
    Ok(match to {
        Some(to) if p.snapshots => snapshots_ahead(h, to, skip, p.count as usize)?,
        Some(to) => match h.patches_ahead(to, skip, p.count as usize, AHEAD_MAX_BYTES)? {
            Some(blob) => with_body(h, Encoding::Marshal, &blob),
            None => header(h, 0, 0, 0),
        },
        None => header(h, 0, 0, 0),
    })
}

/// The cursor header then the list encoding of the snapshots the `count` steps the way `to`
/// goes after the first `skip` make current, each as `OP_SNAP_GET` `index` answers it (the
/// cursor-response shape, with that index in the `cursor` field; the entry's own encoding):
/// fewer where the history ends or past `AHEAD_MAX_BYTES` (the first is always in); the header
/// alone (`status` 0) when there is no such step.
///
/// Each snapshot is encoded straight into the answer, after room for the list's lengths: the
/// lengths of steps cut by the byte bound are taken out again, so the snapshots are written
/// once and moved at most once.
fn snapshots_ahead(h: &History, to: Move, skip: usize, count: usize) -> Result<Vec<u8>, OpError> {
    let steps: Vec<usize> = h.path_ahead(to, skip).skip(1).take(count).collect();
    if steps.is_empty() {
        return Ok(header(h, 0, 0, 0));
    }
    let len = h.len() as u32;
    let mut out = header(h, 1, 0, 4 + 4 * steps.len());
    let lengths_at = out.len() + 4;
    let items_at = lengths_at + 4 * steps.len();
    out.resize(items_at, 0);
    let mut kept = 0;
    for &next in &steps {
        let item_at = out.len();
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(&(next as u32).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out[item_at + 1] = h.encode_into(next, None, &mut out)?.code();
        // The bound counts each kept item's length word and bytes, as the answer holds them.
        if kept > 0 && 4 * (kept + 1) + out.len() - items_at > AHEAD_MAX_BYTES {
            out.truncate(item_at);
            break;
        }
        let item_len = out.len() - item_at;
        out[lengths_at + 4 * kept..][..4].copy_from_slice(&(item_len as u32).to_le_bytes());
        if kept == 0 {
            // Room for the rest at the first one's size, so the answer is not grown (and
            // copied) step by step.
            out.reserve((item_len * (steps.len() - 1)).min(AHEAD_MAX_BYTES));
        }
        kept += 1;
    }
    out[lengths_at - 4..lengths_at].copy_from_slice(&(kept as u32).to_le_bytes());
    out.drain(lengths_at + 4 * kept..items_at);
    Ok(out)
}
