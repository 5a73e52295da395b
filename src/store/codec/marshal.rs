//! CPython `marshal` (format version 4, and the older codes a v4 reader accepts) for plain
//! data, decoded straight into the node store and encoded back (layout.md §9.3 "Encodings").
//!
//! Accepted type codes: `N T F` (None, True, False), `i` (int32), `I` (int64), `l` (long in
//! base-2^15 digits), `g` (binary float), `f` (text float), `u t` (UTF-8 str), `a A z Z`
//! (ASCII str, 4-byte or 1-byte length), `s` (bytes), `( ) [` (tuple → list, list), `{`
//! (dict, ended by `0`), and `r` (back-reference). A type byte with bit 0x80 (`FLAG_REF`) adds
//! the object to the reference table, at the index it had when its type byte was read (so a
//! container's index precedes its children's, as in CPython's `r_ref_reserve`). Sets, code
//! objects, complex numbers, `StopIteration` and `Ellipsis` are not plain data and are refused.
//! The writer emits the codes CPython 3.4+ emits for the same values; it uses `FLAG_REF` and
//! `r` only for strings that occur more than once.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use crate::store::bigint;
use crate::store::builder::{Builder, MAX_DEPTH};
use crate::store::codec::recall::Recall;
use crate::store::codec::sink::Sink;
use crate::store::error::StoreError;
use crate::store::hash::BuildIdentity;
use crate::store::node::{Node, NodeId};
use crate::store::node_store::NodeStore;

const FLAG_REF: u8 = 0x80;

/// Decodes one marshal-encoded value into `store` and returns its root (holding one count).
///
/// # Errors
/// [`StoreError::Malformed`] naming the byte offset for truncated data, unknown or refused type codes,
/// bad references, non-string dict keys, duplicate keys and nesting deeper than [`MAX_DEPTH`];
/// [`StoreError::NotUtf8`] for a `str` that is not UTF-8 (e.g. a lone surrogate).
pub fn decode(store: &mut NodeStore, bytes: &[u8]) -> Result<NodeId, StoreError> {
    read(bytes, Builder::new(store), &mut Vec::new())?.finish()
}

/// Reads one marshal-encoded value into `sink` and hands the sink back, with the value on
/// it. `refs` is the reference table's storage (cleared first; pass the same one for every
/// snapshot of a batch to reuse it).
///
/// # Errors
/// As [`decode`], and whatever the sink refuses.
pub fn read<'a, S: Sink<'a>>(
    bytes: &'a [u8],
    sink: S,
    refs: &mut Vec<Option<S::Ref>>,
) -> Result<S, StoreError>
where
    S::Ref: PartialEq,
{
    refs.clear();
    finish(Reader {
        b: bytes,
        at: 0,
        out: sink,
        refs,
        recall: None,
        prev: None,
    })
}

/// [`read`] for one snapshot of a batch or a history: `recall` remembers the snapshot read
/// before with it (and `refs`), and a dict whose bytes and references did not change since is
/// taken over from it, with the value reading it would give (see [`Recall`]). `prev`: that
/// snapshot's bytes when the caller still has them (a batch), `None` for a
/// [`Recall::hashed`] memory (a history).
///
/// # Errors
/// As [`read`].
pub fn read_recalling<'a, S: Sink<'a>>(
    bytes: &'a [u8],
    prev: Option<&'a [u8]>,
    sink: S,
    refs: &mut Vec<Option<S::Ref>>,
    recall: &mut Recall<S::Ref>,
) -> Result<S, StoreError>
where
    S::Ref: PartialEq,
{
    recall.start(bytes.len(), refs);
    let r = finish(Reader {
        b: bytes,
        at: 0,
        out: sink,
        refs,
        recall: Some(&mut *recall),
        prev,
    });
    if r.is_err() {
        recall.forget();
    }
    r
}

