//! [`Summary`]: a marshal snapshot read for `OP_SNAP_PROCESS` without storing it — every
//! value hashed and measured as the node store would (same structural hash, same limits), and
//! the root's top-level fields kept with their values' hashes (and, for lists, their entries'
//! hashes), so "did this field / list entry change" is a hash comparison against the previous
//! snapshot's summary (layout.md §9.3 "Process").
//!
//! Values with equal 64-bit structural hashes are taken as equal; the node store also
//! compares the nodes, so only a hash collision (which takes crafted input) could make this
//! path call a changed field unchanged.
//!
//! Nothing is interned or freed per value: a summary holds slices of the request body and a
//! few vectors that are reused from one snapshot to the next.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use crate::store::builder::shape_problem;
use crate::store::codec::marshal;
use crate::store::codec::recall::Recall;
use crate::store::codec::sink::Sink;
use crate::store::error::StoreError;
use crate::store::hash::{
    hash_ascii, hash_big_int, hash_bool, hash_bytes, hash_float, hash_int, hash_list, hash_null,
    hash_object, hash_str, BuildIdentity,
};
use crate::store::node::Node;
use crate::store::node_store::{Shape, SHAPE_NODE_BYTES};

/// A root with more keys than this has its fields looked up through a hash map instead of a
/// scan (and objects of more than 64 keys are checked for duplicates through one, as the
/// builder does), so a hostile object costs linear time.
const SCAN_KEYS: usize = 32;

/// The entries of a list that changed between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListChange {
    /// Indices (in the new list) whose entry differs from the old list's entry there.
    pub changed: Vec<usize>,
    /// Length before.
    pub old_len: usize,
    /// Length after.
    pub new_len: usize,
}

/// The text of a str as it was read: UTF-8 (validated), or Latin-1 bytes not all ASCII.
#[derive(Debug, Clone, Copy)]
pub struct Text<'a> {
    bytes: &'a [u8],
    latin1: bool,
}

impl Text<'_> {
    fn same(&self, other: &Text<'_>) -> bool {
        if self.latin1 == other.latin1 {
            return self.bytes == other.bytes;
        }
        let (l, u) = if self.latin1 {
            (self, other)
        } else {
            (other, self)
        };
        std::str::from_utf8(u.bytes)
            .is_ok_and(|s| s.chars().eq(l.bytes.iter().map(|&c| char::from(c))))
    }

    /// The text as a `String`.
    pub fn text(&self) -> String {
        if self.latin1 {
            self.bytes.iter().map(|&c| char::from(c)).collect()
        } else {
            String::from_utf8_lossy(self.bytes).into_owned()
        }
    }
}

/// What kind of value a [`Val`] is, with what a summary needs of it.
#[derive(Debug, Clone, Copy)]
enum Kind<'a> {
    Str(Text<'a>),
    /// A list whose entries' hashes are `kids[at..at + len]` (`at` is `u32::MAX` when they
    /// were not kept: a list neither at depth 1 nor referenced again).
    List {
        at: u32,
        len: u32,
    },
    Object,
    Other(&'static str),
}

/// One value read: its structural hash, its shape and its kind.
#[derive(Debug, Clone, Copy)]
pub struct Val<'a> {
    hash: u64,
    shape: Shape,
    kind: Kind<'a>,
}

/// Equal when a container holding one in place of the other gets the same hash, shape and
/// errors (what [`Recall`] needs to take a dict over from the previous snapshot): same hash
/// and shape, same kind, and for a str the same bytes read the same way (a key's text decides
/// duplicate keys). Where a list's entry hashes are kept does not matter to a container.
impl PartialEq for Val<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && self.shape == other.shape
            && match (self.kind, other.kind) {
                (Kind::Str(a), Kind::Str(b)) => a.latin1 == b.latin1 && a.bytes == b.bytes,
                (Kind::List { .. }, Kind::List { .. }) | (Kind::Object, Kind::Object) => true,
                (Kind::Other(a), Kind::Other(b)) => a == b,
                _ => false,
            }
    }
}

impl Val<'_> {
    fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Str(_) => "str",
            Kind::List { .. } => "list",
            Kind::Object => "object",
            Kind::Other(name) => name,
        }
    }
}

/// A top-level field of the root object.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    key: Text<'a>,
    key_hash: u64,
    value: Val<'a>,
}

/// The summary of one snapshot: its root's hash and size, and its top-level fields.
#[derive(Debug, Default)]
pub struct Summary<'a> {
    stack: Vec<Val<'a>>,
    /// Entry hashes of the lists kept (see [`Kind::List`]).
    kids: Vec<u64>,
    fields: Vec<Field<'a>>,
    /// Key hash → index in `fields` (first such key), when there are more than [`SCAN_KEYS`].
    index: HashMap<u64, u32, BuildIdentity>,
    /// Scratch for the duplicate-key check of large objects.
    seen: HashMap<u64, u32, BuildIdentity>,
}

