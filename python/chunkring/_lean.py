"""The lean synchronous round trip: one request, one answer, the fewest Python operations.

``Client.call``/``echo`` (and the op wrappers) with nothing else in flight go through
:func:`lean_round_trip`'s closure (``Client.echo`` is the closure itself): the sender's and
the receiver's locks taken without waiting, the request written with one
``pack_into`` for header and ``params_len`` and one slice copy straight into the mapping ([R2]), published with one tail store ([R4]) and an
unfenced look at the worker's word ([W6] as a hint); then a spin of a bounded number of polls,
one load of the response tail per poll and no clock read (after waking a parked worker, each
poll followed by ``sched_yield``, for about 1 ms: the answer to a call after a long pause is
read here too, not by the general wait, whose code is one more cold path after the pause);
the answer read straight from the
mapping and released with one head store ([R6]; [W5]-[W6] only when a request was written
after ours). A call not answered within the spin runs the fenced [W5]-[W6] for its publish
before it waits any longer (layout.md §11 "Deferred wake check"): a lone call answered within
it runs no fence at all. No
:class:`~chunkring._handle.Slot`, no pending-table entry, no clock read on the untimed path.

Threads stay safe because the caller holds the receiver's lock from before the publish until
it has the answer: nobody else can read the response ring meanwhile, so the answer cannot
reach a drain that would not know where to put it. The sender's lock is released right after
the publish. A parked worker is woken right after the publish (the [W6] hint), not before
the request is written ([W7] is not used): on this project's 2-vCPU VM the kernel mostly
runs a woken worker on the waking caller's CPU at once, so a wake before the write only had
the worker poll there while the caller still wrote (layout.md §11 "Early wake").

Everything unusual leaves the lean path for the general one, with the request
registered first (under the receiver lock, so the general drain finds it): another request
or handle in flight, a lock held by another thread, a request that needs fragments or
padding, an answer that is not
this request's one plain frame (an error, fragments, padding, another id), an answer that
takes longer than the spin, and any header that breaks layout.md §6 (the general drain
raises the ProtocolError).
"""

from __future__ import annotations

import os
import struct
import time

from . import _layout as L
from ._barrier import NEED_RW_FENCES, barrier_memory, barrier_read, barrier_write
from ._futex import futex_wake
from ._handle import Slot
from ._ring import PLAIN_REQUEST_HEAD
from ._sender import encode_params

_MAGIC = L.FRAME_MAGIC
_OP_ECHO = L.OP_ECHO
_MASK64 = (1 << 64) - 1
#: The frame header's fields the lean read checks (layout.md §6.1): magic, flags, request
#: id, payload length, fragment index (op, status and message length skipped).
_ANSWER_FIELDS = struct.Struct("<HH4xQII")
assert _ANSWER_FIELDS.size == L.FRAME_HEADER_BYTES - 8
_HB = L.FRAME_HEADER_BYTES
_PLB = L.PARAMS_LEN_BYTES
_PARKED = L.PARKED
_PARKED_FOR_ROOM = L.PARKED_FOR_ROOM
_AWAKE = L.AWAKE
_monotonic_ns = time.monotonic_ns
_sched_yield = getattr(os, "sched_yield", lambda: time.sleep(0))
#: Polls of the response tail before the lean path hands the wait to the general one (which
#: yields, spins through a worker's wake-up, parks: layout.md §11 "Client"). One poll is one
#: load and a loop step, 30-40 ns here: about the general wait's 5 µs pure spin.
SPIN_POLLS = 128
#: Polls, each followed by ``sched_yield``, when the worker seems to need our CPU: tens of µs
#: at most, then the general wait takes over.
YIELD_POLLS = 32
#: Polls, each followed by ``sched_yield``, after the call woke a parked worker: about 1 ms
#: here (a yield nobody waits for returns in 0.3-0.5 µs), the general wait's spin after a
#: wake. The woken worker mostly runs on the caller's CPU, so a yield hands it the core; and
#: the answer read here skips the general wait's cold code after a long gap (module doc).
WAKE_POLLS = 2048