/// Reads the value `r` is at the start of, and refuses bytes after it.
fn finish<'a, S: Sink<'a>>(mut r: Reader<'a, '_, S>) -> Result<S, StoreError>
where
    S::Ref: PartialEq,
{
    let bytes = r.b;
    r.value(0)?;
    if r.at != bytes.len() {
        return Err(r.err(&format!(
            "{} bytes left over after the value",
            bytes.len() - r.at
        )));
    }
    Ok(r.out)
}

struct Reader<'a, 'r, S: Sink<'a>> {
    b: &'a [u8],
    at: usize,
    out: S,
    /// The reference table: `None` while a container is still being read.
    refs: &'r mut Vec<Option<S::Ref>>,
    /// The memory of the previous snapshot, when reading one of a batch or a history.
    recall: Option<&'r mut Recall<S::Ref>>,
    /// The previous snapshot's bytes, when the caller still has them.
    prev: Option<&'a [u8]>,
}

impl<'a, S: Sink<'a>> Reader<'a, '_, S>
where
    S::Ref: PartialEq,
{
    #[cold]
    fn err(&self, what: &str) -> StoreError {
        StoreError::malformed(format!("invalid marshal data at byte {}: {what}", self.at))
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        match self
            .at
            .checked_add(n)
            .and_then(|end| self.b.get(self.at..end))
        {
            Some(s) => {
                self.at += n;
                Ok(s)
            }
            None => Err(self.truncated(n)),
        }
    }

    #[cold]
    fn truncated(&self, n: usize) -> StoreError {
        self.err(&format!("{n} bytes needed, data truncated"))
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    #[inline]
    fn i32(&mut self) -> Result<i32, StoreError> {
        Ok(i32::from_le_bytes(self.arr()?))
    }

    /// A length/count that must be ≥ 0 and, at `min_bytes` per item, fit the remaining input.
    fn count(&mut self, min_bytes: usize) -> Result<usize, StoreError> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| self.err("negative length"))?;
        let left = self.b.len() - self.at;
        if n.saturating_mul(min_bytes) > left {
            return Err(self.err(&format!("length {n} runs past the end of the data")));
        }
        Ok(n)
    }

    fn value(&mut self, depth: usize) -> Result<(), StoreError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting deeper than 512"));
        }
        let code = self.byte()?;
        let slot = if code & FLAG_REF != 0 {
            self.refs.push(None);
            Some(self.refs.len() - 1)
        } else {
            None
        };
        match code & !FLAG_REF {
            b'N' => self.out.scalar(Node::Null),
            b'T' => self.out.scalar(Node::Bool(true)),
            b'F' => self.out.scalar(Node::Bool(false)),
            b'i' => {
                let v = self.i32()?;
                self.out.scalar(Node::Int(i64::from(v)));
            }
            b'I' => {
                let v = i64::from_le_bytes(self.arr()?);
                self.out.scalar(Node::Int(v));
            }
            b'l' => self.long()?,
            b'g' => {
                let v = f64::from_le_bytes(self.arr()?);
                self.out.scalar(Node::Float(v));
            }
            b'f' => {
                let n = usize::from(self.byte()?);
                let text = self.take(n)?;
                let v = std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .ok_or_else(|| self.err("bad text float"))?;
                self.out.scalar(Node::Float(v));
            }
            b'u' | b't' => {
                let n = self.count(1)?;
                let text = self.take(n)?;
                let s = std::str::from_utf8(text)
                    .map_err(|e| StoreError::not_utf8("marshal str", e))?;
                self.out.str(s);
            }
            b'a' | b'A' => {
                let n = self.count(1)?;
                self.ascii(n)?;
            }
            b'z' | b'Z' => {
                let n = usize::from(self.byte()?);
                self.ascii(n)?;
            }
            b's' => {
                let n = self.count(1)?;
                let b = self.take(n)?;
                self.out.bytes(b);
            }
            b'(' | b'[' => {
                let n = self.count(1)?;
                self.items(n, depth, slot.is_some())?;
            }
            b')' => {
                let n = usize::from(self.byte()?);
                self.items(n, depth, slot.is_some())?;
            }
            b'{' if depth > 0 && slot.is_none() && self.recall.is_some() => {
                self.dict_recalled(depth)?;
            }
            b'{' => self.dict(depth)?,
            b'r' => {
                let i = u32::from_le_bytes(self.arr()?) as usize;
                match self.refs.get(i) {
                    Some(Some(id)) => {
                        let id = *id;
                        self.out.again(id);
                        if let Some(m) = self.recall.as_deref_mut() {
                            m.used(i as u32);
                        }
                    }
                    Some(None) => return Err(self.err("recursive reference")),
                    None => return Err(self.err(&format!("reference {i} was never defined"))),
                }
            }
            b'<' | b'>' => return Err(self.err("sets are not plain data")),
            b'c' => return Err(self.err("code objects are not plain data")),
            b'x' | b'y' => return Err(self.err("complex numbers are not plain data")),
            b'S' | b'.' => return Err(self.err("StopIteration/Ellipsis are not plain data")),
            b'0' => return Err(self.err("null object where a value was expected")),
            other => return Err(self.err(&format!("unknown type code 0x{other:02x}"))),
        }
        if let Some(slot) = slot {
            if let Some(entry) = self.refs.get_mut(slot) {
                *entry = self.out.top();
            }
        }
        Ok(())
    }

    fn ascii(&mut self, n: usize) -> Result<(), StoreError> {
        let b = self.take(n)?;
        // CPython reads these codes as Latin-1; its writer only uses them for ASCII.
        self.out.latin1(b);
        Ok(())
    }

    fn long(&mut self) -> Result<(), StoreError> {
        let n = self.i32()?;
        let neg = n < 0;
        let count = n.unsigned_abs() as usize;
        if count.saturating_mul(2) > self.b.len() - self.at {
            return Err(self.err(&format!("long of {count} digits runs past the end")));
        }
        let mut digits = Vec::with_capacity(count);
        for _ in 0..count {
            let d = u16::from_le_bytes(self.arr()?);
            if d >= 1 << bigint::DIGIT_BITS {
                return Err(self.err("long digit out of range"));
            }
            digits.push(d);
        }
        bigint::trim(&mut digits);
        match bigint::to_i64(neg, &digits) {
            Some(v) => self.out.scalar(Node::Int(v)),
            None => self.out.big_int(neg, digits),
        }
        Ok(())
    }

    fn items(&mut self, n: usize, depth: usize, referenced: bool) -> Result<(), StoreError> {
        for _ in 0..n {
            self.value(depth + 1)?;
        }
        self.out.list(n, depth, referenced)
    }

    /// [`Reader::dict`] of a dict (not the root, not flagged) the previous snapshot of the
    /// batch may have read already: taken over from it when it can be, else read and
    /// remembered.
    fn dict_recalled(&mut self, depth: usize) -> Result<(), StoreError> {
        let start = self.at - 1;
        let Some(m) = self.recall.as_deref_mut() else {
            return self.dict(depth);
        };
        if let Some(len) = m.recall(self.b, self.prev, start, depth, self.refs) {
            if let Some(&val) = m.last() {
                self.at = start + len;
                self.out.again(val);
                return Ok(());
            }
        }
        let mark = m.begin(start, depth, self.refs.len());
        self.dict(depth)?;
        let top = self.out.top();
        if let Some(m) = self.recall.as_deref_mut() {
            m.end(mark, self.b, self.at, self.refs.len(), top);
        }
        Ok(())
    }

    fn dict(&mut self, depth: usize) -> Result<(), StoreError> {
        let mut n = 0;
        loop {
            match self.b.get(self.at) {
                Some(b'0') => {
                    self.at += 1;
                    return self.out.object(n, depth);
                }
                Some(_) => {
                    self.value(depth + 1)?;
                    self.value(depth + 1)?;
                    n += 1;
                }
                None => return Err(self.err("dict not terminated")),
            }
        }
    }
}

