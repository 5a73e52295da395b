"""Constants and offsets of the region, copied 1:1 from layout.md (same names as src/layout.rs).

`tests/layout_md.rs` and `python/tests/test_layout.py` check this file against layout.md's tables.
No logic lives here beyond the `struct.Struct` records that mirror layout.md's diagrams.
"""

import struct


# ---- §3 Region header page ---------------------------------------------------
REGION_MAGIC = b"CHUNKRNG"  # Bytes 0..8 of every region: ASCII `CHUNKRNG`.
LAYOUT_VERSION = 1  # Layout version this build reads and writes (layout.md §12 "Versioning").
ENDIAN_MARK = 0x01020304  # Written as a native u32; reads back as this value only on a little-endian peer.
HEADER_BYTES = 4096  # Size of the header page; the request ring starts right after it.
MAGIC_OFFSET = 0x000  # `[u8; 8]` magic.
VERSION_OFFSET = 0x008  # `u32` layout version.
ENDIAN_OFFSET = 0x00C  # `u32` endianness mark.
HEADER_BYTES_OFFSET = 0x010  # `u32` header page bytes.
CHUNK_BYTES_OFFSET = 0x014  # `u32` bytes per chunk (both rings).
REQ_RING_OFFSET_OFFSET = 0x018  # `u64` byte offset of the request ring's first chunk.
REQ_RING_CHUNKS_OFFSET = 0x020  # `u64` number of chunks in the request ring (power of two).
RESP_RING_OFFSET_OFFSET = 0x028  # `u64` byte offset of the response ring's first chunk.
RESP_RING_CHUNKS_OFFSET = 0x030  # `u64` number of chunks in the response ring (power of two).
REGION_BYTES_OFFSET = 0x038  # `u64` total bytes of the region.
WORKER_PID_OFFSET = 0x040  # `u32` pid of the worker serving the region.
WORKER_STATE_OFFSET = 0x044  # `u32` one of the `WORKER_*` states.
CLIENT_PID_OFFSET = 0x048  # `u32` pid of the attached client (0 = none).
CLIENT_STATE_OFFSET = 0x04C  # `u32` one of the `CLIENT_*` states.
WORKER_HEARTBEAT_NS_OFFSET = 0x050  # `u64` worker heartbeat, CLOCK_MONOTONIC nanoseconds.
MAX_MESSAGE_BYTES_OFFSET = 0x058  # `u64` largest message (sum of fragments) the worker accepts.
PARK_TIMEOUT_US_OFFSET = 0x060  # `u64` the worker's park timeout in microseconds (the liveness backstop).
FRAME_CRC_OFFSET = 0x068  # `u32` frame checksum mode (layout.md §6.6).
FRAME_CRC_OPTIONAL = 0  # Checksum mode: frames may carry FLAG_CRC; answers carry it when the request did.
FRAME_CRC_REQUIRED = 1  # Checksum mode: every frame in both rings carries FLAG_CRC (`serve --crc`).
WORKER_STARTING = 0  # Worker states (`WORKER_STATE_OFFSET`).
WORKER_READY = 1  # Header written, serving requests.
WORKER_STOPPING = 2  # Told to stop; finishing the frames already read.
WORKER_STOPPED = 3  # Exited cleanly; nothing more will be answered.
WORKER_FAILED = 4  # Exited on an error; nothing more will be answered.
CLIENT_NONE = 0  # Client states (`CLIENT_STATE_OFFSET`).
CLIENT_ATTACHED = 1  # A client is attached and may produce requests.
CLIENT_DETACHED = 2  # The client detached cleanly; a new one may attach.
STATS_OFFSET = 0x100  # First stats counter; counters are `u64`, written by the worker only (Relaxed).
STATS_COUNT = 16  # Number of stats counters (`STAT_*` indices below).
STAT_REQUESTS = 0  # Index: request messages completed (after reassembly).
STAT_RESPONSES = 1  # Index: response messages written.
STAT_ERROR_FRAMES = 2  # Index: error frames written.
STAT_REQ_BYTES = 3  # Index: request payload bytes read.
STAT_RESP_BYTES = 4  # Index: response payload bytes written.
STAT_WORKER_PARKS = 5  # Index: times the worker parked on its futex.
STAT_TIMEOUT_WAKEUPS = 6  # Index: parks that ended by the timeout while work was already published (backstop hits).
STAT_CLIENT_WAKES = 7  # Index: futex wakes the worker issued to the client.
STAT_REQ_PADDING = 8  # Index: padding frames consumed from the request ring.
STAT_RESP_PADDING = 9  # Index: padding frames written to the response ring.
STAT_REQ_FRAGMENTS = 10  # Index: fragment frames read (frames of multi-frame requests).
STAT_RESP_FRAGMENTS = 11  # Index: fragment frames written (frames of multi-frame responses).
STAT_RESP_BATCHES = 12  # Index: tail stores on the response ring (one per published batch).
STAT_MALFORMED = 13  # Index: malformed frames answered with an error and skipped.
#: Every stats counter's name, indexed by its `STAT_*` value: the keys of `Client.stats()`
#: and the names `chunkring inspect` prints (`STAT_NAMES` in src/layout.rs).
STAT_NAMES = (
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
)

