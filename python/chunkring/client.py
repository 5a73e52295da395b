"""The chunkring client: spawn or attach a worker, send requests, collect responses.

Implements the client side of layout.md: attach and the client slot (§12), request frames
and fragments (§6), the request payload ``params_len | params | body`` (§9.1), the [R]
steps through ``_ring.py``, and the waker's steps [W5]-[W6] (§10, §11) here; receiving,
waiting ([W1]-[W4]) and liveness checks are in ``_receiving.py``, the handle in
``_handle.py``, the worker process in ``_process.py``.

Threads: one lock serialises producers (a whole message or batch, so fragments stay
contiguous), another the consumer; either thread may drain responses into any pending
:class:`Handle`. A dead worker fails every pending handle with :class:`WorkerDied` within
one client wait timeout (10 ms) plus a liveness check.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
from pathlib import Path
from typing import Iterable, Sequence

from . import _layout as L
from ._find_worker import find_worker_bin
from ._process import launch, pid_alive, raise_if_exited, read_all, reap
from ._barrier import NEED_RW_FENCES as _NEED_RW_FENCES
from ._barrier import RING_FENCES_OK, barrier_memory, barrier_write
from ._futex import futex_wake
from ._handle import _PENDING, Handle
from ._receiving import WAIT_TIMEOUT_S, Receiving
from ._region import Region, region_path, validate_name
from ._ring import HEADER_AND_PARAMS_LEN, Consumer, Producer
from .errors import (
    ClientClosed,
    ProtocolError,
    WorkerDied,
    WorkerStartError,
)

__all__ = ["Client", "Handle", "WAIT_TIMEOUT_S"]

#: Default window of polling before parking (layout.md §11 steps 1-2), in nanoseconds.
DEFAULT_SPIN_NS = 50_000
_MASK64 = (1 << 64) - 1
_HB = L.FRAME_HEADER_BYTES
_MAGIC = L.FRAME_MAGIC
_MORE = L.FLAG_MORE
_PARKED = L.PARKED
_PARKED_FOR_ROOM = L.PARKED_FOR_ROOM
_AWAKE = L.AWAKE
_NO_PARAMS = b"\0\0\0\0"
_WF = L.WORKER_FUTEX_OFFSET // 4


class Client(Receiving):
    """A connection to one chunkring worker over its shared-memory region.

    Build one with :meth:`spawn` (starts a worker owned by this process) or :meth:`attach`
    (joins a running worker). Use it as a context manager, or call :meth:`close`.
    """

    # ------------------------------------------------------------------ construction
    def __init__(self, region: Region, *, proc: subprocess.Popen | None = None,
                 stderr_file=None, name: str | None = None, spin_ns: int = DEFAULT_SPIN_NS):
        if not RING_FENCES_OK:
            region.close()
            raise ProtocolError(
                "this architecture needs acquire/release fences and libatomic is not available "
                "(layout.md §10)"
            )
        self._region = region
        self._proc = proc
        self._stderr_file = stderr_file
        self._name = name
        self._spin_ns = spin_ns
        self._worker_pid = region.worker_pid
        self._q = region.q
        self._i = region.i
        self._worker_futex = region.worker_futex_addr
        self._client_futex = region.client_futex_addr
        self._prod = Producer(region, region.req_ring_offset, region.req_ring_chunks,
                              L.REQ_HEAD_OFFSET, L.REQ_TAIL_OFFSET)
        self._cons = Consumer(region, region.resp_ring_offset, region.resp_ring_chunks,
                              L.RESP_HEAD_OFFSET, L.RESP_TAIL_OFFSET)
        self._chunk_bytes = region.chunk_bytes
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._pending: dict[int, Handle] = {}
        self._assembly: list | None = None  # [request_id, op, message_len, next_index, parts, size]
        self._parked = 0
        self._dead: WorkerDied | None = None
        self._closed = False
        self._stopped = False
        rid = secrets.randbits(64)
        self._next_id = rid or 1  # never 0 (reserved, §6.1)
        self._markdown = None
        self._snapshots = None

    @classmethod
    def spawn(cls, name: str | None = None, *, ring_bytes: int | None = None,
              chunk_bytes: int | None = None, file: str | os.PathLike | None = None,
              worker: str | os.PathLike | None = None, timeout: float = 10.0,
              args: Sequence[str] = ()) -> "Client":
        """Start a worker owned by this process (``--owner-pid``) and attach to it.

        Raises :class:`~chunkring.errors.WorkerNotFound` when no binary is found and
        :class:`~chunkring.errors.WorkerStartError` (exit code and stderr) when the worker
        exits or is not ready within ``timeout`` seconds.
        """
        binary = str(worker) if worker is not None else find_worker_bin()
        if name is None:
            name = f"py{os.getpid()}-{secrets.token_hex(6)}"
        validate_name(name)
        proc, stderr_file = launch(binary, name, file=file, ring_bytes=ring_bytes,
                                   chunk_bytes=chunk_bytes, args=args)

        def check() -> None:
            raise_if_exited(proc, stderr_file)

        path = region_path(name, file)
        try:
            region = Region.attach(path, timeout, check, expect_pid=proc.pid)
            client = cls(region, proc=proc, stderr_file=stderr_file, name=name)
            client._claim_slot()
        except WorkerStartError:
            reap(proc, 0)
            stderr_file.close()
            raise
        except (TimeoutError, ProtocolError) as exc:
            reap(proc, 0)
            err = read_all(stderr_file)
            stderr_file.close()
            raise WorkerStartError(f"worker did not become ready: {exc}", proc.returncode, err) from exc
        return client

    @classmethod
    def attach(cls, name: str | None = None, *, file: str | os.PathLike | None = None,
               timeout: float = 5.0) -> "Client":
        """Join a running worker's region (``/dev/shm/chunkring-<name>`` or ``file``).

        Raises :class:`~chunkring.errors.ProtocolError` for a header that breaks layout.md §3
        or a client slot held by a live process, ``TimeoutError`` when the region is not
        ready within ``timeout`` seconds.
        """
        region = Region.attach(region_path(name, file), timeout)
        client = cls(region, name=name)
        try:
            client._claim_slot()
        except BaseException:
            region.close()
            raise
        return client

    def _claim_slot(self) -> None:
        """layout.md §12 "Attach": refuse a slot held by a live client, else take it."""
        pid, state = self._region.client_slot()
        if state == L.CLIENT_ATTACHED and pid and pid_alive(pid):
            raise ProtocolError(f"another client (pid {pid}) is attached to this region")
        self._region.set_client(os.getpid(), L.CLIENT_ATTACHED)

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str | None:
        """The region name (None for a ``file`` region attached without a name)."""
        return self._name

    @property
    def pid(self) -> int:
        """The worker's pid."""
        return self._worker_pid

    @property
    def ring_bytes(self) -> int:
        """Bytes of the request ring."""
        return self._prod.chunks * self._chunk_bytes

    @property
    def chunk_bytes(self) -> int:
        """Bytes per chunk."""
        return self._chunk_bytes

    @property
    def path(self) -> Path:
        """The file backing the region."""
        return self._region.path

    # ------------------------------------------------------------------ requests
    def echo(self, data: bytes, timeout: float | None = None) -> bytes:
        """Round-trip ``data`` through the worker's ``OP_ECHO``."""
        return self.submit(L.OP_ECHO, data).result(timeout)

    def call(self, op: int, body: bytes = b"", params: dict | None = None,
             timeout: float | None = None) -> bytes:
        """Send one request and wait for its response bytes; raises RequestError on an error frame."""
        return self.submit(op, body, params).result(timeout)

    def submit(self, op: int, body: bytes = b"", params: dict | None = None) -> Handle:
        """Publish one request and return its :class:`Handle` without waiting for the answer."""
        lock = self._send_lock
        lock.acquire()
        try:
            prod = self._prod
            plen = 4 + len(body)
            tail = prod.tail
            n = (_HB + plen + self._chunk_bytes - 1) // self._chunk_bytes
            idx = tail & prod.mask
            if (
                params is not None
                or plen > prod.max_frame_payload
                or idx + n > prod.chunks
                or prod.chunks - (tail - prod.cached_head) < n
                or self._closed
                or self._dead is not None
            ):
                self._check_open()
                h = self._write_message(op, body, params)
                self._publish_and_wake()
                return h
            # Hot path, the general one inlined: one frame, room by the cached head, no padding.
            rid = self._next_id
            self._next_id = (rid + 1) & _MASK64 or 1
            h = Handle(self, rid, op)
            self._pending[rid] = h
            off = prod.base + idx * self._chunk_bytes
            view = prod.view
            # [R2] header + params_len, then the body.
            HEADER_AND_PARAMS_LEN.pack_into(view, off, _MAGIC, 0, op, 0, rid, plen, 0, plen, 0)
            view[off + _HB + 4 : off + _HB + plen] = body
            tail += n
            prod.tail = tail
            if _NEED_RW_FENCES:
                barrier_write()  # [R3]
            self._q[prod.tail_word] = tail  # [R4] pairs with the worker's [R5]
            prod.published = tail
            barrier_memory()  # [W5] StoreLoad: the tail store above before the load below
            i = self._i
            if i[_WF] & _PARKED:  # [W6] the worker waits for requests
                i[_WF] = _AWAKE
                futex_wake(self._worker_futex, 1)
        finally:
            lock.release()
        return h

    def submit_many(self, requests: Iterable[tuple]) -> list[Handle]:
        """Publish many ``(op, body, params)`` requests with one tail store (more only when
        the request ring fills up); return their handles in order."""
        handles = []
        with self._send_lock:
            self._check_open()
            for req in requests:
                req = tuple(req)
                body = req[1] if len(req) > 1 else b""
                params = req[2] if len(req) > 2 else None
                handles.append(self._write_message(req[0], body, params))
            self._publish_and_wake()
        return handles

    def pipeline(self, stages: Sequence[tuple], body: bytes = b"", timeout: float | None = None) -> bytes:
        """Run ``[(op, params), ...]`` in the worker, each stage's output the next one's body
        (``OP_PIPELINE``, layout.md §9.1); returns the last stage's output."""
        spec = [{"op": int(op), "params": params or {}} for op, params in stages]
        return self.call(L.OP_PIPELINE, body, {"stages": spec}, timeout)

    def info(self) -> dict:
        """The worker's ``OP_INFO`` JSON: versions, pid, limits and registered ops."""
        return json.loads(self.call(L.OP_INFO))

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop (``OP_SHUTDOWN``) and, for a spawned worker, wait for it."""
        if self._stopped or self._dead is not None:
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
        q = self._q
        out.update(
            req_head=q[L.REQ_HEAD_OFFSET // 8], req_tail=q[L.REQ_TAIL_OFFSET // 8],
            resp_head=q[L.RESP_HEAD_OFFSET // 8], resp_tail=q[L.RESP_TAIL_OFFSET // 8],
            worker_state=r.worker_state, pending=len(self._pending),
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

    def history(self, name: str, capacity: int = 100):
        """A named snapshot history in the worker (``chunkring.snapshots.History``)."""
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
        """Detach. A spawned worker is asked to stop, waited for, and killed after ``timeout``."""
        if self._closed:
            return
        proc = self._proc
        if proc is not None and proc.poll() is None and self._dead is None and not self._stopped:
            try:
                self.call(L.OP_SHUTDOWN, timeout=min(timeout, 2.0))
                self._stopped = True
            except Exception:  # best effort: the worker is killed below if it does not stop
                pass
        with self._send_lock, self._recv_lock:
            self._closed = True
            err = ClientClosed("the client was closed")
            for h in self._pending.values():
                if h._error is None and h._value is _PENDING:
                    h._error = err
            self._pending.clear()
        if proc is not None:
            reap(proc, timeout)
        region = self._region
        if region.mm is not None:
            if proc is None:
                region.set_client(0, L.CLIENT_DETACHED)
            region.close()
        if proc is not None and self._name is not None:
            # A worker killed before it could unlink leaves its shm object behind.
            shm = region.path
            if str(shm).startswith("/dev/shm/"):
                try:
                    shm.unlink()
                except FileNotFoundError:
                    pass
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<chunkring.Client name={self._name!r} worker_pid={self._worker_pid}>"

    # ------------------------------------------------------------------ sending (send lock held)
    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("the client was closed")
        if self._dead is not None:
            raise self._dead

    def _new_id(self) -> int:
        rid = self._next_id
        self._next_id = (rid + 1) & _MASK64 or 1
        return rid

    def _write_message(self, op: int, body, params: dict | None) -> Handle:
        """Write one request (one frame, or fragments) without publishing the last frames."""
        rid = self._new_id()
        h = Handle(self, rid, op)
        self._pending[rid] = h
        prod = self._prod
        blen = len(body)
        if params is None:
            plen = 4 + blen
            if plen <= prod.max_frame_payload:
                # Fast path: one frame, header and params_len in one pack_into.
                n = (_HB + plen + self._chunk_bytes - 1) // self._chunk_bytes
                tail = prod.tail
                idx = tail & prod.mask
                if idx + n <= prod.chunks and prod.chunks - (tail - prod.cached_head) >= n:
                    off = prod.base + idx * self._chunk_bytes  # room by the cached head
                else:
                    off = prod.reserve(n)  # [R1] reload head and/or pad (§6.3)
                    if off < 0:
                        off = self._reserve_waiting(n)
                HEADER_AND_PARAMS_LEN.pack_into(prod.view, off, _MAGIC, 0, op, 0, rid,
                                                plen, 0, plen, 0)
                prod.view[off + _HB + 4 : off + _HB + plen] = body  # [R2]
                prod.tail += n
                return h
            prefix = _NO_PARAMS
        else:
            pj = json.dumps(params, separators=(",", ":")).encode()
            prefix = len(pj).to_bytes(4, "little") + pj
        self._write_fragments(op, rid, prefix, body)
        return h

    def _write_fragments(self, op: int, rid: int, prefix: bytes, body, flags: int = 0) -> None:
        """Write ``prefix + body`` as one or more frames of at most a quarter ring (§6.4)."""
        prod = self._prod
        view = prod.view
        body = memoryview(body).cast("B") if not isinstance(body, bytes) else body
        plen_prefix = len(prefix)
        total = plen_prefix + len(body)
        if total > self._region.max_message_bytes:
            self._pending.pop(rid, None)
            raise ValueError(
                f"request of {total} bytes exceeds the worker's MAX_MESSAGE_BYTES "
                f"({self._region.max_message_bytes})"
            )
        cb = self._chunk_bytes
        pos = 0
        index = 0
        while True:
            take = min(total - pos, prod.max_frame_payload)
            last = pos + take == total
            n = (_HB + take + cb - 1) // cb
            off = prod.reserve(n)
            if off < 0:
                off = self._reserve_waiting(n)
            L.FRAME_HEADER.pack_into(view, off, _MAGIC, flags | (0 if last else _MORE), op, 0,
                                     rid, take, index, total)
            # [R2] payload bytes [pos, pos + take) of prefix + body.
            dst = off + _HB
            end = pos + take
            if pos < plen_prefix:
                k = min(end, plen_prefix)
                view[dst : dst + k - pos] = prefix[pos:k]
                dst += k - pos
                pos = k
            if end > pos:
                view[dst : dst + end - pos] = body[pos - plen_prefix : end - plen_prefix]
                pos = end
            prod.tail += n
            index += 1
            if last:
                return
            if index % 4 == 0:
                self._publish_and_wake()  # let the worker start on a long message

    def _publish_and_wake(self) -> None:
        if self._prod.publish():
            self._wake_worker(_PARKED)

    def _wake_worker(self, reason: int) -> None:
        """[W5]-[W6] after publishing requests (``reason`` PARKED: the worker may wait for
        frames) or releasing response chunks (PARKED_FOR_ROOM: it may wait for room). A worker
        that parked for the other reason is left asleep: waking an idle worker only because we
        read its answer cost ~60 µs of a futex wake per call on this kind of machine."""
        barrier_memory()  # [W5] StoreLoad: the tail/head store above before the load below
        # [W6] if the worker parked for this reason, mark it awake and wake it; pairs with [W4].
        i = self._i
        if i[_WF] & reason:
            i[_WF] = _AWAKE
            futex_wake(self._worker_futex, 1)

    def _reserve_waiting(self, n: int) -> int:
        """Room for ``n`` chunks: publish, drain responses and park until the worker frees some.

        Draining while waiting is what keeps any mix of sizes and in-flight counts from
        deadlocking: the worker may itself be waiting for response-ring room.
        """
        prod = self._prod
        while True:
            self._publish_and_wake()
            self._drain_locked()
            off = prod.reserve(n)
            if off >= 0:
                return off
            self._check_open()
            # Waiting for room and for answers alike: either wakes us (layout.md §11).
            if not self._park(lambda: prod.head_moved() or self._cons.pending(),
                              _PARKED | _PARKED_FOR_ROOM):
                self._check_alive()
                self._check_open()

    def _publish_raw(self, frame: bytes, expect_id: int | None = None) -> Handle | None:
        """Test hook: copy ``frame`` verbatim into the request ring at the tail, padding the
        ring first if it would not fit before the end, advance the tail by
        ``ceil(len(frame) / CHUNK_BYTES)`` chunks and publish. If ``expect_id`` is given, a
        handle is registered for the answer carrying that request id (0 for §6.5's id 0)."""
        n = max(1, (len(frame) + self._chunk_bytes - 1) // self._chunk_bytes)
        with self._send_lock:
            self._check_open()
            h = None
            if expect_id is not None:
                h = Handle(self, expect_id, 0)
                self._pending[expect_id] = h
            off = self._prod.reserve(n)
            if off < 0:
                off = self._reserve_waiting(n)
            self._prod.view[off : off + len(frame)] = frame
            self._prod.tail += n
            self._publish_and_wake()
        return h

    def _next_request_id(self) -> int:
        """Test hook: reserve a fresh request id for a hand-built frame."""
        with self._send_lock:
            return self._new_id()
