//! [`Node`]: one JSON-like value of the node store, whose containers refer to their children
//! by [`NodeId`] (layout.md §9.3 "Storage").
#![forbid(unsafe_code)]

/// Index of a node in the store's arena.
pub type NodeId = u32;

/// One JSON-like value. Containers refer to their children by [`NodeId`].
#[derive(Debug, Clone)]
pub enum Node {
    /// `null` / `None`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// A larger integer: sign and magnitude in base 2^15 digits, least significant first
    /// (CPython marshal's `TYPE_LONG` digits); never fits in `i64`.
    BigInt {
        /// True for a negative value.
        neg: bool,
        /// Magnitude digits, each `< 2^15`, least significant first, no leading zero digit.
        digits: Box<[u16]>,
    },
    /// A binary64 float (compared by bit pattern, so NaN equals itself).
    Float(f64),
    /// UTF-8 text.
    Str(Box<str>),
    /// Raw bytes (marshal `bytes`, or an opaque snapshot).
    Bytes(Box<[u8]>),
    /// A list: child ids in order.
    Array(Box<[NodeId]>),
    /// A dict: (key, value) ids in insertion order; every key is a [`Node::Str`], no key twice.
    Object(Box<[(NodeId, NodeId)]>),
    /// A free slot (on the free list).
    Free,
}

impl Node {
    /// Heap bytes the node's payload occupies (exact: boxed slices have no spare capacity).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Node::BigInt { digits, .. } => digits.len() * 2,
            Node::Str(s) => s.len(),
            Node::Bytes(b) => b.len(),
            Node::Array(a) => std::mem::size_of_val(&**a),
            Node::Object(o) => std::mem::size_of_val(&**o),
            _ => 0,
        }
    }

    /// The children this node holds a count on, in order (keys and values for objects).
    pub fn for_each_child(&self, mut f: impl FnMut(NodeId)) {
        match self {
            Node::Array(a) => a.iter().for_each(|&c| f(c)),
            Node::Object(o) => o.iter().for_each(|&(k, v)| {
                f(k);
                f(v)
            }),
            _ => {}
        }
    }

    /// Structural equality given that children are already interned (equal ids ⇔ equal values).
    pub fn same(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Null, Node::Null) => true,
            (Node::Bool(a), Node::Bool(b)) => a == b,
            (Node::Int(a), Node::Int(b)) => a == b,
            (Node::BigInt { neg: a, digits: x }, Node::BigInt { neg: b, digits: y }) => {
                a == b && x == y
            }
            (Node::Float(a), Node::Float(b)) => a.to_bits() == b.to_bits(),
            (Node::Str(a), Node::Str(b)) => a == b,
            (Node::Bytes(a), Node::Bytes(b)) => a == b,
            (Node::Array(a), Node::Array(b)) => a == b,
            (Node::Object(a), Node::Object(b)) => a == b,
            _ => false,
        }
    }

    /// A lower-case name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "bool",
            Node::Int(_) | Node::BigInt { .. } => "int",
            Node::Float(_) => "float",
            Node::Str(_) => "str",
            Node::Bytes(_) => "bytes",
            Node::Array(_) => "list",
            Node::Object(_) => "object",
            Node::Free => "free slot",
        }
    }
}
