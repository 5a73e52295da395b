"""The asyncio face of the client: ``await`` answers without blocking the event loop.

    from chunkring.aio import AsyncClient

    async def main():
        async with AsyncClient.spawn() as ac:   # or: ac = await AsyncClient.spawn()
            assert await ac.echo(b"hi", timeout=5) == b"hi"
            html = await ac.markdown.render("# Title")
            h = await ac.history("ui")
            await h.push({"files": []}, label="start")
            async for pong in ac.map("echo", [b"a", b"b"], window=64):  # bounded, in order
                ...

An :class:`AsyncClient` wraps a :class:`~chunkring.Client` (``client.aio`` gives one for an
existing client). Every method sends its request at once, from the calling (event loop)
thread, and returns an awaitable of the answer: a request handle is a
``concurrent.futures.Future`` and ``asyncio.wrap_future`` turns it into an asyncio one. No
thread is started per request: the client's one background receiver thread (``_pump.py``)
reads answers as the worker publishes them, and completing a future calls
``loop.call_soon_threadsafe``, which wakes the loop through its self-pipe.

**Timeouts.** ``timeout=`` on any method raises :class:`~chunkring.errors.RequestTimeout`, a
``TimeoutError`` (since Python 3.11 ``asyncio.TimeoutError`` is the same class), and
cancels the request's future as below.

**Cancellation.** Cancelling the awaiting task (or a timeout) cannot unsend the request: the
worker still runs it, and its answer is discarded when it arrives; the request id leaves the
client's pending table at once.

**Failures.** A worker that dies while requests are awaited fails every one of them with
:class:`~chunkring.errors.WorkerDied` within the client's wait timeout (10 ms) plus a
liveness check; error frames raise :class:`~chunkring.errors.RequestError`, as in the
synchronous API. On a client spawned with ``restart=True`` the awaited requests that are safe
to repeat complete with the new worker's answer instead, and the others raise
:class:`~chunkring.errors.WorkerRestarted` (``_restart.py``).

**Never blocking the loop.** A request is encoded and copied into the request ring on the
loop's thread when that needs no wait, which is the common case. When it would wait (the
request ring is full, e.g. of a stopped or slow worker, or another thread is sending), nothing
of it is published (``_sender.limit_waits(NO_WAIT)``) and the send is done again in the
loop's default executor, whose thread waits for room while the loop runs other tasks; the
call's ``timeout`` bounds that wait too, so a stopped worker with a full ring raises
:class:`~chunkring.errors.RequestTimeout` on time. (A cancelled call whose send is waiting
in the executor still sends when room comes; its answer is discarded.) Decoding answers
(HTML, outlines, snapshots) runs on the receiver thread, under the GIL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import json
import threading
from collections import deque
from functools import partial
from typing import Any, AsyncIterator, Callable, Iterable, Sequence

from . import _layout as L
from ._snapshot_wire import load_params, save_params
from ._sender import NO_WAIT, WouldWait, deadline_after, limit_waits, seconds_left
from .client import Client, pipeline_params
from .errors import RequestTimeout

#: The end of a map's iterable (``next``'s default).
_END = object()
#: Seconds past a history call's deadline its sending thread is awaited for (its own waits
#: for room end at the deadline and raise what they sent).
_GRACE_S = 0.05

__all__ = ["AsyncClient", "AsyncHistory", "AsyncLog", "AsyncMarkdown", "AsyncSnapshots"]


async def _answer(fut: cf.Future, timeout: float | None) -> Any:
    """Await ``fut`` (a handle or a derived future) on the running loop; on ``timeout``
    cancel it and raise RequestTimeout."""
    afut = asyncio.wrap_future(fut)
    if timeout is None:
        return await afut
    try:
        return await asyncio.wait_for(afut, timeout)
    except asyncio.TimeoutError:
        raise RequestTimeout(
            f"no answer within {timeout} s (the request was cancelled; its answer will be "
            "discarded)"
        ) from None


async def _sent(send, deadline: int | None):
    """``send()`` (a client ``submit*`` call: it returns a handle) on the loop's thread when
    it need not wait, else in the loop's default executor, waiting for room no later than
    ``deadline`` (``time.monotonic_ns``; None: as long as the worker lives). Module doc,
    "Never blocking the loop"."""
    try:
        with limit_waits(NO_WAIT):
            return send()
    except WouldWait:
        pass

    def waiting():
        with limit_waits(deadline):
            return send()

    return await asyncio.get_running_loop().run_in_executor(None, waiting)


async def _call(send, timeout: float | None) -> Any:
    """Send with :func:`_sent` and await the answer; ``timeout`` bounds both."""
    deadline = deadline_after(timeout)
    fut = await _sent(send, deadline)
    return await _answer(fut, seconds_left(deadline))


class AsyncClient:
    """The asyncio face of one :class:`~chunkring.Client` (``client`` is that client)."""

    def __init__(self, client: Client):
        self.client = client
        self._markdown: AsyncMarkdown | None = None
        self._snapshots: AsyncSnapshots | None = None

    @classmethod
    def spawn(cls, *args, **kwargs) -> "_Opening":
        """:meth:`Client.spawn` (same arguments), run in the loop's default executor: starting
        a worker waits for it to map its region. Await it (``ac = await
        AsyncClient.spawn()``) or enter it (``async with AsyncClient.spawn() as ac:``, which
        closes the client on the way out; so does ``async with await …``)."""
        return _Opening(cls, lambda: Client.spawn(*args, **kwargs))

    @classmethod
    def attach(cls, *args, **kwargs) -> "_Opening":
        """:meth:`Client.attach` (same arguments), run in the loop's default executor; awaited
        or entered as :meth:`spawn` is."""
        return _Opening(cls, lambda: Client.attach(*args, **kwargs))

    # ------------------------------------------------------------------ requests
    def submit(self, op: int | str, body: bytes = b"", params: dict | None = None) -> asyncio.Future:
        """Send one request (at once when the request ring has room, else from the executor:
        module doc); an asyncio future of its response bytes."""
        submit = self.client.submit
        try:
            with limit_waits(NO_WAIT):
                return asyncio.wrap_future(submit(op, body, params))
        except WouldWait:
            return asyncio.ensure_future(_call(lambda: submit(op, body, params), None))

    async def call(self, op: int | str, body: bytes = b"", params: dict | None = None,
                   timeout: float | None = None) -> bytes:
        """Send one request and await its response bytes."""
        return await _call(lambda: self.client.submit(op, body, params), timeout)

    async def map(self, op: int | str, iterable: Iterable, window: int = 256,
                  params: dict | None = None,
                  timeout: float | None = None) -> AsyncIterator[bytes]:
        """:meth:`Client.map` awaited: ``async for answer in ac.map(op, bodies)`` yields the
        answers in order with up to ``window`` requests in flight, consuming ``iterable``
        lazily. Each request is sent as :meth:`call` sends one (never blocking the loop);
        a failed request raises its error when its answer is reached, which ends the
        iteration; ``timeout`` bounds each wait, for room to send and for each answer."""
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        submit = self.client.submit
        inflight: deque = deque()
        items = iter(iterable)
        more = True
        while True:
            while more and len(inflight) < window:
                body = next(items, _END)
                if body is _END:
                    more = False
                    break
                inflight.append(await _sent(partial(submit, op, body, params),
                                            deadline_after(timeout)))
            if not inflight:
                return
            yield await _answer(inflight.popleft(), timeout)

    async def echo(self, data: bytes, timeout: float | None = None) -> bytes:
        """Round-trip ``data`` through the worker's ``OP_ECHO``."""
        return await _call(lambda: self.client.submit(L.OP_ECHO, data), timeout)

    async def pipeline(self, stages: Sequence[tuple], body: bytes = b"",
                       timeout: float | None = None) -> bytes:
        """:meth:`Client.pipeline`, awaited."""
        return await self.call(L.OP_PIPELINE, body, pipeline_params(stages), timeout)

    async def info(self) -> dict:
        """The worker's ``OP_INFO`` JSON."""
        return json.loads(await self.call(L.OP_INFO))

    # ------------------------------------------------------------------ wrappers
    @property
    def markdown(self) -> "AsyncMarkdown":
        """Markdown ops, awaited."""
        if self._markdown is None:
            self._markdown = AsyncMarkdown(self.client.markdown)
        return self._markdown

    @property
    def snapshots(self) -> "AsyncSnapshots":
        """Worker-wide snapshot ops, awaited."""
        if self._snapshots is None:
            self._snapshots = AsyncSnapshots(self.client.snapshots)
        return self._snapshots

    async def history(self, name: str, capacity: int | None = None) -> "AsyncHistory":
        """A named snapshot history, as :meth:`Client.history`: created with ``capacity``
        (default 100); an existing one is left as it is unless ``capacity`` is given."""
        from ._history import History, create_request
        # An empty push_many creates the history (or sets its capacity when one is given), as
        # History() does; without a capacity, the history's own is read back.
        made = json.loads(await self.call(*create_request(name, capacity)))
        if capacity is None:
            capacity = json.loads(await self.call(L.OP_SNAP_STATS, b"", {"name": name}))["capacity"]
        h = History(self.client, name, capacity, _create=False)
        h._pos = (made["index"], made["len"])  # (as History() takes it: then pushes count)
        return AsyncHistory(h)

    async def history_from(self, path, name: str | None = None, *, replace: bool = False,
                           timeout: float | None = None) -> "AsyncHistory":
        """A history loaded from a file ``History.save`` wrote (:meth:`Client.history_from`)."""
        from ._history import History
        reply = await self.call(L.OP_SNAP_LOAD, b"", load_params(path, name, replace),
                                timeout=timeout)
        return AsyncHistory(History.loaded(self.client, json.loads(reply), path))

    async def log(self, name: str) -> "AsyncLog":
        """A named append-only log (created in the worker on first use)."""
        from .snapshots import Log
        log = Log(self.client, name, _create=False)
        await _call(lambda: log.submit_append([]), None)
        return AsyncLog(log)

    # ------------------------------------------------------------------ lifetime
    async def aclose(self, timeout: float = 5.0) -> None:
        """:meth:`Client.close`, run in the loop's default executor (it waits for the worker)."""
        await asyncio.get_running_loop().run_in_executor(None, self.client.close, timeout)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<chunkring.aio.AsyncClient of {self.client!r}>"


