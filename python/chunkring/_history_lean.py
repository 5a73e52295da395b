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
  read only when the response ring shows something (one load of its tail), at most
  ``READ_PER_PUSH`` a push, as ``_lean.py`` reads its answer (``take_plain``; anything but plain answers of pending
  requests by ``Receiver.drain``); a failed one is raised by ``History._reap`` (naming the
  push) after this push is out.
- ``undo``/``redo`` (fresh, or ``into=state``): the answer the step before asked for
  (``_prefetch``/``_prefetch_move``), or, for the first step of a run, one asked for now
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

from . import _layout as L
from ._barrier import NEED_RW_FENCES, barrier_memory, barrier_read, barrier_write
from ._futex import futex_wake
from ._handle import _FINISHED, _PENDING
from ._lean import _ANSWER_FIELDS, _extent
from ._lean_submit import plain_post
from ._live_state import _fingerprint, apply_ops, matches, refresh
from ._snapshot_wire import _CURSOR, _decode, fields_body, json_text

_MAGIC = L.FRAME_MAGIC
_HB = L.FRAME_HEADER_BYTES
_PLB = L.PARAMS_LEN_BYTES
_PARKED = L.PARKED
_PARKED_FOR_ROOM = L.PARKED_FOR_ROOM
_AWAKE = L.AWAKE
_MASK64 = (1 << 64) - 1
_OP_PUSH = L.OP_SNAP_PUSH
_OP_FIELDS = L.OP_SNAP_PUSH_FIELDS
_OP_MOVE = L.OP_SNAP_MOVE
_CS = _CURSOR.size
_dumps = marshal.dumps
_loads = marshal.loads
#: Answers a push reads at most (``take_plain``). A worker that runs behind answers in
#: bursts; reading a burst of 40-80 at one push made that push the run's wall p99 (measured:
#: 76-160 µs against a p50 of 12-35 µs), while 8 a push still catches up 8 times faster than
#: pushes come.
READ_PER_PUSH = 8


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
    table = sender._pending
    drain = receiver.drain
    consumer = receiver._consumer
    reassembler = receiver._reassembler
    racquire, rrelease = receiver._lock.acquire, receiver._lock.release
    mm = consumer.mm
    resp_tail, resp_head = consumer.tail_word, consumer.head_word
    resp_chunks, resp_mask, resp_cb, resp_base = _extent(consumer)
    unpack_answer = _ANSWER_FIELDS.unpack_from
    lock = hist._lock
    q = producer.q
    words = producer._futex_words
    peer = producer._peer_word
    peer_futex = producer._peer_futex
    fence = barrier_memory
    push_head = hist._push_head
    next_params = {to: hist._params(("next", to), '"snapshot":false,"next":true')[_PLB:]
                   for to in ("undo", "redo")}
    next_ops = {"undo": L.OP_SNAP_UNDO, "redo": L.OP_SNAP_REDO}
    move_params = {to: hist._move_params(to, ',"next":true')[_PLB:] for to in ("undo", "redo")}
    #: (fresh, direction) → (op, params) of the request asking what a prefetch holds.
    ask = {(False, to): (_OP_MOVE, hist._move_params(to, ',"peek":true')[_PLB:])
           for to in ("undo", "redo")}
    ask.update({(True, to): (L.OP_SNAP_GET, hist._params(
        ("get", offset), f'"offset":{offset}')[_PLB:]) for to, offset in (("undo", -1), ("redo", 1))})

    post = plain_post(sender)  # (None: nothing written, the general path then)

    def take_plain(limit: int) -> None:
        """Reads the answers the response ring shows into their pending handles, as
        ``Receiver.drain`` would: the run of plain frames at the head (one frame each, no
        flags, a pending handle nobody watches; at most ``limit`` of them) read here, as
        ``_lean.py`` reads its answer ([R5], the copy out, [R6], [W5]-[W6] for room); a frame
        that is not one, and the rest after it, by ``drain`` itself. Without waiting: the
        receiver's lock only when free."""
        if reassembler.open is not None or not racquire(False):
            return drain()
        count = 0
        end = -1  # where the run ended at a frame that is not plain: drain reads from there
        try:
            head = consumer.head
            rtail = q[resp_tail]
            if NEED_RW_FENCES:
                barrier_read()  # [R5] the tail (above), then the frames it publishes
            if rtail == head or receiver.closed:
                pass  # nothing to read (or closed since: the mapping may be gone)
            elif not head < rtail <= head + resp_chunks or reassembler.open is not None:
                end = head  # (a bad tail: drain raises the ProtocolError)
            else:
                while head != rtail and count < limit:
                    ridx = head & resp_mask
                    o = resp_base + ridx * resp_cb
                    magic, flags, frid, rlen, fidx = unpack_answer(mm, o)
                    rn = (_HB + rlen + resp_cb - 1) // resp_cb
                    h = table.get(frid)
                    if (flags or fidx or magic != _MAGIC or ridx + rn > resp_chunks
                            or head + rn > rtail or h is None or h._cond is not None):
                        end = head
                        break
                    del table[frid]
                    h._result = mm[o + _HB : o + _HB + rlen]  # the copy out, before [R6]
                    h._state = _FINISHED  # last, as Receiver._resolve
                    head += rn
                    count += 1
                if count:
                    consumer.head = consumer.released = head
                    consumer.cached_tail = rtail
                    if NEED_RW_FENCES:
                        barrier_write()  # [R6] the copy-outs before the head store
                    q[resp_head] = head  # [R6] release; pairs with [R1] in the worker
                    fence()  # [W5] StoreLoad: the head store before the load below
                    if words[peer] & _PARKED_FOR_ROOM:  # [W6] pairs with the worker's [W2]
                        words[peer] = _AWAKE
                        futex_wake(peer_futex, 1)
        finally:
            rrelease()
        if count and receiver._parked:
            receiver.wake_parked()  # another thread may wait for one of them (as drain)
        if end >= 0:
            drain()  # not plain (or not ours): the general read, which knows what to do

    def answered() -> bool:
        """Reads the answers in when the response ring shows any; False when an answered
        request at the front of ``hist._pending`` failed (``hist._reap`` raises it), after
        dropping the answered ones before it."""
        if q[resp_tail] != consumer.head:
            take_plain(READ_PER_PUSH)
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
            h = post(op, params, body, False)
            if h is None:
                return general_push(hist, snapshot, label, changed=changed)
            sent_push(h, label, snapshot, keys)
            if not answered():
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
                                              or not matches(hist._synced, into)))):
                return general(hist, into=into)
            if pre is None or pre[0] != to:
                # The first step of a run: ask for what a prefetch holds (the next move's
                # patch, or the snapshot it makes current: nothing moves), then go on as a
                # prefetched step. One round trip, which also answers the pushes before it
                # (their errors are raised before anything moves, as a flush would).
                h = post(*ask[into is None, to], b"", True)
                if h is None:
                    return general(hist, into=into)
                hist._unwoken = False  # (the post ran [W5]-[W6])
                pre = (to, h)
            h = pre[1]
            if h._state is _PENDING:
                if q[resp_tail] != consumer.head:
                    take_plain(max_pipelined + 1)  # up to this step's answer, at most
                if h._state is _PENDING:
                    try:
                        hist._answer(h)  # parks until it is in
                    except Exception:  # noqa: BLE001 - the general step raises it, as it says
                        return general(hist, into=into)
            if h._state is not _FINISHED or h._exception is not None:
                return general(hist, into=into)  # the general step raises or copes
            r = h._result
            hist._prefetch = hist._prefetch_move = None
            hist._moved = True
            if not answered():
                general_reap(hist)  # a failed `next`: raised once, as _step/_move_into do
            if into is None:
                if not r[0]:
                    return None  # nothing there: the worker's move would not move either
                nxt = post(next_ops[to], next_params[to], b"", True)
                if nxt is None:
                    nxt, = hist._post(((next_ops[to], hist._params(
                        ("next", to), '"snapshot":false,"next":true'), b""),))
                hist._pending.append((nxt, None, None))
                hist._prefetch = (to, nxt)
                hist._synced = None  # (as _snapshot_of: no fingerprint of a fresh snapshot)
                return _decode(r[1], r)
            if len(r) == _CS:
                return None  # no patch: this move would not move
            nxt = post(_OP_MOVE, move_params[to], b"", True)
            if nxt is None:
                nxt, = hist._post(((_OP_MOVE, hist._move_params(to, ',"next":true'), b""),))
            hist._pending.append((nxt, None, None))  # its error: raised by the next call
            hist._prefetch_move = (to, nxt)
            touched: set = set()
            applied = apply_ops(into, _loads(memoryview(r)[_CS:]), touched)  # apply_compact
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
