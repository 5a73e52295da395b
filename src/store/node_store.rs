//! The content-addressed node store: JSON-like values interned in a [`Xar`] arena with
//! refcounts (layout.md §9.3 "Storage").
//!
//! Every value (object, array, string, number, …) is a [`Node`] in one slot of the arena. A
//! container holds the ids of its children, so two snapshots that share a field or a list
//! entry share the node: interning looks the node up by its structural hash (a hash over the
//! children's hashes, so equal content has an equal hash whatever its encoding) and compares
//! it with every node in that hash's chain before storing a new one. Each reference (a parent's
//! child slot, or a history entry's root) holds one count; a node whose count drops to zero is
//! freed with its children's counts, and its slot goes on a free list that the next intern
//! reuses, so evicting a snapshot returns the memory nothing else shares.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;

use crate::store::hash::{
    fmix, hash_big_int, hash_bool, hash_bytes, hash_float, hash_int, hash_list, hash_null,
    hash_object, hash_str, BuildIdentity,
};
use crate::store::node::{Node, NodeId};
use crate::store::xar::Xar;

/// The key of `hash` in the index: its low 32 bits (a structural hash is mixed by
/// `fmix`, so they spread as well as all 64). Slots whose hashes share a key share a chain,
/// and a lookup compares the full hash before the node.
#[inline]
fn index_key(hash: u64) -> u32 {
    hash as u32
}

/// "No node" in a hash chain.
const NONE: u32 = u32::MAX;

static NULL_NODE: Node = Node::Null;

/// One arena slot: a node, its structural hash, its refcount, the next slot with the same
/// hash, and the node's [`Shape`] (nesting depth and expanded size, computed once at insert),
/// packed into two `u32`s so a slot takes 48 bytes, not 56 (see [`PackedShape`]).
#[derive(Debug)]
struct Slot {
    node: Node,
    hash: u64,
    refs: u32,
    next: u32,
    shape: PackedShape,
}

/// A [`Shape`] in 8 bytes: depth and expanded size each saturated at `u32::MAX`. Both limits
/// a stored value is checked against (`MAX_DEPTH` 512, `MAX_EXPANDED_BYTES` 2^28) are far
/// below that (`builder.rs` asserts it), so a saturated figure still reads as over the limit,
/// and sums built from it (with `saturating_add`, in `u64`) stay over it.
#[derive(Debug, Clone, Copy, Default)]
struct PackedShape {
    depth: u32,
    expanded_bytes: u32,
}

impl PackedShape {
    fn pack(s: Shape) -> PackedShape {
        PackedShape {
            depth: s.depth,
            expanded_bytes: u32::try_from(s.expanded_bytes).unwrap_or(u32::MAX),
        }
    }

    fn unpack(self) -> Shape {
        Shape {
            depth: self.depth,
            expanded_bytes: u64::from(self.expanded_bytes),
        }
    }
}

/// What a node costs once written out, shared sub-values counted every time they occur.
///
/// Content addressing (and marshal back-references) let a small store hold a value whose
/// expansion is huge: 41 lists `[x, x]` nested expand to 2^41 leaves, and a chain of
/// back-references nests 200k deep while no decoder recursion went past depth 2. Both numbers
/// are computed bottom-up from the children's shapes when a node is stored (no recursion),
/// so decoders can refuse such a value before anything walks it (layout.md §9.3 "Limits").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Edges on the longest path down from this node to a node without children (0 for a
    /// scalar or an empty container): the decoders' nesting depth, counted the same way.
    pub depth: u32,
    /// Bytes of the value with every shared sub-value written out in full: each node counts
    /// [`SHAPE_NODE_BYTES`] plus its payload's bytes; saturates at `u64::MAX`.
    pub expanded_bytes: u64,
}

/// Bytes a node counts in [`Shape::expanded_bytes`] besides its payload (about a type byte
/// and a length, as marshal writes them).
pub const SHAPE_NODE_BYTES: u64 = 5;

/// Counts and byte totals of a [`NodeStore`], all measured from what it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Live nodes.
    pub nodes: usize,
    /// Slots on the free list, reused before the arena grows.
    pub free_slots: usize,
    /// Bytes of the arena's allocated chunks (slots × slot size, free or not).
    pub arena_bytes: usize,
    /// Heap bytes of live nodes' payloads (strings, bytes, child id arrays).
    pub heap_bytes: usize,
    /// Bytes of the hash index and the free list (table capacity × entry size + 1 control byte).
    pub index_bytes: usize,
}

impl StoreStats {
    /// Everything the store holds.
    pub fn total_bytes(&self) -> usize {
        self.arena_bytes + self.heap_bytes + self.index_bytes
    }
}

