//! A snapshot history: a bounded undo/redo list of snapshots over one content-addressed node
//! store (layout.md §9.3 "History semantics").
//!
//! Entries are positions `0..len` (0 = oldest kept). The cursor names the current snapshot.
//! A push drops every entry after the cursor (the redo branch), appends, moves the cursor to
//! the new entry and evicts the oldest entries while `len > capacity`. Undo at the oldest
//! entry and redo at the newest do not move (the op says so); jump to a missing index is an
//! error. Dropping an entry releases its root's count, so memory no other entry shares is freed.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::codec::{self, Encoding};
use crate::store::diff;
use crate::store::edit::{self, Step};
use crate::store::error::StoreError;
use crate::store::node::{Node, NodeId};
use crate::store::node_store::{NodeStore, StoreStats};
use crate::store::patch::{self, Patch};
use crate::store::push_memory::PushMemory;

/// Capacity of a history created without one.
pub const DEFAULT_CAPACITY: usize = 100;
/// Largest capacity a client may ask for.
pub const MAX_CAPACITY: usize = 1 << 20;

/// One snapshot in a history.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Root node (holds one count).
    pub root: NodeId,
    /// Encoding it was pushed with (the default for reading it back).
    pub encoding: Encoding,
    /// Client label, if any.
    pub label: Option<String>,
    /// Push time, seconds since the Unix epoch (worker clock).
    pub time: f64,
    /// Bytes the client sent for it.
    pub size: usize,
}

impl Entry {
    /// An entry for `root` (whose count it takes over), pushed as `encoding` at `time`.
    pub fn new(
        root: NodeId,
        encoding: Encoding,
        label: Option<String>,
        time: f64,
        size: usize,
    ) -> Entry {
        Entry {
            root,
            encoding,
            label,
            time,
            size,
        }
    }
}

/// A bounded undo/redo history.
#[derive(Debug)]
pub struct History {
    /// The node store every entry's value lives in.
    pub store: NodeStore,
    entries: VecDeque<Entry>,
    cursor: usize,
    capacity: usize,
    logical_bytes: usize,
    /// The last marshal push, so the next one reads only the dicts that changed.
    memory: PushMemory,
}

/// Where a patch move goes (see [`History::move_patch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// One step back.
    Undo,
    /// One step forward.
    Redo,
    /// To this index.
    Jump(u64),
}

/// Where the cursor stands after an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The cursor, `None` when the history is empty.
    pub cursor: Option<usize>,
    /// Number of entries.
    pub len: usize,
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Checks a client-supplied capacity.
///
/// # Errors
/// [`StoreError::CapacityOutOfRange`] outside `1..=MAX_CAPACITY`.
pub fn check_capacity(capacity: u64) -> Result<usize, StoreError> {
    usize::try_from(capacity)
        .ok()
        .filter(|c| (1..=MAX_CAPACITY).contains(c))
        .ok_or(StoreError::CapacityOutOfRange {
            capacity,
            max: MAX_CAPACITY,
        })
}

impl History {
    /// An empty history keeping at most `capacity` (≥ 1) snapshots.
    pub fn new(capacity: usize) -> History {
        History {
            store: NodeStore::new(),
            entries: VecDeque::new(),
            cursor: 0,
            capacity: capacity.max(1),
            logical_bytes: 0,
            memory: PushMemory::default(),
        }
    }

    /// Rebuilds a history from parts (persistence); roots must hold their counts in `store`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the entries' sizes do not add up within a `usize` (the
    /// history's `logical_bytes`; layout.md §9.3 "History files").
    pub fn from_parts(
        store: NodeStore,
        entries: Vec<Entry>,
        cursor: usize,
        capacity: usize,
    ) -> Result<History, StoreError> {
        let logical_bytes = entries
            .iter()
            .try_fold(0usize, |sum, e| sum.checked_add(e.size))
            .ok_or_else(|| StoreError::corrupt("entry sizes add up to more than 2^64 - 1"))?;
        let mut h = History {
            store,
            entries: entries.into(),
            cursor: 0,
            capacity: capacity.max(1),
            logical_bytes,
            memory: PushMemory::default(),
        };
        h.cursor = cursor.min(h.entries.len().saturating_sub(1));
        h.evict();
        Ok(h)
    }

