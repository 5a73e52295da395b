"""The client's receiving half: the response ring's consumer, the table of requests in flight
and their :class:`Handle`, reassembly of fragmented answers (layout.md §6.4), waiting for
answers (spin, yield, park: §11, [W1]-[W4]) and noticing a dead worker (§12).

Threads: one lock serialises the consumer (and the pending table's bulk changes); any thread
may drain responses into any pending :class:`Handle`. A dead worker fails every pending
handle with :class:`WorkerDied` within one wait timeout (10 ms) plus a liveness check.
"""

from __future__ import annotations

import os
import threading
import time

from . import _layout as L
from ._barrier import barrier_memory, barrier_read
from ._futex import futex_wait, futex_wake
from ._process import pid_alive, read_all
from ._reassembler import FragmentError, Reassembler
from ._ring import Consumer
from .errors import ClientClosed, ProtocolError, RequestError, RequestTimeout, WorkerDied

#: The client's bounded futex wait (layout.md §12 "Dead worker": notice within 10 ms).
WAIT_TIMEOUT_S = 0.010
#: The first part of the spin window polls without yielding (§11 "Client"); the rest yields
#: the CPU between polls, so a worker that shares this core (or, on a loaded machine, waits
#: for one) gets to run. Measured with both processes pinned to one core (``taskset -c 0``):
#: without the yield every round trip costs the whole window plus a futex wake (~65 µs).
_PURE_SPIN_NS = 5_000
#: How long to poll for an answer after a publish that had to wake a parked worker: its
#: wake-up alone takes 50-150 µs here, and parking before it answers would add the client's
#: own wake-up to the call (layout.md §11 "Client").
_AFTER_WAKE_SPIN_NS = 1_000_000
_sched_yield = getattr(os, "sched_yield", lambda: time.sleep(0))
_monotonic_ns = time.monotonic_ns
_MORE = L.FLAG_MORE
_ERROR = L.FLAG_ERROR
_PARKED = L.PARKED
_AWAKE = L.AWAKE
_CF = L.CLIENT_FUTEX_OFFSET // 4

def shares_one_cpu(pid: int) -> bool:
    """Can this process and ``pid`` only ever run on the same single CPU?"""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return os.cpu_count() == 1
    try:
        mine, theirs = getaffinity(0), getaffinity(pid)
    except OSError:
        return os.cpu_count() == 1
    return len(mine) == 1 and mine == theirs


#: A handle's value before its answer arrives.
_PENDING = object()


class Handle:
    """One request in flight. ``result()`` blocks until its response (or error) arrives."""

    __slots__ = ("_receiver", "request_id", "op", "_value", "_error")

    def __init__(self, receiver: "Receiver", request_id: int, op: int):
        self._receiver = receiver
        #: The frame's request id (layout.md §6.1), unique among this client's requests.
        self.request_id = request_id
        self.op = op
        self._value = _PENDING
        self._error: BaseException | None = None

    def done(self) -> bool:
        """True once a response or an error is in; drains ready responses without blocking."""
        if self._value is _PENDING and self._error is None:
            self._receiver.poll()
        return self._value is not _PENDING or self._error is not None

    def result(self, timeout: float | None = None) -> bytes:
        """The response bytes; raises :class:`RequestError` for an error frame,
        :class:`WorkerDied` when the worker is gone, :class:`RequestTimeout` after ``timeout``
        seconds (the request stays pending)."""
        if self._value is _PENDING and self._error is None:
            self._receiver.wait(self, timeout)
        if self._error is not None:
            raise self._error
        return self._value

    def __repr__(self) -> str:
        state = "pending" if self._value is _PENDING and self._error is None else "done"
        return f"<Handle id={self.request_id:#x} op={self.op:#06x} {state}>"


class Slot:
    """Where the answer to one request of the synchronous fast path lands (``Client.call``,
    ``Client.map``): a :class:`Handle` without the handle's methods. The receiver fills
    ``_value`` or ``_error`` exactly as it fills a handle's."""

    __slots__ = ("request_id", "_value", "_error")

    def __init__(self, request_id: int):
        self.request_id = request_id
        self._value = _PENDING
        self._error = None


