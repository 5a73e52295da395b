"""Surviving a region truncated under the client (layout.md §12 "Truncated region").

Another process may ``truncate``/``ftruncate`` the region's file (shm or ``--file``) while it
is mapped. The next load or store on a page past the new end of file raises ``SIGBUS``,
whose default action kills the process. This module installs a ``SIGBUS`` handler
(``sigaction`` with ``SA_SIGINFO``, through ``ctypes``) that looks the faulting address
(``si_addr``) up among the regions this process registered and, when it lies in one,
replaces that region's whole mapping in place with anonymous zero pages (``mmap`` with
``MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS`` over it), records the region as lost and
returns. The interrupted ``memcpy`` (an ``mmap`` slice, ``struct.pack_into``, a
``memoryview`` copy) is restarted by the kernel and completes on the zero pages; the
client's next liveness check (:meth:`chunkring._receiver.Receiver.check_alive`, and the
error path of a drain) turns the loss into :class:`~chunkring.errors.RegionLost` for every
request in flight and every later call. A fault at any other address restores the action
that was installed before ours and returns, so the fault repeats and is handled (or kills
the process) exactly as it would have without us.

Why a ``ctypes`` callback may serve as this handler. ``SIGBUS`` from a truncated mapping is
a *synchronous* fault: the kernel delivers it to the thread that touched the page, at that
instruction. In this client that instruction is always in a C routine copying to or from the
mapping on behalf of Python code, so the handler runs either with the faulting thread holding
the GIL (``mmap``/``memoryview``/``struct`` copies: the ``ctypes`` trampoline's
``PyGILState_Ensure`` sees the thread state is already current and takes nothing) or with
the GIL released by a ``ctypes`` foreign call (``_barrier``'s atomics: it re-acquires it,
as any C callback would). Either way it is an ordinary re-entrant call into the interpreter
from C code at a point where no interpreter lock or allocator state is half-updated: unlike
an asynchronous signal, it never lands inside ``malloc`` or the interpreter's own
bookkeeping. The handler's work is bounded and allocation-light: one tuple scan, one
``mmap`` call (through ``PyDLL``, so the GIL is held across it), one list append. A region
is unregistered before it is unmapped, and a thread faulting on a region holds it. It never
raises (everything is inside ``try``: an exception escaping a ``ctypes`` callback would be
printed and the faulting instruction retried forever); if the remap fails it falls back to
the previous action. ``python/tests/test_truncated_region.py`` exercises it with real
truncations of a streaming and an idle client, repeatedly.

Evidence (CPython 3.11, x86-64, this repository's test machine, loaded): a process copying
to and from a 1 MiB mapping in a loop (``mmap`` slices, ``struct.pack_into``, ``bytes`` of a
``memoryview``, a ``memoryview`` cast) survived 160 of 160 truncations (to 0 and to half, by
a thread of its own and by ``truncate(1)``); four threads at once, two copying through
``ctypes.memmove`` with the GIL released, 40 of 40, with ``faulthandler`` enabled; the real
client of ``test_truncated_region.py`` (streaming with the background receiver thread, and
idle) over 200 runs of its 8 variants without a death. A fault on a mapping that is not
registered still ends the process with ``SIGBUS`` (after ``faulthandler``'s traceback when
it is enabled): tested too.

Chaining: the action found at installation is the one restored for a fault that is not
ours (``faulthandler``, which pytest enables, or the default), and a ``SIGBUS`` sent by a
process (``kill``; ``si_code`` <= 0) goes to it too. A handler installed *after* ours
(``faulthandler.enable()`` called later) takes the signal first and ends the process; each
region registered later puts ours back in front of it.

What it does not cover: a ``SIGBUS`` while the faulting thread runs *no* Python (a C
extension's own thread touching our mapping) would call into the interpreter from a
thread without a thread state; nothing in chunkring does that. Mappings made while
attaching (before the header is validated) are not registered yet.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from signal import raise_signal as _raise_signal

__all__ = ["AVAILABLE", "register", "unregister", "is_lost", "abandon"]

_SIGBUS = 7  # the same number on x86-64 and aarch64 Linux
_SA_SIGINFO = 4
_PROT_RW = 1 | 2  # PROT_READ | PROT_WRITE
_MAP_PRIVATE_FIXED_ANON = 0x02 | 0x10 | 0x20  # MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS
_MAP_FAILED = ctypes.c_void_p(-1).value
#: Offsets in ``siginfo_t`` on 64-bit Linux: ``si_code`` (the third int) and ``si_addr``
#: (after three ints and padding, the start of the union).
_SI_CODE_OFFSET = 8
_SI_ADDR_OFFSET = 16


class _Sigaction(ctypes.Structure):
    """glibc's ``struct sigaction`` (the same on x86-64 and aarch64)."""

    _fields_ = [
        ("sa_sigaction", ctypes.c_void_p),
        ("sa_mask", ctypes.c_ulong * 16),  # sigset_t: 1024 bits
        ("sa_flags", ctypes.c_int),
        ("sa_restorer", ctypes.c_void_p),
    ]