    /// Number of snapshots.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the history holds no snapshot.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Most snapshots kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sum of the sizes of the snapshots held, as the client sent them.
    pub fn logical_bytes(&self) -> usize {
        self.logical_bytes
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The entry at position `i`.
    pub fn entry(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    /// Cursor and length.
    pub fn position(&self) -> Position {
        Position {
            cursor: (!self.entries.is_empty()).then_some(self.cursor),
            len: self.entries.len(),
        }
    }

    /// Sets the capacity, evicting the oldest snapshots beyond it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.evict();
    }

    /// Decodes and appends one snapshot pushed at `time` (seconds since the Unix epoch); see
    /// the module doc for the redo branch and eviction. A marshal push after a marshal push
    /// reads again only the dicts that changed ([`PushMemory`]); the entry is the same.
    ///
    /// # Errors
    /// The decoder's error; the history's entries are unchanged.
    pub fn push(
        &mut self,
        enc: Encoding,
        bytes: &[u8],
        label: Option<String>,
        time: f64,
    ) -> Result<(), StoreError> {
        let root = self.decode(enc, bytes)?;
        self.push_root(Entry::new(root, enc, label, time, bytes.len()));
        Ok(())
    }

    /// Decodes one pushed snapshot (an object unless opaque); returns its root holding one
    /// count. Marshal goes through the [`PushMemory`]; another encoding makes it forget.
    fn decode(&mut self, enc: Encoding, bytes: &[u8]) -> Result<NodeId, StoreError> {
        if enc == Encoding::Marshal {
            return self.memory.decode(&mut self.store, bytes);
        }
        self.memory.release(&mut self.store);
        codec::decode(&mut self.store, enc, bytes, enc != Encoding::Bytes)
    }

    /// Decodes every snapshot of `items`, then pushes them all at `time` (or none), labelled
    /// by `labels[i]` when given.
    ///
    /// # Errors
    /// [`StoreError::InSnapshot`] naming the first snapshot that does not decode; the history
    /// is unchanged.
    pub fn push_many(
        &mut self,
        enc: Encoding,
        items: &[&[u8]],
        labels: Option<&[Option<String>]>,
        time: f64,
    ) -> Result<(), StoreError> {
        let mut roots = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match self.decode(enc, item) {
                Ok(root) => roots.push(root),
                Err(error) => {
                    for r in roots {
                        self.store.decref(r);
                    }
                    return Err(StoreError::InSnapshot {
                        index,
                        error: Box::new(error),
                    });
                }
            }
        }
        for (i, (root, item)) in roots.into_iter().zip(items).enumerate() {
            let label = labels.and_then(|l| l.get(i).cloned().flatten());
            self.push_root(Entry::new(root, enc, label, time, item.len()));
        }
        Ok(())
    }

    /// Pushes a snapshot built from the current one by [`edit::apply`]: `bytes` holds a list
    /// of values, the `i`-th set at `sets[i]` (a top-level key is a one-step path; a list
    /// index equal to the list's length appends), then the `removes` paths are removed. Every
    /// subtree not on an edited path is the current snapshot's, shared. On an empty history
    /// the current snapshot is taken to be `{}`. The entry's `size` is `bytes.len()`.
    ///
    /// # Errors
    /// The decoder's error (the body must be a list with one value per path, else
    /// [`StoreError::Malformed`]); [`edit::apply`]'s; [`StoreError::OpaqueInDiff`] when the
    /// current snapshot was pushed as opaque bytes. The history is unchanged.
    pub fn push_fields(
        &mut self,
        enc: Encoding,
        bytes: &[u8],
        sets: &[Vec<Step>],
        removes: &[Vec<Step>],
        label: Option<String>,
        time: f64,
    ) -> Result<(), StoreError> {
        let base = match self.position().cursor {
            Some(c) if self.entries[c].encoding == Encoding::Bytes => {
                return Err(StoreError::OpaqueInDiff(c as u64))
            }
            Some(c) => {
                let root = self.entries[c].root;
                self.store.incref(root);
                root
            }
            None => self.store.intern_flat_object(&[]),
        };
        let root = self.edited(base, enc, bytes, sets, removes)?;
        self.push_root(Entry::new(root, enc, label, time, bytes.len()));
        Ok(())
    }

