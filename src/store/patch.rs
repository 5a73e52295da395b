//! The patch a client applies to its live state when it moves a history's cursor
//! (layout.md §9.3 `OP_SNAP_MOVE`): the RFC 6902 operations of [`diff`](super::diff) between
//! the current and the target snapshot, with each path also given as a list of segments, so
//! a Python client applies it with no pointer parsing. Two forms: [`patch`] (the ops as JSON,
//! each value its own marshal blob) and [`marshal_patch`] (`compact`: the whole patch one
//! marshal blob, one `marshal.loads` for everything).
#![forbid(unsafe_code)]

use crate::store::codec::{json, marshal};
use crate::store::diff::{self, PatchOp, PatchSink, Segment};
use crate::store::error::StoreError;
use crate::store::node::NodeId;
use crate::store::node_store::NodeStore;

/// A patch in its wire form: `ops` is a JSON array of `[op, pointer, [segments]]`, `values`
/// holds one marshal blob per op that has a value (`add`, `replace`), in op order.
#[derive(Debug, Default)]
pub struct Patch {
    /// JSON array `[["replace", "/a/0", ["a", 0]], …]`.
    pub ops: Vec<u8>,
    /// One marshal encoding per `add`/`replace`, in order.
    pub values: Vec<Vec<u8>>,
    /// Number of operations.
    pub count: usize,
}

/// The patch turning `a` into `b` (see [`diff::diff_into`]: equal subtrees cost one id
/// comparison).
///
/// # Errors
/// [`StoreError::Unencodable`] when a value cannot be written as marshal.
pub fn patch(store: &NodeStore, a: NodeId, b: NodeId) -> Result<Patch, StoreError> {
    let mut sink = Patch {
        ops: Vec::with_capacity(64),
        ..Patch::default()
    };
    sink.ops.push(b'[');
    sink.count = diff::diff_into(store, a, b, &mut sink)?;
    sink.ops.push(b']');
    Ok(sink)
}

impl PatchSink for Patch {
    fn op(&mut self, store: &NodeStore, op: PatchOp<'_, '_>) -> Result<(), StoreError> {
        if op.index > 0 {
            self.ops.push(b',');
        }
        self.ops.extend_from_slice(b"[\"");
        self.ops.extend_from_slice(op.op.as_bytes());
        self.ops.extend_from_slice(b"\",");
        json::write_str(op.pointer, &mut self.ops);
        self.ops.extend_from_slice(b",[");
        for (i, seg) in op.path.iter().enumerate() {
            if i > 0 {
                self.ops.push(b',');
            }
            match seg {
                Segment::Key(k) => json::write_str(k, &mut self.ops),
                Segment::Index(n) => self.ops.extend_from_slice(n.to_string().as_bytes()),
            }
        }
        self.ops.extend_from_slice(b"]]");
        if let Some(v) = op.value {
            self.values.push(marshal::encode(store, v)?);
        }
        Ok(())
    }
}

/// The `compact` move patch: one marshal list with one list per operation, `[op, pointer,
/// segments]` for `remove` and `[op, pointer, segments, value]` for `add`/`replace`
/// (segments: object keys as str, list indices as int), written by one encoder so a string
/// the patch uses more than once is decoded once.
///
/// # Errors
/// [`StoreError::Unencodable`] when a value cannot be written as marshal.
pub fn marshal_patch(store: &NodeStore, a: NodeId, b: NodeId) -> Result<Vec<u8>, StoreError> {
    let mut sink = MarshalPatch::default();
    sink.patch(store, a, b)?;
    Ok(sink.out)
}

/// Compact patches (as [`marshal_patch`]) of the steps `pairs` (from, to), in order, as one
/// marshal list of patches written by one encoder (so a string several patches use is decoded
/// once), stopping before the first step whose patch would take the list past `max_bytes`
/// (the first is always written).
///
/// # Errors
/// [`StoreError::Unencodable`] when a value cannot be written as marshal.
pub fn marshal_patches(
    store: &NodeStore,
    pairs: &[(NodeId, NodeId)],
    max_bytes: usize,
) -> Result<Vec<u8>, StoreError> {
    let mut sink = MarshalPatch::default();
    marshal::write_list_header(0, &mut sink.out)?;
    let mut made = 0;
    for &(a, b) in pairs {
        let start = sink.out.len();
        sink.patch(store, a, b)?;
        if made > 0 && sink.out.len() > max_bytes {
            // Over the budget: this patch is left out. Nothing is written after it, so no
            // back-reference can point at a string it held.
            sink.out.truncate(start);
            break;
        }
        made += 1;
    }
    set_list_header(&mut sink.out, 0, made)?;
    Ok(sink.out)
}

