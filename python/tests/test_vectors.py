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


def encode_request_payload(params: str, body: bytes) -> bytes:
    """layout.md §9.1: ``params_len | params | body`` (params: the JSON text, or empty)."""
    pj = params.encode()
    return struct.pack("<I", len(pj)) + pj + body


def encode_list(items: list[bytes]) -> bytes:
    """layout.md §9.1 list encoding, as the docs give it for Python."""
    return struct.pack(f"<I{len(items)}I", len(items), *map(len, items)) + b"".join(items)


def decode_list(raw: bytes) -> list[bytes]:
    (count,) = struct.unpack_from("<I", raw, 0)
    lens = struct.unpack_from(f"<{count}I", raw, 4)
    pos = 4 + 4 * count
    items = []
    for n in lens:
        items.append(raw[pos : pos + n])
        pos += n
    assert pos == len(raw), "bytes left over after the last item"
    return items


def check_frame(entry: dict, raw: bytes) -> None:
    fields = entry["fields"]
    decoded = dict(zip(HEADER_FIELDS, L.FRAME_HEADER.unpack_from(raw, 0)))
    assert decoded == {n: fields[n] for n in HEADER_FIELDS}
    assert decoded["magic"] == L.FRAME_MAGIC
    assert decoded["flags"] & ~L.FLAGS_KNOWN == 0
    payload = raw[L.FRAME_HEADER_BYTES :]
    assert payload == unhex(fields["payload_hex"])
    if decoded["flags"] & L.FLAG_PADDING:
        # Padding payload bytes are unspecified; vectors encode the header only (§6.3).
        assert decoded["op"] == 0 and decoded["request_id"] == 0
        assert (L.FRAME_HEADER_BYTES + decoded["payload_len"]) % 32 == 0
    else:
        assert len(payload) == decoded["payload_len"]
        assert decoded["message_len"] >= decoded["payload_len"]
    if decoded["flags"] & L.FLAG_ERROR:
        message = payload.decode("utf-8")
        assert decoded["status"] in L.ERROR_NAMES and decoded["status"] != L.ERR_OK
        assert message and not message[0].isupper()
    # Re-encode from the fields alone, exactly as the client builds frames.
    again = L.FRAME_HEADER.pack(*(fields[n] for n in HEADER_FIELDS)) + unhex(fields["payload_hex"])
    assert again == raw


def check_payload(entry: dict, raw: bytes) -> None:
    fields = entry["fields"]
    if "items_hex" in fields:
        items = [unhex(x) for x in fields["items_hex"]]
        assert decode_list(raw) == items
        assert encode_list(items) == raw
        return
    params, body = fields["params"], unhex(fields["body_hex"])
    (plen,) = struct.unpack_from("<I", raw, 0)
    assert raw[4 : 4 + plen].decode() == params
    if params:
        # The client's own encoding (compact JSON) reproduces the vector byte for byte.
        assert json.dumps(json.loads(params), separators=(",", ":")) == params
    assert raw[4 + plen :] == body
    assert encode_request_payload(params, body) == raw


@pytest.mark.parametrize("filename, entry", ENTRIES)
def test_vector(filename, entry):
    for raw in encodings(entry):
        if filename.startswith("50."):
            check_payload(entry, raw)
        else:
            check_frame(entry, raw)