/// A reference table a batch reuses from one snapshot to the next.
pub type Refs<'a> = Vec<Option<Val<'a>>>;

/// What a batch remembers of its previous snapshot (see [`Recall`]).
pub type Memory<'a> = Recall<Val<'a>>;

impl<'a> Summary<'a> {
    /// Reads `bytes` (one marshal snapshot, which must be a dict) into this summary,
    /// replacing what it held; returns the root's structural hash. `refs` and `memory` are
    /// the batch's: the dicts that did not change since the snapshot read before are taken
    /// over from it (`prev`: the bytes of the snapshot read before with them, if any).
    ///
    /// # Errors
    /// As [`marshal::decode`] (same messages), and "snapshot must be an object (a dict), not …".
    pub fn read(
        &mut self,
        bytes: &'a [u8],
        prev: Option<&'a [u8]>,
        refs: &mut Refs<'a>,
        memory: &mut Memory<'a>,
    ) -> Result<u64, StoreError> {
        self.stack.clear();
        self.kids.clear();
        self.fields.clear();
        self.index.clear();
        marshal::read_recalling(bytes, prev, &mut *self, refs, memory)?;
        match self.stack.as_slice() {
            [root] if matches!(root.kind, Kind::Object) => Ok(root.hash),
            [root] => Err(StoreError::malformed(format!(
                "snapshot must be an object (a dict), not {}",
                root.type_name()
            ))),
            _ => Err(StoreError::malformed("decoder ended without one value")),
        }
    }

