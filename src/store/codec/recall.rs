//! [`Recall`]: what a marshal reader remembers of the previous snapshot, so a dict whose bytes
//! did not change is taken over instead of read again: between the snapshots of a batch
//! (`OP_SNAP_PROCESS`: a batch of edits of one document repeats most of its bytes from one
//! snapshot to the next), and between the pushes of a history (a GUI pushes its whole state
//! after each edit).
//!
//! Why a recalled dict's value is the one reading it would give: reading is a function of the
//! bytes, the nesting depth (limits) and, through `r`, the reference table. A dict is recalled
//! only when its bytes equal a dict the previous snapshot read without error at the same
//! depth, that defined no reference (no `FLAG_REF` inside, nor on the dict itself), and every
//! `r` it holds names a reference that is already complete now and equal to the one it named
//! then (equal as far as a container over it can tell: [`PartialEq`] of the sink's values).
//! A reader that took the same bytes through the same states ends at the same offset with the
//! same value, and so with the same errors (none).
//!
//! "Its bytes equal": a batch holds the previous snapshot's bytes and compares them byte for
//! byte. A history's previous push is gone from the ring by the next push, and keeping a copy
//! would double the memory of a history whose snapshots share most of their nodes, so a
//! [`Recall::hashed`] memory keeps each dict's SipHash-1-3 under a key drawn for that memory
//! (`RandomState`) and compares the new bytes' hash with it: two different byte strings of
//! the same length pass for equal with a probability of about 2^-64 per comparison, and a
//! client that does not know the key cannot make them.
//!
//! Cost stays linear for any input: every comparison (bytes and references) is charged to a
//! budget of a few times the snapshot's length; past it, dicts are only read.
#![forbid(unsafe_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Bytes of comparison a snapshot may spend per byte of its own (outer dicts that changed
/// are compared, then their nested dicts: twice covers two levels, four leaves room).
const BUDGET_PER_BYTE: usize = 4;

/// A dict read from a snapshot.
#[derive(Debug, Clone, Copy)]
struct Dict<R> {
    /// Offset of its type byte, and its length in bytes.
    start: usize,
    len: usize,
    depth: usize,
    /// Its value; `None` when it cannot be recalled (it defined a reference, or its reading
    /// did not finish).
    val: Option<R>,
    /// The references it names: `used[used_at..used_end]` of its snapshot.
    used_at: usize,
    used_end: usize,
    /// How many references were defined when it started.
    refs_at: usize,
    /// Index (in its snapshot's `dicts`) after the dicts nested in it.
    next: usize,
    /// The keyed hash of its bytes, in a [`Recall::hashed`] memory, once it was read.
    hash: u64,
}

/// The dicts of one snapshot (in the order they started) and the references they named.
#[derive(Debug)]
struct Seen<R> {
    dicts: Vec<Dict<R>>,
    used: Vec<u32>,
}

impl<R> Default for Seen<R> {
    fn default() -> Self {
        Seen {
            dicts: Vec::new(),
            used: Vec::new(),
        }
    }
}

impl<R> Seen<R> {
    fn clear(&mut self) {
        self.dicts.clear();
        self.used.clear();
    }

    fn shrink_to_fit(&mut self) {
        self.dicts.shrink_to_fit();
        self.used.shrink_to_fit();
    }

    fn heap_bytes(&self) -> usize {
        self.dicts.capacity() * std::mem::size_of::<Dict<R>>()
            + self.used.capacity() * std::mem::size_of::<u32>()
    }
}

/// The memory of a reader (see the module doc): one per batch, or one per history, handed to
/// every read.
#[derive(Debug)]
pub struct Recall<R> {
    prev: Seen<R>,
    cur: Seen<R>,
    /// The previous snapshot's reference table.
    prev_refs: Vec<Option<R>>,
    /// Per reference of this snapshot: 0 not compared yet, 1 equal to the previous
    /// snapshot's at that index, 2 not.
    same: Vec<u8>,
    /// The previous snapshot's dict the next dict read is paired with.
    cursor: usize,
    /// The previous snapshot's dict recalled last.
    last: usize,
    /// The previous snapshot's dict [`Recall::recall`] paired the last dict with, if any.
    tried: Option<usize>,
    budget: usize,
    /// Bytes of the snapshot being read that were taken over.
    recalled: usize,
    /// Dicts are compared by a hash under this key ([`Recall::hashed`]), not byte for byte.
    key: Option<RandomState>,
}

