//! [`Recall`]: what a marshal reader remembers of the previous snapshot of a batch, so a dict
//! whose bytes did not change is taken over instead of read again (`OP_SNAP_PROCESS`: a
//! batch of edits of one document repeats most of its bytes from one snapshot to the next).
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
//! Cost stays linear for any input: every comparison (bytes and references) is charged to a
//! budget of a few times the snapshot's length; past it, dicts are only read.
#![forbid(unsafe_code)]

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
}

/// The dicts of one snapshot (in the order they started) and the references they named.
#[derive(Debug)]
struct Seen<'a, R> {
    bytes: &'a [u8],
    dicts: Vec<Dict<R>>,
    used: Vec<u32>,
}

impl<R> Default for Seen<'_, R> {
    fn default() -> Self {
        Seen {
            bytes: b"",
            dicts: Vec::new(),
            used: Vec::new(),
        }
    }
}

impl<R> Seen<'_, R> {
    fn clear(&mut self) {
        self.bytes = b"";
        self.dicts.clear();
        self.used.clear();
    }
}

/// The memory of a batch reader (see the module doc). One per batch, handed to every read.
#[derive(Debug)]
pub struct Recall<'a, R> {
    prev: Seen<'a, R>,
    cur: Seen<'a, R>,
    /// The previous snapshot's reference table.
    prev_refs: Vec<Option<R>>,
    /// Per reference of this snapshot: 0 not compared yet, 1 equal to the previous
    /// snapshot's at that index, 2 not.
    same: Vec<u8>,
    /// The previous snapshot's dict the next dict read is paired with.
    cursor: usize,
    /// The previous snapshot's dict recalled last.
    last: usize,
    budget: usize,
}

impl<R> Default for Recall<'_, R> {
    fn default() -> Self {
        Recall {
            prev: Seen::default(),
            cur: Seen::default(),
            prev_refs: Vec::new(),
            same: Vec::new(),
            cursor: 0,
            last: 0,
            budget: 0,
        }
    }
}

/// A dict being read: its index in this snapshot's dicts.
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize);

impl<'a, R: Copy + PartialEq> Recall<'a, R> {
    /// Starts reading `bytes`: what the last snapshot read becomes the previous one, and
    /// `refs` (the table the reader fills) is emptied, its old content kept to compare with.
    pub fn start(&mut self, bytes: &'a [u8], refs: &mut Vec<Option<R>>) {
        std::mem::swap(&mut self.prev, &mut self.cur);
        std::mem::swap(&mut self.prev_refs, refs);
        self.cur.clear();
        self.cur.bytes = bytes;
        refs.clear();
        self.same.clear();
        self.cursor = 0;
        self.budget = bytes.len().saturating_mul(BUDGET_PER_BYTE);
    }

    /// Forgets the snapshot being read (it failed): nothing of it is recalled later.
    pub fn forget(&mut self) {
        self.cur.clear();
    }

    /// The dict whose type byte is at `start` (at `depth`, with `refs` the references defined
    /// so far) when it can be recalled: its length, and its value is [`Recall::last`]. Pairs
    /// the dict with the previous snapshot's next one either way.
    ///
    /// Not inlined: the reader recurses through the caller, whose frame stays small.
    #[inline(never)]
    pub fn recall(&mut self, start: usize, depth: usize, refs: &[Option<R>]) -> Option<usize> {
        let at = self.cursor;
        let d = self.prev.dicts.get(at)?;
        self.cursor += 1;
        let cost = d.len.saturating_add(d.used_end - d.used_at);
        if d.val.is_none() || d.depth != depth || cost > self.budget {
            return None;
        }
        let (len, was, used, next) = (d.len, d.start, d.used_at..d.used_end, d.next);
        self.budget -= cost;
        let now = self.cur.bytes.get(start..start.checked_add(len)?)?;
        if now != self.prev.bytes.get(was..was + len)? {
            return None;
        }
        for i in used {
            if !self.same_ref(self.prev.used[i] as usize, refs) {
                return None;
            }
        }
        self.copy(at, start);
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
        });
        Mark(self.cur.dicts.len() - 1)
    }

    /// Reference `r` was named.
    pub fn used(&mut self, r: u32) {
        self.cur.used.push(r);
    }

    /// The dict `mark` was read up to `end`, to `val`, with `refs` references defined now.
    pub fn end(&mut self, mark: Mark, end: usize, refs: usize, val: Option<R>) {
        let next = self.cur.dicts.len();
        let used = self.cur.used.len();
        if let Some(d) = self.cur.dicts.get_mut(mark.0) {
            d.len = end - d.start;
            d.used_end = used;
            d.next = next;
            d.val = if refs == d.refs_at { val } else { None };
        }
    }
}
