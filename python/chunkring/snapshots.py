"""Snapshot histories and logs kept in the worker (layout.md §9.3, §9.4).

A GUI keeps its undo/redo history of UI snapshots in the worker instead of deep-copying
dicts on every change::

    h = client.history("ui", capacity=100)
    h.push(state.to_dict(), label="typed")   # marshal.dumps + one submitted request
    previous = h.undo()                      # the snapshot now current, or None at the start
    h.diff(0, len(h) - 1)                    # RFC 6902 ops

Snapshots are dicts of plain data (dict, list, tuple → list, str, int, float, bool, None,
bytes). By default a dict travels as ``marshal.dumps(obj, 4)``, the cheapest stdlib encoder;
``encoding="json"`` sends JSON instead, and ``bytes`` are stored as an opaque blob (diff is
not available for those). Snapshots come back in the encoding they were pushed with, decoded
with ``marshal.loads``/``json.loads``; tuples come back as lists. Bytes from any other encoder
of JSON work too: ``h.push(orjson.dumps(d), encoding="json")`` and
``orjson.loads(h.undo(raw=True))``.

**Write-behind.** ``push`` encodes the snapshot (``marshal.dumps``) and queues the request in
Python; queued pushes are sent together (one ``submit_many``, one wake of the worker) when
``write_behind`` of them are queued (default 8, about 130 ms of pushes at 60 Hz) and before any
other method of the same ``History`` runs, without waiting for the answers. The worker runs
requests in order, so every later call of this ``History`` sees every push, and each entry
keeps the time it was pushed at (sent as the ``time`` param). Other clients of the same
worker see queued pushes only once they are sent (``flush()`` sends and waits). An error of a
queued push (for example a top level that is not a dict) is raised, as a
:class:`~chunkring.errors.RequestError`, by the next call on the same ``History`` (or by
``flush()``); the history is unchanged by the failed push. ``push(..., wait=True)`` sends at
once and raises at once; ``h.write_behind = 1`` sends every push as it is made.

**Edges.** ``undo()`` at the oldest snapshot, ``redo()`` at the newest, and either on an empty
history return ``None`` and change nothing. ``jump(i)`` outside ``0..len(h)`` raises
``RequestError`` with name ``OUT_OF_RANGE``. A push after ``undo()`` drops the redo branch;
capacity evicts the oldest snapshot; indices are positions ``0..len(h)`` (0 = oldest kept).
"""

from __future__ import annotations

import json
import marshal
import os
import struct
from time import time as _time
from typing import Any, Iterable

from . import _layout as L
from ._payload import decode_list_bytes, encode_list
from .errors import RequestError

__all__ = ["History", "Log", "Snapshots"]

_CURSOR = struct.Struct("<BBHII")
_NO_CURSOR = 0xFFFFFFFF
_ENCODINGS = ("json", "marshal", "bytes")
#: Pushes submitted without waiting before ``push`` waits for them (bounds the replies held).
MAX_PIPELINED_PUSHES = 32
#: Default of :attr:`History.write_behind`.
DEFAULT_WRITE_BEHIND = 8


def encode_snapshot(snapshot: Any, encoding: str | None = None) -> tuple[bytes, str]:
    """Returns ``(body, encoding name)`` for a snapshot (dict, bytes, or JSON text)."""
    if encoding is not None and encoding not in _ENCODINGS:
        raise ValueError(f"encoding must be one of {_ENCODINGS}, not {encoding!r}")
    if isinstance(snapshot, (bytes, bytearray, memoryview)):
        return bytes(snapshot), encoding or "bytes"
    if isinstance(snapshot, str):
        if encoding not in (None, "json"):
            raise ValueError("a str snapshot is JSON text; use encoding='json'")
        return snapshot.encode("utf-8"), "json"
    if encoding is None or encoding == "marshal":
        return marshal.dumps(snapshot, 4), "marshal"
    if encoding == "json":
        return json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False).encode(), "json"
    raise ValueError("a dict snapshot cannot be sent as opaque bytes; encode it first")


def _decode(enc: int, reply: bytes) -> Any:
    """The snapshot after the 12-byte cursor header, decoded (marshal reads it in place)."""
    if enc == 2:
        return marshal.loads(memoryview(reply)[_CURSOR.size:])
    if enc == 1:
        return json.loads(reply[_CURSOR.size:])
    return reply[_CURSOR.size:]



