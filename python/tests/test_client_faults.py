"""Issue 11, the client's side: every call honours its timeout (item 5), misuse is refused
before anything is sent (item 16), a crashed spawned worker leaves no region (§12), and an
attached client notices a hung worker by its heartbeat (item 6). Real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from chunkring import Client, ProtocolError, RequestTimeout, WorkerDied
from chunkring import _layout as L
from conftest import SMALL_RING_BYTES, run_bounded, start_standalone_worker


def fill_request_ring(c) -> int:
    """Publish echo frames (nobody waits for their answers) until the request ring is full,
    to the last chunk: no request of any size fits until the worker reads."""
    sender = c._sender
    n = 0
    for body in (b"f" * 200, b""):
        while sender.producer.try_push_request(L.OP_ECHO, sender.new_request_id(), body):
            n += 1
    sender.producer.publish()
    return n


# ---- item 5: a timeout covers sending ------------------------------------------------------


def test_a_call_times_out_while_the_request_ring_is_full(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)
    assert fill_request_ring(c) > 0
    before = len(c._receiver.pending)
    t0 = time.monotonic()
    with pytest.raises(RequestTimeout):
        run_bounded(lambda: c.echo(b"x", timeout=1), 10)
    assert time.monotonic() - t0 < 10
    with pytest.raises(RequestTimeout):
        run_bounded(lambda: c.call(L.OP_ECHO, b"y", {}, timeout=0.2), 10)
    with pytest.raises(RequestTimeout):
        run_bounded(lambda: c.submit(L.OP_ECHO, b"z", timeout=0.2), 10)
    with pytest.raises(RequestTimeout):
        run_bounded(lambda: list(c.map(L.OP_ECHO, [b"m"] * 10, timeout=0.2)), 10)
    assert len(c._receiver.pending) == before  # nothing of the timed-out calls is pending
    os.kill(c.pid, signal.SIGCONT)
    # Nothing half-written: the client goes on as if the timed-out calls were never made.
    assert c.echo(b"after", timeout=10) == b"after"


def test_a_timeout_midway_through_a_fragmented_request_leaves_the_client_usable(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)
    waiting = c.submit(L.OP_ECHO, b"in flight")
    before = len(c._receiver.pending)
    big = os.urandom(4 * SMALL_RING_BYTES)  # cannot fit while the worker is stopped
    t0 = time.monotonic()
    with pytest.raises(RequestTimeout):
        run_bounded(lambda: c.echo(big, timeout=1), 10)
    assert time.monotonic() - t0 < 10
    assert len(c._receiver.pending) == before
    os.kill(c.pid, signal.SIGCONT)
    # Its first fragments were published and stay; the next message abandons them in the
    # worker (layout.md §6.4), whose FRAGMENT_SEQUENCE answer for the dropped id is discarded.
    assert waiting.result(timeout=10) == b"in flight"
    assert c.echo(b"next", timeout=10) == b"next"
    data = os.urandom(3 * SMALL_RING_BYTES)
    assert c.echo(data, timeout=10) == data
    assert len(c._receiver.pending) == before - 1


# ---- item 16: misuse is refused before anything is reserved ---------------------------------


class _NotJson:
    pass


MISUSE = [
    ((L.OP_ECHO.__str__(), b"x", None), ValueError, "op"),  # "1": not an op name
    ((1.0, b"x", None), TypeError, "op"),
    ((None, b"x", None), TypeError, "op"),
    ((0x1_0000, b"x", None), ValueError, "op"),
    ((L.OP_ECHO, "text", None), TypeError, "body"),
    ((L.OP_ECHO, 12, None), TypeError, "body"),
    ((L.OP_ECHO, b"x", {"v": _NotJson()}), TypeError, "params"),
    ((L.OP_ECHO, b"x", {"v": float("nan")}), ValueError, "params"),
    ((L.OP_ECHO, b"x", [1, 2]), TypeError, "params"),
    ((L.OP_ECHO, b"x", "{}"), TypeError, "params"),
]


@pytest.mark.parametrize("args,exc,names", MISUSE)
def test_misuse_raises_a_clear_error_and_reserves_nothing(client, args, exc, names):
    c = client
    rx = c._receiver
    before_pending, before_id = len(rx.pending), c._sender.next_id
    before_tail = c._sender.producer.tail
    calls = [
        lambda: c.submit(*args),
        lambda: c.call(*args, timeout=10),
        lambda: c.submit_many([args]),
    ]
    if args[2] is None:
        calls.append(lambda: list(c.map(args[0], [args[1]], timeout=10)))
    if type(args[0]) is int and args[0] == L.OP_ECHO and args[2] is None:
        calls.append(lambda: c.echo(args[1], timeout=10))
    for call in calls:
        with pytest.raises(exc, match=names):
            call()
    assert len(rx.pending) == before_pending
    assert c._sender.next_id == before_id
    assert c._sender.producer.tail == before_tail
    assert c.echo(b"still fine", timeout=10) == b"still fine"


def test_a_request_over_the_message_limit_reserves_nothing(client):
    c = client
    before = len(c._receiver.pending)
    too_big = b"x" * (c._region.max_message_bytes + 1)
    for call in (lambda: c.submit(L.OP_ECHO, too_big), lambda: c.echo(too_big),
                 lambda: list(c.map(L.OP_ECHO, [too_big]))):
        with pytest.raises(ValueError, match="MAX_MESSAGE_BYTES"):
            call()
    assert len(c._receiver.pending) == before


# ---- a crashed spawned worker leaves no region in /dev/shm ---------------------------------


@pytest.mark.parametrize("round_", range(5))
def test_a_killed_spawned_worker_leaves_no_region_once_noticed(worker_bin, round_):
    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, worker=worker_bin)
    try:
        path = c.path
        assert str(path).startswith("/dev/shm/chunkring-") and path.exists()
        assert c.echo(b"x", timeout=10) == b"x"
        os.kill(c.pid, signal.SIGKILL)
        with pytest.raises(WorkerDied):
            run_bounded(lambda: c.echo(b"y"), 30)
        assert not path.exists()  # noticed the death: unlinked before close
    finally:
        c.close()
    assert not path.exists()


def test_a_killed_spawned_worker_leaves_no_region_after_close(worker_bin):
    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, worker=worker_bin)
    path = c.path
    os.kill(c.pid, signal.SIGKILL)
    c.close()
    assert not path.exists()


# ---- item 6: an attached client reads the worker's heartbeat --------------------------------


@pytest.fixture
def standalone(worker_bin):
    """A standalone worker (a child of this process, so a killed one stays a zombie until
    reaped) and a client attached to it."""
    name = f"hb-{uuid.uuid4().hex[:10]}"
    proc = start_standalone_worker(worker_bin, name)
    c = Client.attach(name, timeout=10)
    yield proc, c
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait()
    c.close()
    Path(f"/dev/shm/chunkring-{name}").unlink(missing_ok=True)


def test_an_attached_client_notices_a_stopped_worker_by_its_heartbeat(standalone):
    proc, c = standalone
    assert c.echo(b"alive", timeout=10) == b"alive"
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGSTOP)
    with pytest.raises(WorkerDied, match="heartbeat stale"):
        run_bounded(lambda: c.call(L.OP_ECHO, b"x"), 30)  # no timeout: only the heartbeat
    # The bound is HEARTBEAT_STALE_S (3 s) plus one wait timeout; generous here.
    assert time.monotonic() - t0 < 3.0 + 10
    with pytest.raises(WorkerDied):
        c.echo(b"after", timeout=10)


def test_an_attached_client_notices_a_dead_unreaped_worker(standalone):
    proc, c = standalone
    assert c.echo(b"alive", timeout=10) == b"alive"
    os.kill(proc.pid, signal.SIGKILL)  # not waited for: a zombie, whose pid still "exists"
    with pytest.raises(WorkerDied, match="heartbeat stale"):
        run_bounded(lambda: c.call(L.OP_ECHO, b"x"), 30)


def test_a_long_op_is_not_mistaken_for_a_hang(standalone):
    proc, c = standalone
    c._receiver.heartbeat_stale_s = 0.5  # far shorter than the render below takes
    doc = "# Title\n\nSome *text* with `code` and [a link](http://x).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    html = run_bounded(lambda: c.markdown.render(doc * 600_000), 120)  # ~50 MB
    assert html.count("<h1>") == 600_000
    assert c.echo(b"still here", timeout=10) == b"still here"


STOPPED_WITH_ITS_WORKER = """
import sys, time
sys.path.insert(0, {py!r})
from chunkring import Client
c = Client.spawn(worker={bin!r})
print(c.pid, flush=True)
sys.stdin.readline()  # go
end = time.monotonic() + {seconds}
n = 0
try:
    while time.monotonic() < end:
        assert c.echo(b"tick", timeout=30) == b"tick"
        n += 1
    print("ok", n, flush=True)
