"""A request in flight (``Client.submit`` returns one): the sentinel for "no answer yet" and
the handle whose ``result()`` waits for the answer through its client."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client

#: A handle's value before its answer arrives.
_PENDING = object()


class Handle:
    """One request in flight. ``result()`` blocks until its response (or error) arrives."""

    __slots__ = ("_client", "request_id", "op", "_value", "_error")

    def __init__(self, client: "Client", request_id: int, op: int):
        self._client = client
        #: The frame's request id (layout.md §6.1), unique among this client's requests.
        self.request_id = request_id
        self.op = op
        self._value = _PENDING
        self._error: BaseException | None = None

    def done(self) -> bool:
        """True once a response or an error is in; drains ready responses without blocking."""
        if self._value is _PENDING and self._error is None:
            self._client._poll_nowait()
        return self._value is not _PENDING or self._error is not None

    def result(self, timeout: float | None = None) -> bytes:
        """The response bytes; raises :class:`RequestError` for an error frame,
        :class:`WorkerDied` when the worker is gone, :class:`RequestTimeout` after ``timeout``
        seconds (the request stays pending)."""
        if self._value is _PENDING and self._error is None:
            self._client._wait_for(self, timeout)
        if self._error is not None:
            raise self._error
        return self._value

    def __repr__(self) -> str:
        state = "pending" if self._value is _PENDING and self._error is None else "done"
        return f"<Handle id={self.request_id:#x} op={self.op:#06x} {state}>"
