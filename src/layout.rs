//! Constants and offsets of the region, copied 1:1 from layout.md. No logic lives here.
//!
//! Every name is identical in layout.md, here and in `python/chunkring/_layout.py`, so one
//! grep finds all three; `tests/layout_md.rs` parses layout.md's tables and checks them
//! against this file. The `const` assertions at the bottom pin the invariants the ring code
//! relies on (cache-line separation, header fits a chunk, alignment of atomics).

// ---- §3 Region header page ------------------------------------------------------------

/// Bytes 0..8 of every region: ASCII `CHUNKRNG`.
pub const REGION_MAGIC: [u8; 8] = *b"CHUNKRNG";
/// Layout version this build reads and writes (layout.md §12 "Versioning").
pub const LAYOUT_VERSION: u32 = 1;
/// Written as a native u32; reads back as this value only on a little-endian peer.
pub const ENDIAN_MARK: u32 = 0x0102_0304;
/// Size of the header page; the request ring starts right after it.
pub const HEADER_BYTES: u64 = 4096;

/// `[u8; 8]` magic.
pub const MAGIC_OFFSET: usize = 0x000;
/// `u32` layout version.
pub const VERSION_OFFSET: usize = 0x008;
/// `u32` endianness mark.
pub const ENDIAN_OFFSET: usize = 0x00C;
/// `u32` header page bytes.
pub const HEADER_BYTES_OFFSET: usize = 0x010;
/// `u32` bytes per chunk (both rings).
pub const CHUNK_BYTES_OFFSET: usize = 0x014;
/// `u64` byte offset of the request ring's first chunk.
pub const REQ_RING_OFFSET_OFFSET: usize = 0x018;
/// `u64` number of chunks in the request ring (power of two).
pub const REQ_RING_CHUNKS_OFFSET: usize = 0x020;
/// `u64` byte offset of the response ring's first chunk.
pub const RESP_RING_OFFSET_OFFSET: usize = 0x028;
/// `u64` number of chunks in the response ring (power of two).
pub const RESP_RING_CHUNKS_OFFSET: usize = 0x030;
/// `u64` total bytes of the region.
pub const REGION_BYTES_OFFSET: usize = 0x038;
/// `u32` pid of the worker serving the region.
pub const WORKER_PID_OFFSET: usize = 0x040;
/// `u32` one of the `WORKER_*` states.
pub const WORKER_STATE_OFFSET: usize = 0x044;
/// `u32` pid of the attached client (0 = none).
pub const CLIENT_PID_OFFSET: usize = 0x048;
/// `u32` one of the `CLIENT_*` states.
pub const CLIENT_STATE_OFFSET: usize = 0x04C;
/// `u64` worker heartbeat, CLOCK_MONOTONIC nanoseconds.
pub const WORKER_HEARTBEAT_NS_OFFSET: usize = 0x050;
/// `u64` largest message (sum of fragments) the worker accepts.
pub const MAX_MESSAGE_BYTES_OFFSET: usize = 0x058;
/// `u64` the worker's park timeout in microseconds (the liveness backstop).
pub const PARK_TIMEOUT_US_OFFSET: usize = 0x060;
/// `u32` frame checksum mode: `FRAME_CRC_OPTIONAL` or `FRAME_CRC_REQUIRED` (layout.md §6.6).
pub const FRAME_CRC_OFFSET: usize = 0x068;

/// Frame checksum mode (`FRAME_CRC_OFFSET`): frames may carry `FLAG_CRC`; the worker answers
/// with a checksum exactly when the request carried one.
pub const FRAME_CRC_OPTIONAL: u32 = 0;
/// Frame checksum mode: every frame in both rings carries `FLAG_CRC` (`serve --crc`).
pub const FRAME_CRC_REQUIRED: u32 = 1;

