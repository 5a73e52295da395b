//! Crash-safe save and load of histories and logs (layout.md §9.3 "History files", §9.4 "Log
//! files").
//!
//! A file is a 24-byte header (`magic[8] | payload_len u64 | crc32 u32 | reserved u32`) and
//! the payload. Save writes a temp file beside the target, fsyncs it, renames it over the
//! target and fsyncs the directory, so a crash leaves the old file or the new one. Load reads
//! the whole file and checks the length and the CRC-32 (zlib's) before decoding anything, so a
//! torn or corrupted file is refused with `CORRUPT_DATA` and never half-loaded; the decoded
//! history replaces nothing until it is complete.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;

use super::check_name;
use super::encoding::Encoding;
use super::history::{check_capacity, Entry, History};
use super::log::Log;
use super::value::{Node, NodeId, NodeStore, MAX_DEPTH};
use crate::error::{ErrorCode, OpError};
use crate::ops::{Request, State};

/// Magic of a history file.
pub const HISTORY_MAGIC: [u8; 8] = *b"CRSNAP\x00\x01";
/// Magic of a log file.
pub const LOG_MAGIC: [u8; 8] = *b"CRLOG\x00\x00\x01";
/// Header bytes before the payload.
pub const HEADER_BYTES: usize = 24;

// ---- CRC-32 (IEEE 802.3, reflected, as zlib.crc32) ------------------------------------------

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 of `data`, equal to Python's `zlib.crc32(data)`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

// ---- framing ---------------------------------------------------------------------------------

