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

/// The check of an op whose answer is its request's body unchanged (echo): when it passes,
/// the worker writes the body straight from the buffer it copied the request into, without
/// the copy [`Handler`] would return.
pub type BodyCheck = fn(&Request<'_>) -> Result<(), OpError>;

/// One registered op.
#[derive(Debug, Clone, Copy)]
pub struct OpEntry {
    /// The op's wire code (`OP_*` in layout.rs).
    pub code: u16,
    /// Lower-case name used by `inspect`, `OP_INFO` and error messages, e.g. `"md.render"`.
    pub name: &'static str,
    /// The function that runs it.
    pub handler: Handler,
    /// For an op that answers its body unchanged, the check `handler` makes before copying
    /// it (`handler` stays the way to run it wherever the answer must be owned: pipelines).
    pub answers_body: Option<BodyCheck>,
}

impl OpEntry {
    /// An entry for an op family's `OPS` table.
    pub const fn new(code: u16, name: &'static str, handler: Handler) -> OpEntry {
        OpEntry {
            code,
            name,
            handler,
            answers_body: None,
        }
    }

    /// An entry for an op whose answer is its request's body once `check` passes; `handler`
    /// must do the same (check, then copy the body).
    pub const fn body(
        code: u16,
        name: &'static str,
        handler: Handler,
        check: BodyCheck,
    ) -> OpEntry {
        OpEntry {
            code,
            name,
            handler,
            answers_body: Some(check),
        }
    }
}
