//! What the snapshot and log ops check in their params beyond serde: names.
#![forbid(unsafe_code)]

use crate::error::OpError;

/// Names are 1..=256 bytes of UTF-8 (they are JSON strings already).
///
/// # Errors
/// `BadParams` for an empty or longer name.
pub fn check_name(name: &str) -> Result<(), OpError> {
    if name.is_empty() || name.len() > 256 {
        return Err(OpError::bad_params(format!(
            "name must be 1..=256 bytes, got {}",
            name.len()
        )));
    }
    Ok(())
}
