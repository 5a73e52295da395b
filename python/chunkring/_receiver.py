"""The client's receiving half: the response ring's consumer, the table of requests in flight
and their :class:`Handle`, reassembly of fragmented answers (layout.md §6.4), waiting for
answers (spin, yield, park: §11, [W1]-[W4]) and noticing a dead worker (§12).

Threads: one lock serialises the consumer (and the pending table's bulk changes); any thread
may drain responses into any pending :class:`Handle`. A dead worker fails every pending
handle with :class:`WorkerDied` within one wait timeout (10 ms) plus a liveness check; a
stopped, frozen or unreaped one once its heartbeat is ``HEARTBEAT_STALE_S`` (3 s) old.

Futures: a :class:`Handle` is a :class:`concurrent.futures.Future`. Its future machinery (the
``Condition``, waiters and done callbacks that ``cf.wait``, ``as_completed``,
``add_done_callback`` and ``asyncio.wrap_future`` use) is built on first use, because building
it for every request would cost the synchronous round trip more than the round trip itself
(a ``Future()`` is ~5x a bare handle). A handle nobody used as a future is completed by two
attribute stores under the receiver lock; one whose machinery exists is "watched": it is
completed through ``Future.set_result``/``set_exception`` on the client's background
receiver thread (``_pump.py``), whichever thread read its answer: done callbacks then never
run under the sender's or the receiver's lock (a thread writing a large request drains
answers while it holds the sender's), so they may call the client. While any watched
handle is pending that thread also drains the ring, so watched handles complete with nobody
blocked in ``result()``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from itertools import repeat

from . import _layout as L
from ._barrier import barrier_memory, barrier_read
from ._futex import futex_wait, futex_wake
from ._handle import _FINISHED, _PENDING, Handle, _complete
from ._process import pid_alive, read_all, shares_one_cpu, unlink_shm
from ._reassembler import FragmentError, Reassembler
from ._ring import TAKE_SIMPLE_RUN, Consumer
from .errors import (ChecksumError, ClientClosed, ProtocolError, RegionLost, RequestError,
                     RequestTimeout, WorkerDied)

#: The client's bounded futex wait (layout.md §12 "Dead worker": notice within 10 ms).
WAIT_TIMEOUT_S = 0.010
#: A worker whose heartbeat (WORKER_HEARTBEAT_NS, stored every 100 ms by its heartbeat
#: thread, also during long ops) is older than this is stopped (SIGSTOP), hung or dead but not
#: reaped: the client raises WorkerDied (layout.md §12 "Heartbeat").
HEARTBEAT_STALE_S = 3.0
#: A stale heartbeat must stay unchanged for this much more of the client's own running time
#: before the worker counts as dead: a client stopped together with its worker (^Z stops the
#: whole process group) may run first when both resume and find the beat old before the
#: worker's heartbeat thread has stored a fresh one (layout.md §12 "Heartbeat").
HEARTBEAT_CONFIRM_NS = 300_000_000
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

_log = logging.getLogger(__name__)


class Receiver:
    """Drains the response ring into pending handles, waits for answers, watches the worker.

    ``pending`` maps request id → :class:`Handle`: the sender adds a handle before it
    publishes the request, the receiver removes it when the answer (or a failure) is in.
    ``dead`` is the :class:`WorkerDied` once the worker is gone; ``closed`` is True after
    :meth:`close`; ``watched`` counts the pending handles used as futures (module doc), which
    the background receiver thread (``pump``, started by the first :meth:`watch`) completes.
    """

    def __init__(self, region, *, proc=None, stderr_file=None, spin_ns: int,
                 owned_shm: tuple[int, int] | None = None):
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
        #: The identity of the shm object of a worker we spawned (``_process.shm_identity``),
        #: unlinked when the worker dies without doing it itself.
        self.owned_shm = owned_shm
        self._stderr_file = stderr_file
        self._worker_pid = region.worker_pid
        #: Seconds without a heartbeat after which the worker counts as dead (tests shorten it).
        self.heartbeat_stale_s = HEARTBEAT_STALE_S
        #: ``(beat, our clock)`` when a stale heartbeat was first seen (HEARTBEAT_CONFIRM_NS).
        self._stale_seen = None
        self.watched = 0
        self.pump = None
        #: True when this process and the worker may run only on the same one CPU
        #: (``taskset -c 0`` on both, or a 1-CPU machine): spinning would keep the worker
        #: from running, so every poll yields the core instead (layout.md §11 "One core").
        self.shared_core = shares_one_cpu(region.worker_pid)
        self._yield_first = False
        self._explore = 32
        #: A restarting client's supervisor (``_supervisor.py``), or None: when the worker dies
        #: it takes the pending requests (``died``) instead of their failing here, and a
        #: wait on this dead receiver follows its request to the new one (``follow``).
        self.on_death = None

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

    def close(self, timeout: float | None = None) -> None:
        """Refuse further waits, fail every pending handle with :class:`ClientClosed` and stop
        the background receiver thread (before the caller unmaps the region), waiting for it
        at most ``timeout`` seconds (and at most ``_pump.STOP_TIMEOUT_S``)."""
        late: list = []
        with self._lock:
            self.closed = True
            self._fail_all(ClientClosed("the client was closed"), late)
        pump = self.pump
        if pump is None:
            _complete(late)  # (empty: a handle becomes watched only once a pump runs)
            return
        pump.hand(late)  # its callbacks run there too, not under the caller's locks
        if self._region.mm is not None:
            self.wake_parked()  # a parked pump returns at once
        if timeout is None:
            pump.stop()
        else:
            pump.stop(timeout)

    def fail_all(self, exc: BaseException) -> None:
        """Fail every pending handle that has no answer yet with ``exc``."""
        late: list = []
        with self._lock:
            self._fail_all(exc, late)
        self._complete(late)

    def _complete(self, late: list) -> None:
        """Complete watched handles on the receiver thread (module doc), at once when this is
        that thread."""
        if not late:
            return
        pump = self.pump
        if pump is None or pump.is_current():
            _complete(late)
        else:
            pump.hand(late)

    def wake_waiters(self) -> None:
        """:meth:`wake_parked` if any thread is parked."""
        if self._parked:
            self.wake_parked()

    def wake_parked(self) -> None:
        """Wake every thread parked on CLIENT_FUTEX (AWAKE first, as in [W6], so a thread
        between its re-check and its futex_wait returns at once)."""
        self._futex_words[_CF] = _AWAKE
        futex_wake(self._client_futex, 1 << 30)

    def _fail_all(self, exc: BaseException, late: list) -> None:
        """:meth:`fail_all` with the lock held; watched handles go to ``late``."""
        pending = self.pending
        for h in pending.values():
            self._resolve(h, None, exc, late)
        pending.clear()

    def _resolve(self, h: Handle, value, exc, late: list) -> None:
        """Complete ``h``, just popped from ``pending`` (lock held): a handle never used as a
        future by two stores (nobody can wait on its Condition: it has none, and building one
        takes this lock); a watched one later, through :func:`_complete`."""
        if h._cond is None:
            if exc is None:
                h._result = value
            else:
                h._exception = exc
            h._state = _FINISHED  # last: a thread spinning on _state then reads the value
        else:
            self.watched -= 1
            late.append((h, value, exc))

    # ------------------------------------------------------------------ futures
    def watch(self, h: Handle) -> threading.Condition:
        """Build ``h``'s future machinery (``Handle._condition``) and, while it is pending,
        count it as watched and make sure the background receiver thread runs."""
        with self._lock:
            c = h._cond
            if c is not None:
                return c
            h._waiters = []
            h._done_callbacks = []
            c = h._cond = threading.Condition()
            if self.pending.get(h.request_id) is not h or self.closed:
                return c
            self.watched += 1
            pump = self.pump
            if pump is None:
                from ._pump import Pump
                pump = self.pump = Pump(self, _complete)
        pump.wake()
        return c

    def forget(self, h: Handle) -> None:
        """Drop a cancelled handle from ``pending``: its answer is discarded on arrival."""
        with self._lock:
            if self.pending.get(h.request_id) is not h:
                return
            del self.pending[h.request_id]
            if h._cond is not None:
                self.watched -= 1
        if not self.closed:
            self.wake_waiters()  # a thread in result() on it returns now, not after its park
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("request %#x (op %#06x) cancelled; its answer will be discarded",
                       h.request_id, h.op)

    # ------------------------------------------------------------------ draining
    def poll(self) -> None:
        """Drain whatever answers are already published, without waiting."""
        if self._consumer.pending():
            self.drain()

    def drain(self, limit: int | None = None) -> int:
        """Read every published response frame: resolve handles, release the chunks ([R6],
        then [W5]-[W6] if the worker waits for room); the number of frames read. With
        ``limit``: at most that many, of those one load of the tail shows (a push reading
        earlier pushes' answers takes a worker's burst a few at a time, and no more loads
        of a line the worker is writing)."""
        cons = self._consumer
        reassembler = self._reassembler
        pending = self.pending
        count = 0
        late: list = []
        lock = self._lock
        lock.acquire()
        # Runs of simple answers in bulk (``Consumer.take_simple``), except with checksums
        # and while a fragmented answer is open; everything else frame by frame.
        bulk = not cons.crc
        left = TAKE_SIMPLE_RUN << 32 if limit is None else limit  # frames still to read
        try:
            while left > 0:
                if limit is not None and count and cons.head == cons.cached_tail:
                    break  # what the tail showed is read: no second load of it
                if bulk and reassembler.open is None:
                    run = cons.take_simple(min(left, TAKE_SIMPLE_RUN))
                    if run is not None:
                        n = self._resolve_run(run, late)
                        count += n
                        left -= n
                        continue  # the next run, if any
                frame = cons.poll()
                if frame is None:
                    break
                count += 1
                left -= 1
                flags, op, status, rid, fidx, mlen, payload = frame
                if fidx or flags & _MORE or reassembler.open is not None:
                    payload = self._reassemble(flags, op, rid, fidx, mlen, payload, late)
                    if payload is None:
                        continue
                if rid == 0 and flags & _ERROR:
                    self._lose_all(status, payload, late)
                    continue
                h = pending.pop(rid, None)
                if h is None:
                    continue  # not ours (an earlier client's, or cancelled, §12): discard
                if flags & _ERROR:
                    self._resolve(h, None,
                                  RequestError(status, payload.decode("utf-8", "replace"), op), late)
                elif h._cond is None:  # _resolve inlined: the synchronous round trip's path
                    h._result = payload
                    h._state = _FINISHED
                else:
                    self._resolve(h, payload, None, late)
        except ProtocolError as exc:
            lost = self._lost()  # a truncated region reads zeros: say so, not "bad frame"
            self._fail_all(lost or exc, late)
            if lost is not None:
                raise lost from None
            if not isinstance(exc, ChecksumError):
                raise
            # A checksummed ring resynchronised (§6.6): every handle in flight now holds the
            # error and the next frame is good, so draining (``done()``, a sender waiting for
            # room) goes on without raising.
            self._reassembler.open = None
        finally:
            try:
                cons.release()
            finally:
                lock.release()
                if late:
                    self._complete(late)
        if count and self._parked:
            # Another thread may be parked on CLIENT_FUTEX for a handle we just resolved.
            self.wake_parked()
        return count

    def _resolve_run(self, run, late: list) -> int:
        """Complete the pending handles of a run of simple answers ``(request_ids, payloads)``
        (lock held); unknown ids are discarded as in :meth:`drain`. The run's length."""
        rids, payloads = run
        resolve = self._resolve
        for h, payload in zip(list(map(self.pending.pop, rids, repeat(None))), payloads):
            if h is None:
                continue  # not ours (an earlier client's, or cancelled, §12): discard
            if h._cond is None:  # _resolve inlined, as in drain
                h._result = payload
                h._state = _FINISHED
            else:
                resolve(h, payload, None, late)
        return len(rids)

    def _reassemble(self, flags, op, rid, fidx, mlen, payload, late: list):
        """The whole payload once the last fragment is in, else None (§6.4)."""
        reassembler = self._reassembler
        try:
            payload = reassembler.accept(flags, op, rid, fidx, mlen, payload)
        except FragmentError as exc:
            self._fail_one(exc.request_id, str(exc), late)
            payload = None
        abandoned = reassembler.take_abandoned()
        if abandoned is not None:
            self._fail_one(abandoned, "response fragments abandoned before the last one", late)
        return payload

    def _fail_one(self, rid: int, message: str, late: list) -> None:
        h = self.pending.pop(rid, None)
        if h is not None:
            self._resolve(h, None, ProtocolError(message), late)

    def _lose_all(self, status: int, payload: bytes, late: list) -> None:
        """An error frame with request id 0: the worker resynchronised and dropped everything
        published so far (§6.5). A raw-frame test may have registered a handle for id 0."""
        msg = payload.decode("utf-8", "replace")
        zero = self.pending.pop(0, None)
        if zero is not None:
            self._resolve(zero, None, RequestError(status, msg), late)
        _log.error("the worker discarded every request in flight after a malformed frame: %s", msg)
        error = ChecksumError if status == L.ERR_CHECKSUM else ProtocolError
        self._fail_all(error(
            f"the worker discarded every request in flight after a malformed frame: {msg}"
        ), late)

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
        if slot._state is _PENDING:
            self.wait(slot, timeout, _AFTER_WAKE_SPIN_NS if woken else None)
        if slot._exception is not None:
            raise slot._exception
        return slot._result

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
                if h._state is not _PENDING:
                    return
                continue
            if h._state is not _PENDING:
                return  # another thread drained our response (or it was cancelled)
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
                if h._state is not _PENDING:
                    return  # another thread drained our response (or it was cancelled)
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
            if self.park(lambda: h._state is not _PENDING or cons.pending()):
                continue
            self.check_alive()
            if h._state is not _PENDING:
                return
            if self.dead is not None:
                if self.on_death is not None:
                    return self.on_death.follow(self, h, deadline)
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

    def _lost(self) -> RegionLost | None:
        """The :class:`RegionLost` once the region was truncated (layout.md §12 "Truncated
        region"), recorded as ``dead``; None while it is whole. Slow paths only."""
        if isinstance(self.dead, RegionLost):
            return self.dead
        region = self._region
        reason = region.lost() if region.mm is not None else None
        if reason is None:
            return None
        lost = RegionLost(reason + "; every request in flight is lost")
        if self.dead is None:
            self.dead = lost
            _log.error("%s", reason)
        return lost

    def explain(self, exc: ProtocolError) -> BaseException:
        """``exc`` (a ring that broke layout.md) as the caller should see it: the
        :class:`RegionLost` when the region was truncated (every pending request fails with
        it), else ``exc`` itself."""
        lost = self._lost()
        if lost is None:
            return exc
        self.fail_all(lost)
        return lost

    def check_alive(self) -> None:
        """After a park: notice a truncated region, a dead or stopped worker (layout.md §12)
        and fail every pending request."""
        if self.dead is not None:
            return
        lost = self._lost()  # first: a worker that saw it too has stopped, which says less
        if lost is not None:
            self.fail_all(lost)
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
        if reason is None and self._region.mm is not None:
            # A live pid says nothing of a worker that is stopped (SIGSTOP), hung, or dead
            # but not reaped (a zombie): its heartbeat thread has stopped storing (§12).
            beat = self._region.heartbeat_ns
            if beat:
                now = _monotonic_ns()
                age = (now - beat) / 1e9
                seen = self._stale_seen
                if age <= self.heartbeat_stale_s:
                    self._stale_seen = None
                elif seen is None or seen[0] != beat:
                    self._stale_seen = (beat, now)  # confirm it over our own running time
                elif now - seen[1] >= HEARTBEAT_CONFIRM_NS:
                    reason = (f"worker heartbeat stale for {age:.1f} s (pid {self._worker_pid}: "
                              f"stopped, hung, or dead but not reaped)")
        if reason is None:
            return
        # Responses published before the worker went away are still valid.
        self.drain()
        if rc is not None:
            # A spawned worker that died (SIGKILL) could not unlink its region (§12).
            unlink_shm(self._region.path, self.owned_shm)
        stderr = read_all(self._stderr_file)
        msg = reason + (f"; stderr: {stderr.strip()}" if stderr.strip() else "")
        late: list = []
        with self._lock:
            if self.dead is not None:
                return  # another thread noticed first
            self.dead = WorkerDied(msg, rc, stderr)
            lost = len(self.pending)
            if self.on_death is not None:
                taken = list(self.pending.values())
                self.pending.clear()
            else:
                self._fail_all(self.dead, late)
        if self.on_death is not None:
            _log.error("%s; %d request(s) pending", msg, lost)
            self.on_death.died(self, taken)  # restart, re-send what is safe, fail the rest
            return
        _log.error("%s; %d pending request(s) failed", msg, lost)
        self._complete(late)
