//! Op code → handler: the table the dispatcher looks ops up in, filled from each op family's
//! `OPS` list (layout.md §7).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use crate::ops::op::{Handler, OpEntry};
use crate::ops::{echo, markdown, snapshot};

/// Op code → handler. Control ops (`OP_PIPELINE`, `OP_SHUTDOWN`, `OP_INFO`) are handled by the
/// dispatcher itself, because they act on the worker rather than on bytes.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    ops: BTreeMap<u16, OpEntry>,
}

impl Registry {
    /// A registry with every op this build ships.
    pub fn with_all_ops() -> Registry {
        let mut r = Registry::default();
        for entry in [echo::OPS, markdown::OPS, snapshot::OPS].concat() {
            r.ops.insert(entry.code, entry);
        }
        r
    }

    /// Adds an op. A second registration of the same code replaces the first.
    pub fn add(&mut self, code: u16, name: &'static str, handler: Handler) {
        self.ops.insert(code, OpEntry::new(code, name, handler));
    }

    /// The op registered under `code`.
    pub fn get(&self, code: u16) -> Option<&OpEntry> {
        self.ops.get(&code)
    }

    /// Every registered op, by code.
    pub fn entries(&self) -> impl Iterator<Item = &OpEntry> {
        self.ops.values()
    }
}
