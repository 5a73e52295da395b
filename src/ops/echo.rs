//! `OP_ECHO`: answers the body unchanged (health checks, tests, latency benchmarks).
#![forbid(unsafe_code)]

use super::{Registry, Request, State};
use crate::error::OpError;
use crate::layout::OP_ECHO;

/// Registers `echo`.
pub fn register(r: &mut Registry) {
    r.add(OP_ECHO, "echo", echo);
}

/// Returns the body; params are ignored.
pub fn echo(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    Ok(req.body.to_vec())
}
