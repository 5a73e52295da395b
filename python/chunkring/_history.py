"""The :class:`History` wrapper: one named snapshot history in the worker (the module doc of
:mod:`chunkring.snapshots` describes its behaviour; layout.md §9.3 its requests).
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from time import time as _time
from typing import Any, Callable, Iterable

from . import _layout as L
from ._futures import Derived, then
from ._history_lean import Ahead, lean_steps
from ._live_state import _fingerprint, apply_compact, differing_keys, matches, refresh
from ._payload import encode_list
from ._snapshot_wire import (_CURSOR, _cursor_answer, _cursor_params, _encode_batch, _json,
                             _load, _locked, _none, _save, encode_snapshot, save_params, fields_body,
                             fields_request, json_text, params_prefix)
from ._receiver import _AFTER_WAKE_SPIN_NS
from ._unencodable import dumps as dumps_plain
from .errors import (RegionLost, RequestError, RequestTimeout, StateMismatch, WorkerDied,
                     WorkerRestarted)

#: Requests unanswered from which ``push`` waits for the oldest (bounds the replies held).
MAX_PIPELINED_PUSHES = 128
#: Unanswered pushes from which a push wakes a parked worker (a futex wake only when it is
#: parked): a GUI's pushes are answered at the worker's park timeout long before, pushes
#: back to back are answered while they are made instead of all at ``MAX_PIPELINED_PUSHES``.
WAKE_PENDING = 8
#: The worker's bound on a stored value written out in full (layout.md §9.3 "Limits":
#: ``MAX_EXPANDED_BYTES``), and the body size past which a push waits for the worker's
#: verdict: a value without shared parts expands to at most 5 bytes per marshal byte (a
#: ``None`` or a bool is 1 byte in the body and a 5-byte node), so a smaller body is too large
#: written out only through back-references (5 bytes that stand for an object written before,
#: a repeated string or a shared list), refused at the next call like any worker-side error.
MAX_EXPANDED_BYTES = 256 << 20
WAIT_ABOVE_BYTES = MAX_EXPANDED_BYTES // 5
#: Default of :attr:`History.write_behind`: every push is written into the ring at once.
DEFAULT_WRITE_BEHIND = 1
#: Per client, the live History objects of each name (``History._shared``).
_BY_NAME: "weakref.WeakKeyDictionary[Any, dict[str, weakref.WeakSet]]" = weakref.WeakKeyDictionary()


def _cursor_and_length(stats: dict) -> tuple:
    """``(cursor, length)`` of an ``OP_SNAP_STATS`` reply (``History._pos``'s form)."""
    return stats["cursor"], stats["snapshots"]


def _numbers(pushes: range) -> str:
    """``push #3`` or ``pushes #3..#7``."""
    if len(pushes) == 1:
        return f"push #{pushes.start}"
    return f"pushes #{pushes.start}..#{pushes.stop - 1}"


def create_request(name: str, capacity: int | None) -> tuple[int, bytes, dict]:
    """``(op, body, params)`` creating history ``name``: an empty ``OP_SNAP_PUSH_MANY``, which
    also sets its capacity when one is given (shared by ``History()`` and ``aio``)."""
    params: dict[str, Any] = {"name": name}
    if capacity is not None:
        params["capacity"] = capacity
    return L.OP_SNAP_PUSH_MANY, encode_list([]), params


def tell_moves_of(client: Any) -> None:
    """Tells the worker the ``into=`` steps every history of ``client`` took ahead of it
    (``History._tell_moves``), best effort: at close, before detaching from a worker that
    goes on serving. A history whose lock another thread holds is mid-call (and tells at
    its next one)."""
    for peers in list(_BY_NAME.get(client, {}).values()):
        for h in list(peers):
            if h._lock.acquire(False):
                try:
                    h._tell_moves()
                except Exception:  # noqa: BLE001 - best effort: the client is closing
                    pass
                finally:
                    h._lock.release()


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
        self._lock = threading.RLock()
        self._name_params = {"name": name}
        #: Pushes were published without waking the worker since the last wake-up.
        self._unwoken = False
        #: The JSON text every ``_push_now`` params start with (the time and the rest follow).
        #: ``peek``: the push answers the patch of an undo after it (layout.md §9.3), kept as
        #: the prefetched answer of a first ``undo(into=…)`` (``_sent_push``).
        self._push_head = (f'{{"name":{json_text(name)},"encoding":"marshal","peek":true,'
                           f'"time":').encode()
        #: Params prefixes made once (``_params``).
        self._prefixes: dict = {}
        #: Requests written and not yet answered: ``(handle, push number or None, label)``.
        self._pending: list[tuple] = []
        self._queued: list[tuple] = []
        #: Push numbers and labels of ``_queued``, in the same order.
        self._queued_meta: list[tuple] = []
        #: Pushes made through this object (numbers the errors of failed pushes).
        self._pushes = 0
        #: When (``time.time``) the last general call of this history or lean push ended: a
        #: run of fresh steps starting within ``AHEAD_LEAD`` of it ramps up its requests
        #: (``_history_lean.py``).
        self._called_at = 0.0
        #: Fingerprint (see ``_fingerprint``) of the current snapshot as last pushed or moved
        #: to by this client; ``None`` when unknown.
        self._synced: dict | None = None
        #: Pushes queued in Python before they are sent together (1 = send each at once).
        self.write_behind = DEFAULT_WRITE_BEHIND
        #: After an undo, redo or jump: ``(direction, handle)`` of a request already in flight
        #: whose answer is the snapshot the next ``undo`` (after a jump or an undo) or ``redo``
        #: (after a redo) returns (``OP_SNAP_GET`` ``offset`` ∓1, or an undo/redo ``next``), so
        #: a run of them need not wait for the worker. Anything that changes the history drops
        #: it (single writer, as for queued pushes).
        self._prefetch: Any = None
        #: After ``undo(into=)``/``redo(into=)``: ``(direction, handle)`` of an
        #: ``OP_SNAP_MOVE`` ``peek`` or ``next`` already in flight whose answer is the patch of
        #: the next move the same way, so a run of them does not wait for the worker. Dropped
        #: like ``_prefetch``.
        self._prefetch_move: Any = None
        #: The client's restart count (``client._epoch``) when this history last talked to
        #: its worker; ``_after_restart`` runs at the next call once they differ.
        self._epoch = client._epoch
        #: The file this history was last saved to or loaded from (None: never), the value
        #: of ``_pushes`` then, and whether it moved (undo, redo, jump, …) since.
        self._saved_path: str | None = None
        self._saved_pushes = 0
        self._moved = False
        #: ``(_pushes, _moved)`` when a push's error last reported the pushes a restart lost.
        self._reported: tuple | None = None
        #: ``(cursor, length)`` as this object's own requests leave the history (a push counted
        #: when it is sent, as if it succeeds), or None when unknown: what ``can_undo``,
        #: ``can_redo``, ``index`` and ``len`` answer without a request (single writer, as for
        #: the prefetches). Set from ``stats``; dropped by anything it does not follow.
        self._pos: tuple | None = None
        #: True once another History object of this client opened the same name: then none
        #: of them answers from what it alone saw (``_pos``, the fingerprint, a push's patch
        #: back, the operations undoing a step); each asks the worker. (The prefetches of a
        #: run of undos or redos still assume one writer.)
        self._shared = False
        peers = _BY_NAME.setdefault(client, {}).setdefault(name, weakref.WeakSet())
        peers.add(self)
        if len(peers) > 1:
            for h in list(peers):
                with h._lock:
                    if h is not self:
                        h._tell_moves()  # (its steps taken ahead, before the other asks)
                    h._shared = True
                    h._pos = h._prefetch_move = None
        self._use_sender(client._sender)
        if _create:
            made = json.loads(client.call(*create_request(name, capacity)))
            self._pos = (made["index"], made["len"])
            if capacity is None:
                stats = json.loads(client.call(L.OP_SNAP_STATS, b"", {"name": name}))
                self.capacity = stats["capacity"]

    def __repr__(self) -> str:
        return f"History({self.name!r}, capacity={self.capacity})"

    # -- pushing -------------------------------------------------------------------------------

    @_locked
    def push(self, snapshot: Any, label: str | None = None, *, encoding: str | None = None,
             wait: bool = False, changed: Iterable[str] | None = None) -> None:
        """Pushes a snapshot (dict → marshal; bytes → opaque unless ``encoding`` says otherwise).

        Encodes at once (so a snapshot marshal cannot encode raises
        :class:`~chunkring.errors.UnencodableSnapshot` here, naming the value at fault, and one
        over the worker's message limit ``ValueError``), writes the request into the ring
        and returns without waiting for the worker, and without waking it; a worker-side
        error (a set, a key that is not a str) is raised by the next call of this
        ``History`` that finds it answered, naming the push (module doc, "Pushes never
        wait"). ``wait=True`` waits for the answer, and so does a push whose body is over
        ``WAIT_ABOVE_BYTES`` (51 MiB): it may be too large for the worker once written out,
        which is then raised here. ``changed`` names the top-level keys (or paths: tuples of
        keys and list indices) of the dict ``snapshot`` that changed since the current
        snapshot: only those values are encoded and sent (module doc, "Pushes that cost what
        changed", also for a wrong ``changed``).
        """
        if (encoding is None and not wait and type(snapshot) is dict and not self._queued
                and self.write_behind == 1):
            self._push_now(snapshot, label, changed)
            return
        if changed is not None:
            op, body, enc, params = self._fields_request(snapshot, changed, encoding)
        else:
            op = L.OP_SNAP_PUSH
            if encoding is None and type(snapshot) is dict:
                body, enc = dumps_plain(snapshot), "marshal"
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
        self._count_push()
        try:
            if wait or len(body) > WAIT_ABOVE_BYTES:
                self.flush()
            elif len(self._queued) >= self.write_behind:
                self._send_queued()
        except ValueError:
            # Refused before it was written (over the worker's message limit): not a push.
            self._pushes, self._synced, self._pos = number, None, None
            raise

    def _push_now(self, snapshot: dict, label: str | None, changed: Any) -> None:
        """The common push (a dict as marshal, sent at once): the params are written as JSON
        text around a prefix made once per history, and the worker is not woken (it finds
        the push at its next wake-up; layout.md §9.3 "Pushes need no wake"). Then the answers
        of earlier pushes already in are checked, so a worker-side error surfaces at the next
        push that finds it (that push is sent all the same)."""
        if len(self._pending) >= MAX_PIPELINED_PUSHES:
            self._wait_oldest()
        if changed is None:
            op, body, tail = L.OP_SNAP_PUSH, dumps_plain(snapshot), ""
            keys = None
        else:
            op = L.OP_SNAP_PUSH_FIELDS
            body, tail, keys = fields_body(snapshot, changed)
        if label is not None:
            tail += ',"label":' + json_text(label)
        pj = self._push_head + f"{_time()!r}{tail}}}".encode()
        h, = self._post(((op, params_prefix(pj), body),), False)  # may raise ValueError
        self._sent_push(h, label, snapshot, keys)
        if len(body) > WAIT_ABOVE_BYTES:
            self.flush()  # (may be too large written out: the worker's verdict, raised here)
        elif self._pending[0][0].done():  # reads the answers in, if any
            self._reap()  # raises an earlier push's error; this push is sent all the same

    def _wait_oldest(self) -> None:
        """With ``MAX_PIPELINED_PUSHES`` requests unanswered: waits for the oldest (after a
        wake, if pushes went out without one) and drops the answered ones, raising a push's
        error as :meth:`_reap` does. One answer, not all: pushes made faster than the worker
        runs them then wait about one of its pushes each, not a flush of all 128 now and
        then (measured: 4-12 ms, the wall p99 of a run of pushes back to back)."""
        self._wait_for(self._pending[0][0])
        self._reap()

    def _sent_push(self, h: Any, label: str | None, snapshot: dict, keys: list | None) -> None:
        """What follows the write of push ``h`` of ``snapshot`` (``_push_now``, the lean
        push): its number, the wake policy (a wake only from ``WAKE_PENDING`` unanswered
        requests on), the fingerprint (``keys``: the paths of a ``changed=`` push) and its
        answer as the prefetched patch of an ``undo(into=…)`` right after it (the push asked
        for it: ``peek`` in ``_push_head``)."""
        self._prefetch = None
        self._prefetch_move = None if self._shared else ("undo", h)
        number = self._pushes
        self._pushes = number + 1
        self._count_push()
        self._pending.append((h, number, label))
        if len(self._pending) < WAKE_PENDING:
            self._unwoken = True
        else:  # pushes back to back: wake a parked worker now, so no push waits at the bound
            self._unwoken = False
            self._wake()
        if keys is None:
            self._synced = _fingerprint(snapshot)
        elif self._synced is not None:
            refresh(self._synced, snapshot, [path[0] for path in keys])

    def _count_push(self) -> None:
        """``_pos`` after a push sent: the redo branch dropped, the oldest entry evicted at
        ``capacity``."""
        pos, cap = self._pos, self.capacity
        if pos is None or cap is None:
            self._pos = None
            return
        n = min((0 if pos[0] is None else pos[0] + 1) + 1, cap)
        self._pos = (n - 1, n)

    def _count_move(self, by: int) -> None:
        """``_pos`` after an undo (``by`` -1) or redo (+1) that moved."""
        pos = self._pos
        self._pos = None if pos is None or pos[0] is None else (pos[0] + by, pos[1])

    def _fields_request(self, snapshot: Any, changed: Iterable[Any],
                        encoding: str | None) -> tuple:
        """``OP_SNAP_PUSH_FIELDS`` for ``push(changed=…)``; updates the fingerprint."""
        op, body, enc, params, paths = fields_request(self.name, snapshot, changed, encoding)
        if self._synced is not None:
            refresh(self._synced, snapshot, (path[0] for path in paths))
        return op, body, enc, params

    def _submit_queued(self) -> None:
        """Sends every queued push with one ``submit_many``; their answers join ``_pending``."""
        if self._queued:
            queued, self._queued = self._queued, []
            meta, self._queued_meta = self._queued_meta, []
            handles = self._client.submit_many(queued)
            self._pending.extend((h, n, label) for h, (n, label) in zip(handles, meta))

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

    @_locked
    def _reap_locked(self) -> None:
        """:meth:`_reap` under the lock, a restarted worker's death named (``_locked``)."""
        self._reap()

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

    @_locked
    def push_many(self, snapshots: Iterable[Any], labels: Iterable[str | None] | None = None, *,
                  encoding: str | None = None) -> int:
        """Pushes many snapshots in one request (all or none); returns the new length."""
        body, params = self._push_many_request(snapshots, labels, encoding)
        self.flush()
        return json.loads(self._client.call(L.OP_SNAP_PUSH_MANY, body, params))["len"]

    def _push_many_request(self, snapshots: Iterable[Any], labels: Iterable[str | None] | None,
                           encoding: str | None) -> tuple[bytes, dict]:
        """``(body, params)`` of ``OP_SNAP_PUSH_MANY`` for :meth:`push_many`, and what it
        changes here: the position, the fingerprint and the prefetches are dropped, and the
        pushes (not numbered as pushes) are reported lost as a change."""
        bodies, enc = _encode_batch(snapshots, encoding, "push_many")
        params: dict[str, Any] = {"name": self.name, "encoding": enc or "json"}
        if labels is not None:
            params["labels"] = list(labels)
        self._prefetch = self._prefetch_move = None
        self._synced = self._pos = None
        self._moved = True
        return encode_list(bodies), params

    @_locked
    def flush(self) -> None:
        """Sends queued pushes and waits for them; raises the first one's error, if any."""
        self._wake_for_pushes()
        self._submit_queued()
        pending, self._pending = self._pending, []
        self._raise_first(pending)

    def _wake_for_pushes(self) -> bool | None:
        """Wakes the worker if pushes were published without waking it, before a wait for
        their answers (a worker parked with no wake would find them only at its timeout):
        whether a futex wake was issued, None when there was nothing to do."""
        if self._unwoken:
            self._unwoken = False
            return self._wake()
        return None

    def _raise_first(self, answered: list[tuple]) -> None:
        """Waits for every request of ``answered``; raises the first error (a push's names it)."""
        first = None
        for h, number, label in answered:
            try:
                h.result()
            except RequestError as e:
                if first is None:
                    first = e if number is None else self._push_error(e, number, label)
            except WorkerRestarted as e:  # the worker died with it in flight; not run again
                if first is None:
                    first = (self._push_lost(e, number, label) if number is not None
                             else self._request_lost(e))
            except Exception as e:  # noqa: BLE001 - re-raised below, after draining all
                if first is None:
                    first = e
        if first is not None:
            self._synced = self._pos = None
            raise first

    def _use_sender(self, sender) -> None:
        """Send through ``sender`` (the client's; a new one after a restart), the common
        ``push``, ``undo`` and ``redo`` through the lean steps over it (``_history_lean.py``;
        instance attributes that shadow the methods, which stay the general path)."""
        self._sender = sender
        self._post = sender.post
        self._wake = sender.producer.wake
        lean = lean_steps(self, MAX_PIPELINED_PUSHES)
        if lean is not None:
            self._ask_ahead = lean[3]
            cls = type(self)
            for name, step in zip(("push", "undo", "redo"), lean):
                # Not over a subclass's own method (as Client keeps a subclass's submit).
                if getattr(cls, name) is getattr(History, name):
                    setattr(self, name, step)

    def _met_death(self, e: WorkerDied) -> WorkerDied:
        """What a call of this history that met the worker's death raises: on a client
        spawned with ``restart=True``, once the restart is over, a :class:`WorkerRestarted`
        naming the history and the pushes its next call reports lost (the call was not sent
        again); else ``e``."""
        sup = getattr(self._client, "_sup", None)
        if sup is None or isinstance(e, (WorkerRestarted, RegionLost)):
            return e
        try:
            sup.await_restart(self._sender._receiver, e, None)
        except WorkerDied as final:
            return final
        lost = self._unsaved()
        return WorkerRestarted(f"{e}; the request of history {self.name!r} was not sent again"
                               + (f"; {_numbers(lost)} will be lost" if lost else ""),
                               e.returncode, e.stderr, history=self.name, pushes=lost)

    def _push_lost(self, e: WorkerRestarted, number: int, label: str | None) -> WorkerRestarted:
        """The error of push ``number``, which met a worker death: it names every push the
        reopened history will lack (``_after_restart`` then does not raise them again)."""
        named = f" ({label!r})" if label is not None else ""
        lost = self._unsaved()
        self._reported = (self._pushes, self._moved)
        where = (f"it will be reopened from {self._saved_path} (its last save) without "
                 f"{_numbers(lost)}" if self._saved_path is not None else
                 "it was never saved, so it is gone")
        return WorkerRestarted(f"push #{number}{named} of history {self.name!r} was lost: {e}; "
                               f"{where}", e.returncode, e.stderr, history=self.name, pushes=lost)

    def _request_lost(self, e: WorkerRestarted) -> WorkerRestarted:
        """The error of a request of this history other than a push (a step's, a tell of
        the steps taken ahead) that met a worker death: ``e`` when nothing since the last
        save is lost, else one naming the history and what its reopening will lack, as
        ``_after_restart`` would (which then does not raise it again)."""
        lost = self._unsaved()
        if not lost and not self._moved:
            return e
        self._reported = (self._pushes, self._moved)
        what = ([_numbers(lost)] if lost else []) + (["undo/redo/jump moves"] if self._moved else [])
        where = (f"it will be reopened from {self._saved_path} (its last save) without the "
                 f"{' and '.join(what)} made since then" if self._saved_path is not None else
                 "it was never saved, so it is gone")
        return WorkerRestarted(f"history {self.name!r} lost a request with the worker: {e}; "
                               f"{where}", e.returncode, e.stderr, history=self.name, pushes=lost)

    def _unsaved(self) -> range:
        """The numbers of the pushes made since the last save (all of them: never saved)."""
        return range(self._saved_pushes if self._saved_path is not None else 0, self._pushes)

    def _after_restart(self) -> None:
        """The client's worker died and a new one took over since this history's last call
        (``Client.spawn(restart=True)``). Reopen the history in the new worker from the file
        it was last saved to (or loaded from), and raise :class:`WorkerRestarted` naming what
        that file lacks: the pushes since the save (queued, in flight or answered alike) and
        any move. Never saved: raise, now and at every later call (the history is gone)."""
        lost = self._unsaved()
        reported, self._reported = self._reported, None
        self._pending, self._queued, self._queued_meta = [], [], []
        self._prefetch = self._prefetch_move = None
        self._synced = self._pos = None
        if self._saved_path is None:
            raise WorkerRestarted(
                f"history {self.name!r} was lost with the worker, which died: it was never "
                f"saved (h.save(path) lets a history survive a restart); its {self._pushes} "
                "push(es) are lost", history=self.name, pushes=range(self._pushes))
        epoch = self._client._epoch
        self._use_sender(self._client._sender)
        _load(self._client, L.OP_SNAP_LOAD, self._saved_path, self.name, True)
        self._epoch = epoch
        moved, self._moved = self._moved, False
        self._saved_pushes = self._pushes
        if (lost or moved) and reported != (self._pushes, moved):
            what = [_numbers(lost)] if lost else []
            what += ["undo/redo/jump moves"] if moved else []
            raise WorkerRestarted(
                f"the worker died and was restarted: history {self.name!r} was reopened from "
                f"{self._saved_path} (its last save); {' and '.join(what)} made since then "
                "were lost", history=self.name, pushes=lost)

    def _tell_moves(self) -> None:
        """Tells the worker the ``into=`` steps this object took ahead of it (``Ahead``;
        layout.md §9.3 "Steps ahead") with one ``OP_SNAP_AHEAD``, so its cursor is where
        this object's is before any other request of this history (``_locked`` runs it
        first, the lean push before it writes). Its error is raised by a later call."""
        a = self._prefetch_move
        if type(a) is Ahead and a.at != a.told:
            self._ask_ahead(a)  # (an Ahead is made only by the lean steps, which set this)

    def _push_error(self, e: RequestError, number: int, label: str | None) -> RequestError:
        named = f" ({label!r})" if label is not None else ""
        return RequestError(e.code, f"push #{number}{named} of history {self.name!r}: {e.message}",
                            e.op)

    # -- moving --------------------------------------------------------------------------------

    def _cursor_op(self, op: int, params: dict, encoding: str | None, raw: bool) -> Any:
        self.flush()
        r = self._client.call(op, b"", _cursor_params(params, encoding))
        if op == L.OP_SNAP_CURRENT:
            snap = _cursor_answer(r, raw)
            if self._synced is None and type(snap) is dict:
                self._synced = _fingerprint(snap)  # the history's current snapshot, as read
            return snap
        return self._snapshot_of(r, raw, op != L.OP_SNAP_GET)

    def _snapshot_of(self, r: bytes, raw: bool, moved: bool) -> Any:
        """The snapshot of a cursor response; ``moved``: it is now the current one. No
        fingerprint is taken of it (that would cost every undo a pass over its top level): a
        later ``into=`` compares its state with ``current()`` once."""
        if moved and r[0]:
            self._synced = None
        return _cursor_answer(r, raw)

    def _move_into(self, to: Any, state: dict) -> list[dict] | None:
        """``OP_SNAP_MOVE`` (``compact``) and the patch applied to ``state`` (module doc,
        "Undo into …").

        In a run of undos (or redos) into the live state, the patch of this one is already
        in (asked for by the previous step), so the step is one request sent without
        waiting: move, and answer the patch of the next move the same way (``next``). The
        first step of a run sends the move and a ``peek`` at the next. Where an answer is
        not in yet, the caller parks rather than spins (it costs no CPU).
        """
        pre, self._prefetch_move = self._prefetch_move, None
        if type(pre) is Ahead:
            pre = None  # (steps held ahead by the lean ones: told already, by _locked)
        self._prefetch = None
        if type(state) is not dict:
            raise TypeError(f"into= needs the live state dict, not {type(state).__name__}")
        r = None
        if pre is not None and pre[0] == to and not self._queued:
            try:
                r = self._answer(pre[1])  # a peek's, `next`'s or push's answer: this move's patch
            finally:
                self._reap()  # a failed push or `next` leaves its error in _pending: raised once
            self._check_state(state)  # (after: an earlier push's error comes first, as a flush's)
            if r[:1] == b"{":
                r = None  # a push's position: its patch could not be made (or an older worker)
        if r is not None:
            if len(r) == _CURSOR.size:
                return None  # no patch: this move would not move
            if len(self._pending) >= MAX_PIPELINED_PUSHES:
                self.flush()
            peek, = self._post(((L.OP_SNAP_MOVE, self._move_params(to, ',"next":true'), b""),))
            self._pending.append((peek, None, None))  # its error: raised by the next call
        else:
            self.flush()
            self._check_state(state)
            requests = [(L.OP_SNAP_MOVE, self._move_params(to, ""), b"")]
            if isinstance(to, str):  # undo or redo: a run of them is likely
                requests.append((L.OP_SNAP_MOVE, self._move_params(to, ',"peek":true'), b""))
            handles = self._post(requests)
            peek = handles[1] if len(handles) > 1 else None
            r = self._answer(handles[0])
            if not r[0]:
                return None
        if peek is not None:
            self._prefetch_move = (to, peek)
        return self._applied(state, r)

    def _applied(self, state: dict, answer: bytes) -> list[dict]:
        """The compact patch of a move's ``answer`` applied to ``state``; the fingerprint
        taken anew (cheap): its values are now the objects in ``state``, so the next check
        compares them by identity (see ``matches``)."""
        applied = apply_compact(state, memoryview(answer)[_CURSOR.size:], set())
        self._synced = _fingerprint(state)
        return applied

    def _move_params(self, to: Any, extra: str) -> bytes:
        """The params prefix of an ``OP_SNAP_MOVE`` (compact) to ``to`` with ``extra`` JSON
        members; made once per history for undo and redo."""
        if isinstance(to, str):
            prefix = self._prefixes.get((to, extra))  # _params' cache, looked up first
            if prefix is not None:
                return prefix
        members = f'"to":{json_text(to)},"compact":true{extra}'
        if isinstance(to, str):
            return self._params((to, extra), members)
        return params_prefix(f'{{"name":{json_text(self.name)},{members}}}'.encode())

    def _answer(self, h: Any) -> bytes:
        """``h.result()``, waited for by :meth:`_wait_for`."""
        self._wait_for(h)
        return h.result()

    def _wait_for(self, h: Any) -> None:
        """Waits for ``h`` as a call waits (layout.md §11 "Client": polls for the spin
        window, through the worker's wake-up when it was woken, then parks), after waking a
        worker left parked by pushes sent without a wake (§9.3). Parking at once cost the
        first step of a run of undos a park and a futex wake-up, 50-150 µs, for an answer the
        worker had ready a few µs later."""
        if not h.done():
            woken = self._wake_for_pushes()
            if woken is None:
                woken = self._sender.worker_woken
            self._client._receiver.wait(h, None, _AFTER_WAKE_SPIN_NS if woken else None)

    def _check_state(self, state: dict) -> None:
        """Raises :class:`StateMismatch` when ``state`` is not the current snapshot (compared
        with ``current()`` when there is no fingerprint, or when another History object may
        have changed the history since this one took it)."""
        synced = None if self._shared else self._synced
        if synced is None:
            current = self.current()
            if current is None or state != current:
                raise StateMismatch(
                    f"state is not the current snapshot of history {self.name!r}"
                    + (" (the history is empty)" if current is None else ""))
            return
        if matches(synced, state):
            return
        keys = differing_keys(synced, state)
        if keys:
            raise StateMismatch(
                f"state is not the current snapshot of history {self.name!r}: "
                f"top-level {keys} differ (edited and not pushed, or a push "
                "with a wrong changed=); push it first, or pass the current snapshot")

    # Every cursor method takes ``encoding`` (the encoding the worker should answer in:
    # "json", "marshal" or "bytes"; default the one the snapshot was pushed with) and ``raw``
    # (return the encoded bytes undecoded, e.g. for ``orjson.loads``).

    @_locked
    def undo(self, *, encoding: str | None = None, raw: bool = False,
             into: dict | None = None) -> Any:
        """Steps back; returns the snapshot now current, or ``None`` at the oldest one.

        ``into=state``: changes ``state`` in place into the snapshot now current and returns
        the RFC 6902 operations applied (``None`` at the oldest); see the module doc.

        After an undo, redo or jump the snapshot the next undo returns is already requested
        (``OP_SNAP_GET`` with ``offset`` -1), so a run of undos does not wait for the worker:
        the undo itself is then sent without waiting (``snapshot: false``), like a push.
        """
        self._moved = True
        self._pos = None  # (the lean step counts the moves it makes itself)
        if into is not None:
            return self._move_into("undo", into)
        return self._step("undo", L.OP_SNAP_UNDO, encoding, raw)

    @_locked
    def redo(self, *, encoding: str | None = None, raw: bool = False,
             into: dict | None = None) -> Any:
        """Steps forward; returns the snapshot now current, or ``None`` at the newest one.
        ``into=state`` as for :meth:`undo`; a run of redos is prefetched as undos are."""
        self._moved = True
        self._pos = None
        if into is not None:
            return self._move_into("redo", into)
        return self._step("redo", L.OP_SNAP_REDO, encoding, raw)

    def _step(self, to: str, op: int, encoding: str | None, raw: bool) -> Any:
        """``undo()`` or ``redo()``: from the prefetched answer when there is one for ``to``,
        then one request sent without waiting, the move and the next move's snapshot
        (``next``); else the move asked for and waited on, then a prefetch."""
        self._prefetch_move = None
        pre, self._prefetch = self._prefetch, None
        if pre is None or pre[0] != to or encoding is not None or self._queued:
            result = self._cursor_op(op, self._name_params, encoding, raw)
            self._prefetch_next(to)
            return result
        try:
            r = self._answer(pre[1])
        except RequestError as e:
            if e.code != L.ERR_BAD_PARAMS:
                raise
            # A worker older than the `offset` param: move the plain way from now on.
            self._prefetch_next = lambda to: None  # type: ignore[method-assign]
            return self._cursor_op(op, self._name_params, encoding, raw)
        finally:
            self._reap()  # a failed `next` leaves _pending with its error, raised once
        if not r[0]:
            return None  # nothing there: the worker's move would not move either
        if len(self._pending) >= MAX_PIPELINED_PUSHES:
            self.flush()
        nxt, = self._post(((op, self._params(
            ("next", to), '"snapshot":false,"next":true'), b""),))
        self._pending.append((nxt, None, None))
        self._prefetch = (to, nxt)
        return self._snapshot_of(r, raw, True)

    def _prefetch_next(self, to: str) -> None:
        """Asks for the snapshot the next ``to`` (undo or redo) returns (``OP_SNAP_GET``)."""
        offset = -1 if to == "undo" else 1
        h, = self._post(((L.OP_SNAP_GET, self._params(("get", offset), f'"offset":{offset}'),
                          b""),))
        self._prefetch = (to, h)

    def _params(self, key: Any, members: str) -> bytes:
        """The params prefix ``{"name": …, members}``, made once per history and ``key``."""
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = self._prefixes[key] = params_prefix(
                f'{{"name":{json_text(self.name)},{members}}}'.encode())
        return prefix

    @_locked
    def jump(self, index: int, *, encoding: str | None = None, raw: bool = False,
             into: dict | None = None) -> Any:
        """Makes snapshot ``index`` current and returns it (``OUT_OF_RANGE`` if missing).
        ``into=state`` as for :meth:`undo` (returns ``[]`` when ``index`` is already current)."""
        self._moved = True
        self._pos = None
        if into is not None:
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"index must be an int >= 0, not {index!r}")
            return self._move_into(index, into)
        self._prefetch = self._prefetch_move = None
        result = self._cursor_op(L.OP_SNAP_JUMP, {"name": self.name, "index": index}, encoding, raw)
        self._prefetch_next("undo")
        return result

    @_locked
    def current(self, *, encoding: str | None = None, raw: bool = False) -> Any:
        """The current snapshot, or ``None`` when the history is empty."""
        return self._cursor_op(L.OP_SNAP_CURRENT, self._name_params, encoding, raw)

    @_locked
    def get(self, index: int, *, encoding: str | None = None, raw: bool = False) -> Any:
        """Snapshot ``index`` without moving the cursor."""
        return self._cursor_op(L.OP_SNAP_GET, {"name": self.name, "index": index}, encoding, raw)

    # -- looking -------------------------------------------------------------------------------

    @_locked
    def stats(self) -> dict:
        """Counts and bytes: snapshots, logical_bytes, stored_bytes, sharing_ratio, … (§9.3)."""
        self.flush()
        stats = json.loads(self._client.call(L.OP_SNAP_STATS, b"", self._name_params))
        self._pos = _cursor_and_length(stats)
        return stats

    def _position(self) -> tuple:
        """``(cursor, length)``: as this object's own pushes and steps leave the history,
        counting the pushes not answered yet as done (no request; earlier pushes' errors that
        are in are raised, as at any call), else from :meth:`stats` (one request, after the
        pushes are answered)."""
        with self._lock:
            known = self._known_position()
            if known is not None:
                return known
            self.stats()
            return self._pos

    def _known_position(self) -> tuple | None:
        """``_pos`` when this History can answer from it (one writer, this worker), after
        the answers already in are checked (no wait; an error among them is raised and drops
        ``_pos``); None when the worker must be asked."""
        if self._pos is not None and not self._shared and self._epoch == self._client._epoch:
            self._reap()
        return None if self._shared or self._epoch != self._client._epoch else self._pos

    # The four below answer from the position this History keeps as its own pushes and steps
    # change the history (``_position``): no request, and no wait for the pushes in flight,
    # which count as done (one that the worker refuses raises at a later call, and the
    # position is then read again). With a second History object of the same name
    # (``_shared``) they ask the worker each time.

    @property
    def can_undo(self) -> bool:
        """True when ``undo()`` would move."""
        cursor = self._position()[0]
        return cursor is not None and cursor > 0

    @property
    def can_redo(self) -> bool:
        """True when ``redo()`` would move."""
        cursor, length = self._position()
        return cursor is not None and cursor < length - 1

    @property
    def index(self) -> int | None:
        """The cursor position, ``None`` when empty."""
        return self._position()[0]

    def __len__(self) -> int:
        return self._position()[1]

    @_locked
    def list(self) -> list[dict]:
        """One dict per snapshot, oldest first: index, label, time, size, encoding, digest."""
        self.flush()
        return json.loads(self._client.call(L.OP_SNAP_LIST, b"", self._name_params))["entries"]

    @_locked
    def diff(self, a: int, b: int) -> list[dict]:
        """The RFC 6902 patch (list of ops) turning snapshot ``a`` into snapshot ``b``."""
        self.flush()
        return json.loads(self._client.call(L.OP_SNAP_DIFF, b"", {"name": self.name, "a": a, "b": b}))

    # -- submit forms (module doc, "Submit forms") --------------------------------------------

    @_locked
    def _submit(self, op: int | None, params: dict | None, decode, body: bytes = b"") -> Derived:
        """Sends the queued pushes and then ``op`` (if any, with ``body``) without waiting: a
        future of ``decode(answer)`` that raises the first failed push's error (naming the
        push, as :meth:`flush` does) instead. A caller whose op moves the cursor or changes
        the length drops ``_pos`` (its answer comes later); pushes count themselves."""
        self._prefetch = self._prefetch_move = None
        self._wake_for_pushes()
        self._submit_queued()
        pending, self._pending = self._pending, []
        handles = [h for h, _, _ in pending]
        if op is not None:
            handles.append(self._client.submit(op, body, params))

        def answer(hs):
            self._raise_first(pending)
            return decode(hs[-1].result()) if op is not None else None
        return then(handles, answer)

    def _submit_cursor(self, op: int, params: dict, encoding: str | None, raw: bool) -> Derived:
        if op not in (L.OP_SNAP_GET, L.OP_SNAP_CURRENT):
            self._moved = True
            self._pos = None
        if op != L.OP_SNAP_GET:
            # The answer is read later, elsewhere: the next into= compares the live state with
            # the current snapshot itself instead of trusting a fingerprint.
            self._synced = None
        return self._submit(op, _cursor_params(params, encoding), lambda r: _cursor_answer(r, raw))

    def submit_push(self, snapshot: Any, label: str | None = None, *,
                    encoding: str | None = None, changed: Iterable[Any] | None = None) -> Derived:
        """:meth:`push` sent at once with every queued push: a future of None (or the error)."""
        with self._lock:
            self.push(snapshot, label, encoding=encoding, changed=changed)
            return self._submit(None, None, _none)

    @_locked
    def submit_position(self) -> Derived:
        """``(cursor, length)`` as ``can_undo``/``can_redo``/``index``/``len`` read it, without
        waiting: a future done at once when this History knows the position, else of an
        ``OP_SNAP_STATS`` sent after the queued pushes."""
        known = self._known_position()
        if known is not None:
            done = Derived(())
            done.set_result(known)
            return done
        return self._submit(L.OP_SNAP_STATS, self._name_params,
                            lambda r: _cursor_and_length(json.loads(r)))

    @_locked
    def submit_save(self, path: str | os.PathLike) -> Derived:
        """:meth:`save` without waiting: a future of the op's reply; the history is reopened
        from this file after a restart once the reply is in."""
        params = save_params(self.name, path)
        pushes = self._pushes

        def saved(r: bytes) -> dict:
            # (on whichever thread reads the answer: no lock, which a thread waiting for
            # this answer may hold)
            self._saved_path, self._saved_pushes, self._moved = params["path"], pushes, False
            return json.loads(r)
        return self._submit(L.OP_SNAP_SAVE, params, saved)

    @_locked
    def submit_drop(self) -> Derived:
        """:meth:`drop` without waiting: a future of None."""
        self._synced = self._pos = None
        self._moved = True
        return self._submit(L.OP_SNAP_DROP, self._name_params, _none)

    @_locked
    def submit_push_many(self, snapshots: Iterable[Any],
                         labels: Iterable[str | None] | None = None, *,
                         encoding: str | None = None) -> Derived:
        """:meth:`push_many` without waiting: a future of the new length."""
        body, params = self._push_many_request(snapshots, labels, encoding)
        return self._submit(L.OP_SNAP_PUSH_MANY, params, lambda r: json.loads(r)["len"], body)

    @_locked
    def submit_move_into(self, to: Any, state: dict,
                         abandoned: Callable[[], bool] | None = None) -> Derived:
        """``undo``/``redo``/``jump(to)`` ``into=state`` without waiting (``aio``): ``state``
        checked against the current snapshot first (:class:`StateMismatch` raised here,
        nothing sent), then the move (``OP_SNAP_MOVE``, ``compact``) sent after every queued
        push, unless ``abandoned()`` says the caller gave up meanwhile. A future of its
        answer, which :meth:`apply_move` applies to ``state``; until then ``state`` is the
        snapshot moved from, and the fingerprint is not trusted."""
        if type(state) is not dict:
            raise TypeError(f"into= needs the live state dict, not {type(state).__name__}")
        if not isinstance(to, str) and (isinstance(to, bool) or not isinstance(to, int)
                                        or to < 0):
            raise ValueError(f"index must be an int >= 0, not {to!r}")
        self._check_state(state)  # (may ask the worker for the current snapshot)
        if abandoned is not None and abandoned():
            raise RequestTimeout("the caller gave up before the move was sent")
        self._moved = True
        self._synced = self._pos = None  # (apply_move takes the fingerprint anew)
        return self._submit(L.OP_SNAP_MOVE, {"name": self.name, "to": to, "compact": True},
                            bytes)

    @_locked
    def apply_move(self, state: dict, answer: bytes) -> list[dict] | None:
        """Applies the answer of :meth:`submit_move_into` to ``state`` in place, as the
        synchronous ``into=`` step does: the RFC 6902 operations applied, or None when the
        move did not move."""
        return self._applied(state, answer) if answer[0] else None

    def submit_flush(self) -> Derived:
        """:meth:`flush` without waiting: a future of None, or of the first push's error."""
        return self._submit(None, None, _none)

    def submit_undo(self, *, encoding: str | None = None, raw: bool = False) -> Derived:
        """:meth:`undo` without waiting (no prefetch): a future of the snapshot or None."""
        return self._submit_cursor(L.OP_SNAP_UNDO, self._name_params, encoding, raw)

    def submit_redo(self, *, encoding: str | None = None, raw: bool = False) -> Derived:
        """:meth:`redo` without waiting."""
        return self._submit_cursor(L.OP_SNAP_REDO, self._name_params, encoding, raw)

    def submit_jump(self, index: int, *, encoding: str | None = None, raw: bool = False) -> Derived:
        """:meth:`jump` without waiting."""
        return self._submit_cursor(L.OP_SNAP_JUMP, {"name": self.name, "index": index}, encoding, raw)

    def submit_current(self, *, encoding: str | None = None, raw: bool = False) -> Derived:
        """:meth:`current` without waiting."""
        return self._submit_cursor(L.OP_SNAP_CURRENT, self._name_params, encoding, raw)

    def submit_get(self, index: int, *, encoding: str | None = None, raw: bool = False) -> Derived:
        """:meth:`get` without waiting."""
        return self._submit_cursor(L.OP_SNAP_GET, {"name": self.name, "index": index}, encoding, raw)

    def submit_stats(self) -> Derived:
        """:meth:`stats` without waiting."""
        return self._submit(L.OP_SNAP_STATS, self._name_params, _json)

    def submit_list(self) -> Derived:
        """:meth:`list` without waiting."""
        return self._submit(L.OP_SNAP_LIST, self._name_params, lambda r: json.loads(r)["entries"])

    def submit_diff(self, a: int, b: int) -> Derived:
        """:meth:`diff` without waiting."""
        return self._submit(L.OP_SNAP_DIFF, {"name": self.name, "a": a, "b": b}, _json)

    # -- persistence ---------------------------------------------------------------------------

    @_locked
    def save(self, path: str | os.PathLike) -> dict:
        """Saves crash-safely (temp file, fsync, rename) to ``path``; returns the op's reply.
        A client spawned with ``restart=True`` reopens the history from its last save after a
        worker death (``_after_restart``). A save that raises ``WorkerDied`` may or may not
        have replaced the file (it is replaced atomically, so the file holds one or the other
        whole): save to a path other than the last one to keep a save known to be good."""
        self.flush()
        reply = _save(self._client, L.OP_SNAP_SAVE, self.name, path)
        self._saved_path = os.path.abspath(os.fspath(path))
        self._saved_pushes, self._moved = self._pushes, False
        return reply

    @classmethod
    def load(cls, client: Any, path: str | os.PathLike, name: str | None = None, *,
             replace: bool = False) -> "History":
        """Loads a saved history (under ``name``, default the saved name)."""
        return cls.loaded(client, _load(client, L.OP_SNAP_LOAD, path, name, replace), path)

    @classmethod
    def loaded(cls, client: Any, reply: dict, path: str | os.PathLike) -> "History":
        """The History of an ``OP_SNAP_LOAD``'s ``reply`` from ``path`` (the file it is
        reopened from after a restart), at the position the reply gives; its fingerprint is
        unknown."""
        h = cls(client, reply["name"], reply["capacity"], _create=False)
        h._saved_path = os.path.abspath(os.fspath(path))
        if "cursor" in reply and "len" in reply:
            h._pos = (reply["cursor"], reply["len"])
        return h

    @_locked
    def drop(self) -> None:
        """Deletes the history in the worker and frees its memory."""
        self._prefetch = self._prefetch_move = None
        self.flush()
        self._synced = self._pos = None
        self._moved = True
        self._client.call(L.OP_SNAP_DROP, b"", self._name_params)


#: Snapshots per request of :meth:`Snapshots.process`.
