//! `OP_SNAP_PROCESS` with `answer: "marshal"`: the records as one marshal blob (layout.md
//! §9.3 "Process"), so a client decodes a whole answer with one `marshal.loads` and gets the
//! list of dicts it returns, with nothing to rebuild in Python.
//!
//! Every record's keys and every changed key's text are written with `FLAG_REF` the first
//! time and as `r` back-references afterwards (one str object each in the client).
#![forbid(unsafe_code)]

use std::collections::HashMap;

use crate::store::batch::{Change, Description, ListChange};
use crate::store::codec::marshal::{write_int, write_list_header, write_ref, write_str_ref};
use crate::store::error::StoreError;

/// One answer being written: the bytes and the strings written with `FLAG_REF` so far.
#[derive(Debug, Default)]
pub struct Records {
    out: Vec<u8>,
    refs: HashMap<String, u32>,
}

impl Records {
    /// Writes the list of `records` (index `base + i` for the `i`-th) and returns the blob.
    ///
    /// # Errors
    /// [`StoreError::Unencodable`] for a str or list longer than `i32::MAX`.
    pub fn encode<'d>(
        base: u64,
        records: impl ExactSizeIterator<Item = &'d Description>,
    ) -> Result<Vec<u8>, StoreError> {
        let mut w = Records::default();
        write_list_header(records.len(), &mut w.out)?;
        for (i, d) in (base..).zip(records) {
            w.record(i, d)?;
        }
        Ok(w.out)
    }

    fn record(&mut self, index: u64, d: &Description) -> Result<(), StoreError> {
        self.out.push(b'{');
        self.key("index")?;
        write_int(index as i64, &mut self.out)?;
        self.key("digest")?;
        self.out.extend_from_slice(&[b'z', 16]);
        self.out
            .extend_from_slice(format!("{:016x}", d.digest).as_bytes());
        self.key("size")?;
        write_int(d.size as i64, &mut self.out)?;
        self.key("changed")?;
        match &d.change {
            Change::Blob(changed) => self.out.push(if *changed { b'T' } else { b'F' }),
            Change::Fields { changed, lists } => {
                write_list_header(changed.len(), &mut self.out)?;
                for k in changed {
                    self.key(k)?;
                }
                self.key("entries")?;
                self.out.push(b'{');
                for (k, l) in lists {
                    self.key(k)?;
                    self.list_change(l)?;
                }
                self.out.push(b'0');
            }
        }
        self.out.push(b'0');
        Ok(())
    }

    fn list_change(&mut self, l: &ListChange) -> Result<(), StoreError> {
        self.out.push(b'{');
        self.key("changed")?;
        write_list_header(l.changed.len(), &mut self.out)?;
        for &i in &l.changed {
            write_int(i as i64, &mut self.out)?;
        }
        self.key("old_len")?;
        write_int(l.old_len as i64, &mut self.out)?;
        self.key("new_len")?;
        write_int(l.new_len as i64, &mut self.out)?;
        self.out.push(b'0');
        Ok(())
    }

    /// A str used as a key or a changed key's name: written once, referred to afterwards.
    fn key(&mut self, s: &str) -> Result<(), StoreError> {
        if let Some(&r) = self.refs.get(s) {
            write_ref(r, &mut self.out);
            return Ok(());
        }
        let r = u32::try_from(self.refs.len())
            .map_err(|_| StoreError::Unencodable("more than 2^32 distinct keys".into()))?;
        write_str_ref(s, &mut self.out)?;
        self.refs.insert(s.to_owned(), r);
        Ok(())
    }
}
