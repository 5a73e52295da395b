//! JSON (RFC 8259, plus Python's `NaN`/`Infinity`/`-Infinity`) decoded straight into the node
//! store and encoded back from it (layout.md §9.3 "Encodings").
//!
//! The decoder builds nodes bottom-up through a [`Builder`], so an unchanged subtree is found
//! in the store as it is parsed and never allocated twice. Object key order is kept.
#![forbid(unsafe_code)]

use crate::store::bigint;
use crate::store::builder::{Builder, MAX_DEPTH};
use crate::store::error::StoreError;
use crate::store::node::{Node, NodeId};
use crate::store::node_store::NodeStore;

/// Decodes one JSON document into `store` and returns its root (holding one count).
///
/// # Errors
/// [`StoreError::NotUtf8`] for bytes that are not UTF-8; [`StoreError::Malformed`] naming the byte offset for any
/// syntax error, nesting deeper than [`MAX_DEPTH`], a duplicate key or a lone surrogate.
pub fn decode(store: &mut NodeStore, bytes: &[u8]) -> Result<NodeId, StoreError> {
    std::str::from_utf8(bytes).map_err(|e| StoreError::not_utf8("json snapshot", e))?;
    let mut p = Parser {
        b: bytes,
        at: 0,
        out: Builder::new(store),
        scratch: String::new(),
    };
    p.ws();
    p.value(0)?;
    p.ws();
    if p.at != bytes.len() {
        return Err(p.err("unexpected data after the json value"));
    }
    p.out.finish()
}

struct Parser<'a, 's> {
    b: &'a [u8],
    at: usize,
    out: Builder<'s>,
    scratch: String,
}