/// Encodes `id` in marshal format 4 into `out`; `marshal.loads` reads it back.
///
/// A string stored once but used more than once in the value is written the first time with
/// `FLAG_REF` and afterwards as an `r` back-reference, as CPython does for shared strings:
/// `marshal.loads` then builds it once (faster, less memory). Containers are never shared
/// this way, so every list and dict the client gets back is its own mutable object.
///
/// # Errors
/// [`StoreError::Unencodable`] for a string, bytes or container longer than `i32::MAX`.
pub fn encode_into(store: &NodeStore, id: NodeId, out: &mut Vec<u8>) -> Result<(), StoreError> {
    Encoder::default().write(store, id, out)
}

/// Encodes `id` in marshal format 4.
///
/// # Errors
/// As [`encode_into`].
pub fn encode(store: &NodeStore, id: NodeId) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(256);
    encode_into(store, id, &mut out)?;
    Ok(out)
}

/// The state of one marshal stream: the strings written with `FLAG_REF` so far. Writing
/// several values with one encoder into one stream (a list the caller frames itself, such as
/// a move patch) lets a later value back-reference a string an earlier one wrote.
#[derive(Debug, Default)]
pub struct Encoder {
    /// Strings written with `FLAG_REF`, by node id → reference index.
    refs: HashMap<NodeId, u32, BuildIdentity>,
    next_ref: u32,
}

