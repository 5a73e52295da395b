"""Snapshots whose expansion is unbounded are refused, and what saves loads (issue 11, items 1-2).

A marshal stream may share one object many times through back-references. The store keeps
shared values once, so a 1 KB push can stand for 2^41 leaves, or nest 200k deep while the
decoder itself never went deeper than 2. Writing such a value back (``current``, ``undo``,
``save``) used to abort the worker (out of memory, stack overflow). Now a push or a load of
such a value is a clear ``BAD_PAYLOAD`` / ``CORRUPT_DATA`` and the worker keeps serving.
"""

from __future__ import annotations

import marshal
import struct
import sys
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chunkring import _layout as L  # noqa: E402
from chunkring.errors import RequestError  # noqa: E402
from chunkring.snapshots import History  # noqa: E402


def doubling_dag(levels: int) -> dict:
    """``{"a": x}`` where ``x = [y, y]`` … ``levels`` times: marshal writes each level once."""
    x: list = []
    for _ in range(levels):
        x = [x, x]
    return {"a": x}


def back_reference_chain(n: int) -> bytes:
    """A marshal dict ``{"a": [l0, l1, …]}`` where ``l(i+1) = [l(i)]`` through a back-reference:
    the stream nests 3 deep, the value ``n`` deep."""
    out = bytearray(b"{\xfa\x01a")  # dict, then the key "a" (short ASCII, FLAG_REF)
    out += b"[" + struct.pack("<i", n)
    out += b"\xdb" + struct.pack("<i", 0)  # ref 1: []
    for i in range(1, n):
        out += b"\xdb" + struct.pack("<i", 1) + b"r" + struct.pack("<I", i)  # ref i+1: [ref i]
    out += b"0"
    return bytes(out)


def assert_alive(client) -> None:
    assert client.echo(b"still here") == b"still here"


def test_shared_subobjects_that_expand_without_bound_are_refused_at_push(client):
    h = History(client, "bounds-dag")
    body = marshal.dumps(doubling_dag(41), 4)
    assert len(body) < 1000
    with pytest.raises(RequestError) as e:
        h.push(body, encoding="marshal", wait=True)
    assert e.value.code == L.ERR_BAD_PAYLOAD
    assert "expands to more than" in e.value.message
    assert_alive(client)
    # A modest amount of sharing is fine and comes back equal.
    h.push(doubling_dag(8), wait=True)
    assert h.current() == doubling_dag(8)


def test_a_back_reference_chain_200k_deep_is_refused_at_push(client):
    h = History(client, "bounds-chain")
    with pytest.raises(RequestError) as e:
        h.push(back_reference_chain(200_000), encoding="marshal", wait=True)
    assert e.value.code == L.ERR_BAD_PAYLOAD
    assert "nesting deeper than 512" in e.value.message
    assert_alive(client)


def history_file(nodes: list[bytes], root: int) -> bytes:
    """A history file (layout.md §9.3 "History files") with one marshal entry."""
    p = bytearray()
    p += struct.pack("<I", 4) + b"evil"
    p += struct.pack("<III", 10, 0, len(nodes)) + struct.pack("<I", 1)
    for n in nodes:
        p += n
    p += struct.pack("<IBdQI", root, 2, 0.0, 0, 0xFFFFFFFF)
    head = b"CRSNAP\x00\x01" + struct.pack("<QII", len(p), zlib.crc32(bytes(p)), 0)
    return head + bytes(p)


def test_a_saved_file_that_expands_without_bound_is_corrupt_data(client, tmp_path):
    nodes = [b"\x00"]  # null
    for i in range(41):
        nodes.append(b"\x08" + struct.pack("<III", 2, i, i))  # [prev, prev]
    nodes.append(b"\x06" + struct.pack("<I", 1) + b"a")
    nodes.append(b"\x09" + struct.pack("<III", 1, 42, 41))  # {"a": top}
    path = tmp_path / "dag.crsnap"
    path.write_bytes(history_file(nodes, 43))
    path.chmod(0o600)
    assert path.stat().st_size < 1300
    for _ in range(2):
        with pytest.raises(RequestError) as e:
            History.load(client, path)
        assert e.value.code == L.ERR_CORRUPT_DATA
        assert "expands to more than" in e.value.message
    assert_alive(client)


def test_the_deepest_snapshot_a_push_accepts_saves_and_loads_back(client, tmp_path):
    deep: object = 1
    for _ in range(511):
        deep = [deep]
    doc = {"deep": deep}
    h = History(client, "bounds-deep")
    h.push(doc, encoding="json", wait=True)
    with pytest.raises(RequestError):
        h.push({"deeper": [deep]}, encoding="json", wait=True)
    path = tmp_path / "deep.crsnap"
    h.save(path)
    back = History.load(client, path, "bounds-deep-2")
    assert back.current() == doc


def test_opening_an_existing_history_never_changes_it(client):
    """Issue 11 item 10: ``client.history(name)`` on a history of 150 entries used to set the
    default capacity (100) and evict 50 entries."""
    h = client.history("open-keeps", capacity=200)
    h.push_many([{"i": i} for i in range(150)])
    again = client.history("open-keeps")
    assert len(again) == 150 and again.capacity == 200
    assert again.current() == {"i": 149}
    assert len(client.history("open-keeps", capacity=120)) == 120  # asked for: it changes
    fresh = client.history("open-fresh")
    assert fresh.capacity == 100 and len(fresh) == 0


def test_the_client_knows_the_workers_expansion_limit():
    from chunkring import _history
    text = (Path(__file__).resolve().parents[2] / "layout.md").read_text()
    assert f"at most {_history.MAX_EXPANDED_BYTES} (`MAX_EXPANDED_BYTES`" in text
    assert _history.WAIT_ABOVE_BYTES * 5 <= _history.MAX_EXPANDED_BYTES


def test_a_push_too_large_written_out_raises_at_the_push(client):
    # A push never waits for the worker, but a body this large may be over the worker's limit
    # once written out: the push waits for the verdict and raises it itself.
    from chunkring._history import MAX_EXPANDED_BYTES
    h = History(client, "bounds-big")
    h.push({"a": 1})
    with pytest.raises(RequestError) as e:
        h.push({"big": "x" * MAX_EXPANDED_BYTES}, label="huge")
    assert e.value.code == L.ERR_BAD_PAYLOAD
    assert e.value.message.startswith("push #1 ('huge') of history 'bounds-big': ")
    assert "expands to more than" in e.value.message
    assert not h._pending, "the push was waited for"
    assert h.current() == {"a": 1} and len(h) == 1
    assert_alive(client)


def test_a_large_push_raises_any_worker_error_at_the_push_and_a_good_one_goes_in(client):
    from chunkring._history import WAIT_ABOVE_BYTES
    h = History(client, "bounds-large")
    blob = b"y" * (WAIT_ABOVE_BYTES + 1)
    with pytest.raises(RequestError, match=r"push #0 of history 'bounds-large'.*str"):
        h.push({"blob": blob, 1: "a key that is not a str"})
    assert len(h) == 0
    h.push({"blob": blob})
    assert not h._pending, "a large push waits for its answer"
    state = {"blob": blob, "n": 1}
    h.push(state, changed=["n"])  # a small body: sent without waiting
    assert h.current() == state
