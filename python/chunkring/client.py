"""The chunkring client: spawn or attach a worker, send requests, collect responses.

Implements the client side of layout.md's attach and client slot (§12). A :class:`Client`
composes a :class:`~chunkring._sender.Sender` (request ids, request payloads and fragments,
the request ring's producer: ``_sender.py``) and a :class:`~chunkring._receiver.Receiver`
(the response ring's consumer, reassembly, the pending handles, waiting and liveness:
``_receiver.py``); the ring steps [R1]-[R6] and the wake check [W5]-[W6] are in ``_ring.py``,
the park [W1]-[W4] in ``_receiver.py``, the worker process in ``_process.py``.

Threads: the sender's lock serialises producers (a whole message or batch, so fragments stay
contiguous), the receiver's the consumer; either thread may drain responses into any pending
:class:`Handle`. A dead worker fails every pending handle with :class:`WorkerDied` within
one client wait timeout (10 ms) plus a liveness check; a client spawned with ``restart=True``
starts a new worker instead and sends the safe requests again (``_restart.py``). A client may
be shared by any number of threads. Handles are ``concurrent.futures.Future``s; the first one
used as a future starts the client's one background receiver thread (``_pump.py``), and
``client.aio`` is the asyncio face (``aio.py``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from collections import deque
from itertools import islice
from typing import Iterable, Iterator, Sequence

from . import _layout as L
from ._barrier import RING_FENCES_OK
from ._find_worker import find_worker_bin
from ._platform import check_platform
from ._process import launch, pid_alive, raise_if_exited, read_all, reap, shm_identity, unlink_shm
from ._handle import _FINISHED, Handle
from ._lean import lean_round_trip
from ._lean_submit import lean_submit
from ._op_names import op_code
from ._receiver import WAIT_TIMEOUT_S, Receiver
from ._region import Region, region_path, validate_name
from ._sender import Sender, deadline_after, seconds_left
from .errors import ProtocolError, WorkerStartError

__all__ = ["Client", "Handle", "WAIT_TIMEOUT_S"]

_log = logging.getLogger(__name__)

#: Default window of polling before parking (layout.md §11 steps 1-2), in nanoseconds.
DEFAULT_SPIN_NS = 50_000


def claim_slot(region: Region) -> None:
    """layout.md §12 "Attach": refuse a slot held by a live client, else take it."""
    holder = region.claim_client(os.getpid(), pid_alive)
    if holder is not None:
        raise ProtocolError(f"another client (pid {holder}) is attached to this region")


def start_worker(binary: str, name: str, timeout: float, bind, *, file, ring_bytes, chunk_bytes,
                 args) -> None:
    """Launch ``chunkring serve`` for region ``name``, wait until it is ready and hand the
    region, the ``Popen`` and its stderr file to ``bind`` (which claims the client slot).
    Raises :class:`WorkerStartError` (exit code and stderr) and cleans up on any failure."""
    proc, stderr_file = launch(binary, name, file=file, ring_bytes=ring_bytes,
                               chunk_bytes=chunk_bytes, args=args)

    def check() -> None:
        raise_if_exited(proc, stderr_file)

    path = region_path(name, file)
    region = None
    try:
        region = Region.attach(path, timeout, check, expect_pid=proc.pid)
        bind(region, proc, stderr_file)
    except WorkerStartError:
        reap(proc, 0)
        stderr_file.close()
        raise
    except (TimeoutError, ProtocolError) as exc:
        if region is not None:  # mapped, then refused: unmap it, as attach() does
            region.close()
        reap(proc, 0)
        err = read_all(stderr_file)
        stderr_file.close()
        raise WorkerStartError(f"worker did not become ready: {exc}", proc.returncode, err) from exc
    _log.info("worker started: pid %d, region %s, binary %s", proc.pid, path, binary)


def pipeline_params(stages: Sequence[tuple]) -> dict:
    """``OP_PIPELINE``'s params for ``[(op, params), ...]`` (``op`` a code or a name)."""
    return {"stages": [{"op": op_code(op), "params": params or {}} for op, params in stages]}


