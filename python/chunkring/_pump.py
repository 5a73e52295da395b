"""The client's background receiver thread: completes watched handles (``_receiver.py``
module doc) when nobody is blocked in ``result()``.

One thread per client, started by the first handle used as a future (``add_done_callback``,
``cf.wait``, ``asyncio.wrap_future``, the ``aio`` face), never by ``call``/``echo``. It has
two ways of sleeping, neither of which spins:

* nothing watched is pending: it blocks on a ``threading.Event``. The client futex word stays
  AWAKE, so the worker never pays a futex wake for it and a synchronous round trip runs
  exactly as it does without the thread;
* watched handles are pending: it drains the response ring and otherwise parks on the client
  futex word like a thread in ``result()`` ([W1]-[W4], ``Receiver.park``), so the worker's
  publish wakes it; the park's bounded timeout (``WAIT_TIMEOUT_S``) is the liveness backstop:
  after each timeout it checks the worker (``Receiver.check_alive``), so a worker that dies
  fails every watched handle with ``WorkerDied`` within that bound.

It also completes every watched handle another thread read the answer of (``hand``): a
thread in ``result()`` or one writing a large request (holding the sender's lock) must not
run callbacks that may call the client. Completing a handle runs its done callbacks on this
thread; asyncio's are ``loop.call_soon_threadsafe`` (``asyncio.wrap_future``), which writes
to the event loop's self-pipe: that is how an awaiting task is woken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

_log = logging.getLogger(__name__)

#: How long ``stop`` waits for the thread (it notices ``closed`` within one park timeout).
STOP_TIMEOUT_S = 2.0


class Pump:
    """Runs :meth:`_run` on a daemon thread named ``chunkring-receiver`` over one
    ``Receiver``; :meth:`wake` when a handle becomes watched, :meth:`hand` to complete handles
    here, :meth:`stop` after the receiver is closed. ``complete`` completes a list of
    ``(handle, value, error)``."""

    def __init__(self, receiver, complete: Callable[[list], None]):
        self._rx = receiver
        self._complete = complete
        self._wanted = threading.Event()
        #: ``(handle, value, error)`` read by other threads, to complete here (``hand``).
        self._handed: deque = deque()
        self._thread = threading.Thread(target=self._run, name="chunkring-receiver", daemon=True)
        self._thread.start()
        _log.debug("background receiver thread started")

    def wake(self) -> None:
        """A handle became watched (or the receiver closed): stop idling."""
        self._wanted.set()

    def hand(self, late: list) -> None:
        """Complete ``late`` (``(handle, value, error)`` tuples) on this thread, soon."""
        self._handed.extend(late)
        self._wanted.set()
        self._rx.wake_waiters()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Wake the thread and wait (at most STOP_TIMEOUT_S) for it to complete what was
        handed to it and leave the ring (the caller then unmaps it). Called on the thread
        itself (a callback closing the client), it returns at once: the thread completes the
        rest after that callback and exits."""
        self._wanted.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(min(timeout, STOP_TIMEOUT_S))
            if not self._thread.is_alive():
                self._complete_handed()  # handed after the thread's last look

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def is_current(self) -> bool:
        """True on the receiver thread itself."""
        return threading.current_thread() is self._thread

    def _complete_handed(self) -> None:
        handed = self._handed
        while handed:
            self._complete([handed.popleft()])

    def _run(self) -> None:
        rx = self._rx
        wanted = self._wanted
        handed = self._handed
        while True:
            if handed:
                self._complete_handed()
            if rx.closed:
                break
            if not rx.watched or rx.dead is not None:
                wanted.clear()
                # Re-check after the clear: a watch() or hand() in between set it again.
                if not handed and (not rx.watched or rx.dead is not None):
                    wanted.wait()
                continue
            try:
                self._step(rx)
            except Exception as exc:  # noqa: BLE001 - logged; the failed handles carry it
                if rx.closed:
                    break
                _log.error("background receiver: %r", exc)
                time.sleep(0.01)  # a ring broken for good fails everything; do not spin
        _log.debug("background receiver thread stopped")

    def _step(self, rx) -> None:
        """Drain what is published; else park until the worker publishes, a watched handle
        stops being pending, or the park times out (then check the worker)."""
        handed = self._handed
        if rx.has_answers():
            rx.drain()
            return
        if not rx.park(lambda: rx.has_answers() or not rx.watched or rx.closed or handed):
            if not rx.closed:
                rx.check_alive()
