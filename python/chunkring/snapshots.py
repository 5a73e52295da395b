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

**Pushes never wait.** ``push`` encodes the snapshot client-side (``marshal.dumps``), so a
value marshal cannot encode raises at the push itself, before anything is sent:
:class:`~chunkring.errors.UnencodableSnapshot` (a ``TypeError`` and a ``ValueError``) names the
first one by its JSON pointer (a type that is not plain data, a subclass of one included, a str
or container over marshal's 2 GiB, nesting past its depth of 2000), and a snapshot over the
worker's message limit raises ``ValueError``. A value marshal writes but a snapshot cannot hold
(a set, a complex number, a dict key that is not a str) is refused by the worker, as below.
``push`` then writes the request into the ring and returns without waiting for the answer and
without waking the worker (a futex wake of a parked worker costs the caller tens of µs): the
worker finds the push at its next wake-up, its park timeout (50 ms by default) at the latest,
or at once when it is awake. The worker runs requests in order, so every later call of this
``History`` sees every push, and each entry keeps the time it was pushed at (sent as the
``time`` param). An error the worker finds (a top level that is not a dict, a set, a key that
is not a str) is kept and raised, as a
:class:`~chunkring.errors.RequestError` whose message starts ``push #N`` (``N`` counts this
``History``'s pushes from 0, the label follows when there is one), by the next call on the same
``History`` that finds it answered: a later push (which is still sent), or any other method,
which first wakes the worker if needed and collects the answers of earlier pushes (at a GUI's
pace they are in already); ``flush()`` waits for them. The history is unchanged by the failed
push. A worker that dies with pushes in the ring makes the next call that waits raise
:class:`~chunkring.errors.WorkerDied`. One worker-side error is the size of the value written
out in full (layout.md §9.3 "Limits": 256 MiB, shared parts counted each time): a push whose
body is over ``WAIT_ABOVE_BYTES`` (51 MiB, a fifth of that, as a ``None`` or a bool is 1 byte
in the body and 5 written out) could be over it, so such a push waits for the worker and
raises its error at the push itself. A smaller body can be over it only through marshal's
back-references (an object written before, such as a repeated string or a shared list, is
written again as 5 bytes that stand for all of it), and is refused at the next call like any
other worker-side error.
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
(``OP_SNAP_MOVE``, as one marshal blob; subtrees the snapshots share cost nothing), and
return the RFC 6902
operations applied (``{"op", "path", "value"?}``; each value is the object now in ``state``),
or ``None`` when an undo or redo did not move. A step back the way the last ``into=`` step
came (a redo right after an undo, or the reverse) applies instead the operations that undo
that step, which it kept when every value it removed or replaced was a str, number, bool,
``None`` or bytes, or a list or dict of at most 64 such values and containers (kept as a copy
of what the history holds: its own lists and dicts, a tuple as a list): nothing is waited
for, and the operations may come in another order than the worker's patch would, with the
same result. The first ``undo(into=…)`` after a push applies the patch that push's answer
carried (layout.md §9.3 ``peek``), so neither waits for a round trip. A run of ``into=`` undos or redos holds the patches of the next steps, asked
for 16 at a time (``OP_SNAP_AHEAD``, layout.md §9.3 "Steps ahead"): most steps send no
request at all, and the worker learns of the steps with the next such request, or before any
other call of this ``History`` (a push, ``current()``, ``stats()``, ``save()``, …), or when
the client closes. Meanwhile another client (or another ``History`` object, which makes both
ask the worker, below) reading this history sees the cursor where it was. ``state`` must
equal the current snapshot: the
client keeps a fingerprint of the current snapshot's top level (the keys, the value of each
scalar, the type and length of each list, dict or bytes) as of the last push or ``into=`` move, and
raises :class:`~chunkring.errors.StateMismatch` (``state`` unchanged, cursor not moved) when
``state`` differs from it. Changes inside a container that keep its length (an entry's text
edited and not pushed) are not seen by this check: the patch is then applied over them, so the
paths it touches get the target's values and other unpushed edits stay. When the client has no
fingerprint (a loaded history; after an undo, redo or jump that returned a fresh snapshot,
which is the caller's to change) it compares ``state`` with ``current()`` once.
Containers in ``state`` must be lists and dicts (a tuple the patch reaches inside raises
``TypeError``).

**Edges.** ``undo()`` at the oldest snapshot, ``redo()`` at the newest, and either on an empty
history return ``None`` and change nothing. ``jump(i)`` outside ``0..len(h)`` raises
``RequestError`` with name ``OUT_OF_RANGE``. A push after ``undo()`` drops the redo branch;
capacity evicts the oldest snapshot; indices are positions ``0..len(h)`` (0 = oldest kept).

**Submit forms.** ``submit_undo``, ``submit_redo``, ``submit_jump``, ``submit_current``,
``submit_get``, ``submit_list``, ``submit_diff``, ``submit_stats``, ``submit_push`` and
``submit_flush`` of a ``History``, ``submit_append``/``submit_read``/``submit_tail`` of a
``Log`` and ``Snapshots.submit_process`` send their request (after a ``History``'s queued
pushes) and return a :class:`concurrent.futures.Future` of the decoded answer without waiting;
``chunkring.aio`` awaits them. A queued push's error is raised by that future in place of its
answer (the request itself was still run by the worker). ``submit_push`` takes ``changed=``;
``submit_move_into(to, state)`` (``to``: "undo", "redo" or an index) checks ``state`` and
sends the move, and ``apply_move(state, answer)`` applies its answer: ``chunkring.aio``'s
``await h.undo(into=state)`` is the two.

**Cost on the GUI thread.** The common forms, ``push(state)`` and ``push(state, changed=…)``
with the defaults and ``undo``/``redo`` (fresh or ``into=``: the first of a run asks for the
next 16 steps' patches, or for the next snapshot and then 2, 4, 8, 16 more while steps come
back to back; the later ones find them held), run lean steps (``_history_lean.py``): a
request is written straight into the ring and earlier answers are read only when the
response ring shows some; anything unusual takes the general way, with the same behaviour. A push that finds ``MAX_PIPELINED_PUSHES``
requests unanswered waits for the oldest one. A step whose answer is not in yet waits as a
call does (it polls through the spin window, then parks). ``can_undo``, ``can_redo``,
``index`` and ``len(h)`` answer from the position the ``History`` keeps as its own pushes and
steps change the history: no request and no wait for the pushes in flight (they count as
done; one the worker refuses raises at a later call, and the position is then read again).
So a GUI may ask them every frame to enable its buttons. While a second ``History`` object of
the same client has the same name, neither answers from what it alone saw (these four, the
live-state fingerprint, a push's patch back, the operations undoing a step): each asks the
worker, one request each time, and so sees the other's pushes and steps. (A run of undos or
redos still prefetches as if one object wrote; ``stats()`` always asks.)

**Threads.** A ``History`` is safe to share between threads: one lock per history
serialises its methods (so its write-behind queue and undo prefetch stay consistent), and the
worker runs its requests in the order they were sent. Interleaving pushes and undos from
several threads gives some serial order, not the one a single thread would have chosen. A
``Log`` and ``Snapshots`` keep no state in Python; the client's own locks make them safe.
"""

from __future__ import annotations

import json
import marshal
import os
from typing import Any, Iterable

from . import _layout as L
from ._futures import Derived, submitted
from ._history import DEFAULT_WRITE_BEHIND, MAX_PIPELINED_PUSHES, History
from ._payload import decode_list_bytes, encode_list
from ._process_batch import process_batch
from ._snapshot_wire import _encode_batch, _load, _save, encode_snapshot

__all__ = ["History", "Log", "Snapshots", "encode_snapshot", "DEFAULT_WRITE_BEHIND",
           "MAX_PIPELINED_PUSHES"]

#: Most snapshots per request of :meth:`Snapshots.process`.
PROCESS_CHUNK = 64


class Snapshots:
    """Worker-wide snapshot ops: batch processing and totals."""

    def __init__(self, client: Any):
        self._client = client

    def process(self, batch: Iterable[Any], *, encoding: str | None = None,
                chunk: int = PROCESS_CHUNK) -> list[dict]:
        """Per snapshot: index, digest, size, changed top-level keys and list entries (§9.3).

        Pipelined: the batch goes in requests of at most ``chunk`` snapshots (smaller ones
        first and, for a batch with a length, last), each written into the ring as soon as it
        is encoded, so the worker describes one request while Python encodes the next; the
        answers come back as marshal and are joined as they are. Each request after the first
        starts with the previous one's last snapshot (``carry``), so every snapshot is
        compared with its predecessor in the batch exactly as in one request; indices (and
        the ``snapshot i`` of an error) are the batch's.
        """
        return process_batch(self._client, batch, encoding, max(1, chunk))

    def submit_process(self, batch: Iterable[Any], *, encoding: str | None = None) -> Derived:
        """:meth:`process` without waiting: a future of its answer."""
        bodies, enc = _encode_batch(batch, encoding, "process")
        return submitted(self._client, L.OP_SNAP_PROCESS, encode_list(bodies),
                          {"encoding": enc or "json", "answer": "marshal"}, marshal.loads)

    def stats(self) -> dict:
        """Totals over every history and log in the worker."""
        return json.loads(self._client.call(L.OP_SNAP_STATS, b"", {}))


def _record(r: bytes | str) -> bytes:
    return r.encode("utf-8") if isinstance(r, str) else bytes(r)


def _records(record_or_records: bytes | str | Iterable[bytes | str]) -> bytes:
    """One record or many, list-encoded (str as UTF-8)."""
    if isinstance(record_or_records, (bytes, bytearray, memoryview, str)):
        return encode_list([_record(record_or_records)])
    return encode_list([_record(r) for r in record_or_records])


def _length(r: bytes) -> int:
    return json.loads(r)["len"]


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
        return _length(self._client.call(L.OP_LOG_APPEND, _records(record_or_records), self._params))

    def read(self, start: int = 0, count: int = 1) -> list[bytes]:
        """Records ``start .. start + count`` (clipped at the end)."""
        params = {"name": self.name, "start": start, "count": count}
        return decode_list_bytes(self._client.call(L.OP_LOG_READ, b"", params))

    def tail(self, n: int) -> list[bytes]:
        """The last ``n`` records, oldest first."""
        return decode_list_bytes(self._client.call(L.OP_LOG_TAIL, b"", {"name": self.name, "n": n}))

    def submit_append(self, record_or_records: bytes | str | Iterable[bytes | str]) -> Derived:
        """:meth:`append` without waiting: a future of the new length."""
        return submitted(self._client, L.OP_LOG_APPEND, _records(record_or_records),
                          self._params, _length)

    def submit_read(self, start: int = 0, count: int = 1) -> Derived:
        """:meth:`read` without waiting."""
        params = {"name": self.name, "start": start, "count": count}
        return submitted(self._client, L.OP_LOG_READ, b"", params, decode_list_bytes)

    def submit_tail(self, n: int) -> Derived:
        """:meth:`tail` without waiting."""
        return submitted(self._client, L.OP_LOG_TAIL, b"", {"name": self.name, "n": n},
                          decode_list_bytes)

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
