"""Shared futex wait and wake through ``ctypes`` (layout.md §11).

``futex_wait(addr, expected, timeout_s)`` / ``futex_wake(addr, n)``: ``syscall(SYS_futex, ..)``
with ``FUTEX_WAIT`` (0) / ``FUTEX_WAKE`` (1), *without* ``FUTEX_PRIVATE_FLAG``, so a waiter in
one process is woken by a waker in another (the word lives in the shared region).
``FUTEX_AVAILABLE`` is False off Linux or on an unknown architecture; ``futex_wait`` then
sleeps in short intervals instead (layout.md §11 step 3) and ``futex_wake`` does nothing.
That slow path is reached only on purpose: ``Client.spawn``/``attach`` refuse such platforms
with ``UnsupportedPlatform`` unless ``CHUNKRING_ALLOW_UNSUPPORTED_PLATFORM=1`` (``_platform.py``).

The protocol around the calls, [W1]-[W6], is the caller's: the park in ``_receiver.py``, the
wake check in ``_ring.py``; the fences they use are in ``_barrier.py``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import time

__all__ = ["FUTEX_AVAILABLE", "futex_wait", "futex_wake"]

FUTEX_WAIT = 0  # shared (no FUTEX_PRIVATE_FLAG = 128): works across processes
FUTEX_WAKE = 1
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}
_MACHINE = platform.machine().lower()


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


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


#: The argument tuples of ``futex_wake`` by ``(addr, n)``, built once: a wake then builds no
#: ctypes object. A wake nobody waits for took 4.1 µs in the caller warm, 41 after a 10 ms
#: sleep (cold caches) when it built its seven arguments each time; 1.6 and 23 with them
#: built once. A client has two words (the worker's and its own); the table is emptied past
#: ``_WAKE_ARGS_MAX`` entries.
_wake_args: dict[tuple[int, int], tuple] = {}
_WAKE_ARGS_MAX = 64


def futex_wake(addr: int, n: int = 1) -> None:
    """Wake up to ``n`` waiters blocked on the u32 at ``addr`` (in any process)."""
    if _syscall is None:
        return
    args = _wake_args.get((addr, n))
    if args is None:
        if len(_wake_args) >= _WAKE_ARGS_MAX:
            _wake_args.clear()
        args = _wake_args[addr, n] = (
            ctypes.c_long(_NR_FUTEX),
            ctypes.c_void_p(addr),
            ctypes.c_int(FUTEX_WAKE),
            ctypes.c_int(n),
            ctypes.c_void_p(0),
            ctypes.c_void_p(0),
            ctypes.c_uint32(0),
        )
    _syscall(*args)
