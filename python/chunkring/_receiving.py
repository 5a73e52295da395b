"""The client's receiving half: drain the response ring into pending handles, reassemble
fragmented answers (layout.md §6.4), wait for answers (spin, yield, park: §11, [W1]–[W4]) and
notice a dead worker (§12). A mixin of :class:`~chunkring.client.Client`, which owns the
state it uses (``_cons``, ``_pending``, ``_recv_lock``, ...)."""

from __future__ import annotations

import os
import time

from . import _layout as L
from ._barrier import barrier_memory, barrier_read
from ._futex import futex_wait, futex_wake
from ._handle import _PENDING, Handle
from ._process import pid_alive, read_all
from .errors import ClientClosed, ProtocolError, RequestError, RequestTimeout, WorkerDied

#: The client's bounded futex wait (layout.md §12 "Dead worker": notice within 10 ms).
WAIT_TIMEOUT_S = 0.010
#: The first part of the spin window polls without yielding (§11 step 1); the rest yields
#: the CPU between polls (step 2), so a worker that shares this core gets to run. Measured
#: with both processes pinned to one core (``taskset -c 0``): without the yield every round
#: trip costs the whole window plus a futex wake (~65 µs); with it, a few µs.
_PURE_SPIN_NS = 5_000
_sched_yield = getattr(os, "sched_yield", lambda: time.sleep(0))
_monotonic_ns = time.monotonic_ns
_MORE = L.FLAG_MORE
_ERROR = L.FLAG_ERROR
_PARKED = L.PARKED
_PARKED_FOR_ROOM = L.PARKED_FOR_ROOM
_AWAKE = L.AWAKE
_CF = L.CLIENT_FUTEX_OFFSET // 4


class Receiving:
    """Receiving, waiting and liveness methods of :class:`~chunkring.client.Client`."""


    def _poll_nowait(self) -> None:
        if self._cons.pending():
            self._drain_locked()

    def _drain_locked(self) -> int:
        lock = self._recv_lock
        lock.acquire()
        try:
            n = self._drain()
        finally:
            lock.release()
        if n and self._parked:
            # Another thread may be parked on CLIENT_FUTEX for a handle we just resolved.
            # AWAKE first, as in [W6], so a thread between its re-check and its futex_wait
            # returns at once instead of sleeping out the timeout.
            self._i[_CF] = _AWAKE
            futex_wake(self._client_futex, 1 << 30)
        return n

    def _drain(self) -> int:
        """Read every published response frame, resolve handles, release the chunks (recv lock held)."""
        cons = self._cons
        pending = self._pending
        count = 0
        try:
            while True:
                frame = cons.poll()
                if frame is None:
                    break
                count += 1
                flags, op, status, rid, fidx, mlen, payload = frame
                if fidx or flags & _MORE or self._assembly is not None:
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
            self._fail_all(exc)
            raise
        finally:
            if cons.release():
                self._wake_worker(_PARKED_FOR_ROOM)
        return count

    def _reassemble(self, flags, op, rid, fidx, mlen, payload):
        """Collect fragments (§6.4); the whole payload once the last one is in, else None."""
        asm = self._assembly
        if fidx == 0:
            if asm is not None:
                self._fail_one(asm[0], "response fragments abandoned before the last one")
            if not flags & _MORE:
                self._assembly = None
                return payload if mlen == len(payload) else self._bad_fragments(rid, mlen, len(payload))
            self._assembly = [rid, op, mlen, 1, [payload], len(payload)]
            return None
        if asm is None or asm[0] != rid or asm[1] != op or asm[2] != mlen or asm[3] != fidx:
            self._assembly = None
            return self._bad_fragments(rid, mlen, fidx)
        asm[4].append(payload)
        asm[5] += len(payload)
        asm[3] += 1
        if asm[5] > mlen:
            self._assembly = None
            return self._bad_fragments(rid, mlen, asm[5])
        if flags & _MORE:
            return None
        self._assembly = None
        if asm[5] != mlen:
            return self._bad_fragments(rid, mlen, asm[5])
        return b"".join(asm[4])

    def _bad_fragments(self, rid, mlen, got):
        self._fail_one(rid, f"response fragments out of sequence (message_len {mlen}, got {got})")
        return None

    def _fail_one(self, rid: int, message: str) -> None:
        h = self._pending.pop(rid, None)
        if h is not None:
            h._error = ProtocolError(message)

    def _lose_all(self, status: int, payload: bytes) -> None:
        """An error frame with request id 0: the worker resynchronised and dropped everything
        published so far (§6.5). A raw-frame test may have registered a handle for id 0."""
        msg = payload.decode("utf-8", "replace")
        zero = self._pending.pop(0, None)
        if zero is not None:
            zero._error = RequestError(status, msg)
        self._fail_all(ProtocolError(
            f"the worker discarded every request in flight after a malformed frame: {msg}"
        ))

    def _fail_all(self, exc: BaseException) -> None:
        pending = self._pending
        for h in pending.values():
            if h._error is None and h._value is _PENDING:
                h._error = exc
        pending.clear()

    # ------------------------------------------------------------------ waiting
    def _wait_for(self, h: Handle, timeout: float | None) -> None:
        cons = self._cons
        deadline = None
        while True:
            if cons.pending():
                self._drain_locked()
                if h._value is not _PENDING or h._error is not None:
                    return
                continue
            # layout.md §11 steps 1 and 2: poll the live tail for a few µs, then keep polling
            # but yield the CPU between polls (the worker may share this core), then park.
            now = _monotonic_ns()
            if deadline is None and timeout is not None:
                deadline = now + int(timeout * 1e9)
            spin_end = now + _PURE_SPIN_NS
            yield_end = now + self._spin_ns
            while not cons.pending():
                if h._value is not _PENDING or h._error is not None:
                    return  # another thread drained our response
                now = _monotonic_ns()
                if now > spin_end:
                    if now > yield_end:
                        break
                    _sched_yield()
            else:
                continue
            if deadline is not None and now >= deadline:
                raise RequestTimeout(
                    f"no response to request {h.request_id:#x} within {timeout} s (still pending)"
                )
            if self._park(lambda: h._value is not _PENDING or h._error is not None or cons.pending()):
                continue
            self._check_alive()
            if h._value is not _PENDING or h._error is not None:
                return
            if self._dead is not None:
                raise self._dead
            if self._closed:
                raise ClientClosed("the client was closed")

    def _park(self, ready, reason: int = _PARKED) -> bool:
        """[W1]..[W4] on CLIENT_FUTEX; True if ``ready()`` held at the re-check (no sleep).

        ``reason`` is what we wait for (layout.md §11): PARKED for answers, PARKED_FOR_ROOM
        for request-ring room, or both; the worker wakes us only for those."""
        i = self._i
        with self._recv_lock:
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
            with self._recv_lock:
                self._parked -= 1

    def _check_alive(self) -> None:
        """After a park: notice a dead or stopped worker (layout.md §12) and fail every pending request."""
        if self._dead is not None:
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
        self._drain_locked()
        stderr = read_all(self._stderr_file)
        msg = reason + (f"; stderr: {stderr.strip()}" if stderr.strip() else "")
        with self._recv_lock:
            self._dead = WorkerDied(msg, rc, stderr)
            self._fail_all(self._dead)

    # ------------------------------------------------------------------ test hooks