except Exception as exc:
    print("raised", type(exc).__name__, exc, flush=True)
finally:
    c.close()
"""


def test_a_client_stopped_together_with_its_worker_does_not_call_it_dead(worker_bin):
    """^Z stops the whole process group (client and spawned worker); when both resume the
    client may run first and read a heartbeat older than HEARTBEAT_STALE_S before the
    worker's heartbeat thread has stored a fresh one. Here the client is continued 0.1 s
    before its worker, after both were stopped for 4 s: it must wait for the beat (§12
    "Heartbeat": a stale value is confirmed over 0.3 s of the client's own time), not raise
    WorkerDied, as a client that trusted the first stale read did."""
    code = STOPPED_WITH_ITS_WORKER.format(py=str(Path(__file__).resolve().parents[1]),
                                          bin=worker_bin, seconds=7.0)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    worker_pid = None
    try:
        worker_pid = int(child.stdout.readline())
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(0.5)  # echoing
        os.kill(child.pid, signal.SIGSTOP)
        os.kill(worker_pid, signal.SIGSTOP)
        time.sleep(4.0)  # past HEARTBEAT_STALE_S
        os.kill(child.pid, signal.SIGCONT)
        time.sleep(0.1)
        os.kill(worker_pid, signal.SIGCONT)
        out, _ = child.communicate(timeout=60)
        assert out.startswith("ok"), out
    finally:
        for pid in (child.pid, worker_pid):
            try:
                os.kill(pid, signal.SIGCONT)
            except (ProcessLookupError, TypeError):
                pass
        if child.poll() is None:
            child.kill()
            child.wait()