    /// The top-level keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.fields.iter().map(|f| f.key.text())
    }

    /// Top-level keys that differ from `prev` (in this snapshot's order, then those only in
    /// `prev`), and for each of them whose value is a list in both, what changed in it.
    pub fn changes(&self, prev: &Summary<'_>) -> (Vec<String>, Vec<(String, ListChange)>) {
        let mut changed = Vec::new();
        let mut lists = Vec::new();
        for f in &self.fields {
            match prev.find(f) {
                Some(old) if old.value.hash == f.value.hash => {}
                Some(old) => {
                    if let (Some(a), Some(b)) = (prev.entries(&old.value), self.entries(&f.value)) {
                        let list = ListChange {
                            changed: (0..b.len()).filter(|&i| a.get(i) != b.get(i)).collect(),
                            old_len: a.len(),
                            new_len: b.len(),
                        };
                        lists.push((f.key.text(), list));
                    }
                    changed.push(f.key.text());
                }
                None => changed.push(f.key.text()),
            }
        }
        for f in &prev.fields {
            if self.find(f).is_none() {
                changed.push(f.key.text());
            }
        }
        (changed, lists)
    }

    /// The field of this summary's root with `f`'s key.
    fn find(&self, f: &Field<'_>) -> Option<&Field<'a>> {
        if self.fields.len() > SCAN_KEYS {
            if let Some(&i) = self.index.get(&f.key_hash) {
                let g = &self.fields[i as usize];
                if g.key.same(&f.key) {
                    return Some(g);
                }
            } else {
                return None;
            }
        }
        // A short root, or two keys whose hashes collide: scan.
        self.fields
            .iter()
            .find(|g| g.key_hash == f.key_hash && g.key.same(&f.key))
    }

    /// The entry hashes of `v` when it is a list.
    fn entries(&self, v: &Val<'_>) -> Option<&[u64]> {
        match v.kind {
            Kind::List { at, len } if at != u32::MAX => {
                self.kids.get(at as usize..at as usize + len as usize)
            }
            _ => None,
        }
    }

    fn push(&mut self, hash: u64, payload: usize, kind: Kind<'a>) {
        let shape = Shape {
            depth: 0,
            expanded_bytes: SHAPE_NODE_BYTES + payload as u64,
        };
        self.stack.push(Val { hash, shape, kind });
    }

    /// The shape of a container over `kids` (as the node store computes it), checked.
    fn container_shape(kids: &[Val<'_>]) -> Result<Shape, StoreError> {
        let mut shape = Shape {
            depth: 0,
            expanded_bytes: SHAPE_NODE_BYTES,
        };
        for k in kids {
            shape.depth = shape.depth.max(k.shape.depth.saturating_add(1));
            shape.expanded_bytes = shape.expanded_bytes.saturating_add(k.shape.expanded_bytes);
        }
        match shape_problem(shape) {
            Some(why) => Err(StoreError::malformed(why)),
            None => Ok(shape),
        }
    }

    /// Refuses a non-str key or a key twice, with the builder's messages and in its order.
    fn check_keys(&mut self, start: usize, n: usize) -> Result<(), StoreError> {
        let flat = &self.stack[start..];
        let key = |i: usize| match flat[2 * i].kind {
            Kind::Str(t) => Some(t),
            _ => None,
        };
        let dup =
            |t: Text<'_>| StoreError::malformed(format!("duplicate object key {:?}", t.text()));
        for i in 0..n {
            let Some(t) = key(i) else {
                return Err(StoreError::malformed(format!(
                    "object key must be a string, not {}",
                    flat[2 * i].type_name()
                )));
            };
            let h = flat[2 * i].hash;
            if n <= 64
                && (0..i).any(|j| flat[2 * j].hash == h && key(j).is_some_and(|u| u.same(&t)))
            {
                return Err(dup(t));
            }
        }
        if n > 64 {
            self.seen.clear();
            for i in 0..n {
                let h = flat[2 * i].hash;
                let t = key(i).unwrap_or(Text {
                    bytes: b"",
                    latin1: false,
                });
                match self.seen.get(&h) {
                    None => {
                        self.seen.insert(h, i as u32);
                    }
                    // Equal hashes: the same key, or (rarely) a collision to scan for.
                    Some(_) => {
                        if (0..i)
                            .any(|j| flat[2 * j].hash == h && key(j).is_some_and(|u| u.same(&t)))
                        {
                            return Err(dup(t));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Keeps the root's fields (and an index over them when there are many).
    fn keep_fields(&mut self, start: usize) {
        for pair in self.stack[start..].chunks_exact(2) {
            if let Kind::Str(key) = pair[0].kind {
                self.fields.push(Field {
                    key,
                    key_hash: pair[0].hash,
                    value: pair[1],
                });
            }
        }
        if self.fields.len() > SCAN_KEYS {
            for (i, f) in self.fields.iter().enumerate() {
                self.index.entry(f.key_hash).or_insert(i as u32);
            }
        }
    }
}

impl<'a> Sink<'a> for &mut Summary<'a> {
    type Ref = Val<'a>;

    fn scalar(&mut self, node: Node) {
        let (hash, name) = match node {
            Node::Null => (hash_null(), "null"),
            Node::Bool(b) => (hash_bool(b), "bool"),
            Node::Int(i) => (hash_int(i), "int"),
            Node::Float(f) => (hash_float(f), "float"),
            // The reader hands these to their own calls; hashed here anyway for completeness.
            Node::BigInt { neg, ref digits } => (hash_big_int(neg, digits), "int"),
            _ => (hash_null(), "null"),
        };
        self.push(hash, 0, Kind::Other(name));
    }

    fn big_int(&mut self, neg: bool, digits: Vec<u16>) {
        self.push(
            hash_big_int(neg, &digits),
            digits.len() * 2,
            Kind::Other("int"),
        );
    }

    fn str(&mut self, s: &'a str) {
        let text = Text {
            bytes: s.as_bytes(),
            latin1: false,
        };
        self.push(hash_str(s), s.len(), Kind::Str(text));
    }

    fn latin1(&mut self, b: &'a [u8]) {
        if let Some(hash) = hash_ascii(b) {
            let text = Text {
                bytes: b,
                latin1: false,
            };
            return self.push(hash, b.len(), Kind::Str(text));
        }
        let text = Text {
            bytes: b,
            latin1: true,
        };
        let s = text.text();
        self.push(hash_str(&s), s.len(), Kind::Str(text));
    }

    fn bytes(&mut self, b: &'a [u8]) {
        self.push(hash_bytes(b), b.len(), Kind::Other("bytes"));
    }

    fn again(&mut self, v: Val<'a>) {
        self.stack.push(v);
    }

    fn top(&self) -> Option<Val<'a>> {
        self.stack.last().copied()
    }

    fn list(&mut self, n: usize, depth: usize, referenced: bool) -> Result<(), StoreError> {
        let start = self
            .stack
            .len()
            .checked_sub(n)
            .ok_or_else(|| StoreError::malformed("decoder stack underflow"))?;
        let items = &self.stack[start..];
        let hash = hash_list(items.iter().map(|v| v.hash));
        let shape = Summary::container_shape(items)?;
        let (at, len) = if depth == 1 || referenced {
            let at = self.kids.len();
            self.kids.extend(items.iter().map(|v| v.hash));
            // Bounded by the body's length (every entry took at least one byte of it).
            match (u32::try_from(at), u32::try_from(n)) {
                (Ok(at), Ok(len)) => (at, len),
                _ => (u32::MAX, 0),
            }
        } else {
            (u32::MAX, 0)
        };
        self.stack.truncate(start);
        self.stack.push(Val {
            hash,
            shape,
            kind: Kind::List { at, len },
        });
        Ok(())
    }

    fn object(&mut self, n: usize, depth: usize) -> Result<(), StoreError> {
        let start = n
            .checked_mul(2)
            .and_then(|m| self.stack.len().checked_sub(m))
            .ok_or_else(|| StoreError::malformed("decoder stack underflow"))?;
        self.check_keys(start, n)?;
        let flat = &self.stack[start..];
        let hash = hash_object(flat.chunks_exact(2).map(|p| (p[0].hash, p[1].hash)));
        let shape = Summary::container_shape(flat)?;
        if depth == 0 {
            self.keep_fields(start);
        }
        self.stack.truncate(start);
        self.stack.push(Val {
            hash,
            shape,
            kind: Kind::Object,
        });
        Ok(())
    }
}
