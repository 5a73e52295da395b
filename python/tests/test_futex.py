"""The futex calls the client parks and wakes with (``_futex.py``), on a real shared mapping:
a wake reaches the waiter on its own word only, every time (the wake's arguments are built
once per word and reused), and the table of built arguments stays bounded.
"""

from __future__ import annotations

import ctypes
import mmap
import threading

import pytest

from chunkring import _futex
from chunkring._futex import futex_wait, futex_wake

pytestmark = pytest.mark.skipif(not _futex.FUTEX_AVAILABLE, reason="no futex syscall here")


def _parked_thread(addr: int, timeout_s: float) -> tuple[threading.Thread, threading.Event]:
    """A thread in ``futex_wait`` on ``addr`` (expected value 1); the event is set when the
    wait returns."""
    started, returned = threading.Event(), threading.Event()

    def park():
        started.set()
        futex_wait(addr, 1, timeout_s)
        returned.set()

    t = threading.Thread(target=park, daemon=True)
    t.start()
    assert started.wait(5)
    return t, returned


def test_a_wake_reaches_the_waiter_on_its_word_only_every_time():
    mm = mmap.mmap(-1, 4096)
    buf = ctypes.c_char.from_buffer(mm)
    base = ctypes.addressof(buf)
    words = memoryview(mm).cast("I")
    a, b = base, base + 64
    words[0] = words[16] = 1
    try:
        for _ in range(3):  # the second and third wakes reuse the first one's arguments
            t, returned = _parked_thread(a, 30.0)
            # Until the waiter is in the kernel a wake finds nobody; wake until it returns.
            futex_wake(b, 1)  # another word: not this waiter's
            assert not returned.wait(0.05), "a wake of another word woke the waiter"
            for _ in range(200):
                futex_wake(a, 1)
                if returned.wait(0.05):
                    break
            assert returned.is_set(), "futex_wake did not wake the waiter on its word"
            t.join(5)
    finally:
        del buf
        words.release()
        mm.close()


def test_the_built_wake_arguments_stay_bounded():
    mm = mmap.mmap(-1, 4096)
    buf = ctypes.c_char.from_buffer(mm)
    base = ctypes.addressof(buf)
    try:
        for i in range(3 * _futex._WAKE_ARGS_MAX):
            futex_wake(base + 4 * (i % 1024), 1)  # nobody waits: each wake returns at once
        assert 0 < len(_futex._wake_args) <= _futex._WAKE_ARGS_MAX
    finally:
        del buf
        mm.close()
