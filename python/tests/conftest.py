"""Shared pytest fixtures: real ``chunkring serve`` workers over small rings.

Every test that talks to a worker uses the real binary (``find_worker_bin``: the
``CHUNKRING_WORKER`` variable, the package's ``bin/``, ``PATH``, then ``target/{release,debug}``).
When none is built the fixtures error out with the list of places tried: nothing is skipped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chunkring import Client, find_worker_bin  # noqa: E402

#: Small rings keep the edge-case sizes (ring capacity, 4x ring) quick.
SMALL_RING_BYTES = 64 * 1024
SMALL_CHUNK_BYTES = 64
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def worker_bin() -> str:
    """Path of the real worker binary."""
    return find_worker_bin()


@pytest.fixture(scope="module")
def client(worker_bin):
    """One spawned worker (64 KiB rings, 64-byte chunks) shared by a test module."""
    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin)
    yield c
    c.close()


@pytest.fixture
def own_client(worker_bin):
    """A worker of its own, for tests that stop, kill or break it."""
    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin)
    yield c
    try:
        os.kill(c.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    c.close()


def eventually(predicate, seconds: float = 5.0) -> bool:
    """True as soon as ``predicate()`` holds, False if it still fails after ``seconds``.

    For values the worker publishes with Relaxed stores (stats counters, §3), which may land
    just after the response that the test already read.
    """
    deadline = time.monotonic() + seconds
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def run_bounded(fn, seconds: float = 30.0):
    """Run ``fn()`` in a thread and fail (instead of hanging) if it takes over ``seconds``.

    Returns ``fn``'s result or re-raises its exception.
    """
    out: dict = {}

    def body():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            out["error"] = exc

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"hung: still running after {seconds} s")
    if "error" in out:
        raise out["error"]
    return out.get("value")


def start_standalone_worker(worker_bin: str, name: str, *extra: str) -> subprocess.Popen:
    """``chunkring serve --name NAME`` without an owner: for attach tests."""
    return subprocess.Popen(
        [worker_bin, "serve", "--name", name, "--size", str(SMALL_RING_BYTES), *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