/// Worker states (`WORKER_STATE_OFFSET`).
pub const WORKER_STARTING: u32 = 0;
/// Header written, serving requests.
pub const WORKER_READY: u32 = 1;
/// Told to stop; finishing the frames already read.
pub const WORKER_STOPPING: u32 = 2;
/// Exited cleanly; nothing more will be answered.
pub const WORKER_STOPPED: u32 = 3;
/// Exited on an error; nothing more will be answered.
pub const WORKER_FAILED: u32 = 4;

/// Client states (`CLIENT_STATE_OFFSET`).
pub const CLIENT_NONE: u32 = 0;
/// A client is attached and may produce requests.
pub const CLIENT_ATTACHED: u32 = 1;
/// The client detached cleanly; a new one may attach.
pub const CLIENT_DETACHED: u32 = 2;

/// First stats counter; counters are `u64`, written by the worker only (Relaxed).
pub const STATS_OFFSET: usize = 0x100;
/// Number of stats counters (`STAT_*` indices below).
pub const STATS_COUNT: usize = 16;
/// Index: request messages completed (after reassembly).
pub const STAT_REQUESTS: usize = 0;
/// Index: response messages written.
pub const STAT_RESPONSES: usize = 1;
/// Index: error frames written.
pub const STAT_ERROR_FRAMES: usize = 2;
/// Index: request payload bytes read.
pub const STAT_REQ_BYTES: usize = 3;
/// Index: response payload bytes written.
pub const STAT_RESP_BYTES: usize = 4;
/// Index: times the worker parked on its futex.
pub const STAT_WORKER_PARKS: usize = 5;
/// Index: parks that ended by the timeout while work was already published (backstop hits).
pub const STAT_TIMEOUT_WAKEUPS: usize = 6;
/// Index: futex wakes the worker issued to the client.
pub const STAT_CLIENT_WAKES: usize = 7;
/// Index: padding frames consumed from the request ring.
pub const STAT_REQ_PADDING: usize = 8;
/// Index: padding frames written to the response ring.
pub const STAT_RESP_PADDING: usize = 9;
/// Index: fragment frames read (frames of multi-frame requests).
pub const STAT_REQ_FRAGMENTS: usize = 10;
/// Index: fragment frames written (frames of multi-frame responses).
pub const STAT_RESP_FRAGMENTS: usize = 11;
/// Index: tail stores on the response ring (one per published batch).
pub const STAT_RESP_BATCHES: usize = 12;
/// Index: malformed frames answered with an error and skipped.
pub const STAT_MALFORMED: usize = 13;
/// The counters' names, by `STAT_*` index: each is its constant's name without `STAT_`, in
/// lower case (`STAT_REQ_BYTES` → `req_bytes`). `chunkring inspect` prints them and the Python
/// client's `stats()` keys by them (`STAT_NAMES` in `_layout.py`); `tests/layout_md.rs`
/// checks them against layout.md's table. Slots from `STAT_NAMES.len()` to `STATS_COUNT` are
/// reserved.
pub const STAT_NAMES: [&str; 14] = [
    "requests",
    "responses",
    "error_frames",
    "req_bytes",
    "resp_bytes",
    "worker_parks",
    "timeout_wakeups",
    "client_wakes",
    "req_padding",
    "resp_padding",
    "req_fragments",
    "resp_fragments",
    "resp_batches",
    "malformed",
];

// ---- §4 Ring control blocks: one 128-byte line each -----------------------------------

/// `u64` request ring head (consumer = worker).
pub const REQ_HEAD_OFFSET: usize = 0x200;
/// `u64` request ring tail (producer = client).
pub const REQ_TAIL_OFFSET: usize = 0x280;
/// `u64` response ring head (consumer = client).
pub const RESP_HEAD_OFFSET: usize = 0x300;
/// `u64` response ring tail (producer = worker).
pub const RESP_TAIL_OFFSET: usize = 0x380;
/// `u32` the worker's futex word: `AWAKE`, or the `PARKED*` bits it waits for.
pub const WORKER_FUTEX_OFFSET: usize = 0x400;
/// `u32` the client's futex word: `AWAKE`, or the `PARKED*` bits it waits for.
pub const CLIENT_FUTEX_OFFSET: usize = 0x480;
/// Spacing of the control words; a multiple of every cache line we target.
pub const CONTROL_LINE_BYTES: usize = 0x80;

