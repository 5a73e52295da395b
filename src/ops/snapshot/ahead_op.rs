//! `OP_SNAP_AHEAD` (layout.md §9.3 "Steps ahead"): a client stepping its live state through a
//! history sends the steps it took since it last told the worker (`by`), and asks for the
//! patches of the next `count` steps the way it goes, all in one request: a run of undos or
//! redos then costs one request per `count` steps, not one per step. With `snapshots` it
//! answers the snapshots those steps make current instead (for a client returning fresh
//! snapshots).
#![forbid(unsafe_code)]

use serde::Deserialize;

use super::cursor_ops::header;
use crate::error::OpError;
use crate::layout::{AHEAD_MAX_BYTES, AHEAD_MAX_STEPS};
use crate::ops::op::State;
use crate::ops::request::{encode_list, Request};
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
    let (blob, enc) = match to {
        Some(to) if p.snapshots => (snapshots_ahead(h, to, skip, p.count as usize)?, 0),
        Some(to) => (
            h.patches_ahead(to, skip, p.count as usize, AHEAD_MAX_BYTES)?,
            Encoding::Marshal.code(),
        ),
        None => (None, 0),
    };
    Ok(match blob {
        Some(blob) => {
            let mut out = header(h, 1, enc, blob.len());
            out.extend_from_slice(&blob);
            out
        }
        None => header(h, 0, 0, 0),
    })
}

/// The list encoding of the snapshots the `count` steps the way `to` goes after the first
/// `skip` make current, each as `OP_SNAP_GET` `index` answers it (the cursor-response shape,
/// with that index in the `cursor` field; the entry's own encoding): fewer where the history
/// ends or past `AHEAD_MAX_BYTES` (the first is always in); None when there is no such step.
fn snapshots_ahead(
    h: &History,
    to: Move,
    skip: usize,
    count: usize,
) -> Result<Option<Vec<u8>>, OpError> {
    let len = h.len();
    let mut items: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for next in h.path_ahead(to, skip).skip(1).take(count) {
        let mut item = Vec::new();
        item.extend_from_slice(&[1, 0, 0, 0]);
        item.extend_from_slice(&(next as u32).to_le_bytes());
        item.extend_from_slice(&(len as u32).to_le_bytes());
        item[1] = h.encode_into(next, None, &mut item)?.code();
        bytes += 4 + item.len();
        if !items.is_empty() && bytes > AHEAD_MAX_BYTES {
            break;
        }
        items.push(item);
    }
    Ok((!items.is_empty()).then(|| encode_list(&items)))
}