    /// `base` (whose count this takes over) edited by the values in `bytes`; see
    /// [`History::push_fields`].
    fn edited(
        &mut self,
        base: NodeId,
        enc: Encoding,
        bytes: &[u8],
        sets: &[Vec<Step>],
        removes: &[Vec<Step>],
    ) -> Result<NodeId, StoreError> {
        let list = match codec::decode(&mut self.store, enc, bytes, false) {
            Ok(list) => list,
            Err(e) => {
                self.store.decref(base);
                return Err(e);
            }
        };
        let values: Vec<NodeId> = match self.store.node(list) {
            Node::Array(kids) if kids.len() == sets.len() => kids.to_vec(),
            other => {
                let what = match other {
                    Node::Array(kids) => format!("a list of {}", kids.len()),
                    other => other.type_name().to_string(),
                };
                self.store.decref(list);
                self.store.decref(base);
                return Err(StoreError::malformed(format!(
                    "push_fields needs a list of {} values (one per path), not {what}",
                    sets.len()
                )));
            }
        };
        // `apply` takes over a count on each value; the list gives up its own.
        values.iter().for_each(|&v| self.store.incref(v));
        self.store.decref(list);
        edit::apply(&mut self.store, base, sets, &values, removes)
    }

    /// Appends an entry whose root count the caller hands over.
    pub fn push_root(&mut self, entry: Entry) {
        if !self.entries.is_empty() {
            self.truncate_after(self.cursor);
        }
        self.logical_bytes = self.logical_bytes.saturating_add(entry.size);
        self.entries.push_back(entry);
        self.cursor = self.entries.len() - 1;
        self.evict();
    }

    fn truncate_after(&mut self, keep: usize) {
        while self.entries.len() > keep + 1 {
            if let Some(e) = self.entries.pop_back() {
                self.release(e);
            }
        }
    }

    fn evict(&mut self) {
        while self.entries.len() > self.capacity {
            if let Some(e) = self.entries.pop_front() {
                self.release(e);
            }
            self.cursor = self.cursor.saturating_sub(1);
        }
    }

    fn release(&mut self, e: Entry) {
        self.logical_bytes = self.logical_bytes.saturating_sub(e.size);
        self.store.decref(e.root);
    }

    /// Moves the cursor one back; false (no move) at the oldest entry or when empty.
    pub fn undo(&mut self) -> bool {
        self.move_to(Move::Undo).unwrap_or(false)
    }

    /// Moves the cursor one forward; false (no move) at the newest entry or when empty.
    pub fn redo(&mut self) -> bool {
        self.move_to(Move::Redo).unwrap_or(false)
    }

    /// Moves the cursor to `i`.
    ///
    /// # Errors
    /// [`StoreError::IndexOutOfRange`] when `i >= len`.
    pub fn jump(&mut self, i: u64) -> Result<(), StoreError> {
        self.move_to(Move::Jump(i)).map(drop)
    }

