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
  ``WAKE_PENDING`` unanswered ones (``History._sent_push``). Earlier requests' answers are
  read before the push is written (so never its own), only when the response ring shows
  something (one load of its tail), at most ``READ_PER_PUSH`` a push, without copying their
  payloads, which this push replaces (``_answer_skim.py``); a failed one is raised by
  ``History._reap`` (naming the push) after this push is out.
- ``undo``/``redo`` (fresh) and ``undo(into=state)``/``redo(into=state)`` hold what the next
  steps need (:class:`Ahead`, ``History._prefetch_move``; layout.md §9.3 "Steps ahead"): for
  each way, the snapshots (fresh) or the patches (``into=``) of the next steps, from an
  ``OP_SNAP_AHEAD`` (16 at a time, ``snapshots`` for the fresh ones, whose run asks for 1,
  then 2, 4, 8, 16 when it steps fast, else 16; fewer past 256 KiB), from an answer already
  in flight (a push's patch back, ``peek``; a general step's prefetch), or kept by the step
  the other way (a fresh step keeps the snapshot it leaves; an ``into=`` step the operations
  that undo it, when every value they put back is immutable or a small list or dict,
  copied). A step pops the next one and decodes it into a new object (fresh), or applies it
  after the fingerprint check (``matches``) and refreshes the fingerprint for the keys it
  reached (``into=``). It sends nothing while more than 16 are held, nor while a refill is
  in flight the way it goes. Else a step (not the one that read a refill) asks for the next
  items when 4 or fewer are held, or when those held would last less than 1 ms at the pace
  of the steps (back to back; a refill asked for the other way is dropped), read when those
  held run out; with none held and none coming a step asks and waits (the first step of a
  run). The steps themselves reach the worker with those requests (``by``), or, told by
  ``History._tell_moves``, before any other request of the history (``_locked``, the lean
  push, a run of the other kind) and when the client closes: until then the worker's cursor
  lags the live state's position.

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
from time import monotonic as _monotonic
from time import time as _time
from typing import Any

from . import _layout as L
from ._answer_skim import skim_answers
from ._handle import _FINISHED, _PENDING
from ._lean_submit import plain_post
from ._live_state import _fingerprint, apply_ops, matches, refresh
from ._payload import decode_list
from ._snapshot_wire import _CURSOR, _decode, fields_body, json_text, params_prefix
from ._unencodable import explain

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


#: Steps whose patches (or snapshots) one ``OP_SNAP_AHEAD`` asks for (layout.md §9.3
#: "Steps ahead"), and the most a step asks for more while it holds.
AHEAD_STEPS = 16
#: A step that leaves this few held asks for the next ones (read when those run out).
AHEAD_LOW = 4
#: Seconds ahead a refill is asked for: a step that leaves more than ``AHEAD_LOW`` held (and
#: at most ``AHEAD_STEPS``) asks when, at the pace of the steps since the last ask, those
#: held last less than this. The worker makes 16 patches in about 50 µs and 16 snapshots of
#: 10 KB in 0.25 ms here (5 of 50 KB, ``AHEAD_MAX_BYTES``, in 0.35 ms): steps back to back
#: then never wait for a refill, while a GUI's steps (16 ms apart) ask at ``AHEAD_LOW``
#: (each request costs a worker awake for its poll window).
AHEAD_LEAD = 0.001
#: Snapshots the first ``OP_SNAP_AHEAD`` of a fresh run asks for; each later one asks for twice
#: as many, up to ``AHEAD_STEPS``, or at once for ``AHEAD_STEPS`` when the steps since the last
#: came ``AHEAD_LEAD`` or more apart, or the run began ``AHEAD_LEAD`` or more after the
#: history's last call (a GUI's undo: measured, a run of 4 undos at 60 Hz otherwise asked in
#: 3 of its 4 steps). The worker encodes each whole snapshot (15-70 µs at 10-50
#: KB here), so a first ask for 16 kept the first step waiting 0.5-0.9 ms; patches are a few
#: µs each, and an ``into=`` run asks for 16 from the start.
FRESH_FIRST = 1


