//! RFC 6902 JSON Patch between two stored values (layout.md §9.3 `OP_SNAP_DIFF`).
//!
//! Values are compared by node id: content addressing makes equal subtrees the same node, so
//! an unchanged field or list entry costs one integer comparison and produces no operation.
//! Objects yield `remove` for keys only in `a`, `add` for keys only in `b`, and recurse into
//! keys in both. Arrays drop their common prefix and suffix (by id), then recurse pairwise over
//! the overlapping middle, and end with `remove`s (at one index, repeated) or `add`s (at
//! increasing indices) for the length difference. Different types give one `replace`.
//! Applying the patch to `a` in order gives `b`.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use crate::store::codec::json;
use crate::store::error::StoreError;
use crate::store::node::{Node, NodeId};
use crate::store::node_store::NodeStore;

/// One step of a path: an object key or a list index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'s> {
    /// An object key (unescaped).
    Key(&'s str),
    /// A list index.
    Index(usize),
}

/// One operation [`diff_into`] hands its sink.
#[derive(Debug, Clone, Copy)]
pub struct PatchOp<'p, 's> {
    /// Its place in the patch, from 0 (a sink writing a list puts a comma before any but 0).
    pub index: usize,
    /// `"add"`, `"remove"` or `"replace"`.
    pub op: &'static str,
    /// The RFC 6901 pointer of `path`, built once by the walk for every sink.
    pub pointer: &'p str,
    /// The path as segments.
    pub path: &'p [Segment<'s>],
    /// The new value; absent for `"remove"`.
    pub value: Option<NodeId>,
}

/// Where [`diff_into`] writes each operation, in order.
pub trait PatchSink {
    /// One operation.
    ///
    /// # Errors
    /// Whatever the sink cannot write (e.g. bytes as JSON).
    fn op(&mut self, store: &NodeStore, op: PatchOp<'_, '_>) -> Result<(), StoreError>;
}

/// Walks the difference between `a` and `b`, handing each operation to `sink`; returns how
/// many there were. Equal node ids are skipped without a look inside, so the time is
/// proportional to what changed (plus the length of the lists and objects on the way to it).
///
/// # Errors
/// The sink's error.
pub fn diff_into(
    store: &NodeStore,
    a: NodeId,
    b: NodeId,
    sink: &mut impl PatchSink,
) -> Result<usize, StoreError> {
    let mut d = Differ {
        store,
        sink,
        path: Vec::new(),
        pointer: String::new(),
        count: 0,
    };
    d.walk(a, b)?;
    Ok(d.count)
}

/// Appends the RFC 6901 pointer of `path` to `out` (`~` → `~0`, `/` → `~1`; root `""`).
fn write_pointer(path: &[Segment<'_>], out: &mut String) {
    use std::fmt::Write as _;
    for seg in path {
        out.push('/');
        match seg {
            Segment::Key(k) => {
                for c in k.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        c => out.push(c),
                    }
                }
            }
            Segment::Index(i) => {
                let _ = write!(out, "{i}");
            }
        }
    }
}

/// The patch turning `a` into `b`, as a compact JSON array.
///
/// # Errors
/// [`StoreError::Unencodable`] when a value that must be written holds bytes (JSON cannot
/// express them).
pub fn diff(store: &NodeStore, a: NodeId, b: NodeId) -> Result<Vec<u8>, StoreError> {
    let mut sink = JsonPatch {
        out: Vec::with_capacity(256),
    };
    sink.out.push(b'[');
    diff_into(store, a, b, &mut sink)?;
    sink.out.push(b']');
    Ok(sink.out)
}

/// Writes RFC 6902 operations as a JSON array's items.
struct JsonPatch {
    out: Vec<u8>,
}