    /// Moves the cursor like [`History::undo`], [`History::redo`] or [`History::jump`] and
    /// returns the patch turning the snapshot that was current into the one now current, or
    /// `None` when an undo or redo did not move. The patch costs what changed: subtrees the
    /// two snapshots share are skipped by node id.
    ///
    /// # Errors
    /// [`StoreError::IndexOutOfRange`] for a jump; [`StoreError::OpaqueInDiff`] when either
    /// snapshot is opaque; the encoder's error. The cursor moves only on success.
    pub fn move_patch(&mut self, to: Move) -> Result<Option<Patch>, StoreError> {
        self.move_with(to, patch::patch)
    }

    /// [`History::move_patch`] with the patch written by `make` (e.g.
    /// [`patch::marshal_patch`], the `compact` form).
    ///
    /// # Errors
    /// As [`History::move_patch`].
    pub fn move_with<T>(
        &mut self,
        to: Move,
        make: impl FnOnce(&NodeStore, NodeId, NodeId) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let p = self.peek_with(to, make)?;
        if p.is_some() {
            self.move_to(to)?;
        }
        Ok(p)
    }

    /// The patch [`History::move_patch`] would return, without moving the cursor (so a
    /// client can fetch the next undo's patch ahead of time).
    ///
    /// # Errors
    /// As [`History::move_patch`].
    pub fn peek_patch(&self, to: Move) -> Result<Option<Patch>, StoreError> {
        self.peek_with(to, patch::patch)
    }

    /// [`History::peek_patch`] with the patch written by `make`.
    ///
    /// # Errors
    /// As [`History::move_patch`].
    pub fn peek_with<T>(
        &self,
        to: Move,
        make: impl FnOnce(&NodeStore, NodeId, NodeId) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let Some((from, target)) = self.target(to)? else {
            return Ok(None);
        };
        let (a, b) = (self.diffable_root(from)?, self.diffable_root(target)?);
        make(&self.store, a, b).map(Some)
    }

    /// Moves the cursor as [`History::move_patch`] does, computing no patch; false when an
    /// undo or redo did not move.
    ///
    /// # Errors
    /// [`StoreError::IndexOutOfRange`] for a jump.
    pub fn move_to(&mut self, to: Move) -> Result<bool, StoreError> {
        let Some((_, target)) = self.target(to)? else {
            return Ok(false);
        };
        self.cursor = target;
        Ok(true)
    }

    /// Moves the cursor `by` steps at once: back (undos) when negative, forward (redos) when
    /// positive, nowhere when 0.
    ///
    /// # Errors
    /// [`StoreError::IndexOutOfRange`] (naming the index it would reach) when the history
    /// has fewer steps that way; the cursor is then unchanged.
    pub fn move_by(&mut self, by: i64) -> Result<(), StoreError> {
        if by == 0 {
            return Ok(());
        }
        let cursor = self.position().cursor.map_or(-1, |c| c as i64);
        let target = cursor.saturating_add(by);
        if self.entries.is_empty() || target < 0 || target >= self.entries.len() as i64 {
            return Err(StoreError::IndexOutOfRange {
                index: target.max(0) as u64,
                len: self.entries.len(),
            });
        }
        self.cursor = target as usize;
        Ok(())
    }

    /// The indices of the entries the way `to` goes (`Move::Undo` back, `Move::Redo` forward),
    /// from the one `skip` steps from the cursor on, to the history's end; empty when that one
    /// is past an end (or for a jump).
    pub fn path_ahead(&self, to: Move, skip: usize) -> impl Iterator<Item = usize> {
        let len = self.entries.len();
        let start = self.position().cursor.and_then(|at| match to {
            Move::Undo => at.checked_sub(skip),
            Move::Redo => at.checked_add(skip).filter(|&i| i < len),
            Move::Jump(_) => None,
        });
        std::iter::successors(start, move |&at| match to {
            Move::Undo => at.checked_sub(1),
            _ => Some(at + 1).filter(|&i| i < len),
        })
    }

