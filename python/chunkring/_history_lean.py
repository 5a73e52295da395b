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
- ``undo``/``redo`` (fresh): the answer the step before asked for (``_prefetch``), or, for
  the first step of a run, one asked for now (``OP_SNAP_GET`` ``offset`` ∓1: nothing moves
  until the pushes before it are answered without error); that answer read as the pushes'
  are, else waited for as ``History._answer`` waits; the next step's request written as a
  push is (with the wake check [W5]-[W6]: its answer is wanted next); the snapshot decoded.
- ``undo(into=state)``/``redo(into=state)``: the fingerprint check (``matches``), then the
  patch of this step from those held ahead (:class:`Ahead`, ``History._prefetch_move``;
  layout.md §9.3 "Steps ahead"): for each way, the patches of the next steps, from an
  ``OP_SNAP_AHEAD`` (16 at a time), a push's answer (it asked for the patch back, ``peek``)
  or the operations undoing a step the other way (kept while it was applied, when every
  value they put back is immutable). The step applies it and refreshes the fingerprint for
  the keys it reached; it sends nothing while 5 or more are held. With 4 or fewer left it
  sends an ``OP_SNAP_AHEAD`` for the next 16, read when those run out; with none held and
  none coming it asks and waits (the first step of a run). The steps themselves reach the
  worker with those requests (``by``), or, told by ``History._tell_moves``, before any
  other request of the history (``_locked``, the lean push, a fresh step) and when the
  client closes: until then the worker's cursor lags the live state's position.

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
from ._snapshot_wire import _CURSOR, _decode, fields_body, json_text, params_prefix

_PLB = L.PARAMS_LEN_BYTES
_OP_PUSH = L.OP_SNAP_PUSH
_OP_FIELDS = L.OP_SNAP_PUSH_FIELDS
_OP_AHEAD = L.OP_SNAP_AHEAD
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


#: Steps whose patches one ``OP_SNAP_AHEAD`` asks for (layout.md §9.3 "Steps ahead").
AHEAD_STEPS = 16
#: A step that leaves this few patches held asks for the next ones (read when they run out).
AHEAD_LOW = 4


def patches_of(answer: bytes | None) -> list | None:
    """The patches of an ``OP_SNAP_AHEAD`` answer (each a list of compact operations, in
    the order the steps come); None for a failed request, [] for none."""
    if answer is None:
        return None
    if not answer[0]:
        return []
    return _loads(memoryview(answer)[_CS:])


