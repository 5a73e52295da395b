//! Digest, size and changes of a batch of snapshots, stored nowhere (layout.md §9.3
//! `OP_SNAP_PROCESS`).
//!
//! A marshal batch is read into [`Summary`]s (hashes of every top-level value and list entry,
//! nothing stored), so "did this field / list entry change" is a comparison of structural
//! hashes against the previous snapshot's summary. JSON and opaque batches are interned into
//! a scratch node store, where it is an id comparison.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};

use crate::store::builder::key_text;
use crate::store::codec::{self, Encoding};
use crate::store::error::StoreError;
use crate::store::node::{Node, NodeId};
use crate::store::node_store::NodeStore;
pub use crate::store::summary::ListChange;
use crate::store::summary::{Memory, Refs, Summary};

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

/// Describes every snapshot of `items`, each against the previous one.
///
/// # Errors
/// [`StoreError::InSnapshot`] naming the first snapshot that does not decode.
pub fn describe(enc: Encoding, items: &[&[u8]]) -> Result<Vec<Description>, StoreError> {
    if enc == Encoding::Marshal {
        return describe_marshal(items);
    }
    describe_interned(enc, items)
}

/// [`describe`] of a marshal batch through [`Summary`]s: two of them (this snapshot and the
/// previous one), one reference table and the memory of the previous snapshot's dicts (so an
/// unchanged dict is taken over, not read again), reused from one snapshot to the next.
fn describe_marshal(items: &[&[u8]]) -> Result<Vec<Description>, StoreError> {
    let mut out = Vec::with_capacity(items.len());
    let (mut prev, mut cur) = (Summary::default(), Summary::default());
    let mut refs: Refs<'_> = Vec::new();
    let mut memory = Memory::default();
    for (index, item) in items.iter().enumerate() {
        let digest = cur
            .read(
                item,
                index.checked_sub(1).map(|i| items[i]),
                &mut refs,
                &mut memory,
            )
            .map_err(|e| StoreError::InSnapshot {
                index,
                error: Box::new(e),
            })?;
        let change = if index == 0 {
            Change::Fields {
                changed: cur.keys().collect(),
                lists: Vec::new(),
            }
        } else {
            let (changed, lists) = cur.changes(&prev);
            Change::Fields { changed, lists }
        };
        out.push(Description {
            digest,
            size: item.len(),
            change,
        });
        std::mem::swap(&mut prev, &mut cur);
    }
    Ok(out)
}