impl<'a> Parser<'a, '_> {
    fn err(&self, what: &str) -> StoreError {
        StoreError::malformed(format!("invalid json at byte {}: {what}", self.at))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.b.get(self.at..self.at + lit.len()) == Some(lit) {
            self.at += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), StoreError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting deeper than 512"));
        }
        match self.b.get(self.at) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string(),
            Some(b't') if self.eat(b"true") => {
                self.out.push(Node::Bool(true));
                Ok(())
            }
            Some(b'f') if self.eat(b"false") => {
                self.out.push(Node::Bool(false));
                Ok(())
            }
            Some(b'n') if self.eat(b"null") => {
                self.out.push(Node::Null);
                Ok(())
            }
            Some(b'N') if self.eat(b"NaN") => {
                self.out.push(Node::Float(f64::NAN));
                Ok(())
            }
            Some(b'I') if self.eat(b"Infinity") => {
                self.out.push(Node::Float(f64::INFINITY));
                Ok(())
            }
            Some(b'-') if self.eat(b"-Infinity") => {
                self.out.push(Node::Float(f64::NEG_INFINITY));
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), StoreError> {
        let n = self.items(b"}", "expected ',' or '}'", |p| {
            if p.b.get(p.at) != Some(&b'"') {
                return Err(p.err("expected a string key"));
            }
            p.string()?;
            p.ws();
            if !p.eat(b":") {
                return Err(p.err("expected ':'"));
            }
            p.ws();
            p.value(depth + 1)
        })?;
        self.out.finish_object(n)
    }

    fn array(&mut self, depth: usize) -> Result<(), StoreError> {
        let n = self.items(b"]", "expected ',' or ']'", |p| p.value(depth + 1))?;
        self.out.finish_array(n)
    }

    /// Parses the `,`-separated items of an object or array from its opening bracket (at
    /// `self.at`) through `close`, each with `item`; returns how many there were.
    fn items(
        &mut self,
        close: &[u8],
        expected: &str,
        mut item: impl FnMut(&mut Self) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        self.at += 1;
        self.ws();
        if self.eat(close) {
            return Ok(0);
        }
        let mut n = 0;
        loop {
            item(self)?;
            n += 1;
            self.ws();
            if self.eat(b",") {
                self.ws();
                continue;
            }
            if self.eat(close) {
                return Ok(n);
            }
            return Err(self.err(expected));
        }
    }

    /// Parses a string at `self.at` (on its opening quote) and pushes it.
    fn string(&mut self) -> Result<(), StoreError> {
        self.at += 1;
        let start = self.at;
        // Fast path: no escapes, no allocation when the string is already stored.
        while let Some(&c) = self.b.get(self.at) {
            match c {
                b'"' => {
                    let text = self.utf8(start, self.at)?;
                    self.at += 1;
                    self.out.push_str(text);
                    return Ok(());
                }
                b'\\' => break,
                c if c < 0x20 => return Err(self.err("control character in string")),
                _ => self.at += 1,
            }
        }
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        s.push_str(self.utf8(start, self.at)?);
        let r = self.escaped(&mut s);
        if r.is_ok() {
            self.out.push_str(&s);
        }
        self.scratch = s;
        r
    }

    /// The text of `b[from..to]`, borrowed from the input (not from `self`).
    fn utf8(&self, from: usize, to: usize) -> Result<&'a str, StoreError> {
        let b: &'a [u8] = self.b;
        let bytes = b.get(from..to).unwrap_or_default();
        // The whole input was validated as UTF-8 and quotes/backslashes are ASCII, so this
        // slice always sits on character boundaries.
        std::str::from_utf8(bytes).map_err(|e| StoreError::not_utf8("json string", e))
    }

    fn escaped(&mut self, s: &mut String) -> Result<(), StoreError> {
        loop {
            let start = self.at;
            while let Some(&c) = self.b.get(self.at) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.at += 1;
            }
            s.push_str(self.utf8(start, self.at)?);
            match self.b.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.at += 1;
                    let e = self.b.get(self.at).copied();
                    self.at += 1;
                    match e {
                        Some(b'"') => s.push('"'),
                        Some(b'\\') => s.push('\\'),
                        Some(b'/') => s.push('/'),
                        Some(b'b') => s.push('\u{8}'),
                        Some(b'f') => s.push('\u{c}'),
                        Some(b'n') => s.push('\n'),
                        Some(b'r') => s.push('\r'),
                        Some(b't') => s.push('\t'),
                        Some(b'u') => {
                            let c = self.unicode_escape()?;
                            s.push(c);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, StoreError> {
        let digits = self
            .b
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let x = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.err("bad hex digit in \\u escape"))?;
            v = v * 16 + x;
        }
        self.at += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char, StoreError> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if !self.eat(b"\\u") {
                return Err(self.err("lone surrogate in \\u escape"));
            }
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.err("lone surrogate in \\u escape"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.err("lone surrogate in \\u escape"))
    }

    fn number(&mut self) -> Result<(), StoreError> {
        let start = self.at;
        let neg = self.eat(b"-");
        let int_start = self.at;
        match self.b.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("expected a digit")),
        }
        let int_end = self.at;
        let mut float = false;
        if self.eat(b".") {
            float = true;
            if !matches!(self.b.get(self.at), Some(b'0'..=b'9')) {
                return Err(self.err("expected a digit after '.'"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.b.get(self.at) {
            float = true;
            self.at += 1;
            if let Some(b'+' | b'-') = self.b.get(self.at) {
                self.at += 1;
            }
            if !matches!(self.b.get(self.at), Some(b'0'..=b'9')) {
                return Err(self.err("expected a digit in the exponent"));
            }
            self.digits();
        }
        let text = self.utf8(start, self.at)?;
        if float {
            let v: f64 = text.parse().map_err(|_| self.err("bad number"))?;
            self.out.push(Node::Float(v));
        } else if let Ok(v) = text.parse::<i64>() {
            self.out.push(Node::Int(v));
        } else {
            let digits = self
                .b
                .get(int_start..int_end)
                .and_then(bigint::from_decimal)
                .ok_or_else(|| self.err("bad integer"))?;
            self.out.push(Node::BigInt {
                neg,
                digits: digits.into(),
            });
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.b.get(self.at) {
            self.at += 1;
        }
    }
}

/// Encodes `id` as compact JSON (no spaces, UTF-8 kept as is) into `out`.
///
/// # Errors
/// [`StoreError::Unencodable`] when the value holds bytes, which JSON cannot express.
pub fn encode_into(store: &NodeStore, id: NodeId, out: &mut Vec<u8>) -> Result<(), StoreError> {
    match store.node(id) {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(true) => out.extend_from_slice(b"true"),
        Node::Bool(false) => out.extend_from_slice(b"false"),
        Node::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Node::BigInt { neg, digits } => {
            if *neg {
                out.push(b'-');
            }
            out.extend_from_slice(bigint::to_decimal(digits).as_bytes());
        }
        Node::Float(f) => write_float(*f, out),
        Node::Str(s) => write_str(s, out),
        Node::Bytes(_) => {
            return Err(StoreError::Unencodable(
                "the snapshot holds bytes, which json cannot encode (ask for marshal)".into(),
            ))
        }
        Node::Array(a) => {
            out.push(b'[');
            for (i, &c) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode_into(store, c, out)?;
            }
            out.push(b']');
        }
        Node::Object(o) => {
            out.push(b'{');
            for (i, &(k, v)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode_into(store, k, out)?;
                out.push(b':');
                encode_into(store, v, out)?;
            }
            out.push(b'}');
        }
        Node::Free => {
            return Err(StoreError::Unencodable(
                "internal: free node reached".into(),
            ))
        }
    }
    Ok(())
}

/// Encodes `id` as compact JSON.
///
/// # Errors
/// As [`encode_into`].
pub fn encode(store: &NodeStore, id: NodeId) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(256);
    encode_into(store, id, &mut out)?;
    Ok(out)
}

/// Writes a float the way Python's `json` reads it back bit-exactly: shortest round-trip digits
/// with a `.0` or exponent so it stays a float; `NaN`, `Infinity`, `-Infinity` as Python writes them.
pub fn write_float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        // `Debug` prints the shortest digits that round-trip, always with '.' or 'e'.
        out.extend_from_slice(format!("{f:?}").as_bytes());
    }
}

