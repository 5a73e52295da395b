//! Markdown ops (pulldown-cmark): `render`, `outline`, `aggregate` (layout.md §9.2).
#![forbid(unsafe_code)]

use super::Registry;

/// Registers the markdown ops.
pub fn register(_r: &mut Registry) {}