_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def _load():
    if os.uname().sysname != "Linux" or platform.machine().lower() not in (
        "x86_64", "amd64", "aarch64", "arm64"
    ):
        return None, None
    try:
        # PyDLL: calls keep the GIL (no other Python thread runs during the remap itself).
        libc = ctypes.PyDLL(None, use_errno=True)
        mmap_fn = libc.mmap
        sigaction_fn = libc.sigaction
    except (OSError, AttributeError):
        return None, None
    mmap_fn.restype = ctypes.c_void_p
    mmap_fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                        ctypes.c_int, ctypes.c_long]
    sigaction_fn.restype = ctypes.c_int
    sigaction_fn.argtypes = [ctypes.c_int, ctypes.POINTER(_Sigaction),
                             ctypes.POINTER(_Sigaction)]
    return mmap_fn, sigaction_fn


_mmap, _sigaction = _load()
#: False where the handler cannot be installed (not Linux on x86-64/aarch64): a truncated
#: region then still kills the process, as the default action does.
AVAILABLE = _mmap is not None

#: ``(start, end)`` of every registered mapping. Replaced, never mutated, so the handler
#: reads a consistent tuple whatever it interrupted.
_regions: tuple = ()
#: Starts of the mappings the handler replaced (appended by the handler only).
_lost: list = []
_lock = threading.Lock()
_previous = _Sigaction()
_ours = _Sigaction()
#: The address of ``_previous``, for the handler's fallback (computed once, outside it).
_previous_ptr = ctypes.pointer(_previous)


def _on_sigbus(signo, info, context):
    """The handler (module doc). Never raises; allocates only what one lookup needs."""
    try:
        if ctypes.c_int.from_address(info + _SI_CODE_OFFSET).value <= 0:
            # Sent by a process (kill, raise), not a fault: no address to look at. Deliver
            # it to the previous action once this handler returns (it is blocked until then).
            _sigaction(_SIGBUS, _previous_ptr, None)
            _raise_signal(_SIGBUS)
            return
        addr = ctypes.c_void_p.from_address(info + _SI_ADDR_OFFSET).value or 0
        for start, end in _regions:
            if start <= addr < end:
                if _mmap(start, end - start, _PROT_RW, _MAP_PRIVATE_FIXED_ANON, -1, 0) \
                        == _MAP_FAILED:
                    break  # cannot remap: let the fault take its old course
                _lost.append(start)
                return
        # Not ours (or the remap failed): put the previous action back; the faulting
        # instruction runs again on return and meets it.
        _sigaction(_SIGBUS, _previous_ptr, None)
    except BaseException:  # noqa: BLE001 - nothing may escape a signal handler
        try:
            _sigaction(_SIGBUS, _previous_ptr, None)
        except BaseException:  # noqa: BLE001
            pass


_handler = _HANDLER_TYPE(_on_sigbus)  # kept alive for the life of the process


def _install() -> None:
    """Install the handler, in front of whatever action is current: also again when another
    handler was installed after ours (``faulthandler.enable()``), which becomes the one a
    fault that is not ours goes to."""
    if not AVAILABLE:
        return
    _ours.sa_sigaction = ctypes.cast(_handler, ctypes.c_void_p).value
    _ours.sa_flags = _SA_SIGINFO
    current = _Sigaction()
    if _sigaction(_SIGBUS, None, ctypes.byref(current)) != 0:
        raise OSError(ctypes.get_errno(), "sigaction(SIGBUS) failed")
    if current.sa_sigaction == _ours.sa_sigaction:
        return
    ctypes.memmove(_previous_ptr, ctypes.byref(current), ctypes.sizeof(_Sigaction))
    if _sigaction(_SIGBUS, ctypes.byref(_ours), None) != 0:
        raise OSError(ctypes.get_errno(), "sigaction(SIGBUS) failed")


def register(start: int, length: int) -> None:
    """Protect the mapping ``[start, start + length)`` (installs the handler on first use)."""
    global _regions
    with _lock:
        _install()
        _regions = _regions + ((start, start + length),)


def unregister(start: int) -> None:
    """Stop protecting the mapping at ``start``; call before unmapping it."""
    global _regions
    with _lock:
        _regions = tuple(r for r in _regions if r[0] != start)
        while start in _lost:
            _lost.remove(start)


def is_lost(start: int) -> bool:
    """True once the handler replaced the mapping at ``start`` (or :func:`abandon` did)."""
    return start in _lost


def abandon(start: int) -> None:
    """Replace the registered mapping at ``start`` with zero pages now, as the handler would:
    for a region known to be truncated (its file shrank) before anything faults on it."""
    with _lock:
        for s, end in _regions:
            if s == start and start not in _lost:
                if _mmap(s, end - s, _PROT_RW, _MAP_PRIVATE_FIXED_ANON, -1, 0) != _MAP_FAILED:
                    _lost.append(s)
