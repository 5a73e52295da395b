"""Logging (issue 12): the ``chunkring`` logger records worker start, stop and death; the
library configures no handler of its own beyond a NullHandler."""

from __future__ import annotations

import logging
import os
import signal

import pytest
from chunkring import Client, WorkerDied
from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES


def test_the_library_adds_only_a_null_handler():
    handlers = logging.getLogger("chunkring").handlers
    assert handlers and all(isinstance(h, logging.NullHandler) for h in handlers)


def test_worker_start_stop_and_death_are_logged(worker_bin, caplog):
    caplog.set_level(logging.INFO, logger="chunkring")
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin) as c:
        pid = c.pid
        assert c.echo(b"x", timeout=10) == b"x"
    messages = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert any(lvl == logging.INFO and f"worker started: pid {pid}" in m for _, lvl, m in messages)
    assert any(lvl == logging.INFO and f"worker stopped: pid {pid}" in m for _, lvl, m in messages)
    assert all(name.startswith("chunkring") for name, _, _ in messages)

    caplog.clear()
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin) as c:
        os.kill(c.pid, signal.SIGKILL)
        with pytest.raises(WorkerDied):
            c.echo(b"y", timeout=10)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("exited with code -9" in m for m in errors), errors


def test_requests_log_nothing_at_info(client, caplog):
    caplog.set_level(logging.INFO, logger="chunkring")
    for _ in range(100):
        client.echo(b"quiet", timeout=10)
    assert caplog.records == []
