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

Completing a handle runs its done callbacks on this thread; asyncio's are
``loop.call_soon_threadsafe`` (``asyncio.wrap_future``), which writes to the event loop's
self-pipe: that is how an awaiting task is woken.
"""

from __future__ import annotations

import logging
import threading
import time

_log = logging.getLogger(__name__)

#: How long ``stop`` waits for the thread (it notices ``closed`` within one park timeout).
STOP_TIMEOUT_S = 2.0


class Pump:
    """Runs :meth:`_run` on a daemon thread named ``chunkring-receiver`` over one
    ``Receiver``; :meth:`wake` when a handle becomes watched, :meth:`stop` after the receiver
    is closed."""

    def __init__(self, receiver):
        self._rx = receiver
        self._wanted = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chunkring-receiver", daemon=True)
        self._thread.start()
        _log.debug("background receiver thread started")

    def wake(self) -> None:
        """A handle became watched (or the receiver closed): stop idling."""
        self._wanted.set()

    def stop(self) -> None:
        """Wake the thread and wait for it to leave the ring (the caller then unmaps it)."""
        self._wanted.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(STOP_TIMEOUT_S)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        rx = self._rx
        wanted = self._wanted
        while True:
            if rx.closed:
                break
            if not rx.watched or rx.dead is not None:
                wanted.clear()
                # Re-check after the clear: a watch() in between set the event again.
                if not rx.watched or rx.dead is not None:
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

    @staticmethod
    def _step(rx) -> None:
        """Drain what is published; else park until the worker publishes, a watched handle
        stops being pending, or the park times out (then check the worker)."""
        if rx.has_answers():
            rx.drain()
            return
        if not rx.park(lambda: rx.has_answers() or not rx.watched or rx.closed):
            if not rx.closed:
                rx.check_alive()
