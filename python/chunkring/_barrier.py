"""The barriers of layout.md §10 as Python can have them: libatomic's fences through ``ctypes``.

Python has no fences of its own. The names follow ``src/barrier.rs`` (and the C reference
the protocol is written in); each is resolved once, at import:

* ``barrier_memory()``: StoreLoad, ``atomic_thread_fence(memory_order_seq_cst)`` (``mfence``
  or a locked no-op on x86-64, ``dmb ish`` on aarch64). It orders the store of our own word
  before the load of the peer's word: at [W2] (the waiter's park store before its re-check,
  pairs with the worker's [W5]) and at [W5] (the waker's tail or head store before its load
  of the worker's futex word, pairs with the worker's [W2]). Without libatomic it is a no-op:
  a lost wake-up then costs at most one park timeout (layout.md §10 "Without libatomic").
* ``barrier_read()``: acquire, ``atomic_thread_fence(memory_order_acquire)`` (aarch64
  ``dmb ishld``). It orders the load of the peer's index before the chunk accesses that
  follow: at [R1] (producer, head; pairs with the worker's [R6]) and [R5] (consumer, tail;
  pairs with the worker's [R3]/[R4]).
* ``barrier_write()``: release, ``atomic_thread_fence(memory_order_release)`` (aarch64
  ``dmb ish``). It orders the chunk accesses before the store of our own index: at [R3]
  (frame bytes before the tail store; pairs with the worker's [R5]) and [R6] (copy-out
  before the head store; pairs with the worker's [R1]).

On x86-64 (TSO) ``barrier_read``/``barrier_write`` need no instruction: loads are not
reordered with later loads or stores, stores not with earlier ones, and the interpreter
issues each bytecode's memory access in program order (each is a separate call into C).
They are then no-ops, and ``NEED_RW_FENCES`` is False so the ring's hot path skips the call.
There is no ``barrier_compiler``: no compiler reorders Python's accesses.

``RING_FENCES_OK`` is False where the architecture needs the acquire/release fences and
libatomic is missing: the client then refuses to attach (it could not order its frame writes
before its tail store).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

__all__ = [
    "FENCE_AVAILABLE",
    "NEED_RW_FENCES",
    "RING_FENCES_OK",
    "barrier_memory",
    "barrier_read",
    "barrier_write",
]

_MEMORY_ORDER_ACQUIRE = 2
_MEMORY_ORDER_RELEASE = 3
_MEMORY_ORDER_SEQ_CST = 5

#: Architectures whose plain loads and stores are already acquire/release (TSO).
_TSO = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _candidates():
    """``libatomic.so.1``, then what ``find_library`` finds (asked only when the soname did
    not load: on Linux it runs ``ldconfig -p``, a few ms at every import)."""
    yield "libatomic.so.1"
    found = ctypes.util.find_library("atomic")
    if found and found != "libatomic.so.1":
        yield found


def _load_libatomic():
    for name in _candidates():
        try:
            # PyDLL, not CDLL: the call keeps the GIL. A fence never blocks, and releasing and
            # re-taking the GIL around it cost about a third of the call (150 -> 100 ns per
            # fence here, `timeit` over functools.partial(fn, 5)), paid once per publish.
            lib = ctypes.PyDLL(name)
            fn = lib.atomic_thread_fence
        except (OSError, AttributeError):
            continue
        # No argtypes: a plain Python int converts to a C int directly, and skipping the
        # argtypes conversion layer makes the call measurably cheaper (echo_peers.py).
        fn.restype = None
        return lib, fn
    return None, None


def _load_cas(lib):
    """libatomic's ``__atomic_compare_exchange_8(ptr, expected*, desired, success, failure)``."""
    try:
        fn = lib.__atomic_compare_exchange_8
    except AttributeError:
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.c_uint64,
                   ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_bool
    return fn


_libatomic, _fence = _load_libatomic()
_cas8 = _load_cas(_libatomic) if _libatomic is not None else None
#: True where :func:`compare_exchange_u64` is a real atomic compare-and-swap.
CAS_AVAILABLE = _cas8 is not None
FENCE_AVAILABLE = _fence is not None
RING_FENCES_OK = _TSO or FENCE_AVAILABLE
#: True where barrier_read/barrier_write emit an instruction (not x86-64); the ring code
#: tests it so the TSO hot path does not pay for a no-op call.
NEED_RW_FENCES = not _TSO


def _noop() -> None:
    return None


if _fence is not None:
    #: [W2]/[W5] StoreLoad fence. A ``functools.partial`` over the ctypes function adds no
    #: Python frame to the call.
    barrier_memory = functools.partial(_fence, _MEMORY_ORDER_SEQ_CST)
else:
    barrier_memory = _noop

if _TSO or _fence is None:
    barrier_read = _noop
    barrier_write = _noop
else:
    #: [R1]/[R5] acquire fence (aarch64 ``dmb ishld``).
    barrier_read = functools.partial(_fence, _MEMORY_ORDER_ACQUIRE)
    #: [R3]/[R6] release fence (aarch64 ``dmb ish``).
    barrier_write = functools.partial(_fence, _MEMORY_ORDER_RELEASE)


def compare_exchange_u64(addr: int, expected: int, desired: int) -> tuple[bool, int]:
    """Atomically: if the 8-byte aligned u64 at ``addr`` is ``expected``, store ``desired``.
    SeqCst, as the worker's ``compare_exchange`` on the same word.

    Returns ``(swapped, value seen)``. Without libatomic (:data:`CAS_AVAILABLE` false) it is
    a plain load, compare and store, which a concurrent writer can interleave with.
    """
    if _cas8 is not None:
        seen = ctypes.c_uint64(expected)
        ok = _cas8(addr, ctypes.byref(seen), desired, _MEMORY_ORDER_SEQ_CST, _MEMORY_ORDER_SEQ_CST)
        return bool(ok), seen.value
    word = ctypes.c_uint64.from_address(addr)
    seen_value = word.value
    if seen_value != expected:
        return False, seen_value
    word.value = desired
    return True, expected
