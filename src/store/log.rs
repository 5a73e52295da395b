//! Append-only logs of byte records (layout.md §9.4).
//!
//! A record's bytes are copied once into the current page (a `Vec<u8>` allocated with a fixed
//! capacity and never grown, so earlier records never move); a record that does not fit starts
//! a new page of twice the previous size (from 64 KiB up to 16 MiB, or the record's size if
//! larger). The record index (page, offset, length) lives in a [`Xar`], so append and lookup
//! are O(1) and never copy earlier records.
#![forbid(unsafe_code)]

use crate::store::error::StoreError;
use crate::store::xar::Xar;

const FIRST_PAGE_BYTES: usize = 64 << 10;
const MAX_PAGE_BYTES: usize = 16 << 20;

#[derive(Debug, Clone, Copy)]
struct Rec {
    page: u32,
    start: u32,
    len: u32,
}

/// One append-only log.
#[derive(Default)]
pub struct Log {
    index: Xar<Rec>,
    pages: Vec<Vec<u8>>,
    next_page: usize,
    bytes: usize,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("records", &self.len())
            .field("record_bytes", &self.bytes)
            .field("pages", &self.pages.len())
            .finish()
    }
}

impl Log {
    /// An empty log.
    pub fn new() -> Log {
        Log::default()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no record was appended.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Total record bytes.
    pub fn record_bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes held: page capacities plus the record index.
    pub fn stored_bytes(&self) -> usize {
        self.pages.iter().map(Vec::capacity).sum::<usize>() + self.index.allocated_bytes()
    }

    /// Appends one record (copied once).
    ///
    /// # Errors
    /// [`StoreError::RecordTooLarge`] for a record of 4 GiB or more.
    pub fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        let len = u32::try_from(record.len()).map_err(|_| StoreError::RecordTooLarge)?;
        let fits = self
            .pages
            .last()
            .is_some_and(|p| p.capacity() - p.len() >= record.len());
        if !fits {
            let size = self
                .next_page
                .clamp(FIRST_PAGE_BYTES, MAX_PAGE_BYTES)
                .max(record.len());
            self.next_page = (size * 2).min(MAX_PAGE_BYTES);
            self.pages.push(Vec::with_capacity(size));
        }
        let page_no = self.pages.len() - 1;
        let Some(page) = self.pages.last_mut() else {
            return Err(StoreError::Broken("log page missing"));
        };
        let start = page.len();
        // Within capacity (checked above), so this never reallocates the page.
        page.extend_from_slice(record);
        self.index.push(Rec {
            page: page_no as u32,
            start: start as u32,
            len,
        });
        self.bytes += record.len();
        Ok(())
    }

    /// Record `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let r = self.index.get(i)?;
        let start = r.start as usize;
        self.pages
            .get(r.page as usize)?
            .get(start..start + r.len as usize)
    }

    /// Records `start..start + count`, clipped at the end.
    pub fn range(&self, start: usize, count: usize) -> Vec<&[u8]> {
        let end = start.saturating_add(count).min(self.len());
        (start..end).filter_map(|i| self.get(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_never_move() {
        let mut l = Log::new();
        l.append(b"first").unwrap();
        let addr = l.get(0).unwrap().as_ptr();
        for i in 0..50_000u32 {
            l.append(&i.to_le_bytes()).unwrap();
        }
        let big = vec![7u8; 300_000];
        l.append(&big).unwrap();
        l.append(b"after").unwrap();
        assert_eq!(l.get(0).unwrap().as_ptr(), addr, "record moved");
        assert_eq!(l.get(0).unwrap(), b"first");
        assert_eq!(l.get(12_346).unwrap(), &12_345u32.to_le_bytes());
        assert_eq!(l.get(50_001).unwrap(), &big[..]);
        assert_eq!(l.len(), 50_003);
        assert_eq!(l.range(50_002, 10), vec![&b"after"[..]]);
        assert!(l.get(50_003).is_none());
        assert!(l.range(60_000, 5).is_empty());
    }
}
