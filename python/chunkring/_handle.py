"""What a request in flight is to its caller: a :class:`Handle` (a
:class:`concurrent.futures.Future` of the response bytes, whose Future machinery is built only
when someone uses it as one) or, on the synchronous fast path, a bare :class:`Slot`. The
:class:`~chunkring._receiver.Receiver` completes both.
"""

from __future__ import annotations

import concurrent.futures as _cf
import threading
from concurrent.futures import _base as _cf_base
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._receiver import Receiver

# concurrent.futures.Future's states (module constants, compared by identity below: only
# Future's own methods and this module store them).
_PENDING = _cf_base.PENDING
_FINISHED = _cf_base.FINISHED
_CANCELLED_STATES = (_cf_base.CANCELLED, _cf_base.CANCELLED_AND_NOTIFIED)


class Handle(_cf.Future):
    """One request in flight, as a :class:`concurrent.futures.Future` of the response bytes.

    ``result(timeout)`` waits for the answer, reading the response ring itself (no thread
    handoff); ``cf.wait``, ``cf.as_completed``, ``add_done_callback`` and
    ``asyncio.wrap_future`` work too: the first of those starts the client's background
    receiver thread, which completes watched handles as their answers arrive. Done callbacks
    run on that thread (or, added to a handle already done, at once on the adding thread);
    keep them short: answers for futures wait while one runs.

    ``cancel()`` on a pending handle succeeds but cannot unsend the request: the worker still
    runs it, and its answer is discarded when it arrives (the request id leaves the pending
    table at once).
    """

    __slots__ = ("_receiver", "request_id", "op", "_state", "_result", "_exception",
                 "_cond", "_waiters", "_done_callbacks")

    def __init__(self, receiver: "Receiver", request_id: int, op: int):
        # Future.__init__ is not called: its Condition is built on first use (_condition).
        # `_result` is stored with FINISHED only: every reader checks the state first.
        self._receiver = receiver
        #: The frame's request id (layout.md §6.1), unique among this client's requests.
        self.request_id = request_id
        self.op = op
        self._state = _PENDING
        self._exception: BaseException | None = None
        self._cond: threading.Condition | None = None

    @property
    def _condition(self) -> threading.Condition:
        """Future's lock, built (with its waiter and callback lists) on first use; from then
        on the handle is watched (module doc). Every Future method and ``cf.wait`` reach the
        waiters and callbacks through it."""
        c = self._cond
        if c is None:
            c = self._receiver.watch(self)
        return c

    def done(self) -> bool:
        """True once a response or an error is in (or the handle was cancelled); drains ready
        responses without blocking."""
        if self._state is _PENDING:
            self._receiver.poll()
        return self._state is not _PENDING

    def cancelled(self) -> bool:
        """True if :meth:`cancel` succeeded."""
        return self._state in _CANCELLED_STATES

    def running(self) -> bool:
        """Always False: a sent request cannot be told apart from a queued one."""
        return False

    def result(self, timeout: float | None = None) -> bytes:
        """The response bytes; raises :class:`RequestError` for an error frame,
        :class:`WorkerDied` when the worker is gone, :class:`RequestTimeout` after ``timeout``
        seconds (the request stays pending), ``concurrent.futures.CancelledError`` after
        :meth:`cancel`."""
        if self._state is _PENDING:
            self._receiver.wait(self, timeout)
        if self._state is _FINISHED:
            if self._exception is not None:
                raise self._exception
            return self._result
        raise _cf.CancelledError()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The error :meth:`result` would raise, or None; waits as :meth:`result` does."""
        if self._state is _PENDING:
            self._receiver.wait(self, timeout)
        if self._state is _FINISHED:
            return self._exception
        raise _cf.CancelledError()

    def cancel(self) -> bool:
        """Stop waiting for the answer: True if the handle was pending. The request stays
        sent; the worker runs it and its answer is discarded when it arrives."""
        if self._state is not _PENDING or not super().cancel():
            return False
        self._receiver.forget(self)
        self.set_running_or_notify_cancel()  # CANCELLED_AND_NOTIFIED: cf.wait counts it done
        return True

    def __repr__(self) -> str:
        state = "pending" if self._state is _PENDING else self._state.lower()
        return f"<Handle id={self.request_id:#x} op={self.op:#06x} {state}>"


def _complete(late) -> None:
    """Complete watched handles through Future's methods (on the receiver thread, or at close:
    callbacks may call the client). A handle cancelled in between keeps its cancellation."""
    for h, value, exc in late:
        try:
            if exc is None:
                h.set_result(value)
            else:
                h.set_exception(exc)
        except _cf.InvalidStateError:
            pass  # cancelled after it left the pending table: the answer is discarded


class Slot:
    """Where the answer to one request of the synchronous fast path lands (``Client.call``,
    ``Client.map``): a :class:`Handle` without the future's methods. The receiver fills it
    exactly as it fills an unwatched handle (``_result`` or ``_exception``, then ``_state``),
    and nobody can watch it (``_cond`` stays None)."""

    __slots__ = ("request_id", "_state", "_result", "_exception", "_cond")

    def __init__(self, request_id: int):
        self.request_id = request_id
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._cond = None
