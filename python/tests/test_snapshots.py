"""Snapshot histories and logs through a real worker (layout.md §9.3, §9.4)."""

from __future__ import annotations

import copy
import json
import time
import marshal
import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chunkring import _history_lean as _lean  # noqa: E402
from chunkring import _layout as L  # noqa: E402
from chunkring.errors import (RequestError, StateMismatch, UnencodableSnapshot,  # noqa: E402
                              WorkerDied)
from chunkring._payload import encode_list  # noqa: E402
from chunkring.snapshots import History, Log, Snapshots  # noqa: E402


@pytest.fixture(scope="module")
def client():
    from chunkring.client import Client

    c = Client.spawn()
    try:
        yield c
    finally:
        c.close()


def ring_frames(end, start: int, stop: int):
    """``(offset, flags, payload_len)`` of each frame of ring ``end`` (a client's producer
    or consumer) from position ``start`` to ``stop``, read from the mapping (layout.md §6:
    a padding frame moves on to the next multiple of ``chunks``; a checksum trailer takes
    its bytes)."""
    while start < stop:
        off = end.base + (start & end.mask) * end.chunk_bytes
        _, flags, _, _, _, plen, _, _ = L.FRAME_HEADER.unpack_from(end.view, off)
        yield off, flags, plen
        if flags & L.FLAG_PADDING:
            start += end.chunks - (start & end.mask)
        else:
            size = L.FRAME_HEADER_BYTES + plen + (L.FRAME_CRC_BYTES if flags & L.FLAG_CRC else 0)
            start += (size + end.chunk_bytes - 1) // end.chunk_bytes


def written_since(client, tail: int) -> list[dict]:
    """The params of every request the client wrote into the request ring from position
    ``tail`` on, read back from the mapping (what any send path, lean or general, wrote)."""
    p = client._sender.producer
    out = []
    for off, flags, plen in ring_frames(p, tail, p.tail):
        if not flags & L.FLAG_PADDING:
            payload = bytes(p.view[off + L.FRAME_HEADER_BYTES : off + L.FRAME_HEADER_BYTES + plen])
            params_len = int.from_bytes(payload[:L.PARAMS_LEN_BYTES], "little")
            out.append(json.loads(payload[L.PARAMS_LEN_BYTES : L.PARAMS_LEN_BYTES + params_len]))
    return out


def _rfc6902(doc: dict, ops: list[dict]) -> dict:
    """``doc`` with RFC 6902 ``ops`` (add, remove, replace) applied in order, by the RFC's
    rules: what an ``into=`` step returns must take the state it started from to the one it
    left."""
    for o in ops:
        steps = [s.replace("~1", "/").replace("~0", "~") for s in o["path"].split("/")[1:]]
        if not steps:
            doc = copy.deepcopy(o["value"])
            continue
        parent = doc
        for s in steps[:-1]:
            parent = parent[int(s)] if isinstance(parent, list) else parent[s]
        last = steps[-1]
        if isinstance(parent, list):
            i = len(parent) if last == "-" else int(last)
            if o["op"] == "remove":
                del parent[i]
            elif o["op"] == "add":
                parent.insert(i, copy.deepcopy(o["value"]))
            else:
                parent[i] = copy.deepcopy(o["value"])
        elif o["op"] == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(o["value"])
    return doc


def each_step_writes(client, step) -> list:
    """``(step(), params of the requests it wrote)``."""
    tail = client._sender.producer.tail
    result = step()
    return result, written_since(client, tail)


def ui_doc(variant: int, entries: int = 200) -> dict:
    """A UI-snapshot-like dict of about 50 KB; ``variant`` changes one discussion entry."""
    return {
        "discussion": [
            {
                "role": "user" if i % 2 == 0 else "assistant",
                "content": f"message {i} " + "lorem ipsum dolor sit amet " * 7,
                "ts": 1_700_000_000 + i,
                "collapsed": False,
                "v": variant if i == variant % entries else 0,
            }
            for i in range(entries)
        ],
        "files": [{"path": f"src/file_{i}.rs", "open": i % 3 == 0} for i in range(40)],
        "context_files": ["README.md", "layout.md"],
        "screenshots": [],
        "title": "session",
        "model": "m",
        "temperature": 0.7,
        "top_p": 1.0,
        "max_tokens": 4096,
        "system": "be brief",
        "cursor": 12,
        "scroll": 0.5,
        "dirty": True,
    }


class RefHistory:
    """The plain-Python HistoryManager the worker must agree with."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.items: list = []
        self.cur = -1

    def push(self, s):
        del self.items[self.cur + 1 :]
        self.items.append(copy.deepcopy(s))
        if len(self.items) > self.capacity:
            del self.items[0]
        self.cur = len(self.items) - 1

    def undo(self):
        if self.cur <= 0:
            return None
        self.cur -= 1
        return self.items[self.cur]

    def redo(self):
        if self.cur + 1 >= len(self.items):
            return None
        self.cur += 1
        return self.items[self.cur]

    def jump(self, i):
        if not 0 <= i < len(self.items):
            raise IndexError(i)
        self.cur = i
        return self.items[i]


def _edit(rng, live: dict, step: int) -> tuple:
    """A realistic edit of ``live`` in place; returns the top-level keys it changed."""
    r = rng.random()
    if r < 0.3:
        live["rows"].append({"text": f"entry {step}", "n": rng.randrange(3)})
        return (("rows", -1),) if rng.random() < 0.5 else ("rows",)
    if r < 0.5 and live["rows"]:
        i = rng.randrange(len(live["rows"]))
        live["rows"][i]["text"] = f"edited {step}"
        return (("rows", i, "text"),) if rng.random() < 0.5 else ("rows",)
    if r < 0.6 and live["rows"]:
        del live["rows"][rng.randrange(len(live["rows"]))]
        return ("rows",)
    if r < 0.7:
        if "extra" in live:
            del live["extra"]
        else:
            live["extra"] = [step]
        return ("extra",)
    live["n"] = rng.randrange(50)
    return ("n",)


@pytest.mark.parametrize("capacity", [5, 100])
def test_undo_redo_jump_match_a_reference_history(client, capacity):
    """Plain, ``into=`` and ``changed=`` forms against a plain-Python history; after every
    step the live state a GUI would hold equals the reference's current snapshot."""
    rng = random.Random(20240601 + capacity)
    h = client.history(f"prop-{capacity}", capacity=capacity)
    ref = RefHistory(capacity)
    live: dict = {}
    assert h.current() is None and h.undo() is None and h.redo() is None
    for step in range(1500):
        r = rng.random()
        into = rng.random() < 0.5
        if r < 0.15:
            doc = {"n": rng.randrange(50), "rows": [{"text": "r", "n": rng.randrange(3)}
                                                    for _ in range(rng.randrange(4))],
                   "t": (step, "x"), "same": "shared"}
            h.push(doc, label=f"s{step}")
            ref.push(doc)
            live = _lists(doc)
        elif r < 0.4 and ref.items:
            changed = _edit(rng, live, step)
            if rng.random() < 0.5:
                h.push(live, changed=changed, label=f"c{step}")
            else:
                h.push(live)
            ref.push(live)
        elif r < 0.65:
            want = ref.undo()
            if into and ref.items:
                before = copy.deepcopy(live)
                ops = h.undo(into=live)
                assert (ops is None) == (want is None), step
                assert _rfc6902(before, ops or []) == live, step
            else:
                got = h.undo()
                assert got == _lists(want), step
                live = got if got is not None else live
        elif r < 0.85:
            want = ref.redo()
            if into and ref.items:
                before = copy.deepcopy(live)
                ops = h.redo(into=live)
                assert (ops is None) == (want is None), step
                assert _rfc6902(before, ops or []) == live, step
            else:
                got = h.redo()
                assert got == _lists(want), step
                live = got if got is not None else live
        else:
            i = rng.randrange(0, capacity + 2)
            if 0 <= i < len(ref.items):
                if into:
                    assert isinstance(h.jump(i, into=live), list), step
                    ref.jump(i)
                else:
                    live = h.jump(i)
                    assert live == _lists(ref.jump(i)), step
            else:
                with pytest.raises(RequestError) as e:
                    if into and ref.items:
                        h.jump(i, into=live)
                    else:
                        h.jump(i)
                assert e.value.name in ("OUT_OF_RANGE",), e.value
        want = _lists(ref.items[ref.cur]) if ref.items else None
        if ref.items:
            assert live == want, step
        if step % 5 == 0:
            assert h.current() == want, step
        if step % 25 == 0:
            assert len(h) == len(ref.items)
            assert h.can_undo == (ref.cur > 0)
            assert h.can_redo == (ref.cur + 1 < len(ref.items))
            assert h.index == (ref.cur if ref.items else None)
    listed = h.list()
    assert [e["index"] for e in listed] == list(range(len(ref.items)))
    assert all(e["encoding"] == "marshal" and e["size"] > 0 for e in listed)