/// [`describe`] through a scratch node store (JSON and opaque batches; and the reference the
/// marshal path is tested and fuzzed against: `fuzz/fuzz_targets/process_batch.rs`).
///
/// # Errors
/// As [`describe`].
pub fn describe_interned(enc: Encoding, items: &[&[u8]]) -> Result<Vec<Description>, StoreError> {
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
mod recall_tests;

#[cfg(test)]
mod tests {
    use super::*;

    // The field and list-entry changes of json snapshots are checked through the op, in
    // `ops::snapshot::process_op`; these cover blobs and errors.

    /// Marshal bytes of JSON documents, as the worker's encoder writes them (a repeated
    /// string once with `FLAG_REF`, then `r`).
    fn marshal_of(docs: &[&str]) -> Vec<Vec<u8>> {
        let mut store = NodeStore::new();
        docs.iter()
            .map(|d| {
                let id = codec::json::decode(&mut store, d.as_bytes()).unwrap();
                codec::marshal::encode(&store, id).unwrap()
            })
            .collect()
    }

    /// The summary path and the interned path agree: same descriptions, or the same error.
    fn assert_paths_agree(items: &[&[u8]]) {
        let fast = describe(Encoding::Marshal, items).map_err(|e| e.to_string());
        let slow = describe_interned(Encoding::Marshal, items).map_err(|e| e.to_string());
        assert_eq!(fast, slow);
    }

    #[test]
    fn marshal_summaries_match_the_interned_descriptions() {
        let docs = marshal_of(&[
            r#"{"a":1,"rows":[{"x":1},{"x":2}],"z":0,"t":"x"}"#,
            r#"{"a":1,"rows":[{"x":1},{"x":3},{"x":4}],"z":0,"t":"x"}"#,
            r#"{"a":2.5,"rows":[{"x":1}],"t":"é","n":null,"b":[true,false],"big":123456789012345678901234567890}"#,
            r#"{"rows":[{"x":1}],"a":2.5,"t":"é","n":null,"b":[true,false],"big":-123456789012345678901234567890}"#,
            r#"{"rows":"now a str","a":[],"t":"é","n":{"deep":[[1],[2,{"k":"k"}]]}}"#,
            r#"{}"#,
            r#"{"x":"x","xx":"x"}"#,
        ]);
        let items: Vec<&[u8]> = docs.iter().map(|d| d.as_slice()).collect();
        assert_paths_agree(&items);
        let got = describe(Encoding::Marshal, &items).unwrap();
        let Change::Fields { changed, lists } = &got[1].change else {
            panic!("{:?}", got[1]);
        };
        assert_eq!(changed, &["rows"]);
        assert_eq!(lists[0].1.changed, [1, 2]);
        // Every truncation of the batch's last snapshot fails the same way on both paths.
        let whole = &docs[2];
        for end in 0..whole.len() {
            assert_paths_agree(&[&docs[1], &whole[..end]]);
        }
    }

    #[test]
    fn marshal_back_references_latin1_keys_and_tuples_match_the_interned_descriptions() {
        // {"a": [1] (FLAG_REF), "b": r -> that list, "éA" (latin-1 `z`): (1, 2)}
        let one: &[u8] = b"\xfb\xda\x01a\xdb\x01\x00\x00\x00i\x01\x00\x00\x00\
                           \xda\x01br\x02\x00\x00\x00\
                           z\x02\xe9A)\x02i\x01\x00\x00\x00i\x02\x00\x00\x000";
        // {"a": [2] (FLAG_REF), "b": r -> that list, "éA" (UTF-8 `u`): (1, 3), "big": 2**40}
        let two: &[u8] = b"\xfb\xda\x01a\xdb\x01\x00\x00\x00i\x02\x00\x00\x00\
                           \xda\x01br\x02\x00\x00\x00\
                           u\x03\x00\x00\x00\xc3\xa9A)\x02i\x01\x00\x00\x00i\x03\x00\x00\x00\
                           z\x03bigl\x03\x00\x00\x00\x00\x00\x00\x00\x00\x040";
        assert_paths_agree(&[one, two, one]);
        let got = describe(Encoding::Marshal, &[one, two]).unwrap();
        let Change::Fields { changed, lists } = &got[1].change else {
            panic!("{:?}", got[1]);
        };
        assert_eq!(changed, &["a", "b", "éA", "big"]);
        assert_eq!(lists.len(), 3, "{lists:?}");
        // Duplicate keys (the same text as latin-1 and as UTF-8), non-str keys, bad refs.
        let dup: &[u8] = b"{z\x02\xe9AN u\x03\x00\x00\x00\xc3\xa9AN0";
        let int_key: &[u8] = b"{i\x01\x00\x00\x00N0";
        let bad_ref: &[u8] = b"{z\x01ar\x05\x00\x00\x000";
        let recursive: &[u8] = b"\xfbz\x01ar\x00\x00\x00\x000";
        let list: &[u8] = b"[\x00\x00\x00\x00";
        for bad in [dup, int_key, bad_ref, recursive, list] {
            assert_paths_agree(&[one, bad]);
            assert!(describe(Encoding::Marshal, &[one, bad]).is_err());
        }
    }

    #[test]
    fn mutated_marshal_bytes_fail_or_succeed_alike_on_both_paths() {
        let docs = marshal_of(&[
            r#"{"a":[1,2,{"k":"v"}],"b":"é","c":[[1],[1]],"d":{"x":"x"},"e":99999999999999999999}"#,
            r#"{"a":[1,3,{"k":"v"}],"b":"é","c":[[1],[2]],"d":{"x":"y"},"e":-1.5}"#,
        ]);
        // xorshift64: a fixed, dependency-free stream of edits.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut m = docs[1].clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() % m.len() as u64) as usize;
                m[at] = next() as u8;
            }
            assert_paths_agree(&[&docs[0], &m]);
        }
    }

    #[test]
    fn large_objects_find_duplicates_and_fields_through_the_index() {
        let keys: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
        let a = format!("{{{}}}", keys.join(","));
        let b = format!("{{{},\"k200\":1}}", keys[1..].join(","));
        let docs = marshal_of(&[&a, &b, &a]);
        let items: Vec<&[u8]> = docs.iter().map(|d| d.as_slice()).collect();
        assert_paths_agree(&items);
        let got = describe(Encoding::Marshal, &items).unwrap();
        assert!(
            matches!(&got[1].change, Change::Fields { changed, .. } if changed == &["k200", "k0"])
        );
        let mut dup = docs[0].clone();
        dup.pop(); // the closing `0`
        dup.extend_from_slice(b"z\x02k5N0");
        assert_paths_agree(&[&dup]);
        assert!(describe(Encoding::Marshal, &[&dup])
            .unwrap_err()
            .to_string()
            .contains("duplicate object key \"k5\""));
    }

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