    /// The roots of the `count` steps the way `to` goes (`Move::Undo` or `Move::Redo`) that
    /// follow the first `skip` from the cursor, as `(from, to)` pairs in order: fewer where the
    /// history ends or where a snapshot on the way is opaque (none for a jump).
    pub fn steps_ahead(&self, to: Move, skip: usize, count: usize) -> Vec<(NodeId, NodeId)> {
        let path: Vec<usize> = self
            .path_ahead(to, skip)
            .take(count.saturating_add(1))
            .collect();
        path.windows(2)
            .map_while(|w| {
                Some((
                    self.diffable_root(w[0]).ok()?,
                    self.diffable_root(w[1]).ok()?,
                ))
            })
            .collect()
    }

    /// The compact patches ([`patch::marshal_patches`]) of the `count` steps the way `to`
    /// goes after the first `skip` from the cursor ([`History::steps_ahead`]), at most
    /// `max_bytes` of them but the first; `None` when there is no such step.
    ///
    /// # Errors
    /// [`StoreError::Unencodable`] when a value cannot be written as marshal.
    pub fn patches_ahead(
        &self,
        to: Move,
        skip: usize,
        count: usize,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let steps = self.steps_ahead(to, skip, count);
        if steps.is_empty() {
            return Ok(None);
        }
        patch::marshal_patches(&self.store, &steps, max_bytes).map(Some)
    }

    /// `(cursor, target)` of a move, `None` when an undo or redo would not move.
    fn target(&self, to: Move) -> Result<Option<(usize, usize)>, StoreError> {
        let Some(from) = self.position().cursor else {
            return match to {
                Move::Jump(i) => Err(StoreError::IndexOutOfRange { index: i, len: 0 }),
                _ => Ok(None),
            };
        };
        let target = match to {
            Move::Undo if from == 0 => return Ok(None),
            Move::Undo => from - 1,
            Move::Redo if from + 1 >= self.entries.len() => return Ok(None),
            Move::Redo => from + 1,
            Move::Jump(i) => self.check_index(i)?,
        };
        Ok(Some((from, target)))
    }

    /// Checks that `i` names an entry.
    ///
    /// # Errors
    /// [`StoreError::IndexOutOfRange`] naming the valid range.
    pub fn check_index(&self, i: u64) -> Result<usize, StoreError> {
        usize::try_from(i)
            .ok()
            .filter(|&i| i < self.entries.len())
            .ok_or(StoreError::IndexOutOfRange {
                index: i,
                len: self.entries.len(),
            })
    }

    /// Encodes entry `i` in `want` (default: its push encoding).
    ///
    /// # Errors
    /// [`StoreError::IndexOutOfRange`], or the encoder's error.
    pub fn encode(
        &self,
        i: usize,
        want: Option<Encoding>,
    ) -> Result<(Encoding, Vec<u8>), StoreError> {
        let mut out = Vec::new();
        let enc = self.encode_into(i, want, &mut out)?;
        Ok((enc, out))
    }

    /// [`History::encode`], appended to `out`; returns the encoding written.
    ///
    /// # Errors
    /// As [`History::encode`]; `out` may then hold part of the snapshot.
    pub fn encode_into(
        &self,
        i: usize,
        want: Option<Encoding>,
        out: &mut Vec<u8>,
    ) -> Result<Encoding, StoreError> {
        let e = self.check_index(i as u64).map(|i| &self.entries[i])?;
        let want = want.unwrap_or(e.encoding);
        codec::encode_into(&self.store, e.root, e.encoding, want, out)?;
        Ok(want)
    }

    /// The RFC 6902 patch turning entry `a` into entry `b` (see [`diff::diff`]).
    ///
    /// # Errors
    /// [`StoreError::IndexOutOfRange`]; [`StoreError::OpaqueInDiff`] for an entry pushed as
    /// opaque bytes; the encoder's error.
    pub fn diff(&self, a: u64, b: u64) -> Result<Vec<u8>, StoreError> {
        let a = self.diffable_root(self.check_index(a)?)?;
        let b = self.diffable_root(self.check_index(b)?)?;
        diff::diff(&self.store, a, b)
    }

