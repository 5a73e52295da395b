//! `OP_SNAP_AHEAD` (layout.md §9.3 "Steps ahead"): a client stepping its live state through a
//! history sends the steps it took since it last told the worker (`by`), and asks for the
//! patches of the next `count` steps the way it goes, all in one request: a run of undos or
//! redos then costs one request per `count` steps, not one per step.
#![forbid(unsafe_code)]

use serde::Deserialize;

use super::cursor_ops::header;
use crate::error::OpError;
use crate::layout::{AHEAD_MAX_BYTES, AHEAD_MAX_STEPS};
use crate::ops::op::State;
use crate::ops::request::Request;
use crate::store::codec::Encoding;
use crate::store::history::Move;

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
}

/// `OP_SNAP_AHEAD`: moves the cursor `by` steps (all or nothing), then answers the cursor
/// header (`status` 1 and `encoding` 2 when patches follow, else 0 and 0) and one marshal list
/// of the compact patches of the next `count` steps the way `to` goes, as successive
/// `OP_SNAP_MOVE` `peek`s would answer them: fewer where the history ends, where a snapshot on
/// the way is opaque, or past `AHEAD_MAX_BYTES`.
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
    let blob = match to {
        Some(to) => h.patches_ahead(to, p.count as usize, AHEAD_MAX_BYTES)?,
        None => None,
    };
    Ok(match blob {
        Some(blob) => {
            let mut out = header(h, 1, Encoding::Marshal.code(), blob.len());
            out.extend_from_slice(&blob);
            out
        }
        None => header(h, 0, 0, 0),
    })
}