def _save(client: Any, op: int, name: str, path: str | os.PathLike) -> dict:
    """``OP_SNAP_SAVE``/``OP_LOG_SAVE``: persist ``name`` crash-safely at ``path`` (absolute)."""
    params = {"name": name, "path": os.path.abspath(os.fspath(path))}
    return json.loads(client.call(op, b"", params))


def _load(client: Any, op: int, path: str | os.PathLike, name: str | None, replace: bool) -> dict:
    """``OP_SNAP_LOAD``/``OP_LOG_LOAD``: the worker's reply (``name`` defaults to the saved one)."""
    params: dict[str, Any] = {"path": os.path.abspath(os.fspath(path)), "replace": replace}
    if name is not None:
        params["name"] = name
    return json.loads(client.call(op, b"", params))


class History:
    """A bounded undo/redo history of snapshots kept in the worker under ``name``.

    Creating it creates the history in the worker with ``capacity`` (default 100). Opening an
    existing history changes nothing unless ``capacity`` is given, which then sets it (evicting
    the oldest entries as needed); without it, :attr:`capacity` is read from the worker.
    """

    def __init__(self, client: Any, name: str, capacity: int | None = None, *,
                 _create: bool = True):
        self._client = client
        self.name = name
        self.capacity = capacity
        self._name_params = {"name": name}
        self._pending: list[Any] = []
        self._queued: list[tuple] = []
        #: Pushes queued in Python before they are sent together (1 = send each at once).
        self.write_behind = DEFAULT_WRITE_BEHIND
        #: After an undo, redo or jump: an ``OP_SNAP_GET`` (``offset`` -1) already in flight for
        #: the snapshot the next ``undo`` returns, so that undo need not wait for the worker.
        #: Anything that changes the history drops it (single writer, as for queued pushes).
        self._prefetch: Any = None
        if _create:
            params: dict[str, Any] = {"name": name}
            if capacity is not None:
                params["capacity"] = capacity
            client.call(L.OP_SNAP_PUSH_MANY, encode_list([]), params)
            if capacity is None:
                stats = json.loads(client.call(L.OP_SNAP_STATS, b"", {"name": name}))
                self.capacity = stats["capacity"]

    def __repr__(self) -> str:
        return f"History({self.name!r}, capacity={self.capacity})"

    # -- pushing -------------------------------------------------------------------------------

    def push(self, snapshot: Any, label: str | None = None, *, encoding: str | None = None,
             wait: bool = False) -> None:
        """Pushes a snapshot (dict → marshal; bytes → opaque unless ``encoding`` says otherwise).

        Encodes at once (so an unencodable snapshot raises here) and returns without waiting
        for the worker; see the module doc ("Write-behind") for when the request is sent and
        when a worker-side error surfaces. ``wait=True`` sends it and waits for the answer.
        """
        if encoding is None and type(snapshot) is dict:
            body, enc = marshal.dumps(snapshot, 4), "marshal"
        else:
            body, enc = encode_snapshot(snapshot, encoding)
        params = {"name": self.name, "encoding": enc, "time": _time()}
        if label is not None:
            params["label"] = label
        self._prefetch = None
        self._queued.append((L.OP_SNAP_PUSH, body, params))
        if wait:
            self.flush()
        elif len(self._queued) >= self.write_behind:
            self._send_queued()

    def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        if len(self._pending) + len(queued) > MAX_PIPELINED_PUSHES:
            self.flush()
        self._pending.extend(self._client.submit_many(queued))

    def push_many(self, snapshots: Iterable[Any], labels: Iterable[str | None] | None = None, *,
                  encoding: str | None = None) -> int:
        """Pushes many snapshots in one request (all or none); returns the new length."""
        bodies = []
        enc = None
        for s in snapshots:
            body, e = encode_snapshot(s, encoding)
            if enc is not None and e != enc:
                raise ValueError("push_many needs one encoding for the whole batch")
            enc = e
            bodies.append(body)
        params: dict[str, Any] = {"name": self.name, "encoding": enc or "json"}
        if labels is not None:
            params["labels"] = list(labels)
        self._prefetch = None
        self.flush()
        r = json.loads(self._client.call(L.OP_SNAP_PUSH_MANY, encode_list(bodies), params))
        return r["len"]

    def flush(self) -> None:
        """Sends queued pushes and waits for them; raises the first one's error, if any."""
        if self._queued:
            queued, self._queued = self._queued, []
            self._pending.extend(self._client.submit_many(queued))
        pending, self._pending = self._pending, []
        first = None
        for h in pending:
            try:
                h.result()
            except Exception as e:  # noqa: BLE001 - re-raised below, after draining all
                if first is None:
                    first = e
        if first is not None:
            raise first

    # -- moving --------------------------------------------------------------------------------

    def _cursor_op(self, op: int, params: dict, encoding: str | None, raw: bool) -> Any:
        self.flush()
        if encoding is not None:
            if encoding not in _ENCODINGS:
                raise ValueError(f"encoding must be one of {_ENCODINGS}, not {encoding!r}")
            params = dict(params, encoding=encoding)
        r = self._client.call(op, b"", params)
        status, enc, _, _, _ = _CURSOR.unpack_from(r)
        if not status:
            return None
        if raw:
            return r[_CURSOR.size:]
        return _decode(enc, r)

    # Every cursor method takes ``encoding`` (the encoding the worker should answer in:
    # "json", "marshal" or "bytes"; default the one the snapshot was pushed with) and ``raw``
    # (return the encoded bytes undecoded, e.g. for ``orjson.loads``).

    def undo(self, *, encoding: str | None = None, raw: bool = False) -> Any:
        """Steps back; returns the snapshot now current, or ``None`` at the oldest one.

        After an undo, redo or jump the snapshot the next undo returns is already requested
        (``OP_SNAP_GET`` with ``offset`` -1), so a run of undos does not wait for the worker:
        the undo itself is then sent without waiting (``snapshot: false``), like a push.
        """
        pre, self._prefetch = self._prefetch, None
        if pre is None or encoding is not None or self._queued:
            result = self._cursor_op(L.OP_SNAP_UNDO, self._name_params, encoding, raw)
            self._prefetch_undo()
            return result
        try:
            r = pre.result()
        except RequestError as e:
            if e.code != L.ERR_BAD_PARAMS:
                raise
            # A worker older than the `offset` param: undo the plain way from now on.
            self._prefetch_undo = lambda: None  # type: ignore[method-assign]
            return self._cursor_op(L.OP_SNAP_UNDO, self._name_params, encoding, raw)
        status, enc, _, _, _ = _CURSOR.unpack_from(r)
        if not status:
            return None  # nothing older: the worker's undo would not move either
        if len(self._pending) >= MAX_PIPELINED_PUSHES:
            self.flush()
        self._pending.append(
            self._client.submit(L.OP_SNAP_UNDO, b"", {"name": self.name, "snapshot": False})
        )
        self._prefetch_undo()
        return r[_CURSOR.size:] if raw else _decode(enc, r)

    def _prefetch_undo(self) -> None:
        self._prefetch = self._client.submit(L.OP_SNAP_GET, b"", {"name": self.name, "offset": -1})

    def redo(self, *, encoding: str | None = None, raw: bool = False) -> Any:
        """Steps forward; returns the snapshot now current, or ``None`` at the newest one."""
        self._prefetch = None
        result = self._cursor_op(L.OP_SNAP_REDO, self._name_params, encoding, raw)
        self._prefetch_undo()
        return result

    def jump(self, index: int, *, encoding: str | None = None, raw: bool = False) -> Any:
        """Makes snapshot ``index`` current and returns it (``OUT_OF_RANGE`` if missing)."""
        self._prefetch = None
        result = self._cursor_op(L.OP_SNAP_JUMP, {"name": self.name, "index": index}, encoding, raw)
        self._prefetch_undo()
        return result

    def current(self, *, encoding: str | None = None, raw: bool = False) -> Any:
        """The current snapshot, or ``None`` when the history is empty."""
        return self._cursor_op(L.OP_SNAP_CURRENT, self._name_params, encoding, raw)

    def get(self, index: int, *, encoding: str | None = None, raw: bool = False) -> Any:
        """Snapshot ``index`` without moving the cursor."""
        return self._cursor_op(L.OP_SNAP_GET, {"name": self.name, "index": index}, encoding, raw)

    # -- looking -------------------------------------------------------------------------------

    def stats(self) -> dict:
        """Counts and bytes: snapshots, logical_bytes, stored_bytes, sharing_ratio, … (§9.3)."""
        self.flush()
        return json.loads(self._client.call(L.OP_SNAP_STATS, b"", self._name_params))

    @property
    def can_undo(self) -> bool:
        """True when ``undo()`` would move (one request)."""
        return self.stats()["can_undo"]

    @property
    def can_redo(self) -> bool:
        """True when ``redo()`` would move (one request)."""
        return self.stats()["can_redo"]

    @property
    def index(self) -> int | None:
        """The cursor position, ``None`` when empty (one request)."""
        return self.stats()["cursor"]

    def __len__(self) -> int:
        return self.stats()["snapshots"]

    def list(self) -> list[dict]:
        """One dict per snapshot, oldest first: index, label, time, size, encoding, digest."""
        self.flush()
        return json.loads(self._client.call(L.OP_SNAP_LIST, b"", self._name_params))["entries"]

    def diff(self, a: int, b: int) -> list[dict]:
        """The RFC 6902 patch (list of ops) turning snapshot ``a`` into snapshot ``b``."""
        self.flush()
        return json.loads(self._client.call(L.OP_SNAP_DIFF, b"", {"name": self.name, "a": a, "b": b}))

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> dict:
        """Saves crash-safely (temp file, fsync, rename) to ``path``; returns the op's reply."""
        self.flush()
        return _save(self._client, L.OP_SNAP_SAVE, self.name, path)

    @classmethod
    def load(cls, client: Any, path: str | os.PathLike, name: str | None = None, *,
             replace: bool = False) -> "History":
        """Loads a saved history (under ``name``, default the saved name)."""
        r = _load(client, L.OP_SNAP_LOAD, path, name, replace)
        return cls(client, r["name"], r["capacity"], _create=False)

    def drop(self) -> None:
        """Deletes the history in the worker and frees its memory."""
        self._prefetch = None
        self.flush()
        self._client.call(L.OP_SNAP_DROP, b"", self._name_params)