/// Rewrites the marshal list header at `at` (written with count 0) with `count`.
fn set_list_header(out: &mut [u8], at: usize, count: usize) -> Result<(), StoreError> {
    let mut header = Vec::with_capacity(5);
    marshal::write_list_header(count, &mut header)?;
    out[at..at + header.len()].copy_from_slice(&header);
    Ok(())
}

#[derive(Default)]
struct MarshalPatch {
    out: Vec<u8>,
    enc: marshal::Encoder,
}

impl MarshalPatch {
    /// Appends the compact patch from `a` to `b`: a list whose count is known after the walk
    /// (its header is written with 0 and rewritten in place).
    fn patch(&mut self, store: &NodeStore, a: NodeId, b: NodeId) -> Result<(), StoreError> {
        let start = self.out.len();
        marshal::write_list_header(0, &mut self.out)?;
        let count = diff::diff_into(store, a, b, self)?;
        set_list_header(&mut self.out, start, count)
    }
}

impl PatchSink for MarshalPatch {
    fn op(&mut self, store: &NodeStore, op: PatchOp<'_, '_>) -> Result<(), StoreError> {
        let out = &mut self.out;
        marshal::write_list_header(3 + usize::from(op.value.is_some()), out)?;
        marshal::write_str(op.op, out)?;
        marshal::write_str(op.pointer, out)?;
        marshal::write_list_header(op.path.len(), out)?;
        for seg in op.path {
            match seg {
                Segment::Key(k) => marshal::write_str(k, out)?,
                Segment::Index(n) => {
                    let n = i64::try_from(*n).map_err(|_| {
                        StoreError::Unencodable(format!("list index {n} does not fit an int"))
                    })?;
                    marshal::write_int(n, out)?;
                }
            }
        }
        if let Some(v) = op.value {
            self.enc.write(store, v, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::json::decode;

    #[test]
    fn paths_come_as_pointers_and_segments_with_one_value_blob_per_add_or_replace() {
        let mut st = NodeStore::new();
        let a = decode(&mut st, br#"{"d":[{"t":"x"},{"t":"y"}],"a/b":1,"gone":0}"#).unwrap();
        let b = decode(&mut st, br#"{"d":[{"t":"x"},{"t":"z"},{"t":"w"}],"a/b":2}"#).unwrap();
        let p = patch(&st, a, b).unwrap();
        assert_eq!(
            String::from_utf8(p.ops).unwrap(),
            r#"[["remove","/gone",["gone"]],["replace","/d/1/t",["d",1,"t"]],["add","/d/2",["d",2]],["replace","/a~1b",["a/b"]]]"#
        );
        assert_eq!(p.count, 4);
        assert_eq!(p.values.len(), 3);
        assert_eq!(p.values[0], b"z\x01z");
        assert_eq!(p.values[2], b"i\x02\x00\x00\x00");
    }

    #[test]
    fn the_compact_form_is_one_marshal_list_of_ops() {
        let mut st = NodeStore::new();
        let a = decode(&mut st, br#"{"d":[{"t":"x"},{"t":"y"}],"gone":0}"#).unwrap();
        let b = decode(&mut st, br#"{"d":[{"t":"x"},{"t":"z"},{"t":"w"}]}"#).unwrap();
        let p = marshal_patch(&st, a, b).unwrap();
        // Python: [["remove", "/gone", ["gone"]], ["replace", "/d/1/t", ["d", 1, "t"], "z"],
        //          ["add", "/d/2", ["d", 2], {"t": "w"}]]; "t" is shared: FLAG_REF, then `r`.
        let want: &[u8] = b"[\x03\x00\x00\x00\
            [\x03\x00\x00\x00z\x06removez\x05/gone[\x01\x00\x00\x00z\x04gone\
            [\x04\x00\x00\x00z\x07replacez\x06/d/1/t[\x03\x00\x00\x00z\x01di\x01\x00\x00\x00z\x01tz\x01z\
            [\x04\x00\x00\x00z\x03addz\x04/d/2[\x02\x00\x00\x00z\x01di\x02\x00\x00\x00{\xfa\x01tz\x01w0";
        assert_eq!(p, want);
        let empty = marshal_patch(&st, a, a).unwrap();
        assert_eq!(empty, b"[\x00\x00\x00\x00");
    }

    #[test]
    fn equal_snapshots_give_an_empty_patch() {
        let mut st = NodeStore::new();
        let a = decode(&mut st, br#"{"d":[1,2]}"#).unwrap();
        let b = decode(&mut st, br#"{"d":[1,2]}"#).unwrap();
        let p = patch(&st, a, b).unwrap();
        assert_eq!((p.ops.as_slice(), p.count), (&b"[]"[..], 0));
    }
}