class _Opening:
    """An :class:`AsyncClient` being opened (:meth:`AsyncClient.spawn`, ``attach``): an
    awaitable of it, and an async context manager that opens it on entry and closes it on
    exit, as ``async with`` on an opened one does."""

    def __init__(self, cls: type, open_client: Callable[[], Client]):
        self._cls = cls
        self._open = open_client
        self._client: AsyncClient | None = None

    async def _opened(self) -> AsyncClient:
        loop = asyncio.get_running_loop()
        return self._cls(await loop.run_in_executor(None, self._open))

    def __await__(self):
        return self._opened().__await__()

    async def __aenter__(self) -> AsyncClient:
        self._client = await self._opened()
        return self._client

    async def __aexit__(self, *exc) -> None:
        if self._client is not None:
            await self._client.aclose()


class AsyncMarkdown:
    """``render``, ``outline`` and ``aggregate`` of :class:`~chunkring.markdown.Markdown`,
    awaited (same arguments; ``timeout`` as in the module doc)."""

    def __init__(self, markdown):
        self._md = markdown

    async def render(self, text_or_list: str | bytes | Sequence[str | bytes], *,
                     timeout: float | None = None, **options: bool) -> str | list[str]:
        return await _call(lambda: self._md.submit_render(text_or_list, **options), timeout)

    async def outline(self, text_or_list: str | bytes | Sequence[str | bytes], *,
                      timeout: float | None = None, **options: bool) -> dict | list[dict]:
        return await _call(lambda: self._md.submit_outline(text_or_list, **options), timeout)

    async def aggregate(self, files: Iterable, *, timeout: float | None = None,
                        **kwargs: Any) -> str:
        return await _call(lambda: self._md.submit_aggregate(files, **kwargs), timeout)