def lean_round_trip(sender, receiver, general, checked):
    """``round_trip(data, timeout=None, op=OP_ECHO, params=None)``: the answer bytes of one
    request whose payload is ``params`` (a dict, or None) and ``data``; with its defaults it
    is ``Client.echo`` itself (bound to the instance: one Python call per echo).
    ``general(op, body, prefix, deadline)`` is the general path (send, then wait), called
    when the lean path cannot start (``prefix``: the encoded params);
    ``checked(op, body, params, timeout)`` the same with every
    argument checked, for a ``data`` that is not ``bytes``. ``op`` is checked by the caller;
    ``data`` of any size (the general path checks the size when the lean one declines it)."""
    producer = sender.producer
    if producer.crc:
        # Checksummed frames (layout.md §6.6) are written and checked by the ring ends alone.
        def checked_trip(data, timeout=None, op=_OP_ECHO, params=None):
            if type(data) is not bytes:
                return checked(op, data, params, timeout)
            return general(op, data, None if params is None else encode_params(params),
                           None if timeout is None else _monotonic_ns() + int(timeout * 1e9))

        return checked_trip
    consumer = receiver._consumer
    take = receiver.take
    slock = sender._lock
    rlock = receiver._lock
    pending = receiver.pending
    reassembler = receiver._reassembler
    view = producer.view
    q = producer.q
    words = producer._futex_words
    peer = producer._peer_word
    peer_futex = producer._peer_futex
    req_tail = producer.tail_word
    req_chunks, req_mask, req_cb, req_base = producer.extent()
    max_payload = producer.max_frame_payload
    mm = consumer.mm
    resp_tail = consumer.tail_word
    resp_head = consumer.head_word
    resp_chunks, resp_mask, resp_cb, resp_base = consumer.extent()
    sacquire, srelease = slock.acquire, slock.release
    racquire, rrelease = rlock.acquire, rlock.release
    pack = PLAIN_REQUEST_HEAD.pack_into
    pack_header = L.FRAME_HEADER.pack_into
    unpack = _ANSWER_FIELDS.unpack_from
    fence = barrier_memory
    polls = range(SPIN_POLLS)
    yield_polls = range(YIELD_POLLS)
    wake_polls = range(WAKE_POLLS)

    def round_trip(body, timeout=None, op=_OP_ECHO, params=None):
        """The answer to ``op`` (default ``OP_ECHO``) on ``body`` with ``params``, within
        ``timeout`` seconds (``Client.echo``, ``Client.call``; module doc)."""
        if type(body) is not bytes or receiver.closed or receiver.dead is not None:
            if type(body) is not bytes:
                return checked(op, body, params, timeout)
            # (the mapping may be gone)
            return general(op, body, None if params is None else encode_params(params),
                           None)
        deadline = None if timeout is None else _monotonic_ns() + int(timeout * 1e9)
        prefix = None if params is None else encode_params(params)
        plen = (_PLB if prefix is None else len(prefix)) + len(body)
        n = (_HB + plen + req_cb - 1) // req_cb
        tail = producer.tail
        idx = tail & req_mask
        # The common case in one test: nothing in flight, the frame fits before the ring's
        # end and in the room the cached head shows.
        if (pending or plen > max_payload or idx + n > req_chunks
                or req_chunks - (tail - producer.cached_head) < n):
            return general(op, body, prefix, deadline)
        # The sender's lock only when free: when another thread holds it, the general path
        # waits for it within the call's timeout (a plain `acquire()` after `locked()` would
        # wait, unbounded, for a thread that takes it in between).
        if not sacquire(False):
            return general(op, body, prefix, deadline)
        # Another thread may have written since `tail` was read (room only grows meanwhile).
        if producer.tail != tail or not racquire(False):
            srelease()
            return general(op, body, prefix, deadline)
        # Closed or dead since the look above (another thread's close, which takes the
        # receiver's lock first, then the sender's, then unmaps): the general way raises it.
        # Holding the receiver's lock, no close can get past its first step meanwhile.
        if receiver.closed or receiver.dead is not None:
            rrelease()
            srelease()
            return general(op, body, prefix, deadline)
        unchecked = False  # published, and the fenced [W5]-[W6] not yet run
        woken = False
        try:
            try:
                rid = sender.next_id
                sender.next_id = (rid + 1) & _MASK64 or 1  # following_id, inlined
                off = req_base + idx * req_cb
                # [R2] the frame straight into the mapping: one pack, one copy (two with params).
                if prefix is None:
                    pack(view, off, _MAGIC, op, rid, plen, plen, 0)
                    view[off + _HB + _PLB : off + _HB + plen] = body
                else:
                    pack_header(view, off, _MAGIC, 0, op, 0, rid, plen, 0, plen)
                    off += _HB
                    view[off : off + len(prefix)] = prefix
                    view[off + len(prefix) : off + plen] = body
                tail += n
                producer.tail = producer.published = tail
                if NEED_RW_FENCES:
                    barrier_write()  # [R3] the frame bytes before the tail store
                q[req_tail] = tail  # [R4] publish; pairs with [R5] in the worker
                unchecked = True
                # [W6] before [W5]: an unfenced hint (its load may pass the tail store) that
                # wakes a parked worker, the request already in the ring. The fenced [W5]-[W6] is
                # deferred to the end of the spin (`deferred_wake`), so a call answered
                # within the spin pays no fence (layout.md §11 "Deferred wake check").
                if words[peer] & _PARKED:
                    words[peer] = _AWAKE
                    futex_wake(peer_futex, 1)
                    woken = True
            finally:
                srelease()
            head = consumer.head
            # The spin of the general wait (layout.md §11 "Client"), in loads of the tail:
            # after a wake, yielding between polls for about the general wait's 1 ms (the
            # answer comes after the worker's wake-up, which mostly runs it on our CPU);
            # yielding between polls when the worker seemed to need our CPU (or can only run
            # on it), which hands it the core at once; else a pure spin, after which a late
            # answer is left to the general wait (and its yield-first guess).
            rtail = head
            if (woken or receiver.shared_core
                    or (receiver._yield_first and not receiver._pure_window())):
                for _ in wake_polls if woken else yield_polls:
                    rtail = q[resp_tail]
                    if rtail != head:
                        break
                    _sched_yield()
                else:
                    woken = False  # (a spent after-wake spin: the general wait's is not owed)
            else:
                for _ in polls:
                    rtail = q[resp_tail]
                    if rtail != head:
                        receiver._yield_first = False  # (an answer within the pure spin)
                        break
            if rtail == head:
                rtail = q[resp_tail]
            # [R5] the tail (above), then the frame it publishes
            if NEED_RW_FENCES:
                barrier_read()
            if head < rtail <= head + resp_chunks and reassembler.open is None:
                ridx = head & resp_mask
                o = resp_base + ridx * resp_cb
                magic, flags, frid, rlen, fidx = unpack(mm, o)
                rn = (_HB + rlen + resp_cb - 1) // resp_cb
                if (frid == rid and not flags and not fidx and magic == _MAGIC
                        and ridx + rn <= resp_chunks and head + rn <= rtail):
                    out = mm[o + _HB : o + _HB + rlen]  # the copy out, before the release
                    head += rn
                    consumer.head = consumer.released = head
                    consumer.cached_tail = rtail
                    if NEED_RW_FENCES:
                        barrier_write()  # [R6] the copy-out before the head store
                    q[resp_head] = head  # [R6] release; pairs with [R1] in the worker
                    # [W5]-[W6] for room only when a request was written after ours: with
                    # none, the worker owes no answer after ours (layout.md §1: one answer
                    # per request, in request order), so it is not parked for room, and the
                    # next request's publish comes after this head store (layout.md §11
                    # "Deferred wake check").
                    if producer.tail != tail:
                        fence()  # [W5] StoreLoad: the head store before the load below
                        if words[peer] & _PARKED_FOR_ROOM:  # [W6] pairs with the worker's [W2]
                            words[peer] = _AWAKE
                            futex_wake(peer_futex, 1)
                    return out  # (our answer: the worker read our request, no wake owed)
            # Not the plain answer yet (or not a plain one): the deferred [W5]-[W6] before
            # any longer wait, then the general wait takes over, the request registered
            # before anyone else may drain its answer.
            unchecked = False
            woken = deferred_wake() or woken
            slot = pending[rid] = Slot(rid)
        except BaseException:
            if unchecked:  # (an interrupt in the spin: the request is out all the same)
                deferred_wake()
            raise
        finally:
            rrelease()
        return take(slot, None if deadline is None else
                    max(0.0, (deadline - _monotonic_ns()) / 1e9), woken)

    def deferred_wake() -> bool:
        """[W5]-[W6] after the lean publish, for a call not answered within its spin: the
        fence orders our tail store before the load of the worker's word, so a worker that
        parked after the unfenced hint read AWAKE (its [W2]-[W3] re-check missed our tail)
        is woken here. True when a futex wake was issued."""
        fence()  # [W5] StoreLoad: the tail store ([R4]) before the load below
        if words[peer] & _PARKED:  # [W6] pairs with the worker's [W2]
            words[peer] = _AWAKE
            futex_wake(peer_futex, 1)
            return True
        return False

    return round_trip