def _lists(v):
    """Tuples come back as lists."""
    if isinstance(v, (list, tuple)):
        return [_lists(x) for x in v]
    if isinstance(v, dict):
        return {k: _lists(x) for k, x in v.items()}
    return v


def test_values_round_trip_in_marshal_and_json(client):
    h = client.history("values")
    doc = {"big": 2**100, "neg": -(2**70), "i64": 2**62, "f": 0.1, "inf": float("inf"),
           "s": "é😀\n\"", "b": b"\x00\xff", "t": (1, (2, None)), "nested": {"a": [True, False]}}
    h.push(doc, wait=True)
    assert h.current() == _lists(doc)
    no_bytes = {k: v for k, v in doc.items() if k != "b"}
    h.push(no_bytes, encoding="json")
    assert h.current() == _lists(no_bytes)
    assert h.current(raw=True) == json.dumps(_lists(no_bytes), separators=(",", ":"), ensure_ascii=False).encode()
    assert h.get(1, encoding="json", raw=True).startswith(b'{"big":1267650600228229401496703205376,')
    with pytest.raises(RequestError) as e:
        h.get(0, encoding="json")  # holds bytes
    assert e.value.name == "BAD_PAYLOAD" and "bytes" in e.value.message
    assert h.get(1, encoding="marshal") == _lists(no_bytes)
    h.push(b"\x00opaque")
    assert h.current() == b"\x00opaque"
    assert [e["encoding"] for e in h.list()] == ["marshal", "json", "bytes"]


def apply_patch(doc, patch):
    """A small RFC 6902 applier (add, remove, replace)."""
    doc = copy.deepcopy(doc)
    for op in patch:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        if not parts:
            doc = copy.deepcopy(op["value"])
            continue
        target = doc
        for p in parts[:-1]:
            target = target[int(p)] if isinstance(target, list) else target[p]
        last = parts[-1]
        if isinstance(target, list):
            i = int(last)
            if op["op"] == "add":
                target.insert(i, copy.deepcopy(op["value"]))
            elif op["op"] == "remove":
                del target[i]
            else:
                target[i] = copy.deepcopy(op["value"])
        else:
            if op["op"] == "remove":
                del target[last]
            else:
                assert op["op"] == "add" or last in target
                target[last] = copy.deepcopy(op["value"])
    return doc