impl Encoder {
    /// Appends `id` to `out` as [`encode_into`] does, sharing references with the values this
    /// encoder wrote before into the same stream.
    ///
    /// # Errors
    /// As [`encode_into`].
    pub fn write(
        &mut self,
        store: &NodeStore,
        id: NodeId,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        Writer {
            store,
            out,
            enc: self,
        }
        .value(id)
    }
}

/// Appends the str `s` as CPython writes a str no one refers back to: `z` for ASCII under
/// 256 bytes, else `a`, else `u` (for keys and pointers a caller frames around values).
///
/// # Errors
/// [`StoreError::Unencodable`] for a str longer than `i32::MAX` bytes.
pub fn write_str(s: &str, out: &mut Vec<u8>) -> Result<(), StoreError> {
    write_str_flagged(s, 0, out)
}

/// Appends the str `s` with `FLAG_REF` (so it takes the next reference index of the stream),
/// for a caller that keeps its own table of strings it refers back to with [`write_ref`].
///
/// # Errors
/// As [`write_str`].
pub fn write_str_ref(s: &str, out: &mut Vec<u8>) -> Result<(), StoreError> {
    write_str_flagged(s, FLAG_REF, out)
}

/// Appends `r` and the reference index `index` (a value written earlier with `FLAG_REF`).
pub fn write_ref(index: u32, out: &mut Vec<u8>) {
    out.push(b'r');
    out.extend_from_slice(&index.to_le_bytes());
}

