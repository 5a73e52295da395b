//! Snapshot histories and logs on the chunked arena (layout.md §9.3, §9.4).
#![forbid(unsafe_code)]

use super::Registry;

/// All named histories and logs the worker keeps.
#[derive(Debug, Default)]
pub struct Store {}

/// Registers the snapshot and log ops.
pub fn register(_r: &mut Registry) {}