class Receiver:
    """Drains the response ring into pending handles, waits for answers, watches the worker.

    ``pending`` maps request id → :class:`Handle`: the sender adds a handle before it
    publishes the request, the receiver removes it when the answer (or a failure) is in.
    ``dead`` is the :class:`WorkerDied` once the worker is gone; ``closed`` is True after
    :meth:`close`.
    """

    def __init__(self, region, *, proc=None, stderr_file=None, spin_ns: int):
        self._region = region
        self._consumer = Consumer(region, region.resp_ring_offset, region.resp_ring_chunks,
                                  L.RESP_HEAD_OFFSET, L.RESP_TAIL_OFFSET)
        self._reassembler = Reassembler()
        self._lock = threading.Lock()
        self.pending: dict[int, Handle] = {}
        self.dead: WorkerDied | None = None
        self.closed = False
        self._parked = 0
        self._spin_ns = spin_ns
        self._futex_words = region.i
        self._client_futex = region.client_futex_addr
        self._proc = proc
        self._stderr_file = stderr_file
        self._worker_pid = region.worker_pid
        #: True when this process and the worker may run only on the same one CPU
        #: (``taskset -c 0`` on both, or a 1-CPU machine): spinning would keep the worker
        #: from running, so every poll yields the core instead (layout.md §11 "One core").
        self.shared_core = shares_one_cpu(region.worker_pid)
        self._yield_first = False
        self._explore = 32

    # ------------------------------------------------------------------ state
    def check_open(self) -> None:
        """Raise :class:`ClientClosed` after :meth:`close`, the ``WorkerDied`` once it died."""
        if self.closed:
            raise ClientClosed("the client was closed")
        if self.dead is not None:
            raise self.dead

    def has_answers(self) -> bool:
        """True when the response ring holds frames not yet read (lock-free peek)."""
        return self._consumer.pending()

    def close(self) -> None:
        """Refuse further waits and fail every pending handle with :class:`ClientClosed`."""
        with self._lock:
            self.closed = True
            err = ClientClosed("the client was closed")
            for h in self.pending.values():
                if h._error is None and h._value is _PENDING:
                    h._error = err
            self.pending.clear()

    def fail_all(self, exc: BaseException) -> None:
        """Fail every pending handle that has no answer yet with ``exc``."""
        pending = self.pending
        for h in pending.values():
            if h._error is None and h._value is _PENDING:
                h._error = exc
        pending.clear()

    # ------------------------------------------------------------------ draining
    def poll(self) -> None:
        """Drain whatever answers are already published, without waiting."""
        if self._consumer.pending():
            self.drain()

    def drain(self) -> int:
        """Read every published response frame: resolve handles, release the chunks ([R6],
        then [W5]-[W6] if the worker waits for room); the number of frames read."""
        cons = self._consumer
        reassembler = self._reassembler
        pending = self.pending
        count = 0
        lock = self._lock
        lock.acquire()
        try:
            while True:
                frame = cons.poll()
                if frame is None:
                    break
                count += 1
                flags, op, status, rid, fidx, mlen, payload = frame
                if fidx or flags & _MORE or reassembler.open is not None:
                    payload = self._reassemble(flags, op, rid, fidx, mlen, payload)
                    if payload is None:
                        continue
                if rid == 0 and flags & _ERROR:
                    self._lose_all(status, payload)
                    continue
                h = pending.pop(rid, None)
                if h is None:
                    continue  # not ours (an earlier client's answer, §12): discard
                if flags & _ERROR:
                    h._error = RequestError(status, payload.decode("utf-8", "replace"), op)
                else:
                    h._value = payload
        except ProtocolError as exc:
            self.fail_all(exc)
            raise
        finally:
            try:
                cons.release()
            finally:
                lock.release()
        if count and self._parked:
            # Another thread may be parked on CLIENT_FUTEX for a handle we just resolved.
            # AWAKE first, as in [W6], so a thread between its re-check and its futex_wait
            # returns at once instead of sleeping out the timeout.
            self._futex_words[_CF] = _AWAKE
            futex_wake(self._client_futex, 1 << 30)
        return count

    def _reassemble(self, flags, op, rid, fidx, mlen, payload):
        """The whole payload once the last fragment is in, else None (§6.4)."""
        reassembler = self._reassembler
        try:
            payload = reassembler.accept(flags, op, rid, fidx, mlen, payload)
        except FragmentError as exc:
            self._fail_one(exc.request_id, str(exc))
            payload = None
        abandoned = reassembler.take_abandoned()
        if abandoned is not None:
            self._fail_one(abandoned, "response fragments abandoned before the last one")
        return payload

    def _fail_one(self, rid: int, message: str) -> None:
        h = self.pending.pop(rid, None)
        if h is not None:
            h._error = ProtocolError(message)

    def _lose_all(self, status: int, payload: bytes) -> None:
        """An error frame with request id 0: the worker resynchronised and dropped everything
        published so far (§6.5). A raw-frame test may have registered a handle for id 0."""
        msg = payload.decode("utf-8", "replace")
        zero = self.pending.pop(0, None)
        if zero is not None:
            zero._error = RequestError(status, msg)
        self.fail_all(ProtocolError(
            f"the worker discarded every request in flight after a malformed frame: {msg}"
        ))

    # ------------------------------------------------------------------ waiting
    def _pure_window(self) -> int:
        """How long the next wait polls before it starts yielding (layout.md §11 "Client").

        5 µs while answers come within it. When one came just after it (within the next
        5 µs, once we had started to yield), the worker most likely ran on this process's
        CPU (the scheduler put both on one core, or the machine is oversubscribed):
        spinning there only delays the worker, so yield from the first poll, and try the
        pure spin again every 32nd wait. Never when the worker can only
        run on our one CPU (``shared_core``)."""
        if self.shared_core:
            return 0
        if not self._yield_first:
            return _PURE_SPIN_NS
        self._explore -= 1
        if self._explore > 0:
            return 0
        self._explore = 32
        return _PURE_SPIN_NS

    def take(self, slot, timeout: float | None = None, woken: bool = False) -> bytes:
        """The answer of a fast-path request (a :class:`Slot`): wait for it, return its bytes
        or raise its error. ``woken``: the request's publish woke a parked worker, so the
        answer comes only after the worker's wake-up; spin through it (layout.md §11)."""
        if slot._value is _PENDING and slot._error is None:
            self.wait(slot, timeout, _AFTER_WAKE_SPIN_NS if woken else None)
        if slot._error is not None:
            raise slot._error
        return slot._value

    def wait(self, h, timeout: float | None, spin_ns: int | None = None) -> None:
        """Until ``h`` (a :class:`Handle` or :class:`Slot`) has its answer or error: drain,
        spin, park (layout.md §11).

        Raises :class:`RequestTimeout` after ``timeout`` seconds, the ``WorkerDied`` when the
        worker is gone, :class:`ClientClosed` after :meth:`close`."""
        cons = self._consumer
        q = cons.q
        tail_word = cons.tail_word
        deadline = None
        while True:
            if q[tail_word] != cons.head:
                self.drain()
                if h._value is not _PENDING or h._error is not None:
                    return
                continue
            if h._value is not _PENDING or h._error is not None:
                return  # another thread drained our response
            # layout.md §11 "Client": poll the live tail for a few µs, then keep polling but
            # yield the CPU between polls until the spin window ends (a worker that shares
            # this core, or an oversubscribed machine, gets to run), then park. When the
            # worker can only run on this process's one CPU, yield from the first poll.
            now = _monotonic_ns()
            if deadline is None and timeout is not None:
                deadline = now + int(timeout * 1e9)
            began = now
            pure_end = now + self._pure_window()
            spin_end = now + (self._spin_ns if spin_ns is None else spin_ns)
            while q[tail_word] == cons.head:
                if h._value is not _PENDING or h._error is not None:
                    return
                now = _monotonic_ns()
                if now > pure_end:
                    if now > spin_end:
                        break
                    _sched_yield()
            else:
                if pure_end > began:  # this wait began with a pure spin
                    # An answer that came just after the pure spin, once we had yielded, says
                    # the worker needed our CPU: yield from the first poll next time. One that
                    # came much later is a long op (a render) and says nothing of the kind.
                    self._yield_first = pure_end < now <= pure_end + _PURE_SPIN_NS
                continue
            if deadline is not None and _monotonic_ns() >= deadline:
                raise RequestTimeout(
                    f"no response to request {h.request_id:#x} within {timeout} s (still pending)"
                )
            if self.park(lambda: h._value is not _PENDING or h._error is not None or cons.pending()):
                continue
            self.check_alive()
            if h._value is not _PENDING or h._error is not None:
                return
            if self.dead is not None:
                raise self.dead
            if self.closed:
                raise ClientClosed("the client was closed")

    def park(self, ready, reason: int = _PARKED) -> bool:
        """[W1]..[W4] on CLIENT_FUTEX; True if ``ready()`` held at the re-check (no sleep).

        ``reason`` is what we wait for (layout.md §11): PARKED for answers, PARKED_FOR_ROOM
        for request-ring room, or both; the worker wakes us only for those."""
        i = self._futex_words
        with self._lock:
            self._parked += 1
        try:
            i[_CF] = reason  # [W1]
            barrier_memory()  # [W2] StoreLoad: the park store before the re-check loads
            if ready():  # [W3] re-check; pairs with the worker's [R4]/[R6]
                i[_CF] = _AWAKE
                return True
            futex_wait(self._client_futex, reason, WAIT_TIMEOUT_S)  # [W4]
            i[_CF] = _AWAKE
            return False
        finally:
            with self._lock:
                self._parked -= 1

    def check_alive(self) -> None:
        """After a park: notice a dead or stopped worker (layout.md §12) and fail every pending request."""
        if self.dead is not None:
            return
        reason = None
        rc = None
        proc = self._proc
        state = self._region.worker_state if self._region.mm is not None else L.WORKER_STOPPED
        barrier_read()
        if proc is not None:
            rc = proc.poll()
            if rc is not None:
                reason = f"the worker (pid {proc.pid}) exited with code {rc}"
        elif not pid_alive(self._worker_pid):
            reason = f"the worker (pid {self._worker_pid}) no longer exists"
        if reason is None and state in (L.WORKER_STOPPED, L.WORKER_FAILED):
            reason = f"the worker stopped (state {'STOPPED' if state == L.WORKER_STOPPED else 'FAILED'})"
        if reason is None:
            return
        # Responses published before the worker went away are still valid.
        self.drain()
        stderr = read_all(self._stderr_file)
        msg = reason + (f"; stderr: {stderr.strip()}" if stderr.strip() else "")
        with self._lock:
            self.dead = WorkerDied(msg, rc, stderr)
            self.fail_all(self.dead)
