"""The policy behind ``Client.spawn(restart=True)`` (layout.md §12 "Client recovery"; a
client-side policy, nothing on the wire changes): which requests are safe to send again, how
often and how soon to restart, and what happens to each request pending at a death.

When the receiver notices the worker's death (``Receiver.check_alive``) it hands every
request still pending to :meth:`Supervisor.died` instead of failing them. The supervisor then,
on that thread:

1. starts a new worker with the spawn's options under a new region name (``<name>-r<n>``),
   after a pause that grows with the restarts of the last ``restart_window`` seconds
   (:class:`RestartPolicy`); after ``max_restarts`` of them it gives up for good. A worker
   declared dead while its process still exists (a stale heartbeat: frozen) is killed first;
2. rebinds the client to it (``Client._bind``: a new receiver and sender) and bumps
   ``client._epoch``, which every ``History`` compares with its own at its next call
   (``_history.py``: it reopens itself from its last saved file, or raises);
3. sends again, to the new worker, every pending request whose op is safe to repeat
   (:func:`repeatable`: ``_layout.PURE_OPS`` and pipelines of them): the same
   :class:`Handle` object, under a new request id, so its caller's future completes with the
   new worker's answer;
4. fails every other pending request with :class:`WorkerRestarted`: history pushes and moves,
   log appends and saves are never run twice.

A thread waiting on a handle in the dead receiver follows it to the new one
(:meth:`Supervisor.follow`). The dead worker's region stays mapped until the next restart or
``close`` (a thread may still be polling it for a moment); its shm object is unlinked at once.
The client side (the calls that send again) is ``_restart.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from . import _layout as L
from ._handle import _PENDING, Handle, _complete
from ._op_names import OP_CODES, OP_CONSTANTS
from ._process import reap, unlink_shm
from ._sender import seconds_left
from .client import claim_slot, start_worker
from .errors import RegionLost, RequestTimeout, WorkerDied, WorkerRestarted, WorkerStartError

__all__ = ["RestartPolicy", "Supervisor", "repeatable", "send_handle"]

_log = logging.getLogger(__name__)

#: The pause before the k-th restart within the window (k >= 2) is
#: ``BACKOFF_S * 2 ** (k - 2)``, at most ``BACKOFF_MAX_S``; the first one is immediate.
BACKOFF_S = 0.1
BACKOFF_MAX_S = 5.0


def repeatable(op, params) -> bool:
    """True when request ``op`` (a code or a name) with ``params`` is safe to send again
    after a death: ``op in PURE_OPS``, or a pipeline whose every stage is."""
    if type(op) is str:
        op = OP_CODES.get(op)
    if op in L.PURE_OPS:
        return True
    if op != L.OP_PIPELINE or type(params) is not dict:
        return False
    stages = params.get("stages")
    return (type(stages) is list and len(stages) > 0
            and all(type(s) is dict and s.get("op") in L.PURE_OPS for s in stages))


class RestartPolicy:
    """At most ``max_restarts`` restarts within ``window`` seconds, each after a pause that
    doubles with the restarts already made in the window (``BACKOFF_S``), so a worker that
    dies at once cannot make the client spin."""

    def __init__(self, max_restarts: int, window: float):
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an int >= 0, not {max_restarts!r}")
        if not window > 0:
            raise ValueError(f"restart_window must be > 0 seconds, not {window!r}")
        self.max_restarts = max_restarts
        self.window = float(window)
        self._times: deque = deque()

    def next_pause(self, now: float) -> float | None:
        """Seconds to wait before the next restart (which is then counted), or None when
        ``max_restarts`` were made within the window."""
        times = self._times
        while times and now - times[0] > self.window:
            times.popleft()
        k = len(times)
        if k >= self.max_restarts:
            return None
        times.append(now)
        return 0.0 if k == 0 else min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (k - 1))


def send_handle(sender, op: int, body, params, deadline: int | None, h: Handle | None = None):
    """``Sender.submit`` for a restarting client: the new :class:`Handle` carries its request
    (``_resend``) from before it is registered, so a death at any point can send it again.
    With ``h``: send that handle again (after a restart), keeping the future its caller holds."""
    op, prefix = sender._check(op, body, params)
    rx = sender._receiver
    sender._enter(deadline)
    try:
        if h is None:
            def make(rid):
                n = Handle(rx, rid, op)
                n._resend = (op, body, params)
                return n
            h = sender._register(make)
        else:
            sender._register(lambda rid: _rehome(h, rx, rid))
        sender._write_or_forget(op, h.request_id, body, prefix)
        sender.worker_woken = sender.producer.publish() == 2
    finally:
        sender._lock.release()
    if h._cond is not None and rx.pump is not None:
        rx.pump.wake()
    return h


def _rehome(h: Handle, rx, rid: int) -> Handle:
    """Make ``h`` a request of receiver ``rx`` under id ``rid``; a handle used as a future is
    watched there (the background receiver thread of ``rx`` completes it)."""
    h.request_id = rid
    h._receiver = rx
    if h._cond is not None:
        with rx._lock:
            rx.watched += 1
            if rx.pump is None:
                from ._pump import Pump
                rx.pump = Pump(rx, _complete)
    return h


class Supervisor:
    """Restarts the worker of one ``RestartingClient`` (module doc); the ``on_death`` of
    each of its receivers."""

    def __init__(self, client, policy: RestartPolicy, binary: str,
                 name: str, timeout: float, options: dict):
        self.client = client
        self.policy = policy
        self._binary = binary
        self._base = name[:48]
        self._timeout = timeout
        self._options = options
        self._lock = threading.RLock()
        self._attempts = 0
        #: ``(receiver, region, proc, stderr_file)`` of dead workers, closed at the next
        #: restart or at ``close``.
        self._graveyard: list[tuple] = []
        #: Set (for good) when a death came after ``max_restarts`` restarts in the window.
        self.gave_up: WorkerDied | None = None
        #: True once the client is shutting down or closing: a death then is not restarted.
        self.closing = False

    def adopt(self, rx) -> None:
        """Make ``rx`` report its worker's death here."""
        rx.restart_done = threading.Event()
        rx.on_death = self

    # ------------------------------------------------------------------ death
    def died(self, rx, taken: list) -> None:
        """``rx``'s worker died with ``taken`` pending: restart, send the safe ones again,
        fail the rest. Sets ``rx.restart_done`` at the end, whatever happens.

        Only the restart itself holds the supervisor's lock: sending again takes the new
        sender's lock, which a thread meeting the next death may hold while it waits here."""
        try:
            with self._lock:
                restarted = self._restart(rx)
            death = rx.dead
            if not restarted:
                self._fail(rx, taken, death)
                taken = []
            self._settle(rx, taken, death)
            with rx._lock:  # registered by a thread that passed the dead check just before
                late = list(rx.pending.values())
                rx.pending.clear()
            self._settle(rx, late, death)
        finally:
            rx.restart_done.set()

    def _restart(self, rx) -> bool:
        """Start a new worker for dead ``rx`` (module doc); False when it is not restarted
        (the client is closing, or gave up: ``rx.dead`` is then the final error)."""
        client = self.client
        death = rx.dead
        if self.closing or client._stopped:  # an intended stop: fail as a plain client does
            return False
        client.last_death = death
        proc = client._proc
        if proc is not None and proc.poll() is None:  # frozen or hung (stale heartbeat): ours
            proc.kill()
            reap(proc, 5.0)
        unlink_shm(client._region.path, rx.owned_shm)
        while True:
            pause = self.policy.next_pause(time.monotonic())
            if pause is None:
                self._give_up(rx, death)
                return False
            if pause:
                time.sleep(pause)
            try:
                self._start()
                break
            except WorkerStartError as exc:
                client.last_death = WorkerDied(f"restart failed: {exc}", exc.returncode, exc.stderr)
                _log.error("worker restart failed: %s", exc)
        client.restarts += 1
        client._epoch += 1
        _log.warning("worker restarted (%d so far): pid %d, region %s", client.restarts,
                     client.pid, client.path)
        return True

    def _start(self) -> None:
        """Launch a worker under a new region name and rebind the client to it; the old
        worker's parts go to the graveyard (closing those of the death before)."""
        client = self.client
        self._attempts += 1
        name = f"{self._base}-r{self._attempts}"
        self._bury()

        def bind(region, proc, stderr_file) -> None:
            claim_slot(region)
            self._graveyard.append((client._receiver, client._region, client._proc,
                                    client._stderr_file))
            client._bind(region, proc, stderr_file)
            client._name = name
            self.adopt(client._receiver)

        start_worker(self._binary, name, self._timeout, bind, **self._options)

    def _settle(self, rx, handles: list, death: WorkerDied) -> None:
        """Send the safe ``handles`` again; fail the others with :class:`WorkerRestarted`."""
        lost = []
        for h in handles:
            if h._state is not _PENDING:
                continue
            resend = getattr(h, "_resend", None)  # a Slot has none: its caller sends again
            if resend is None:
                lost.append(h)
            else:
                self._resend(h, resend)
        for h in lost:
            op = getattr(h, "op", None)
            what = f"request {h.request_id:#x}" + (f" ({OP_CONSTANTS.get(op, op)})" if op else "")
            self._fail(rx, [h], WorkerRestarted(
                f"{death}; {what} was not sent again (it is not safe to repeat): a new "
                f"worker (pid {self.client.pid}) serves the client now",
                death.returncode, death.stderr))

    def _resend(self, h: Handle, request: tuple) -> None:
        client = self.client
        while h._state is _PENDING:
            sender = client._sender
            try:
                send_handle(sender, *request, None, h)
                return
            except WorkerDied as exc:
                # The new worker died too: its death restarted it again (or gave up). Unless
                # that already took h over (pending there), try the newest worker.
                rx = sender._receiver
                try:
                    self.await_restart(rx, exc, None)
                except WorkerDied as final:
                    self._fail(rx, [h], final)
                    return
                if h._receiver.pending.get(h.request_id) is h:
                    return

    def _fail(self, rx, handles: list, exc: BaseException) -> None:
        late: list = []
        with rx._lock:
            for h in handles:
                if h._state is _PENDING:
                    rx._resolve(h, None, exc, late)
        rx._complete(late)

    def _give_up(self, rx, death: WorkerDied) -> None:
        p = self.policy
        final = WorkerDied(
            f"{death}; not restarting it: {p.max_restarts} restart(s) within "
            f"{p.window:g} s already (max_restarts); the client is unusable",
            death.returncode, death.stderr)
        final.__cause__ = self.client.last_death
        self.gave_up = final
        with rx._lock:
            rx.dead = final  # every later call raises this one
        _log.error("%s", final)

    # ------------------------------------------------------------------ waiting
    def follow(self, rx, h, deadline: int | None) -> None:
        """A wait on dead ``rx`` for ``h``: once the restart is over, wait for ``h`` where it
        was sent again, or raise why it was not."""
        if isinstance(rx.dead, RegionLost):  # not a death the supervisor handles
            raise rx.dead
        if not rx.restart_done.wait(seconds_left(deadline)):
            raise RequestTimeout(f"no response to request {h.request_id:#x}: the worker died "
                                 "and is still being restarted")
        if h._state is _PENDING and getattr(h, "_receiver", rx) is rx:
            with self._lock:
                with rx._lock:
                    late = list(rx.pending.values())
                    rx.pending.clear()
                if late:
                    self._settle(rx, late, rx.dead)
        if h._state is not _PENDING:
            return None
        moved = getattr(h, "_receiver", rx)
        if moved is not rx:
            return moved.wait(h, seconds_left(deadline))
        raise rx.dead

    def await_restart(self, rx, exc: WorkerDied, deadline: int | None) -> None:
        """After ``exc`` from ``rx``: return once a new worker serves the client, else raise
        (the final ``WorkerDied`` when it gave up, ``RequestTimeout`` at ``deadline``)."""
        done = getattr(rx, "restart_done", None)
        if done is None or rx.dead is None or isinstance(rx.dead, RegionLost):
            raise exc  # a truncated region (RegionLost) is not restarted: the client is done
        if not done.wait(seconds_left(deadline)):
            raise RequestTimeout("the worker died and is still being restarted") from exc
        if self.gave_up is not None:
            raise self.gave_up
        if self.closing:
            raise exc

    # ------------------------------------------------------------------ cleanup
    def _bury(self, everything: bool = False) -> None:
        """Close the parts of dead workers whose restart is over (another death during it
        may be handled further up a stack that still uses them): receiver (its background
        thread), mapping, shm object (if still there), stderr file."""
        graveyard = self._graveyard
        done = [g for g in graveyard if everything or g[0].restart_done.is_set()]
        self._graveyard = [g for g in graveyard if g not in done]
        for rx, region, proc, stderr_file in done:
            rx.close()
            if proc is not None:
                reap(proc, 0)
            if region.mm is not None:
                region.close()
            unlink_shm(region.path, rx.owned_shm)
            if stderr_file is not None:
                stderr_file.close()

    def close(self) -> None:
        with self._lock:
            self._bury(everything=True)
