//! How the snapshot ops write their JSON answers: the digest spelling and the encoder.
#![forbid(unsafe_code)]

use crate::error::{ErrorCode, OpError};

/// The 16-hex-digit digest of a stored value (its structural hash).
pub fn digest_hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// A JSON answer's bytes.
pub fn to_json(v: serde_json::Value) -> Result<Vec<u8>, OpError> {
    serde_json::to_vec(&v).map_err(|e| OpError::new(ErrorCode::Internal, e.to_string()))
}
