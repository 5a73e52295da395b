//! `OP_ECHO`: answers the body unchanged (health checks, tests, latency benchmarks).
#![forbid(unsafe_code)]

use crate::error::OpError;
use crate::layout::OP_ECHO;
use crate::ops::op::{OpEntry, State};
use crate::ops::request::Request;

/// The echo op, for the registry.
pub const OPS: &[OpEntry] = &[OpEntry::new(OP_ECHO, "echo", echo)];

/// Returns the body; params are ignored.
pub fn echo(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    Ok(req.body.to_vec())
}