# ---- §4 Ring control blocks: one 128-byte line each --------------------------
REQ_HEAD_OFFSET = 0x200  # `u64` request ring head (consumer = worker).
REQ_TAIL_OFFSET = 0x280  # `u64` request ring tail (producer = client).
RESP_HEAD_OFFSET = 0x300  # `u64` response ring head (consumer = client).
RESP_TAIL_OFFSET = 0x380  # `u64` response ring tail (producer = worker).
WORKER_FUTEX_OFFSET = 0x400  # `u32` the worker's futex word: `AWAKE` or `PARKED`.
CLIENT_FUTEX_OFFSET = 0x480  # `u32` the client's futex word: `AWAKE` or `PARKED`.
CONTROL_LINE_BYTES = 0x80  # Spacing of the control words; a multiple of every cache line we target.
AWAKE = 0  # Futex word value: the owner is running or spinning.
PARKED_FOR_ROOM = 2  # Futex word bit: blocked until the peer releases chunks of a ring the owner produces into.
PARKED = 1  # Futex word value: the owner is (about to be) blocked in `futex_wait`.

# ---- §5 Chunks and §6 frames -------------------------------------------------
MIN_CHUNK_BYTES = 32  # Smallest chunk: must hold a frame header.
MAX_CHUNK_BYTES = 4096  # Largest chunk.
DEFAULT_CHUNK_BYTES = 64  # Default chunk size.
DEFAULT_RING_BYTES = 4 << 20  # Default bytes per ring (each of the two rings).
MIN_RING_BYTES = 4096  # Smallest ring.
MAX_RING_BYTES = 1 << 30  # Largest ring.
DEFAULT_MAX_MESSAGE_BYTES = 1 << 30  # Default `MAX_MESSAGE_BYTES`.
PUSH_PEEK_MAX_BYTES = 1 << 14  # Longest answer of a push with `peek` (§9.3): 16 KiB.
AHEAD_MAX_STEPS = 64  # Most steps an `OP_SNAP_AHEAD` answers patches for (§9.3).
AHEAD_MAX_BYTES = 1 << 18  # `OP_SNAP_AHEAD` adds no patch past this many answer bytes (§9.3).
FRAME_HEADER_BYTES = 32  # Size of a frame header.
FRAME_MAGIC = 0x7263  # `u16` at frame offset 0: ASCII `cr`.
FRAME_MAGIC_OFFSET = 0x00  # Frame header field offsets.
FRAME_FLAGS_OFFSET = 0x02  # `u16` flags.
FRAME_OP_OFFSET = 0x04  # `u16` op code.
FRAME_STATUS_OFFSET = 0x06  # `u16` status (0 or an error code).
FRAME_REQUEST_ID_OFFSET = 0x08  # `u64` request id.
FRAME_PAYLOAD_LEN_OFFSET = 0x10  # `u32` payload bytes in this frame.
FRAME_FRAGMENT_INDEX_OFFSET = 0x14  # `u32` fragment index within its message.
FRAME_MESSAGE_LEN_OFFSET = 0x18  # `u64` payload bytes of the whole message.
FLAG_PADDING = 0x0001  # Flag: padding frame; the consumer skips to the end of the ring.
FLAG_MORE = 0x0002  # Flag: more fragments of this message follow.
FLAG_ERROR = 0x0004  # Flag: error response; status holds the code, the payload a UTF-8 message.
FLAG_CRC = 0x0008  # Flag: a FRAME_CRC_BYTES CRC-32 trailer follows the payload (layout.md §6.6).
FLAGS_KNOWN = FLAG_PADDING | FLAG_MORE | FLAG_ERROR | FLAG_CRC  # Every defined flag; a frame with any other bit set is malformed.
FRAME_CRC_BYTES = 4  # Bytes of the CRC-32 trailer (`u32`, zlib.crc32 of header + payload).

