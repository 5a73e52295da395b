"""Writes the seed corpus of every fuzz target into fuzz/seeds/<target>/ (stdlib only).

The seeds include the crafted inputs of issue 11: marshal back-references that expand 2^41
times or nest 2000 deep, a history file whose value expands without bound, frames with a good
magic and a bad length, params that are JSON arrays. Rerun after changing a format:
``python3 fuzz/make_seeds.py``.
"""

from __future__ import annotations

import json
import marshal
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAGIC = 0x7263  # FRAME_MAGIC, bytes 63 72
FRAME = struct.Struct("<HHHHQIIQ")


def req(params: bytes, body: bytes = b"") -> bytes:
    return struct.pack("<I", len(params)) + params + body


def lst(items: list[bytes]) -> bytes:
    return struct.pack(f"<I{len(items)}I", len(items), *map(len, items)) + b"".join(items)


def chain(n: int, width: int) -> bytes:
    out = bytearray(b"{\xfa\x01a[" + struct.pack("<i", n) + b"\xdb" + struct.pack("<i", 0))
    for i in range(1, n):
        out += b"\xdb" + struct.pack("<i", width) + (b"r" + struct.pack("<I", i)) * width
    return bytes(out + b"0")


def history_file(nodes: list[bytes], root: int, enc: int = 2, sizes: tuple = (0,)) -> bytes:
    """A history payload of ``nodes`` with one entry per size in ``sizes``, each of ``root``."""
    p = struct.pack("<I", 2) + b"ui" + struct.pack("<IIII", 10, 0, len(nodes), len(sizes))
    p += b"".join(nodes)
    for size in sizes:
        p += struct.pack("<IBdQI", root, enc, 0.0, size, 0xFFFFFFFF)
    return p


def batch(items: list[bytes]) -> bytes:
    """process_batch's lenient batch: the count, the lengths, the snapshots."""
    return bytes([len(items)]) + struct.pack(f"<{len(items)}I", *map(len, items)) + b"".join(items)


def gui_edits(n: int) -> list[bytes]:
    """``n`` snapshots of a small GUI state, each one edit of the one before, as CPython
    writes them (interned keys flagged and named again by ``r``)."""
    state = {"disc": [{"role": "user", "text": f"m{i}", "open": i % 2 == 0} for i in range(4)],
             "files": [{"path": f"f{i}.py", "open": False} for i in range(3)], "scroll": 0.5}
    out = []
    for step in range(n):
        if step % 3 == 0:
            state["disc"].append({"role": "user", "text": f"new {step}", "open": True})
        elif step % 3 == 1:
            state["disc"][step % len(state["disc"])]["text"] = f"edited {step}"
        else:
            state["files"][step % 3]["open"] = not state["files"][step % 3]["open"]
        out.append(marshal.dumps(state, 4))
    return out


