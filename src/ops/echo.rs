//! `OP_ECHO`: answers the body unchanged (health checks, tests, latency benchmarks).
#![forbid(unsafe_code)]

use crate::error::OpError;
use crate::layout::OP_ECHO;
use crate::ops::op::{OpEntry, State};
use crate::ops::request::Request;

/// The echo op, for the registry: the worker answers a request with its own body, written
/// from the buffer the request was copied into (`OpEntry::body`).
pub const OPS: &[OpEntry] = &[OpEntry::body(OP_ECHO, "echo", echo, check)];

/// Returns the body. Params must be empty or a JSON object (its fields are ignored).
///
/// # Errors
/// `BAD_PARAMS` for params that are not a JSON object.
pub fn echo(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    check(req)?;
    Ok(req.body.to_vec())
}

/// What echo checks before answering with the body.
///
/// # Errors
/// `BAD_PARAMS` for params that are not a JSON object.
pub fn check(req: &Request<'_>) -> Result<(), OpError> {
    req.check_params()
}
