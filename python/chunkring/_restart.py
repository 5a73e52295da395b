"""The client of ``Client.spawn(restart=True)``: :class:`RestartingClient`, whose calls
survive a worker's death where that is safe (layout.md §12 "Client recovery"; the policy and
what happens to the requests pending at a death are in ``_supervisor.py``).

Its synchronous calls (``call``, ``echo``, ``map``, ``pipeline``, ``info``) catch the
``WorkerDied`` of a dead receiver, wait for the restart, and send a safe request again; an
unsafe one raises :class:`WorkerRestarted`. ``submit`` marks a safe request's handle so that a
death sends it again. The fast path of a client spawned without ``restart`` is untouched: it
never sees this module.
"""

from __future__ import annotations

from collections import deque

from . import _layout as L
from ._handle import Handle
from ._sender import deadline_after, seconds_left
from ._op_names import OP_CONSTANTS, op_code
from ._supervisor import RestartPolicy, Supervisor, repeatable, send_handle
from .client import Client
from .errors import WorkerDied, WorkerRestarted

__all__ = ["RestartingClient"]

_END = object()


class RestartingClient(Client):
    """A :class:`Client` from ``Client.spawn(restart=True)`` (module doc): its calls survive a
    worker's death where that is safe, and raise :class:`WorkerRestarted` where it is not."""

    _sup: Supervisor

    @classmethod
    def subclass_of(cls, base: type) -> type:
        """This class for ``Client``; for a subclass of it, one that is both."""
        if issubclass(cls, base):
            return cls
        return type(f"Restarting{base.__name__}", (cls, base), {})

    def _supervise(self, policy: RestartPolicy, binary: str, name: str, timeout: float,
                   options: dict) -> None:
        self._sup = Supervisor(self, policy, binary, name, timeout, options)
        self._sup.adopt(self._receiver)

    def _bind(self, region, proc, stderr_file, crc=None) -> None:
        super()._bind(region, proc, stderr_file, crc)  # (keeps our submit and echo)
        #: One worker's sender, receiver and lean round trip, read together (one load) by
        #: each attempt, so a death is always waited for on the receiver it came from.
        self._parts = (self._sender, self._receiver, self._round_trip)

    @property
    def max_restarts(self) -> int:
        """Restarts allowed within ``restart_window`` seconds."""
        return self._sup.policy.max_restarts

    # ------------------------------------------------------------------ requests
    def echo(self, data: bytes, timeout: float | None = None) -> bytes:
        return self.call(L.OP_ECHO, data, None, timeout)

    def call(self, op: int, body: bytes = b"", params: dict | None = None,
             timeout: float | None = None) -> bytes:
        """:meth:`Client.call`; a safe request is sent again after each death until it is
        answered (or ``timeout`` runs out), another raises :class:`WorkerRestarted`."""
        deadline = deadline_after(timeout)
        if type(op) is str:
            op = op_code(op)  # (a name: its code, then the same way)
        lean = type(body) is bytes and type(op) is int and 0 <= op <= 0xFFFF

        def attempt(sender, rx, round_trip):
            if lean:  # Client.call's fast path (``_lean.py``)
                return round_trip(body, seconds_left(deadline), op, params)
            slot = sender.send(op, body, params, deadline)
            return rx.take(slot, seconds_left(deadline), sender.worker_woken)
        return self._surviving(op, params, deadline, attempt)

    def _surviving(self, op: int, params, deadline: int | None, attempt):
        """``attempt(sender, receiver, round_trip)`` on the current worker; after a death,
        again for a safe request, else :class:`WorkerRestarted` (once the restart is over)."""
        pure = repeatable(op, params)
        while True:
            parts = self._parts
            rx = parts[1]
            try:
                return attempt(*parts)
            except WorkerDied as exc:
                if not pure:
                    raise self._not_repeated(rx, exc, op, deadline) from None
                self._sup.await_restart(rx, exc, deadline)

    def _not_repeated(self, rx, exc: WorkerDied, op: int, deadline: int | None) -> WorkerDied:
        """What an unsafe request that met a death raises, once the restart is over."""
        try:
            self._sup.await_restart(rx, exc, deadline)
        except WorkerDied as final:
            return final
        death = rx.dead or exc
        out = WorkerRestarted(f"{death}; {OP_CONSTANTS.get(op, op)} was not sent again (it is not "
                              f"safe to repeat): a new worker (pid {self.pid}) serves the "
                              "client now", death.returncode, death.stderr)
        out.__cause__ = exc
        return out

    def submit(self, op: int, body: bytes = b"", params: dict | None = None, *,
               timeout: float | None = None) -> Handle:
        """:meth:`Client.submit`; a safe request's handle is sent again after a death (its
        future then completes with the new worker's answer), another fails with
        :class:`WorkerRestarted`."""
        deadline = deadline_after(timeout)
        if repeatable(op, params):
            def attempt(sender, rx, round_trip):
                return send_handle(sender, op, body, params, deadline)
        else:
            def attempt(sender, rx, round_trip):
                return sender.submit(op, body, params, timeout=seconds_left(deadline))
        return self._surviving(op, params, deadline, attempt)

    def submit_many(self, requests, *, timeout: float | None = None) -> list[Handle]:
        """:meth:`Client.submit_many`; with a safe request among them, each is sent as
        :meth:`submit` sends it (so that a death sends the safe ones again)."""
        requests = [tuple(r) for r in requests]
        if any(repeatable(r[0], r[2] if len(r) > 2 else None) for r in requests if r):
            deadline = deadline_after(timeout)
            return [self.submit(*r, timeout=seconds_left(deadline)) for r in requests]
        sender, rx, _ = self._parts
        try:
            return sender.submit_many(requests, timeout)
        except WorkerDied as exc:
            raise self._not_repeated(rx, exc, requests[0][0], None) from None

    def _mapped(self, op, items, window, params, timeout):
        """:meth:`Client.map`'s loop; for a safe op, after a death the bodies whose answers
        were not yielded yet are sent again, first, in order."""
        if not repeatable(op, params):
            yield from super()._mapped(op, items, window, params, timeout)
            return
        unanswered: deque = deque()  # bodies sent whose answers were not yielded yet
        again: deque = deque()  # bodies to send again before the rest of ``items``

        def bodies():
            while True:
                if again:
                    body = again.popleft()
                else:
                    body = next(items, _END)
                    if body is _END:
                        return
                unanswered.append(body)
                yield body

        while True:
            rx = self._parts[1]
            try:
                for value in super()._mapped(op, bodies(), window, params, timeout):
                    unanswered.popleft()
                    yield value
                return
            except WorkerDied as exc:
                self._sup.await_restart(rx, exc, deadline_after(timeout))
                again.extendleft(reversed(unanswered))
                unanswered.clear()

    # ------------------------------------------------------------------ lifetime
    def shutdown(self, timeout: float = 5.0) -> None:
        self._sup.closing = True
        super().shutdown(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._sup.closing = True
        super().close(timeout)
        self._sup.close()
