"""The shared test vectors (layout.md §15): decode each hex, compare the fields, re-encode and
compare the bytes. The same files are checked by ``tests/vectors.rs`` on the Rust side.
"""

from __future__ import annotations

import json
import marshal
import struct
import zlib

import pytest
from chunkring import _layout as L
from conftest import REPO_ROOT

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
            "40.error-frames.json", "50.ops.json", "60.checksums.json"} <= names
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
    trailer = b""
    if decoded["flags"] & L.FLAG_CRC:
        # §6.6: a 4-byte CRC-32 trailer after the payload, over the header and the payload
        # (the header alone for padding); "crc_ok": false marks a frame changed afterwards.
        raw, trailer = raw[: -L.FRAME_CRC_BYTES], raw[-L.FRAME_CRC_BYTES :]
        (crc,) = struct.unpack("<I", trailer)
        assert crc == fields["crc"]
        covered = b"" if decoded["flags"] & L.FLAG_PADDING else raw[L.FRAME_HEADER_BYTES :]
        computed = zlib.crc32(covered, zlib.crc32(raw[: L.FRAME_HEADER_BYTES]))
        assert (computed == crc) == fields["crc_ok"]
        assert fields["crc_ok"] or computed == fields["computed_crc"]
    payload = raw[L.FRAME_HEADER_BYTES :]
    assert payload == unhex(fields["payload_hex"])
    if decoded["flags"] & L.FLAG_PADDING:
        # Padding payload bytes are unspecified; vectors encode the header only (§6.3).
        assert decoded["op"] == 0 and decoded["request_id"] == 0
        assert (L.FRAME_HEADER_BYTES + decoded["payload_len"] + len(trailer)) % 32 == 0
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
    if fields.get("compact_patch"):
        # A compact move patch is one marshal blob (test_snapshots applies it).
        assert marshal.loads(raw) == fields["ops"]
        return
    if fields.get("ahead_patches"):
        # An OP_SNAP_AHEAD answer's blob: the list of compact patches (test_snapshots applies it).
        assert marshal.loads(raw) == fields["patches"]
        return
    if fields.get("process_answer"):
        # The records of an `answer: "marshal"` process, as Snapshots.process returns them.
        assert marshal.loads(raw) == fields["records"]
        return
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


# ---- the client's own encoder and decoder against the vectors ---------------------------------


def _frames(filename: str) -> list[dict]:
    return json.loads((VECTOR_DIR / filename).read_text(encoding="utf-8"))


@pytest.fixture
def offline_client(tmp_path):
    """A client attached to a region file that no worker serves: its rings are ours to inspect."""
    from chunkring import Client
    from conftest import make_region_file

    c = Client.attach(file=make_region_file(tmp_path), timeout=1)
    yield c
    c._receiver.fail_all(RuntimeError("test over"))
    c.close()


def _single_frame_requests():
    out = []
    for e in _frames("10.frame-header.json"):
        f = e["fields"]
        if "request" in e["name"] and f["flags"] == 0 and f["payload_len"] == f["message_len"]:
            out.append(pytest.param(e, id=e["name"]))
    return out


@pytest.mark.parametrize("entry", _single_frame_requests())
def test_client_encodes_request_vectors(offline_client, entry):
    c = offline_client
    f = entry["fields"]
    payload = unhex(f["payload_hex"])
    (plen,) = struct.unpack_from("<I", payload, 0)
    params = json.loads(payload[4 : 4 + plen]) if plen else None
    body = payload[4 + plen :]
    c._sender.next_id = f["request_id"]
    off = c._region.req_ring_offset + (c._sender.producer.tail & c._sender.producer.mask) * c.chunk_bytes
    c.submit(f["op"], body, params)
    raw = unhex(entry["hex"])
    assert bytes(c._region.mm[off : off + len(raw)]) == raw
    assert c._region.q[L.REQ_TAIL_OFFSET // 8] == c._sender.producer.tail  # published


def _write_response(c, raw: bytes) -> None:
    """Put one frame at the response ring's tail and publish it, as the worker would."""
    region = c._region
    tail = c._region.q[L.RESP_TAIL_OFFSET // 8]
    off = region.resp_ring_offset + (tail % region.resp_ring_chunks) * c.chunk_bytes
    region.mm[off : off + len(raw)] = raw
    c._region.q[L.RESP_TAIL_OFFSET // 8] = tail + (len(raw) + c.chunk_bytes - 1) // c.chunk_bytes


def _expect(c, request_id: int):
    from chunkring import Handle

    h = Handle(c._receiver, request_id, 0)
    c._receiver.pending[request_id] = h
    return h


def test_client_decodes_the_echo_response_vector(offline_client):
    c = offline_client
    (entry,) = [e for e in _frames("10.frame-header.json") if e["name"] == "echo response id 1"]
    h = _expect(c, 1)
    _write_response(c, unhex(entry["hex"]))
    assert h.done()
    assert h.result(timeout=0) == unhex(entry["fields"]["payload_hex"])
    assert c._region.q[L.RESP_HEAD_OFFSET // 8] == c._region.q[L.RESP_TAIL_OFFSET // 8]  # released


def test_client_reassembles_the_fragment_vectors(offline_client):
    c = offline_client
    frames = [e for e in _frames("30.fragments.json") if e["fields"]["request_id"] == 77]
    assert len(frames) == 3
    h = _expect(c, 77)
    for e in frames[:-1]:
        _write_response(c, unhex(e["hex"]))
        assert not h.done()
    _write_response(c, unhex(frames[-1]["hex"]))
    expected = b"".join(unhex(e["fields"]["payload_hex"]) for e in frames)
    assert len(expected) == frames[0]["fields"]["message_len"]
    assert h.result(timeout=0) == expected


@pytest.mark.parametrize("entry", _frames("40.error-frames.json"), ids=lambda e: e["name"])
def test_client_raises_the_error_frame_vectors(offline_client, entry):
    from chunkring import ProtocolError, RequestError

    c = offline_client
    f = entry["fields"]
    bystander = _expect(c, 0xABCDEF) if f["request_id"] == 0 else None
    h = _expect(c, f["request_id"])
    _write_response(c, unhex(entry["hex"]))
    with pytest.raises(RequestError) as info:
        h.result(timeout=0)
    assert info.value.code == f["status"]
    assert info.value.message == unhex(f["payload_hex"]).decode()
    if bystander is not None:
        # Request id 0: everything in flight was discarded by the worker (§6.5).
        with pytest.raises(ProtocolError):
            bystander.result(timeout=0)
