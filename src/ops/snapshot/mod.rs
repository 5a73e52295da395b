//! The snapshot and log ops (layout.md §9.3, §9.4): thin handlers over [`crate::store`]. Each
//! parses its params, calls the store and encodes the answer; [`store_error`] maps the store's
//! errors to wire error codes, the only place that does.
//!
//! Handlers are named `op_` + the op's name (`op_snap_push` runs `OP_SNAP_PUSH`), so they are
//! never mistaken for the store methods they call: [`history_ops`] (push, push_fields, list,
//! diff, stats, drop), [`cursor_ops`] (undo, redo, jump, current, get, move), [`ahead_op`], [`process_op`],
//! [`file_ops`] (save and load of histories and logs) and [`log_ops`]; [`params`] and
//! [`answer`] hold what they share.
#![forbid(unsafe_code)]

use crate::layout::*;
use crate::ops::op::OpEntry;

pub mod ahead_op;
pub mod answer;
pub mod cursor_ops;
pub mod file_ops;
pub mod history_ops;
pub mod log_ops;
pub mod params;
pub mod process_marshal;
pub mod process_op;
pub mod store_error;

pub use cursor_ops::CURSOR_HEADER_BYTES;

/// The snapshot and log ops, for the registry.
pub const OPS: &[OpEntry] = &[
    OpEntry::new(OP_SNAP_PUSH, "snap.push", history_ops::op_snap_push),
    OpEntry::new(
        OP_SNAP_PUSH_MANY,
        "snap.push_many",
        history_ops::op_snap_push_many,
    ),
    OpEntry::new(OP_SNAP_UNDO, "snap.undo", cursor_ops::op_snap_undo),
    OpEntry::new(OP_SNAP_REDO, "snap.redo", cursor_ops::op_snap_redo),
    OpEntry::new(OP_SNAP_JUMP, "snap.jump", cursor_ops::op_snap_jump),
    OpEntry::new(OP_SNAP_CURRENT, "snap.current", cursor_ops::op_snap_current),
    OpEntry::new(OP_SNAP_GET, "snap.get", cursor_ops::op_snap_get),
    OpEntry::new(OP_SNAP_MOVE, "snap.move", cursor_ops::op_snap_move),
    OpEntry::new(
        OP_SNAP_PUSH_FIELDS,
        "snap.push_fields",
        history_ops::op_snap_push_fields,
    ),
    OpEntry::new(OP_SNAP_LIST, "snap.list", history_ops::op_snap_list),
    OpEntry::new(OP_SNAP_DIFF, "snap.diff", history_ops::op_snap_diff),
    OpEntry::new(OP_SNAP_STATS, "snap.stats", history_ops::op_snap_stats),
    OpEntry::new(OP_SNAP_PROCESS, "snap.process", process_op::op_snap_process),
    OpEntry::new(OP_SNAP_SAVE, "snap.save", file_ops::op_snap_save),
    OpEntry::new(OP_SNAP_LOAD, "snap.load", file_ops::op_snap_load),
    OpEntry::new(OP_SNAP_DROP, "snap.drop", history_ops::op_snap_drop),
    OpEntry::new(OP_SNAP_AHEAD, "snap.ahead", ahead_op::op_snap_ahead),
    OpEntry::new(OP_LOG_APPEND, "log.append", log_ops::op_log_append),
    OpEntry::new(OP_LOG_READ, "log.read", log_ops::op_log_read),
    OpEntry::new(OP_LOG_TAIL, "log.tail", log_ops::op_log_tail),
    OpEntry::new(OP_LOG_LEN, "log.len", log_ops::op_log_len),
    OpEntry::new(OP_LOG_SAVE, "log.save", file_ops::op_log_save),
    OpEntry::new(OP_LOG_LOAD, "log.load", file_ops::op_log_load),
];
