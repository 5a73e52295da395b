"""The Rust responder of the echo bench's bare floor (``examples/floor_echo.rs``) answers
correctly: round trips of several sizes and a pipelined ring, the bytes checked, through the
bench's own functions (``benches/python/echo_peers.py``), and bad input ends it with a clear
error. Behaviour only: the floor's speed belongs to the bench."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benches" / "python"))

from cargo_example import example_bin  # noqa: E402 (after the sys.path insert)
from echo_peers import (  # noqa: E402
    MAXB,
    _start_floor,
    _stop_floor,
    bench_floor,
    bench_floor_pipelined,
)


@pytest.fixture(scope="module")
def floor_exe() -> str:
    exe, why = example_bin("floor_echo")
    assert exe, why
    return exe


def test_round_trips_of_every_size_come_back_byte_for_byte(floor_exe):
    # bench_floor asserts each size's last answer equals its (random) request; sizes differ
    # in turn, so a stale or short copy would not pass.
    out = bench_floor(3, floor_exe, sizes=(0, 1, 64, 1000, 4096, MAXB))
    assert sorted(out) == [0, 1, 64, 1000, 4096, MAXB]
    assert all(len(r["samples"]) == 3 for r in out.values())


def test_the_pipelined_ring_wraps_and_answers_every_frame(floor_exe):
    # 37 frames through 4 slots: the ring wraps nine times; the last answer is checked.
    assert bench_floor_pipelined(37, 4, floor_exe) > 0


def _shared(size: int):
    path = f"/dev/shm/chunkring-test-floor-{os.getpid()}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, size)
    mm = mmap.mmap(fd, size)
    return path, fd, mm, memoryview(mm)[:4096].cast("Q")


def test_a_request_longer_than_the_area_ends_it_with_a_clear_error(floor_exe):
    path, fd, mm, q = _shared(4096 + 2 * MAXB)
    child = None
    try:
        child = _start_floor(path, q, floor_exe, None, (), ["roundtrip", path, "60"])
        q[9] = MAXB + 1
        q[0] = 1
        assert child.wait(10) == 1
        assert q[8] == 0  # nothing was answered
    finally:
        _stop_floor(q, child, mm, fd, path)


@pytest.mark.parametrize("args, message", [
    ([], "usage: floor_echo"),
    (["roundtrip", "/dev/shm/chunkring-test-floor-missing", "5"], "open /dev/shm"),
    (["pipe", "/dev/shm/x", "0", "5"], "window 0 not in"),
    (["roundtrip", "/dev/shm/x", "soon"], "soon:"),
])
def test_bad_arguments_exit_with_a_message(floor_exe, args, message):
    r = subprocess.run([floor_exe, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
