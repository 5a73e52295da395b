"""The lean ``submit``: one request published and its :class:`~chunkring._handle.Handle`
returned with the fewest Python operations (a pipelining loop pays this per request).

``Client.submit`` is :func:`lean_submit`'s closure. Its common case — ``op`` an int op
code, ``body`` bytes that fit one frame, no params, no timeout, the sender's lock free, the
frame fitting before the ring's end in the room the cached head shows — is written by
:func:`plain_post`'s closure, in one function: the handle registered as pending before the
publish (an answer must find it), header and ``params_len`` packed straight into the
mapping and the params and body copied after them ([R2]), one tail store ([R4]), and the
wake check [W5]-[W6] (its fence stays: ``submit`` returns at once, so nothing later is bound
to run a deferred check; layout.md §11). The lean history steps (``_history_lean.py``)
write their requests through the same closure. Everything else is :meth:`Sender.submit`,
which checks, waits for the lock and for room, writes fragments and raises what it raises.

Threads: the sender's lock is taken only when free (``acquire(False)``); when another
thread holds it, :meth:`Sender.submit` waits for it as this thread's ``limit_waits``
allows (``WouldWait`` under ``NO_WAIT``, aio's loop thread). A plain ``acquire()`` after
``locked()`` would wait, unbounded, for a thread that takes the lock in between.
"""

from __future__ import annotations

from . import _layout as L
from ._barrier import NEED_RW_FENCES, barrier_memory, barrier_write
from ._futex import futex_wake
from ._handle import Handle
from ._ring import PLAIN_REQUEST_HEAD
from .errors import ProtocolError

_MAGIC = L.FRAME_MAGIC
_HB = L.FRAME_HEADER_BYTES
_PLB = L.PARAMS_LEN_BYTES
_PARKED = L.PARKED
_AWAKE = L.AWAKE
_MASK64 = (1 << 64) - 1


def plain_post(sender):
    """``post(op, params, body, wake)``: one plain request (``params``: its JSON text,
    ``b""`` for none; ``body`` bytes) written straight into the mapping and published, as the
    module doc describes; its :class:`Handle`, or None when nothing was written and the
    caller must take its general path (too large for one frame, the sender's lock held by
    another thread, closed, dead, padding needed, or room to look for). ``wake``: run the
    wake check [W5]-[W6] after the tail store (a request whose answer is wanted soon);
    without it the worker finds the request at its next poll or wake-up (a push,
    layout.md §9.3 "Pushes need no wake"). The lean ``submit`` and the lean history steps
    (``_history_lean.py``) write through it."""
    producer = sender.producer
    receiver = sender._receiver
    pending = sender._pending
    acquire, release = sender._lock.acquire, sender._lock.release
    view = producer.view
    q = producer.q
    tail_word = producer.tail_word
    words = producer._futex_words
    peer = producer._peer_word
    peer_futex = producer._peer_futex
    chunks, mask, cb, base = producer.extent()
    max_payload = producer.max_frame_payload
    pack = PLAIN_REQUEST_HEAD.pack_into
    fence = barrier_memory

    def post(op, params, body, wake):
        plen = _PLB + len(params) + len(body)
        if plen > max_payload or not acquire(False):
            # (a lock another thread holds: the general way waits for it as this thread's
            # `limit_waits` allows, raising WouldWait under NO_WAIT: aio's loop thread)
            return None
        try:
            tail = producer.tail
            idx = tail & mask
            n = (_HB + plen + cb - 1) // cb
            # Closed or dead is looked at under the lock, as Sender.submit does: a close
            # between a look before it and the lock would leave a handle it cannot fail and
            # a write into the unmapped region; the general way raises it.
            if (receiver.closed or receiver.dead is not None
                    or idx + n > chunks or chunks - (tail - producer.cached_head) < n):
                return None  # closed, padding or a fresh look at the head first
            rid = sender.next_id
            sender.next_id = (rid + 1) & _MASK64 or 1  # following_id
            h = pending[rid] = Handle(receiver, rid, op)  # before the publish: the answer finds it
            off = base + idx * cb
            # [R2] header and params_len in one pack, then the params and the body.
            pack(view, off, _MAGIC, op, rid, plen, plen, len(params))
            off += _HB + _PLB
            if params:
                view[off : off + len(params)] = params
                off += len(params)
            view[off : off + len(body)] = body
            tail += n
            producer.tail = producer.published = tail
            if NEED_RW_FENCES:
                barrier_write()  # [R3] the frame bytes before the tail store
            q[tail_word] = tail  # [R4] publish; pairs with [R5] in the worker
            if wake:
                fence()  # [W5] StoreLoad: the tail store before the load below
                if words[peer] & _PARKED:  # [W6] pairs with the worker's [W2]
                    words[peer] = _AWAKE
                    futex_wake(peer_futex, 1)
                    sender.worker_woken = True
                else:
                    sender.worker_woken = False
            return h
        except ProtocolError as exc:  # (no cost unless raised) a truncated region?
            raise receiver.explain(exc) from None
        finally:
            release()

    return post


def lean_submit(sender):
    """``submit(op, body=b"", params=None, *, timeout=None)``: :meth:`Sender.submit`, with
    its common case written by :func:`plain_post` (module doc)."""
    general = sender.submit
    if sender.producer.crc:
        return general  # checksummed frames are written by the producer alone (§6.6)
    post = plain_post(sender)

    def submit(op, body=b"", params=None, *, timeout=None):
        if (params is None and timeout is None and type(body) is bytes
                and type(op) is int and 0 <= op <= 0xFFFF):
            h = post(op, b"", body, True)
            if h is not None:
                return h
        return general(op, body, params, timeout=timeout)

    return submit
