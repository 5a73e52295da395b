"""The lean ``submit``: one request published and its :class:`~chunkring._handle.Handle`
returned with the fewest Python operations (a pipelining loop pays this per request).

``Client.submit`` is :func:`lean_submit`'s closure itself (one Python call per request). The
common case — ``op`` an int op code, ``body`` bytes that fit one frame, no params, no
timeout, the sender's lock free, the frame fitting before the ring's end in the room the
cached head shows — is written here in one function: the handle registered as pending
before the publish (an answer must find it), header and ``params_len`` packed straight into
the mapping and the body copied after them ([R2]), one tail store ([R4]), and the wake
check [W5]-[W6] (its fence stays: ``submit`` returns at once, so nothing later is bound to
run a deferred check; layout.md §11). Everything else is :meth:`Sender.submit`, which
checks, waits for the lock and for room, writes fragments and raises what it raises.

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


def lean_submit(sender):
    """``submit(op, body=b"", params=None, *, timeout=None)``: :meth:`Sender.submit`, with
    its common case written out (module doc)."""
    general = sender.submit
    producer = sender.producer
    if producer.crc:
        return general  # checksummed frames are written by the producer alone (§6.6)
    receiver = sender._receiver
    pending = sender._pending
    lock = sender._lock
    acquire, release = lock.acquire, lock.release
    view = producer.view
    q = producer.q
    tail_word = producer.tail_word
    words = producer._futex_words
    peer = producer._peer_word
    peer_futex = producer._peer_futex
    chunks, mask, cb, base = producer.chunks, producer.mask, producer.chunk_bytes, producer.base
    max_payload = producer.max_frame_payload
    pack = PLAIN_REQUEST_HEAD.pack_into
    fence = barrier_memory

    def submit(op, body=b"", params=None, *, timeout=None):
        plen = _PLB + len(body) if type(body) is bytes else max_payload + 1
        if (params is not None or timeout is not None or plen > max_payload
                or type(op) is not int or not 0 <= op <= 0xFFFF or not acquire(False)):
            # (a lock another thread holds: Sender.submit waits for it as this thread's
            # `limit_waits` allows, raising WouldWait under NO_WAIT: aio's loop thread)
            return general(op, body, params, timeout=timeout)
        try:
            tail = producer.tail
            idx = tail & mask
            n = (_HB + plen + cb - 1) // cb
            # Closed or dead is looked at under the lock, as Sender.submit does: a close
            # between a look before it and the lock would leave a handle it cannot fail and
            # a write into the unmapped region; the general way raises it.
            if (receiver.closed or receiver.dead is not None
                    or idx + n > chunks or chunks - (tail - producer.cached_head) < n):
                h = None  # closed, padding or a fresh look at the head first: the general way
            else:
                rid = sender.next_id
                sender.next_id = (rid + 1) & _MASK64 or 1  # following_id
                h = pending[rid] = Handle(receiver, rid, op)
                off = base + idx * cb
                # [R2] header and params_len in one pack, then the body.
                pack(view, off, _MAGIC, op, rid, plen, plen, 0)
                view[off + _HB + _PLB : off + _HB + plen] = body
                tail += n
                producer.tail = producer.published = tail
                if NEED_RW_FENCES:
                    barrier_write()  # [R3] the frame bytes before the tail store
                q[tail_word] = tail  # [R4] publish; pairs with [R5] in the worker
                fence()  # [W5] StoreLoad: the tail store before the load below
                if words[peer] & _PARKED:  # [W6] pairs with the worker's [W2]
                    words[peer] = _AWAKE
                    futex_wake(peer_futex, 1)
                    sender.worker_woken = True
                else:
                    sender.worker_woken = False
        except ProtocolError as exc:  # (no cost unless raised) a truncated region?
            raise receiver.explain(exc) from None
        finally:
            release()
        return general(op, body, params, timeout=timeout) if h is None else h

    return submit