class Snapshots:
    """Worker-wide snapshot ops: batch processing and totals."""

    def __init__(self, client: Any):
        self._client = client

    def process(self, batch: Iterable[Any], *, encoding: str | None = None) -> list[dict]:
        """Per snapshot: index, digest, size, changed top-level keys and list entries (§9.3)."""
        bodies = []
        enc = None
        for s in batch:
            body, e = encode_snapshot(s, encoding)
            if enc is not None and e != enc:
                raise ValueError("process needs one encoding for the whole batch")
            enc = e
            bodies.append(body)
        params = {"encoding": enc or "json"}
        return json.loads(self._client.call(L.OP_SNAP_PROCESS, encode_list(bodies), params))

    def stats(self) -> dict:
        """Totals over every history and log in the worker."""
        return json.loads(self._client.call(L.OP_SNAP_STATS, b"", {}))


def _record(r: bytes | str) -> bytes:
    return r.encode("utf-8") if isinstance(r, str) else bytes(r)


class Log:
    """An append-only log of byte records kept in the worker (created on first use)."""

    def __init__(self, client: Any, name: str, *, _create: bool = True):
        self._client = client
        self.name = name
        self._params = {"name": name}
        if _create:
            client.call(L.OP_LOG_APPEND, encode_list([]), self._params)

    def __repr__(self) -> str:
        return f"Log({self.name!r})"

    def append(self, record_or_records: bytes | str | Iterable[bytes | str]) -> int:
        """Appends one record or many (one request); str is stored as UTF-8. Returns the length."""
        if isinstance(record_or_records, (bytes, bytearray, memoryview, str)):
            items = [_record(record_or_records)]
        else:
            items = [_record(r) for r in record_or_records]
        return json.loads(self._client.call(L.OP_LOG_APPEND, encode_list(items), self._params))["len"]

    def read(self, start: int = 0, count: int = 1) -> list[bytes]:
        """Records ``start .. start + count`` (clipped at the end)."""
        params = {"name": self.name, "start": start, "count": count}
        return decode_list_bytes(self._client.call(L.OP_LOG_READ, b"", params))

    def tail(self, n: int) -> list[bytes]:
        """The last ``n`` records, oldest first."""
        return decode_list_bytes(self._client.call(L.OP_LOG_TAIL, b"", {"name": self.name, "n": n}))

    def __len__(self) -> int:
        return json.loads(self._client.call(L.OP_LOG_LEN, b"", self._params))["len"]

    def save(self, path: str | os.PathLike) -> dict:
        """Saves crash-safely to ``path``."""
        return _save(self._client, L.OP_LOG_SAVE, self.name, path)

    @classmethod
    def load(cls, client: Any, path: str | os.PathLike, name: str | None = None, *,
             replace: bool = False) -> "Log":
        """Loads a saved log (under ``name``, default the saved name)."""
        r = _load(client, L.OP_LOG_LOAD, path, name, replace)
        return cls(client, r["name"], _create=False)
