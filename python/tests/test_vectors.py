"""The shared test vectors (layout.md §15): decode each hex, compare the fields, re-encode and
compare the bytes. The same files are checked by ``tests/vectors.rs`` on the Rust side.
"""

from __future__ import annotations

import json
import struct

import pytest
from conftest import REPO_ROOT

from chunkring import _layout as L

VECTOR_DIR = REPO_ROOT / "tests" / "vectors"
HEADER_FIELDS = ("magic", "flags", "op", "status", "request_id", "payload_len",
                 "fragment_index", "message_len")


def _entries():
    out = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        for i, entry in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            out.append(pytest.param(path.name, entry, id=f"{path.stem}:{entry.get('name', i)}"))
    return out


ENTRIES = _entries()


def test_vector_files_exist():
    names = {p.name for p in VECTOR_DIR.glob("*.json")}
    assert {"10.frame-header.json", "20.padding.json", "30.fragments.json",
            "40.error-frames.json", "50.ops.json"} <= names
    assert len(ENTRIES) >= 10


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", "").replace(" ", ""))


def encodings(entry: dict) -> list[bytes]:
    if "hexes" in entry:
        return [unhex(h) for h in entry["hexes"]]
    return [unhex(entry["hex"])]


def payload_bytes(value) -> bytes:
    """A payload given in a vector: ``{"hex": ..}``, ``{"utf8": ..}``, a hex string, or text."""
    if isinstance(value, dict):
        if "hex" in value:
            return unhex(value["hex"])
        if "utf8" in value:
            return value["utf8"].encode()
    if isinstance(value, str):
        try:
            return unhex(value)
        except ValueError:
            return value.encode()
    raise AssertionError(f"cannot read payload {value!r}")


def encode_request_payload(params, body: bytes) -> bytes:
    """layout.md §9.1: ``params_len | params | body`` (params as compact JSON, or empty)."""
    if params is None or params == "":
        pj = b""
    elif isinstance(params, str):
        pj = params.encode()
    else:
        pj = json.dumps(params, separators=(",", ":")).encode()
    return struct.pack("<I", len(pj)) + pj + body


def encode_list(items: list[bytes]) -> bytes:
    """layout.md §9.1 list encoding."""
    return struct.pack(f"<I{len(items)}I", len(items), *map(len, items)) + b"".join(items)


def check_frame(entry: dict, raw: bytes) -> None:
    fields = entry["fields"]
    decoded = dict(zip(HEADER_FIELDS, L.FRAME_HEADER.unpack_from(raw, 0)))
    for name in HEADER_FIELDS:
        if name in fields:
            assert decoded[name] == fields[name], name
    assert decoded["magic"] == L.FRAME_MAGIC
    payload = raw[L.FRAME_HEADER_BYTES : L.FRAME_HEADER_BYTES + decoded["payload_len"]]
    if "payload" in fields:
        if not decoded["flags"] & L.FLAG_PADDING:
            assert payload == payload_bytes(fields["payload"])
    if decoded["flags"] & L.FLAG_ERROR and "message" in fields:
        assert payload.decode() == fields["message"]
    # Re-encode from the fields alone.
    header = L.FRAME_HEADER.pack(*(fields.get(n, decoded[n] if n == "magic" else 0)
                                   for n in HEADER_FIELDS))
    assert raw[: L.FRAME_HEADER_BYTES] == header
    if "payload" in fields and not decoded["flags"] & L.FLAG_PADDING:
        assert raw[: L.FRAME_HEADER_BYTES + decoded["payload_len"]] == header + payload_bytes(
            fields["payload"]
        )


def check_payload(entry: dict, raw: bytes) -> None:
    fields = entry["fields"]
    if "items" in fields:
        items = [payload_bytes(x) for x in fields["items"]]
        assert encode_list(items) == raw
        (count,) = struct.unpack_from("<I", raw, 0)
        assert count == len(items)
        return
    params = fields.get("params")
    body = payload_bytes(fields.get("body", ""))
    (plen,) = struct.unpack_from("<I", raw, 0)
    if params is not None and not isinstance(params, str):
        assert json.loads(raw[4 : 4 + plen]) == params
    assert raw[4 + plen :] == body
    assert encode_request_payload(params, body) == raw


@pytest.mark.parametrize("filename, entry", ENTRIES)
def test_vector(filename, entry):
    for raw in encodings(entry):
        if filename.startswith("50."):
            check_payload(entry, raw)
        else:
            check_frame(entry, raw)
