//! The structural hash of the node store: an FxHash-style word mix finished by MurmurHash3's
//! finalizer, and a pass-through `Hasher` for maps whose keys are such hashes already.
#![forbid(unsafe_code)]

use std::hash::{BuildHasherDefault, Hasher};

/// Multiplier of the FxHash-style word mix.
const K: u64 = 0x517c_c1b7_2722_0a95;

/// Mixes one word into a running hash.
#[inline]
pub fn mix(h: u64, w: u64) -> u64 {
    (h.rotate_left(5) ^ w).wrapping_mul(K)
}

/// Mixes a byte string (8 bytes at a time, then the tail and the length).
pub fn mix_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = mix(h, u64::from_le_bytes(a));
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = mix(h, u64::from_le_bytes(tail));
    mix(h, bytes.len() as u64)
}

/// Structural hash of a string node.
#[inline]
pub fn hash_str(s: &str) -> u64 {
    hash_str_bytes(s.as_bytes())
}

/// [`hash_str`] of a str given as its UTF-8 bytes.
#[inline]
fn hash_str_bytes(b: &[u8]) -> u64 {
    fmix(mix_bytes(mix(0, 6), b))
}

/// [`hash_str_bytes`] of `b` when it is all ASCII (one pass for both), else `None`.
#[inline]
pub fn hash_ascii(b: &[u8]) -> Option<u64> {
    let mut h = mix(0, 6);
    let mut seen = 0u64;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        let x = u64::from_le_bytes(a);
        seen |= x;
        h = mix(h, x);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    let x = u64::from_le_bytes(tail);
    seen |= x;
    if seen & 0x8080_8080_8080_8080 != 0 {
        return None;
    }
    Some(fmix(mix(mix(h, x), b.len() as u64)))
}

/// Structural hash of `null`.
#[inline]
pub fn hash_null() -> u64 {
    fmix(mix(0, 1))
}

/// Structural hash of a bool.
#[inline]
pub fn hash_bool(b: bool) -> u64 {
    fmix(mix(mix(0, 2), u64::from(b)))
}

/// Structural hash of an integer that fits in `i64`.
#[inline]
pub fn hash_int(i: i64) -> u64 {
    fmix(mix(mix(0, 3), i as u64))
}

/// Structural hash of a big integer (sign and trimmed base-2^15 digits, least significant first).
pub fn hash_big_int(neg: bool, digits: &[u16]) -> u64 {
    let mut h = mix(mix(0, 4), u64::from(neg));
    for d in digits {
        h = mix(h, u64::from(*d));
    }
    fmix(mix(h, digits.len() as u64))
}

/// Structural hash of a float (by bit pattern).
#[inline]
pub fn hash_float(f: f64) -> u64 {
    fmix(mix(mix(0, 5), f.to_bits()))
}

/// Structural hash of a bytes value.
#[inline]
pub fn hash_bytes(b: &[u8]) -> u64 {
    fmix(mix_bytes(mix(0, 7), b))
}

/// Structural hash of a list, from its children's hashes in order.
#[inline]
pub fn hash_list(kids: impl ExactSizeIterator<Item = u64>) -> u64 {
    let n = kids.len() as u64;
    fmix(mix(kids.fold(mix(0, 8), mix), n))
}

/// Structural hash of an object, from its (key, value) hashes in order.
#[inline]
pub fn hash_object(pairs: impl ExactSizeIterator<Item = (u64, u64)>) -> u64 {
    let n = pairs.len() as u64;
    let h = pairs.fold(mix(0, 9), |h, (k, v)| mix(mix(h, k), v));
    fmix(mix(h, n))
}

/// MurmurHash3's 64-bit finalizer: spreads every input bit over every output bit.
#[inline]
pub fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A `Hasher` that passes an already-mixed `u64` through (the index keys are hashes).
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = mix_bytes(self.0, bytes);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = fmix(u64::from(n));
    }
}

/// Build hasher for maps keyed by node hashes.
pub type BuildIdentity = BuildHasherDefault<IdentityHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_hash_is_the_str_hash_and_refuses_other_bytes() {
        for n in 0..40 {
            let s: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert_eq!(hash_ascii(s.as_bytes()), Some(hash_str(&s)), "{s:?}");
            let mut b = s.clone().into_bytes();
            if n > 0 {
                b[n as usize - 1] = 0xe9;
                assert_eq!(hash_ascii(&b), None);
            }
        }
    }
}