    /// The root of entry `i` (a valid index), or [`StoreError::OpaqueInDiff`] when it was
    /// pushed as opaque bytes.
    fn diffable_root(&self, i: usize) -> Result<NodeId, StoreError> {
        let e = &self.entries[i];
        if e.encoding == Encoding::Bytes {
            return Err(StoreError::OpaqueInDiff(i as u64));
        }
        Ok(e.root)
    }

    /// Bytes held for entry metadata (the entry ring, labels, and the last push's memory).
    pub fn entry_bytes(&self) -> usize {
        self.memory.heap_bytes()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self
                .entries
                .iter()
                .map(|e| e.label.as_ref().map_or(0, String::capacity))
                .sum::<usize>()
    }

    /// Store stats plus entry metadata: what this history really holds.
    pub fn stored_bytes(&self) -> (StoreStats, usize) {
        let s = self.store.stats();
        (s, s.total_bytes() + self.entry_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(h: &mut History, v: i64) {
        h.push(
            Encoding::Json,
            format!("{{\"v\":{v}}}").as_bytes(),
            None,
            0.0,
        )
        .unwrap();
    }

    fn current(h: &History) -> String {
        let p = h.position();
        String::from_utf8(h.encode(p.cursor.unwrap(), None).unwrap().1).unwrap()
    }

    #[test]
    fn undo_redo_and_push_drop_the_redo_branch() {
        let mut h = History::new(100);
        assert!(!h.undo() && !h.redo());
        for v in 0..5 {
            push(&mut h, v);
        }
        assert!(h.undo() && h.undo());
        assert_eq!(current(&h), "{\"v\":2}");
        assert!(h.redo());
        assert_eq!(current(&h), "{\"v\":3}");
        push(&mut h, 9);
        assert_eq!(h.len(), 5, "entry 4 was dropped");
        assert!(!h.redo());
        assert_eq!(current(&h), "{\"v\":9}");
        h.jump(0).unwrap();
        assert!(!h.undo());
        assert!(matches!(
            h.jump(5).unwrap_err(),
            StoreError::IndexOutOfRange { index: 5, len: 5 }
        ));
    }

    #[test]
    fn encode_into_appends_what_encode_returns() {
        let mut h = History::new(4);
        h.push(
            Encoding::Json,
            br#"{"a":[1,"x",{"b":null}],"c":"x"}"#,
            None,
            0.0,
        )
        .unwrap();
        for want in [None, Some(Encoding::Marshal), Some(Encoding::Json)] {
            let mut out = b"head".to_vec();
            let enc = h.encode_into(0, want, &mut out).unwrap();
            let (enc2, alone) = h.encode(0, want).unwrap();
            assert_eq!(enc, enc2);
            assert_eq!(&out[..4], b"head");
            assert_eq!(&out[4..], &alone[..]);
        }
        let mut out = Vec::new();
        assert!(h.encode_into(0, Some(Encoding::Bytes), &mut out).is_err());
        assert!(h.encode_into(1, None, &mut out).is_err());
    }

    #[test]
    fn capacity_evicts_the_oldest_and_frees_its_nodes() {
        let mut h = History::new(3);
        for v in 0..10 {
            push(&mut h, v);
        }
        assert_eq!(h.len(), 3);
        h.jump(0).unwrap();
        assert_eq!(current(&h), "{\"v\":7}");
        // Three roots, three ints, one shared key.
        assert_eq!(h.store.stats().nodes, 7);
        h.set_capacity(1);
        assert_eq!(
            h.position(),
            Position {
                cursor: Some(0),
                len: 1
            }
        );
        assert_eq!(current(&h), "{\"v\":9}");
        assert_eq!(h.store.stats().nodes, 3);
    }

    #[test]
    fn non_objects_and_bad_bytes_leave_the_history_unchanged() {
        let mut h = History::new(10);
        push(&mut h, 1);
        let before = h.store.stats();
        assert!(h.push(Encoding::Json, b"[1,2]", None, 0.0).is_err());
        assert!(h.push(Encoding::Json, b"{\"a\":", None, 0.0).is_err());
        assert!(h.push(Encoding::Marshal, b"N", None, 0.0).is_err());
        assert_eq!(h.store.stats().nodes, before.nodes);
        assert_eq!(h.len(), 1);
        h.push(Encoding::Bytes, b"\x00opaque", Some("blob".into()), 0.0)
            .unwrap();
        assert!(h.encode(1, Some(Encoding::Json)).is_err());
        assert_eq!(h.encode(1, None).unwrap().1, b"\x00opaque");
    }

    #[test]
    fn push_fields_keeps_the_rest_and_shares_its_nodes() {
        let key = |k: &str| vec![Step::Key(k.into())];
        let mut h = History::new(10);
        h.push(Encoding::Json, br#"{"a":[1,2],"b":"x","c":0}"#, None, 0.0)
            .unwrap();
        let before = h.store.stats().nodes;
        h.push_fields(
            Encoding::Json,
            br#"[1,true]"#,
            &[key("c"), key("n")],
            &[key("b")],
            None,
            0.0,
        )
        .unwrap();
        assert_eq!(current(&h), r#"{"a":[1,2],"c":1,"n":true}"#);
        // New: the int 1 is shared with the list; "n", true and the root are new.
        assert_eq!(h.store.stats().nodes, before + 3);
        let entry = vec![Step::Key("a".into()), Step::Index(2)];
        h.push_fields(Encoding::Json, b"[3]", &[entry], &[], None, 0.0)
            .unwrap();
        assert_eq!(current(&h), r#"{"a":[1,2,3],"c":1,"n":true}"#);
        assert!(h.undo() && h.undo());
        assert_eq!(current(&h), r#"{"a":[1,2],"b":"x","c":0}"#);
        let mut empty = History::new(2);
        empty
            .push_fields(Encoding::Json, b"[1]", &[key("z")], &[], None, 0.0)
            .unwrap();
        assert_eq!(current(&empty), r#"{"z":1}"#);
        let nodes = h.store.stats().nodes;
        for (body, paths) in [(&b"{}"[..], vec![key("a")]), (b"[1,2]", vec![key("a")])] {
            assert!(h
                .push_fields(Encoding::Json, body, &paths, &[], None, 0.0)
                .is_err());
        }
        assert_eq!(
            h.store.stats().nodes,
            nodes,
            "a refused push stores nothing"
        );
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn move_patch_moves_and_returns_what_changed() {
        let mut h = History::new(10);
        push(&mut h, 1);
        push(&mut h, 2);
        let p = h.move_patch(Move::Undo).unwrap().unwrap();
        assert_eq!(p.ops, br#"[["replace","/v",["v"]]]"#);
        assert_eq!(h.position().cursor, Some(0));
        assert!(h.move_patch(Move::Undo).unwrap().is_none());
        assert_eq!(h.move_patch(Move::Jump(1)).unwrap().unwrap().count, 1);
        assert!(h.move_patch(Move::Redo).unwrap().is_none());
        assert!(h.move_patch(Move::Jump(2)).is_err());
        assert_eq!(h.position().cursor, Some(1));
        assert_eq!(h.move_patch(Move::Jump(1)).unwrap().unwrap().count, 0);
        let peeked = h.peek_patch(Move::Undo).unwrap().unwrap();
        assert_eq!(h.position().cursor, Some(1), "a peek does not move");
        assert!(h.move_to(Move::Undo).unwrap());
        h.move_to(Move::Redo).unwrap();
        assert_eq!(h.move_patch(Move::Undo).unwrap().unwrap().ops, peeked.ops);
        assert!(!h.move_to(Move::Undo).unwrap());
    }
}