fn write_str_flagged(s: &str, flag: u8, out: &mut Vec<u8>) -> Result<(), StoreError> {
    if s.is_ascii() && s.len() < 256 {
        out.push(b'z' | flag);
        out.push(s.len() as u8);
    } else {
        out.push(if s.is_ascii() { b'a' } else { b'u' } | flag);
        write_len(s.len(), out)?;
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Appends `n` as CPython writes an int: `i` (int32) when it fits, else `l`.
///
/// # Errors
/// Never for an `i64`; the `Result` matches the other writers.
pub fn write_int(n: i64, out: &mut Vec<u8>) -> Result<(), StoreError> {
    match i32::try_from(n) {
        Ok(small) => {
            out.push(b'i');
            out.extend_from_slice(&small.to_le_bytes());
            Ok(())
        }
        Err(_) => {
            let (neg, digits) = bigint::from_i64(n);
            write_long(neg, &digits, out)
        }
    }
}

/// Appends a list header (`[` and the item count), the items to follow.
///
/// # Errors
/// [`StoreError::Unencodable`] for more than `i32::MAX` items.
pub fn write_list_header(n: usize, out: &mut Vec<u8>) -> Result<(), StoreError> {
    out.push(b'[');
    write_len(n, out)
}

struct Writer<'s, 'o, 'e> {
    store: &'s NodeStore,
    out: &'o mut Vec<u8>,
    enc: &'e mut Encoder,
}

impl Writer<'_, '_, '_> {
    fn value(&mut self, id: NodeId) -> Result<(), StoreError> {
        let out = &mut *self.out;
        match self.store.node(id) {
            Node::Null => out.push(b'N'),
            Node::Bool(true) => out.push(b'T'),
            Node::Bool(false) => out.push(b'F'),
            Node::Int(v) => write_int(*v, out)?,
            Node::BigInt { neg, digits } => write_long(*neg, digits, out)?,
            Node::Float(f) => {
                out.push(b'g');
                out.extend_from_slice(&f.to_le_bytes());
            }
            Node::Str(s) => {
                if let Some(&r) = self.enc.refs.get(&id) {
                    out.push(b'r');
                    out.extend_from_slice(&r.to_le_bytes());
                    return Ok(());
                }
                let flag = if self.store.refs(id) > 1 {
                    self.enc.refs.insert(id, self.enc.next_ref);
                    self.enc.next_ref += 1;
                    FLAG_REF
                } else {
                    0
                };
                write_str_flagged(s, flag, out)?;
            }
            Node::Bytes(b) => {
                out.push(b's');
                write_len(b.len(), out)?;
                out.extend_from_slice(b);
            }
            Node::Array(a) => {
                write_list_header(a.len(), out)?;
                for &c in a.iter() {
                    self.value(c)?;
                }
            }
            Node::Object(o) => {
                out.push(b'{');
                for &(k, v) in o.iter() {
                    self.value(k)?;
                    self.value(v)?;
                }
                self.out.push(b'0');
            }
            Node::Free => {
                return Err(StoreError::Unencodable(
                    "internal: free node reached".into(),
                ))
            }
        }
        Ok(())
    }
}

