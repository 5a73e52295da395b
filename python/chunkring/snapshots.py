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

**Pushes never wait.** ``push`` encodes the snapshot client-side (``marshal.dumps``), so an
unsupported type or a snapshot over the worker's message limit raises at the push itself, then
writes the request into the ring and returns without waiting for the answer. The worker runs
requests in order, so every later call of this ``History`` sees every push, and each entry
keeps the time it was pushed at (sent as the ``time`` param). An error the worker finds (for
example a top level that is not a dict) is kept and raised, as a
:class:`~chunkring.errors.RequestError` whose message starts ``push #N`` (``N`` counts this
``History``'s pushes from 0, the label follows when there is one), by the next call on the same
``History`` (or by ``flush()``); the history is unchanged by the failed push. Every other
method first collects the answers of earlier pushes (at a GUI's pace they are in already).
``push(..., wait=True)`` waits and raises at once. ``h.write_behind = n`` (default 1) queues
``n`` pushes in Python and writes them with one ``submit_many``.

**Pushes that cost what changed.** ``push(state, changed=("disc_entries",))`` encodes and sends
only those top-level fields (``OP_SNAP_PUSH_FIELDS``): the worker builds the new snapshot from
the current one, keeping every other field as it is there. A named key missing from ``state``
is removed. An item of ``changed`` may also be a path, a tuple of keys and list indices:
``changed=[("discussion", 7)]`` sends only entry 7 of the discussion (an edited entry, or an
appended one when 7 is the new last index; ``-1`` is the last entry), so an edit costs the
entry, not the list; a path whose last key is missing from ``state`` removes that key. A key that changed but is not named is **not** updated: the history keeps the
current snapshot's value for it (the live state and the history then differ; the check of
``into=`` below notices it when the key's length or scalar value differs).

**Undo into the live state.** ``undo(into=state)``, ``redo(into=state)`` and
``jump(i, into=state)`` change ``state`` (a dict equal to the current snapshot) in place into
the target snapshot by applying the patch the worker computes between the two
(``OP_SNAP_MOVE``; subtrees the snapshots share cost nothing), and return the RFC 6902
operations applied (``{"op", "path", "value"?}``; each value is the object now in ``state``),
or ``None`` when an undo or redo did not move. ``state`` must equal the current snapshot: the
client keeps a fingerprint of the current snapshot's top level (the keys, the value of each
scalar, the type and length of each list, dict or bytes) as of the last push or move, and
raises :class:`~chunkring.errors.StateMismatch` (``state`` unchanged, cursor not moved) when
``state`` differs from it. Changes inside a container that keep its length (an entry's text
edited and not pushed) are not seen by this check: the patch is then applied over them, so the
paths it touches get the target's values and other unpushed edits stay. When the client has no
fingerprint (a loaded history, a raw read) it compares ``state`` with ``current()`` once.
Containers in ``state`` must be lists and dicts (a tuple the patch reaches inside raises
``TypeError``).

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
from ._payload import decode_list_bytes, encode_list, item_ends
from .errors import RequestError, StateMismatch

__all__ = ["History", "Log", "Snapshots"]

_CURSOR = struct.Struct("<BBHII")
_NO_CURSOR = 0xFFFFFFFF
_ENCODINGS = ("json", "marshal", "bytes")
#: Pushes submitted without waiting before ``push`` waits for them (bounds the replies held).
MAX_PIPELINED_PUSHES = 32
#: Default of :attr:`History.write_behind`: every push is written into the ring at once.
DEFAULT_WRITE_BEHIND = 1
#: Top-level values the fingerprint records by kind and length (others by value); the kind
#: is what the worker keeps (a tuple is stored as a list).
_SIZED = {list: list, tuple: list, dict: dict, bytes: bytes, bytearray: bytes}


def _fingerprint(state: dict) -> dict:
    """What :meth:`History.undo` ``into=`` checks cheaply: scalars by value, containers by
    kind and length."""
    kind = _SIZED.get
    return {k: (t, len(v)) if (t := kind(type(v))) else v for k, v in state.items()}