# ---- §7 Op codes -------------------------------------------------------------
OP_ECHO = 0x0001  # Control: answer the body unchanged.
OP_PIPELINE = 0x0002  # Control: run a chain of ops, each one's output the next one's body.
OP_SHUTDOWN = 0x0003  # Control: answer, then stop the worker.
OP_INFO = 0x0004  # Control: JSON with version, limits and the registered ops.
OP_MD_RENDER = 0x0101  # Markdown: markdown → HTML.
OP_MD_OUTLINE = 0x0102  # Markdown: headings, code blocks, links, word count.
OP_MD_AGGREGATE = 0x0103  # Markdown: many files → one context document.
OP_SNAP_PUSH = 0x0201  # Snapshot: push one snapshot onto a history.
OP_SNAP_PUSH_MANY = 0x0202  # Snapshot: push many snapshots in one request.
OP_SNAP_UNDO = 0x0203  # Snapshot: step back.
OP_SNAP_REDO = 0x0204  # Snapshot: step forward.
OP_SNAP_JUMP = 0x0205  # Snapshot: move the cursor to an index.
OP_SNAP_CURRENT = 0x0206  # Snapshot: the snapshot at the cursor.
OP_SNAP_LIST = 0x0207  # Snapshot: index, label, time, size of every entry.
OP_SNAP_DIFF = 0x0208  # Snapshot: RFC 6902 patch between two entries.
OP_SNAP_STATS = 0x0209  # Snapshot: counts, logical and stored bytes, sharing ratio.
OP_SNAP_PROCESS = 0x020A  # Snapshot: digest, size and changes of a batch, stored nowhere.
OP_SNAP_SAVE = 0x020B  # Snapshot: persist a history to a file (temp, fsync, rename).
OP_SNAP_LOAD = 0x020C  # Snapshot: load a history from a file.
OP_SNAP_DROP = 0x020D  # Snapshot: drop a history and reclaim its memory.
OP_SNAP_GET = 0x020E  # Snapshot: the snapshot at an index, cursor unchanged.
OP_SNAP_MOVE = 0x020F  # Snapshot: undo, redo or jump, answering the patch from the old to the new current snapshot.
OP_SNAP_PUSH_FIELDS = 0x0210  # Snapshot: push the current snapshot with values set or removed at paths.
OP_SNAP_AHEAD = 0x0211  # Snapshot: move the cursor by a number of steps, then answer the patches of the next steps.
OP_LOG_APPEND = 0x0301  # Log: append one or many records.
OP_LOG_READ = 0x0302  # Log: read `count` records from `start`.
OP_LOG_TAIL = 0x0303  # Log: the last `n` records.
OP_LOG_LEN = 0x0304  # Log: number of records.
OP_LOG_SAVE = 0x0305  # Log: persist to a file.
OP_LOG_LOAD = 0x0306  # Log: load from a file.

