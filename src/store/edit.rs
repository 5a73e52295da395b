//! Edits at paths of a stored value (layout.md §9.3 `OP_SNAP_PUSH_FIELDS`): a new value that
//! differs from an old one only along the edited paths, every other subtree shared with it.
//! What lets a client push the one discussion entry it changed instead of the whole snapshot.
#![forbid(unsafe_code)]

use serde::Deserialize;

use crate::store::builder::key_text;
use crate::store::error::StoreError;
use crate::store::node::{Node, NodeId};
use crate::store::node_store::NodeStore;

/// One step of an edit path: an object key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Step {
    /// An object key.
    Key(String),
    /// A list index.
    Index(u64),
}

/// `root` with `value` set at each `sets[i]` in order, then each path of `removes` removed.
/// Setting a missing object key adds it (after the others); setting list index `len` appends.
/// Removing a missing key is nothing. Takes over the caller's counts on `root` and `values`
/// and returns the new root holding one count (on error every count is released).
///
/// # Errors
/// [`StoreError::Malformed`] naming the path: an empty path, a step into a scalar, a key step
/// into a list or an index step into an object, an index beyond the list.
pub fn apply(
    store: &mut NodeStore,
    root: NodeId,
    sets: &[Vec<Step>],
    values: &[NodeId],
    removes: &[Vec<Step>],
) -> Result<NodeId, StoreError> {
    let mut root = root;
    let mut values = values.iter();
    let mut result = Ok(());
    for path in sets {
        let Some(&value) = values.next() else { break };
        match set_at(store, root, path, Some(value)) {
            Ok(new) => {
                store.decref(root);
                root = new;
            }
            Err(e) => {
                store.decref(value);
                result = Err(e);
                break;
            }
        }
    }
    for &v in values {
        store.decref(v);
    }
    if result.is_ok() {
        for path in removes {
            match set_at(store, root, path, None) {
                Ok(new) => {
                    store.decref(root);
                    root = new;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    match result {
        Ok(()) => Ok(root),
        Err(e) => {
            store.decref(root);
            Err(e)
        }
    }
}

fn bad_path(path: &[Step], why: &str) -> StoreError {
    let shown: Vec<String> = path
        .iter()
        .map(|s| match s {
            Step::Key(k) => format!("{k:?}"),
            Step::Index(i) => i.to_string(),
        })
        .collect();
    StoreError::malformed(format!("edit path [{}]: {why}", shown.join(", ")))
}

/// The value `node` with `value` set at `path` (`None`: the last step removed). Returns a new
/// id holding one count; `value`'s count is taken over only on success. Nothing is stored
/// before every step is checked, so an error leaves the store as it was.
fn set_at(
    store: &mut NodeStore,
    node: NodeId,
    path: &[Step],
    value: Option<NodeId>,
) -> Result<NodeId, StoreError> {
    let Some((step, rest)) = path.split_first() else {
        return Err(bad_path(path, "empty"));
    };
    match (store.node(node), step) {
        (Node::Object(pairs), Step::Key(key)) => {
            let pairs = pairs.to_vec();
            let at = pairs.iter().position(|&(k, _)| key_text(store, k) == key);
            let new_child = match (at, rest.is_empty(), value) {
                (Some(_), true, v) => v,
                (None, true, None) => {
                    store.incref(node);
                    return Ok(node);
                }
                (None, true, Some(v)) => Some(v),
                (Some(i), false, v) => Some(set_at(store, pairs[i].1, rest, v)?),
                (None, false, _) => return Err(bad_path(path, "no such key")),
            };
            let mut flat = Vec::with_capacity(2 * pairs.len() + 2);
            for (i, &(k, v)) in pairs.iter().enumerate() {
                if Some(i) == at {
                    if let Some(c) = new_child {
                        store.incref(k);
                        flat.extend([k, c]);
                    }
                } else {
                    store.incref(k);
                    store.incref(v);
                    flat.extend([k, v]);
                }
            }
            if let (None, Some(c)) = (at, new_child) {
                let k = store.intern_str(key);
                flat.extend([k, c]);
            }
            Ok(store.intern_flat_object(&flat))
        }
        (Node::Array(kids), Step::Index(i)) => {
            let kids = kids.to_vec();
            let i = usize::try_from(*i).unwrap_or(usize::MAX);
            let appending = i == kids.len();
            if i > kids.len() || (appending && (!rest.is_empty() || value.is_none())) {
                return Err(bad_path(path, "index beyond the list"));
            }
            let new_child = match (rest.is_empty(), value) {
                (true, v) => v,
                (false, v) => Some(set_at(store, kids[i], rest, v)?),
            };
            let mut out = Vec::with_capacity(kids.len() + 1);
            for (j, &c) in kids.iter().enumerate() {
                if j != i {
                    store.incref(c);
                    out.push(c);
                } else if let Some(n) = new_child {
                    out.push(n);
                }
            }
            if appending {
                out.extend(new_child);
            }
            Ok(store.intern_array(&out))
        }
        (Node::Object(_), Step::Index(_)) => Err(bad_path(path, "an index into an object")),
        (Node::Array(_), Step::Key(_)) => Err(bad_path(path, "a key into a list")),
        _ => Err(bad_path(path, "a step into a scalar")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::json::{decode, encode};

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    fn run(doc: &str, sets: &[(Vec<Step>, &str)], removes: &[Vec<Step>]) -> Result<String, String> {
        let mut st = NodeStore::new();
        let root = decode(&mut st, doc.as_bytes()).unwrap();
        let keep = decode(&mut st, doc.as_bytes()).unwrap();
        let before = st.stats().nodes;
        let values: Vec<NodeId> = sets
            .iter()
            .map(|(_, v)| decode(&mut st, v.as_bytes()).unwrap())
            .collect();
        let paths: Vec<Vec<Step>> = sets.iter().map(|(p, _)| p.clone()).collect();
        match apply(&mut st, root, &paths, &values, removes) {
            Ok(r) => Ok(String::from_utf8(encode(&st, r).unwrap()).unwrap()),
            Err(e) => {
                assert_eq!(st.stats().nodes, before, "an error releases everything");
                assert_eq!(encode(&st, keep).unwrap(), doc.as_bytes());
                Err(e.to_string())
            }
        }
    }

    #[test]
    fn sets_replace_add_and_append_then_removes_drop() {
        let doc = r#"{"d":[{"t":"a"},{"t":"b"}],"n":1,"x":0}"#;
        assert_eq!(
            run(
                doc,
                &[
                    (vec![key("d"), Step::Index(1), key("t")], r#""B""#),
                    (vec![key("d"), Step::Index(2)], r#"{"t":"c"}"#),
                    (vec![key("n")], "2"),
                    (vec![key("new")], "[]"),
                ],
                &[
                    vec![key("x")],
                    vec![key("missing")],
                    vec![key("d"), Step::Index(0)]
                ],
            ),
            Ok(r#"{"d":[{"t":"B"},{"t":"c"}],"n":2,"new":[]}"#.to_string())
        );
    }

    #[test]
    fn bad_paths_are_errors_that_change_nothing() {
        let doc = r#"{"d":[1],"n":1}"#;
        for (path, why) in [
            (vec![], "empty"),
            (vec![key("d"), Step::Index(2)], "index beyond the list"),
            (vec![key("d"), key("x")], "a key into a list"),
            (vec![Step::Index(0)], "an index into an object"),
            (vec![key("n"), key("x")], "a step into a scalar"),
            (vec![key("m"), key("x")], "no such key"),
        ] {
            let err = run(doc, &[(vec![key("n")], "5"), (path, "7")], &[]).unwrap_err();
            assert!(err.ends_with(why), "{err}");
        }
    }
}
