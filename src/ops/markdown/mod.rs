//! Markdown ops (pulldown-cmark): `render`, `outline`, `aggregate` (layout.md §9.2).
//!
//! Each op lives in its own file; `options` holds the parser flags and the UTF-8 check they
//! share. Every op takes its documents in the list encoding (layout.md §9.1), so the output
//! of `aggregate` (a list of one document) feeds `render` or `outline` in a pipeline.
#![forbid(unsafe_code)]

use crate::layout::{OP_MD_AGGREGATE, OP_MD_OUTLINE, OP_MD_RENDER};
use crate::ops::op::OpEntry;

pub mod aggregate;
pub mod files;
pub mod options;
pub mod outline;
pub mod reasons;
pub mod render;

/// The markdown ops, for the registry.
pub const OPS: &[OpEntry] = &[
    OpEntry::new(OP_MD_RENDER, "md.render", render::render),
    OpEntry::new(OP_MD_OUTLINE, "md.outline", outline::outline),
    OpEntry::new(OP_MD_AGGREGATE, "md.aggregate", aggregate::aggregate),
];