class Client:
    """A connection to one chunkring worker over its shared-memory region.

    Build one with :meth:`spawn` (starts a worker owned by this process) or :meth:`attach`
    (joins a running worker). Use it as a context manager, or call :meth:`close`.
    """

    #: Workers started after a death (``spawn(restart=True)``; always 0 otherwise).
    restarts = 0
    #: The :class:`~chunkring.errors.WorkerDied` of the last death a restart followed, or None.
    last_death = None
    #: Bumped by each restart: a ``History`` compares it with its own to notice one.
    _epoch = 0

    # ------------------------------------------------------------------ construction
    def __init__(self, region: Region, *, proc: subprocess.Popen | None = None,
                 stderr_file=None, name: str | None = None, spin_ns: int = DEFAULT_SPIN_NS,
                 crc: bool | None = None):
        if not RING_FENCES_OK:
            region.close()
            raise ProtocolError(
                "this architecture needs acquire/release fences and libatomic is not available "
                "(layout.md §10)"
            )
        self._name = name
        self._spin_ns = spin_ns
        self._bind(region, proc, stderr_file, crc)
        self._stopped = False
        self._markdown = None
        self._snapshots = None
        self._aio = None

    @classmethod
    def spawn(cls, name: str | None = None, *, ring_bytes: int | None = None,
              chunk_bytes: int | None = None, file: str | os.PathLike | None = None,
              worker: str | os.PathLike | None = None, timeout: float = 10.0,
              args: Sequence[str] = (), crc: bool = False, restart: bool = False,
              max_restarts: int = 5, restart_window: float = 60.0) -> "Client":
        """Start a worker owned by this process (``--owner-pid``) and attach to it.

        ``crc=True`` starts it with ``--crc``: every frame in both rings carries a CRC-32
        (layout.md §6.6), so a torn or overwritten frame raises :class:`ChecksumError`
        instead of being misread.

        ``restart=True``: when the worker dies, start a new one with the same options (a new
        region name) and carry on (``_restart.py``; layout.md §12 "Client recovery"): the
        requests in flight that are safe to repeat (``_layout.PURE_OPS``: echo, info, the
        markdown ops, snapshot ``process``, pipelines of those) are sent again and answer
        as if nothing happened; the others (history pushes and moves, log appends, …)
        raise :class:`~chunkring.errors.WorkerRestarted`; a history saved to (or loaded
        from) a file is reopened from it on its next use, reporting the pushes made since
        that save as lost; a history never saved raises on every use. At most
        ``max_restarts`` restarts within ``restart_window`` seconds (each after a growing
        pause); one more death then raises :class:`~chunkring.errors.WorkerDied` saying so,
        for good. :attr:`restarts` counts them, :attr:`last_death` is the last
        ``WorkerDied``. Not with ``file=``.

        Raises :class:`~chunkring.errors.UnsupportedPlatform` off Linux x86-64/aarch64,
        :class:`~chunkring.errors.WorkerNotFound` when no binary is found and
        :class:`~chunkring.errors.WorkerStartError` (exit code and stderr) when the worker
        exits or is not ready within ``timeout`` seconds.
        """
        check_platform()
        binary = str(worker) if worker is not None else find_worker_bin()
        if name is None:
            name = f"py{os.getpid()}-{os.urandom(6).hex()}"
        validate_name(name)
        if crc:
            args = (*args, "--crc")
        options = dict(file=file, ring_bytes=ring_bytes, chunk_bytes=chunk_bytes, args=args)
        if restart:
            from ._restart import RestartingClient
            from ._supervisor import RestartPolicy
            if file is not None:
                raise ValueError("restart=True needs a shared-memory region, not file=: the "
                                 "new worker would have to reuse the dead one's file")
            policy = RestartPolicy(max_restarts, restart_window)
            cls = RestartingClient.subclass_of(cls)
        made: list = []

        def bind(region: Region, proc: subprocess.Popen, stderr_file) -> None:
            client = cls(region, proc=proc, stderr_file=stderr_file, name=name)
            made.append(client)
            client._claim_slot()

        start_worker(binary, name, timeout, bind, **options)
        client = made[0]
        if restart:
            client._supervise(policy, binary, name, timeout, options)
        return client

    @classmethod
    def attach(cls, name: str | None = None, *, file: str | os.PathLike | None = None,
               timeout: float = 5.0, crc: bool | None = None) -> "Client":
        """Join a running worker's region (``/dev/shm/chunkring-<name>`` or ``file``).

        ``crc``: send and require frame checksums (layout.md §6.6); None follows the region
        (on when its worker was started with ``--crc``).

        Raises :class:`~chunkring.errors.UnsupportedPlatform` off Linux x86-64/aarch64,
        :class:`~chunkring.errors.ProtocolError` for a header that breaks layout.md §3
        or a client slot held by a live process, ``TimeoutError`` when the region is not
        ready within ``timeout`` seconds.
        """
        check_platform()
        region = Region.attach(region_path(name, file), timeout)
        try:
            client = cls(region, name=name, crc=crc)
        except BaseException:
            region.close()
            raise
        try:
            client._claim_slot()
        except BaseException:
            region.close()
            raise
        _log.info("attached to worker pid %d, region %s", client.pid, client.path)
        return client

    def _bind(self, region: Region, proc: subprocess.Popen | None, stderr_file,
              crc: bool | None = None) -> None:
        """Use ``region`` (served by ``proc``, a spawned worker, or None; checksums as
        ``crc`` says, :func:`_choose_crc`): build the receiver and the sender over it (again
        after a restart, ``_supervisor.py``)."""
        _choose_crc(region, crc)
        self._region = region
        self._proc = proc
        self._stderr_file = stderr_file
        self._receiver = Receiver(region, proc=proc, stderr_file=stderr_file, spin_ns=self._spin_ns,
                                  owned_shm=shm_identity(region.path) if proc is not None else None)
        self._sender = Sender(region, self._receiver)
        # The lean submit (``_lean_submit.py``), cached on the instance: `client.submit(..)`
        # then costs one Python call, its common case written out in it. Not over a
        # subclass's own `submit` or `echo` (RestartingClient's, a user's): that one stays
        # the instance's method, and reaches the closures through Client's.
        cls = type(self)
        self._lean_submit = lean_submit(self._sender)
        if cls.submit is Client.submit:
            self.submit = self._lean_submit
        self._take = self._receiver.take
        # The synchronous round trip with nothing else in flight (``_lean.py``); with its
        # defaults it is `echo`, cached on the instance like `submit`: one Python call.
        self._round_trip = lean_round_trip(self._sender, self._receiver,
                                           self._general, self._checked)
        if cls.echo is Client.echo:
            self.echo = self._round_trip

    def _claim_slot(self) -> None:
        claim_slot(self._region)

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str | None:
        """The region name (None for a ``file`` region attached without a name)."""
        return self._name

    @property
    def pid(self) -> int:
        """The worker's pid."""
        return self._region.worker_pid

    @property
    def ring_bytes(self) -> int:
        """Bytes of the request ring."""
        return self._region.req_ring_chunks * self._region.chunk_bytes

    @property
    def chunk_bytes(self) -> int:
        """Bytes per chunk."""
        return self._region.chunk_bytes

    @property
    def path(self) -> Path:
        """The file backing the region."""
        return self._region.path

    # ------------------------------------------------------------------ requests
    def echo(self, data: bytes, timeout: float | None = None) -> bytes:
        """Round-trip ``data`` through the worker's ``OP_ECHO``; ``timeout`` as in :meth:`call`."""
        return self._round_trip(data, timeout)  # (the instance's `echo` is this closure)

    def call(self, op: int | str, body: bytes = b"", params: dict | None = None,
             timeout: float | None = None) -> bytes:
        """Send one request and wait for its response bytes; raises RequestError on an error frame.

        The synchronous fast path: the request goes through the request ring's one producer
        and its answer into the caller's hands, with no :class:`Handle` in between (with
        nothing else in flight, no pending-table entry either: ``_lean.py``).
        ``op`` is an op code (``chunkring.layout.OP_MD_RENDER``) or the op's name as the
        worker lists it (``"md.render"``; ``chunkring call --ops``), here and wherever an op
        goes (``submit``, ``map``, ``submit_many``, ``pipeline``).
        ``timeout`` (seconds) bounds the whole call, sending included: waiting for the
        sender's lock, for request-ring room and for the answer (:class:`RequestTimeout`,
        layout.md §12 "Timeouts").
        """
        if type(body) is bytes and type(op) is int and 0 <= op <= 0xFFFF:
            return self._round_trip(body, timeout, op, params)
        if type(op) is str and type(body) is bytes:
            return self._round_trip(body, timeout, op_code(op), params)
        return self._checked(op, body, params, timeout)

    def _checked(self, op: int, body, params: dict | None, timeout: float | None) -> bytes:
        """:meth:`call` for arguments the lean path does not take as they are: every one
        checked (``TypeError``/``ValueError`` naming it), then the general path."""
        op, prefix = self._sender._check(op, body, params)
        return self._general(op, body, prefix, deadline_after(timeout))

    def _general(self, op: int, body, prefix: bytes | None, deadline: int | None) -> bytes:
        """The general synchronous path: send (waiting for the lock and for room, fragments
        for a large request), then wait for the answer in a :class:`Slot` (``_receiver.py``)."""
        sender = self._sender
        slot = sender.send_prefixed(op, body, prefix, deadline)
        return self._take(slot, seconds_left(deadline), sender.worker_woken)

    def map(self, op: int | str, iterable: Iterable, window: int = 256, params: dict | None = None,
            timeout: float | None = None) -> Iterator[bytes]:
        """Run ``op`` on every body of ``iterable`` (each with ``params``) and yield the answers
        in order, like ``Executor.map``: up to ``window`` requests in flight, published in
        batches of about ``window // 2`` with one tail store each, answers drained as they
        come. A failed request raises its error when its answer is reached, which ends the
        iteration (as with ``Executor.map``); ``timeout`` bounds each wait, for room to send
        a batch and for each answer. The iterable is consumed lazily, ``window`` items ahead."""
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        return self._mapped(op, iter(iterable), window, params, timeout)

    def _mapped(self, op, items, window, params, timeout):
        send_many = self._sender.send_many
        take = self._take
        size = max(1, window // 2)
        batches: deque = deque()
        inflight = 0
        more = True
        free = None  # the last batch whose answers were all taken: its slots are reused
        while True:
            while more and inflight + size <= window:
                bodies = list(islice(items, size))
                more = len(bodies) == size
                if bodies:
                    slots = send_many(op, bodies, params, deadline_after(timeout), free)
                    free = None
                    batches.append(slots)
                    inflight += len(slots)
            if not batches:
                return
            batch = batches.popleft()
            for slot in batch:
                # An answer already drained (with the one before it, in bulk) needs no call.
                yield slot._result if slot._state is _FINISHED and slot._exception is None else take(slot, timeout)
            inflight -= len(batch)
            free = batch

    def submit(self, op: int | str, body: bytes = b"", params: dict | None = None, *,
               timeout: float | None = None) -> Handle:
        """Publish one request and return its :class:`Handle` without waiting for the answer;
        ``timeout`` bounds the wait for room to send it (:class:`RequestTimeout`)."""
        return self._lean_submit(op, body, params, timeout=timeout)

    def submit_many(self, requests: Iterable[tuple], *,
                    timeout: float | None = None) -> list[Handle]:
        """Publish many ``(op, body, params)`` requests with one tail store (more only when
        the request ring fills up); return their handles in order. ``timeout`` bounds the
        waits for room (:class:`RequestTimeout`, whose ``sent`` lists the handles of the
        requests published before it; the rest were not sent)."""
        return self._sender.submit_many(requests, timeout)

    def pipeline(self, stages: Sequence[tuple], body: bytes = b"", timeout: float | None = None) -> bytes:
        """Run ``[(op, params), ...]`` in the worker, each stage's output the next one's body
        (``OP_PIPELINE``, layout.md §9.1; ``op`` a code or a name); returns the last stage's
        output."""
        return self.call(L.OP_PIPELINE, body, pipeline_params(stages), timeout)

    def info(self) -> dict:
        """The worker's ``OP_INFO`` JSON: versions, pid, limits and registered ops."""
        return json.loads(self.call(L.OP_INFO))

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop (``OP_SHUTDOWN``) and, for a spawned worker, wait for it."""
        if self._stopped or self._receiver.dead is not None:
            return
        self.call(L.OP_SHUTDOWN, timeout=timeout)
        self._stopped = True
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass

    def stats(self) -> dict:
        """The header's stats counters (by lower-case name) plus ring positions and states."""
        r = self._region
        out = {name: r.stat(idx) for idx, name in enumerate(L.STAT_NAMES)}
        q = r.q
        out.update(
            req_head=q[L.REQ_HEAD_OFFSET // 8], req_tail=q[L.REQ_TAIL_OFFSET // 8],
            resp_head=q[L.RESP_HEAD_OFFSET // 8], resp_tail=q[L.RESP_TAIL_OFFSET // 8],
            worker_state=r.worker_state, pending=len(self._receiver.pending),
        )
        return out

    # ------------------------------------------------------------------ wrappers (lazy)
    @property
    def markdown(self):
        """Markdown ops (``chunkring.markdown.Markdown``), built on first use."""
        if self._markdown is None:
            from .markdown import Markdown
            self._markdown = Markdown(self)
        return self._markdown

    @property
    def snapshots(self):
        """Snapshot batch ops (``chunkring.snapshots.Snapshots``), built on first use."""
        if self._snapshots is None:
            from .snapshots import Snapshots
            self._snapshots = Snapshots(self)
        return self._snapshots

    @property
    def aio(self):
        """This client's asyncio face (``chunkring.aio.AsyncClient``), built on first use."""
        if self._aio is None:
            from .aio import AsyncClient
            self._aio = AsyncClient(self)
        return self._aio

    def history(self, name: str, capacity: int | None = None):
        """A named snapshot history in the worker (``chunkring.snapshots.History``): created
        with ``capacity`` (default 100); an existing one is left as it is unless ``capacity``
        is given."""
        from .snapshots import History
        return History(self, name, capacity)

    def log(self, name: str):
        """A named append-only log in the worker (``chunkring.snapshots.Log``)."""
        from .snapshots import Log
        return Log(self, name)

    def history_from(self, path: str | os.PathLike, name: str | None = None):
        """Load a history saved with ``History.save`` (``History.load``)."""
        from .snapshots import History
        return History.load(self, path, name)

    # ------------------------------------------------------------------ lifetime
    def close(self, timeout: float = 5.0) -> None:
        """Detach. A spawned worker is asked to stop, waited for, and killed when it has not
        stopped by ``timeout``. Returns within ``timeout`` plus the moment a SIGKILL takes,
        also when the worker is stopped (SIGSTOP) and the request ring full."""
        if self._receiver.closed:
            return
        deadline = deadline_after(timeout)
        proc = self._proc
        if (proc is not None and proc.poll() is None and self._receiver.dead is None
                and not self._stopped):
            try:
                # At most half the budget: the rest is for waiting and, if need be, killing.
                self.call(L.OP_SHUTDOWN, timeout=min(timeout / 2, 2.0))
                self._stopped = True
            except Exception:  # best effort: the worker is killed below if it does not stop
                pass
        elif proc is None and self._receiver.dead is None:
            # A worker that goes on serving others: the `into=` steps this client's histories
            # took ahead of it are told first (layout.md §9.3 "Steps ahead").
            from ._history import tell_moves_of
            tell_moves_of(self)
        # The receiver first: its background thread completes the failed futures, whose
        # callbacks may call the client, before the sender's lock is taken below.
        self._receiver.close(seconds_left(deadline))
        unmap = self._sender.close(seconds_left(deadline))
        if proc is not None:
            left = seconds_left(deadline)
            reap(proc, left * 0.75, term_wait=left * 0.25)
            _log.info("worker stopped: pid %d, exit code %s", proc.pid, proc.returncode)
        else:
            _log.info("detached from worker pid %d", self._region.worker_pid)
        region = self._region
        if not unmap:
            # A sending thread still holds the sender's lock and may touch the mapping:
            # leave it mapped (it goes with the process) rather than fault that thread.
            _log.warning("a sending thread did not finish within the close timeout; "
                         "the region stays mapped")
        elif region.mm is not None:
            if proc is None:
                region.set_client(0, L.CLIENT_DETACHED)
            region.close()
        # A worker killed before it could unlink leaves its shm object behind.
        unlink_shm(region.path, self._receiver.owned_shm)
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<chunkring.Client name={self._name!r} worker_pid={self._region.worker_pid}>"


def _choose_crc(region, crc: bool | None) -> None:
    """Whether this client's frames carry checksums (layout.md §6.6): ``crc``, or the region's
    mode when None; a region whose worker requires them refuses ``crc=False``."""
    required = region.frame_crc == L.FRAME_CRC_REQUIRED
    if crc is False and required:
        raise ProtocolError("this worker requires frame checksums (serve --crc): crc=False refused")
    region.crc = required if crc is None else bool(crc)

