//! [`Sink`]: what a decoder hands each value it reads to, bottom-up (scalars, then each
//! container once its children are in). The node store's [`Builder`] interns them; a batch's
//! summary (`store::summary`) only hashes and measures them, storing nothing.
#![forbid(unsafe_code)]

use crate::store::builder::Builder;
use crate::store::error::StoreError;
use crate::store::node::{Node, NodeId};

/// The receiving end of a decoder. `'a` is the lifetime of the bytes being decoded, so a
/// sink may keep slices of them.
pub trait Sink<'a> {
    /// How a value already received is named again (a marshal back-reference).
    type Ref: Copy;

    /// A scalar (never a str, bytes, list or object: those have their own calls).
    fn scalar(&mut self, node: Node);
    /// A big integer that does not fit in `i64` (trimmed digits, least significant first).
    fn big_int(&mut self, neg: bool, digits: Vec<u16>);
    /// A UTF-8 str.
    fn str(&mut self, s: &'a str);
    /// A str given as Latin-1 bytes (marshal's `a A z Z` codes; CPython writes them only for
    /// ASCII text, which is also UTF-8).
    fn latin1(&mut self, b: &'a [u8]);
    /// A bytes value.
    fn bytes(&mut self, b: &'a [u8]);
    /// A value received before, again.
    fn again(&mut self, r: Self::Ref);
    /// The value received last.
    fn top(&self) -> Option<Self::Ref>;
    /// The last `n` values become a list; `depth` is the list's nesting depth (0 = the root),
    /// `referenced` whether it may be named again by [`Sink::again`].
    ///
    /// # Errors
    /// [`StoreError::Malformed`] when the list is out of bounds (layout.md §9.3 "Limits").
    fn list(&mut self, n: usize, depth: usize, referenced: bool) -> Result<(), StoreError>;
    /// The last `2 * n` values (key, value, …) become an object at nesting depth `depth`.
    ///
    /// # Errors
    /// [`StoreError::Malformed`] for a key that is not a str, a duplicate key, or an object
    /// out of bounds.
    fn object(&mut self, n: usize, depth: usize) -> Result<(), StoreError>;
}

impl<'a> Sink<'a> for Builder<'_> {
    type Ref = NodeId;

    fn scalar(&mut self, node: Node) {
        self.push(node);
    }
    fn big_int(&mut self, neg: bool, digits: Vec<u16>) {
        self.push(Node::BigInt {
            neg,
            digits: digits.into(),
        });
    }
    fn str(&mut self, s: &'a str) {
        self.push_str(s);
    }
    fn latin1(&mut self, b: &'a [u8]) {
        match std::str::from_utf8(b) {
            Ok(s) if b.is_ascii() => self.push_str(s),
            _ => {
                let s: String = b.iter().map(|&c| char::from(c)).collect();
                self.push_str(&s);
            }
        }
    }
    fn bytes(&mut self, b: &'a [u8]) {
        self.push(Node::Bytes(b.into()));
    }
    fn again(&mut self, id: NodeId) {
        self.push_existing(id);
    }
    fn top(&self) -> Option<NodeId> {
        Builder::top(self)
    }
    fn list(&mut self, n: usize, _: usize, _: bool) -> Result<(), StoreError> {
        self.finish_array(n)
    }
    fn object(&mut self, n: usize, _: usize) -> Result<(), StoreError> {
        self.finish_object(n)
    }
}
