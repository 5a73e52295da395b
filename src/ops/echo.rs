//! `OP_ECHO`: answers the body unchanged (health checks, tests, latency benchmarks).
#![forbid(unsafe_code)]

use crate::error::OpError;
use crate::layout::OP_ECHO;
use crate::ops::op::{OpEntry, State};
use crate::ops::request::Request;

/// The echo op, for the registry.
pub const OPS: &[OpEntry] = &[OpEntry::new(OP_ECHO, "echo", echo)];

/// Returns the body. Params must be empty or a JSON object (its fields are ignored).
///
/// # Errors
/// `BAD_PARAMS` for params that are not a JSON object.
pub fn echo(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    req.check_params()?;
    Ok(req.body.to_vec())
}
