//! Seeded random marshal snapshots for tests: documents shaped like a GUI's state (lists of
//! entries with nested dicts), edits of them, and marshal bytes whose back-references are
//! chosen at random, so equal bytes can name different values from one snapshot to the next.

use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// xorshift64: a fixed, dependency-free stream.
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// True once in `n` times.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next_u64().is_multiple_of(n)
    }
}

/// Marshal bytes of `v` with references chosen at random: a str is written with `FLAG_REF`
/// or not, a value written with it before is named again by `r` or written out again, a
/// container is flagged now and then. So equal bytes (`r 3`) can name different values in
/// two snapshots of a batch.
struct Writer<'r> {
    out: Vec<u8>,
    /// Text of a complete, flagged value → its reference index.
    seen: HashMap<String, u32>,
    next: u32,
    rng: &'r mut Rng,
    /// One in how many strs, and containers, are flagged (0: none).
    str_flags: u64,
    container_flags: u64,
}

impl Writer<'_> {
    fn value(&mut self, v: &Value, root: bool) {
        let text = v.to_string();
        if !root && matches!(v, Value::String(_) | Value::Array(_) | Value::Object(_)) {
            if let Some(&i) = self.seen.get(&text) {
                if !self.rng.one_in(4) {
                    self.out.push(b'r');
                    self.out.extend_from_slice(&i.to_le_bytes());
                    return;
                }
            }
        }
        let flag = !root
            && match v {
                Value::String(_) => self.str_flags > 0 && self.rng.one_in(self.str_flags),
                Value::Array(_) | Value::Object(_) => {
                    self.container_flags > 0 && self.rng.one_in(self.container_flags)
                }
                _ => false,
            };
        let index = self.next;
        if flag {
            self.next += 1;
        }
        let at = self.out.len();
        match v {
            Value::Null => self.out.push(b'N'),
            Value::Bool(b) => self.out.push(if *b { b'T' } else { b'F' }),
            Value::Number(n) => {
                self.out.push(b'i');
                let n = n.as_i64().unwrap() as i32;
                self.out.extend_from_slice(&n.to_le_bytes());
            }
            Value::String(s) if s.is_ascii() && s.len() < 256 => {
                self.out.extend_from_slice(&[b'z', s.len() as u8]);
                self.out.extend_from_slice(s.as_bytes());
            }
            Value::String(s) => {
                self.out.push(b'u');
                self.out.extend_from_slice(&(s.len() as i32).to_le_bytes());
                self.out.extend_from_slice(s.as_bytes());
            }
            Value::Array(a) => {
                self.out.push(b'[');
                self.out.extend_from_slice(&(a.len() as i32).to_le_bytes());
                a.iter().for_each(|x| self.value(x, false));
            }
            Value::Object(o) => {
                self.out.push(b'{');
                for (k, x) in o {
                    self.value(&Value::String(k.clone()), false);
                    self.value(x, false);
                }
                self.out.push(b'0');
            }
        }
        if flag {
            self.out[at] |= 0x80;
            self.seen.insert(text, index);
        }
    }
}

/// Marshal bytes of `v`, flagging as CPython does (every str the first time), or a few, or
/// none, and some containers or none.
pub fn marshal(v: &Value, rng: &mut Rng) -> Vec<u8> {
    let str_flags = [1, 1, 2, 0][rng.below(4)] as u64;
    let container_flags = [0, 0, 5][rng.below(3)] as u64;
    let mut w = Writer {
        out: Vec::new(),
        seen: HashMap::new(),
        next: 0,
        rng,
        str_flags,
        container_flags,
    };
    w.value(v, true);
    w.out
}

/// A small word, so equal strings (and references to them) are common.
pub fn word(rng: &mut Rng) -> Value {
    let words = ["a", "b", "user", "assistant", "é", "some longer text here"];
    json!(words[rng.below(words.len())])
}

/// One entry of a list: a dict of a few words, some of them nested dicts or lists.
pub fn entry(rng: &mut Rng) -> Value {
    let mut m = Map::new();
    for _ in 0..1 + rng.below(4) {
        let k = word(rng).as_str().unwrap().to_string();
        let v = match rng.below(5) {
            0 => json!(rng.below(3)),
            1 => json!({"in": word(rng)}),
            2 => json!({"in": {"deeper": [word(rng)]}, "b": word(rng)}),
            3 => json!([word(rng)]),
            _ => word(rng),
        };
        m.insert(k, v);
    }
    Value::Object(m)
}

/// One random edit somewhere in `doc`'s lists of entries (or a new top-level field).
pub fn edit(doc: &mut Value, rng: &mut Rng) {
    let keys: Vec<String> = doc.as_object().unwrap().keys().cloned().collect();
    let k = &keys[rng.below(keys.len())];
    let field = doc.get_mut(k).unwrap();
    match (field.as_array_mut(), rng.below(5)) {
        (Some(list), 0) => list.push(entry(rng)),
        (Some(list), 1) if !list.is_empty() => {
            list.remove(rng.below(list.len()));
        }
        (Some(list), 2) => list.insert(rng.below(list.len() + 1), entry(rng)),
        (Some(list), 3) if !list.is_empty() => {
            let i = rng.below(list.len());
            list[i] = entry(rng);
        }
        // One field of an entry: its other values (nested dicts) stay, at shifted offsets.
        (Some(list), _) if !list.is_empty() => {
            let i = rng.below(list.len());
            if let Some(m) = list[i].as_object_mut() {
                m.insert("a".to_string(), word(rng));
            }
        }
        _ => *field = word(rng),
    }
}

/// `{"k": "x" (flagged: reference 1), "l": [{"a": r 1}]}`, with `x` given.
pub fn inner_names_ref_1(x: &[u8]) -> Vec<u8> {
    let mut b = b"{\xda\x01k\xda\x01".to_vec();
    b.extend_from_slice(x);
    b.extend_from_slice(b"\xda\x01l[\x01\x00\x00\x00{z\x01ar\x01\x00\x00\x0000");
    b
}