def items_of(answer: bytes) -> list:
    """The items of an ``OP_SNAP_AHEAD`` answer in the order the steps come: patches (each
    a list of compact operations) or, with ``snapshots``, snapshots (each in the
    cursor-response shape)."""
    if not answer[0]:
        return []
    if answer[1] != 2:  # (the snapshots form: a list encoding)
        return decode_list(memoryview(answer)[_CS:])
    return _loads(memoryview(answer)[_CS:])


def snapshot_of(item: Any) -> Any:
    """The snapshot in ``item``, an ``OP_SNAP_GET``-shaped answer (a memoryview into an
    ``OP_SNAP_AHEAD`` answer): marshal read in place."""
    if item[1] == 2:
        return _loads(item[_CS:])
    return _decode(item[1], bytes(item))


class Ahead:
    """What a run of steps holds (``History._prefetch_move`` then; module doc): for each
    way, the patches (``into=``) or snapshots (fresh) of the next steps from the live
    position (next one last), the position (``at``: steps from where this run began, -1 an
    undo) and where the worker's cursor is (``told``: the position the requests sent so far
    leave it at), the refill in flight, ``(direction, handle, position when asked, items
    held then)``, and the history's ends. Steps between ``told`` and ``at`` are told with the
    next ``OP_SNAP_AHEAD`` (``History._tell_moves`` before any other request of the
    history)."""

    __slots__ = ("fresh", "stacks", "at", "told", "refill", "end", "here", "count", "asked",
                 "asked_at", "ramp")

    def __init__(self, pos: tuple | None, fresh: bool = False, ramp: bool = True) -> None:
        #: What the stacks hold: snapshots (fresh steps; each item an ``OP_SNAP_GET``-shaped
        #: answer) or patches (``into=`` steps).
        self.fresh = fresh
        #: A fresh run's answer for the live position, when it came from this run.
        self.here: Any = None
        self.stacks: dict[str, list] = {"undo": [], "redo": []}
        self.at = self.told = 0
        #: Steps the next ``OP_SNAP_AHEAD`` asks for (``FRESH_FIRST`` doubling, for snapshots),
        #: when the last was asked (``time.monotonic``; at first when the run began) and the
        #: position then (None before the first).
        self.count = FRESH_FIRST if fresh else AHEAD_STEPS
        self.asked = _monotonic()
        self.asked_at: int | None = None
        #: False for a run that began apart from the history's last call (a GUI's first
        #: step): after its first ask it asks for ``AHEAD_STEPS`` at once.
        self.ramp = ramp
        #: The refill in flight; False right after a step read one (the next step asks).
        self.refill: tuple | bool | None = None
        #: For each way, the position past which the history has no step, or None while
        #: unknown: from ``pos`` (``History._pos``, the cursor and length), then from each
        #: ``OP_SNAP_AHEAD`` answer's header.
        self.end: dict[str, int | None] = {"undo": None, "redo": None}
        if pos is not None and pos[0] is not None:
            self.end = {"undo": -pos[0], "redo": pos[1] - 1 - pos[0]}

    def fill(self, to: str, answer: bytes | None, at: int, held: int) -> None:
        """The ``to``-way stack (empty) from ``answer``, an ``OP_SNAP_AHEAD``'s asked for
        at position ``at`` while ``held`` items were held (its first item is the step after
        them; None: it failed): its items from the live state's position on, when that is
        on their way (positions are those of one linear history: pushes drop the whole
        ``Ahead``). Its header's cursor and length give both ends."""
        if answer is None:
            return
        _, _, _, cursor, length = _CURSOR.unpack_from(answer)
        if cursor < length:
            self.end = {"undo": at - cursor, "redo": at + length - 1 - cursor}
        items = items_of(answer)
        way = _BY[to]
        skip = (self.at - at) * way - held  # items the live position is past already
        if 0 <= skip < len(items):
            self.stacks[to][:] = items[:skip - 1 if skip else None:-1]

    def wants_refill(self, to: str) -> bool:
        """None asked for ``to``-wards, the history goes on past the items held, and those
        are ``AHEAD_LOW`` or fewer, or at most ``AHEAD_STEPS`` and last less than
        ``AHEAD_LEAD`` at the pace of the steps since the last ask. A refill asked for the
        other way is left unread then (its answer is read and dropped with the history's
        other answers): a run of redos after a run of undos would otherwise ask and wait
        every ``AHEAD_STEPS`` steps."""
        refill = self.refill
        if refill is not None and (refill is False or refill[0] == to):
            return False
        held = len(self.stacks[to])
        if held > AHEAD_STEPS or self.end[to] == self.at + _BY[to] * held:
            return False
        return held <= AHEAD_LOW or self.pace() * held < AHEAD_LEAD

    def pace(self) -> float:
        """Seconds per step since the last ask."""
        return (_monotonic() - self.asked) / (abs(self.at - (self.asked_at or 0)) or 1)

    def take_prefetched(self, pre: Any, to: str, answer_of) -> bool:
        """Starts from the answer of the next step ``to``-wards when one is in flight:
        ``pre`` ``(to, handle)``: for patches a push's answer (it asked for the patch back,
        ``peek``) or a general step's (``OP_SNAP_MOVE`` ``peek`` or ``next``), for
        snapshots a general step's prefetch (``OP_SNAP_GET`` ``offset`` or a ``next``).
        False when that request failed (the general step raises its error)."""
        if pre is None or len(pre) != 2 or pre[0] != to:
            return True
        r = answer_of(pre[1])
        if r is None:
            return False
        if r[:1] != b"{" and r[0]:  # (a push's JSON position: no patch back; asked for)
            self.stacks[to].append(memoryview(r) if self.fresh else _loads(memoryview(r)[_CS:]))
        return True