/// The content-addressed, refcounted node store.
#[derive(Default)]
pub struct NodeStore {
    slots: Xar<Slot>,
    free: Vec<u32>,
    /// [`index_key`] of a hash → the first slot of its chain (slots whose hashes share a key).
    index: HashMap<u32, u32, BuildIdentity>,
    live: usize,
    heap_bytes: usize,
}

impl fmt::Debug for NodeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeStore")
            .field("stats", &self.stats())
            .finish()
    }
}

impl NodeStore {
    /// An empty store.
    pub fn new() -> NodeStore {
        NodeStore::default()
    }

    /// The node stored under `id` (ids only come from this store; an unknown id reads as null).
    #[inline]
    pub fn node(&self, id: NodeId) -> &Node {
        match self.slots.get(id as usize) {
            Some(s) => &s.node,
            None => {
                debug_assert!(false, "node id {id} not in the store");
                &NULL_NODE
            }
        }
    }

    /// The structural hash of `id`: equal for equal values, whatever their encoding.
    #[inline]
    pub fn hash(&self, id: NodeId) -> u64 {
        self.slots.get(id as usize).map_or(0, |s| s.hash)
    }

    /// The [`Shape`] of `id` (all zero for a free or unknown slot).
    #[inline]
    pub fn shape(&self, id: NodeId) -> Shape {
        self.slots
            .get(id as usize)
            .map_or(Shape::default(), |s| s.shape.unpack())
    }

    fn shape_of(&self, node: &Node) -> Shape {
        let own = SHAPE_NODE_BYTES + node_payload_bytes(node);
        let mut shape = Shape {
            depth: 0,
            expanded_bytes: own,
        };
        node.for_each_child(|c| {
            let kid = self.shape(c);
            shape.depth = shape.depth.max(kid.depth.saturating_add(1));
            shape.expanded_bytes = shape.expanded_bytes.saturating_add(kid.expanded_bytes);
        });
        shape
    }

    /// The refcount of `id` (0 for a free or unknown slot).
    pub fn refs(&self, id: NodeId) -> u32 {
        self.slots.get(id as usize).map_or(0, |s| s.refs)
    }

    fn structural_hash(&self, node: &Node) -> u64 {
        match node {
            Node::Null => hash_null(),
            Node::Bool(b) => hash_bool(*b),
            Node::Int(i) => hash_int(*i),
            Node::BigInt { neg, digits } => hash_big_int(*neg, digits),
            Node::Float(f) => hash_float(*f),
            Node::Str(s) => hash_str(s),
            Node::Bytes(b) => hash_bytes(b),
            Node::Array(a) => self.hash_array(a),
            Node::Object(o) => hash_object(o.iter().map(|&(k, v)| (self.hash(k), self.hash(v)))),
            Node::Free => fmix(0),
        }
    }

    fn hash_array(&self, kids: &[NodeId]) -> u64 {
        hash_list(kids.iter().map(|&c| self.hash(c)))
    }

    /// Hash of an object given as a flat `key, value, key, value …` slice.
    fn hash_flat_object(&self, flat: &[NodeId]) -> u64 {
        hash_object(
            flat.chunks_exact(2)
                .map(|p| (self.hash(p[0]), self.hash(p[1]))),
        )
    }

    /// The stored node with `hash` for which `eq` holds.
    #[inline]
    fn find(&self, hash: u64, eq: impl Fn(&Node) -> bool) -> Option<NodeId> {
        let mut at = self.index.get(&index_key(hash)).copied().unwrap_or(NONE);
        while at != NONE {
            let slot = self.slots.get(at as usize)?;
            if slot.hash == hash && eq(&slot.node) {
                return Some(at);
            }
            at = slot.next;
        }
        None
    }

    /// Stores `node` (whose children's counts the caller hands over) and returns an id holding
    /// one count for the caller. An equal node already stored is shared instead: it gains a
    /// count and the handed-over child counts are released.
    pub fn intern(&mut self, node: Node) -> NodeId {
        let hash = self.structural_hash(&node);
        if let Some(id) = self.find(hash, |n| n.same(&node)) {
            self.incref(id);
            // The existing node holds the same children, so these releases free nothing.
            node.for_each_child(|c| self.decref(c));
            return id;
        }
        self.insert_new(hash, node)
    }

    /// [`NodeStore::intern`] of a string, allocating only when it is not stored yet.
    pub fn intern_str(&mut self, s: &str) -> NodeId {
        let hash = hash_str(s);
        if let Some(id) = self.find(hash, |n| matches!(n, Node::Str(x) if **x == *s)) {
            self.incref(id);
            return id;
        }
        self.insert_new(hash, Node::Str(s.into()))
    }