impl<R> Default for Recall<R> {
    /// A memory that compares bytes: every read is given the previous snapshot's.
    fn default() -> Self {
        Recall {
            prev: Seen::default(),
            cur: Seen::default(),
            prev_refs: Vec::new(),
            same: Vec::new(),
            cursor: 0,
            last: 0,
            tried: None,
            budget: 0,
            recalled: 0,
            key: None,
        }
    }
}

/// A dict being read: its index in this snapshot's dicts, and the previous snapshot's dict
/// it was paired with.
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize, Option<usize>);

impl<R> Recall<R> {
    /// A memory that keeps a keyed hash of each dict's bytes and compares with it, for reads
    /// that are not given the previous snapshot's bytes (module doc).
    pub fn hashed() -> Recall<R> {
        Recall {
            key: Some(RandomState::new()),
            ..Recall::default()
        }
    }

    /// Heap bytes it holds (what a history counts as its own).
    pub fn heap_bytes(&self) -> usize {
        self.prev.heap_bytes()
            + self.cur.heap_bytes()
            + self.same.capacity()
            + self.prev_refs.capacity() * std::mem::size_of::<Option<R>>()
    }
}

impl<R: Copy + PartialEq> Recall<R> {
    /// Starts reading a snapshot of `len` bytes: what the last snapshot read becomes the
    /// previous one, and `refs` (the table the reader fills) is emptied, its old content kept
    /// to compare with.
    pub fn start(&mut self, len: usize, refs: &mut Vec<Option<R>>) {
        std::mem::swap(&mut self.prev, &mut self.cur);
        std::mem::swap(&mut self.prev_refs, refs);
        self.cur.clear();
        refs.clear();
        self.same.clear();
        self.cursor = 0;
        self.recalled = 0;
        self.budget = len.saturating_mul(BUDGET_PER_BYTE);
    }

    /// Bytes of the snapshot read last (or being read) that were taken over, not read.
    pub fn recalled(&self) -> usize {
        self.recalled
    }

    /// Keeps only what the next read needs (the snapshot read last; `refs` is its table), at
    /// its size: for a memory held between reads (a history's), not one used at once.
    pub fn settle(&mut self, refs: &mut Vec<Option<R>>) {
        self.prev = Seen::default();
        self.prev_refs = Vec::new();
        self.same = Vec::new();
        self.cur.shrink_to_fit();
        refs.shrink_to_fit();
    }

    /// Forgets the snapshot being read (it failed): nothing of it is recalled later.
    pub fn forget(&mut self) {
        self.cur.clear();
    }

    /// Forgets everything: the next snapshot is read in full (a holder that let go of the
    /// values remembered).
    pub fn clear(&mut self) {
        self.prev.clear();
        self.cur.clear();
        self.prev_refs.clear();
        self.same.clear();
    }

    fn hash(&self, b: &[u8]) -> u64 {
        self.key.as_ref().map_or(0, |k| {
            let mut h = k.build_hasher();
            h.write(b);
            h.finish()
        })
    }

    /// The dict whose type byte is at `start` of `bytes` (at `depth`, with `refs` the
    /// references defined so far) when it can be recalled: its length, and its value is
    /// [`Recall::last`]. `prev`: the previous snapshot's bytes, compared byte for byte, or
    /// `None` in a [`Recall::hashed`] memory. Pairs the dict with the previous snapshot's
    /// next one either way.
    ///
    /// Not inlined: the reader recurses through the caller, whose frame stays small.
    #[inline(never)]
    pub fn recall(
        &mut self,
        bytes: &[u8],
        prev: Option<&[u8]>,
        start: usize,
        depth: usize,
        refs: &[Option<R>],
    ) -> Option<usize> {
        let at = self.cursor;
        self.tried = None;
        let d = self.prev.dicts.get(at)?;
        self.tried = Some(at);
        self.cursor += 1;
        let cost = d.len.saturating_add(d.used_end - d.used_at);
        if d.val.is_none() || d.depth != depth || cost > self.budget {
            return None;
        }
        let (len, was, used, next, hash) = (d.len, d.start, d.used_at..d.used_end, d.next, d.hash);
        self.budget -= cost;
        let now = bytes.get(start..start.checked_add(len)?)?;
        let same = match prev {
            Some(prev) => now == prev.get(was..was + len)?,
            None => self.key.is_some() && self.hash(now) == hash,
        };
        if !same {
            return None;
        }
        for i in used {
            if !self.same_ref(self.prev.used[i] as usize, refs) {
                return None;
            }
        }
        self.copy(at, start);
        self.recalled += len;
        self.cursor = next;
        self.last = at;
        Some(len)
    }