fn corrupt(what: impl Into<String>) -> OpError {
    OpError::new(ErrorCode::CorruptData, what.into())
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> OpError {
    OpError::new(ErrorCode::Io, format!("{what} {}: {e}", path.display()))
}

/// Header + payload bytes of a file.
pub fn frame(magic: [u8; 8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    out
}

/// Checks magic, length and CRC and returns the payload.
///
/// # Errors
/// `CorruptData` saying which check failed.
pub fn unframe(magic: [u8; 8], file: &[u8]) -> Result<&[u8], OpError> {
    let head = file.get(..HEADER_BYTES).ok_or_else(|| {
        corrupt(format!(
            "file of {} bytes is shorter than its header",
            file.len()
        ))
    })?;
    if head[..8] != magic {
        return Err(corrupt("bad magic: not a chunkring file of this kind"));
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&head[8..16]);
    let len = u64::from_le_bytes(w);
    let payload = &file[HEADER_BYTES..];
    if payload.len() as u64 != len {
        return Err(corrupt(format!(
            "torn file: header says {len} payload bytes, file holds {}",
            payload.len()
        )));
    }
    let mut c = [0u8; 4];
    c.copy_from_slice(&head[16..20]);
    if crc32(payload) != u32::from_le_bytes(c) {
        return Err(corrupt("checksum mismatch: the file is corrupted"));
    }
    Ok(payload)
}

/// Writes `bytes` to `path` crash-safely: temp file, fsync, rename, fsync of the directory.
///
/// # Errors
/// `Io` naming the step and the path; `BadParams` for a path without a file name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OpError> {
    let name = path
        .file_name()
        .ok_or_else(|| OpError::bad_params(format!("path {:?} names no file", path.display())))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp: PathBuf = dir.join(tmp_name);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| io_err("cannot write", &tmp, e))?;
        f.sync_all().map_err(|e| io_err("cannot fsync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_err("cannot rename onto", path, e))?;
        if let Ok(d) = File::open(dir) {
            // Makes the rename durable; not every filesystem supports fsync on a directory.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Largest history or log file `load` reads.
pub const MAX_FILE_BYTES: u64 = 1 << 32;

fn read_file(path: &Path) -> Result<Vec<u8>, OpError> {
    use std::io::Read;
    let f = File::open(path).map_err(|e| io_err("cannot open", path, e))?;
    let meta = f.metadata().map_err(|e| io_err("cannot stat", path, e))?;
    if !meta.is_file() {
        return Err(OpError::new(
            ErrorCode::PathRefused,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(OpError::new(
            ErrorCode::PathRefused,
            format!("{} is larger than {MAX_FILE_BYTES} bytes", path.display()),
        ));
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    // `take` bounds the read even if the file grows while it is read.
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| io_err("cannot read", path, e))?;
    Ok(out)
}

// ---- a bounds-checked payload reader ---------------------------------------------------------

struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OpError> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|e| self.b.get(self.at..e))
            .ok_or_else(|| corrupt(format!("payload truncated at byte {}", self.at)))?;
        self.at += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], OpError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, OpError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, OpError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, OpError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    /// A count of items of at least `min` bytes each that must fit the rest of the payload.
    fn count(&mut self, min: usize) -> Result<usize, OpError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.b.len() - self.at {
            return Err(corrupt(format!("count {n} runs past the payload")));
        }
        Ok(n)
    }
    fn text(&mut self) -> Result<&'a str, OpError> {
        let n = self.count(1)?;
        std::str::from_utf8(self.take(n)?).map_err(|_| corrupt("text is not utf-8"))
    }
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_le_bytes());
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

// ---- histories -------------------------------------------------------------------------------

const NO_LABEL: u32 = u32::MAX;

/// Serializes a history: its nodes once each (children before parents), then its entries.
pub fn encode_history(name: &str, h: &History) -> Vec<u8> {
    let mut out = Vec::new();
    put_text(&mut out, name);
    put_u32(&mut out, h.capacity());
    let pos = h.position();
    out.extend_from_slice(&pos.cursor.map_or(u32::MAX, |c| c as u32).to_le_bytes());
    let mut order: Vec<NodeId> = Vec::new();
    let mut seen: HashMap<NodeId, u32> = HashMap::new();
    for e in h.entries() {
        number(&h.store, e.root, &mut seen, &mut order);
    }
    put_u32(&mut out, order.len());
    put_u32(&mut out, h.len());
    for &id in &order {
        write_node(h.store.node(id), &seen, &mut out);
    }
    for e in h.entries() {
        out.extend_from_slice(&seen.get(&e.root).copied().unwrap_or(0).to_le_bytes());
        out.push(e.encoding.code());
        out.extend_from_slice(&e.time.to_le_bytes());
        out.extend_from_slice(&(e.size as u64).to_le_bytes());
        match &e.label {
            Some(l) => put_text(&mut out, l),
            None => out.extend_from_slice(&NO_LABEL.to_le_bytes()),
        }
    }
    out
}

/// Numbers `id` and its descendants in post-order (children first).
fn number(store: &NodeStore, id: NodeId, seen: &mut HashMap<NodeId, u32>, order: &mut Vec<NodeId>) {
    if seen.contains_key(&id) {
        return;
    }
    store
        .node(id)
        .for_each_child(|c| number(store, c, seen, order));
    seen.insert(id, order.len() as u32);
    order.push(id);
}

fn write_node(node: &Node, seen: &HashMap<NodeId, u32>, out: &mut Vec<u8>) {
    let file_id = |c: &NodeId| seen.get(c).copied().unwrap_or(0).to_le_bytes();
    match node {
        Node::Null | Node::Free => out.push(0),
        Node::Bool(false) => out.push(1),
        Node::Bool(true) => out.push(2),
        Node::Int(i) => {
            out.push(3);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Node::BigInt { neg, digits } => {
            out.push(4);
            out.push(u8::from(*neg));
            put_u32(out, digits.len());
            for d in digits.iter() {
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
        Node::Float(f) => {
            out.push(5);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Node::Str(s) => {
            out.push(6);
            put_text(out, s);
        }
        Node::Bytes(b) => {
            out.push(7);
            put_u32(out, b.len());
            out.extend_from_slice(b);
        }
        Node::Array(a) => {
            out.push(8);
            put_u32(out, a.len());
            a.iter().for_each(|c| out.extend_from_slice(&file_id(c)));
        }
        Node::Object(o) => {
            out.push(9);
            put_u32(out, o.len());
            for (k, v) in o.iter() {
                out.extend_from_slice(&file_id(k));
                out.extend_from_slice(&file_id(v));
            }
        }
    }
}

/// Rebuilds a history from a payload; returns the saved name and the history.
///
/// # Errors
/// `CorruptData` for any structural problem (a child id not defined before its parent, a
/// non-string key, a duplicate key, nesting beyond the decoders' limit, …).
pub fn decode_history(payload: &[u8]) -> Result<(String, History), OpError> {
    let mut c = Cur { b: payload, at: 0 };
    let name = c.text()?.to_string();
    let capacity = check_capacity(u64::from(c.u32()?)).map_err(|e| corrupt(e.message))?;
    let cursor = c.u32()?;
    let node_count = c.count(1)?;
    let entry_count = c.count(26)?;
    let mut store = NodeStore::new();
    // `table[i]` holds one count on file node i until the end; `depth[i]` is its nesting.
    let mut table: Vec<NodeId> = Vec::with_capacity(node_count);
    let mut depth: Vec<u16> = Vec::with_capacity(node_count);
    let result = (|| {
        for _ in 0..node_count {
            let (node, d) = read_node(&mut c, &mut store, &table, &depth)?;
            table.push(store.intern(node));
            depth.push(d);
        }
        let mut entries = Vec::with_capacity(entry_count);
        for _ in 0..entry_count {
            let root = *table
                .get(c.u32()? as usize)
                .ok_or_else(|| corrupt("entry root is not a saved node"))?;
            let encoding = Encoding::from_code(c.u8()?).ok_or_else(|| corrupt("bad encoding"))?;
            let time = f64::from_le_bytes(c.arr()?);
            let size = usize::try_from(c.u64()?).map_err(|_| corrupt("bad size"))?;
            let label = match u32::from_le_bytes(c.arr()?) {
                NO_LABEL => None,
                n => {
                    let n = n as usize;
                    let b = c.take(n)?;
                    Some(
                        std::str::from_utf8(b)
                            .map_err(|_| corrupt("label is not utf-8"))?
                            .to_string(),
                    )
                }
            };
            let is_obj = matches!(store.node(root), Node::Object(_));
            let is_blob = matches!(store.node(root), Node::Bytes(_));
            if (encoding == Encoding::Bytes && !is_blob) || (encoding != Encoding::Bytes && !is_obj)
            {
                return Err(corrupt("entry root does not match its encoding"));
            }
            store.incref(root);
            entries.push(Entry {
                root,
                encoding,
                label,
                time,
                size,
            });
        }
        if c.at != payload.len() {
            return Err(corrupt("bytes left over after the entries"));
        }
        Ok(entries)
    })();
    for &id in &table {
        store.decref(id);
    }
    let entries = result?;
    let cursor = if cursor == u32::MAX {
        0
    } else {
        cursor as usize
    };
    if !entries.is_empty() && cursor >= entries.len() {
        return Err(corrupt("cursor beyond the entries"));
    }
    Ok((name, History::from_parts(store, entries, cursor, capacity)))
}

fn read_node(
    c: &mut Cur<'_>,
    store: &mut NodeStore,
    table: &[NodeId],
    depth: &[u16],
) -> Result<(Node, u16), OpError> {
    let child = |c: &mut Cur<'_>, d: &mut u16| -> Result<NodeId, OpError> {
        let i = c.u32()? as usize;
        let id = *table
            .get(i)
            .ok_or_else(|| corrupt("child defined after its parent"))?;
        *d = (*d).max(depth.get(i).copied().unwrap_or(0) + 1);
        Ok(id)
    };
    let mut d = 0u16;
    let node = match c.u8()? {
        0 => Node::Null,
        1 => Node::Bool(false),
        2 => Node::Bool(true),
        3 => Node::Int(i64::from_le_bytes(c.arr()?)),
        4 => {
            let neg = c.u8()? != 0;
            let n = c.count(2)?;
            let mut digits = Vec::with_capacity(n);
            for _ in 0..n {
                let v = u16::from_le_bytes(c.arr()?);
                if v >= 1 << 15 {
                    return Err(corrupt("big-int digit out of range"));
                }
                digits.push(v);
            }
            Node::BigInt {
                neg,
                digits: digits.into(),
            }
        }
        5 => Node::Float(f64::from_le_bytes(c.arr()?)),
        6 => Node::Str(c.text()?.into()),
        7 => {
            let n = c.count(1)?;
            Node::Bytes(c.take(n)?.into())
        }
        8 => {
            let n = c.count(4)?;
            let kids: Result<Vec<_>, _> = (0..n).map(|_| child(c, &mut d)).collect();
            Node::Array(kids?.into())
        }
        9 => {
            let n = c.count(8)?;
            let mut pairs = Vec::with_capacity(n);
            let mut keys = HashSet::with_capacity(n);
            for _ in 0..n {
                let k = child(c, &mut d)?;
                let v = child(c, &mut d)?;
                if !matches!(store.node(k), Node::Str(_)) || !keys.insert(k) {
                    return Err(corrupt("object key is not a unique string"));
                }
                pairs.push((k, v));
            }
            Node::Object(pairs.into())
        }
        t => return Err(corrupt(format!("unknown node tag {t}"))),
    };
    if usize::from(d) > MAX_DEPTH {
        return Err(corrupt("nesting deeper than 512"));
    }
    // The new node takes a count on each child (the table keeps its own).
    node.for_each_child(|k| store.incref(k));
    Ok((node, d))
}

// ---- logs ------------------------------------------------------------------------------------

/// Serializes a log: name, record count, then `len u32 | bytes` per record.
pub fn encode_log(name: &str, log: &Log) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + log.record_bytes() + 4 * log.len());
    put_text(&mut out, name);
    out.extend_from_slice(&(log.len() as u64).to_le_bytes());
    for r in log.range(0, log.len()) {
        put_u32(&mut out, r.len());
        out.extend_from_slice(r);
    }
    out
}

/// Rebuilds a log from a payload.
///
/// # Errors
/// `CorruptData` when the records do not exactly fill the payload.
pub fn decode_log(payload: &[u8]) -> Result<(String, Log), OpError> {
    let mut c = Cur { b: payload, at: 0 };
    let name = c.text()?.to_string();
    let n = c.u64()?;
    if n.saturating_mul(4) > (payload.len() - c.at) as u64 {
        return Err(corrupt("record count runs past the payload"));
    }
    let mut log = Log::new();
    for _ in 0..n {
        let len = c.count(1)?;
        log.append(c.take(len)?)?;
    }
    if c.at != payload.len() {
        return Err(corrupt("bytes left over after the records"));
    }
    Ok((name, log))
}

// ---- ops -------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct SaveParams {
    name: String,
    path: String,
}

#[derive(Deserialize)]
struct LoadParams {
    path: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    replace: bool,
}

fn check_path(path: &str) -> Result<&Path, OpError> {
    let p = Path::new(path);
    if path.contains('\0') || !p.is_absolute() {
        return Err(OpError::new(
            ErrorCode::PathRefused,
            format!("path {path:?} must be absolute and contain no NUL byte"),
        ));
    }
    Ok(p)
}

/// `OP_SNAP_SAVE`.
pub fn save_history(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: SaveParams = req.params()?;
    let path = check_path(&p.path)?;
    let h = state.snapshots.history(&p.name)?;
    let file = frame(HISTORY_MAGIC, &encode_history(&p.name, h));
    write_atomic(path, &file)?;
    Ok(
        json!({"path": p.path, "bytes": file.len(), "snapshots": h.len()})
            .to_string()
            .into_bytes(),
    )
}

/// `OP_SNAP_LOAD`.
pub fn load_history(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: LoadParams = req.params()?;
    let path = check_path(&p.path)?;
    let file = read_file(path)?;
    let (saved, h) = decode_history(unframe(HISTORY_MAGIC, &file)?)?;
    let name = p.name.unwrap_or(saved);
    check_name(&name)?;
    if !p.replace && state.snapshots.histories.contains_key(&name) {
        return Err(OpError::bad_params(format!(
            "history {name:?} already exists (pass replace: true to overwrite it)"
        )));
    }
    let pos = h.position();
    let out = json!({"name": name, "capacity": h.capacity(), "len": pos.len, "cursor": pos.cursor});
    state.snapshots.histories.insert(name, h);
    Ok(out.to_string().into_bytes())
}

/// `OP_LOG_SAVE`.
pub fn save_log(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: SaveParams = req.params()?;
    let path = check_path(&p.path)?;
    let log =
        state.snapshots.logs.get(&p.name).ok_or_else(|| {
            OpError::new(ErrorCode::NotFound, format!("unknown log {:?}", p.name))
        })?;
    let file = frame(LOG_MAGIC, &encode_log(&p.name, log));
    write_atomic(path, &file)?;
    Ok(
        json!({"path": p.path, "bytes": file.len(), "len": log.len()})
            .to_string()
            .into_bytes(),
    )
}

/// `OP_LOG_LOAD`.
pub fn load_log(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: LoadParams = req.params()?;
    let path = check_path(&p.path)?;
    let file = read_file(path)?;
    let (saved, log) = decode_log(unframe(LOG_MAGIC, &file)?)?;
    let name = p.name.unwrap_or(saved);
    check_name(&name)?;
    if !p.replace && state.snapshots.logs.contains_key(&name) {
        return Err(OpError::bad_params(format!(
            "log {name:?} already exists (pass replace: true to overwrite it)"
        )));
    }
    let out = json!({"name": name, "len": log.len()});
    state.snapshots.logs.insert(name, log);
    Ok(out.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_zlib() {
        // zlib.crc32(b"123456789") == 0xCBF43926 (the CRC-32 check value).
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    fn sample() -> History {
        let mut h = History::new(10);
        for i in 0..5 {
            let doc = format!(
                r#"{{"n":{i},"rows":[{{"a":"x"}},{{"a":"y"}}],"big":123456789012345678901234567890}}"#
            );
            h.push(Encoding::Json, doc.as_bytes(), Some(format!("l{i}")), 1.5)
                .unwrap();
        }
        h.push(Encoding::Bytes, b"\x00blob", None, 2.5).unwrap();
        h.undo();
        h
    }

    #[test]
    fn histories_round_trip_with_sharing_and_cursor() {
        let h = sample();
        let file = frame(HISTORY_MAGIC, &encode_history("ui", &h));
        let (name, back) = decode_history(unframe(HISTORY_MAGIC, &file).unwrap()).unwrap();
        assert_eq!(name, "ui");
        assert_eq!(back.position(), h.position());
        assert_eq!(back.store.stats().nodes, h.store.stats().nodes);
        for i in 0..h.len() {
            assert_eq!(back.encode(i, None).unwrap(), h.encode(i, None).unwrap());
            assert_eq!(back.entry(i).unwrap().label, h.entry(i).unwrap().label);
            assert_eq!(back.entry(i).unwrap().time, h.entry(i).unwrap().time);
        }
    }

    #[test]
    fn torn_and_flipped_files_are_refused() {
        let file = frame(HISTORY_MAGIC, &encode_history("ui", &sample()));
        for cut in [0, 10, HEADER_BYTES, file.len() / 2, file.len() - 1] {
            let e = unframe(HISTORY_MAGIC, &file[..cut]).unwrap_err();
            assert_eq!(e.code, ErrorCode::CorruptData, "cut {cut}");
        }
        for at in (HEADER_BYTES..file.len()).step_by(7) {
            let mut bad = file.clone();
            bad[at] ^= 0x10;
            let e = unframe(HISTORY_MAGIC, &bad).unwrap_err();
            assert!(e.message.contains("checksum"), "{e}");
        }
        assert!(unframe(LOG_MAGIC, &file)
            .unwrap_err()
            .message
            .contains("magic"));
    }

    #[test]
    fn hostile_payloads_with_valid_checksums_are_refused() {
        // A forward child reference, an int key, and a truncated entry: each is CORRUPT_DATA.
        let mut p = Vec::new();
        put_text(&mut p, "x");
        put_u32(&mut p, 10);
        p.extend_from_slice(&0u32.to_le_bytes());
        put_u32(&mut p, 1);
        put_u32(&mut p, 0);
        p.extend_from_slice(&[8, 1, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(decode_history(&p).unwrap_err().code, ErrorCode::CorruptData);
        let good = encode_history("ui", &sample());
        for cut in (0..good.len()).step_by(3) {
            assert!(decode_history(&good[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn logs_round_trip_and_writes_are_atomic() {
        let mut log = Log::new();
        for i in 0..1000u32 {
            log.append(format!("record {i}").as_bytes()).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("chunkring-persist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("comms.log");
        write_atomic(&path, &frame(LOG_MAGIC, &encode_log("comms", &log))).unwrap();
        let file = fs::read(&path).unwrap();
        let (name, back) = decode_log(unframe(LOG_MAGIC, &file).unwrap()).unwrap();
        assert_eq!(name, "comms");
        assert_eq!(back.range(0, 2000), log.range(0, 2000));
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
        fs::remove_dir_all(&dir).unwrap();
    }
}
