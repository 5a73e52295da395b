"""The client's sending half: request ids, the request payload ``params_len | params | body``
(layout.md §9.1), fragments (§6.4), and the request ring's :class:`~chunkring._ring.Producer`,
through which every request frame is written and published.

Threads: one lock serialises senders for a whole message or batch, so the fragments of one
message stay contiguous. A sender that finds the request ring full publishes what it wrote,
drains answers and parks until the worker frees room (the :class:`Receiver` does the
draining and parking): the worker may itself be waiting for response-ring room.

Timeouts (layout.md §12 "Timeouts"): a sender given a deadline waits for the lock and for
room only until then, and raises :class:`RequestTimeout`; the timed-out request's pending
entry is dropped and the client stays usable. Fragments of it already written cannot be
unpublished: the next message (``fragment_index`` 0) abandons them in the worker, which
never runs a partial message (§6.4).

Per-thread limits (:class:`limit_waits`, used by ``aio.py``): a thread may bound every wait
of the sends it makes, whatever their own timeout, or forbid waiting altogether
(``NO_WAIT``): a send that would wait for the lock or for room then raises
:class:`WouldWait` with nothing of the call published (the frames it wrote are taken back:
they were never published, so resetting the producer's tail to its last publish forgets
them) and no pending entry left. Read only where a send is about to wait: the fast path
never looks at it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from itertools import repeat

from . import _layout as L
from ._handle import _PENDING, Handle, Slot
from ._op_names import op_code
from ._payload import Gathered
from ._receiver import Receiver
from ._ring import Producer
from .errors import ProtocolError, RequestTimeout

_MASK64 = (1 << 64) - 1
_PLB = L.PARAMS_LEN_BYTES
_MORE = L.FLAG_MORE
_NO_PARAMS = b"\0" * L.PARAMS_LEN_BYTES
_WAIT_FOR_ROOM_OR_ANSWERS = L.PARKED | L.PARKED_FOR_ROOM
_monotonic_ns = time.monotonic_ns
_BYTES = {bytes}
_TUPLE = {tuple}
_INT = {int}
#: The per-thread wait limit of :class:`limit_waits` (attribute ``limit``).
_local = threading.local()
#: :class:`limit_waits` value: never wait (raise :class:`WouldWait` instead).
NO_WAIT = -1


class WouldWait(RequestTimeout):
    """A send under ``limit_waits(NO_WAIT)`` would have waited (the request ring is full, or
    another thread is sending); nothing of the call was published or left pending."""


class limit_waits:
    """``with limit_waits(deadline):`` every send on this thread waits (for the sender's lock,
    for request-ring room) no later than ``deadline`` (``time.monotonic_ns``; None: no limit
    beyond the call's own), or not at all with ``NO_WAIT`` (module doc)."""

    __slots__ = ("limit", "saved")

    def __init__(self, limit: int | None):
        self.limit = limit

    def __enter__(self) -> None:
        self.saved = getattr(_local, "limit", None)
        _local.limit = self.limit

    def __exit__(self, *exc) -> None:
        _local.limit = self.saved


def _effective(deadline: int | None) -> int | None:
    """``deadline`` tightened by this thread's :class:`limit_waits` (or ``NO_WAIT``)."""
    limit = getattr(_local, "limit", None)
    if limit is None:
        return deadline
    if limit == NO_WAIT or deadline is None:
        return limit
    return min(limit, deadline)


def following_id(rid: int) -> int:
    """The request id after ``rid``: +1 modulo 2**64, skipping 0 (reserved, layout.md §6.1)."""
    return (rid + 1) & _MASK64 or 1


def deadline_after(timeout: float | None) -> int | None:
    """The ``time.monotonic_ns()`` deadline ``timeout`` seconds from now (None: no deadline)."""
    return None if timeout is None else _monotonic_ns() + int(timeout * 1e9)


def encode_params(params) -> bytes | None:
    """``params_len | params`` for a request's ``params`` (a ``dict``, JSON-encoded), or None
    for none; raises ``TypeError``/``ValueError`` naming ``params`` (issue 11 item 16)."""
    if params is None:
        return None
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict (a JSON object) or None, not {type(params).__name__}")
    try:
        pj = json.dumps(params, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"params are not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise ValueError("params are nested too deeply to encode as JSON") from None
    return len(pj).to_bytes(_PLB, "little") + pj


def check_body(body) -> int:
    """The byte length of ``body``; ``TypeError`` naming ``body`` unless it is bytes-like
    (or a :class:`~chunkring._payload.Gathered` of bytes)."""
    if type(body) is Gathered:
        return body.nbytes
    if isinstance(body, str):
        raise TypeError("body must be bytes-like (bytes, bytearray, memoryview), not str: "
                        "encode it first (e.g. body.encode())")
    try:
        return memoryview(body).nbytes
    except TypeError:
        raise TypeError(
            f"body must be bytes-like (bytes, bytearray, memoryview), not {type(body).__name__}"
        ) from None


def _one_frame_bodies(bodies, max_body: int) -> int:
    """The longest body's length when every body is ``bytes`` of at most ``max_body`` bytes
    (one frame each), else -1 (checked without a Python-level step per body)."""
    if set(map(type, bodies)) != _BYTES:
        return -1
    longest = max(map(len, bodies))
    return longest if longest <= max_body else -1


def _slots(ids) -> list:
    return list(map(Slot, ids))


def _refill(slots: list, ids) -> list:
    """``slots``, pending again under ``ids`` (cheaper than building new ones)."""
    for slot, rid in zip(slots, ids):
        slot.request_id = rid
        slot._exception = None
        slot._state = _PENDING
    return slots


def seconds_left(deadline: int | None) -> float | None:
    """Seconds until ``deadline`` (0 once passed; None for no deadline)."""
    return None if deadline is None else max(0.0, (deadline - _monotonic_ns()) / 1e9)


class Sender:
    """Writes requests into the request ring and registers their handles with the receiver.

    ``next_id`` is the request id the next request gets (never 0, reserved by §6.1);
    ``producer`` the request ring's producer.
    """

    def __init__(self, region, receiver: Receiver):
        self.producer = Producer(region, region.req_ring_offset, region.req_ring_chunks,
                                 L.REQ_HEAD_OFFSET, L.REQ_TAIL_OFFSET)
        self._receiver = receiver
        self._pending = receiver.pending
        self._lock = threading.Lock()
        self._max_frame_payload = self.producer.max_frame_payload
        self._max_message_bytes = region.max_message_bytes
        self.next_id = int.from_bytes(os.urandom(8), "little") or 1
        #: The deadline (``time.monotonic_ns``) of the call holding the lock, or None.
        self._deadline: int | None = None
        #: Whether the last publish woke a parked worker (futex wake issued).
        self.worker_woken = False

    # ------------------------------------------------------------------ requests
    def submit(self, op: int, body=b"", params: dict | None = None, *,
               timeout: float | None = None) -> Handle:
        """Write and publish one request; its handle. ``timeout`` bounds the wait for the
        sender's lock and for request-ring room (:class:`RequestTimeout`). The common case
        (no params, no timeout, the lock free, room before the ring's end) is
        ``_lean_submit.py``'s; this is the rest."""
        op, prefix = self._checked(op, body, params)
        self._enter_limited(None if timeout is None else deadline_after(timeout))
        try:
            rx = self._receiver
            h = self._register(lambda rid: Handle(rx, rid, op))
            self._write_or_forget(op, h.request_id, body, prefix)
            self.worker_woken = self.producer.publish() == 2
        except ProtocolError as exc:  # (no cost unless raised) a truncated region?
            raise self._receiver.explain(exc) from None
        finally:
            self._lock.release()
        return h

    def send(self, op: int, body=b"", params: dict | None = None,
             deadline: int | None = None) -> Slot:
        """The synchronous path: write and publish one request whose answer lands in a
        :class:`Slot` (no :class:`Handle`); ``worker_woken`` says whether the publish had to
        wake a parked worker (the caller then expects the answer only after its wake-up).
        ``deadline`` (``time.monotonic_ns``) bounds the waits for the lock and for room."""
        op, prefix = self._checked(op, body, params)
        return self.send_prefixed(op, body, prefix, deadline)

    def _checked(self, op, body, params: dict | None) -> tuple[int, bytes | None]:
        """:meth:`_check`; the common request (an op code, one frame, no params) is checked
        by one line and has no prefix."""
        if (params is None and type(body) is bytes and type(op) is int
                and 0 <= op <= 0xFFFF and _PLB + len(body) <= self._max_frame_payload):
            return op, None
        return self._check(op, body, params)

    def send_prefixed(self, op: int, body, prefix: bytes | None,
                      deadline: int | None = None) -> Slot:
        """:meth:`send` for a request whose ``op`` and ``body`` are checked and whose params
        are encoded (``prefix``, :func:`encode_params`); its size is checked here."""
        small = prefix is None and type(body) is bytes and _PLB + len(body) <= self._max_frame_payload
        if not small:
            self._check_size(check_body(body), prefix)
        self._enter(deadline)
        try:
            slot = self._register(Slot)
            rid = slot.request_id
            producer = self.producer
            # (a parked worker is woken by the publish's [W5]-[W6], not before the write:
            # layout.md §11 "Early wake")
            if small:
                if not producer.try_push_request(op, rid, body):
                    self._push_forgetting(rid, producer.try_push_request, op, rid, body)
            else:
                self._write_or_forget(op, rid, body, prefix)
            self.worker_woken = producer.publish() == 2
        except ProtocolError as exc:  # (no cost unless raised) a truncated region?
            raise self._receiver.explain(exc) from None
        finally:
            self._lock.release()
        return slot

    def send_many(self, op: int, bodies, params: dict | None = None,
                  deadline: int | None = None, reuse: list[Slot] | None = None) -> list[Slot]:
        """Write one ``op`` request per body in ``bodies`` (all with ``params``) and publish
        them with one tail store and one [W5] fence (more only when the request ring fills
        up); their slots in order. On a :class:`RequestTimeout` (``deadline``) the requests
        already written stay published and pending; the rest are not sent. ``reuse``: slots
        whose answers the caller has taken (no longer pending), to fill again rather than
        build new ones when there are as many as ``bodies``."""
        op = op_code(op)
        prefix = encode_params(params)
        if prefix is None and not self.producer.crc:
            bodies = bodies if type(bodies) is list else list(bodies)
            longest = _one_frame_bodies(bodies, self._max_frame_payload - _PLB) if bodies else -1
            if longest >= 0:
                make = _slots
                if reuse is not None and len(reuse) == len(bodies):
                    make = lambda ids: _refill(reuse, ids)  # noqa: E731
                return self._send_batch(op, None, bodies, longest, make, deadline)
        slots = []
        append = slots.append
        self._enter(deadline)
        try:
            rx = self._receiver
            rx.check_open()
            pending = self._pending
            producer = self.producer
            push = producer.try_push_request
            small = self._max_frame_payload - _PLB
            rid = self.next_id
            try:
                for body in bodies:
                    one_frame = prefix is None and type(body) is bytes and len(body) <= small
                    if not one_frame:
                        self._check_size(check_body(body), prefix)
                    slot = pending[rid] = Slot(rid)
                    append(slot)
                    if one_frame:
                        if not push(op, rid, body):
                            self._push_forgetting(rid, push, op, rid, body)
                    else:
                        self._write_or_forget(op, rid, body, prefix)
                    rid = following_id(rid)
            finally:
                self.next_id = rid
            self.worker_woken = producer.publish() == 2
        except ProtocolError as exc:  # (no cost unless raised) a truncated region?
            raise self._receiver.explain(exc) from None
        finally:
            self._lock.release()
        return slots

    def post(self, requests, wake: bool = True) -> list[Handle]:
        """Write ``(op, prefix, body)`` requests, each ``prefix`` an already encoded
        ``params_len | params`` (:func:`encode_params`) and ``body`` bytes, and publish them
        with one tail store; their handles in order, as :meth:`submit_many`. ``wake=False``
        does not wake a parked worker (``Producer.publish``): for requests nobody waits for
        now (snapshot pushes)."""
        for _, prefix, body in requests:
            self._check_size(len(body), prefix)
        return self._send_checked(requests, None, wake)

    def submit_many(self, requests, timeout: float | None = None) -> list[Handle]:
        """Write ``(op, body, params)`` requests and publish them with one tail store (more
        only when the request ring fills up); their handles in order.

        ``timeout`` bounds the waits for the sender's lock and for room: on
        :class:`RequestTimeout` the requests written before it stay published and pending
        (their handles are the exception's ``sent``), the one that did not fit and the rest
        are not sent."""
        max_body = self._max_frame_payload - _PLB
        if type(requests) is list and requests and not self.producer.crc:
            # All (op, bytes, None) of one frame: in one batch (checked without a
            # Python-level step per request).
            k = len(requests)
            if set(map(type, requests)) == _TUPLE and set(map(len, requests)) == {3}:
                ops, bodies, params = zip(*requests)
                if (params.count(None) == k and set(map(type, ops)) == _INT
                        and 0 <= min(ops) and max(ops) <= 0xFFFF
                        and (longest := _one_frame_bodies(bodies, max_body)) >= 0):
                    rx = self._receiver
                    one_op = ops.count(ops[0]) == k
                    return self._send_batch(
                        ops[0], None if one_op else ops, bodies, longest,
                        lambda ids: list(map(Handle, repeat(rx, k), ids, ops)),
                        deadline_after(timeout), limited=True)
        checked = []
        for i, req in enumerate(requests):
            if (type(req) is tuple and len(req) == 3 and req[2] is None and type(req[1]) is bytes
                    and type(req[0]) is int and 0 <= req[0] <= 0xFFFF and len(req[1]) <= max_body):
                checked.append((req[0], None, req[1]))  # one frame, no params: checked
                continue
            req = tuple(req)
            if not 1 <= len(req) <= 3:
                raise ValueError(f"requests[{i}] must be (op, body, params), not {len(req)} items")
            body = req[1] if len(req) > 1 else b""
            try:
                op, prefix = self._check(req[0], body, req[2] if len(req) > 2 else None)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"requests[{i}]: {exc}") from None
            checked.append((op, prefix, body))
        return self._send_checked(checked, deadline_after(timeout), True)

    def _send_checked(self, checked, deadline: int | None, wake: bool) -> list[Handle]:
        """:meth:`submit_many` of checked ``(op, prefix or None, body)`` requests."""
        handles = []
        self._enter_limited(deadline)
        try:
            self._receiver.check_open()
            push = self.producer.try_push
            for op, prefix, body in checked:
                h = self._register(lambda rid: Handle(self._receiver, rid, op))
                # One frame written straight (params and body), else _write's way.
                if prefix is None or type(body) is not bytes or not (
                        len(prefix) + len(body) <= self._max_frame_payload
                        and push(0, op, h.request_id, 0, len(prefix) + len(body), prefix, body)):
                    self._write_or_forget(op, h.request_id, body, prefix)
                handles.append(h)
            producer = self.producer
            self.worker_woken = (producer.publish() if wake else producer.publish(False)) == 2
        except WouldWait:
            for h in handles:  # none was published (module doc)
                self._pending.pop(h.request_id, None)
            raise
        except RequestTimeout as exc:
            exc.sent = handles  # published by the wait that timed out
            raise
        except ProtocolError as exc:  # a truncated region?
            raise self._receiver.explain(exc) from None
        finally:
            self._lock.release()
        return handles

    def _send_batch(self, op: int, ops, bodies, longest: int, make, deadline: int | None,
                    limited: bool = False):
        """:meth:`send_many`/:meth:`submit_many` for one-frame requests without params
        (:func:`_one_frame_bodies`): every frame built at once (``Producer.encode_requests``),
        registered as ``make(request_ids)`` (their slots or handles, in order), copied into
        the ring in as few slices as its free stretches allow, published with one tail store
        and one wake check (more only when the ring fills up). Every request's op is ``op``,
        or ``ops[i]``; ``longest``: the longest body's length. ``limited``: the submit_many contract (this thread's
        :class:`limit_waits` bounds the lock too; on :class:`RequestTimeout` the published
        handles are the exception's ``sent``). On any timeout the requests not sent leave
        the pending table (under :class:`WouldWait`, all of them: none was published)."""
        k = len(bodies)
        if limited:
            self._enter_limited(deadline)
        else:
            self._enter(deadline)
        try:
            self._receiver.check_open()
            rid = self.next_id
            if rid + k - 1 > _MASK64:
                rid = 1  # the ids would wrap past 0: skip to 1 (unique all the same, §6.1)
            ids = range(rid, rid + k)
            made = make(ids)
            pending = self._pending
            pending.update(zip(ids, made))  # before any publish: an answer must find them
            self.next_id = following_id(rid + k - 1)
            producer = self.producer
            data, ends = producer.encode_requests(op, rid, bodies, longest, ops)
            done = producer.try_push_encoded(data, ends, 0)
            if done < k:
                def more() -> bool:
                    nonlocal done
                    was = done
                    done = producer.try_push_encoded(data, ends, done)
                    return done > was
                try:
                    while done < k:
                        self._push_waiting(more)  # publish, drain, wait for room; then write
                except RequestTimeout as exc:
                    keep = 0 if isinstance(exc, WouldWait) else done
                    for i in ids[keep:]:
                        pending.pop(i, None)
                    self.next_id = rid + keep  # the ids not sent are free again
                    if limited:
                        exc.sent = made[:keep]  # published by the wait that timed out
                    raise
            self.worker_woken = producer.publish() == 2
        except ProtocolError as exc:  # (no cost unless raised) a truncated region?
            raise self._receiver.explain(exc) from None
        finally:
            self._lock.release()
        return made

    def close(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds) for a sender in progress to finish, then close
        the receiver; False when the sender did not finish in time (its thread may still
        touch the region: the caller must not unmap it)."""
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            self._receiver.close()
            return False
        try:
            self._receiver.close()
        finally:
            self._lock.release()
        return True

    # ------------------------------------------------------------------ checks (no lock)
    def _check(self, op, body, params) -> tuple[int, bytes | None]:
        """Refuse a request the worker could not take, before anything is reserved (issue 11
        item 16): ``TypeError``/``ValueError`` naming ``op``, ``body`` or ``params``; the
        op code (``op`` may be a name: ``_op_names.py``) and the encoded
        ``params_len | params`` prefix (None without params)."""
        op = op_code(op)
        prefix = encode_params(params)
        self._check_size(check_body(body), prefix)
        return op, prefix

    def _check_size(self, body_bytes: int, prefix: bytes | None) -> None:
        """``ValueError`` for a request over the worker's MAX_MESSAGE_BYTES."""
        total = (_PLB if prefix is None else len(prefix)) + body_bytes
        if total > self._max_message_bytes:
            raise ValueError(
                f"request of {total} bytes exceeds the worker's MAX_MESSAGE_BYTES "
                f"({self._max_message_bytes})"
            )

    # ------------------------------------------------------------------ the lock and deadlines
    def _enter(self, deadline: int | None) -> None:
        """Take the sender's lock, waiting no later than ``deadline``, and make ``deadline``
        the one every wait for room under this lock honours. (The synchronous fast path's
        entry: a blocking ``acquire()`` without a deadline, which costs less than
        ``acquire(False)``; this thread's :class:`limit_waits` bounds only its waits for
        room. :meth:`_enter_limited` is the entry that honours it for the lock too.)"""
        if deadline is None:
            self._lock.acquire()
        elif not (self._lock.acquire(False)  # uncontended: no clock read, no timed wait
                  or self._lock.acquire(timeout=seconds_left(deadline))):
            raise RequestTimeout("timed out waiting for another thread to finish sending")
        self._deadline = deadline

    def _enter_limited(self, deadline: int | None) -> None:
        """:meth:`_enter`, also bounded by this thread's :class:`limit_waits` while another
        thread holds the lock (``submit``, ``submit_many``: the calls ``aio.py`` makes)."""
        if not self._lock.acquire(False):
            limit = _effective(deadline)
            if limit == NO_WAIT:
                raise WouldWait("another thread is sending")
            if limit is None:
                self._lock.acquire()
            elif not self._lock.acquire(timeout=seconds_left(limit)):
                raise RequestTimeout("timed out waiting for another thread to finish sending")
        self._deadline = deadline

    def _write_or_forget(self, op: int, rid: int, body, prefix: bytes | None) -> None:
        """:meth:`_write`; on a timeout, drop ``rid``'s pending entry (§12 "Timeouts")."""
        try:
            self._write(op, rid, body, prefix)
        except RequestTimeout:
            self._pending.pop(rid, None)
            raise

    def _push_forgetting(self, rid: int, push, *frame) -> None:
        """:meth:`_push_waiting` for a one-frame request ``rid``, forgotten on a timeout."""
        try:
            self._push_waiting(push, *frame)
        except RequestTimeout:
            self._pending.pop(rid, None)
            raise

    # ------------------------------------------------------------------ writing (lock held)
    def _register(self, make):
        """A fresh request id and its answer holder ``make(rid)``, registered as pending
        (before any publish of the request: an answer must find it)."""
        rx = self._receiver
        if rx.closed or rx.dead is not None:
            rx.check_open()
        rid = self.next_id
        self.next_id = following_id(rid)
        h = self._pending[rid] = make(rid)
        return h

    def _write(self, op: int, rid: int, body, prefix: bytes | None) -> None:
        """Write one request (one frame, or fragments) without publishing its last frames;
        ``prefix`` is :func:`encode_params`' (None: no params), the request already checked."""
        if prefix is None:
            if type(body) is bytes and _PLB + len(body) <= self._max_frame_payload:
                if not self.producer.try_push_request(op, rid, body):
                    self._push_waiting(self.producer.try_push_request, op, rid, body)
                return
            prefix = _NO_PARAMS
        self._write_fragments(op, rid, prefix, body)

    def _write_fragments(self, op: int, rid: int, prefix: bytes, body) -> None:
        """Write ``prefix + body`` as one or more frames of at most a quarter ring (§6.4).
        A :class:`Gathered` body that fits one frame is copied part by part; a larger one is
        joined first (its frames are cut across the parts' ends)."""
        producer = self.producer
        push = producer.try_push
        if type(body) is Gathered:
            total = len(prefix) + body.nbytes
            if total <= self._max_frame_payload:
                if not push(0, op, rid, 0, total, prefix, body.parts):
                    self._push_waiting(push, 0, op, rid, 0, total, prefix, body.parts)
                return
            body = body.join()
        body = memoryview(body).cast("B")
        total = len(prefix) + len(body)  # within MAX_MESSAGE_BYTES (_check_size)
        # The first frame carries the whole prefix (params_len and params) when it fits.
        pos = 0
        index = 0
        while True:
            take = min(total - pos, self._max_frame_payload)
            end = pos + take
            flags = 0 if end == total else _MORE
            # Payload bytes [pos, end) of prefix + body: a piece of each.
            head = prefix[pos:end] if pos < len(prefix) else b""
            tail = body[max(pos - len(prefix), 0) : max(end - len(prefix), 0)]
            if not push(flags, op, rid, index, total, head, tail):
                # A timeout here, after some fragments, leaves them published: the caller
                # drops the request, and the next message (fragment_index 0) abandons it
                # in the worker, which answers FRAGMENT_SEQUENCE for an id no longer
                # pending (layout.md §6.4, §12 "Timeouts").
                self._push_waiting(push, flags, op, rid, index, total, head, tail)
            pos = end
            index += 1
            if not flags:
                return
            if index % 4 == 0 and getattr(_local, "limit", None) != NO_WAIT:
                producer.publish()  # let the worker start on a long message

    def _push_waiting(self, push, *frame) -> None:
        """Retry ``push(*frame)`` (a ``Producer.try_push*``) until the request ring has room:
        publish, drain answers, park until the worker frees room or answers.

        Draining while waiting is what keeps any mix of sizes and in-flight counts from
        deadlocking: the worker may itself be waiting for response-ring room.
        """
        producer = self.producer
        rx = self._receiver
        deadline = _effective(self._deadline)
        if deadline == NO_WAIT:
            # Take back what this call wrote: it was never published (module doc).
            producer.tail = producer.published
            raise WouldWait("the request ring is full")
        while True:
            producer.publish()
            rx.drain()
            if push(*frame):
                return
            rx.check_open()
            if deadline is not None and _monotonic_ns() >= deadline:
                raise RequestTimeout("timed out waiting for room in the request ring "
                                     "(the worker is not reading requests)")
            # Waiting for room and for answers alike: either wakes us (layout.md §11).
            if not rx.park(lambda: producer.head_moved() or rx.has_answers(),
                           _WAIT_FOR_ROOM_OR_ANSWERS):
                rx.check_alive()
                rx.check_open()

    # ------------------------------------------------------------------ test hooks
    def publish_raw(self, frame: bytes, expect_id: int | None = None) -> Handle | None:
        """Test hook: copy ``frame`` verbatim into the request ring at the tail, padding the
        ring first if it would not fit before the end, advance the tail by
        ``ceil(len(frame) / CHUNK_BYTES)`` chunks and publish. If ``expect_id`` is given, a
        handle is registered for the answer carrying that request id (0 for §6.5's id 0)."""
        with self._lock:
            self._deadline = None
            self._receiver.check_open()
            h = None
            if expect_id is not None:
                h = Handle(self._receiver, expect_id, 0)
                self._pending[expect_id] = h
            if not self.producer.try_push_raw(frame):
                self._push_waiting(self.producer.try_push_raw, frame)
            self.producer.publish()
        return h

    def new_request_id(self) -> int:
        """Test hook: reserve a fresh request id for a hand-built frame."""
        with self._lock:
            rid = self.next_id
            self.next_id = following_id(rid)
            return rid
