"""Thread safety (issue 12): many threads share one Client, one History, one Log; every
answer is correct and paired with its own request."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import random
import sys
import threading

import pytest
from chunkring import _layout as L
from conftest import run_bounded

THREADS = 8


def _in_threads(fn, n: int = THREADS, seconds: float = 120.0) -> list:
    """Run ``fn(i)`` in ``n`` threads started together; their results, or the first error.

    The GIL is handed over every few µs instead of every 5 ms, so that threads interleave
    inside the client's methods, not only between them."""
    barrier = threading.Barrier(n)

    def body(i):
        barrier.wait()
        return fn(i)

    def go():
        with cf.ThreadPoolExecutor(n) as pool:
            return [f.result() for f in [pool.submit(body, i) for i in range(n)]]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(5e-6)
    try:
        return run_bounded(go, seconds)
    finally:
        sys.setswitchinterval(interval)


def _payload(thread: int, i: int, rng: random.Random) -> bytes:
    # Thread and index up front: a response paired with the wrong request cannot pass.
    return thread.to_bytes(2, "little") + i.to_bytes(4, "little") + rng.randbytes(rng.randrange(0, 3000))


def test_threads_mixing_every_way_of_waiting_share_one_client(client):
    def one(t: int) -> int:
        rng = random.Random(t)
        checked = 0
        for i in range(300):
            d = _payload(t, i, rng)
            way = i % 5
            if way == 0:
                assert client.echo(d, timeout=60) == d
            elif way == 1:
                assert client.submit(L.OP_ECHO, d).result(timeout=60) == d
            elif way == 2:
                hs = client.submit_many([(L.OP_ECHO, d + bytes([k])) for k in range(5)])
                assert [h.result(timeout=60) for h in hs] == [d + bytes([k]) for k in range(5)]
            elif way == 3:
                hs = [client.submit(L.OP_ECHO, d + bytes([k])) for k in range(5)]
                done, _ = cf.wait(hs, timeout=60)
                assert len(done) == 5 and [h.result() for h in hs] == [d + bytes([k]) for k in range(5)]
            else:
                got = []
                ev = threading.Event()
                h = client.submit(L.OP_ECHO, d)
                h.add_done_callback(lambda f: (got.append(f.result()), ev.set()))
                assert ev.wait(60) and got == [d]
            checked += 1
        return checked

    assert _in_threads(one) == [300] * THREADS
    assert client.stats()["pending"] == 0


def test_threads_and_an_event_loop_share_one_client(client):
    stop = threading.Event()

    def loop_side():
        async def main():
            n = 0
            while not stop.is_set():
                rs = await asyncio.gather(*(client.aio.echo(b"L%d" % (n + k)) for k in range(20)))
                assert rs == [b"L%d" % (n + k) for k in range(20)]
                n += 20
            return n
        return asyncio.run(main())

    with cf.ThreadPoolExecutor(1) as pool:
        loop_future = pool.submit(loop_side)

        def one(t: int) -> int:
            rng = random.Random(100 + t)
            for i in range(300):
                d = _payload(t, i, rng)
                assert client.echo(d, timeout=60) == d
            return 300

        try:
            assert _in_threads(one, 4) == [300] * 4
        finally:
            stop.set()
        assert loop_future.result(60) >= 20


def test_threads_share_one_history(client):
    h = client.history("threads-ui", capacity=THREADS * 40 + 10)
    per_thread = 40

    def one(t: int) -> int:
        for i in range(per_thread):
            h.push({"t": t, "i": i, "files": [f"{t}/{i}"]}, label=f"{t}:{i}")
            if i % 10 == 9:
                # Moving the cursor from several threads: always some pushed snapshot.
                s = h.undo()
                assert s is None or set(s) == {"t", "i", "files"}
                s = h.redo()
                assert s is None or set(s) == {"t", "i", "files"}
        h.flush()
        return per_thread

    assert _in_threads(one) == [per_thread] * THREADS
    entries = h.list()
    labels = [e["label"] for e in entries]
    # A push after an undo drops the redo branch, so some pushes may have been dropped; what
    # is kept is each thread's pushes in that thread's order, each at most once.
    assert len(labels) == len(set(labels))
    for t in range(THREADS):
        mine = [int(label.split(":")[1]) for label in labels if label.startswith(f"{t}:")]
        assert mine == sorted(mine)
    last = h.get(len(entries) - 1)
    assert last["files"] == [f"{last['t']}/{last['i']}"]


@pytest.mark.parametrize("round_", range(5))
def test_threads_share_one_history_pushing_only(client, round_):
    per_thread = 200
    h = client.history(f"threads-push-{round_}", capacity=THREADS * per_thread)

    def one(t: int) -> int:
        for i in range(per_thread):
            h.push({"t": t, "i": i}, label=f"{t}:{i}")
        h.flush()
        return per_thread

    _in_threads(one)
    labels = [e["label"] for e in h.list()]
    assert sorted(labels) == sorted(f"{t}:{i}" for t in range(THREADS) for i in range(per_thread))
    for t in range(THREADS):
        mine = [label for label in labels if label.startswith(f"{t}:")]
        assert mine == [f"{t}:{i}" for i in range(per_thread)]
    for index in (0, len(labels) // 2, len(labels) - 1):
        t, i = map(int, labels[index].split(":"))
        assert h.get(index) == {"t": t, "i": i}


def test_pushes_skimming_answers_beside_threads_reading_theirs(client):
    # A push reads (skims) its history's earlier answers under the receiver's lock while other
    # threads' drains copy theirs out (`_answer_skim.py`): every echo must come back whole
    # and every history must end at its last push.
    histories = [client.history(f"skim-{t}", capacity=50) for t in range(THREADS // 2)]

    def one(t: int) -> int:
        rng = random.Random(t)
        if t % 2:
            h = histories[t // 2]
            state = {"t": t, "n": 0, "rows": []}
            h.push(state)
            for i in range(300):
                state["n"] = i
                state["rows"].append(rng.randrange(1000))
                h.push(state, changed=["n", ("rows", -1)])
            assert h.current() == state
            return 300
        for _ in range(300):
            data = rng.randbytes(rng.choice((16, 300, 5000)))
            assert client.echo(data) == data
        return 300

    assert _in_threads(one) == [300] * THREADS


def test_threads_share_one_log(client):
    log = client.log("threads-log")

    def one(t: int) -> int:
        for i in range(100):
            if i % 2:
                log.append(f"{t}:{i}")
            else:
                assert log.submit_append([f"{t}:{i}".encode()]).result(60) >= 1
        return 100

    _in_threads(one)
    records = [r.decode() for r in log.read(0, THREADS * 100 + 1)]
    assert len(log) == len(records) == THREADS * 100
    for t in range(THREADS):
        assert [r for r in records if r.startswith(f"{t}:")] == [f"{t}:{i}" for i in range(100)]
