"""The lean :class:`~chunkring.snapshots.History` steps: ``push`` and the prefetched
``undo``/``redo`` with the fewest Python operations (a GUI pays them on its own thread).

:func:`lean_steps` builds, per history and sender, the closures a ``History`` uses as its
``push``, ``undo`` and ``redo`` (the methods of the class stay the general path, and its
docs). They mirror named steps of the general path and hand anything unusual to it:

- ``push(state)`` / ``push(state, changed=…)`` with the defaults (a dict as marshal, sent at
  once): ``_push_now``'s steps. The params are the history's prefix made once plus the time
  and the ``changed`` paths; the frame is written straight into the mapping as
  ``_lean_submit.py`` writes one ([R2]: one pack for header and ``params_len``, two slice
  copies), published with one tail store ([R4]) and, as every push, no wake below
  ``WAKE_PENDING`` unanswered ones (``History._sent_push``). Earlier pushes' answers are
  read before the push is written (so never its own), only when the response ring shows
  something (one load of its tail), at most ``READ_PER_PUSH`` a push (``Receiver.drain``'s
  ``limit``); a failed one is raised by ``History._reap`` (naming the push) after this push
  is out.
- ``undo``/``redo`` (fresh, or ``into=state``): the answer the step before asked for
  (``_prefetch``/``_prefetch_move``; for an ``undo(into=…)`` right after a push, the push's
  own answer: it asked for that patch, ``peek``; for an ``into=`` step back the way the last
  one came, the operations undoing that one, which it kept: ``apply_move``), or, for the
  first step of a run, one asked for now
  (``OP_SNAP_MOVE`` ``peek``, ``OP_SNAP_GET`` ``offset`` ∓1: nothing moves until the pushes
  before it are answered without error); the fingerprint check (``matches``), that
  answer (read as the pushes' are, else waited for as ``History._answer`` waits), the next
  step's request written as a push is (with the wake check [W5]-[W6]: its answer is wanted
  next), the answer decoded or the patch applied and the fingerprint refreshed for the keys
  it reached.

Refused to the general path, before anything is sent or changed: another encoding, ``wait``,
``raw``, queued pushes (``write_behind``), a restart since the history's last call (the
general path's ``_locked`` reopens it), a closed or dead receiver, checksummed frames,
``MAX_PIPELINED_PUSHES`` reached, a frame that does not fit before the ring's end in the room
the cached head shows, the sender's lock held by another thread, a prefetched answer that
failed, a live state that fails the fingerprint (the general check raises
:class:`~chunkring.errors.StateMismatch` with its message), a history without a fingerprint
(the general check compares with ``current()``). The history's lock is held throughout, as
``_locked`` holds it.
"""

from __future__ import annotations

import marshal
from functools import partial
from time import time as _time
from typing import Any

from . import _layout as L
from ._handle import _FINISHED, _PENDING
from ._lean_submit import plain_post
from ._live_state import _fingerprint, apply_ops, matches, refresh
from ._snapshot_wire import _CURSOR, _decode, fields_body, json_text

_PLB = L.PARAMS_LEN_BYTES
_OP_PUSH = L.OP_SNAP_PUSH
_OP_FIELDS = L.OP_SNAP_PUSH_FIELDS
_OP_MOVE = L.OP_SNAP_MOVE
_CS = _CURSOR.size
_dumps = marshal.dumps
_loads = marshal.loads
#: Answers a push reads at most (``Receiver.drain``'s ``limit``). A worker that runs behind answers in
#: bursts; reading a burst of 40-80 at one push made that push the run's wall p99 (measured:
#: 76-160 µs against a p50 of 12-35 µs), while 8 a push still catches up 8 times faster than
#: pushes come.
READ_PER_PUSH = 8
#: The move that undoes a move, and how each moves the cursor.
_OTHER_WAY = {"undo": "redo", "redo": "undo"}
_BY = {"undo": -1, "redo": 1}


