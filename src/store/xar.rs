//! The Xar chunked array: an append-only arena of fixed-size chunks that never moves what it
//! stored (layout.md §9.3 "Storage").
//!
//! Every chunk holds `BASE` slots, so index `i` lies in chunk `i >> BASE_SHIFT` at offset
//! `i & (BASE - 1)`. Push and index are O(1); growing allocates a new chunk and never copies or
//! reallocates an earlier one, so a stored item keeps its address. Chunks of one size (rather
//! than doubling ones) leave at most `BASE - 1` slots unused, whatever the length: a small
//! history does not pay for half a chunk it will never fill.
#![forbid(unsafe_code)]

/// log2 of the slot count of a chunk.
pub const BASE_SHIFT: u32 = 6;
/// Slots in a chunk (a power of two).
pub const BASE: usize = 1 << BASE_SHIFT;

/// An append-only array of chunks of `BASE` items; items are never moved.
#[derive(Debug, Clone)]
pub struct Xar<T> {
    /// Every chunk has capacity `BASE`; only the last one is partly filled.
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Xar<T> {
    fn default() -> Self {
        Xar::new()
    }
}

/// Maps an index to `(chunk, offset)` with bit arithmetic.
#[inline]
pub fn locate(index: usize) -> (usize, usize) {
    (index >> BASE_SHIFT, index & (BASE - 1))
}

impl<T> Xar<T> {
    /// An empty arena; no chunk is allocated until the first push.
    pub const fn new() -> Xar<T> {
        Xar {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Number of items pushed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends an item and returns its index. Allocates a chunk (of `BASE` slots) when the
    /// previous chunks are full; earlier chunks are untouched.
    pub fn push(&mut self, item: T) -> usize {
        let index = self.len;
        let (chunk, _) = locate(index);
        if chunk == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(BASE));
        }
        // The chunk was created with exactly `BASE` capacity and `locate` keeps the
        // offset below it, so this push never reallocates (never moves stored items).
        self.chunks[chunk].push(item);
        self.len += 1;
        index
    }

    /// The item at `index`, or `None` past the end.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        if index >= self.len {
            return None;
        }
        let (chunk, offset) = locate(index);
        self.chunks.get(chunk)?.get(offset)
    }

    /// The item at `index`, mutably, or `None` past the end.
    #[inline]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        if index >= self.len {
            return None;
        }
        let (chunk, offset) = locate(index);
        self.chunks.get_mut(chunk)?.get_mut(offset)
    }

    /// Slots allocated across all chunks (filled or not).
    pub fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }

    /// Number of chunks allocated.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes the chunks occupy (allocated slots times the slot size) and the table of chunks.
    pub fn allocated_bytes(&self) -> usize {
        self.capacity() * std::mem::size_of::<T>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<T>>()
    }

    /// Iterates the items in index order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_matches_a_linear_walk() {
        let mut chunk = 0;
        let mut start = 0;
        for i in 0..100_000 {
            if i - start == BASE {
                start = i;
                chunk += 1;
            }
            assert_eq!(locate(i), (chunk, i - start), "index {i}");
        }
    }

    #[test]
    fn chunks_are_one_size_and_items_never_move() {
        let mut x = Xar::new();
        let first = x.push(String::from("a"));
        let addr = x.get(first).unwrap().as_ptr();
        let heap = x.get(first).unwrap() as *const String;
        for i in 1..10_000 {
            assert_eq!(x.push(i.to_string()), i);
        }
        assert_eq!(x.get(first).unwrap().as_ptr(), addr);
        assert_eq!(x.get(first).unwrap() as *const String, heap, "slot moved");
        assert_eq!(x.len(), 10_000);
        // 157 chunks of 64 = 10048 >= 10000: at most 63 slots unused.
        assert_eq!(x.chunk_count(), 157);
        assert_eq!(x.capacity(), BASE * 157);
        for i in 1..10_000 {
            assert_eq!(x.get(i).unwrap(), &i.to_string());
        }
        assert!(x.get(10_000).is_none());
        assert_eq!(x.iter().count(), 10_000);
    }

    #[test]
    fn get_mut_updates_in_place() {
        let mut x = Xar::new();
        for i in 0..200u32 {
            x.push(i);
        }
        *x.get_mut(150).unwrap() = 7;
        assert_eq!(x.get(150), Some(&7));
        assert!(x.get_mut(200).is_none());
        assert!(Xar::<u8>::new().is_empty());
    }
}
