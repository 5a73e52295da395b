"""Every public call honours its timeout end to end (issue 11 item 5), with a real worker
stopped by SIGSTOP and its request ring full: ``submit_many(timeout=)``, ``close(timeout=)``
(also while another thread waits to send), and an ``AsyncClient`` that never blocks its event
loop while the ring is full (other tasks keep running) and honours the call's timeout.

The only timing assertions are "returns or raises within the timeout plus generous slack".
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from chunkring import Client, ClientClosed, RequestTimeout, WorkerDied
from chunkring import _layout as L
from chunkring.aio import AsyncClient, AsyncHistory

from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES, run_bounded
from test_client_faults import fill_request_ring

#: Added to a timeout for "returns within the timeout": process start-up, a loaded machine.
SLACK_S = 2.0


def test_submit_many_honours_its_timeout_when_the_ring_is_full(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)
    assert fill_request_ring(c) > 0
    before = len(c._receiver.pending)
    t0 = time.monotonic()
    with pytest.raises(RequestTimeout) as info:
        run_bounded(lambda: c.submit_many([(L.OP_ECHO, b"x", None)] * 10, timeout=0.5), 30)
    assert time.monotonic() - t0 <= 0.5 + SLACK_S
    assert info.value.sent == []  # nothing fitted
    assert len(c._receiver.pending) == before
    os.kill(c.pid, signal.SIGCONT)
    assert c.echo(b"after", timeout=10) == b"after"


def test_submit_many_that_fits_in_part_keeps_what_it_sent(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)
    body = b"b" * 1000
    many = SMALL_RING_BYTES // 1000 * 3  # three rings' worth: cannot all fit while stopped
    with pytest.raises(RequestTimeout) as info:
        run_bounded(lambda: c.submit_many([(L.OP_ECHO, body, None)] * many, timeout=0.5), 30)
    sent = info.value.sent
    assert 0 < len(sent) < many
    os.kill(c.pid, signal.SIGCONT)
    # What was published is answered; what was not was never sent.
    assert [h.result(timeout=10) for h in sent] == [body] * len(sent)
    assert c.echo(b"after", timeout=10) == b"after"
    assert len(c._receiver.pending) == 0


def _spawn_stopped_with_a_full_ring(worker_bin) -> Client:
    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin)
    os.kill(c.pid, signal.SIGSTOP)
    assert fill_request_ring(c) > 0
    return c


def test_close_returns_within_its_timeout_when_the_worker_is_stopped(worker_bin):
    c = _spawn_stopped_with_a_full_ring(worker_bin)
    proc, path = c._proc, c.path
    try:
        t0 = time.monotonic()
        run_bounded(lambda: c.close(timeout=5.0), 60)
        assert time.monotonic() - t0 <= 5.0 + SLACK_S
        # The stopped worker was killed and its region removed.
        assert proc.poll() is not None
        assert not Path(path).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_close_returns_within_its_timeout_while_another_thread_waits_to_send(worker_bin):
    c = _spawn_stopped_with_a_full_ring(worker_bin)
    proc = c._proc
    failed: list = []

    def blocked_sender():
        try:
            c.submit_many([(L.OP_ECHO, b"y" * 100, None)] * 100)  # no timeout: waits for room
        except (ClientClosed, WorkerDied) as exc:
            failed.append(exc)

    t = threading.Thread(target=blocked_sender, daemon=True)
    t.start()
    try:
        while not c._sender._lock.locked():
            time.sleep(0.001)
        t0 = time.monotonic()
        run_bounded(lambda: c.close(timeout=1.0), 60)
        assert time.monotonic() - t0 <= 1.0 + SLACK_S
        t.join(10)
        assert not t.is_alive()
        assert failed and isinstance(failed[0], (ClientClosed, WorkerDied)), failed
        assert proc.poll() is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_async_send_on_a_full_ring_does_not_block_the_loop(own_client):
    c = own_client
    c._receiver.heartbeat_stale_s = 60.0  # the stopped worker is not to be called dead here
    os.kill(c.pid, signal.SIGSTOP)
    assert fill_request_ring(c) > 0
    ac = AsyncClient(c)

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        results = []
        for name, call in (
            ("echo", lambda: ac.echo(b"x", timeout=1.0)),
            ("call", lambda: ac.call(L.OP_ECHO, b"y", timeout=1.0)),
            ("render", lambda: ac.markdown.render("# title", timeout=1.0)),
        ):
            before = ticks
            t0 = time.monotonic()
            try:
                await call()
                results.append((name, "answered"))
            except RequestTimeout:
                results.append((name, "timeout"))
            # The loop ran other tasks while the send waited for room, and the timeout held.
            assert ticks - before >= 2, (name, ticks - before)
            assert time.monotonic() - t0 <= 1.0 + SLACK_S, name
        # submit(): a future at once (its send waits off the loop), answered once room comes.
        fut = ac.submit(L.OP_ECHO, b"z")
        before = ticks
        await asyncio.sleep(0.1)
        assert not fut.done() and ticks > before
        os.kill(c.pid, signal.SIGCONT)
        assert await asyncio.wait_for(fut, 10) == b"z"
        stop.set()
        await task
        return results

    results = run_bounded(lambda: asyncio.run(main()), 60)
    assert results == [("echo", "timeout"), ("call", "timeout"), ("render", "timeout")]
    assert c.echo(b"after", timeout=10) == b"after"


def test_an_async_history_push_on_a_full_ring_does_not_block_the_loop(own_client):
    c = own_client
    c._receiver.heartbeat_stale_s = 60.0  # the stopped worker is not to be called dead here
    h = c.history("timeouts-async")
    os.kill(c.pid, signal.SIGSTOP)
    assert fill_request_ring(c) > 0

    async def main():
        ah = AsyncHistory(h)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        t0 = time.monotonic()
        with pytest.raises(RequestTimeout, match="waiting for room in the request ring"):
            await ah.push({"files": [1, 2, 3]}, label="p", timeout=1.0)
            await ah.flush(timeout=1.0)
        assert ticks >= 2
        assert time.monotonic() - t0 <= 2.0 + SLACK_S
        task.cancel()

    run_bounded(lambda: asyncio.run(main()), 60)
    os.kill(c.pid, signal.SIGCONT)
    assert c.echo(b"after", timeout=10) == b"after"