def main() -> None:
    dag = [b"\x00"] + [b"\x08" + struct.pack("<III", 2, i, i) for i in range(41)]
    dag += [b"\x06" + struct.pack("<I", 1) + b"a", b"\x09" + struct.pack("<III", 1, 42, 41)]
    small = [b"\x06" + struct.pack("<I", 1) + b"k", b"\x03" + struct.pack("<q", 7),
             b"\x09" + struct.pack("<III", 1, 0, 1)]
    hist_payload = history_file(small, 2, 1)
    hist = b"CRSNAP\x00\x01" + struct.pack("<QII", len(hist_payload), zlib.crc32(hist_payload), 0)
    doc = {"title": "t", "rows": [{"id": i, "k": "é"} for i in range(3)], "n": 2**70, "f": 1.5}
    seeds = {
        "frame_header": {
            "echo": FRAME.pack(MAGIC, 0, 1, 0, 9, 8, 0, 8) + b"\x00\x04\x04",
            "bad-magic": FRAME.pack(0xBEEF, 0, 1, 0, 9, 8, 0, 8) + b"\x00\x04\x04",
            "bad-length": FRAME.pack(MAGIC, 0, 1, 0, 9, 1 << 20, 0, 1 << 20) + b"\x01\x02\x04",
            "id-zero": FRAME.pack(MAGIC, 0, 1, 0, 0, 4, 0, 4) + b"\x00\x01\x01",
            "fragment": FRAME.pack(MAGIC, 0x0002, 1, 0, 9, 100, 1, 300) + b"\x02\x08\x08",
            # layout.md §6.6: FLAG_CRC (0x0008) counts a 4-byte trailer in the frame's chunks;
            # a padding frame with it ends 4 bytes early.
            "crc": FRAME.pack(MAGIC, 0x0008, 1, 0, 9, 28, 0, 28) + b"\x01\x01\x01",
            "crc-spills": FRAME.pack(MAGIC, 0x0008, 1, 0, 9, 29, 0, 29) + b"\x01\x01\x02",
            "crc-padding": FRAME.pack(MAGIC, 0x0009, 0, 0, 0, 156, 0, 0) + b"\x01\x03\x03",
        },
        "request_payload": {
            "empty": req(b""),
            "object": req(b'{"name":"ui"}', b"body"),
            "array-params": req(b'["ui", 10]'),
            "list": req(b"", lst([b"a", b"bc", b""])),
            "overlong": struct.pack("<I", 0xFFFFFFF0) + b"{}",
        },
        "op_params": {
            "echo": b"\x00" + req(b"", b"hi"),
            "render": b"\x01" + req(b"{}", lst([b"# T\n\n| a |\n|---|\n| b |\n"])),
            "aggregate": b"\x03" + req(b'{"files":[{"path":"a.md"}],"toc":true}', lst([b"# A\n```\nx\n```\n"])),
            "push-json": b"\x04" + req(b'{"name":"ui"}', json.dumps(doc, default=str).encode()),
            "push-marshal": b"\x04" + req(b'{"name":"ui","encoding":"marshal"}', marshal.dumps(doc, 4)),
            "push-dag": b"\x04" + req(b'{"name":"ui","encoding":"marshal"}', chain(31, 2)),
            "push-chain": b"\x04" + req(b'{"name":"ui","encoding":"marshal"}', chain(2000, 1)),
            "diff": b"\x0b" + req(b'{"name":"ui","a":0,"b":1}'),
            # (the first byte picks an op by its index among the registry's codes, sorted,
            # file-system ops left out: 18 is OP_SNAP_AHEAD, 19 OP_LOG_APPEND)
            "ahead": b"\x12" + req(b'{"name":"ui","by":0,"to":"undo","count":4}'),
            "ahead-snapshots": b"\x12" + req(b'{"name":"ui","by":-1,"to":"redo","count":2,'
                                              b'"snapshots":true}'),
            "log": b"\x13" + req(b'{"name":"l"}', lst([b"r1", b"r2"])),
        },
        "json_codec": {
            "doc": json.dumps(doc, default=str).encode(),
            "deep": b'{"a":' + b"[" * 600 + b"]" * 600 + b"}",
            "escapes": b'{"s":"\\ud83d\\ude00\\n\\u0000","x":NaN,"y":-Infinity,"z":1e400}',
        },
        "marshal_codec": {
            "doc": marshal.dumps(doc, 4),
            "dag": chain(31, 2),
            "chain": chain(2000, 1),
            "shared": marshal.dumps({"a": [[1]] * 3, "b": ("x", "x")}, 4),
        },
        "process_batch": {
            "gui-edits": batch(gui_edits(6)),
            "shared-dicts": batch([marshal.dumps({"a": d, "b": d, "c": [d, {"x": 1}]}, 4)
                                   for d in ({"k": "v"}, {"k": "v"}, {"k": "w"})]),
            "one": batch([marshal.dumps(doc, 4)]),
            "deep": batch([marshal.dumps({"a": {"b": {"c": {"d": [1]}}}}, 4)] * 2
                          + [marshal.dumps({"a": {"b": {"c": {"d": [2]}}}}, 4)]),
        },
        "history_file": {
            "small": hist,
            "small-payload": hist_payload,
            "dag-payload": history_file(dag, 43),
            # entry sizes that add up past 2^64 - 1 (found by this target)
            "sizes-overflow-payload": history_file(small, 2, 1, sizes=(1 << 63, 1 << 63)),
        },
    }
    records = [b"first", b"", "é".encode(), b"\x00" * 40]
    log_payload = (struct.pack("<I", 5) + b"comms" + struct.pack("<Q", len(records))
                   + b"".join(struct.pack("<I", len(r)) + r for r in records))
    seeds["log_file"] = {
        "small": b"CRLOG\x00\x00\x01" + struct.pack("<QII", len(log_payload),
                                                    zlib.crc32(log_payload), 0) + log_payload,
        "small-payload": log_payload,
        # a record count far past what the payload holds
        "count-past-payload": struct.pack("<I", 1) + b"x" + struct.pack("<Q", 1 << 62),
    }
    for target, files in seeds.items():
        d = HERE / "seeds" / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (d / name).write_bytes(data)


if __name__ == "__main__":
    main()