class AsyncSnapshots:
    """:meth:`~chunkring.snapshots.Snapshots.process`, awaited."""

    def __init__(self, snapshots):
        self._snapshots = snapshots

    async def process(self, batch: Iterable[Any], *, encoding: str | None = None,
                      timeout: float | None = None) -> list[dict]:
        return await _call(lambda: self._snapshots.submit_process(batch, encoding=encoding), timeout)

    async def stats(self, timeout: float | None = None) -> dict:
        """Totals over every history and log in the worker."""
        client = self._snapshots._client
        return json.loads(await _call(lambda: client.submit(L.OP_SNAP_STATS, b"", {}), timeout))


class AsyncHistory:
    """A :class:`~chunkring.snapshots.History` (``history``), awaited: each method sends the
    queued pushes and its request, then awaits the answer. ``push`` sends at once.

    A history keeps client-side state (queued pushes, the live-state fingerprint) that a
    send given up half-way would leave inconsistent, so its sends are not tried on the loop's
    thread and redone (module doc): every one runs on this history's own sending thread, one
    at a time in call order, waiting for room there (within the call's ``timeout``) while the
    loop runs on.

    The GUI forms are here too: ``await h.push(state, changed=(key,))``, and ``await
    h.undo(into=state)`` (``redo``, ``jump(i, into=state)``), which returns the RFC 6902
    operations applied. ``state`` is changed in place on the sending thread just before the
    await returns, so nothing else should touch it while the call is awaited. The
    synchronous properties ``can_undo``, ``can_redo``, ``index`` and ``len`` are awaited
    methods here (``can_undo()``, ``can_redo()``, ``position()`` → ``(index, len)``); they
    answer without a request when the History knows its position, as the properties do.
    """

    def __init__(self, history):
        self.history = history
        self._sender: cf.ThreadPoolExecutor | None = None

    async def _call(self, send, timeout: float | None, gave_up: threading.Event | None = None) -> Any:
        """``send()`` on the history's sending thread, then its answer awaited; ``timeout``
        bounds both. A send that must wait for an answer first (a push at
        ``MAX_PIPELINED_PUSHES``, one too large written out, the live-state check of an
        ``into=`` step without a fingerprint) is awaited within the timeout too; past it,
        ``gave_up`` is set (the send may still finish on that thread, as a send waiting for
        room does)."""
        if self._sender is None:
            self._sender = cf.ThreadPoolExecutor(1, thread_name_prefix="chunkring-history")
        deadline = deadline_after(timeout)

        def waiting():
            with limit_waits(deadline):
                return send()

        sending = asyncio.get_running_loop().run_in_executor(self._sender, waiting)
        left = seconds_left(deadline)
        try:
            # (a moment past the deadline: a send waiting for room raises its own
            # RequestTimeout at the deadline, which says what was sent)
            fut = await asyncio.wait_for(sending, None if left is None else left + _GRACE_S)
        except BaseException as exc:  # the send's own error, a timeout, or a cancel
            if gave_up is not None:
                gave_up.set()
            if isinstance(exc, asyncio.TimeoutError) and sending.cancelled():  # (wait_for's)
                raise RequestTimeout(f"the request was not sent within {timeout} s") from None
            raise
        return await _answer(fut, seconds_left(deadline))

    async def push(self, snapshot: Any, label: str | None = None, *,
                   encoding: str | None = None, changed: Iterable[Any] | None = None,
                   timeout: float | None = None) -> None:
        await self._call(lambda: self.history.submit_push(
            snapshot, label, encoding=encoding, changed=changed), timeout)

    async def flush(self, timeout: float | None = None) -> None:
        await self._call(lambda: self.history.submit_flush(), timeout)

    async def undo(self, *, into: dict | None = None, timeout: float | None = None,
                   **kw: Any) -> Any:
        if into is not None:
            return await self._move_into("undo", into, timeout)
        return await self._call(lambda: self.history.submit_undo(**kw), timeout)

    async def redo(self, *, into: dict | None = None, timeout: float | None = None,
                   **kw: Any) -> Any:
        if into is not None:
            return await self._move_into("redo", into, timeout)
        return await self._call(lambda: self.history.submit_redo(**kw), timeout)

    async def jump(self, index: int, *, into: dict | None = None,
                   timeout: float | None = None, **kw: Any) -> Any:
        if into is not None:
            return await self._move_into(index, into, timeout)
        return await self._call(lambda: self.history.submit_jump(index, **kw), timeout)

    async def position(self, timeout: float | None = None) -> tuple:
        """``(index, len)``: what the synchronous ``index`` and ``len(h)`` give, from the
        position this History keeps when it knows it (no request), else asked for."""
        return await self._call(lambda: self.history.submit_position(), timeout)

    async def can_undo(self, timeout: float | None = None) -> bool:
        """True when ``undo()`` would move (the synchronous property, awaited)."""
        cursor, _ = await self.position(timeout)
        return cursor is not None and cursor > 0

    async def can_redo(self, timeout: float | None = None) -> bool:
        """True when ``redo()`` would move."""
        cursor, length = await self.position(timeout)
        return cursor is not None and cursor < length - 1

    async def push_many(self, snapshots: Iterable[Any],
                        labels: Iterable[str | None] | None = None, *,
                        encoding: str | None = None, timeout: float | None = None) -> int:
        return await self._call(lambda: self.history.submit_push_many(
            snapshots, labels, encoding=encoding), timeout)

    async def save(self, path, timeout: float | None = None) -> dict:
        return await self._call(lambda: self.history.submit_save(path), timeout)

    async def drop(self, timeout: float | None = None) -> None:
        await self._call(lambda: self.history.submit_drop(), timeout)

    async def _move_into(self, to: Any, state: dict, timeout: float | None) -> Any:
        """An ``into=`` step: the check and the move sent on the sending thread, the answer
        awaited, then the patch applied to ``state`` on the sending thread as well (after
        the sends called before it, under the history's lock, never blocking the loop). A
        timeout or a cancel before the patch is applied leaves ``state`` as it was, and the
        next ``into=`` compares it with the worker's current snapshot instead of trusting
        the fingerprint (``StateMismatch`` if the move went through)."""
        gave_up = threading.Event()  # (then the move is not sent after the check)
        answer = await self._call(
            lambda: self.history.submit_move_into(to, state, gave_up.is_set), timeout, gave_up)
        return await asyncio.get_running_loop().run_in_executor(
            self._sender, self.history.apply_move, state, answer)

    async def current(self, *, timeout: float | None = None, **kw: Any) -> Any:
        return await self._call(lambda: self.history.submit_current(**kw), timeout)

    async def get(self, index: int, *, timeout: float | None = None, **kw: Any) -> Any:
        return await self._call(lambda: self.history.submit_get(index, **kw), timeout)

    async def list(self, timeout: float | None = None) -> list[dict]:
        return await self._call(lambda: self.history.submit_list(), timeout)

    async def diff(self, a: int, b: int, timeout: float | None = None) -> list[dict]:
        return await self._call(lambda: self.history.submit_diff(a, b), timeout)

    async def stats(self, timeout: float | None = None) -> dict:
        return await self._call(lambda: self.history.submit_stats(), timeout)

    def __repr__(self) -> str:
        return f"Async{self.history!r}"


class AsyncLog:
    """A :class:`~chunkring.snapshots.Log` (``log``), awaited."""

    def __init__(self, log):
        self.log = log

    async def append(self, record_or_records, timeout: float | None = None) -> int:
        return await _call(lambda: self.log.submit_append(record_or_records), timeout)

    async def read(self, start: int = 0, count: int = 1, timeout: float | None = None) -> list:
        return await _call(lambda: self.log.submit_read(start, count), timeout)

    async def tail(self, n: int, timeout: float | None = None) -> list:
        return await _call(lambda: self.log.submit_tail(n), timeout)

    async def save(self, path, timeout: float | None = None) -> dict:
        """Saves the log crash-safely to ``path`` (:meth:`Log.save`)."""
        params = save_params(self.log.name, path)
        client = self.log._client
        return json.loads(await _call(lambda: client.submit(L.OP_LOG_SAVE, b"", params), timeout))

    def __repr__(self) -> str:
        return f"Async{self.log!r}"
