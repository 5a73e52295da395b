//! What an op is: a plain function over the worker's [`State`] and one [`Request`], and the
//! [`OpEntry`] each op family lists in its `OPS` table for the registry.
#![forbid(unsafe_code)]

use crate::error::OpError;
use crate::ops::request::Request;
use crate::store::Store;

/// State that lives as long as the worker: snapshot histories and logs.
#[derive(Debug, Default)]
pub struct State {
    /// Named snapshot histories and logs (the [`crate::store`] the snapshot ops act on).
    pub snapshots: Store,
}

/// An op handler.
pub type Handler = fn(&mut State, &Request<'_>) -> Result<Vec<u8>, OpError>;

/// One registered op.
#[derive(Debug, Clone, Copy)]
pub struct OpEntry {
    /// The op's wire code (`OP_*` in layout.rs).
    pub code: u16,
    /// Lower-case name used by `inspect`, `OP_INFO` and error messages, e.g. `"md.render"`.
    pub name: &'static str,
    /// The function that runs it.
    pub handler: Handler,
}

impl OpEntry {
    /// An entry for an op family's `OPS` table.
    pub const fn new(code: u16, name: &'static str, handler: Handler) -> OpEntry {
        OpEntry {
            code,
            name,
            handler,
        }
    }
}