    /// The value of the dict [`Recall::recall`] took over last.
    pub fn last(&self) -> Option<&R> {
        self.prev.dicts.get(self.last)?.val.as_ref()
    }

    /// Whether reference `r` is complete in `refs` and equal to the previous snapshot's.
    fn same_ref(&mut self, r: usize, refs: &[Option<R>]) -> bool {
        // Not cached while incomplete: it may still be completed.
        let Some(Some(now)) = refs.get(r) else {
            return false;
        };
        if self.same.len() <= r {
            self.same.resize(refs.len(), 0);
        }
        if self.same[r] == 0 {
            let was = self.prev_refs.get(r).copied().flatten();
            self.same[r] = if was == Some(*now) { 1 } else { 2 };
        }
        self.same[r] == 1
    }

    /// Takes the previous snapshot's dict `at` (and the dicts nested in it) over as read at
    /// `start` of this one, so the next snapshot can recall them too.
    fn copy(&mut self, at: usize, start: usize) {
        let d = self.prev.dicts[at];
        let base = self.cur.dicts.len();
        let used = self.cur.used.len();
        self.cur
            .used
            .extend_from_slice(&self.prev.used[d.used_at..d.used_end]);
        // Nested dicts lie inside `d`, in bytes and in `used`: shift both by `d`'s shift.
        for e in &self.prev.dicts[at..d.next] {
            self.cur.dicts.push(Dict {
                start: e.start - d.start + start,
                used_at: e.used_at - d.used_at + used,
                used_end: e.used_end - d.used_at + used,
                next: e.next - at + base,
                ..*e
            });
        }
    }

    /// A dict is read at `start`, `depth`, with `refs` references defined so far.
    pub fn begin(&mut self, start: usize, depth: usize, refs: usize) -> Mark {
        let used = self.cur.used.len();
        self.cur.dicts.push(Dict {
            start,
            len: 0,
            depth,
            val: None,
            used_at: used,
            used_end: used,
            refs_at: refs,
            next: 0,
            hash: 0,
        });
        Mark(self.cur.dicts.len() - 1, self.tried.take())
    }

    /// Reference `r` was named.
    pub fn used(&mut self, r: u32) {
        self.cur.used.push(r);
    }

    /// The dict `mark` was read up to `end` of `bytes`, to `val`, with `refs` references
    /// defined now. The next dict is paired with the one after the dict `mark` was paired
    /// with (and its nested dicts), however many dicts this one held: an edit inside one
    /// entry of a list does not shift the pairing of the entries after it.
    pub fn end(&mut self, mark: Mark, bytes: &[u8], end: usize, refs: usize, val: Option<R>) {
        if let Some(paired) = mark.1.and_then(|at| self.prev.dicts.get(at)) {
            self.cursor = paired.next;
        }
        let next = self.cur.dicts.len();
        let used = self.cur.used.len();
        let Some(d) = self.cur.dicts.get(mark.0) else {
            return;
        };
        let val = if refs == d.refs_at { val } else { None };
        // Only a dict that can be recalled needs its hash.
        let hash = match (&self.key, val.is_some(), bytes.get(d.start..end)) {
            (Some(_), true, Some(b)) => self.hash(b),
            _ => 0,
        };
        if let Some(d) = self.cur.dicts.get_mut(mark.0) {
            d.len = end - d.start;
            d.used_end = used;
            d.next = next;
            d.val = val;
            d.hash = hash;
        }
    }
}
