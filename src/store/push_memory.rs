//! [`PushMemory`]: what a history remembers of its last marshal push, so the next push reads
//! again only the dicts whose bytes changed (a GUI pushes its whole state after each edit, and
//! most of it is the same: layout.md §9.3 "Storage").
//!
//! It is a [`Recall::hashed`] memory of the last push's dicts and reference table, whose
//! values are node ids; it holds one count on that push's root, so every node it may hand
//! back stays alive (the dicts and references it names are all inside that value), and at
//! most that one value beyond what the entries hold (after an undo and a `push_fields`, the
//! last marshal push may have left the entries; its nodes are still counted in the store's
//! stats). A push that fails, or one in another encoding, makes it forget
//! ([`PushMemory::release`]); the next push is then read in full.
#![forbid(unsafe_code)]

use crate::store::builder::Builder;
use crate::store::codec::marshal;
use crate::store::codec::object_only;
use crate::store::codec::recall::Recall;
use crate::store::error::StoreError;
use crate::store::node::NodeId;
use crate::store::node_store::NodeStore;

/// The memory of a history's last marshal push.
#[derive(Debug)]
pub struct PushMemory {
    recall: Recall<NodeId>,
    refs: Vec<Option<NodeId>>,
    /// The last push's root, holding one count.
    held: Option<NodeId>,
}

impl Default for PushMemory {
    fn default() -> Self {
        PushMemory {
            recall: Recall::hashed(),
            refs: Vec::new(),
            held: None,
        }
    }
}

impl PushMemory {
    /// Decodes a marshal snapshot (which must be a dict) into `store`, taking over the dicts
    /// that did not change since the last push; returns its root holding one count, as
    /// [`crate::store::codec::decode`] would (the same node: nodes are content-addressed).
    ///
    /// # Errors
    /// As [`crate::store::codec::decode`]; the memory is then forgotten.
    pub fn decode(&mut self, store: &mut NodeStore, bytes: &[u8]) -> Result<NodeId, StoreError> {
        let read = marshal::read_recalling(
            bytes,
            None,
            Builder::new(store),
            &mut self.refs,
            &mut self.recall,
        );
        let root = read
            .and_then(Builder::finish)
            .and_then(|root| object_only(store, root));
        match root {
            Ok(root) => {
                self.recall.settle(&mut self.refs);
                // Released after the read: what the last push held is what this one recalled.
                store.incref(root);
                if let Some(old) = self.held.replace(root) {
                    store.decref(old);
                }
                Ok(root)
            }
            Err(e) => {
                self.release(store);
                Err(e)
            }
        }
    }

    /// Forgets the last push and releases its root's count.
    pub fn release(&mut self, store: &mut NodeStore) {
        self.recall.clear();
        self.refs.clear();
        if let Some(old) = self.held.take() {
            store.decref(old);
        }
    }

