//! The history file payload (layout.md §9.3 "History files"): the name, capacity and cursor,
//! every node once (children before parents), then the entries; saved and loaded inside the
//! crash-safe [`envelope`]. The decoded history replaces nothing until it is
//! complete.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::store::builder::{shape_problem, MAX_DEPTH};
use crate::store::codec::Encoding;
use crate::store::error::StoreError;
use crate::store::file::envelope::{self, HISTORY_MAGIC};
use crate::store::file::payload::{put_text, put_u32, Reader};
use crate::store::history::{check_capacity, Entry, History};
use crate::store::node::{Node, NodeId};
use crate::store::node_store::NodeStore;

/// Saves `h` as `name` to `path` crash-safely; returns the file's size in bytes.
///
/// # Errors
/// As [`envelope::save`].
pub fn save(path: &Path, name: &str, h: &History) -> Result<usize, StoreError> {
    envelope::save(path, HISTORY_MAGIC, &encode(name, h))
}

/// Loads the history saved in `path`; returns its saved name and the history.
///
/// # Errors
/// As [`envelope::load`] and [`decode`].
pub fn load(path: &Path) -> Result<(String, History), StoreError> {
    envelope::load(path, HISTORY_MAGIC, decode)
}

const NO_LABEL: u32 = u32::MAX;

/// Serializes a history: its nodes once each (children before parents), then its entries.
pub fn encode(name: &str, h: &History) -> Vec<u8> {
    let mut out = Vec::new();
    put_text(&mut out, name);
    put_u32(&mut out, h.capacity());
    let pos = h.position();
    out.extend_from_slice(&pos.cursor.map_or(u32::MAX, |c| c as u32).to_le_bytes());
    let mut order: Vec<NodeId> = Vec::new();
    let mut seen: HashMap<NodeId, u32> = HashMap::new();
    for e in h.entries() {
        number(&h.store, e.root, &mut seen, &mut order);
    }
    put_u32(&mut out, order.len());
    put_u32(&mut out, h.len());
    for &id in &order {
        write_node(h.store.node(id), &seen, &mut out);
    }
    for e in h.entries() {
        out.extend_from_slice(&seen.get(&e.root).copied().unwrap_or(0).to_le_bytes());
        out.push(e.encoding.code());
        out.extend_from_slice(&e.time.to_le_bytes());
        out.extend_from_slice(&(e.size as u64).to_le_bytes());
        match &e.label {
            Some(l) => put_text(&mut out, l),
            None => out.extend_from_slice(&NO_LABEL.to_le_bytes()),
        }
    }
    out
}

/// Numbers `id` and its descendants in post-order (children first), with an explicit stack:
/// a stored value's depth is bounded, but the walk need not trust that.
fn number(store: &NodeStore, id: NodeId, seen: &mut HashMap<NodeId, u32>, order: &mut Vec<NodeId>) {
    // (node, children already pushed)
    let mut stack = vec![(id, false)];
    while let Some((id, kids_done)) = stack.pop() {
        if seen.contains_key(&id) {
            continue;
        }
        if kids_done {
            seen.insert(id, order.len() as u32);
            order.push(id);
            continue;
        }
        stack.push((id, true));
        let mut kids = Vec::new();
        store.node(id).for_each_child(|c| kids.push(c));
        // Reversed, so the first child is numbered first.
        stack.extend(kids.into_iter().rev().map(|c| (c, false)));
    }
}

