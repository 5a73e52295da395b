//! [`Builder`]: the value stack decoders build nodes on, bottom-up, releasing everything when
//! a decode fails.
#![forbid(unsafe_code)]

use crate::store::error::StoreError;
use crate::store::node::{Node, NodeId};
use crate::store::node_store::{NodeStore, Shape};

/// Deepest nesting a decoder accepts (keeps recursion bounded on hostile input).
pub const MAX_DEPTH: usize = 512;

/// Largest [`Shape::expanded_bytes`] a stored value may have (256 MiB): what writing it back
/// out can cost, shared sub-values counted each time they occur (layout.md §9.3 "Limits").
pub const MAX_EXPANDED_BYTES: u64 = 256 << 20;

// The node store keeps shapes saturated at `u32::MAX` (`PackedShape`): a saturated figure
// must still read as over both limits.
const _: () = assert!(MAX_EXPANDED_BYTES < u32::MAX as u64);
const _: () = assert!(MAX_DEPTH < u32::MAX as usize);

/// Why a value of `shape` may not be stored, or `None` when it may: nesting deeper than
/// [`MAX_DEPTH`] or an expansion beyond [`MAX_EXPANDED_BYTES`]. Decoders check every container
/// they build, and the history loader every node it reads, so whatever is stored can be
/// written back, saved and loaded again with bounded recursion and bounded output.
pub fn shape_problem(shape: Shape) -> Option<String> {
    if shape.depth as usize > MAX_DEPTH {
        return Some(format!("nesting deeper than {MAX_DEPTH}"));
    }
    if shape.expanded_bytes > MAX_EXPANDED_BYTES {
        return Some(format!(
            "value expands to more than {MAX_EXPANDED_BYTES} bytes (shared sub-values counted each time they occur)"
        ));
    }
    None
}

/// A value stack for decoders: scalars are pushed, containers pop their children. Every id on
/// the stack holds one count; a builder dropped before [`Builder::finish`] (a decode error)
/// releases them all, so a failed decode leaves the store as it was.
#[derive(Debug)]
pub struct Builder<'s> {
    store: &'s mut NodeStore,
    stack: Vec<NodeId>,
}

impl<'s> Builder<'s> {
    /// A builder over `store`.
    pub fn new(store: &'s mut NodeStore) -> Builder<'s> {
        Builder {
            store,
            stack: Vec::with_capacity(64),
        }
    }

    /// The store being built into.
    pub fn store(&mut self) -> &mut NodeStore {
        self.store
    }

    /// Interns a leaf node and pushes it.
    pub fn push(&mut self, node: Node) {
        let id = self.store.intern(node);
        self.stack.push(id);
    }

    /// Interns a string and pushes it (no allocation when it is already stored).
    pub fn push_str(&mut self, s: &str) {
        let id = self.store.intern_str(s);
        self.stack.push(id);
    }

    /// Pushes an existing node again (a marshal back-reference), adding a count.
    pub fn push_existing(&mut self, id: NodeId) {
        self.store.incref(id);
        self.stack.push(id);
    }

    /// The id on top of the stack.
    pub fn top(&self) -> Option<NodeId> {
        self.stack.last().copied()
    }

    /// Number of ids on the stack.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// Pops the top `n` ids into an array node and pushes it.
    pub fn finish_array(&mut self, n: usize) -> Result<(), StoreError> {
        let start = self
            .stack
            .len()
            .checked_sub(n)
            .ok_or_else(|| StoreError::malformed("decoder stack underflow"))?;
        let id = self.store.intern_array(&self.stack[start..]);
        self.stack.truncate(start);
        self.stack.push(id);
        self.check_top(id)
    }

    /// Pops the top `2 * n` ids (key, value, key, value …) into an object node and pushes it.
    ///
    /// # Errors
    /// [`StoreError::Malformed`] when a key is not a string or a key appears twice.
    pub fn finish_object(&mut self, n: usize) -> Result<(), StoreError> {
        let start = n
            .checked_mul(2)
            .and_then(|m| self.stack.len().checked_sub(m))
            .ok_or_else(|| StoreError::malformed("decoder stack underflow"))?;
        let flat = &self.stack[start..];
        for (i, pair) in flat.chunks_exact(2).enumerate() {
            let key = self.store.node(pair[0]);
            if !matches!(key, Node::Str(_)) {
                return Err(StoreError::malformed(format!(
                    "object key must be a string, not {}",
                    key.type_name()
                )));
            }
            // Keys are interned, so equal keys have equal ids.
            if n <= 64 && flat[..2 * i].chunks_exact(2).any(|p| p[0] == pair[0]) {
                return Err(StoreError::malformed(format!(
                    "duplicate object key {:?}",
                    key_text(self.store, pair[0])
                )));
            }
        }
        if n > 64 {
            let mut seen = std::collections::HashSet::with_capacity(n);
            for pair in flat.chunks_exact(2) {
                if !seen.insert(pair[0]) {
                    return Err(StoreError::malformed(format!(
                        "duplicate object key {:?}",
                        key_text(self.store, pair[0])
                    )));
                }
            }
        }
        let id = self.store.intern_flat_object(&self.stack[start..]);
        self.stack.truncate(start);
        self.stack.push(id);
        self.check_top(id)
    }

    /// Refuses the container just pushed when its [`Shape`] is out of bounds (it stays on the
    /// stack, so dropping the builder releases it).
    fn check_top(&self, id: NodeId) -> Result<(), StoreError> {
        match shape_problem(self.store.shape(id)) {
            Some(why) => Err(StoreError::malformed(why)),
            None => Ok(()),
        }
    }

    /// Ends the build: exactly one value must be on the stack; its count goes to the caller.
    pub fn finish(mut self) -> Result<NodeId, StoreError> {
        if self.stack.len() != 1 {
            return Err(StoreError::malformed(format!(
                "decoder ended with {} values instead of one",
                self.stack.len()
            )));
        }
        self.stack
            .pop()
            .ok_or_else(|| StoreError::malformed("decoder ended without a value"))
    }
}

impl Drop for Builder<'_> {
    fn drop(&mut self) {
        for id in self.stack.drain(..) {
            self.store.decref(id);
        }
    }
}

/// The text of a string node, or "" for any other node.
pub fn key_text(store: &NodeStore, id: NodeId) -> &str {
    match store.node(id) {
        Node::Str(s) => s,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_releases_everything_on_error() {
        let mut st = NodeStore::new();
        {
            let mut b = Builder::new(&mut st);
            b.push(Node::Int(5));
            b.push(Node::Str("v".into()));
            assert!(b.finish_object(1).is_err(), "int key refused");
        }
        assert_eq!(st.stats().nodes, 0);
        let mut b = Builder::new(&mut st);
        b.push(Node::Str("k".into()));
        b.push(Node::Null);
        b.push(Node::Str("k".into()));
        b.push(Node::Null);
        let e = b.finish_object(2).unwrap_err();
        assert!(e.to_string().contains("duplicate object key"), "{e}");
        drop(b);
        assert_eq!(st.stats().nodes, 0);
    }
}
