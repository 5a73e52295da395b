//! Digest, size and changes of a batch of snapshots, stored nowhere (layout.md §9.3
//! `OP_SNAP_PROCESS`).
//!
//! The batch is interned into a scratch node store, so "did this field / list entry change"
//! is an id comparison against the previous snapshot of the batch.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};

use crate::store::builder::key_text;
use crate::store::codec::{self, Encoding};
use crate::store::error::StoreError;
use crate::store::node::{Node, NodeId};
use crate::store::node_store::NodeStore;

/// What [`describe`] found out about one snapshot of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The structural hash of the snapshot (equal for equal content, whatever its encoding).
    pub digest: u64,
    /// Bytes the client sent for it.
    pub size: usize,
    /// What changed against the previous snapshot of the batch.
    pub change: Change,
}

/// What changed between a snapshot and the previous one of its batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// An opaque snapshot: whether its bytes differ (always true for the first one).
    Blob(bool),
    /// A structured snapshot (an object).
    Fields {
        /// Top-level keys added, removed or modified: in the snapshot's order, then the
        /// removed ones (every key, for the first snapshot).
        changed: Vec<String>,
        /// For each modified key whose value is a list before and after: what changed in it.
        lists: Vec<(String, ListChange)>,
    },
}

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

/// Describes every snapshot of `items`, each against the previous one.
///
/// # Errors
/// [`StoreError::InSnapshot`] naming the first snapshot that does not decode.
pub fn describe(enc: Encoding, items: &[&[u8]]) -> Result<Vec<Description>, StoreError> {
    let mut store = NodeStore::new();
    let mut out = Vec::with_capacity(items.len());
    let mut prev: Option<NodeId> = None;
    for (index, item) in items.iter().enumerate() {
        let root = codec::decode(&mut store, enc, item, enc != Encoding::Bytes).map_err(|e| {
            StoreError::InSnapshot {
                index,
                error: Box::new(e),
            }
        })?;
        let change = if enc == Encoding::Bytes {
            Change::Blob(prev != Some(root))
        } else {
            changes(&store, prev, root)
        };
        out.push(Description {
            digest: store.hash(root),
            size: item.len(),
            change,
        });
        // Keep the previous root alive; release the one before it.
        if let Some(q) = prev.replace(root) {
            store.decref(q);
        }
    }
    Ok(out)
}

/// Top-level keys that differ from `prev` (added, removed or modified, in `cur`'s order then
/// removed ones), and for keys whose value is a list in both: the changed entry indices.
fn changes(store: &NodeStore, prev: Option<NodeId>, cur: NodeId) -> Change {
    let pairs = |id: NodeId| -> &[(NodeId, NodeId)] {
        match store.node(id) {
            Node::Object(o) => o,
            _ => &[],
        }
    };
    let text = |k: NodeId| key_text(store, k).to_string();
    let now = pairs(cur);
    let mut changed = Vec::new();
    let mut lists = Vec::new();
    let Some(prev) = prev else {
        changed.extend(now.iter().map(|&(k, _)| text(k)));
        return Change::Fields { changed, lists };
    };
    let before: HashMap<NodeId, NodeId> = pairs(prev).iter().copied().collect();
    for &(k, v) in now {
        match before.get(&k) {
            Some(&old) if old == v => {}
            Some(&old) => {
                changed.push(text(k));
                if let (Node::Array(a), Node::Array(b)) = (store.node(old), store.node(v)) {
                    let idx: Vec<usize> = (0..b.len()).filter(|&i| a.get(i) != b.get(i)).collect();
                    let list = ListChange {
                        changed: idx,
                        old_len: a.len(),
                        new_len: b.len(),
                    };
                    lists.push((text(k), list));
                }
            }
            None => changed.push(text(k)),
        }
    }
    let now_keys: HashSet<NodeId> = now.iter().map(|&(k, _)| k).collect();
    for &(k, _) in pairs(prev) {
        if !now_keys.contains(&k) {
            changed.push(text(k));
        }
    }
    Change::Fields { changed, lists }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The field and list-entry changes of json snapshots are checked through the op, in
    // `ops::snapshot::process_op`; these cover blobs and errors.

    #[test]
    fn opaque_snapshots_report_whether_their_bytes_changed() {
        let docs: [&[u8]; 3] = [b"\x00a", b"\x00a", b"\x00b"];
        let v = describe(Encoding::Bytes, &docs).unwrap();
        let changed: Vec<Change> = v.iter().map(|d| d.change.clone()).collect();
        assert_eq!(
            changed,
            [Change::Blob(true), Change::Blob(false), Change::Blob(true)]
        );
        assert_eq!(v[0].digest, v[1].digest);
        assert_ne!(v[1].digest, v[2].digest);
    }

    #[test]
    fn a_bad_snapshot_is_named_by_its_index() {
        let docs: [&[u8]; 3] = [b"{}", b"{}", b"[1]"];
        let e = describe(Encoding::Json, &docs).unwrap_err();
        assert!(
            matches!(&e, StoreError::InSnapshot { index: 2, error } if matches!(**error, StoreError::Malformed(_))),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "snapshot 2: snapshot must be an object (a dict), not list"
        );
    }
}
