//! chunkring: a shared-memory ring buffer service between a Python client and a Rust worker.
//!
//! A **region** (POSIX shm `chunkring-<name>`, or a file) holds a header page and two
//! single-producer/single-consumer **rings** of fixed-size **chunks**. The client produces
//! request **frames** into the request ring; the worker consumes them, runs the op each names
//! (echo, markdown, snapshot histories, logs, pipelines), and produces response frames into
//! the response ring. One producer and one consumer per ring; a full ring makes the producer
//! wait, it never overwrites. `layout.md` is the contract: every byte, code and ordering.
//!
//! ```text
//!  client (Python)                  region                         worker (Rust)
//!  ───────────────   ┌──────────────────────────────────────┐     ────────────────
//!  produce ────────▶ │ header page: ids, sizes, pids, stats │
//!                    │ REQ_HEAD REQ_TAIL RESP_HEAD RESP_TAIL│
//!                    │ WORKER_FUTEX CLIENT_FUTEX            │
//!                    ├──────────────────────────────────────┤
//!                    │ request ring  [frame][frame][pad]    │ ──────▶ consume, dispatch
//!                    ├──────────────────────────────────────┤
//!  consume ◀──────── │ response ring [frame][frame]         │ ◀────── produce
//!                    └──────────────────────────────────────┘
//! ```
//!
//! The same ring code runs over a mapped region, over a heap buffer (tests, Miri) and under
//! loom (`--cfg chunkring_loom`), through `RingMemory`:
//!
//! ```
//! use chunkring::region::heap::HeapBacking;
//! use chunkring::{Consumer, FrameHeader, Producer, RegionConfig};
//!
//! let region = HeapBacking::region(&RegionConfig { ring_bytes: 4096, ..Default::default() }).unwrap();
//! let mut producer = Producer::new(region.request_ring().unwrap());
//! let mut consumer = Consumer::new(region.request_ring().unwrap());
//!
//! producer.try_push(&FrameHeader::message(1, 7, 0, 5), b"hello").unwrap();
//! producer.publish(); // one tail store for everything written since the last publish
//!
//! let mut buf = Vec::new();
//! let header = consumer.poll(&mut buf).unwrap().unwrap();
//! assert_eq!((header.request_id, &buf[..5]), (7, &b"hello"[..]));
//! assert!(consumer.poll(&mut buf).unwrap().is_none());
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    clippy::undocumented_unsafe_blocks,
    clippy::unnecessary_safety_comment
)]

#[cfg(target_endian = "big")]
compile_error!("chunkring's layout is little-endian and only little-endian hosts are supported");

// The front door: what a Rust user of the crate needs to run a worker, embed the ops, or
// speak the protocol over a region of their own.
pub mod layout;
pub mod region;
pub mod store;

pub use error::{ErrorCode, OpError};
pub use frame::{FrameError, FrameHeader};
pub use ops::{Registry, Request, State};
pub use region::{Region, RegionConfig, RegionError};
pub use ring::{Consumer, MessageWriter, PollError, Producer, PushError, Reassembled, Reassembler};
pub use wait::{WaitPolicy, Waited};
pub use worker::{serve, Place, ServeOptions, StopReason};

// Internals. Public only so that the binary, the integration tests, the benches and the loom
// models (a separate crate) can reach them; hidden from the docs and not part of the API.
#[doc(hidden)]
pub mod barrier;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod frame;
#[doc(hidden)]
pub mod inspect;
#[doc(hidden)]
pub mod ops;
#[doc(hidden)]
pub mod pipe;
#[doc(hidden)]
pub mod ring;
#[doc(hidden)]
pub mod wait;
#[doc(hidden)]
pub mod worker;

mod liveness;
mod sync;
