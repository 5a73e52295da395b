//! The operations the worker runs: the op registry, the request shape every op receives, and
//! the state ops keep between requests (layout.md §7 "Op codes", §9 "Op payloads").
//!
//! An op is a plain function `fn(&mut State, &Request) -> Result<Vec<u8>, OpError>`. It sees
//! only bytes the worker already copied out of shared memory, so nothing here is `unsafe`.
//! Every request payload is `params_len: u32 LE | params (JSON object or empty) | body`; the
//! dispatcher splits it before calling the op, and `OP_PIPELINE` feeds one op's output to the
//! next op as its body (see `worker::dispatch`).
#![forbid(unsafe_code)]

pub mod echo;
pub mod markdown;
pub mod op;
pub mod registry;
pub mod request;
pub mod snapshot;

pub use op::{Handler, OpEntry, State};
pub use registry::Registry;
pub use request::{decode_list, encode_list, encode_request, Request};
