"""Reading answers nobody will look at: a history's earlier requests, checked and released
without copying their payloads.

A push is written after the answers already in for the history's earlier requests are read
(``_history_lean.py``): so an error of an earlier push is raised at this push, and the ring
gives its room back. Those answers' payloads are never used: each push's answer is the patch
back to the snapshot before it (layout.md §9.3 ``peek``), which the next push replaces, and
the steps held ahead (``OP_SNAP_AHEAD``) or a general step's prefetch are dropped by the
push too. Only their status matters. :func:`skim_answers` reads them as
:meth:`Receiver.drain <chunkring._receiver.Receiver.drain>` would, minus the copy and the
general machinery: one header read per answer, the handle completed with :data:`SKIMMED`
(a push's "no patch back" shape), one head store for all of them. Back to back this took a
10 KB path push from 12.5-13.4 to 9.6-10.2 µs (p50; the mean 13.0-13.9 to 9.9-10.2).
"""

from __future__ import annotations

import struct
from typing import Callable

from . import _layout as L
from ._barrier import NEED_RW_FENCES, barrier_read
from ._handle import _FINISHED

_MAGIC = L.FRAME_MAGIC
_HB = L.FRAME_HEADER_BYTES
#: The frame header's fields a skim checks (layout.md §6.1): magic, flags, status, request
#: id, payload length, fragment index, message length (op skipped).
_FIELDS = struct.Struct("<HH2xHQIIQ")
assert _FIELDS.size == _HB
#: What a skimmed answer holds instead of its payload: the JSON shape of a push's answer
#: without a patch back (``Ahead.take_prefetched`` and ``History._move_into`` then ask the
#: worker, as after a worker that does not answer ``peek``).
SKIMMED = b"{}"


def skim_answers(receiver, ours: Callable[[], list]) -> Callable[[int], None]:
    """``skim(limit)``: reads the answers at the head of the response ring to the requests
    ``ours()`` lists (its items' first element is the :class:`~chunkring._handle.Handle`; the
    oldest first, as the worker answers them, layout.md §1), at most ``limit``, completing
    each with :data:`SKIMMED`. Each must be one plain frame (layout.md §6.1: the magic, no
    flag, status 0, no fragment, ``message_len`` equal to ``payload_len``, within the ring
    and the published tail) answering the next of those requests, whose handle nobody
    watches (no ``Future`` waiter). The first that is not, and whatever follows it, is left
    to :meth:`Receiver.drain`, which this then runs for the rest of ``limit``: so an error
    answer is read, and raised, as before. The receiver's lock is taken without waiting
    (held by another thread: ``drain`` waits for it)."""
    consumer = receiver._consumer
    drain = receiver.drain
    if consumer.crc:
        return drain  # checksummed frames are read by the consumer alone (layout.md §6.6)
    lock = receiver._lock
    pending = receiver.pending
    reassembler = receiver._reassembler
    mm = consumer.mm
    q = consumer.q
    tail_word = consumer.tail_word
    chunks, mask, cb, base = consumer.extent()
    unpack = _FIELDS.unpack_from

    def skim(limit: int) -> None:
        if not lock.acquire(False):
            drain(limit)
            return
        taken = 0
        try:
            head = start = consumer.head
            tail = q[tail_word]
            if NEED_RW_FENCES:
                barrier_read()  # [R5] the tail, then the frames it publishes
            if not head < tail <= head + chunks or reassembler.open is not None:
                tail = head  # (a bad tail, or a fragmented answer open: drain's to read)
            requests = ours()
            while head < tail and taken < limit and taken < len(requests):
                h = requests[taken][0]
                idx = head & mask
                magic, flags, status, rid, plen, fidx, mlen = unpack(mm, base + idx * cb)
                n = (_HB + plen + cb - 1) // cb
                if (magic != _MAGIC or flags or status or fidx or plen != mlen
                        or rid != h.request_id or idx + n > chunks or head + n > tail
                        or h._cond is not None or pending.get(rid) is not h):
                    break
                del pending[rid]
                h._result = SKIMMED
                h._state = _FINISHED  # (last, as Receiver._resolve: the value first)
                head += n
                taken += 1
            if head != start:
                consumer.head = head
                consumer.cached_tail = tail
                # [R6] one head store for all of them, then [W5]-[W6] for room. Under the
                # lock, as Receiver.drain releases: another thread's drain moves the head
                # before it copies a payload out, and a release between the two would hand
                # that frame's chunks back to the worker.
                consumer.release()
        finally:
            lock.release()
        if taken < limit and q[tail_word] != consumer.head:
            drain(limit - taken)

    return skim