/// Futex word value: the owner is running or spinning.
pub const AWAKE: u32 = 0;
/// Futex word bit: the owner is (about to be) blocked in `futex_wait` until the peer
/// publishes frames for it to consume.
pub const PARKED: u32 = 1;
/// Futex word bit: the owner is (about to be) blocked until the peer releases chunks of a
/// ring the owner produces into. A waiter may set both bits.
pub const PARKED_FOR_ROOM: u32 = 2;

// ---- §5 Chunks and §6 frames ----------------------------------------------------------

/// Smallest chunk: must hold a frame header.
pub const MIN_CHUNK_BYTES: u32 = 32;
/// Largest chunk.
pub const MAX_CHUNK_BYTES: u32 = 4096;
/// Default chunk size.
pub const DEFAULT_CHUNK_BYTES: u32 = 64;
/// Default bytes per ring (each of the two rings).
pub const DEFAULT_RING_BYTES: u64 = 4 << 20;
/// Smallest ring.
pub const MIN_RING_BYTES: u64 = 4096;
/// Largest ring.
pub const MAX_RING_BYTES: u64 = 1 << 30;
/// Default `MAX_MESSAGE_BYTES`.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 1 << 30;
/// Longest answer of a push with `peek` (layout.md §9.3): a longer patch back is left to
/// the client to ask for when it undoes, so pushes keep answering in a few chunks.
pub const PUSH_PEEK_MAX_BYTES: usize = 16 * 1024;
/// Most steps an `OP_SNAP_AHEAD` answers patches for (layout.md §9.3).
pub const AHEAD_MAX_STEPS: u64 = 64;
/// `OP_SNAP_AHEAD` adds no patch past this many answer bytes (the first is always answered).
pub const AHEAD_MAX_BYTES: usize = 256 * 1024;

/// Size of a frame header.
pub const FRAME_HEADER_BYTES: usize = 32;
/// `u16` at frame offset 0: ASCII `cr`.
pub const FRAME_MAGIC: u16 = 0x7263;

/// Frame header field offsets.
pub const FRAME_MAGIC_OFFSET: usize = 0x00;
/// `u16` flags.
pub const FRAME_FLAGS_OFFSET: usize = 0x02;
/// `u16` op code.
pub const FRAME_OP_OFFSET: usize = 0x04;
/// `u16` status (0 or an error code).
pub const FRAME_STATUS_OFFSET: usize = 0x06;
/// `u64` request id.
pub const FRAME_REQUEST_ID_OFFSET: usize = 0x08;
/// `u32` payload bytes in this frame.
pub const FRAME_PAYLOAD_LEN_OFFSET: usize = 0x10;
/// `u32` fragment index within its message.
pub const FRAME_FRAGMENT_INDEX_OFFSET: usize = 0x14;
/// `u64` payload bytes of the whole message.
pub const FRAME_MESSAGE_LEN_OFFSET: usize = 0x18;

/// Flag: padding frame; the consumer skips to the end of the ring.
pub const FLAG_PADDING: u16 = 0x0001;
/// Flag: more fragments of this message follow.
pub const FLAG_MORE: u16 = 0x0002;
/// Flag: error response; status holds the code, the payload a UTF-8 message.
pub const FLAG_ERROR: u16 = 0x0004;
/// Flag: a `FRAME_CRC_BYTES` CRC-32 trailer follows the payload (layout.md §6.6).
pub const FLAG_CRC: u16 = 0x0008;
/// Every defined flag; a frame with any other bit set is malformed.
pub const FLAGS_KNOWN: u16 = FLAG_PADDING | FLAG_MORE | FLAG_ERROR | FLAG_CRC;
/// Bytes of the CRC-32 trailer of a frame with `FLAG_CRC` (little-endian `u32`).
pub const FRAME_CRC_BYTES: usize = 4;

// ---- §7 Op codes ------------------------------------------------------------------------

