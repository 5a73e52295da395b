//! `OP_SNAP_PROCESS`: digest, size and changes of many snapshots in one request, stored
//! nowhere (layout.md §9.3).
//!
//! The batch is interned into a scratch node store, so "did this field / list entry change"
//! is an id comparison against the previous snapshot of the batch.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::digest_hex;
use super::encoding::{self, Encoding};
use super::value::{key_text, Node, NodeId, NodeStore};
use crate::error::OpError;
use crate::ops::{decode_list, Request, State};

#[derive(Deserialize)]
struct ProcessParams {
    #[serde(default)]
    encoding: Encoding,
}

/// Describes every snapshot of a list body; see layout.md §9.3 for the result shape.
pub fn process(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: ProcessParams = req.params()?;
    let items = decode_list(req.body)?;
    let mut store = NodeStore::new();
    let mut out = Vec::with_capacity(items.len());
    let mut prev: Option<NodeId> = None;
    for (i, item) in items.iter().enumerate() {
        let root = encoding::decode(&mut store, p.encoding, item, p.encoding != Encoding::Bytes)
            .map_err(|e| OpError::new(e.code, format!("snapshot {i}: {}", e.message)))?;
        let mut rec = Map::new();
        rec.insert("index".into(), json!(i));
        rec.insert("digest".into(), json!(digest_hex(store.hash(root))));
        rec.insert("size".into(), json!(item.len()));
        if p.encoding == Encoding::Bytes {
            rec.insert("changed".into(), json!(prev != Some(root)));
        } else {
            let (changed, entries) = changes(&store, prev, root);
            rec.insert("changed".into(), Value::Array(changed));
            rec.insert("entries".into(), Value::Object(entries));
        }
        out.push(Value::Object(rec));
        // Keep the previous root alive; release the one before it.
        if let Some(q) = prev.replace(root) {
            store.decref(q);
        }
    }
    serde_json::to_vec(&out).map_err(|e| OpError::bad_payload(e.to_string()))
}

/// Top-level keys that differ from `prev` (added, removed or modified, in `cur`'s order then
/// removed ones), and for keys whose value is a list in both: the changed entry indices.
fn changes(
    store: &NodeStore,
    prev: Option<NodeId>,
    cur: NodeId,
) -> (Vec<Value>, Map<String, Value>) {
    let pairs = |id: NodeId| -> &[(NodeId, NodeId)] {
        match store.node(id) {
            Node::Object(o) => o,
            _ => &[],
        }
    };
    let now = pairs(cur);
    let mut changed = Vec::new();
    let mut entries = Map::new();
    let Some(prev) = prev else {
        changed.extend(now.iter().map(|&(k, _)| json!(key_text(store, k))));
        return (changed, entries);
    };
    let before: HashMap<NodeId, NodeId> = pairs(prev).iter().copied().collect();
    for &(k, v) in now {
        match before.get(&k) {
            Some(&old) if old == v => {}
            Some(&old) => {
                changed.push(json!(key_text(store, k)));
                if let (Node::Array(a), Node::Array(b)) = (store.node(old), store.node(v)) {
                    let idx: Vec<usize> = (0..b.len()).filter(|&i| a.get(i) != b.get(i)).collect();
                    entries.insert(
                        key_text(store, k).to_string(),
                        json!({"changed": idx, "old_len": a.len(), "new_len": b.len()}),
                    );
                }
            }
            None => changed.push(json!(key_text(store, k))),
        }
    }
    let now_keys: std::collections::HashSet<NodeId> = now.iter().map(|&(k, _)| k).collect();
    for &(k, _) in pairs(prev) {
        if !now_keys.contains(&k) {
            changed.push(json!(key_text(store, k)));
        }
    }
    (changed, entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::encode_list;

    #[test]
    fn reports_changed_fields_and_list_entries() {
        let docs: [&[u8]; 3] = [
            br#"{"a":1,"rows":[{"x":1},{"x":2}],"z":0}"#,
            br#"{"a":1,"rows":[{"x":1},{"x":3},{"x":4}],"z":0}"#,
            br#"{"a":2,"rows":[{"x":1},{"x":3},{"x":4}]}"#,
        ];
        let body = encode_list(&docs);
        let req = Request {
            params: b"",
            body: &body,
        };
        let out = process(&mut State::default(), &req).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["changed"], json!(["a", "rows", "z"]));
        assert_eq!(v[1]["changed"], json!(["rows"]));
        assert_eq!(
            v[1]["entries"]["rows"],
            json!({"changed": [1, 2], "old_len": 2, "new_len": 3})
        );
        assert_eq!(v[2]["changed"], json!(["a", "z"]));
        assert_eq!(v[1]["size"], json!(docs[1].len()));
        assert_ne!(v[0]["digest"], v[1]["digest"]);
    }
}