impl PatchSink for JsonPatch {
    fn op(&mut self, store: &NodeStore, op: PatchOp<'_, '_>) -> Result<(), StoreError> {
        if op.index > 0 {
            self.out.push(b',');
        }
        self.out.extend_from_slice(b"{\"op\":\"");
        self.out.extend_from_slice(op.op.as_bytes());
        self.out.extend_from_slice(b"\",\"path\":");
        json::write_str(op.pointer, &mut self.out);
        if let Some(v) = op.value {
            self.out.extend_from_slice(b",\"value\":");
            json::encode_into(store, v, &mut self.out)
                .map_err(|e| StoreError::Unencodable(format!("value at {:?}: {e}", op.pointer)))?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

struct Differ<'s, 'k, K> {
    store: &'s NodeStore,
    sink: &'k mut K,
    path: Vec<Segment<'s>>,
    /// Reused for every operation's pointer.
    pointer: String,
    count: usize,
}

impl<'s, K: PatchSink> Differ<'s, '_, K> {
    fn op(&mut self, op: &'static str, value: Option<NodeId>) -> Result<(), StoreError> {
        self.pointer.clear();
        write_pointer(&self.path, &mut self.pointer);
        let index = self.count;
        self.count += 1;
        let op = PatchOp {
            index,
            op,
            pointer: &self.pointer,
            path: &self.path,
            value,
        };
        self.sink.op(self.store, op)
    }

    /// Runs `f` with `segment` appended to the path.
    fn at<T>(&mut self, segment: Segment<'s>, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(segment);
        let r = f(self);
        self.path.pop();
        r
    }

    fn walk(&mut self, a: NodeId, b: NodeId) -> Result<(), StoreError> {
        if a == b {
            return Ok(());
        }
        let store = self.store;
        match (store.node(a), store.node(b)) {
            (Node::Object(x), Node::Object(y)) => self.objects(x, y),
            (Node::Array(x), Node::Array(y)) => self.arrays(x, y),
            _ => self.op("replace", Some(b)),
        }
    }

    fn objects(
        &mut self,
        x: &'s [(NodeId, NodeId)],
        y: &'s [(NodeId, NodeId)],
    ) -> Result<(), StoreError> {
        let store = self.store;
        let key = |k: NodeId| -> Segment<'s> {
            match store.node(k) {
                Node::Str(s) => Segment::Key(s),
                _ => Segment::Key(""),
            }
        };
        // Keys are interned strings: equal keys have equal ids.
        let in_y: HashMap<NodeId, NodeId> = y.iter().copied().collect();
        let in_x: HashMap<NodeId, NodeId> = x.iter().copied().collect();
        for &(k, _) in x {
            if !in_y.contains_key(&k) {
                self.at(key(k), |d| d.op("remove", None))?;
            }
        }
        for &(k, vb) in y {
            match in_x.get(&k) {
                Some(&va) => self.at(key(k), |d| d.walk(va, vb))?,
                None => self.at(key(k), |d| d.op("add", Some(vb)))?,
            }
        }
        Ok(())
    }

    fn arrays(&mut self, x: &'s [NodeId], y: &'s [NodeId]) -> Result<(), StoreError> {
        let prefix = x.iter().zip(y).take_while(|(p, q)| p == q).count();
        let (xr, yr) = (&x[prefix..], &y[prefix..]);
        let suffix = xr
            .iter()
            .rev()
            .zip(yr.iter().rev())
            .take_while(|(p, q)| p == q)
            .count();
        let xm = &xr[..xr.len() - suffix];
        let ym = &yr[..yr.len() - suffix];
        let common = xm.len().min(ym.len());
        for i in 0..common {
            self.at(Segment::Index(prefix + i), |d| d.walk(xm[i], ym[i]))?;
        }
        for _ in common..xm.len() {
            self.at(Segment::Index(prefix + common), |d| d.op("remove", None))?;
        }
        for (j, &v) in ym.iter().enumerate().skip(common) {
            self.at(Segment::Index(prefix + j), |d| d.op("add", Some(v)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::json::decode;

    fn patch(a: &str, b: &str) -> String {
        let mut st = NodeStore::new();
        let x = decode(&mut st, a.as_bytes()).unwrap();
        let y = decode(&mut st, b.as_bytes()).unwrap();
        String::from_utf8(diff(&st, x, y).unwrap()).unwrap()
    }

    #[test]
    fn equal_documents_give_an_empty_patch() {
        assert_eq!(patch(r#"{"a":[1,{"b":2}]}"#, r#"{"a":[1,{"b":2}]}"#), "[]");
    }

    #[test]
    fn objects_and_arrays_give_minimal_ops_with_escaped_paths() {
        assert_eq!(
            patch(r#"{"a":1,"x/y":2,"t~":3}"#, r#"{"a":1,"t~":4,"n":null}"#),
            r#"[{"op":"remove","path":"/x~1y"},{"op":"replace","path":"/t~0","value":4},{"op":"add","path":"/n","value":null}]"#
        );
        assert_eq!(
            patch("[1,2,3,4,5]", "[1,9,5]"),
            r#"[{"op":"replace","path":"/1","value":9},{"op":"remove","path":"/2"},{"op":"remove","path":"/2"}]"#
        );
        assert_eq!(
            patch("[1,5]", "[1,2,3,5]"),
            r#"[{"op":"add","path":"/1","value":2},{"op":"add","path":"/2","value":3}]"#
        );
        assert_eq!(
            patch(r#"{"a":[1]}"#, r#"{"a":{"b":1}}"#),
            r#"[{"op":"replace","path":"/a","value":{"b":1}}]"#
        );
        assert_eq!(
            patch("[1]", r#"{"b":1}"#),
            r#"[{"op":"replace","path":"","value":{"b":1}}]"#
        );
    }
}