/// Control: answer the body unchanged.
pub const OP_ECHO: u16 = 0x0001;
/// Control: run a chain of ops, each one's output the next one's body.
pub const OP_PIPELINE: u16 = 0x0002;
/// Control: answer, then stop the worker.
pub const OP_SHUTDOWN: u16 = 0x0003;
/// Control: JSON with version, limits and the registered ops.
pub const OP_INFO: u16 = 0x0004;

/// Markdown: markdown → HTML.
pub const OP_MD_RENDER: u16 = 0x0101;
/// Markdown: headings, code blocks, links, word count.
pub const OP_MD_OUTLINE: u16 = 0x0102;
/// Markdown: many files → one context document.
pub const OP_MD_AGGREGATE: u16 = 0x0103;

/// Snapshot: push one snapshot onto a history.
pub const OP_SNAP_PUSH: u16 = 0x0201;
/// Snapshot: push many snapshots in one request.
pub const OP_SNAP_PUSH_MANY: u16 = 0x0202;
/// Snapshot: step back.
pub const OP_SNAP_UNDO: u16 = 0x0203;
/// Snapshot: step forward.
pub const OP_SNAP_REDO: u16 = 0x0204;
/// Snapshot: move the cursor to an index.
pub const OP_SNAP_JUMP: u16 = 0x0205;
/// Snapshot: the snapshot at the cursor.
pub const OP_SNAP_CURRENT: u16 = 0x0206;
/// Snapshot: index, label, time, size of every entry.
pub const OP_SNAP_LIST: u16 = 0x0207;
/// Snapshot: RFC 6902 patch between two entries.
pub const OP_SNAP_DIFF: u16 = 0x0208;
/// Snapshot: counts, logical and stored bytes, sharing ratio.
pub const OP_SNAP_STATS: u16 = 0x0209;
/// Snapshot: digest, size and changes of a batch, stored nowhere.
pub const OP_SNAP_PROCESS: u16 = 0x020A;
/// Snapshot: persist a history to a file (temp, fsync, rename).
pub const OP_SNAP_SAVE: u16 = 0x020B;
/// Snapshot: load a history from a file.
pub const OP_SNAP_LOAD: u16 = 0x020C;
/// Snapshot: drop a history and reclaim its memory.
pub const OP_SNAP_DROP: u16 = 0x020D;
/// Snapshot: the snapshot at an index, cursor unchanged.
pub const OP_SNAP_GET: u16 = 0x020E;
/// Snapshot: undo, redo or jump, answering the patch from the old to the new current snapshot.
pub const OP_SNAP_MOVE: u16 = 0x020F;
/// Snapshot: push the current snapshot with values set or removed at paths.
pub const OP_SNAP_PUSH_FIELDS: u16 = 0x0210;
/// Snapshot: move the cursor by a number of steps, then answer the patches of the next steps.
pub const OP_SNAP_AHEAD: u16 = 0x0211;

/// Log: append one or many records.
pub const OP_LOG_APPEND: u16 = 0x0301;
/// Log: read `count` records from `start`.
pub const OP_LOG_READ: u16 = 0x0302;
/// Log: the last `n` records.
pub const OP_LOG_TAIL: u16 = 0x0303;
/// Log: number of records.
pub const OP_LOG_LEN: u16 = 0x0304;
/// Log: persist to a file.
pub const OP_LOG_SAVE: u16 = 0x0305;
/// Log: load from a file.
pub const OP_LOG_LOAD: u16 = 0x0306;

// ---- §8 Error codes (the values of `error::ErrorCode`) -------------------------------