def random_doc(rng, depth=0):
    r = rng.random()
    if depth > 3 or r < 0.35:
        return rng.choice([None, True, False, rng.randrange(-5, 5), rng.random(), rng.choice("ab/~")])
    if r < 0.65:
        return [random_doc(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(["a", "b", "c/d", "e~f", "g"]): random_doc(rng, depth + 1) for _ in range(rng.randrange(5))}


def test_diff_applied_to_a_gives_b(client):
    rng = random.Random(77)
    h = client.history("diff", capacity=2)
    for _ in range(300):
        a = {"root": random_doc(rng), "k": rng.randrange(3)}
        b = {"root": random_doc(rng) if rng.random() < 0.5 else copy.deepcopy(a["root"]), "k": rng.randrange(3)}
        h.push(a)
        h.push(b)
        patch = h.diff(0, 1)
        assert apply_patch(a, patch) == b, (a, b, patch)
        assert h.diff(1, 1) == []
    h.push(b"\x00")
    with pytest.raises(RequestError) as e:
        h.diff(0, 1)
    assert e.value.name == "BAD_PARAMS" and "opaque" in e.value.message


def test_sharing_is_real_and_eviction_returns_memory(client):
    one = client.history("share-one")
    one.push(ui_doc(0))
    single = one.stats()["stored_bytes"]
    h = client.history("share", capacity=100)
    for v in range(100):
        h.push(ui_doc(v))
    s = h.stats()
    assert s["snapshots"] == 100
    assert s["stored_bytes"] < 3 * single, (s, single)
    assert s["logical_bytes"] > 50 * s["stored_bytes"] / 3
    # Eviction: distinct documents through a small history keep memory bounded.
    small = client.history("evict", capacity=3)
    heap = []
    for v in range(30):
        d = ui_doc(0)
        for e in d["discussion"]:
            e["ts"] = 10_000 + v
        small.push(d)
        if v in (9, 29):
            heap.append(small.stats()["heap_bytes"])
    assert heap[0] == heap[1]
    before = client.snapshots.stats()["stored_bytes"]
    h.drop()
    after = client.snapshots.stats()["stored_bytes"]
    assert before - after == s["stored_bytes"]
    with pytest.raises(RequestError) as e:
        h.current()
    assert e.value.name == "NOT_FOUND"


def test_bad_input_is_a_clear_error_and_the_worker_keeps_serving(client, tmp_path):
    h = client.history("bad")
    h.push({"keep": 1}, label="good")
    # Invalid JSON, raised at once with wait=True.
    with pytest.raises(RequestError) as e:
        h.push('{"a":', encoding="json", wait=True)
    assert e.value.name == "BAD_PAYLOAD" and "invalid json" in e.value.message
    # A non-object snapshot, pipelined: surfaces on the next call, which still runs.
    h.push([1, 2, 3])
    with pytest.raises(RequestError) as e:
        h.current()
    assert "must be an object" in e.value.message
    assert h.current() == {"keep": 1}
    # Unknown history, index out of range.
    with pytest.raises(RequestError) as e:
        client.call(L.OP_SNAP_UNDO, b"", {"name": "no-such-history"})
    assert e.value.name == "NOT_FOUND" and "no-such-history" in e.value.message
    with pytest.raises(RequestError) as e:
        h.jump(5)
    assert e.value.name == "OUT_OF_RANGE"
    with pytest.raises(RequestError) as e:
        h.get(-1)
    assert e.value.name == "BAD_PARAMS"
    # A corrupted and a torn saved file.
    path = tmp_path / "bad.snap"
    h.save(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    (tmp_path / "flip.snap").write_bytes(data)
    (tmp_path / "torn.snap").write_bytes(data[: len(data) // 2])
    for name in ("flip.snap", "torn.snap"):
        with pytest.raises(RequestError) as e:
            History.load(client, tmp_path / name, name="bad", replace=True)
        assert e.value.name == "CORRUPT_DATA", e.value
    # Nothing stored was lost, and the worker still serves.
    assert h.current() == {"keep": 1}
    assert len(h) == 1 and h.list()[0]["label"] == "good"
    assert client.call(L.OP_ECHO, b"ping") == b"ping"


def test_save_and_history_from_round_trip(client, tmp_path):
    h = client.history("persist", capacity=10)
    h.push_many([ui_doc(v, entries=20) for v in range(5)], labels=[f"v{v}" for v in range(5)])
    h.undo()
    reply = h.save(tmp_path / "ui.snap")
    assert reply["snapshots"] == 5
    back = client.history_from(tmp_path / "ui.snap", name="persist-copy")
    assert isinstance(back, History) and back.name == "persist-copy" and back.capacity == 10
    assert back.current() == h.current() == ui_doc(3, entries=20)
    assert [e["label"] for e in back.list()] == [f"v{v}" for v in range(5)]
    assert back.diff(0, 4) == h.diff(0, 4)
    with pytest.raises(RequestError):
        client.history_from(tmp_path / "ui.snap")  # "persist" exists already


def test_process_reports_digest_size_and_changes(client):
    docs = [ui_doc(0, entries=10), ui_doc(3, entries=10), ui_doc(3, entries=10)]
    docs[2]["title"] = "renamed"
    out = client.snapshots.process(docs)
    assert [o["index"] for o in out] == [0, 1, 2]
    assert out[0]["changed"] == list(docs[0])
    assert out[1]["changed"] == ["discussion"]
    assert out[1]["entries"]["discussion"] == {"changed": [3], "old_len": 10, "new_len": 10}
    assert out[2]["changed"] == ["title"] and out[2]["entries"] == {}
    assert out[1]["size"] == len(marshal.dumps(docs[1], 4))
    assert out[0]["digest"] != out[1]["digest"]
    # The digest does not depend on the encoding.
    again = Snapshots(client).process(docs[:1], encoding="json")
    assert again[0]["digest"] == out[0]["digest"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_process_in_chunks_answers_as_one_request(client, chunk):
    rng = random.Random(chunk)
    docs = [ui_doc(rng.randrange(5), entries=6) for _ in range(20)]
    docs[9]["extra"] = [1]
    whole = json.loads(client.call(L.OP_SNAP_PROCESS,
                                   encode_list([marshal.dumps(d, 4) for d in docs]),
                                   {"encoding": "marshal"}))
    assert client.snapshots.process(docs, chunk=chunk) == whole
    assert client.snapshots.process([], chunk=chunk) == []
    bad = docs[:12] + [[1]] + docs[12:]
    with pytest.raises(RequestError, match="^.*snapshot 12: snapshot must be an object"):
        client.snapshots.process(bad, chunk=chunk)
    assert client.snapshots.process(docs[:2], chunk=chunk) == whole[:2]
    # A batch without a length (a generator) goes in the same requests but for the last ones.
    assert client.snapshots.process((d for d in docs), chunk=chunk) == whole
    with pytest.raises(RequestError, match="^.*snapshot 12: snapshot must be an object"):
        client.snapshots.process(iter(bad), chunk=chunk)


def _reference_changes(docs):
    """``changed`` and ``entries`` of each snapshot as layout.md §9.3 "Process" defines them."""
    out, prev = [], None
    for d in docs:
        if prev is None:
            out.append((list(d), {}))
        else:
            changed = [k for k in d if k not in prev or prev[k] != d[k]] + [k for k in prev if k not in d]
            entries = {}
            for k in changed:
                a, c = prev.get(k), d.get(k)
                if isinstance(a, (list, tuple)) and isinstance(c, (list, tuple)):
                    a, c = list(a), list(c)
                    entries[k] = {"changed": [j for j in range(len(c)) if j >= len(a) or a[j] != c[j]],
                                  "old_len": len(a), "new_len": len(c)}
            out.append((changed, entries))
        prev = d
    return out


def test_process_of_marshal_back_references_and_odd_values_matches_python_and_json(client):
    # marshal writes a list held twice once (FLAG_REF) and then as `r`; tuples, big ints,
    # floats, non-ASCII keys and deep values all go through the worker's streaming summary.
    rng = random.Random(9)
    shared = [{"x": 1}, {"x": 2}]
    docs = []
    for i in range(60):
        rows = [{"x": rng.randrange(4), "t": "é" * rng.randrange(3)} for _ in range(rng.randrange(5))]
        # "wrap" holds the list first (depth 2), so "rows" names it by reference at depth 1.
        d = {"wrap": [rows], "rows": rows, "again": rows if rng.random() < 0.5 else list(rows), "shared": shared,
             "tup": tuple(range(rng.randrange(3))), "big": 2 ** rng.choice([10, 70, 70, 200]),
             "f": rng.choice([0.5, 0.25]), "clé": rng.randrange(2), "deep": [[[rng.randrange(2)]]]}
        if rng.random() < 0.3:
            del d["f"]
        if rng.random() < 0.3:
            d["late"] = None
        docs.append(d)
    out = client.snapshots.process(docs, chunk=7)
    ref = _reference_changes(docs)
    assert [(o["changed"], o["entries"]) for o in out] == ref
    assert [o["size"] for o in out] == [len(marshal.dumps(d, 4)) for d in docs]
    as_json = Snapshots(client).process([json.dumps(d) for d in docs], encoding="json")
    assert [o["digest"] for o in out] == [o["digest"] for o in as_json]
    assert [(o["changed"], o["entries"]) for o in as_json] == ref


def test_logs_hold_a_million_records_exactly(client):
    log = client.log("comms")
    assert len(log) == 0
    n, batch = 1_000_000, 20_000
    for start in range(0, n, batch):
        got = log.append([b"r%d" % i for i in range(start, start + batch)])
        assert got == start + batch
    assert len(log) == n
    for start in range(0, n, 250_000):
        records = log.read(start, 250_000)
        assert records == [b"r%d" % i for i in range(start, start + 250_000)]
    assert log.tail(2) == [b"r999998", b"r999999"]
    assert log.append("text é") == n + 1
    assert log.read(n, 5) == ["text é".encode()]
    with pytest.raises(RequestError) as e:
        log.read(n + 2, 1)
    assert e.value.name == "OUT_OF_RANGE"


def test_log_save_and_load(client, tmp_path):
    log = client.log("small-log")
    log.append([b"a", "b", b""])
    log.save(tmp_path / "l.log")
    back = Log.load(client, tmp_path / "l.log", name="small-log-copy")
    assert back.read(0, 10) == [b"a", b"b", b""]
    raw = bytearray((tmp_path / "l.log").read_bytes())
    raw[-1] ^= 1
    (tmp_path / "bad.log").write_bytes(raw)
    with pytest.raises(RequestError) as e:
        Log.load(client, tmp_path / "bad.log", name="x")
    assert e.value.name == "CORRUPT_DATA"


def test_push_many_is_all_or_nothing(client):
    h = client.history("many")
    assert h.push_many([{"a": 1}, {"a": 2}]) == 2
    body = encode_list([b'{"a":3}', b"[1]"])
    with pytest.raises(RequestError) as e:
        client.call(L.OP_SNAP_PUSH_MANY, body, {"name": "many"})
    assert e.value.message.startswith("snapshot 1:")
    assert len(h) == 2 and h.current() == {"a": 2}


def test_write_behind_queues_pushes_until_the_next_call(client):
    import json as _json
    import time as _time

    h = client.history("wb")
    assert h.write_behind == 1
    h.write_behind = 8
    t0 = _time.time()
    for i in range(5):
        h.push({"i": i})
    # Not sent yet: a raw request on the same worker still sees the empty history.
    raw = _json.loads(client.call(L.OP_SNAP_STATS, b"", {"name": "wb"}))
    assert raw["snapshots"] == 0
    # Any method of the History sends them first, in order.
    assert h.current() == {"i": 4}
    entries = h.list()
    assert len(entries) == 5
    times = [e["time"] for e in entries]
    assert times == sorted(times) and t0 - 1 <= times[0] <= times[-1] <= _time.time() + 1
    # The 8th queued push sends the batch without waiting for an answer.
    for i in range(8):
        h.push({"j": i})
    h.flush()
    assert len(h) == 13
    # Unencodable snapshots raise at push time; worker-side errors at the next call.
    with pytest.raises(ValueError):
        h.push({"obj": object()})
    h.push([1, 2])
    with pytest.raises(RequestError):
        h.undo()
    assert h.current() == {"j": 7}
    h.write_behind = 1
    h.push({"k": 1})
    raw = _json.loads(client.call(L.OP_SNAP_STATS, b"", {"name": "wb"}))
    assert raw["snapshots"] == 14


def test_a_run_of_undos_is_answered_from_the_prefetch(client, monkeypatch):
    # Every step counts as back to back (a busy machine must not make them look paced).
    monkeypatch.setattr(_lean, "AHEAD_LEAD", 3600.0)
    h = client.history("prefetch", capacity=10)
    for i in range(5):
        h.push({"i": i}, wait=True)
    # The first undo after pushes: a round trip for the snapshot of the next step
    # (`OP_SNAP_AHEAD` `snapshots`; layout.md §9.3 "Steps ahead"), then, sent without
    # waiting, a refill for the two after it, telling the step taken (`by`).
    first, sent = each_step_writes(client, h.undo)
    assert first == {"i": 3}
    ahead = {"name": "prefetch", "to": "undo", "snapshots": True, "skip": 0}
    assert _lean.FRESH_FIRST == 1
    assert sent == [ahead | {"count": 1, "by": 0}, ahead | {"count": 2, "by": -1}]
    calls = []
    real_call = client.call
    monkeypatch.setattr(client, "call", lambda *a, **k: calls.append(a[0]) or real_call(*a, **k))
    steps = [each_step_writes(client, h.undo) for _ in range(3)]
    assert [snap for snap, _ in steps] == [{"i": 2}, {"i": 1}, {"i": 0}]
    assert calls == [], "undos after an undo must not wait on a round trip"
    # One refill in flight: the step that reads one sends nothing, the step after it asks
    # for twice as many (the history ends before four); the steps are told with it, or
    # first thing at any other call of the history.
    assert [sent for _, sent in steps] == [[], [ahead | {"count": 4, "by": -2}], []]
    assert h.undo() is None  # at the oldest
    assert h.current() == {"i": 0} and h.index == 0
    assert h.redo() == {"i": 1}  # (the undos kept the snapshots they left)
    calls.clear()
    again = [h.redo() for _ in range(3)]
    assert again == [{"i": 2}, {"i": 3}, {"i": 4}]
    assert calls == [] and h.redo() is None
    again[0]["i"] = "changed"  # each is the caller's own object
    assert h.undo() == {"i": 3} and h.undo() == {"i": 2}
    monkeypatch.undo()
    assert h.index == 2
    h.push({"i": "new"})  # drops the redo branch and the prefetch
    assert h.undo() == {"i": 2}
    assert len(h) == 4 and h.current() == {"i": 2}


def test_paced_steps_ask_for_16_snapshots_when_4_are_left(client, monkeypatch):
    # Steps that come slower than `AHEAD_LEAD` apart (a GUI's, 16 ms): after the first
    # snapshot the run asks for 16 at once, and asks again only with 4 or fewer held, so each
    # request (a worker awake for its poll window) serves 16 steps.
    monkeypatch.setattr(_lean, "AHEAD_LEAD", 0.0)
    h = client.history("paced", capacity=40)
    for i in range(30):
        h.push({"i": i}, wait=True)
    ahead = {"name": "paced", "to": "undo", "snapshots": True}
    steps = [each_step_writes(client, h.undo) for _ in range(16)]
    assert [snap for snap, _ in steps] == [{"i": i} for i in range(28, 12, -1)]
    asked = {n: sent for n, (_, sent) in enumerate(steps) if sent}
    assert asked == {
        0: [ahead | {"count": 1, "by": 0, "skip": 0}, ahead | {"count": 16, "by": -1, "skip": 0}],
        # (step 1 read the 16: 15 held after it; the step that leaves 4 asks for the next)
        12: [ahead | {"count": 16, "by": -12, "skip": 4}],
    }
    assert h.current() == {"i": 13} and h.index == 13


def test_a_refill_asked_the_other_way_does_not_keep_a_run_from_asking():
    from chunkring._history_lean import Ahead
    a = Ahead((20, 40))  # (cursor 20 of 40: both ways go on)
    assert a.wants_refill("undo") and a.wants_refill("redo")
    a.refill = ("undo", None, 0, 0)  # in flight for undos
    assert not a.wants_refill("undo")
    assert a.wants_refill("redo"), "a redo run must not wait on the undos' refill"
    a.refill = False  # (this step read one: the next asks)
    assert not a.wants_refill("undo") and not a.wants_refill("redo")
    a.refill = None
    a.stacks["redo"][:] = [object()] * 17  # more than AHEAD_STEPS held
    assert not a.wants_refill("redo")
    a.stacks["undo"][:] = [object()] * 20  # held up to the oldest snapshot
    assert not a.wants_refill("undo")


def published_answers(consumer) -> int:
    """Whole answers published in the response ring and not yet read: its frames from the
    consumer's head to the tail the worker stored, padding and non-final fragments left out."""
    return sum(not flags & (L.FLAG_PADDING | L.FLAG_MORE)
               for _, flags, _ in ring_frames(consumer, consumer.head,
                                              consumer.q[consumer.tail_word]))


def test_a_push_skims_earlier_answers_and_leaves_others_and_errors_to_drain(client, monkeypatch):
    # A push reads the answers already in for the history's earlier requests before it is
    # written (`_answer_skim.py`): their headers only, their payloads replaced by this push.
    from chunkring._answer_skim import SKIMMED
    receiver = client._receiver
    drained = []
    real_drain = receiver.drain
    monkeypatch.setattr(receiver, "drain",
                        lambda limit=None: drained.append(limit) or real_drain(limit))

    region = client._region
    sent = [region.stat(L.STAT_RESPONSES)]  # answers the worker wrote before this test

    def answered(new: int, others: int = 0):  # the answers to `new` more requests in, none read
        sent[0] += new
        h._wake_for_pushes()  # (pushes are written without a wake)
        deadline = time.monotonic() + 10
        # Counted is not yet published: the worker writes its counters before the tail
        # store that publishes the answers they count (so a client that reads an answer
        # finds it counted). Unread then are the answers to the history's pushes in flight
        # and to the `others` requests the test sent.
        while (region.stat(L.STAT_RESPONSES) < sent[0]
               or published_answers(receiver._consumer) < len(h._pending) + others):
            assert time.monotonic() < deadline
            time.sleep(0.001)

    h = client.history("skim")
    sent[0] += 1  # (the history's create)
    state = {"n": 0, "rows": []}
    h.push(state)
    drained.clear()  # (the create's round trip)
    for i in range(1, 4):
        answered(1)
        earlier = [p[0] for p in h._pending]
        state["n"] = i
        h.push(state, changed=["n"])
        assert earlier and all(e._state == "FINISHED" and e._result == SKIMMED for e in earlier)
    assert drained == [], "plain answers to the history's own requests need no drain"
    # Another request's answer after ours: ours skimmed, the rest left to the drain.
    echo = client.submit(L.OP_ECHO, b"abc")
    state["n"] = 9
    answered(2, others=1)
    h.push(state, changed=["n"])
    assert drained and echo.result() == b"abc"
    # A worker-side error (a path the snapshot before lacks): read by the drain, raised by the
    # next call, naming the push.
    state["x"] = {"y": 1}
    h.push(state, changed=[("x", "y")])
    number = h._pushes - 1
    answered(2)
    drained.clear()
    del state["x"]
    with pytest.raises(RequestError, match=f"push #{number} of history 'skim'"):
        h.push(state, changed=["n"])
    assert drained, "an error answer is read by the drain"
    assert h.current() == state  # (the refused push changed nothing; the next one went in)


def test_pushes_are_written_at_once_without_waiting(client, monkeypatch):
    import json as _json

    import chunkring._ring as ring

    h = client.history("nowait")
    waited = []
    real_call = client.call
    monkeypatch.setattr(client, "call", lambda *a, **k: waited.append(a[0]) or real_call(*a, **k))
    wakes = []
    monkeypatch.setattr(ring, "futex_wake", lambda *a: wakes.append(a))
    for i in range(5):
        h.push({"i": i})
    h.push({"i": 5}, changed=["i"])
    assert waited == [], "a push must not wait for the worker's answer"
    assert wakes == [], "a push must not wake the worker (layout.md §9.3 'Pushes need no wake')"
    monkeypatch.undo()
    # Written into the ring: another request on the same worker sees them once it is answered.
    raw = _json.loads(client.call(L.OP_SNAP_STATS, b"", {"name": "nowait"}))
    assert raw["snapshots"] == 6
    assert h.current() == {"i": 5}


def test_push_errors_raise_at_the_push_and_worker_errors_at_the_next_call(client):
    h = client.history("errs")
    h.push({"a": 1})
    with pytest.raises(ValueError):
        h.push({"obj": object()})  # marshal cannot encode it: raised before anything is sent
    with pytest.raises(ValueError, match="MAX_MESSAGE_BYTES"):
        h.push({"big": b"x" * (client._sender._max_message_bytes + 1)})
    with pytest.raises(TypeError):
        h.push([1], changed=["a"])
    h.push({"a": 2}, label="fine")
    h.push([1, 2], label="bad")  # a list top level: only the worker refuses it
    with pytest.raises(RequestError) as e:
        h.undo()
    assert e.value.message.startswith("push #2 ('bad') of history 'errs': snapshot must be an object")
    # The failed push changed nothing; the one before it went in, and the undo did not run.
    assert h.current() == {"a": 2} and len(h) == 2
    # A push that finds an earlier push's error already answered raises it, and is sent.
    h.push([3], label="bad too")
    bad = h._pending[-1][0]
    while not bad.done():  # the worker was not woken: it finds the push at its park timeout
        time.sleep(0.001)
    with pytest.raises(RequestError, match=r"push #3 \('bad too'\)"):
        h.push({"a": 3})
    assert h.current() == {"a": 3} and len(h) == 3
    state = {"a": 3}
    h.push({1: "non-str key"}, changed=[1])  # marshal encodes it; the worker refuses the key
    with pytest.raises(RequestError, match="push #5"):
        h.undo(into=state)
    assert state == {"a": 3} and h.current() == {"a": 3}


def test_wrong_changed_keeps_the_previous_value_of_unnamed_keys(client):
    h = client.history("wrong-changed")
    state = {"disc": [{"t": "a"}], "title": "x", "n": 1}
    h.push(state)
    state["disc"].append({"t": "b"})
    state["title"] = "y"  # changed but not named below
    h.push(state, changed=("disc",))
    # Documented: the history builds the new snapshot from the previous one, so the unnamed
    # key keeps its old value there; the live state and the history now differ.
    assert h.current() == {"disc": [{"t": "a"}, {"t": "b"}], "title": "x", "n": 1}
    # The client fingerprints what the history holds, so into= notices the difference.
    with pytest.raises(StateMismatch, match="title"):
        h.undo(into=state)
    assert h.index == 1, "a refused into= does not move the cursor"
    # Naming a key missing from state removes it.
    fixed = {"disc": [{"t": "a"}, {"t": "b"}], "title": "y"}
    h.push(fixed, changed=("title", "n"))
    assert h.current() == fixed
    assert h.undo(into=fixed) == [
        {"op": "replace", "path": "/title", "value": "x"},
        {"op": "add", "path": "/n", "value": 1},
    ]
    assert fixed == {"disc": [{"t": "a"}, {"t": "b"}], "title": "x", "n": 1}


def test_into_needs_the_current_snapshot(client):
    h = client.history("into-check")
    state = {"rows": [1, 2, 3], "s": "a", "d": {"k": 1}}
    h.push(state)
    state["rows"].append(4)
    h.push(state, changed=["rows"])
    stale = {"rows": [1, 2, 3], "s": "a", "d": {"k": 1}}  # the previous snapshot, not current
    with pytest.raises(StateMismatch, match="rows"):
        h.undo(into=stale)
    with pytest.raises(StateMismatch, match="extra"):
        h.undo(into=dict(state, extra=1))
    with pytest.raises(StateMismatch, match="s"):
        h.jump(0, into=dict(state, s="b"))
    with pytest.raises(TypeError):
        h.undo(into=[1])
    assert stale == {"rows": [1, 2, 3], "s": "a", "d": {"k": 1}}, "a refused state is unchanged"
    assert h.undo(into=state) == [{"op": "remove", "path": "/rows/3"}]
    assert state == stale
    assert h.undo(into=state) is None  # at the oldest: nothing moves
    assert h.redo(into=state) == [{"op": "add", "path": "/rows/3", "value": 4}]
    assert h.jump(1, into=state) == []
    # A history this client never synced (loaded, or pushed by someone else): checked in full.
    other = History(client, "into-check", _create=False)
    with pytest.raises(StateMismatch):
        other.undo(into={"rows": [], "s": "a", "d": {"k": 1}})
    assert other.undo(into=state) == [{"op": "remove", "path": "/rows/3"}]


def test_into_changes_only_what_changed_and_shares_nothing_with_the_history(client):
    h = client.history("into-ui")
    state = ui_doc(0, entries=50)
    h.push(state)
    before = copy.deepcopy(state)
    state["discussion"][7]["content"] = "edited"
    h.push(state, changed=["discussion"])
    kept = state["discussion"][8]
    ops = h.undo(into=state)
    assert ops == [{"op": "replace", "path": "/discussion/7/content",
                    "value": before["discussion"][7]["content"]}]
    assert state == before and state["discussion"][8] is kept, "untouched entries stay as they are"
    state["discussion"][7]["content"] = "mutating the live state changes no snapshot"
    assert h.current() == before


def test_worker_killed_with_pushes_in_the_ring_raises_worker_died(own_client):
    import os
    import signal

    h = own_client.history("killed")
    h.push({"a": 0}, wait=True)
    os.kill(own_client.pid, signal.SIGSTOP)
    for i in range(5):
        h.push({"a": i + 1})
    os.kill(own_client.pid, signal.SIGKILL)
    with pytest.raises(WorkerDied):
        h.undo()


def test_saved_history_with_field_pushes_reloads_exactly(client, tmp_path):
    h = client.history("save-fields", capacity=10)
    state = ui_doc(1, entries=20)
    h.push(state)
    for i in range(12):
        state["discussion"].append({"role": "user", "content": f"m{i}"})
        h.push(state, changed=["discussion"], label=f"l{i}")
    h.undo(into=state)
    snaps = [h.get(i) for i in range(len(h))]
    entries = h.list()
    h.save(tmp_path / "h.snap")
    back = History.load(client, tmp_path / "h.snap", name="save-fields-back")
    assert [back.get(i) for i in range(len(back))] == snaps
    assert [(e["label"], e["digest"], e["size"]) for e in back.list()] == [
        (e["label"], e["digest"], e["size"]) for e in entries]
    assert back.index == h.index
    assert back.undo(into=state) is not None  # first into= on a loaded history: checked in full
    assert state == snaps[h.index - 1]


def test_the_move_patch_vector_applies_to_its_before_state():
    from chunkring._live_state import _apply_patch

    vectors = json.loads((Path(__file__).resolve().parents[2] / "tests" / "vectors"
                          / "50.ops.json").read_text())
    (entry,) = [e for e in vectors if e["name"].startswith("snap.move answer")]
    state = copy.deepcopy(entry["fields"]["before"])
    ops = _apply_patch(state, memoryview(bytes.fromhex(entry["hex"].replace("-", ""))))
    assert state == entry["fields"]["after"]
    assert [o["path"] for o in ops] == ["/d/1/t", "/gone", "/n"]


def test_the_compact_move_patch_vector_applies_to_its_before_state():
    from chunkring._live_state import apply_compact

    vectors = json.loads((Path(__file__).resolve().parents[2] / "tests" / "vectors"
                          / "50.ops.json").read_text())
    (entry,) = [e for e in vectors if e["fields"].get("compact_patch")]
    body = bytes.fromhex(entry["hex"].replace("-", ""))
    assert marshal.loads(body) == entry["fields"]["ops"]
    state = copy.deepcopy(entry["fields"]["before"])
    touched: set = set()
    ops = apply_compact(state, memoryview(body), touched)
    assert state == entry["fields"]["after"]
    assert [o["path"] for o in ops] == ["/gone", "/d/1/t", "/n"]
    assert touched == {"gone", "d", "n"}


def test_steps_taken_ahead_reach_a_worker_that_outlives_the_client(worker_bin, monkeypatch):
    # layout.md §9.3 "Steps ahead": a client that closes tells its steps first, so the next
    # client of the standalone worker finds the cursor where the live state was left. (Asked
    # by count only, AHEAD_LEAD 0: steps back to back would otherwise tell early by pace.)
    monkeypatch.setattr(_lean, "AHEAD_LEAD", 0.0)
    import uuid

    from chunkring.client import Client
    from conftest import start_standalone_worker

    name = f"ahead-{uuid.uuid4().hex[:10]}"
    proc = start_standalone_worker(worker_bin, name)
    try:
        with Client.attach(name, timeout=10) as first:
            h = first.history("kept")
            state = {"n": 1}
            h.push(state)
            for n in range(2, 21):
                state["n"] = n
                h.push(state, changed=["n"])
            for _ in range(5):
                h.undo(into=state)
            h.redo(into=state)
            h.undo(into=state)
            assert state == {"n": 15} and h.index == 14
            ahead = h._prefetch_move
            assert ahead.at != ahead.told, "steps are left to tell (the test's premise)"
        with Client.attach(name, timeout=10) as second:
            again = second.history("kept")
            assert (again.index, again.current()) == (14, {"n": 15})
            # A second object of the same name: the first one's steps are told before it asks.
            state = again.current()
            for _ in range(4):
                again.undo(into=state)
            assert again._prefetch_move.at != again._prefetch_move.told  # (the premise)
            other = second.history("kept")
            assert (other.index, other.current()) == (10, {"n": 11}) and state == {"n": 11}
            second.shutdown()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        Path(f"/dev/shm/chunkring-{name}").unlink(missing_ok=True)


def test_the_ahead_patches_vector_steps_its_snapshots_back_one_by_one():
    from chunkring._live_state import apply_ops

    vectors = json.loads((Path(__file__).resolve().parents[2] / "tests" / "vectors"
                          / "50.ops.json").read_text())
    (entry,) = [e for e in vectors if e["fields"].get("ahead_patches")]
    f = entry["fields"]
    patches = marshal.loads(bytes.fromhex(entry["hex"].replace("-", "")))
    at = f["header"]["cursor"]
    state = copy.deepcopy(f["snapshots"][at])
    for patch in patches:
        apply_ops(state, patch, set())
        at -= 1
        assert state == f["snapshots"][at]
    assert at == 0, "the history ends after the patches it answered"


def test_changed_paths_send_one_entry(client):
    h = client.history("paths")
    state = {"disc": [{"t": "a"}, {"t": "b"}], "n": 1, "gone": 0}
    h.push(state)
    state["disc"].append({"t": "c"})
    h.push(state, changed=[("disc", -1)])
    state["disc"][0]["t"] = "A"
    del state["gone"]
    h.push(state, changed=[("disc", 0, "t"), "gone"])
    assert h.current() == state == {"disc": [{"t": "A"}, {"t": "b"}, {"t": "c"}], "n": 1}
    assert h.undo(into=state) == [{"op": "replace", "path": "/disc/0/t", "value": "a"},
                                  {"op": "add", "path": "/gone", "value": 0}]
    for bad in [("disc", 5), ("nope", 0), ("n", "x"), ()]:
        with pytest.raises((KeyError, IndexError, TypeError, ValueError)):
            h.push(state, changed=[bad])
    assert h.current() == state, "a refused path sends nothing"


def test_a_run_of_undos_into_the_state_holds_patches_ahead_and_tells_its_steps_later(client):
    h = client.history("peek-run", capacity=10)
    state = {"i": 0, "rows": []}
    h.push(state)
    for i in range(1, 5):
        state["i"] = i
        state["rows"].append(i)
        h.push(state, changed=["i", ("rows", -1)])
    ahead = {"name": "peek-run", "to": "undo", "count": _lean.AHEAD_STEPS}
    # What the client writes, read back from the request ring. The last push asked for the
    # patch of an undo after it (`peek`): the first undo applies it and asks for the next
    # steps' patches, telling its own step (`OP_SNAP_AHEAD`, by -1; none held, skip 0).
    _, sent = each_step_writes(client, lambda: h.undo(into=state))
    assert sent == [ahead | {"by": -1, "skip": 0}]
    assert state == {"i": 3, "rows": [1, 2, 3]}
    # The next three come from that answer (three patches: the history ends there), with no
    # request at all; the fourth knows it cannot move.
    for want in (2, 1, 0):
        moved, sent = each_step_writes(client, lambda: h.undo(into=state))
        assert moved is not None and sent == []
        assert state == {"i": want, "rows": list(range(1, want + 1))}
        assert h.index == want  # (counted by the client)
    assert each_step_writes(client, lambda: h.undo(into=state)) == (None, [])
    # Back the other way: each undo kept the operations that undo it, so redos need no
    # request either (the same result as the worker's patch; its own order).
    applied, sent = each_step_writes(client, lambda: h.redo(into=state))
    assert applied == [{"op": "add", "path": "/rows/0", "value": 1},
                       {"op": "replace", "path": "/i", "value": 1}]
    assert sent == [] and state == {"i": 1, "rows": [1]}
    # Any other call of the history tells the worker the steps first (three undos and a
    # redo since the first undo, which its request told), so it answers from where the
    # client is.
    assert (h.index, len(h)) == (1, 5)
    current, sent = each_step_writes(client, h.current)
    assert current == state and sent[0] == {"name": "peek-run", "by": -2}
    assert h.stats()["cursor"] == 1
    applied, sent = each_step_writes(client, lambda: h.undo(into=state))
    assert applied == [{"op": "replace", "path": "/i", "value": 0},
                       {"op": "remove", "path": "/rows/0"}]
    assert sent == [] and h.index == 0
    # A push tells them before it is written: it lands where the client is.
    state["i"] = 9  # a push answers the patch back to where it was pushed from
    _, sent = each_step_writes(client, lambda: h.push(state, changed=["i"]))
    assert sent[0] == {"name": "peek-run", "by": -1} and sent[1]["peek"] is True
    assert h.stats()["snapshots"] == 2 and h.current() == state == {"i": 9, "rows": []}
    applied, sent = each_step_writes(client, lambda: h.undo(into=state))
    assert applied == [{"op": "replace", "path": "/i", "value": 0}]
    # (the history's first snapshot: the client knows there is nothing older to ask for)
    assert sent == [] and state == {"i": 0, "rows": []}
    assert h.current() == state and h.stats()["cursor"] == 0


def test_a_push_answered_with_its_position_is_asked_again_for_the_patch(client, monkeypatch):
    # A worker from before `peek` on pushes answers the position: the first undo(into=)
    # then asks for its patch as after any other request (here the pushes leave `peek` out,
    # in the params prefix the lean steps take when the history starts using the sender).
    use_sender = History._use_sender

    def without_peek(self, sender):
        self._push_head = self._push_head.replace(b'"peek":true,', b"")
        use_sender(self, sender)

    monkeypatch.setattr(History, "_use_sender", without_peek)
    h = client.history("no-push-peek")
    state = {"n": 0, "rows": [0]}
    h.push(state)
    state["n"] = 1
    state["rows"].append(1)
    _, sent = each_step_writes(client, lambda: h.push(state, changed=["n", ("rows", 1)]))
    assert "peek" not in sent[0]
    applied, sent = each_step_writes(client, lambda: h.undo(into=state))
    # (the first step of a run: it asks for the patches of the next steps, moving nothing)
    assert sent == [{"name": "no-push-peek", "to": "undo", "count": _lean.AHEAD_STEPS, "by": 0,
                     "skip": 0}]
    assert applied == [{"op": "replace", "path": "/n", "value": 0},
                       {"op": "remove", "path": "/rows/1"}]
    assert state == {"n": 0, "rows": [0]} == h.current()
    # A patch the worker cannot make (an opaque snapshot before the push) is answered with
    # the position too; the undo then asks, and gets the worker's own answer.
    o = client.history("opaque-then-dict")
    o.push(b"opaque")
    live = {"a": 1}
    o.push(live)
    with pytest.raises(RequestError):
        o.undo(into=live)
    assert o.index == 1 and live == {"a": 1}


def test_the_operations_undoing_a_patch_restore_the_state_or_are_not_made():
    from chunkring._live_state import apply_ops
    rng = random.Random(11)
    restored = 0
    for _ in range(2000):
        state = {"a": [rng.randrange(5) for _ in range(rng.randrange(4))],
                 "b": {"x": 1, "y": "s", "z": None}, "c": 1.5, "d": b"t"}
        original, work, ops = copy.deepcopy(state), copy.deepcopy(state), []
        for _ in range(rng.randrange(1, 5)):
            kind, a, b = rng.randrange(9), work.get("a", []), work["b"]
            if kind == 0:
                o = ["replace", "/c", ["c"], rng.random()]
            elif kind == 1 and "a" in work:
                i = rng.randrange(len(a) + 1)
                o = ["add", f"/a/{i}", ["a", i], rng.randrange(9)]
            elif kind == 2 and a:
                i = rng.randrange(len(a))
                o = ["remove", f"/a/{i}", ["a", i]]
            elif kind == 3 and a:
                i = rng.randrange(len(a))
                o = ["replace", f"/a/{i}", ["a", i], "v"]
            elif kind == 4:
                k = rng.choice("xyzw")
                o = ["add", f"/b/{k}", ["b", k], 3]
            elif kind == 5 and b:
                k = rng.choice(sorted(b))
                o = ["remove", f"/b/{k}", ["b", k]]
            elif kind == 6:
                o = ["replace", "/d", ["d"], b"u"]
            elif kind == 7:
                o = ["replace", "/b", ["b"], {"x": [rng.randrange(9)], "y": ("t", 1)}]
            else:
                o = ["remove", "/a", ["a"]] if "a" in work else ["add", "/a", ["a"], [7]]
            apply_ops(work, [copy.deepcopy(o)], set())  # (its own value: not shared)
            ops.append(o)
        back: list = []
        apply_ops(state, [copy.deepcopy(o) for o in ops], set(), back)
        assert state == work and None not in back
        apply_ops(state, back, set())
        assert state == original, ops
        restored += 1
    assert restored == 2000
    # A list or dict taken out of the state is held as a copy of what the history holds:
    # its own containers (a change through another reference does not reach it), a tuple
    # as a list; none for one over KEEP_NODES nodes, a non-str key, a leaf the history does
    # not hold, or the root.
    from chunkring._live_state import KEEP_NODES
    row = {"t": 1, "tags": ("a", "b"), "sub": {"k": [1, 2]}}
    state = {"rows": [row], "n": [1]}
    back = []
    apply_ops(state, [["remove", "/rows/0", ["rows", 0]], ["replace", "/n", ["n"], 2]], set(), back)
    row["sub"]["k"].append(3)  # (the removed dict, changed by its holder afterwards)
    assert back == [["replace", "/n", ["n"], [1]],
                    ["add", "/rows/0", ["rows", 0], {"t": 1, "tags": ["a", "b"], "sub": {"k": [1, 2]}}]]
    apply_ops(state, back, set())
    assert state == {"rows": [{"t": 1, "tags": ["a", "b"], "sub": {"k": [1, 2]}}], "n": [1]}
    for big in ([0] * KEEP_NODES, {1: "x"}, [{1, 2}], [object()]):
        back = []
        apply_ops({"v": big}, [["remove", "/v", ["v"]]], set(), back)
        assert back == [None], big
    back = []
    apply_ops({"v": [0] * (KEEP_NODES - 1)}, [["remove", "/v", ["v"]]], set(), back)
    assert back[0] is not None and back[0][3] == [0] * (KEEP_NODES - 1)
    back = []
    apply_ops(state, [["replace", "", [], {"n": 3}]], set(), back)
    assert back == [None]


def test_position_is_kept_by_the_client_and_agrees_with_the_worker(client):
    # can_undo, can_redo, index and len answer from the position this History keeps as its
    # own pushes and steps change the history: no request, no wait for pushes in flight. A
    # seeded walk of every kind of push and step, capacity evicting, checked against the
    # worker's own stats after each step.
    rng = random.Random(5)
    h = client.history("position", capacity=6)
    live = {"n": 0, "rows": []}
    h.push(live)
    for step in range(400):
        r = rng.random()
        if r < 0.35:
            live["n"] = step
            live["rows"].append(step)
            kind = rng.randrange(4)
            if kind == 0:
                h.push(live)
            elif kind == 1:
                h.push(live, changed=["n", ("rows", -1)])
            elif kind == 2:
                h.push(live, encoding="json")
            else:
                h.push(live, label="w", wait=True)
        elif r < 0.6:
            into = rng.random() < 0.5
            moved = h.undo(into=live) if into else h.undo()
            if not into and moved is not None:
                live = moved
        elif r < 0.85:
            into = rng.random() < 0.5
            moved = h.redo(into=live) if into else h.redo()
            if not into and moved is not None:
                live = moved
        else:
            live = h.jump(rng.randrange(len(h)))
        kept = h._pos is not None
        local, sent = each_step_writes(client, lambda: (h.index, len(h), h.can_undo, h.can_redo))
        if kept:
            assert sent == [], step  # answered by the client
        h.flush()
        truth = json.loads(client.call(L.OP_SNAP_STATS, b"", {"name": "position"}))
        assert local == (truth["cursor"], truth["snapshots"], truth["can_undo"],
                         truth["can_redo"]), step
    assert h._pos is not None, "the lean steps and pushes keep it"


def test_a_push_the_worker_refuses_makes_the_position_read_again(client):
    h = client.history("position-errs", capacity=4)
    assert h._pos == (None, 0), "known from the request that created it"
    h.push({"a": 1})
    h.push({"a": 2})
    h.push({1: "int key"})  # the worker refuses it; counted as done until its answer is in
    assert h._pos == (2, 3)
    bad = h._pending[-1][0]
    while not bad.done():
        time.sleep(0.001)
    with pytest.raises(RequestError, match="push #2"):
        h.can_undo  # noqa: B018 - the property raises the push's error, as any call would
    assert (h.index, len(h), h.can_undo, h.can_redo) == (1, 2, True, False)


def test_two_history_objects_of_one_name_each_ask_the_worker(client):
    # A second History object of the same name: neither answers from what it alone saw (the
    # position, a push's patch back, the operations undoing a step), so each sees the other.
    a = client.history("two-objects", capacity=10)
    state = {"n": 0}
    a.push(state)
    assert len(a) == 1 and not a._shared
    b = client.history("two-objects")
    assert a._shared and b._shared
    state["n"] = 1
    a.push(state, changed=["n"])
    assert (len(b), b.index, b.can_undo) == (2, 1, True)
    other = {"n": 2}
    b.push(other)
    assert (len(a), a.index, a.can_redo) == (3, 2, False)
    # a's live state is behind: its undo(into=) refuses it rather than apply a's own push's
    # patch back (b pushed since); on b's state it moves from b's snapshot.
    with pytest.raises(StateMismatch):
        a.undo(into=state)
    assert a.undo(into=other) == [{"op": "replace", "path": "/n", "value": 1}]
    assert other == {"n": 1} == b.current() and b.index == 1
    assert b.redo(into=other) is not None and other == {"n": 2} == a.current()


# -- the lean steps (_history_lean.py) ------------------------------------------------------


def _general_path_forbidden(monkeypatch):
    """Makes the general push and step methods fail: what still works ran the lean steps."""
    def forbidden(*_a, **_k):
        raise AssertionError("the general path ran")
    for name in ("_push_now", "_move_into", "_step", "_cursor_op"):
        monkeypatch.setattr(History, name, forbidden)


def test_the_common_push_and_prefetched_steps_run_the_lean_path(client, monkeypatch):
    h = client.history("lean-run", capacity=20)
    state = {"rows": [], "n": 0, "title": "t"}
    h.push(state)
    h.flush()
    _general_path_forbidden(monkeypatch)
    for i in range(1, 6):
        state["rows"].append({"i": i})
        state["n"] = i
        if i % 2:
            h.push(state, changed=[("rows", -1), "n"], label=f"p{i}")
        else:
            h.push(state)
    monkeypatch.undo()
    assert h.undo(into=state) is not None  # the first of a run: the general path, a peek
    _general_path_forbidden(monkeypatch)
    want = [{"rows": [{"i": j} for j in range(1, k + 1)], "n": k, "title": "t"}
            for k in range(6)]
    for k in (3, 2, 1):
        assert h.undo(into=state) is not None
        assert state == want[k]
    monkeypatch.undo()
    assert h.redo(into=state) is not None and state == want[2]  # a new run: general
    _general_path_forbidden(monkeypatch)
    assert h.redo(into=state) is not None and state == want[3]
    monkeypatch.undo()
    assert h.undo() == want[2]  # fresh: the first one prefetches
    assert h.undo() == want[1]
    _general_path_forbidden(monkeypatch)
    assert h.undo() == want[0]
    assert h.undo() is None  # the prefetch says: the oldest
    monkeypatch.undo()
    assert [e["label"] for e in h.list()] == [None, "p1", None, "p3", None, "p5"]


def test_a_lean_push_raises_encoding_errors_at_the_push_and_sends_nothing(client, monkeypatch):
    h = client.history("lean-errs")
    state = {"a": 1, "rows": [1]}
    h.push(state)
    h.flush()
    monkeypatch.setattr(History, "_push_now", lambda *a, **k: pytest.fail("general push"))
    for bad, changed in (({"obj": object()}, None), ({"a": 1, "rows": [object()]}, ["rows"]),
                         (state, [("rows", 5)]), (state, [("nope", 0)])):
        (exc, sent) = each_step_writes(client, lambda: pytest.raises(
            (ValueError, KeyError, IndexError), h.push, bad, changed=changed))
        assert issubclass(exc.type, (ValueError, KeyError, IndexError)) and sent == [], (bad, changed)
    monkeypatch.undo()
    # Over the message limit: the lean step declines (it does not fit one frame) and the
    # general one refuses it before anything is written.
    big = {"big": b"x" * (client._sender._max_message_bytes + 1)}
    _, sent = each_step_writes(client, lambda: pytest.raises(
        ValueError, h.push, big).match("MAX_MESSAGE_BYTES"))
    assert sent == []
    assert h._pushes == 1, "a refused push is not numbered"
    assert h.current() == state and len(h) == 1


def test_a_value_marshal_refuses_is_named_by_its_pointer_at_the_push(client):
    import collections
    import enum

    class Level(enum.IntEnum):
        LOW = 1

    h = client.history("unencodable")
    state = {"a": 1, "files": [{"path": "x", "meta": {}}]}
    h.push(state)
    h.flush()
    cases = [
        ({"a": object()}, None, "the value at /a has type object"),
        ({"files": [{"meta": collections.defaultdict(int)}]}, None,
         "the value at /files/0/meta has type collections.defaultdict"),
        ({"x/y": [0, {"~k": Level.LOW}]}, None, "the value at /x~1y/1/~0k has type "),
        ({"k": {object(): 1}}, None, "a key of the dict at /k has type object"),
        # changed=: the pointer is the value's place in the snapshot, not in the request.
        ({"a": 1, "files": [{"path": "x", "meta": {"m": [1, object()]}}]}, [("files", 0)],
         "the value at /files/0/meta/m/1 has type object"),
    ]
    for bad, changed, words in cases:
        exc, sent = each_step_writes(client, lambda: pytest.raises(
            UnencodableSnapshot, h.push, bad, changed=changed))
        assert words in str(exc.value), (str(exc.value), words)
        assert isinstance(exc.value, TypeError) and isinstance(exc.value, ValueError)
        assert sent == [], "nothing is sent"
    deep = node = {}
    for _ in range(2100):
        node["n"] = node = {}
    with pytest.raises(UnencodableSnapshot, match="nested deeper than marshal's limit of 2000"):
        h.push({"deep": deep})
    with pytest.raises(UnencodableSnapshot, match="cannot encode the process batch: the value at /1/a/0"):
        client.snapshots.process([{"a": [1]}, {"a": [object()]}])
    with pytest.raises(UnencodableSnapshot, match="the process batch: the value at /9/x/y"):
        client.snapshots.process([{"a": 1}] * 9 + [{"x": {"y": object()}}], chunk=4)
    with pytest.raises(UnencodableSnapshot, match="the push_many batch: the value at /1/k"):
        h.push_many([{"k": 1}, {"k": object()}])
    assert h._pushes == 1 and h.current() == state and len(h) == 1
    # A value marshal writes but a snapshot cannot hold is the worker's to refuse: the next
    # call raises it, naming the push.
    h.push({"tags": {"a", "b"}}, label="a set")
    with pytest.raises(RequestError, match=r"push #1 \('a set'\).*sets are not plain data"):
        h.undo()
    assert h.current() == state


def test_the_walk_that_explains_a_refusal_names_size_and_escapes_pointers(monkeypatch):
    from chunkring import _unencodable as U

    assert U.pointer(["a/b", 3, "~x", ""]) == "/a~1b/3/~0x/"
    monkeypatch.setattr(U, "MARSHAL_MAX_LEN", 4)
    e = U.explain([(["k"], {"s": "12345"})], ValueError("unmarshallable object"))
    assert str(e) == "cannot push the snapshot: the str at /k/s is longer than marshal's limit of 2 GiB"
    # Nothing at fault that the walk knows: marshal's own words.
    e = U.explain([([], {"a": [1]})], ValueError("something else"), "process the batch")
    assert str(e) == "cannot process the batch: marshal refused it (something else)"


def test_a_worker_error_of_a_lean_push_is_raised_by_the_next_call_naming_it(client):
    h = client.history("lean-worker-errs")
    h.push({"a": 1})
    h.push({1: "int key"}, label="bad")  # marshal encodes it; the worker refuses it
    bad = h._pending[-1][0]
    while not bad.done():  # not woken: the worker finds it at its park timeout
        time.sleep(0.001)
    e, sent = each_step_writes(client, lambda: pytest.raises(RequestError, h.push, {"a": 2}))
    assert e.match(r"^bad_payload \(7\): push #1 \('bad'\) of history 'lean-worker-errs'")
    assert len(sent) == 1 and sent[0]["name"] == "lean-worker-errs", "sent all the same"
    h.push({"a": 2})  # raised once
    state = {"a": 2}
    assert h.current() == state and len(h) == 3
    # In a run of undos into the state, the error of a push made meanwhile surfaces at the
    # next step, which does not move.
    h.undo(into=state)
    h.push({2: "int key"}, changed=[2])
    with pytest.raises(RequestError, match="push #4 of history"):
        h.undo(into=state)
    assert state == {"a": 2} and h.current() == {"a": 2}


def test_a_prefetched_undo_into_an_edited_state_raises_and_changes_nothing(client):
    h = client.history("lean-mismatch")
    state = {"rows": [0], "n": 0}
    h.push(state)
    for i in range(1, 5):
        state["rows"].append(i)
        state["n"] = i
        h.push(state, changed=[("rows", -1), "n"])
    assert h.undo(into=state) is not None  # the first of a run; the next one is prefetched
    assert h._prefetch_move is not None
    state["rows"].append("not pushed")
    before = copy.deepcopy(state)
    with pytest.raises(StateMismatch, match=r"\['rows'\]"):
        h.undo(into=state)
    assert state == before and h.index == 3
    state["rows"].pop()
    state["n"] = "not pushed"
    with pytest.raises(StateMismatch, match=r"\['n'\]"):
        h.undo(into=state)
    state["n"] = 3
    assert h.undo(into=state) is not None and state == {"rows": [0, 1, 2], "n": 2}
    # A container replaced by another of the same kind and length passes (as documented: the
    # check sees lengths, not contents) and the patch is applied over it.
    state["rows"] = [0, 1, 2]
    assert h.undo(into=state) is not None and state == {"rows": [0, 1], "n": 1}


def test_threads_racing_lean_pushes_keep_each_threads_order(client):
    h = client.history("lean-threads", capacity=1000)
    threads, per_thread = 4, 150
    stop = threading.Event()

    def pusher(t: int) -> int:
        state = {"t": t, "i": 0, "rows": []}
        for i in range(per_thread):
            state["i"] = i
            state["rows"].append(i)
            if i % 3 == 0:
                h.push(state, label=f"{t}:{i}")
            else:  # every key named: whichever thread's snapshot it is built on
                h.push(state, changed=["t", "i", "rows"], label=f"{t}:{i}")
        return per_thread

    def reader() -> int:
        reads = 0
        while not stop.is_set():
            assert h.stats()["snapshots"] >= 0  # flushes the pushes made so far
            reads += 1
        return reads

    with ThreadPoolExecutor(threads + 1) as pool:
        watcher = pool.submit(reader)
        assert list(pool.map(pusher, range(threads))) == [per_thread] * threads
        stop.set()
        assert watcher.result(60) >= 1
    h.flush()
    assert h._pushes == threads * per_thread
    labels = [e["label"] for e in h.list()]
    assert sorted(labels) == sorted(f"{t}:{i}" for t in range(threads) for i in range(per_thread))
    for t in range(threads):
        assert [x for x in labels if x.startswith(f"{t}:")] == [f"{t}:{i}" for i in range(per_thread)]
    for index in (0, len(labels) // 2, len(labels) - 1):
        t, i = map(int, labels[index].split(":"))
        assert h.get(index) == {"t": t, "i": i, "rows": list(range(i + 1))}


def test_into_refuses_a_state_with_the_same_values_under_other_keys(client):
    # The fingerprint's identity check must pair values by key, not by insertion order: a
    # state holding the current snapshot's objects under swapped keys (built in another
    # order) is not the current snapshot, and a patch applied to it corrupts it.
    h = client.history("into-swapped")
    x, y = "x" * 3, "y" * 3  # one object each, shared by the snapshot and the state below
    h.push({"a": "old", "b": "old"})
    h.push({"a": x, "b": y}, changed=["a", "b"])
    swapped = {"b": x, "a": y}
    before = dict(swapped)
    with pytest.raises(StateMismatch, match=r"\['a', 'b'\]"):
        h.undo(into=swapped)
    assert swapped == before and h.index == 1


def test_a_subclass_overriding_push_undo_redo_has_its_methods_called(client):
    # The lean steps are instance attributes; they must not shadow a subclass's own methods
    # (as Client keeps a subclass's own submit).
    calls = []

    class Audited(History):
        def push(self, snapshot, label=None, **kw):
            calls.append(("push", label))
            return super().push(snapshot, label, **kw)

        def undo(self, **kw):
            calls.append(("undo", None))
            return super().undo(**kw)

    h = Audited(client, "lean-subclass")
    state = {"n": 0}
    h.push(state, "zero")
    state["n"] = 1
    h.push(state, "one", changed=["n"])
    assert h.undo(into=state) is not None and state == {"n": 0}
    assert h.redo(into=state) is not None and state == {"n": 1}  # not overridden: lean
    assert calls == [("push", "zero"), ("push", "one"), ("undo", None)]
    assert "redo" in vars(h) and "push" not in vars(h) and "undo" not in vars(h)
