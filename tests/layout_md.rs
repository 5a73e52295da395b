//! The spec drives the tests (STYLE.md §6): every `| NAME | value |` row of layout.md's tables
//! must equal the constant of that name in `src/layout.rs` and in
//! `python/chunkring/_layout.py`, and every constant must appear in layout.md.

use std::collections::BTreeMap;
use std::path::Path;

use chunkring::layout::*;

macro_rules! table {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), $name as u64)),*]
    };
}

fn rust_constants() -> Vec<(&'static str, u64)> {
    table![
        LAYOUT_VERSION,
        ENDIAN_MARK,
        HEADER_BYTES,
        MAGIC_OFFSET,
        VERSION_OFFSET,
        ENDIAN_OFFSET,
        HEADER_BYTES_OFFSET,
        CHUNK_BYTES_OFFSET,
        REQ_RING_OFFSET_OFFSET,
        REQ_RING_CHUNKS_OFFSET,
        RESP_RING_OFFSET_OFFSET,
        RESP_RING_CHUNKS_OFFSET,
        REGION_BYTES_OFFSET,
        WORKER_PID_OFFSET,
        WORKER_STATE_OFFSET,
        CLIENT_PID_OFFSET,
        CLIENT_STATE_OFFSET,
        WORKER_HEARTBEAT_NS_OFFSET,
        MAX_MESSAGE_BYTES_OFFSET,
        PARK_TIMEOUT_US_OFFSET,
        FRAME_CRC_OFFSET,
        FRAME_CRC_OPTIONAL,
        FRAME_CRC_REQUIRED,
        WORKER_STARTING,
        WORKER_READY,
        WORKER_STOPPING,
        WORKER_STOPPED,
        WORKER_FAILED,
        CLIENT_NONE,
        CLIENT_ATTACHED,
        CLIENT_DETACHED,
        STATS_OFFSET,
        STATS_COUNT,
        STAT_REQUESTS,
        STAT_RESPONSES,
        STAT_ERROR_FRAMES,
        STAT_REQ_BYTES,
        STAT_RESP_BYTES,
        STAT_WORKER_PARKS,
        STAT_TIMEOUT_WAKEUPS,
        STAT_CLIENT_WAKES,
        STAT_REQ_PADDING,
        STAT_RESP_PADDING,
        STAT_REQ_FRAGMENTS,
        STAT_RESP_FRAGMENTS,
        STAT_RESP_BATCHES,
        STAT_MALFORMED,
        REQ_HEAD_OFFSET,
        REQ_TAIL_OFFSET,
        RESP_HEAD_OFFSET,
        RESP_TAIL_OFFSET,
        WORKER_FUTEX_OFFSET,
        CLIENT_FUTEX_OFFSET,
        CONTROL_LINE_BYTES,
        AWAKE,
        PARKED,
        PARKED_FOR_ROOM,
        MIN_CHUNK_BYTES,
        MAX_CHUNK_BYTES,
        DEFAULT_CHUNK_BYTES,
        DEFAULT_RING_BYTES,
        MIN_RING_BYTES,
        MAX_RING_BYTES,
        DEFAULT_MAX_MESSAGE_BYTES,
        PUSH_PEEK_MAX_BYTES,
        AHEAD_MAX_STEPS,
        AHEAD_MAX_BYTES,
        FRAME_HEADER_BYTES,
        FRAME_MAGIC,
        FRAME_MAGIC_OFFSET,
        FRAME_FLAGS_OFFSET,
        FRAME_OP_OFFSET,
        FRAME_STATUS_OFFSET,
        FRAME_REQUEST_ID_OFFSET,
        FRAME_PAYLOAD_LEN_OFFSET,
        FRAME_FRAGMENT_INDEX_OFFSET,
        FRAME_MESSAGE_LEN_OFFSET,
        FLAG_PADDING,
        FLAG_MORE,
        FLAG_ERROR,
        FLAG_CRC,
        FRAME_CRC_BYTES,
        FLAGS_KNOWN,
        OP_ECHO,
        OP_PIPELINE,
        OP_SHUTDOWN,
        OP_INFO,
        OP_MD_RENDER,
        OP_MD_OUTLINE,
        OP_MD_AGGREGATE,
        OP_SNAP_PUSH,
        OP_SNAP_PUSH_MANY,
        OP_SNAP_UNDO,
        OP_SNAP_REDO,
        OP_SNAP_JUMP,
        OP_SNAP_CURRENT,
        OP_SNAP_LIST,
        OP_SNAP_DIFF,
        OP_SNAP_STATS,
        OP_SNAP_PROCESS,
        OP_SNAP_SAVE,
        OP_SNAP_LOAD,
        OP_SNAP_DROP,
        OP_SNAP_GET,
        OP_SNAP_MOVE,
        OP_SNAP_PUSH_FIELDS,
        OP_SNAP_AHEAD,
        OP_LOG_APPEND,
        OP_LOG_READ,
        OP_LOG_TAIL,
        OP_LOG_LEN,
        OP_LOG_SAVE,
        OP_LOG_LOAD,
        ERR_OK,
        ERR_MALFORMED_HEADER,
        ERR_FRAME_LENGTH,
        ERR_FRAGMENT_SEQUENCE,
        ERR_MESSAGE_TOO_LARGE,
        ERR_UNKNOWN_OP,
        ERR_BAD_PARAMS,
        ERR_BAD_PAYLOAD,
        ERR_INVALID_UTF8,
        ERR_NOT_FOUND,
        ERR_OUT_OF_RANGE,
        ERR_PATH_REFUSED,
        ERR_IO,
        ERR_INTERNAL,
        ERR_SHUTTING_DOWN,
        ERR_CORRUPT_DATA,
        ERR_CHECKSUM,
        PARAMS_LEN_BYTES,
    ]
}

fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim().trim_matches('`').replace('_', "");
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// `| NAME | value | ...` rows whose first cell is a SCREAMING_SNAKE name and second an integer.
fn layout_md_rows() -> BTreeMap<String, u64> {
    let mut rows = BTreeMap::new();
    for line in read("layout.md").lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[0].is_empty() {
            continue;
        }
        let name = cells[1];
        let is_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if let (true, Some(v)) = (is_name, parse_int(cells[2])) {
            assert!(
                rows.insert(name.to_owned(), v).is_none(),
                "layout.md defines {name} twice"
            );
        }
    }
    rows
}

/// `NAME = <int>` lines of `_layout.py` (simple literals and `a << b`).
fn python_constants() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in read("python/chunkring/_layout.py").lines() {
        let Some((name, rest)) = line.split_once(" = ") else {
            continue;
        };
        let expr = rest.split('#').next().unwrap().trim();
        let value = if let Some((a, b)) = expr.split_once("<<") {
            parse_int(a).zip(parse_int(b)).map(|(a, b)| a << b)
        } else if expr.contains('|') {
            // `FLAG_A | FLAG_B`: names defined earlier in the file.
            expr.split('|')
                .map(|n| out.get(n.trim()).copied())
                .try_fold(0, |acc, v| v.map(|v| acc | v))
        } else {
            parse_int(expr)
        };
        if let Some(v) = value {
            out.insert(name.trim().to_owned(), v);
        }
    }
    out
}

#[test]
fn every_layout_md_row_equals_layout_rs() {
    let rust: BTreeMap<_, _> = rust_constants().into_iter().collect();
    let rows = layout_md_rows();
    assert!(
        rows.len() > 100,
        "parsed only {} rows from layout.md",
        rows.len()
    );
    for (name, value) in &rows {
        let r = rust
            .get(name.as_str())
            .unwrap_or_else(|| panic!("layout.md names {name}, layout.rs does not"));
        assert_eq!(r, value, "{name}: layout.rs {r:#x}, layout.md {value:#x}");
    }
    for name in rust.keys() {
        assert!(
            rows.contains_key(*name),
            "{name} is in layout.rs but in no layout.md table"
        );
    }
}

#[test]
fn python_layout_equals_layout_rs() {
    let py = python_constants();
    for (name, value) in rust_constants() {
        let p = py
            .get(name)
            .unwrap_or_else(|| panic!("_layout.py lacks {name}"));
        assert_eq!(*p, value, "{name}: _layout.py {p:#x}, layout.rs {value:#x}");
    }
}

#[test]
fn control_lines_are_at_least_a_cache_padded_line_apart() {
    // crossbeam-utils' CachePadded alignment is this target's cache-line estimate (128 on
    // x86-64 and aarch64). It checks the fixed offsets; it never defines them (layout.md §4).
    let line = std::mem::align_of::<crossbeam_utils::CachePadded<u64>>();
    assert!(
        CONTROL_LINE_BYTES >= line,
        "control words {CONTROL_LINE_BYTES} apart, cache line {line}"
    );
    let words = [
        REQ_HEAD_OFFSET,
        REQ_TAIL_OFFSET,
        RESP_HEAD_OFFSET,
        RESP_TAIL_OFFSET,
        WORKER_FUTEX_OFFSET,
        CLIENT_FUTEX_OFFSET,
    ];
    for pair in words.windows(2) {
        assert!(pair[1] - pair[0] >= line);
        assert_eq!(pair[0] % line, 0, "{:#x} does not start a line", pair[0]);
    }
}

#[test]
fn stat_names_are_layout_md_stat_rows_in_lower_case() {
    let rows = layout_md_rows();
    let stat_rows: Vec<_> = rows
        .iter()
        .filter(|(name, _)| name.starts_with("STAT_"))
        .collect();
    assert_eq!(stat_rows.len(), STAT_NAMES.len(), "{stat_rows:?}");
    for (name, &index) in stat_rows {
        let expected = name["STAT_".len()..].to_ascii_lowercase();
        assert_eq!(
            STAT_NAMES.get(index as usize).copied(),
            Some(expected.as_str()),
            "{name} = {index}"
        );
    }
}

/// The quoted strings of `_layout.py`'s `STAT_NAMES = (...)` literal, if it defines one.
fn python_stat_names() -> Option<Vec<String>> {
    let text = read("python/chunkring/_layout.py");
    let start = text.find("\nSTAT_NAMES")?;
    let body = &text[start..];
    let open = body.find(['(', '['])?;
    let close = body[open..].find([')', ']'])? + open;
    Some(
        body[open + 1..close]
            .split(['"', '\''])
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn python_stat_names_equal_layout_rs_where_defined() {
    // `client.stats()` keys by `_layout.py`'s STAT_NAMES, `inspect` by layout.rs's.
    if let Some(py) = python_stat_names() {
        assert_eq!(py, STAT_NAMES, "_layout.py STAT_NAMES");
    }
}