/// Error code `OK` (layout.md §8).
pub const ERR_OK: u16 = 0;
/// Error code `MALFORMED_HEADER` (layout.md §8).
pub const ERR_MALFORMED_HEADER: u16 = 1;
/// Error code `FRAME_LENGTH` (layout.md §8).
pub const ERR_FRAME_LENGTH: u16 = 2;
/// Error code `FRAGMENT_SEQUENCE` (layout.md §8).
pub const ERR_FRAGMENT_SEQUENCE: u16 = 3;
/// Error code `MESSAGE_TOO_LARGE` (layout.md §8).
pub const ERR_MESSAGE_TOO_LARGE: u16 = 4;
/// Error code `UNKNOWN_OP` (layout.md §8).
pub const ERR_UNKNOWN_OP: u16 = 5;
/// Error code `BAD_PARAMS` (layout.md §8).
pub const ERR_BAD_PARAMS: u16 = 6;
/// Error code `BAD_PAYLOAD` (layout.md §8).
pub const ERR_BAD_PAYLOAD: u16 = 7;
/// Error code `INVALID_UTF8` (layout.md §8).
pub const ERR_INVALID_UTF8: u16 = 8;
/// Error code `NOT_FOUND` (layout.md §8).
pub const ERR_NOT_FOUND: u16 = 9;
/// Error code `OUT_OF_RANGE` (layout.md §8).
pub const ERR_OUT_OF_RANGE: u16 = 10;
/// Error code `PATH_REFUSED` (layout.md §8).
pub const ERR_PATH_REFUSED: u16 = 11;
/// Error code `IO` (layout.md §8).
pub const ERR_IO: u16 = 12;
/// Error code `INTERNAL` (layout.md §8).
pub const ERR_INTERNAL: u16 = 13;
/// Error code `SHUTTING_DOWN` (layout.md §8).
pub const ERR_SHUTTING_DOWN: u16 = 14;
/// Error code `CORRUPT_DATA` (layout.md §8).
pub const ERR_CORRUPT_DATA: u16 = 15;
/// Error code `CHECKSUM` (layout.md §8).
pub const ERR_CHECKSUM: u16 = 16;

// ---- §9 Op payloads ---------------------------------------------------------------------

/// Bytes of the `params_len` prefix of every request payload.
pub const PARAMS_LEN_BYTES: usize = 4;

// ---- compile-time checks of the invariants above ----------------------------------------

const _: () = {
    assert!(FRAME_HEADER_BYTES as u32 <= MIN_CHUNK_BYTES);
    assert!(MIN_CHUNK_BYTES.is_power_of_two() && MAX_CHUNK_BYTES.is_power_of_two());
    assert!(DEFAULT_CHUNK_BYTES.is_power_of_two());
    assert!(DEFAULT_RING_BYTES.is_power_of_two() && MIN_RING_BYTES.is_power_of_two());
    assert!(REQ_TAIL_OFFSET - REQ_HEAD_OFFSET >= CONTROL_LINE_BYTES);
    assert!(RESP_HEAD_OFFSET - REQ_TAIL_OFFSET >= CONTROL_LINE_BYTES);
    assert!(RESP_TAIL_OFFSET - RESP_HEAD_OFFSET >= CONTROL_LINE_BYTES);
    assert!(WORKER_FUTEX_OFFSET - RESP_TAIL_OFFSET >= CONTROL_LINE_BYTES);
    assert!(CLIENT_FUTEX_OFFSET - WORKER_FUTEX_OFFSET >= CONTROL_LINE_BYTES);
    assert!((CLIENT_FUTEX_OFFSET + CONTROL_LINE_BYTES) as u64 <= HEADER_BYTES);
    assert!(STATS_OFFSET + STATS_COUNT * 8 <= REQ_HEAD_OFFSET);
    assert!(STAT_NAMES.len() == STAT_MALFORMED + 1 && STAT_NAMES.len() <= STATS_COUNT);
    assert!(PARK_TIMEOUT_US_OFFSET + 8 <= FRAME_CRC_OFFSET);
    assert!(FRAME_CRC_OFFSET + 4 <= STATS_OFFSET);
    assert!(REQ_HEAD_OFFSET.is_multiple_of(8) && WORKER_FUTEX_OFFSET.is_multiple_of(4));
    assert!(FRAME_MESSAGE_LEN_OFFSET + 8 == FRAME_HEADER_BYTES);
};