class Ahead:
    """What a run of ``into=`` steps holds (``History._prefetch_move`` then): for each way,
    the patches of the next steps from the live state's position (next one last), the
    position (``at``: steps from where this run began, -1 an undo) and where the worker's
    cursor is (``told``: the position the requests sent so far leave it at), and the refill
    in flight, ``(direction, handle, position when asked)``. Steps between ``told`` and
    ``at`` are told with the next ``OP_SNAP_AHEAD`` (``History._tell_moves`` before any
    other request of the history)."""

    __slots__ = ("stacks", "at", "told", "refill", "end")

    def __init__(self, pos: tuple | None) -> None:
        self.stacks: dict[str, list] = {"undo": [], "redo": []}
        self.at = self.told = 0
        self.refill: tuple | None = None
        #: For each way, the position past which the history has no step, or None while
        #: unknown: from ``pos`` (``History._pos``, the cursor and length), else learnt from
        #: an answer that held fewer patches than asked for.
        self.end: dict[str, int | None] = {"undo": None, "redo": None}
        if pos is not None and pos[0] is not None:
            self.end = {"undo": -pos[0], "redo": pos[1] - 1 - pos[0]}

    def fill(self, to: str, patches: list | None, at: int) -> None:
        """The ``to``-way stack (empty) from ``patches`` asked for at position ``at``:
        those from the live state's position on, when it is on their way (positions are
        those of one linear history: pushes drop the whole ``Ahead``)."""
        if patches is None:
            return
        if len(patches) < AHEAD_STEPS:
            self.end[to] = at + _BY[to] * len(patches)
        skip = (at - self.at) if to == "undo" else (self.at - at)
        if 0 <= skip < len(patches):
            self.stacks[to][:] = patches[:skip - 1 if skip else None:-1]

    def wants_refill(self, to: str) -> bool:
        """Few patches left ``to``-wards, none asked for, and the history goes on past them."""
        stack = self.stacks[to]
        return (len(stack) <= AHEAD_LOW and self.refill is None
                and self.end[to] != self.at + _BY[to] * len(stack))

    def take_prefetched(self, pre: Any, to: str, answer_of) -> bool:
        """Starts from the patch of the next step ``to``-wards when one is in flight:
        ``pre`` ``(to, handle)``, a push's answer (it asked for the patch back, ``peek``)
        or a general step's (``OP_SNAP_MOVE`` ``peek`` or ``next``). False when that
        request failed (the general step raises its error)."""
        if pre is None or len(pre) != 2 or pre[0] != to:
            return True
        r = answer_of(pre[1])
        if r is None:
            return False
        if r[:1] != b"{" and r[0]:  # (a push's JSON position: no patch back; asked for)
            self.stacks[to].append(_loads(memoryview(r)[_CS:]))
        return True


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
    #: Direction → (op, params, params prefix) of the request a fresh step sends: its move,
    #: which answers the next step's snapshot.
    nexts = {to: (op, hist._params(("next", to), '"snapshot":false,"next":true'))
             for to, op in (("undo", L.OP_SNAP_UNDO), ("redo", L.OP_SNAP_REDO))}
    nexts = {to: (op, prefix[_PLB:], prefix) for to, (op, prefix) in nexts.items()}
    #: Direction → (op, params) of the request asking what a fresh prefetch holds.
    ask = {to: (L.OP_SNAP_GET, hist._params(("get", offset), f'"offset":{offset}')[_PLB:])
           for to, offset in (("undo", -1), ("redo", 1))}
    #: Direction → the params of an ``OP_SNAP_AHEAD`` but for the value of ``by`` and "}".
    ahead_head = {to: hist._params(("ahead", to), f'"to":"{to}","count":{AHEAD_STEPS},"by":')
                  [_PLB:-1] for to in ("undo", "redo")}

    post = plain_post(sender)  # (None: nothing written, the general path then)

    def send_next(to) -> Any:
        """The handle of the request for the next fresh step's answer (``nexts[to]``),
        written by ``post``, else by the general ``History._post``."""
        op, params, prefix = nexts[to]
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
            if type(hist._prefetch_move) is Ahead:
                hist._tell_moves()  # the steps taken, before the push that follows them
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
        """``undo``/``redo``: fresh from its prefetched answer, asked for now by the first
        step of a run; ``into=`` from the patches held ahead (module doc)."""
        if encoding is not None or raw:
            return general(hist, encoding=encoding, raw=raw, into=into)
        with lock:
            if (hist._queued or hist._epoch != client._epoch or hist._sender is not sender
                    or receiver.dead is not None or receiver.closed
                    or len(hist._pending) >= max_pipelined
                    or (into is not None and (type(into) is not dict or hist._synced is None
                                              or hist._shared
                                              or not matches(hist._synced, into)))):
                return general(hist, into=into)
            if into is not None:
                return step_into(to, into, general)
            if type(hist._prefetch_move) is Ahead:
                hist._tell_moves()  # the steps taken into the live state, before this one
            pre = hist._prefetch
            if pre is None or pre[0] != to:
                # The first step of a run: ask for the snapshot it makes current (nothing
                # moves), then go on as a prefetched step. One round trip, which also
                # answers the pushes before it (their errors are raised before anything
                # moves, as a flush would).
                h = post(*ask[to], b"", True)
                if h is None:
                    return general(hist)
                hist._unwoken = False  # (the post ran [W5]-[W6])
                pre = (to, h)
            r = answer_of(pre[1])
            if r is None or r[:1] == b"{":
                return general(hist)  # the general step raises or copes
            hist._prefetch = None
            hist._prefetch_move = None
            hist._moved = True
            if not settled():
                general_reap(hist)  # a failed `next`: raised once, as _step does
            if not r[0]:
                return None  # nothing there: the worker's move would not move either
            nxt = send_next(to)
            hist._pending.append((nxt, None, None))
            hist._prefetch = (to, nxt)
            hist._count_move(_BY[to])
            hist._synced = None  # (as _snapshot_of: no fingerprint of a fresh snapshot)
            return _decode(r[1], r)

    def answer_of(h) -> bytes | None:
        """The answer of ``h`` (a request of ours in flight): read with the answers before
        it, waited for as ``History._answer`` waits; None when it failed (the general step
        then raises or copes)."""
        if h._state is _PENDING:
            if q[resp_tail] != consumer.head:
                drain(max_pipelined)  # what one load of the tail shows (ours among it)
            if h._state is _PENDING:
                try:
                    hist._answer(h)  # parks until it is in
                except Exception:  # noqa: BLE001 - the general step raises it, as it says
                    return None
        if h._state is not _FINISHED or h._exception is not None:
            return None
        return h._result

    def step_into(to, into, general):
        """An ``into=`` step from the patches held ahead (``Ahead``; module doc): the next
        one popped, else those of the refill in flight, else asked for now (one round
        trip, which also tells the worker the steps taken); applied, keeping the operations
        that undo it on the other way's stack; a refill asked for when few are left."""
        a = hist._prefetch_move
        if type(a) is not Ahead:
            a = Ahead(hist._pos)
            if not a.take_prefetched(hist._prefetch_move, to, answer_of):
                return general(hist, into=into)
            hist._prefetch_move = a
        stack = a.stacks[to]
        if not stack and a.refill is not None and a.refill[0] == to:
            _, h, at = a.refill
            a.refill = None
            a.fill(to, patches_of(answer_of(h)), at)
        if not stack and a.end[to] == a.at:
            if not settled():
                general_reap(hist)  # (an earlier request's error first, as a flush would)
            return None  # the end of the history that way: nothing moves
        if not stack:
            patches = patches_of(answer_of(ask_ahead(a, to)))
            if not patches:  # the end of the history, an opaque snapshot, or an error
                return general(hist, into=into)
            a.fill(to, patches, a.at)
        hist._prefetch = None
        hist._moved = True
        if not settled():
            general_reap(hist)  # a failed refill or tell: raised once, as _move_into does
        touched: set = set()
        back: list = []
        applied = apply_ops(into, stack.pop(), touched, back)
        a.at += _BY[to]
        other = a.stacks[_OTHER_WAY[to]]
        if None in back:
            other.clear()  # (the step back must come from the worker)
        else:
            other.append(back)
        hist._count_move(_BY[to])
        if a.wants_refill(to):
            a.refill = (to, ask_ahead(a, to), a.at)
        if None in touched:
            hist._synced = _fingerprint(into)
        else:  # only the keys the patch reached changed (the rest passed `matches`)
            refresh(hist._synced, into, touched)
        return applied

    def ask_ahead(a, to: str) -> Any:
        """The handle of an ``OP_SNAP_AHEAD`` telling the steps taken since the last one
        (``Ahead.told``) and asking for the patches of the next ``AHEAD_STEPS`` steps the
        way ``to`` goes; in ``hist._pending``, so its error is raised by a later call."""
        params = ahead_head[to] + b"%d}" % (a.at - a.told)
        h = post(_OP_AHEAD, params, b"", True)
        if h is None:
            h, = hist._post(((_OP_AHEAD, params_prefix(params), b""),))
        hist._pending.append((h, None, None))
        a.told = a.at
        return h

    undo = partial(step, "undo", general_undo)  # (no Python frame of its own)
    redo = partial(step, "redo", general_redo)

    general_reap = cls._reap_locked
    sent_push = hist._sent_push
    push.__doc__ = general_push.__doc__
    undo.__doc__ = general_undo.__doc__
    redo.__doc__ = general_redo.__doc__
    return push, undo, redo
