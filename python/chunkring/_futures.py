"""Futures of decoded answers: :func:`then` turns request handles into one
:class:`concurrent.futures.Future` of a value computed from their answers.

The submit forms of the wrappers (``Markdown.submit_render``, ``History.submit_undo``, …)
return these, and the ``aio`` face awaits them (``asyncio.wrap_future``). The computation
(decoding, joining sub-batches) runs on the thread that completes the last handle, usually
the client's background receiver thread (``_pump.py``), not on the event loop's thread.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import Callable, Sequence

__all__ = ["Derived", "submitted", "then"]


class Derived(cf.Future):
    """A future computed from request handles; cancelling it cancels them (the requests stay
    sent and their answers are discarded, as for a cancelled ``Handle``)."""

    def __init__(self, sources: Sequence[cf.Future]):
        super().__init__()
        self._sources = tuple(sources)

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        for h in self._sources:
            h.cancel()
        self.set_running_or_notify_cancel()
        return True


def then(handles: Sequence[cf.Future], fn: Callable[[Sequence[cf.Future]], object]) -> Derived:
    """A future of ``fn(handles)``, called once every handle is done (``fn`` reads their
    ``result()``s, which no longer wait); an exception of ``fn`` becomes the future's."""
    out = Derived(handles)
    left = [len(handles)]
    lock = threading.Lock()

    def one_done(_h: cf.Future | None) -> None:
        with lock:
            left[0] -= 1
            if left[0] > 0:
                return
        if out.cancelled():
            return
        try:
            value = fn(handles)
        except BaseException as exc:  # noqa: BLE001 - handed to the future's owner
            if out.set_running_or_notify_cancel():
                out.set_exception(exc)
        else:
            if out.set_running_or_notify_cancel():
                out.set_result(value)

    if not handles:
        left[0] = 1
        one_done(None)
    for h in handles:
        h.add_done_callback(one_done)
    return out


def submitted(client, op: int, body, params: dict | None, decode: Callable[[bytes], object]) -> Derived:
    """A future of ``decode(answer)`` for one request sent now (``client.submit``)."""
    return then([client.submit(op, body, params)], lambda hs: decode(hs[0].result()))