#: The ops a client may send again after a worker death (layout.md §12 "Client recovery"):
#: their answer depends only on the request (and, for OP_MD_AGGREGATE, the files it reads),
#: and running them twice changes nothing in the worker. OP_PIPELINE is safe when every one
#: of its stages is one of these. Every other op reads or changes state the dead worker held.
PURE_OPS = frozenset((OP_ECHO, OP_INFO, OP_MD_RENDER, OP_MD_OUTLINE, OP_MD_AGGREGATE,
                      OP_SNAP_PROCESS))

# ---- §9 Op payloads ----------------------------------------------------------
PARAMS_LEN_BYTES = 4  # Bytes of the `params_len` prefix of every request payload.

# ---- compile-time checks of the invariants above -----------------------------

# ---- §8 Error codes ------------------------------------------------------------------
ERR_OK = 0
ERR_MALFORMED_HEADER = 1
ERR_FRAME_LENGTH = 2
ERR_FRAGMENT_SEQUENCE = 3
ERR_MESSAGE_TOO_LARGE = 4
ERR_UNKNOWN_OP = 5
ERR_BAD_PARAMS = 6
ERR_BAD_PAYLOAD = 7
ERR_INVALID_UTF8 = 8
ERR_NOT_FOUND = 9
ERR_OUT_OF_RANGE = 10
ERR_PATH_REFUSED = 11
ERR_IO = 12
ERR_INTERNAL = 13
ERR_SHUTTING_DOWN = 14
ERR_CORRUPT_DATA = 15
ERR_CHECKSUM = 16  # A frame failed its CRC-32 check or lacked a required one.

# ---- records (layout.md diagrams), little-endian ---------------------------------------

#: Frame header (layout.md §6): magic, flags, op, status, request_id, payload_len,
#: fragment_index, message_len.
FRAME_HEADER = struct.Struct("<HHHHQIIQ")
assert FRAME_HEADER.size == FRAME_HEADER_BYTES

#: The region header's fixed fields from MAGIC_OFFSET to FRAME_CRC_OFFSET + 4
#: (layout.md §3): magic, version, endian, header_bytes, chunk_bytes, req_ring_offset,
#: req_ring_chunks, resp_ring_offset, resp_ring_chunks, region_bytes, worker_pid,
#: worker_state, client_pid, client_state, worker_heartbeat_ns, max_message_bytes,
#: park_timeout_us, frame_crc.
REGION_HEADER = struct.Struct("<8sIIIIQQQQQIIIIQQQI")
assert REGION_HEADER.size == FRAME_CRC_OFFSET + 4

#: Every error code by value, for messages (layout.md §8).
ERROR_NAMES = {
    ERR_OK: "OK",
    ERR_MALFORMED_HEADER: "MALFORMED_HEADER",
    ERR_FRAME_LENGTH: "FRAME_LENGTH",
    ERR_FRAGMENT_SEQUENCE: "FRAGMENT_SEQUENCE",
    ERR_MESSAGE_TOO_LARGE: "MESSAGE_TOO_LARGE",
    ERR_UNKNOWN_OP: "UNKNOWN_OP",
    ERR_BAD_PARAMS: "BAD_PARAMS",
    ERR_BAD_PAYLOAD: "BAD_PAYLOAD",
    ERR_INVALID_UTF8: "INVALID_UTF8",
    ERR_NOT_FOUND: "NOT_FOUND",
    ERR_OUT_OF_RANGE: "OUT_OF_RANGE",
    ERR_PATH_REFUSED: "PATH_REFUSED",
    ERR_IO: "IO",
    ERR_INTERNAL: "INTERNAL",
    ERR_SHUTTING_DOWN: "SHUTTING_DOWN",
    ERR_CORRUPT_DATA: "CORRUPT_DATA",
    ERR_CHECKSUM: "CHECKSUM",
}
