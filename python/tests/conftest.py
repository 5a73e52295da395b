"""Shared pytest fixtures: real ``chunkring serve`` workers over small rings.

Every test that talks to a worker uses the real binary (``find_worker_bin``: the
``CHUNKRING_WORKER`` variable, which ci/test.sh sets to ``target/release/chunkring``; else the
scripts folder of the install holding the package, ``target/{release,debug}``, then ``PATH``).
When none is built the fixtures error out with the list of places tried: nothing is skipped.
"""

from __future__ import annotations

import mmap
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chunkring import Client, find_worker_bin  # noqa: E402 (after the sys.path insert)
from chunkring import _layout as L  # noqa: E402

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


def run_threads(threads, seconds: float) -> None:
    """Start ``threads``, join each (at most ``seconds`` apiece) and fail if one still runs."""
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds)
    assert not any(t.is_alive() for t in threads)


def run_bounded(fn, seconds: float = 30.0):
    """Run ``fn()`` in a thread and fail (instead of hanging) if it takes over ``seconds``.

    Returns ``fn``'s result or re-raises its exception.
    """
    out: dict = {}

    def body():
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed over to the test thread
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


def make_region_file(tmp_path: Path, **overrides) -> Path:
    """A region file with a header page and two 4 KiB rings (64 chunks of 64 bytes), as a
    ready worker would leave it, unless ``overrides`` break a field. No worker serves it."""
    chunk, chunks = 64, 64
    ring = chunk * chunks
    fields = dict(
        magic=L.REGION_MAGIC, version=L.LAYOUT_VERSION, endian=L.ENDIAN_MARK,
        header_bytes=L.HEADER_BYTES, chunk_bytes=chunk, req_off=L.HEADER_BYTES,
        req_chunks=chunks, resp_off=L.HEADER_BYTES + ring, resp_chunks=chunks,
        region_bytes=L.HEADER_BYTES + 2 * ring, worker_pid=os.getpid(), state=L.WORKER_READY,
        client_pid=0, client_state=0, heartbeat=0, max_message=1 << 20, park_us=50_000,
        frame_crc=L.FRAME_CRC_OPTIONAL,
    )
    fields.update(overrides)
    path = tmp_path / f"region-{uuid.uuid4().hex}"
    path.write_bytes(b"\0" * (L.HEADER_BYTES + 2 * ring))
    path.chmod(0o600)  # attach refuses regions other users could read (layout.md §12)
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as mm:
        L.REGION_HEADER.pack_into(mm, 0, *fields.values())
    return path
