//! The bounds-checked reader and the writers the history and log file payloads are made of:
//! little-endian `u32`/`u64` words and `len u32 | utf-8` texts.
#![forbid(unsafe_code)]

use crate::store::error::StoreError;

/// Reads a payload front to back; every read past its end is [`StoreError::Corrupt`].
#[derive(Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `payload`.
    pub fn new(payload: &'a [u8]) -> Reader<'a> {
        Reader { b: payload, at: 0 }
    }

    /// Bytes read so far.
    pub fn at(&self) -> usize {
        self.at
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|e| self.b.get(self.at..e))
            .ok_or_else(|| StoreError::corrupt(format!("payload truncated at byte {}", self.at)))?;
        self.at += n;
        Ok(s)
    }
    /// The next `N` bytes as an array.
    pub fn arr<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    /// The next byte.
    pub fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    /// The next little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    /// The next little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    /// A count of items of at least `min` bytes each that must fit the rest of the payload.
    pub fn count(&mut self, min: usize) -> Result<usize, StoreError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.b.len() - self.at {
            return Err(StoreError::corrupt(format!(
                "count {n} runs past the payload"
            )));
        }
        Ok(n)
    }
    /// The next `len u32 | utf-8` text.
    pub fn text(&mut self) -> Result<&'a str, StoreError> {
        let n = self.count(1)?;
        std::str::from_utf8(self.take(n)?).map_err(|_| StoreError::corrupt("text is not utf-8"))
    }
}

/// Appends `v` as a little-endian `u32` (callers keep it below 4 GiB).
pub fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_le_bytes());
}

/// Appends `s` as `len u32 | utf-8`.
pub fn put_text(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}