/// Writes a JSON string literal, escaping `"`, `\` and control characters.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            c if c < 0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> String {
        let mut st = NodeStore::new();
        let id = decode(&mut st, text.as_bytes()).unwrap();
        String::from_utf8(encode(&st, id).unwrap()).unwrap()
    }

    #[test]
    fn values_round_trip_compactly_in_key_order() {
        assert_eq!(
            round(r#" { "b" : [1, 2.5, -0.0, true, null], "a": "x\"y\\z\n", "c": {} } "#),
            r#"{"b":[1,2.5,-0.0,true,null],"a":"x\"y\\z\n","c":{}}"#
        );
        assert_eq!(round("1e16"), "1e16");
        assert_eq!(round("1.0"), "1.0");
        assert_eq!(
            round("[NaN,Infinity,-Infinity]"),
            "[NaN,Infinity,-Infinity]"
        );
        assert_eq!(
            round("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
        assert_eq!(round("-9223372036854775809"), "-9223372036854775809");
        assert_eq!(round(r#""\u00e9\ud83d\ude00\u0001""#), "\"é😀\\u0001\"");
    }

    #[test]
    fn bad_json_is_a_clear_error_and_stores_nothing() {
        let mut st = NodeStore::new();
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "\"abc",
            "[1] x",
            "{\"a\":1,\"a\":2}",
            r#""\ud800""#,
            "tru",
            "{1:2}",
        ] {
            let e = decode(&mut st, bad.as_bytes()).unwrap_err();
            assert!(
                matches!(&e, StoreError::Malformed(m) if !m.is_empty()),
                "{bad}: {e}"
            );
        }
        assert_eq!(st.stats().nodes, 0, "failed decodes leave nothing behind");
        let e = decode(&mut st, b"\"\xff\"").unwrap_err();
        assert!(matches!(e, StoreError::NotUtf8 { .. }), "{e}");
        let deep = "[".repeat(600) + &"]".repeat(600);
        assert!(decode(&mut st, deep.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("nesting"));
        assert_eq!(st.stats().nodes, 0);
    }
}
