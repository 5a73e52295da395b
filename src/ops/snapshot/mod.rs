//! The snapshot and log ops (layout.md §9.3, §9.4): thin handlers over [`crate::store`]. Each
//! parses its params, calls the store and encodes the answer; [`store_error`] maps the store's
//! errors to wire error codes, the only place that does.
//!
//! Handlers are named `op_` + the op's name (`op_snap_push` runs `OP_SNAP_PUSH`), so they are
//! never mistaken for the store methods they call: [`history_ops`] (push, list, diff, stats,
//! drop), [`cursor_ops`] (undo, redo, jump, current, get), [`process_op`], [`file_ops`] (save
//! and load of histories and logs) and [`log_ops`]; [`params`] and [`answer`] hold what they
//! share.
#![forbid(unsafe_code)]

use crate::layout::*;
use crate::ops::Registry;

pub mod answer;
pub mod cursor_ops;
pub mod file_ops;
pub mod history_ops;
pub mod log_ops;
pub mod params;
pub mod process_op;
pub mod store_error;

pub use cursor_ops::CURSOR_HEADER_BYTES;

/// Registers the snapshot and log ops.
pub fn register(r: &mut Registry) {
    r.add(OP_SNAP_PUSH, "snap.push", history_ops::op_snap_push);
    r.add(
        OP_SNAP_PUSH_MANY,
        "snap.push_many",
        history_ops::op_snap_push_many,
    );
    r.add(OP_SNAP_UNDO, "snap.undo", cursor_ops::op_snap_undo);
    r.add(OP_SNAP_REDO, "snap.redo", cursor_ops::op_snap_redo);
    r.add(OP_SNAP_JUMP, "snap.jump", cursor_ops::op_snap_jump);
    r.add(OP_SNAP_CURRENT, "snap.current", cursor_ops::op_snap_current);
    r.add(OP_SNAP_GET, "snap.get", cursor_ops::op_snap_get);
    r.add(OP_SNAP_LIST, "snap.list", history_ops::op_snap_list);
    r.add(OP_SNAP_DIFF, "snap.diff", history_ops::op_snap_diff);
    r.add(OP_SNAP_STATS, "snap.stats", history_ops::op_snap_stats);
    r.add(OP_SNAP_PROCESS, "snap.process", process_op::op_snap_process);
    r.add(OP_SNAP_SAVE, "snap.save", file_ops::op_snap_save);
    r.add(OP_SNAP_LOAD, "snap.load", file_ops::op_snap_load);
    r.add(OP_SNAP_DROP, "snap.drop", history_ops::op_snap_drop);
    r.add(OP_LOG_APPEND, "log.append", log_ops::op_log_append);
    r.add(OP_LOG_READ, "log.read", log_ops::op_log_read);
    r.add(OP_LOG_TAIL, "log.tail", log_ops::op_log_tail);
    r.add(OP_LOG_LEN, "log.len", log_ops::op_log_len);
    r.add(OP_LOG_SAVE, "log.save", file_ops::op_log_save);
    r.add(OP_LOG_LOAD, "log.load", file_ops::op_log_load);
}
