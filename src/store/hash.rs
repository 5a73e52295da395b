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
    fmix(mix_bytes(mix(0, 6), s.as_bytes()))
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