fn write_len(n: usize, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let n = i32::try_from(n)
        .map_err(|_| StoreError::Unencodable(format!("length {n} does not fit marshal's i32")))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

fn write_long(neg: bool, digits: &[u16], out: &mut Vec<u8>) -> Result<(), StoreError> {
    out.push(b'l');
    let n = i32::try_from(digits.len())
        .map_err(|_| StoreError::Unencodable("integer too large for marshal".into()))?;
    out.extend_from_slice(&(if neg { -n } else { n }).to_le_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::json;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `marshal.dumps(obj, 4).hex()` from CPython 3.11 for
    /// `{"name": "ui", "n": [1, -2, 70000, 2**40, -2**70], "f": 1.5, "t": (True, False, None),
    ///   "rows": [{"id": 1, "k": "é"}, {"id": 2, "k": "é"}], "b": b"\x00\x01"}`.
    /// It uses FLAG_REF and back-references ('r') for the repeated keys "id" and "k".
    const FIXTURE: &str = include_str!("../../../tests/fixtures/marshal_v4.hex");
    const FIXTURE_JSON: &str = include_str!("../../../tests/fixtures/marshal_v4.json");

    #[test]
    fn decodes_cpython_bytes_with_back_references() {
        let bytes = unhex(FIXTURE.trim());
        assert!(bytes.contains(&b'r'), "fixture has back-references");
        let mut st = NodeStore::new();
        let id = decode(&mut st, &bytes).unwrap();
        // Compare without the bytes field (JSON cannot hold bytes), via a JSON re-encode.
        let Node::Object(pairs) = st.node(id).clone() else {
            panic!("not an object")
        };
        let mut b = Builder::new(&mut st);
        let mut n = 0;
        for (k, v) in pairs.iter() {
            if json::encode(b.store(), *v).is_ok() {
                b.push_existing(*k);
                b.push_existing(*v);
                n += 1;
            }
        }
        b.finish_object(n).unwrap();
        let no_bytes = b.finish().unwrap();
        let text = String::from_utf8(json::encode(&st, no_bytes).unwrap()).unwrap();
        assert_eq!(text, FIXTURE_JSON.trim());
        // Our encoding differs from CPython's only in not using references; it decodes to
        // the very same node.
        let again = encode(&st, id).unwrap();
        let id2 = decode(&mut st, &again).unwrap();
        assert_eq!(id, id2);
    }

    #[test]
    fn every_truncation_is_an_error_and_leaves_the_store_as_it_was() {
        let bytes = unhex(FIXTURE.trim());
        let mut st = NodeStore::new();
        for cut in 0..bytes.len() {
            let e = decode(&mut st, &bytes[..cut]).unwrap_err();
            assert!(matches!(e, StoreError::Malformed(_)), "cut {cut}: {e}");
        }
        assert_eq!(st.stats().nodes, 0);
    }

    #[test]
    fn refused_and_hostile_codes_are_clear_errors() {
        let mut st = NodeStore::new();
        let cases: [(&[u8], &str); 7] = [
            (b"<\x00\x00\x00\x00", "sets"),
            (b"r\x05\x00\x00\x00", "never defined"),
            (b"\xdb\x01\x00\x00\x00r\x00\x00\x00\x00", "recursive"),
            (b"[\xff\xff\xff\x7f", "runs past"),
            (b"{i\x01\x00\x00\x00N0", "key must be a string"),
            (b"Q", "unknown type code 0x51"),
            (b"NN", "left over"),
        ];
        for (bytes, want) in cases {
            let e = decode(&mut st, bytes).unwrap_err();
            assert!(e.to_string().contains(want), "{want}: {e}");
        }
        let e = decode(&mut st, b"u\x03\x00\x00\x00\xed\xa0\x80").unwrap_err();
        assert!(
            matches!(e, StoreError::NotUtf8 { .. }),
            "lone surrogate: {e}"
        );
        assert_eq!(st.stats().nodes, 0);
    }

    /// `{"a": [l1, l2, …, ln]}` where `l1 = []` and `l(i+1)` is a list of `width`
    /// back-references to `l(i)`: the stream nests 3 deep, the value `n - 1`.
    fn reference_chain(n: u32, width: u8) -> Vec<u8> {
        let mut b = b"{\xfa\x01a[".to_vec();
        b.extend_from_slice(&n.to_le_bytes());
        b.extend_from_slice(b"\xdb\x00\x00\x00\x00");
        for i in 1..n {
            b.extend_from_slice(&[0xdb, width, 0, 0, 0]);
            for _ in 0..width {
                b.push(b'r');
                b.extend_from_slice(&i.to_le_bytes());
            }
        }
        b.push(b'0');
        b
    }

    #[test]
    fn shared_values_that_expand_without_bound_are_refused_and_release_everything() {
        let mut st = NodeStore::new();
        // 30 levels of [x, x]: 2^30 leaves, far beyond MAX_EXPANDED_BYTES.
        let e = decode(&mut st, &reference_chain(31, 2)).unwrap_err();
        assert!(e.to_string().contains("expands to more than"), "{e}");
        assert_eq!(st.stats().nodes, 0);
        // A few levels are fine and round-trip.
        let id = decode(&mut st, &reference_chain(8, 2)).unwrap();
        let again = encode(&st, id).unwrap();
        assert_eq!(decode(&mut st, &again).unwrap(), id);
    }

    #[test]
    fn back_reference_chains_deeper_than_the_limit_are_refused() {
        let mut st = NodeStore::new();
        let e = decode(&mut st, &reference_chain(200_000, 1)).unwrap_err();
        assert!(e.to_string().contains("nesting deeper than 512"), "{e}");
        assert_eq!(st.stats().nodes, 0);
    }

    #[test]
    fn ints_pick_the_cpython_codes() {
        let mut st = NodeStore::new();
        let small = st.intern(Node::Int(-5));
        assert_eq!(encode(&st, small).unwrap(), b"i\xfb\xff\xff\xff");
        let big = st.intern(Node::Int(1 << 40));
        let enc = encode(&st, big).unwrap();
        assert_eq!(&enc[..5], b"l\x03\x00\x00\x00");
        assert_eq!(decode(&mut st, &enc).unwrap(), big);
    }
}