fn write_node(node: &Node, seen: &HashMap<NodeId, u32>, out: &mut Vec<u8>) {
    let file_id = |c: &NodeId| seen.get(c).copied().unwrap_or(0).to_le_bytes();
    match node {
        Node::Null | Node::Free => out.push(0),
        Node::Bool(false) => out.push(1),
        Node::Bool(true) => out.push(2),
        Node::Int(i) => {
            out.push(3);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Node::BigInt { neg, digits } => {
            out.push(4);
            out.push(u8::from(*neg));
            put_u32(out, digits.len());
            for d in digits.iter() {
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
        Node::Float(f) => {
            out.push(5);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Node::Str(s) => {
            out.push(6);
            put_text(out, s);
        }
        Node::Bytes(b) => {
            out.push(7);
            put_u32(out, b.len());
            out.extend_from_slice(b);
        }
        Node::Array(a) => {
            out.push(8);
            put_u32(out, a.len());
            a.iter().for_each(|c| out.extend_from_slice(&file_id(c)));
        }
        Node::Object(o) => {
            out.push(9);
            put_u32(out, o.len());
            for (k, v) in o.iter() {
                out.extend_from_slice(&file_id(k));
                out.extend_from_slice(&file_id(v));
            }
        }
    }
}

/// Rebuilds a history from a payload; returns the saved name and the history.
///
/// # Errors
/// [`StoreError::Corrupt`] for any structural problem (a child id not defined before its parent, a
/// non-string key, a duplicate key, nesting beyond the decoders' limit, …).
pub fn decode(payload: &[u8]) -> Result<(String, History), StoreError> {
    let mut c = Reader::new(payload);
    let name = c.text()?.to_string();
    let capacity =
        check_capacity(u64::from(c.u32()?)).map_err(|e| StoreError::corrupt(e.to_string()))?;
    let cursor = c.u32()?;
    let node_count = c.count(1)?;
    let entry_count = c.count(26)?;
    let mut store = NodeStore::new();
    // `table[i]` holds one count on file node i until the end; `depth[i]` is its nesting.
    let mut table: Vec<NodeId> = Vec::with_capacity(node_count);
    let mut depth: Vec<u16> = Vec::with_capacity(node_count);
    let result = (|| {
        for _ in 0..node_count {
            let (node, d) = read_node(&mut c, &mut store, &table, &depth)?;
            let id = store.intern(node);
            table.push(id);
            depth.push(d);
            // A saved node can only be as deep and as large as a push accepts: a file that
            // holds more was not written by us, and writing it back would not be bounded.
            if let Some(why) = shape_problem(store.shape(id)) {
                return Err(StoreError::corrupt(why));
            }
        }
        let mut entries = Vec::with_capacity(entry_count);
        for _ in 0..entry_count {
            let root = *table
                .get(c.u32()? as usize)
                .ok_or_else(|| StoreError::corrupt("entry root is not a saved node"))?;
            let encoding =
                Encoding::from_code(c.u8()?).ok_or_else(|| StoreError::corrupt("bad encoding"))?;
            let time = f64::from_le_bytes(c.arr()?);
            let size = usize::try_from(c.u64()?).map_err(|_| StoreError::corrupt("bad size"))?;
            let label = match u32::from_le_bytes(c.arr()?) {
                NO_LABEL => None,
                n => {
                    let n = n as usize;
                    let b = c.take(n)?;
                    Some(
                        std::str::from_utf8(b)
                            .map_err(|_| StoreError::corrupt("label is not utf-8"))?
                            .to_string(),
                    )
                }
            };
            let is_obj = matches!(store.node(root), Node::Object(_));
            let is_blob = matches!(store.node(root), Node::Bytes(_));
            if (encoding == Encoding::Bytes && !is_blob) || (encoding != Encoding::Bytes && !is_obj)
            {
                return Err(StoreError::corrupt(
                    "entry root does not match its encoding",
                ));
            }
            store.incref(root);
            entries.push(Entry {
                root,
                encoding,
                label,
                time,
                size,
            });
        }
        if c.at() != payload.len() {
            return Err(StoreError::corrupt("bytes left over after the entries"));
        }
        Ok(entries)
    })();
    for &id in &table {
        store.decref(id);
    }
    let entries = result?;
    let cursor = if cursor == u32::MAX {
        0
    } else {
        cursor as usize
    };
    if !entries.is_empty() && cursor >= entries.len() {
        return Err(StoreError::corrupt("cursor beyond the entries"));
    }
    Ok((name, History::from_parts(store, entries, cursor, capacity)?))
}

fn read_node(
    c: &mut Reader<'_>,
    store: &mut NodeStore,
    table: &[NodeId],
    depth: &[u16],
) -> Result<(Node, u16), StoreError> {
    let child = |c: &mut Reader<'_>, d: &mut u16| -> Result<NodeId, StoreError> {
        let i = c.u32()? as usize;
        let id = *table
            .get(i)
            .ok_or_else(|| StoreError::corrupt("child defined after its parent"))?;
        *d = (*d).max(depth.get(i).copied().unwrap_or(0) + 1);
        Ok(id)
    };
    let mut d = 0u16;
    let node = match c.u8()? {
        0 => Node::Null,
        1 => Node::Bool(false),
        2 => Node::Bool(true),
        3 => Node::Int(i64::from_le_bytes(c.arr()?)),
        4 => {
            let neg = c.u8()? != 0;
            let n = c.count(2)?;
            let mut digits = Vec::with_capacity(n);
            for _ in 0..n {
                let v = u16::from_le_bytes(c.arr()?);
                if v >= 1 << 15 {
                    return Err(StoreError::corrupt("big-int digit out of range"));
                }
                digits.push(v);
            }
            Node::BigInt {
                neg,
                digits: digits.into(),
            }
        }
        5 => Node::Float(f64::from_le_bytes(c.arr()?)),
        6 => Node::Str(c.text()?.into()),
        7 => {
            let n = c.count(1)?;
            Node::Bytes(c.take(n)?.into())
        }
        8 => {
            let n = c.count(4)?;
            let kids: Result<Vec<_>, _> = (0..n).map(|_| child(c, &mut d)).collect();
            Node::Array(kids?.into())
        }
        9 => {
            let n = c.count(8)?;
            let mut pairs = Vec::with_capacity(n);
            let mut keys = HashSet::with_capacity(n);
            for _ in 0..n {
                let k = child(c, &mut d)?;
                let v = child(c, &mut d)?;
                if !matches!(store.node(k), Node::Str(_)) || !keys.insert(k) {
                    return Err(StoreError::corrupt("object key is not a unique string"));
                }
                pairs.push((k, v));
            }
            Node::Object(pairs.into())
        }
        t => return Err(StoreError::corrupt(format!("unknown node tag {t}"))),
    };
    if usize::from(d) > MAX_DEPTH {
        return Err(StoreError::corrupt("nesting deeper than 512"));
    }
    // The new node takes a count on each child (the table keeps its own).
    node.for_each_child(|k| store.incref(k));
    Ok((node, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::file::envelope::{frame, unframe, HEADER_BYTES, LOG_MAGIC};

    fn sample() -> History {
        let mut h = History::new(10);
        for i in 0..5 {
            let doc = format!(
                r#"{{"n":{i},"rows":[{{"a":"x"}},{{"a":"y"}}],"big":123456789012345678901234567890}}"#
            );
            h.push(Encoding::Json, doc.as_bytes(), Some(format!("l{i}")), 1.5)
                .unwrap();
        }
        h.push(Encoding::Bytes, b"\x00blob", None, 2.5).unwrap();
        h.undo();
        h
    }

    #[test]
    fn histories_round_trip_with_sharing_and_cursor() {
        let h = sample();
        let file = frame(HISTORY_MAGIC, &encode("ui", &h));
        let (name, back) = decode(unframe(HISTORY_MAGIC, &file).unwrap()).unwrap();
        assert_eq!(name, "ui");
        assert_eq!(back.position(), h.position());
        assert_eq!(back.store.stats().nodes, h.store.stats().nodes);
        for i in 0..h.len() {
            assert_eq!(back.encode(i, None).unwrap(), h.encode(i, None).unwrap());
            assert_eq!(back.entry(i).unwrap().label, h.entry(i).unwrap().label);
            assert_eq!(back.entry(i).unwrap().time, h.entry(i).unwrap().time);
        }
    }

    #[test]
    fn entry_sizes_adding_up_past_a_u64_are_refused() {
        // Found by the history_file fuzz target: two entries of 2^63 bytes each.
        let mut h = History::new(4);
        h.push(Encoding::Json, b"{\"a\":1}", None, 1.0).unwrap();
        h.push(Encoding::Json, b"{\"a\":2}", None, 2.0).unwrap();
        let mut payload = encode("ui", &h);
        // Each entry without a label ends the payload: root u32, encoding u8, time f64,
        // size u64, label_len u32 (layout.md §9.3).
        const ENTRY: usize = 4 + 1 + 8 + 8 + 4;
        let end = payload.len();
        for at in [end - 2 * ENTRY + 13, end - ENTRY + 13] {
            payload[at..at + 8].copy_from_slice(&(1u64 << 63).to_le_bytes());
        }
        let e = decode(&payload).unwrap_err();
        assert!(
            matches!(e, StoreError::Corrupt(ref m) if m.contains("add up")),
            "{e}"
        );
        // One such entry alone is a (huge) history's own business: it loads.
        let at = end - ENTRY + 13;
        payload[at..at + 8].copy_from_slice(&7u64.to_le_bytes());
        let (_, back) = decode(&payload).unwrap();
        assert_eq!(back.logical_bytes(), (1usize << 63) + 7);
    }

    #[test]
    fn torn_and_flipped_files_are_refused() {
        let file = frame(HISTORY_MAGIC, &encode("ui", &sample()));
        for cut in [0, 10, HEADER_BYTES, file.len() / 2, file.len() - 1] {
            let e = unframe(HISTORY_MAGIC, &file[..cut]).unwrap_err();
            assert!(matches!(e, StoreError::Corrupt(_)), "cut {cut}: {e}");
        }
        for at in (HEADER_BYTES..file.len()).step_by(7) {
            let mut bad = file.clone();
            bad[at] ^= 0x10;
            let e = unframe(HISTORY_MAGIC, &bad).unwrap_err();
            assert!(e.to_string().contains("checksum"), "{e}");
        }
        assert!(unframe(LOG_MAGIC, &file)
            .unwrap_err()
            .to_string()
            .contains("magic"));
    }

    #[test]
    fn hostile_payloads_with_valid_checksums_are_refused() {
        // A forward child reference, an int key, and a truncated entry: each is `StoreError::Corrupt`.
        let mut p = Vec::new();
        put_text(&mut p, "x");
        put_u32(&mut p, 10);
        p.extend_from_slice(&0u32.to_le_bytes());
        put_u32(&mut p, 1);
        put_u32(&mut p, 0);
        p.extend_from_slice(&[8, 1, 0, 0, 0, 5, 0, 0, 0]);
        assert!(matches!(decode(&p).unwrap_err(), StoreError::Corrupt(_)));
        let good = encode("ui", &sample());
        for cut in (0..good.len()).step_by(3) {
            assert!(decode(&good[..cut]).is_err(), "cut {cut}");
        }
    }
}
