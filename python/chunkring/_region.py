"""Attach to a worker's region: ``os.open`` + ``mmap``, header validation (layout.md §3, §4, §12).

Not ``multiprocessing.shared_memory``: before Python 3.13 its resource tracker unlinks segments
the process did not create. The worker creates, sizes and unlinks the region; the client only
maps it, waits for ``WORKER_READY`` and checks every header field, refusing with a
:class:`~chunkring.errors.ProtocolError` that names the field.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import re
import stat
import time
from pathlib import Path
from typing import Callable

from . import _barrier
from . import _sigbus
from . import _layout as L
from .errors import ProtocolError

SHM_DIR = Path("/dev/shm")
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_Q = 8  # bytes per index word
_I = 4  # bytes per futex / u32 word


def validate_name(name: str) -> str:
    """Return ``name`` if it matches ``[A-Za-z0-9_-]{1,64}`` (layout.md §12), else raise ValueError."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid region name {name!r}: must match [A-Za-z0-9_-]{{1,64}}")
    return name


def region_path(name: str | None, file: str | os.PathLike | None) -> Path:
    """The file backing a region: ``file`` itself, or ``/dev/shm/chunkring-<name>``."""
    if file is not None:
        return Path(file)
    if name is None:
        raise ValueError("attach needs a region name or a file")
    return SHM_DIR / f"chunkring-{validate_name(name)}"


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class Region:
    """A mapped, validated region. Exposes the mapping and typed views of the header page.

    ``q`` is the header page as ``u64`` words and ``i`` as ``u32`` words: index word ``X`` at
    byte offset ``X_OFFSET`` is ``q[X_OFFSET // 8]``. ``view`` is the whole region as bytes.
    Every export is released by :meth:`close`.
    """

    def __init__(self, path: Path, mm: mmap.mmap, fields: tuple):
        self.path = path
        self.mm = mm
        (
            _magic,
            _version,
            _endian,
            _header_bytes,
            self.chunk_bytes,
            self.req_ring_offset,
            self.req_ring_chunks,
            self.resp_ring_offset,
            self.resp_ring_chunks,
            self.region_bytes,
            self.worker_pid,
            _state,
            _client_pid,
            _client_state,
            _heartbeat,
            self.max_message_bytes,
            self.park_timeout_us,
            self.frame_crc,
        ) = fields
        #: Whether this client's frames carry a CRC-32 (layout.md §6.6); the client sets it
        #: before building its ring ends. Always on in a FRAME_CRC_REQUIRED region.
        self.crc = self.frame_crc == L.FRAME_CRC_REQUIRED
        self.view = memoryview(mm)
        header = self.view[: L.HEADER_BYTES]
        self.q = header.cast("Q")
        self.i = header.cast("I")
        self._header = header
        # ctypes objects exporting the futex words: their addresses go to futex(2).
        self._worker_futex = ctypes.c_uint32.from_buffer(mm, L.WORKER_FUTEX_OFFSET)
        self._client_futex = ctypes.c_uint32.from_buffer(mm, L.CLIENT_FUTEX_OFFSET)
        self._client_slot_word = ctypes.c_uint64.from_buffer(mm, L.CLIENT_PID_OFFSET)
        self.worker_futex_addr = ctypes.addressof(self._worker_futex)
        self.client_futex_addr = ctypes.addressof(self._client_futex)
        #: The mapping's address: protected by the SIGBUS handler of ``_sigbus.py``.
        self.base = self.worker_futex_addr - L.WORKER_FUTEX_OFFSET
        _sigbus.register(self.base, len(mm))

    # ---- header fields ------------------------------------------------------------------
    @property
    def worker_state(self) -> int:
        """``WORKER_STATE`` (one of ``WORKER_*``)."""
        return self.i[L.WORKER_STATE_OFFSET // _I]

    @property
    def heartbeat_ns(self) -> int:
        """``WORKER_HEARTBEAT_NS``: the worker's last heartbeat, CLOCK_MONOTONIC ns (0: none)."""
        return self.q[L.WORKER_HEARTBEAT_NS_OFFSET // _Q]

    def stat(self, index: int) -> int:
        """Stats counter ``index`` (a ``STAT_*`` value); approximate, written Relaxed by the worker."""
        return self.q[L.STATS_OFFSET // _Q + index]

    def set_client(self, pid: int, state: int) -> None:
        """Write ``CLIENT_PID`` and ``CLIENT_STATE`` (the only header fields a client writes)
        together, as one 8-byte store of the slot word (layout.md §12 "Attach"): never a
        moment with one changed and not the other, which a claiming client could act on."""
        self.q[L.CLIENT_PID_OFFSET // _Q] = pid | (state << 32)

    def claim_client(self, pid: int, live: Callable[[int], bool]) -> int | None:
        """Take the client slot for ``pid`` (layout.md §12 "Attach"); ``None`` on success,
        else the pid of the client that holds it.

        The slot is the 8-byte word ``CLIENT_PID | CLIENT_STATE << 32``. It is free unless its
        state is ``CLIENT_ATTACHED`` and its pid ``live``. It is taken with one
        compare-and-swap of that word from the value seen to (``pid``, ``CLIENT_ATTACHED``)
        (libatomic's ``__atomic_compare_exchange_8``), the same word the worker frees a dead
        client's slot with: of two clients racing exactly one wins, and the loser refuses.
        """
        seen = self.q[L.CLIENT_PID_OFFSET // _Q]
        holder, state = seen & 0xFFFF_FFFF, seen >> 32
        if holder and state == L.CLIENT_ATTACHED and live(holder):
            return holder
        mine = pid | (L.CLIENT_ATTACHED << 32)
        swapped, now = _barrier.compare_exchange_u64(
            ctypes.addressof(self._client_slot_word), seen, mine
        )
        if not swapped:
            return (now & 0xFFFF_FFFF) or holder or -1
        return None

    def client_slot(self) -> tuple[int, int]:
        """``(CLIENT_PID, CLIENT_STATE)``."""
        return self.i[L.CLIENT_PID_OFFSET // _I], self.i[L.CLIENT_STATE_OFFSET // _I]

    def lost(self) -> str | None:
        """Why the region can no longer be used, or None: another process truncated its file
        (layout.md §12 "Truncated region"). Either the SIGBUS handler already replaced the
        mapping with zero pages, or the file (one ``fstat``, through ``mmap.size()``) is now
        shorter than the region, and the mapping is replaced here before anything faults.
        A slow-path check: liveness checks and error paths call it, never a round trip."""
        mm = self.mm
        if mm is None:
            return None
        if _sigbus.is_lost(self.base):
            return (f"region {self.path} was truncated by another process "
                    "(a SIGBUS on it was caught; the mapping now reads zeros)")
        try:
            size = mm.size()
        except (OSError, ValueError):
            return None
        if size >= self.region_bytes:
            return None
        _sigbus.abandon(self.base)
        return (f"region {self.path} was truncated by another process: "
                f"{size} of its {self.region_bytes} bytes are left")

    # ---- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Release every export of the mapping, then unmap it. Idempotent."""
        if self.mm is None:
            return
        _sigbus.unregister(self.base)  # before the unmap: the address may be reused
        self._worker_futex = self._client_futex = self._client_slot_word = None
        for v in (self.q, self.i, self._header, self.view):
            v.release()
        try:
            self.mm.close()
        except BufferError:  # a view still alive somewhere (a caller's memoryview)
            pass
        self.mm = None

    @classmethod
    def attach(
        cls,
        path: Path,
        timeout: float,
        check: Callable[[], None] | None = None,
        expect_pid: int | None = None,
    ) -> "Region":
        """Map ``path`` and wait until the worker marks it ready, then validate the header.

        Retries (until ``timeout``) while the file is missing, shorter than a header page,
        all-zero (worker initialising) or ``WORKER_STARTING``. ``check`` runs on every retry
        and may raise (``Client.spawn`` uses it to notice a worker that exited early).
        With ``expect_pid``, a header naming another worker pid (a stale region) is waited out.
        """
        deadline = time.monotonic() + timeout
        delay = 0.0005
        last = "the region file does not exist"
        while True:
            if check is not None:
                check()
            mm = _try_map(path)
            if mm is None:
                last = f"{path} does not exist or is smaller than a header page"
            else:
                fields = L.REGION_HEADER.unpack_from(mm, 0)
                magic, state = fields[0], fields[11]
                if magic == b"\0" * 8:
                    last = "the header is still all zero (worker initialising)"
                elif magic != L.REGION_MAGIC:
                    mm.close()
                    raise ProtocolError(f"not a chunkring region: {path} starts with {magic!r}")
                elif state == L.WORKER_STARTING:
                    last = "WORKER_STATE is still WORKER_STARTING"
                elif expect_pid is not None and fields[10] != expect_pid:
                    last = f"the header names worker pid {fields[10]}, not {expect_pid}"
                elif state in (L.WORKER_STOPPED, L.WORKER_FAILED):
                    mm.close()
                    raise ProtocolError(f"the worker of {path} has stopped (state {state})")
                else:
                    try:
                        _validate(fields, len(mm))
                    except ProtocolError:
                        mm.close()
                        raise
                    return cls(path, mm, fields)
                mm.close()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"region {path} not ready after {timeout} s: {last}")
            time.sleep(delay)
            delay = min(delay * 2, 0.01)


def _try_map(path: Path) -> mmap.mmap | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ProtocolError(f"refusing region {path}: it is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        _check_owner_only(path, st)
        size = st.st_size
        if size < L.HEADER_BYTES:
            return None
        # MAP_POPULATE: fault every page in now (a few ms once) rather than on the first
        # pass of the rings, where each fresh page costs a fault in the middle of a request
        # (a 30 KB snapshot push touched 8 of them: 27 µs of its 34 µs ring write).
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        return mmap.mmap(fd, size, flags, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def _check_owner_only(path: Path, st: os.stat_result) -> None:
    """layout.md §12 "Region files and ownership": a regular file of this user's, mode 0600."""
    if not stat.S_ISREG(st.st_mode):
        raise ProtocolError(f"refusing region {path}: not a regular file")
    if st.st_uid != os.geteuid():
        raise ProtocolError(
            f"refusing region {path}: owned by uid {st.st_uid}, not by this user "
            f"(uid {os.geteuid()})"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode != 0o600:
        raise ProtocolError(
            f"refusing region {path}: mode {mode:04o}, not 0600 (another user could read or "
            "write it)"
        )


def _validate(fields: tuple, mapped: int) -> None:
    """Check every §3 rule; raise ProtocolError naming the first field that breaks one."""
    (
        _magic,
        version,
        endian,
        header_bytes,
        chunk_bytes,
        req_off,
        req_chunks,
        resp_off,
        resp_chunks,
        region_bytes,
        *_rest,
    ) = fields
    if version != L.LAYOUT_VERSION:
        raise ProtocolError(
            f"layout version mismatch: the region has version {version}, "
            f"this client speaks version {L.LAYOUT_VERSION}"
        )
    if endian != L.ENDIAN_MARK:
        if endian == 0x04030201:
            raise ProtocolError("big-endian peer: the endian mark reads 0x04030201")
        raise ProtocolError(f"bad endian mark {endian:#010x} (expected {L.ENDIAN_MARK:#010x})")
    if header_bytes != L.HEADER_BYTES:
        raise ProtocolError(f"header page is {header_bytes} bytes, expected {L.HEADER_BYTES}")
    if not (_pow2(chunk_bytes) and L.MIN_CHUNK_BYTES <= chunk_bytes <= L.MAX_CHUNK_BYTES):
        raise ProtocolError(
            f"chunk size {chunk_bytes} is not a power of two in "
            f"{L.MIN_CHUNK_BYTES}..={L.MAX_CHUNK_BYTES}"
        )
    for ring, chunks in (("request", req_chunks), ("response", resp_chunks)):
        ring_bytes = chunks * chunk_bytes
        if not (_pow2(chunks) and L.MIN_RING_BYTES <= ring_bytes <= L.MAX_RING_BYTES):
            raise ProtocolError(
                f"{ring} ring of {chunks} chunks ({ring_bytes} bytes) is not a power of two "
                f"in {L.MIN_RING_BYTES}..={L.MAX_RING_BYTES} bytes"
            )
        if chunks < 2:
            raise ProtocolError(f"{ring} ring of {chunks} chunk: a ring needs at least 2 chunks")
    if req_off != L.HEADER_BYTES:
        raise ProtocolError(f"request ring offset {req_off} != header bytes {L.HEADER_BYTES}")
    if resp_off != req_off + req_chunks * chunk_bytes:
        raise ProtocolError(f"response ring offset {resp_off} does not follow the request ring")
    if region_bytes != resp_off + resp_chunks * chunk_bytes:
        raise ProtocolError(f"region size {region_bytes} does not match its rings")
    if region_bytes > mapped:
        raise ProtocolError(f"region size {region_bytes} exceeds the mapped file ({mapped} bytes)")
    frame_crc = fields[-1]
    if frame_crc not in (L.FRAME_CRC_OPTIONAL, L.FRAME_CRC_REQUIRED):
        raise ProtocolError(f"unknown frame checksum mode {frame_crc} (layout.md §6.6)")
