//! chunkring: a shared-memory ring buffer service (crate docs are completed with the ring core).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod error;
pub mod layout;
pub mod ops;