def lean_steps(hist, max_pipelined: int):
    """``(push, undo, redo)`` for ``hist`` over its current sender (module doc), or None
    when the sender writes checksummed frames (the producer alone writes those)."""
    sender = hist._sender
    producer = sender.producer
    if producer.crc:
        return None
    cls = type(hist)
    general_push, general_undo, general_redo = cls.push, cls.undo, cls.redo
    client = hist._client
    receiver = sender._receiver
    drain = receiver.drain
    consumer = receiver._consumer
    resp_tail = consumer.tail_word
    lock = hist._lock
    q = producer.q
    push_head = hist._push_head
    #: (fresh, direction) → (op, params prefix) of the request a step sends: its move, which
    #: answers the next step's snapshot (fresh) or patch.
    nexts = {(True, to): (op, hist._params(("next", to), '"snapshot":false,"next":true'))
             for to, op in (("undo", L.OP_SNAP_UNDO), ("redo", L.OP_SNAP_REDO))}
    nexts.update({(False, to): (_OP_MOVE, hist._move_params(to, ',"next":true'))
                  for to in ("undo", "redo")})
    nexts = {key: (op, prefix[_PLB:], prefix) for key, (op, prefix) in nexts.items()}
    #: (fresh, direction) → (op, params) of the request asking what a prefetch holds.
    ask = {(False, to): (_OP_MOVE, hist._move_params(to, ',"peek":true')[_PLB:])
           for to in ("undo", "redo")}
    ask.update({(True, to): (L.OP_SNAP_GET, hist._params(
        ("get", offset), f'"offset":{offset}')[_PLB:]) for to, offset in (("undo", -1), ("redo", 1))})

    post = plain_post(sender)  # (None: nothing written, the general path then)

    def send_next(key) -> Any:
        """The handle of the request for the next step's answer (``nexts[key]``), written
        by ``post``, else by the general ``History._post``."""
        op, params, prefix = nexts[key]
        h = post(op, params, b"", True)
        if h is None:
            h, = hist._post(((op, prefix, b""),))
        return h

    def settled() -> bool:
        """Drops the answered requests at the front of ``hist._pending``; False when one of
        them failed (``hist._reap`` raises it). Reads nothing: the answers were read before
        (``drain``)."""
        pending = hist._pending
        k = 0
        for h, _, _ in pending:
            if h._state is not _FINISHED:
                if h._state is _PENDING:
                    break
                return False  # cancelled: _reap's way
            if h._exception is not None:
                return False
            k += 1
        if k:
            del pending[:k]
        return True

    def push(snapshot, label=None, *, encoding=None, wait=False, changed=None):
        if encoding is not None or wait or type(snapshot) is not dict:
            return general_push(hist, snapshot, label, encoding=encoding, wait=wait,
                                changed=changed)
        with lock:
            # (the same worker and sender, alive: else the general way reopens or raises)
            if (hist._queued or hist.write_behind != 1 or hist._epoch != client._epoch
                    or hist._sender is not sender or receiver.dead is not None
                    or receiver.closed or len(hist._pending) >= max_pipelined):
                return general_push(hist, snapshot, label, changed=changed)
            if changed is None:
                op, body, keys = _OP_PUSH, _dumps(snapshot, 4), None
                params = push_head + b"%.6f" % _time()
            else:
                op = _OP_FIELDS
                body, tail, keys = fields_body(snapshot, changed)  # may raise: nothing sent
                params = push_head + b"%.6f" % _time() + tail.encode()
            if label is not None:
                params += b',"label":' + json_text(label).encode()
            params += b"}"
            # Earlier pushes' answers, read before this push is written: its own answer,
            # which a worker awake could write at once, is then never read (and its error
            # raised) by this push itself, only by the next call.
            if q[resp_tail] != consumer.head:
                drain(READ_PER_PUSH)
            h = post(op, params, body, False)
            if h is None:
                return general_push(hist, snapshot, label, changed=changed)
            sent_push(h, label, snapshot, keys)
            if not settled():
                general_reap(hist)  # raises an earlier push's error; this push is sent

    def step(to, general, *, encoding=None, raw=False, into=None):
        """``undo``/``redo`` from its prefetched answer, asked for now by the first step of
        a run (module doc)."""
        if encoding is not None or raw:
            return general(hist, encoding=encoding, raw=raw, into=into)
        with lock:
            pre = hist._prefetch_move if into is not None else hist._prefetch
            if (hist._queued or hist._epoch != client._epoch or hist._sender is not sender
                    or receiver.dead is not None or receiver.closed
                    or len(hist._pending) >= max_pipelined
                    or (into is not None and (type(into) is not dict or hist._synced is None
                                              or hist._shared
                                              or not matches(hist._synced, into)))):
                return general(hist, into=into)
            ops = None  # the patch, when this step already holds it
            if into is not None and pre is not None and len(pre) > 2 and pre[2] == to:
                # Back the way the last step came (a redo after an undo, or the reverse): the
                # operations undoing that step, kept by it, are this move's patch.
                ops = pre[3]
            elif pre is None or pre[0] != to:
                # The first step of a run: ask for what a prefetch holds (the next move's
                # patch, or the snapshot it makes current: nothing moves), then go on as a
                # prefetched step. One round trip, which also answers the pushes before it
                # (their errors are raised before anything moves, as a flush would).
                h = post(*ask[into is None, to], b"", True)
                if h is None:
                    return general(hist, into=into)
                hist._unwoken = False  # (the post ran [W5]-[W6])
                pre = (to, h)
            if ops is None:
                h = pre[1]
                if h._state is _PENDING:
                    if q[resp_tail] != consumer.head:
                        drain(max_pipelined)  # what one load of the tail shows (ours among it)
                    if h._state is _PENDING:
                        try:
                            hist._answer(h)  # parks until it is in
                        except Exception:  # noqa: BLE001 - the general step raises it, as it says
                            return general(hist, into=into)
                if h._state is not _FINISHED or h._exception is not None:
                    return general(hist, into=into)  # the general step raises or copes
                r = h._result
                if r[:1] == b"{":  # a push's position: its patch could not be made (or an older worker)
                    return general(hist, into=into)  # (which asks for it)
            hist._prefetch = hist._prefetch_move = None
            hist._moved = True
            if not settled():
                general_reap(hist)  # a failed `next`: raised once, as _step/_move_into do
            if into is None:
                if not r[0]:
                    return None  # nothing there: the worker's move would not move either
                nxt = send_next((True, to))
                hist._pending.append((nxt, None, None))
                hist._prefetch = (to, nxt)
                hist._count_move(_BY[to])
                hist._synced = None  # (as _snapshot_of: no fingerprint of a fresh snapshot)
                return _decode(r[1], r)
            if ops is None:
                if len(r) == _CS:
                    return None  # no patch: this move would not move
                ops = _loads(memoryview(r)[_CS:])  # (apply_compact's)
            return apply_move(to, into, ops)

    def apply_move(to, into, ops) -> list:
        """The rest of an ``into=`` step whose patch is ``ops`` (its earlier requests
        settled): the move sent with the request for the next one's patch (``next``), the
        patch applied, keeping the operations that undo it (for a step back the other way:
        ``_prefetch_move``'s last two items, when every one could be made), and the
        fingerprint refreshed for the keys it reached."""
        nxt = send_next((False, to))
        hist._pending.append((nxt, None, None))  # its error: raised by the next call
        hist._count_move(_BY[to])
        touched: set = set()
        back: list = []
        applied = apply_ops(into, ops, touched, back)
        hist._prefetch_move = ((to, nxt, _OTHER_WAY[to], back)
                               if None not in back and not hist._shared else (to, nxt))
        if None in touched:
            hist._synced = _fingerprint(into)
        else:  # only the keys the patch reached changed (the rest passed `matches`)
            refresh(hist._synced, into, touched)
        return applied

    undo = partial(step, "undo", general_undo)  # (no Python frame of its own)
    redo = partial(step, "redo", general_redo)

    general_reap = cls._reap_locked
    sent_push = hist._sent_push
    push.__doc__ = general_push.__doc__
    undo.__doc__ = general_undo.__doc__
    redo.__doc__ = general_redo.__doc__
    return push, undo, redo
