"""Shared futex wait/wake and the StoreLoad fence through ``ctypes`` (layout.md §10, §11).

Python has no fences and no futex of its own. This module resolves, once at import:

* ``futex_wait(addr, expected, timeout_s)`` / ``futex_wake(addr, n)``: ``syscall(SYS_futex, ..)``
  with ``FUTEX_WAIT`` (0) / ``FUTEX_WAKE`` (1), *without* ``FUTEX_PRIVATE_FLAG``, so a waiter in
  one process is woken by a waker in another (the word lives in the shared region).
  ``FUTEX_AVAILABLE`` is False off Linux or on an unknown architecture; callers then sleep in
  short, growing intervals instead (layout.md §11 step 3).
* ``barrier_memory()``: libatomic's ``atomic_thread_fence(memory_order_seq_cst)`` (an ``mfence``
  on x86-64, ``dmb ish`` on aarch64), needed by [W2] and [W5]. ``FENCE_AVAILABLE`` tells whether
  libatomic was found; without it ``barrier_memory`` is a no-op and a lost wake-up costs at most
  one park timeout (layout.md §10 "Without libatomic").
* ``barrier_read()`` / ``barrier_write()``: nothing on x86-64 (TSO); on aarch64 the acquire and
  release fences from libatomic ([R1], [R3], [R5], [R6]). ``RING_FENCES_OK`` is False when the
  architecture needs them and libatomic is missing: the client then refuses to attach.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import time

__all__ = [
    "FENCE_AVAILABLE",
    "FUTEX_AVAILABLE",
    "NEED_RW_FENCES",
    "RING_FENCES_OK",
    "barrier_memory",
    "barrier_read",
    "barrier_write",
    "futex_wait",
    "futex_wake",
]

FUTEX_WAIT = 0  # shared (no FUTEX_PRIVATE_FLAG = 128): works across processes
FUTEX_WAKE = 1
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}
_MEMORY_ORDER_ACQUIRE = 2
_MEMORY_ORDER_RELEASE = 3
_MEMORY_ORDER_SEQ_CST = 5

_MACHINE = platform.machine().lower()
#: Architectures whose plain loads and stores are already acquire/release (TSO).
_TSO = _MACHINE in ("x86_64", "amd64", "i386", "i686")


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _load_libatomic():
    candidates = ["libatomic.so.1"]
    found = ctypes.util.find_library("atomic")
    if found and found not in candidates:
        candidates.append(found)
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            fn = lib.atomic_thread_fence
        except (OSError, AttributeError):
            continue
        # No argtypes: a plain Python int converts to a C int directly, and skipping the
        # argtypes conversion layer makes the call measurably cheaper (echo_peers.py).
        fn.restype = None
        return fn
    return None


_fence = _load_libatomic()
FENCE_AVAILABLE = _fence is not None
RING_FENCES_OK = _TSO or FENCE_AVAILABLE
#: True where barrier_read/barrier_write emit an instruction (not x86-64); the ring code
#: tests it so the TSO hot path does not pay for a no-op call.
NEED_RW_FENCES = not _TSO


def _noop() -> None:
    return None


if _fence is not None:
    #: [W2]/[W5] StoreLoad fence: ``atomic_thread_fence(memory_order_seq_cst)``. A
    #: ``functools.partial`` over the ctypes function adds no Python frame to the call.
    barrier_memory = functools.partial(_fence, _MEMORY_ORDER_SEQ_CST)
else:
    barrier_memory = _noop

if _TSO or _fence is None:
    # x86-64: TSO already orders loads before later accesses and stores after earlier ones, and
    # the interpreter issues each bytecode's access in program order.
    barrier_read = _noop
    barrier_write = _noop
else:

    #: [R1]/[R5] acquire fence (aarch64 ``dmb ishld``).
    barrier_read = functools.partial(_fence, _MEMORY_ORDER_ACQUIRE)
    #: [R3]/[R6] release fence (aarch64 ``dmb ish``).
    barrier_write = functools.partial(_fence, _MEMORY_ORDER_RELEASE)


def _load_syscall():
    nr = _SYS_FUTEX.get(_MACHINE)
    if nr is None or not os.uname().sysname == "Linux":
        return None, None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syscall
    except (OSError, AttributeError):
        return None, None
    fn.restype = ctypes.c_long
    return fn, nr


_syscall, _NR_FUTEX = _load_syscall()
FUTEX_AVAILABLE = _syscall is not None


def futex_wait(addr: int, expected: int, timeout_s: float) -> None:
    """Block while the u32 at ``addr`` equals ``expected``, at most ``timeout_s`` seconds.

    Returns on a wake, a timeout, a signal or when the word already differs (EAGAIN); the
    caller re-checks its condition in every case. Without futexes it sleeps briefly instead.
    """
    if _syscall is None:
        time.sleep(min(timeout_s, 0.001))
        return
    ts = _Timespec(int(timeout_s), int((timeout_s % 1.0) * 1e9))
    _syscall(
        ctypes.c_long(_NR_FUTEX),
        ctypes.c_void_p(addr),
        ctypes.c_int(FUTEX_WAIT),
        ctypes.c_uint32(expected),
        ctypes.byref(ts),
        ctypes.c_void_p(0),
        ctypes.c_uint32(0),
    )


def futex_wake(addr: int, n: int = 1) -> None:
    """Wake up to ``n`` waiters blocked on the u32 at ``addr`` (in any process)."""
    if _syscall is None:
        return
    _syscall(
        ctypes.c_long(_NR_FUTEX),
        ctypes.c_void_p(addr),
        ctypes.c_int(FUTEX_WAKE),
        ctypes.c_int(n),
        ctypes.c_void_p(0),
        ctypes.c_void_p(0),
        ctypes.c_uint32(0),
    )