    /// Heap bytes it holds besides the nodes.
    pub fn heap_bytes(&self) -> usize {
        self.recall.heap_bytes() + self.refs.capacity() * std::mem::size_of::<Option<NodeId>>()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::codec::random_snapshots::{edit, entry, marshal, word, Rng};
    use crate::store::codec::{self, Encoding};

    /// Marshal bytes of `doc` as the worker's encoder writes them (each repeated str flagged
    /// once, then named by `r`), so an unchanged dict has the same bytes from push to push,
    /// as with CPython's `marshal.dumps`.
    fn encoded(doc: &serde_json::Value) -> Vec<u8> {
        let mut scratch = NodeStore::new();
        let id = codec::json::decode(&mut scratch, doc.to_string().as_bytes()).unwrap();
        codec::marshal::encode(&scratch, id).unwrap()
    }

    /// What a plain decode of `bytes` into the same store gives: the same node (nodes are
    /// content-addressed) or the same error.
    fn plain(store: &mut NodeStore, bytes: &[u8]) -> Result<NodeId, String> {
        let id = codec::decode(store, Encoding::Marshal, bytes, true).map_err(|e| e.to_string())?;
        store.decref(id);
        Ok(id)
    }

    #[test]
    fn pushes_read_through_the_memory_are_the_nodes_a_plain_decode_gives() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut store = NodeStore::new();
        let mut memory = PushMemory::default();
        // The entries of a history of capacity `kept`: older roots are released as it goes,
        // so their nodes are freed and their ids reused.
        let mut roots = std::collections::VecDeque::new();
        let (mut recalled, mut total) = (0, 0);
        for round in 0..200 {
            let kept = 1 + rng.below(4);
            // Random references (equal bytes may name other values), or steady ones.
            let random_refs = rng.one_in(2);
            let mut doc = json!({
                "discussion": (0..rng.below(12)).map(|_| entry(&mut rng)).collect::<Vec<_>>(),
                "files": (0..rng.below(6)).map(|_| entry(&mut rng)).collect::<Vec<_>>(),
                "title": word(&mut rng),
            });
            for _ in 0..10 {
                let mut bytes = if random_refs {
                    marshal(&doc, &mut rng)
                } else {
                    encoded(&doc)
                };
                // Now and then a few bytes changed: the same error, or the same value.
                if rng.one_in(6) {
                    for _ in 0..1 + rng.below(2) {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next_u64() as u8;
                    }
                }
                let got = memory.decode(&mut store, &bytes).map_err(|e| e.to_string());
                total += bytes.len();
                recalled += memory.recall.recalled();
                assert_eq!(got, plain(&mut store, &bytes), "round {round}");
                if let Ok(root) = got {
                    roots.push_back(root);
                    while roots.len() > kept {
                        store.decref(roots.pop_front().unwrap());
                    }
                }
                if !rng.one_in(4) {
                    edit(&mut doc, &mut rng);
                }
            }
            if rng.one_in(10) {
                memory.release(&mut store);
            }
        }
        // It does take dicts over (the equality above would hold if it never did).
        assert!(
            recalled * 10 > total,
            "{recalled} of {total} bytes recalled"
        );
        // Nothing leaks: once the entries and the memory let go, the store is empty.
        roots.drain(..).for_each(|r| store.decref(r));
        memory.release(&mut store);
        assert_eq!(store.stats().nodes, 0);
    }

    #[test]
    fn a_gui_edit_reads_again_only_what_it_changed() {
        let mut doc = json!({
            "discussion": (0..50).map(|i| json!({
                "role": if i % 2 == 0 { "user" } else { "assistant" },
                "text": format!("message {i} ").repeat(20),
                "meta": {"tokens": i, "model": "m"},
            })).collect::<Vec<_>>(),
            "files": (0..10).map(|i| json!({"path": format!("f{i}.py"), "on": true})).collect::<Vec<_>>(),
            "title": "t",
        });
        let mut store = NodeStore::new();
        let mut memory = PushMemory::default();
        let mut push = |doc: &serde_json::Value| {
            let bytes = encoded(doc);
            let root = memory.decode(&mut store, &bytes).unwrap();
            assert_eq!(plain(&mut store, &bytes), Ok(root));
            (bytes.len(), memory.recall.recalled())
        };
        let (before, _) = push(&doc);
        // Append an entry; edit one entry's text; toggle a file; change a scalar.
        let appended = json!({"role": "user", "text": "new", "meta": {"tokens": 0, "model": "m"}});
        doc["discussion"].as_array_mut().unwrap().push(appended);
        let (_, recalled) = push(&doc);
        assert!(recalled * 10 > before * 9, "append: {recalled} of {before}");
        doc["discussion"][7]["text"] = json!("edited");
        let (len, recalled) = push(&doc);
        assert!(recalled * 10 > len * 8, "edit: {recalled} of {len}");
        doc["files"][3]["on"] = json!(false);
        doc["title"] = json!("u");
        let (len, recalled) = push(&doc);
        assert!(recalled * 10 > len * 9, "toggle: {recalled} of {len}");
    }

    #[test]
    fn a_failed_push_forgets_and_what_is_not_a_dict_is_refused() {
        let mut store = NodeStore::new();
        let mut memory = PushMemory::default();
        let doc = json!({"a": [{"x": "y"}, {"x": "z"}]});
        let bytes = encoded(&doc);
        let root = memory.decode(&mut store, &bytes).unwrap();
        assert_eq!(memory.decode(&mut store, &bytes).unwrap(), root);
        assert!(memory.recall.recalled() > 0);
        let e = memory.decode(&mut store, b"[\x00\x00\x00\x00").unwrap_err();
        assert_eq!(
            e.to_string(),
            "snapshot must be an object (a dict), not list"
        );
        assert!(memory.held.is_none(), "a failed push releases the last one");
        assert_eq!(memory.decode(&mut store, &bytes).unwrap(), root);
        assert_eq!(memory.recall.recalled(), 0, "read in full after a failure");
        for _ in 0..3 {
            store.decref(root);
        }
        memory.release(&mut store);
        assert_eq!(store.stats().nodes, 0);
    }
}