    /// [`NodeStore::intern`] of a list whose children's counts the caller hands over,
    /// allocating only when it is not stored yet.
    pub fn intern_array(&mut self, kids: &[NodeId]) -> NodeId {
        let hash = self.hash_array(kids);
        if let Some(id) = self.find(hash, |n| matches!(n, Node::Array(x) if **x == *kids)) {
            self.incref(id);
            kids.iter().for_each(|&c| self.decref(c));
            return id;
        }
        self.insert_new(hash, Node::Array(kids.into()))
    }

    /// [`NodeStore::intern`] of an object given as a flat `key, value, …` slice whose counts
    /// the caller hands over (keys already checked), allocating only when it is not stored yet.
    pub fn intern_flat_object(&mut self, flat: &[NodeId]) -> NodeId {
        let hash = self.hash_flat_object(flat);
        let eq = |n: &Node| match n {
            Node::Object(x) => {
                x.len() * 2 == flat.len()
                    && x.iter()
                        .zip(flat.chunks_exact(2))
                        .all(|(&(k, v), p)| k == p[0] && v == p[1])
            }
            _ => false,
        };
        if let Some(id) = self.find(hash, eq) {
            self.incref(id);
            flat.iter().for_each(|&c| self.decref(c));
            return id;
        }
        let pairs: Box<[(NodeId, NodeId)]> = flat.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        self.insert_new(hash, Node::Object(pairs))
    }

    fn insert_new(&mut self, hash: u64, node: Node) -> NodeId {
        let next = self.index.insert(index_key(hash), NONE).unwrap_or(NONE);
        self.live += 1;
        self.heap_bytes += node.heap_bytes();
        let shape = PackedShape::pack(self.shape_of(&node));
        let slot = Slot {
            node,
            hash,
            refs: 1,
            next,
            shape,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(s) = self.slots.get_mut(id as usize) {
                    *s = slot;
                }
                id
            }
            None => self.slots.push(slot) as NodeId,
        };
        self.index.insert(index_key(hash), id);
        id
    }

    /// Adds a count to `id`.
    #[inline]
    pub fn incref(&mut self, id: NodeId) {
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.refs += 1;
        }
    }

    /// Drops a count from `id`; a node reaching zero is freed, and so on down its children.
    pub fn decref(&mut self, id: NodeId) {
        if let Some(s) = self.slots.get_mut(id as usize) {
            if s.refs > 1 {
                s.refs -= 1;
                return;
            }
        }
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            let Some(slot) = self.slots.get_mut(id as usize) else {
                continue;
            };
            if slot.refs == 0 {
                debug_assert!(false, "decref of a free node {id}");
                continue;
            }
            slot.refs -= 1;
            if slot.refs > 0 {
                continue;
            }
            let node = std::mem::replace(&mut slot.node, Node::Free);
            let (hash, next) = (slot.hash, slot.next);
            slot.next = NONE;
            self.unlink(id, hash, next);
            self.live -= 1;
            self.heap_bytes -= node.heap_bytes();
            self.free.push(id);
            node.for_each_child(|c| stack.push(c));
        }
    }

    /// Removes `id` from the chain of `hash`.
    fn unlink(&mut self, id: NodeId, hash: u64, next: u32) {
        let Some(&head) = self.index.get(&index_key(hash)) else {
            return;
        };
        if head == id {
            if next == NONE {
                self.index.remove(&index_key(hash));
            } else {
                self.index.insert(index_key(hash), next);
            }
            return;
        }
        let mut at = head;
        while at != NONE {
            let Some(slot) = self.slots.get_mut(at as usize) else {
                return;
            };
            if slot.next == id {
                slot.next = next;
                return;
            }
            at = slot.next;
        }
    }

    /// Counts and bytes held right now.
    pub fn stats(&self) -> StoreStats {
        let index_entry = std::mem::size_of::<(u32, u32)>() + 1;
        StoreStats {
            nodes: self.live,
            free_slots: self.free.len(),
            arena_bytes: self.slots.allocated_bytes(),
            heap_bytes: self.heap_bytes,
            index_bytes: self.index.capacity() * index_entry + self.free.capacity() * 4,
        }
    }
}

