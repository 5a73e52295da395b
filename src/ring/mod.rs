//! One single-producer/single-consumer ring of fixed-size chunks (layout.md §5, §6, §10).
//!
//! [`Producer`] owns `tail`, [`Consumer`] owns `head`; both are monotonic `u64` chunk
//! positions, `idx = pos & mask` is a slot. The algorithm is generic over [`RingMemory`] so
//! the same code runs over a mapped region, over a heap buffer under Miri, and under loom.

pub mod consumer;
pub mod fragment;
pub mod geometry;
pub mod memory;
#[cfg(chunkring_loom)]
#[doc(hidden)]
pub mod model;
pub mod producer;

pub use consumer::{Consumer, PollError};
pub use fragment::{MessageWriter, Reassembled, Reassembler};
pub use geometry::Geometry;
pub use memory::{MappedMemory, MappedParkWord, Park, RingMemory, RingPlace, Word};
pub use producer::{Producer, PushError};
