//! The marshal batch path (summaries, with dicts recalled from the previous snapshot) against
//! the node-store path over the same bytes, on seeded random batches whose snapshots are
//! edits of each other and whose back-references change meaning from one to the next.

use serde_json::{json, Map, Value};
use std::collections::HashMap;

use super::*;

/// xorshift64: a fixed, dependency-free stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
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
fn marshal(v: &Value, rng: &mut Rng) -> Vec<u8> {
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
fn word(rng: &mut Rng) -> Value {
    let words = ["a", "b", "user", "assistant", "é", "some longer text here"];
    json!(words[rng.below(words.len())])
}

fn entry(rng: &mut Rng) -> Value {
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
fn edit(doc: &mut Value, rng: &mut Rng) {
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

fn assert_paths_agree(items: &[Vec<u8>]) {
    let items: Vec<&[u8]> = items.iter().map(|i| i.as_slice()).collect();
    let fast = describe(Encoding::Marshal, &items).map_err(|e| e.to_string());
    let slow = describe_interned(Encoding::Marshal, &items).map_err(|e| e.to_string());
    assert_eq!(fast, slow);
}

#[test]
fn random_batches_of_edits_describe_alike_on_both_paths() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..1000 {
        let mut doc = json!({
            "discussion": (0..rng.below(12)).map(|_| entry(&mut rng)).collect::<Vec<_>>(),
            "files": (0..rng.below(6)).map(|_| entry(&mut rng)).collect::<Vec<_>>(),
            "title": word(&mut rng),
        });
        let mut items = Vec::new();
        for _ in 0..8 {
            items.push(marshal(&doc, &mut rng));
            // Now and then the same document twice (everything recalled), else an edit.
            if !rng.one_in(4) {
                edit(&mut doc, &mut rng);
            }
        }
        assert_paths_agree(&items);
        // A snapshot with a few bytes changed, after ones that read well: the same error,
        // or the same descriptions.
        for _ in 0..10 {
            let mut bad = items.clone();
            let last = bad.last_mut().unwrap();
            for _ in 0..1 + rng.below(2) {
                let at = rng.below(last.len());
                last[at] = rng.next() as u8;
            }
            assert_paths_agree(&bad);
        }
    }
}

/// `{"k": "x" (flagged: reference 1), "l": [{"a": r 1}]}`, with `x` given.
fn inner_names_ref_1(x: &[u8]) -> Vec<u8> {
    let mut b = b"{\xda\x01k\xda\x01".to_vec();
    b.extend_from_slice(x);
    b.extend_from_slice(b"\xda\x01l[\x01\x00\x00\x00{z\x01ar\x01\x00\x00\x0000");
    b
}

#[test]
fn a_dict_with_the_same_bytes_is_not_recalled_when_its_references_changed() {
    let one = inner_names_ref_1(b"x");
    let two = inner_names_ref_1(b"y");
    assert_paths_agree(&[one.clone(), two.clone(), two.clone(), one.clone()]);
    let got = describe(Encoding::Marshal, &[&one, &two]).unwrap();
    let Change::Fields { changed, lists } = &got[1].change else {
        panic!("{:?}", got[1]);
    };
    assert_eq!(changed, &["k", "l"]);
    assert_eq!(lists[0].1.changed, [0]);
}

#[test]
fn a_dict_with_the_same_bytes_deeper_down_meets_the_depth_limit() {
    // `{"l": [[…{"a": [[…None…]]}…]]}`: the inner dict (300 levels deep itself) is the same
    // bytes at depth `outer + 1`; 200 outer levels fit in 512, 300 do not.
    let nested = |outer: usize| {
        let mut b = b"{z\x01l".to_vec();
        b.extend(b"[\x01\x00\x00\x00".repeat(outer));
        b.extend_from_slice(b"{z\x01a");
        b.extend(b"[\x01\x00\x00\x00".repeat(300));
        b.extend_from_slice(b"N00");
        b
    };
    let (shallow, deep) = (nested(200), nested(300));
    // 512 levels of an unoptimized reader take more than a test thread's stack.
    let run = move || {
        assert_paths_agree(&[shallow.clone(), shallow.clone(), deep.clone()]);
        let items: [&[u8]; 2] = [&shallow, &deep];
        let e = describe(Encoding::Marshal, &items).unwrap_err().to_string();
        assert!(e.contains("nesting deeper than 512"), "{e}");
    };
    let big = std::thread::Builder::new().stack_size(256 << 20);
    big.spawn(run).unwrap().join().unwrap();
}