def lean_steps(hist, max_pipelined: int):
    """``(push, undo, redo, ask_ahead)`` for ``hist`` over its current sender (module doc;
    ``ask_ahead(a)`` tells the steps an :class:`Ahead` took), or None when the sender writes
    checksummed frames (the producer alone writes those; no ``Ahead`` is made then)."""
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
    #: (fresh, direction) → the params of an ``OP_SNAP_AHEAD`` up to ``count``'s value.
    ahead_head = {(fresh, to): hist._params(
        ("ahead", fresh, to), f'"to":"{to}",{extra}"count":')[_PLB:-1]
        for to in ("undo", "redo") for fresh, extra in ((False, ""), (True, '"snapshots":true,'))}

    #: The params of an ``OP_SNAP_AHEAD`` that only tells steps, but for ``by``'s value and "}".
    tell_head = hist._params("tell", '"by":')[_PLB:-1]

    post = plain_post(sender)  # (None: nothing written, the general path then)
    skim = skim_answers(receiver, lambda: hist._pending)

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
            hist._called_at = now = _time()
            if changed is None:
                op, keys = _OP_PUSH, None
                try:  # (inline, not _unencodable.dumps: one call less on a GUI's every push)
                    body = _dumps(snapshot, 4)
                except ValueError as exc:
                    raise explain([([], snapshot)], exc) from None
                params = push_head + b"%.6f" % now
            else:
                op = _OP_FIELDS
                body, tail, keys = fields_body(snapshot, changed)  # may raise: nothing sent
                params = push_head + b"%.6f" % now + tail.encode()
            if label is not None:
                params += b',"label":' + json_text(label).encode()
            params += b"}"
            # Earlier requests' answers, read before this push is written: its own answer,
            # which a worker awake could write at once, is then never read (and its error
            # raised) by this push itself, only by the next call. This push replaces what
            # their payloads held (a patch back, steps ahead): skimmed, not copied.
            if q[resp_tail] != consumer.head:
                skim(READ_PER_PUSH)
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
            return step_fresh(to, general)

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
        if type(a) is not Ahead or a.fresh:  # (a run's later steps: no call)
            a = run_of(False, to)
            if a is None:
                return general(hist, into=into)
        ops = next_held(a, to)
        if ops is None:
            return None  # the end of the history that way: nothing moves
        if ops is False:
            return general(hist, into=into)  # (an opaque snapshot, or an error)
        touched: set = set()
        back: list = []
        applied = apply_ops(into, ops, touched, back)
        other = a.stacks[_OTHER_WAY[to]]
        if None in back:
            other.clear()  # (the step back must come from the worker)
        else:
            other.append(back)
        moved(a, to)
        if None in touched:
            hist._synced = _fingerprint(into)
        else:  # only the keys the patch reached changed (the rest passed `matches`)
            refresh(hist._synced, into, touched)
        return applied

    def step_fresh(to, general):
        """A fresh step from the snapshots held ahead (``Ahead`` with ``fresh``): the next
        one popped (else as an ``into=`` step gets its patch), the one it leaves kept for a
        step back; decoded into a new object, the caller's."""
        a = hist._prefetch_move
        if type(a) is not Ahead or not a.fresh:  # (a run's later steps: no call)
            a = run_of(True, to)
            if a is None:
                return general(hist)
        item = next_held(a, to)
        if item is None:
            return None  # the end of the history that way: nothing moves
        if item is False:
            return general(hist)  # (an opaque snapshot, or an error: the general step's)
        other = a.stacks[_OTHER_WAY[to]]
        if a.here is None:
            other.clear()  # (the step back must come from the worker)
        else:
            other.append(a.here)
        a.here = item
        moved(a, to)
        hist._synced = None  # (as _snapshot_of: no fingerprint of a fresh snapshot)
        return snapshot_of(item)

    def run_of(fresh: bool, to: str) -> Ahead | None:
        """The :class:`Ahead` of this run of fresh or ``into=`` steps: the one held, or a new
        one (after telling the steps of a run of the other kind) started from the answer in
        flight for a step ``to``-wards, if any: a fresh step's prefetch, or an ``into=``
        step's (a push's patch back, a general step's peek). None when that answer failed
        (the general step raises its error)."""
        a = hist._prefetch_move
        if type(a) is Ahead:
            if a.fresh == fresh:
                return a
            hist._tell_moves()  # (the other run's steps, before this run's requests)
            a = None
        run = Ahead(hist._pos, fresh, _time() - hist._called_at < AHEAD_LEAD)
        if not run.take_prefetched(hist._prefetch if fresh else a, to, answer_of):
            return None
        hist._prefetch_move = run
        return run

    def next_held(a, to: str) -> Any:
        """The next item held ``to``-wards, popped (from the refill in flight, else asked for
        now when none is held); None at the end of the history that way, False when the
        worker gave none (the general step then raises or copes). Then the history's
        earlier requests settled (an error raised before anything moves)."""
        stack = a.stacks[to]
        if not stack and a.refill and a.refill[0] == to:
            _, h, at, held = a.refill
            a.refill = False  # (the next step asks for more: no step both reads and asks)
            a.fill(to, answer_of(h), at, held)
        if not stack and a.end[to] == a.at:
            if not settled():
                general_reap(hist)  # (an earlier request's error first, as a flush would)
            return None
        if not stack:
            a.fill(to, answer_of(ask_ahead(a, to, 0)), a.at, 0)
            if not stack:
                return False
        hist._prefetch = None
        hist._moved = True
        if not settled():
            general_reap(hist)  # a failed refill or tell: raised once, as _move_into does
        return stack.pop()

    def moved(a, to: str) -> None:
        """The bookkeeping of a step taken ``to``-wards: the position, and the next items
        asked for when few are left."""
        a.at += _BY[to]
        hist._count_move(_BY[to])
        if a.refill is False:
            a.refill = None
        elif a.wants_refill(to):
            held = len(a.stacks[to])
            a.refill = (to, ask_ahead(a, to, held), a.at, held)

    def ask_ahead(a, to: str | None = None, held: int = 0) -> Any:
        """The handle of an ``OP_SNAP_AHEAD`` telling the steps taken since the last one
        (``Ahead.told``) and asking for the items of ``a.count`` steps the way ``to``
        goes after the ``held`` ones held already (``to`` None: only telling, which is
        ``History._tell_moves``); in ``hist._pending``, so its error is raised by a later
        call."""
        by = a.at - a.told
        if to is None:
            params = tell_head + b"%d}" % by
        else:
            count = (a.count if a.asked_at is None or (a.ramp and a.pace() < AHEAD_LEAD)
                     else AHEAD_STEPS)
            a.count = min(2 * count, AHEAD_STEPS)
            a.asked, a.asked_at = _monotonic(), a.at
            params = ahead_head[a.fresh, to] + b'%d,"by":%d,"skip":%d}' % (count, by, held)
        h = post(_OP_AHEAD, params, b"", True)
        if h is None:
            h, = hist._post(((_OP_AHEAD, params_prefix(params), b""),))
        hist._unwoken = False  # (either post ran [W5]-[W6])
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
    return push, undo, redo, ask_ahead