/// Payload bytes of a scalar (its text, bytes or digits); 0 for containers, whose size is
/// their children's.
fn node_payload_bytes(node: &Node) -> u64 {
    match node {
        Node::Array(_) | Node::Object(_) => 0,
        other => other.heap_bytes() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(store: &mut NodeStore, t: &str) -> NodeId {
        store.intern(Node::Str(t.into()))
    }

    #[test]
    fn a_slot_takes_48_bytes_and_a_packed_shape_saturates() {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(std::mem::size_of::<Slot>(), 48);
        }
        let big = Shape {
            depth: 3,
            expanded_bytes: u64::MAX,
        };
        assert_eq!(
            PackedShape::pack(big).unpack().expanded_bytes,
            u64::from(u32::MAX)
        );
        let small = Shape {
            depth: 7,
            expanded_bytes: 1234,
        };
        assert_eq!(PackedShape::pack(small).unpack(), small);
    }

    #[test]
    fn equal_values_share_one_node() {
        let mut st = NodeStore::new();
        let a = s(&mut st, "hello");
        let b = s(&mut st, "hello");
        assert_eq!(a, b);
        assert_eq!(st.refs(a), 2);
        let k = s(&mut st, "k");
        let o1 = st.intern(Node::Object(vec![(k, a)].into()));
        let k2 = s(&mut st, "k");
        let o2 = st.intern(Node::Object(vec![(k2, b)].into()));
        assert_eq!(o1, o2);
        assert_eq!(st.refs(o1), 2);
        // Child counts handed to the duplicate were released: one per parent reference.
        assert_eq!(st.refs(a), 1);
        assert_eq!(st.stats().nodes, 3);
    }

    #[test]
    fn freeing_the_last_count_frees_children_and_reuses_slots() {
        let mut st = NodeStore::new();
        let a = s(&mut st, &"x".repeat(1000));
        let arr = st.intern(Node::Array(vec![a].into()));
        let before = st.stats();
        assert_eq!(before.heap_bytes, 1000 + 4);
        st.decref(arr);
        let after = st.stats();
        assert_eq!(after.nodes, 0);
        assert_eq!(after.heap_bytes, 0);
        assert_eq!(after.free_slots, 2);
        let b = s(&mut st, "again");
        assert!(b == a || b == arr, "a freed slot is reused");
        assert_eq!(st.stats().free_slots, 1);
    }

    #[test]
    fn floats_compare_by_bits_and_types_stay_apart() {
        let mut st = NodeStore::new();
        let n1 = st.intern(Node::Float(f64::NAN));
        let n2 = st.intern(Node::Float(f64::NAN));
        assert_eq!(n1, n2);
        let z = st.intern(Node::Float(0.0));
        let nz = st.intern(Node::Float(-0.0));
        assert_ne!(z, nz);
        let i = st.intern(Node::Int(1));
        let f = st.intern(Node::Float(1.0));
        let t = st.intern(Node::Bool(true));
        assert!(i != f && f != t && i != t);
    }

    #[test]
    fn hash_collisions_fall_back_to_equality() {
        // Force two different nodes into one chain by hand and check lookups and unlinking.
        let mut st = NodeStore::new();
        let a = s(&mut st, "a");
        let b = s(&mut st, "b");
        let ha = st.hash(a);
        // Pretend "b" collided with "a": move b into a's chain.
        let hb = st.hash(b);
        st.index.remove(&index_key(hb));
        st.slots.get_mut(b as usize).unwrap().hash = ha;
        st.slots.get_mut(b as usize).unwrap().next = a;
        st.index.insert(index_key(ha), b);
        assert_ne!(st.intern(Node::Str("a".into())), b);
        st.decref(a);
        st.decref(a);
        assert_eq!(st.refs(b), 1);
        assert_eq!(st.index.get(&index_key(ha)), Some(&b));
        st.decref(b);
        assert!(st.index.is_empty());
    }

    #[test]
    fn hashes_that_share_an_index_key_share_a_chain() {
        // "b" moved into the chain of "a" with a hash that differs from a's only above bit 32.
        let mut st = NodeStore::new();
        let a = s(&mut st, "a");
        let b = s(&mut st, "b");
        let ha = st.hash(a);
        let hb = ha ^ (1 << 40);
        st.index.remove(&index_key(st.hash(b)));
        st.slots.get_mut(b as usize).unwrap().hash = hb;
        st.slots.get_mut(b as usize).unwrap().next = a;
        st.index.insert(index_key(ha), b);
        assert_eq!(index_key(ha), index_key(hb));
        assert_eq!(
            st.find(ha, |_| true),
            Some(a),
            "the full hash is compared first"
        );
        assert_eq!(st.find(hb, |_| true), Some(b));
        st.decref(a);
        assert_eq!(st.find(ha, |_| true), None);
        assert_eq!(st.index.get(&index_key(ha)), Some(&b));
        st.decref(b);
        assert!(st.index.is_empty());
    }
}