def _lookup(snapshot: dict, path: list) -> tuple[bool, Any]:
    """``(True, value)`` at ``path`` of ``snapshot``, ``(False, None)`` when its last step is
    missing from a dict (the push removes it); a negative list index is resolved in place.
    Raises ``KeyError``/``IndexError``/``TypeError`` for a path that leads nowhere."""
    if not path:
        raise ValueError("an empty path in changed=")
    node: Any = snapshot
    for n, step in enumerate(path):
        last = n == len(path) - 1
        if type(node) is dict:
            if step not in node:
                if last:
                    return False, None
                raise KeyError(f"changed= path {path!r}: no key {step!r}")
        elif isinstance(node, (list, tuple)):
            if isinstance(step, bool) or not isinstance(step, int):
                raise TypeError(f"changed= path {path!r}: {step!r} indexes a list")
            if step < 0:
                step += len(node)
                path[n] = step
            if not 0 <= step < len(node):
                raise IndexError(f"changed= path {path!r}: index {step} beyond the list")
        else:
            raise TypeError(f"changed= path {path!r}: step {step!r} into a "
                            f"{type(node).__name__}")
        node = node[step]
    return True, node


def _apply_patch(state: dict, body: memoryview, touched: set | None = None) -> list[dict]:
    """Applies an ``OP_SNAP_MOVE`` patch (layout.md §9.3) to ``state``; returns its ops and
    adds the top-level keys it changed to ``touched`` (``None`` in it: the whole root)."""
    ends = item_ends(body)
    ops = json.loads(bytes(body[ends[0]:ends[1]]))
    loads = marshal.loads
    applied = []
    at = 1
    for op, pointer, segs in ops:
        if touched is not None:
            touched.add(segs[0] if segs else None)
        parent = state
        for seg in segs[:-1]:
            parent = parent[seg]
        if op == "remove":
            del parent[segs[-1]]
            applied.append({"op": op, "path": pointer})
            continue
        value = loads(body[ends[at]:ends[at + 1]])
        at += 1
        if not segs:
            state.clear()
            state.update(value)
        elif op == "add" and type(parent) is list:
            parent.insert(segs[-1], value)
        else:
            parent[segs[-1]] = value
        applied.append({"op": op, "path": pointer, "value": value})
    return applied


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

    Creating it creates the history in the worker (or sets the capacity of an existing one).
    """

    def __init__(self, client: Any, name: str, capacity: int = 100, *, _create: bool = True):
        self._client = client
        self.name = name
        self.capacity = capacity
        self._name_params = {"name": name}
        #: Requests written and not yet answered: ``(handle, push number or None, label)``.
        self._pending: list[tuple] = []
        self._queued: list[tuple] = []
        #: Push numbers and labels of ``_queued``, in the same order.
        self._queued_meta: list[tuple] = []
        #: Pushes made through this object (numbers the errors of failed pushes).
        self._pushes = 0
        #: Fingerprint (see ``_fingerprint``) of the current snapshot as last pushed or moved
        #: to by this client; ``None`` when unknown.
        self._synced: dict | None = None
        #: Pushes queued in Python before they are sent together (1 = send each at once).
        self.write_behind = DEFAULT_WRITE_BEHIND
        #: After an undo, redo or jump: an ``OP_SNAP_GET`` (``offset`` -1) already in flight for
        #: the snapshot the next ``undo`` returns, so that undo need not wait for the worker.
        #: Anything that changes the history drops it (single writer, as for queued pushes).
        self._prefetch: Any = None
        #: After ``undo(into=)``/``redo(into=)``: ``(direction, handle)`` of an
        #: ``OP_SNAP_MOVE`` ``peek`` already in flight for the next move the same way, so a run
        #: of them does not wait for the worker. Dropped like ``_prefetch``.
        self._prefetch_move: Any = None
        if _create:
            client.call(L.OP_SNAP_PUSH_MANY, encode_list([]), {"name": name, "capacity": capacity})

    def __repr__(self) -> str:
        return f"History({self.name!r}, capacity={self.capacity})"

    # -- pushing -------------------------------------------------------------------------------

    def push(self, snapshot: Any, label: str | None = None, *, encoding: str | None = None,
             wait: bool = False, changed: Iterable[str] | None = None) -> None:
        """Pushes a snapshot (dict → marshal; bytes → opaque unless ``encoding`` says otherwise).

        Encodes at once (so an unencodable or too large snapshot raises here), writes the
        request into the ring and returns without waiting for the worker; a worker-side error
        is raised by the next call of this ``History``, naming the push (module doc, "Pushes
        never wait"). ``wait=True`` waits for the answer. ``changed`` names the top-level keys
        (or paths: tuples of keys and list indices) of the dict ``snapshot`` that changed since
        the current snapshot: only those values are encoded and sent (module doc, "Pushes that
        cost what changed", also for a wrong ``changed``).
        """
        if changed is not None:
            op, body, enc, params = self._fields_request(snapshot, changed, encoding)
        else:
            op = L.OP_SNAP_PUSH
            if encoding is None and type(snapshot) is dict:
                body, enc = marshal.dumps(snapshot, 4), "marshal"
            else:
                body, enc = encode_snapshot(snapshot, encoding)
            params = {"name": self.name, "encoding": enc, "time": _time()}
            self._synced = _fingerprint(snapshot) if type(snapshot) is dict else None
        if label is not None:
            params["label"] = label
        self._prefetch = self._prefetch_move = None
        self._queued.append((op, body, params))
        number = self._pushes
        self._queued_meta.append((number, label))
        self._pushes += 1
        try:
            if wait:
                self.flush()
            elif len(self._queued) >= self.write_behind:
                self._send_queued()
        except ValueError:
            # Refused before it was written (over the worker's message limit): not a push.
            self._pushes, self._synced = number, None
            raise

    def _fields_request(self, snapshot: Any, changed: Iterable[Any],
                        encoding: str | None) -> tuple:
        """``OP_SNAP_PUSH_FIELDS`` for ``push(changed=…)``; updates the fingerprint."""
        if type(snapshot) is not dict:
            raise TypeError("push(changed=...) needs a dict snapshot")
        if isinstance(changed, str):
            changed = (changed,)
        paths: list[list] = []
        values: list[Any] = []
        removes: list[list] = []
        for item in changed:
            path = list(item) if isinstance(item, (tuple, list)) else [item]
            found, value = _lookup(snapshot, path)
            if found:
                paths.append(path)
                values.append(value)
            else:
                removes.append(path)
        if encoding in (None, "marshal"):
            body, enc = marshal.dumps(values, 4), "marshal"
        else:
            body, enc = encode_snapshot(values, encoding)
        params: dict[str, Any] = {"name": self.name, "encoding": enc, "time": _time(),
                                  "paths": paths}
        if removes:
            params["remove"] = removes
        synced = self._synced
        if synced is not None:
            for path in paths + removes:
                k = path[0]
                if k in snapshot:
                    synced[k] = _fingerprint({k: snapshot[k]})[k]
                else:
                    synced.pop(k, None)
        return L.OP_SNAP_PUSH_FIELDS, body, enc, params

    def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        meta, self._queued_meta = self._queued_meta, []
        if len(self._pending) + len(queued) > MAX_PIPELINED_PUSHES:
            self._reap()
            if len(self._pending) + len(queued) > MAX_PIPELINED_PUSHES:
                self.flush()
        if len(queued) == 1:
            handles = [self._client.submit(*queued[0])]
        else:
            handles = self._client.submit_many(queued)
        self._pending.extend((h, n, label) for h, (n, label) in zip(handles, meta))

    def _reap(self) -> None:
        """Drops answered requests from the front of ``_pending``; raises a push's error."""
        pending = self._pending
        done = 0
        for h, _, _ in pending:
            if not h.done():
                break
            done += 1
        if done:
            answered, self._pending = pending[:done], pending[done:]
            self._raise_first(answered)

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
        self._prefetch = self._prefetch_move = None
        self._synced = None
        self.flush()
        r = json.loads(self._client.call(L.OP_SNAP_PUSH_MANY, encode_list(bodies), params))
        return r["len"]

    def flush(self) -> None:
        """Sends queued pushes and waits for them; raises the first one's error, if any."""
        if self._queued:
            queued, self._queued = self._queued, []
            meta, self._queued_meta = self._queued_meta, []
            handles = self._client.submit_many(queued)
            self._pending.extend((h, n, label) for h, (n, label) in zip(handles, meta))
        pending, self._pending = self._pending, []
        self._raise_first(pending)

    def _raise_first(self, answered: list[tuple]) -> None:
        """Waits for every request of ``answered``; raises the first error (a push's names it)."""
        first = None
        for h, number, label in answered:
            try:
                h.result()
            except RequestError as e:
                if first is None:
                    first = e if number is None else self._push_error(e, number, label)
            except Exception as e:  # noqa: BLE001 - re-raised below, after draining all
                if first is None:
                    first = e
        if first is not None:
            self._synced = None
            raise first

    def _push_error(self, e: RequestError, number: int, label: str | None) -> RequestError:
        named = f" ({label!r})" if label is not None else ""
        return RequestError(e.code, f"push #{number}{named} of history {self.name!r}: {e.message}",
                            e.op)

    # -- moving --------------------------------------------------------------------------------

    def _cursor_op(self, op: int, params: dict, encoding: str | None, raw: bool) -> Any:
        self.flush()
        if encoding is not None:
            if encoding not in _ENCODINGS:
                raise ValueError(f"encoding must be one of {_ENCODINGS}, not {encoding!r}")
            params = dict(params, encoding=encoding)
        r = self._client.call(op, b"", params)
        return self._snapshot_of(r, raw, op != L.OP_SNAP_GET)

    def _snapshot_of(self, r: bytes, raw: bool, current: bool) -> Any:
        """The snapshot of a cursor response; ``current``: it is now the current one."""
        status, enc, _, _, _ = _CURSOR.unpack_from(r)
        if not status:
            return None
        if raw:
            if current:
                self._synced = None
            return r[_CURSOR.size:]
        snap = _decode(enc, r)
        if current:
            self._synced = _fingerprint(snap) if type(snap) is dict else None
        return snap

    def _move_into(self, to: Any, state: dict) -> list[dict] | None:
        """``OP_SNAP_MOVE`` and the patch applied to ``state`` (module doc, "Undo into …").

        In a run of undos (or redos) into the live state, the patch of the next one is
        already requested (``peek``), so the move itself is sent without waiting
        (``patch: false``) together with the next peek: one write, no round trip.
        """
        pre, self._prefetch_move = self._prefetch_move, None
        self._prefetch = None
        if type(state) is not dict:
            raise TypeError(f"into= needs the live state dict, not {type(state).__name__}")
        if pre is not None and pre[0] == to and not self._queued:
            self._reap()
            self._check_state(state)
            r = pre[1].result()
            if not r[0]:
                return None  # the peek says the move would not move
            if len(self._pending) >= MAX_PIPELINED_PUSHES:
                self.flush()
            move, peek = self._client.submit_many((
                (L.OP_SNAP_MOVE, b"", {"name": self.name, "to": to, "patch": False}),
                (L.OP_SNAP_MOVE, b"", {"name": self.name, "to": to, "peek": True}),
            ))
            self._pending.append((move, None, None))
        else:
            self.flush()
            self._check_state(state)
            requests = [(L.OP_SNAP_MOVE, b"", {"name": self.name, "to": to})]
            if isinstance(to, str):  # undo or redo: a run of them is likely
                requests.append((L.OP_SNAP_MOVE, b"", {"name": self.name, "to": to, "peek": True}))
            handles = self._client.submit_many(requests)
            peek = handles[1] if len(handles) > 1 else None
            r = handles[0].result()
            if not r[0]:
                return None
        if peek is not None:
            self._prefetch_move = (to, peek)
        touched: set = set()
        applied = _apply_patch(state, memoryview(r)[_CURSOR.size:], touched)
        synced = self._synced
        if synced is None or None in touched:
            self._synced = _fingerprint(state)
        else:  # only the keys the patch reached can have changed
            for k in touched:
                if k in state:
                    synced[k] = _fingerprint({k: state[k]})[k]
                else:
                    synced.pop(k, None)
        return applied

    def _check_state(self, state: dict) -> None:
        """Raises :class:`StateMismatch` when ``state`` is not the current snapshot."""
        synced = self._synced
        if synced is None:
            current = self.current()
            if current is None or state != current:
                raise StateMismatch(
                    f"state is not the current snapshot of history {self.name!r}"
                    + (" (the history is empty)" if current is None else ""))
            return
        if _fingerprint(state) != synced:
            keys = [k for k in state.keys() | synced.keys()
                    if k not in state or k not in synced
                    or _fingerprint({k: state[k]})[k] != synced[k]]
            raise StateMismatch(
                f"state is not the current snapshot of history {self.name!r}: "
                f"top-level {sorted(map(str, keys))} differ (edited and not pushed, or a push "
                "with a wrong changed=); push it first, or pass the current snapshot")

    # Every cursor method takes ``encoding`` (the encoding the worker should answer in:
    # "json", "marshal" or "bytes"; default the one the snapshot was pushed with) and ``raw``
    # (return the encoded bytes undecoded, e.g. for ``orjson.loads``).

    def undo(self, *, encoding: str | None = None, raw: bool = False,
             into: dict | None = None) -> Any:
        """Steps back; returns the snapshot now current, or ``None`` at the oldest one.

        ``into=state``: changes ``state`` in place into the snapshot now current and returns
        the RFC 6902 operations applied (``None`` at the oldest); see the module doc.

        After an undo, redo or jump the snapshot the next undo returns is already requested
        (``OP_SNAP_GET`` with ``offset`` -1), so a run of undos does not wait for the worker:
        the undo itself is then sent without waiting (``snapshot: false``), like a push.
        """
        if into is not None:
            return self._move_into("undo", into)
        self._prefetch_move = None
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
        if not r[0]:
            return None  # nothing older: the worker's undo would not move either
        if len(self._pending) >= MAX_PIPELINED_PUSHES:
            self.flush()
        self._pending.append(
            (self._client.submit(L.OP_SNAP_UNDO, b"", {"name": self.name, "snapshot": False}),
             None, None)
        )
        self._prefetch_undo()
        return self._snapshot_of(r, raw, True)

    def _prefetch_undo(self) -> None:
        self._prefetch = self._client.submit(L.OP_SNAP_GET, b"", {"name": self.name, "offset": -1})

    def redo(self, *, encoding: str | None = None, raw: bool = False,
             into: dict | None = None) -> Any:
        """Steps forward; returns the snapshot now current, or ``None`` at the newest one.
        ``into=state`` as for :meth:`undo`."""
        if into is not None:
            return self._move_into("redo", into)
        self._prefetch = self._prefetch_move = None
        result = self._cursor_op(L.OP_SNAP_REDO, self._name_params, encoding, raw)
        self._prefetch_undo()
        return result

    def jump(self, index: int, *, encoding: str | None = None, raw: bool = False,
             into: dict | None = None) -> Any:
        """Makes snapshot ``index`` current and returns it (``OUT_OF_RANGE`` if missing).
        ``into=state`` as for :meth:`undo` (returns ``[]`` when ``index`` is already current)."""
        if into is not None:
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"index must be an int >= 0, not {index!r}")
            return self._move_into(index, into)
        self._prefetch = self._prefetch_move = None
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
        return cls(client, r["name"], r["capacity"], _create=False)  # fingerprint unknown

    def drop(self) -> None:
        """Deletes the history in the worker and frees its memory."""
        self._prefetch = self._prefetch_move = None
        self.flush()
        self._synced = None
        self._client.call(L.OP_SNAP_DROP, b"", self._name_params)


#: Snapshots per request of :meth:`Snapshots.process`.
PROCESS_CHUNK = 64


def _process_pipelined(client: Any, batch: Iterable[Any], encoding: str | None,
                       chunk: int) -> list[dict]:
    """``OP_SNAP_PROCESS`` over ``batch`` in chunks; see :meth:`Snapshots.process`."""
    handles = []  # (handle, index of its first reported snapshot, carries a previous one)
    bodies: list[bytes] = []
    enc = None
    first = 0
    prev: bytes | None = None
    fast = encoding is None

    def send() -> None:
        nonlocal first, prev
        items = bodies if prev is None else [prev, *bodies]
        h = client.submit(L.OP_SNAP_PROCESS, encode_list(items), {"encoding": enc or "json"})
        handles.append((h, first, prev is not None))
        first += len(bodies)
        prev = bodies[-1]
        bodies.clear()

    for snap in batch:
        if fast and type(snap) is dict:
            body, e = marshal.dumps(snap, 4), "marshal"
        else:
            body, e = encode_snapshot(snap, encoding)
        if enc is not None and e != enc:
            raise ValueError("process needs one encoding for the whole batch")
        enc = e
        bodies.append(body)
        if len(bodies) >= chunk:
            send()
    if bodies:
        send()
    if not handles:  # an empty batch: one empty request, as before
        handles.append((client.submit(L.OP_SNAP_PROCESS, encode_list([]),
                                      {"encoding": enc or "json"}), 0, False))
    out: list[dict] = []
    for h, start, carried in handles:
        try:
            records = json.loads(h.result())
        except RequestError as err:
            # Name the snapshot by its index in the whole batch.
            for rest, _, _ in handles:
                rest.done()
            msg = err.message
            if msg.startswith("snapshot ") and msg[9:].split(":", 1)[0].isdigit():
                i, tail = msg[9:].split(":", 1)
                msg = f"snapshot {start + int(i) - carried}:{tail}"
            raise RequestError(err.code, msg, err.op) from None
        if carried:
            del records[0]
        if start:
            for r in records:
                r["index"] += start - carried
        out.extend(records)
    return out


class Snapshots:
    """Worker-wide snapshot ops: batch processing and totals."""

    def __init__(self, client: Any):
        self._client = client

    def process(self, batch: Iterable[Any], *, encoding: str | None = None,
                chunk: int = PROCESS_CHUNK) -> list[dict]:
        """Per snapshot: index, digest, size, changed top-level keys and list entries (§9.3).

        Pipelined: the batch goes in requests of ``chunk`` snapshots, each written into the
        ring as soon as it is encoded, so the worker describes one chunk while Python encodes
        the next. Each request after the first starts with the previous chunk's last snapshot
        (its record is dropped), so every snapshot is compared with its predecessor in the
        batch exactly as in one request; indices are the batch's.
        """
        return _process_pipelined(self._client, batch, encoding, max(1, chunk))

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
