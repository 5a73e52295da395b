"""Many requests in flight: ids pair responses with requests, and no mix of sizes deadlocks
(layout.md §6.1 request ids, §6.4 fragments, §10 waiting with the client draining)."""

from __future__ import annotations

import collections
import random
import threading

from chunkring import _layout as L
from chunkring._handle import _FINISHED
from conftest import SMALL_RING_BYTES, eventually, run_bounded, run_threads


def _payload(rng: random.Random, i: int, max_size: int) -> bytes:
    size = rng.choice((rng.randrange(0, 64), rng.randrange(0, 1024), rng.randrange(0, max_size)))
    # The index up front makes every payload distinct, so a mismatched pairing cannot pass.
    return i.to_bytes(4, "little") + rng.randbytes(size)


def test_ten_thousand_random_sizes_with_hundreds_in_flight(client):
    rng = random.Random(1234)
    in_flight = collections.deque()
    ids = set()
    max_in_flight = 0
    for i in range(10_000):
        data = _payload(rng, i, 6000)
        h = client.submit(L.OP_ECHO, data)
        assert h.request_id != 0 and h.request_id not in ids
        ids.add(h.request_id)
        in_flight.append((h, data))
        max_in_flight = max(max_in_flight, len(in_flight))
        if len(in_flight) >= 300:
            for _ in range(rng.randrange(1, 200)):
                h0, d0 = in_flight.popleft()
                assert h0.result(timeout=30) == d0
    while in_flight:
        h0, d0 = in_flight.popleft()
        assert h0.result(timeout=30) == d0
    assert max_in_flight >= 300


def test_submitting_everything_before_reading_anything_does_not_deadlock(client):
    rng = random.Random(99)
    datas = [_payload(rng, i, 3000) for i in range(10_000)]

    def go():
        handles = [client.submit(L.OP_ECHO, d) for d in datas]
        return [h.result(timeout=30) for h in handles]

    assert run_bounded(go, 120) == datas


def test_big_requests_submitted_before_reading_do_not_deadlock(client):
    rng = random.Random(7)
    # 64 requests of up to 1.5 rings each: far more than both rings hold at once.
    datas = [_payload(rng, i, 3 * SMALL_RING_BYTES // 2) for i in range(64)]

    def go():
        handles = [client.submit(L.OP_ECHO, d) for d in datas]
        return [h.result(timeout=30) for h in handles]

    assert run_bounded(go, 120) == datas


def test_submit_many_publishes_a_batch(client):
    rng = random.Random(5)
    datas = [_payload(rng, i, 200) for i in range(2_000)]
    handles = run_bounded(lambda: client.submit_many([(L.OP_ECHO, d, None) for d in datas]), 60)
    assert [h.result(timeout=30) for h in handles] == datas
    assert all(h.done() for h in handles)


def test_submit_many_takes_one_two_and_three_tuples(client):
    handles = client.submit_many([(L.OP_ECHO,), (L.OP_ECHO, b"two"), (L.OP_ECHO, b"three", {"x": 1})])
    assert [h.result(timeout=10) for h in handles] == [b"", b"two", b"three"]


def test_threads_share_one_client(client):
    errors = []

    def worker(seed):
        rng = random.Random(seed)
        try:
            for i in range(500):
                d = _payload(rng, i, 2000)
                if client.echo(d, timeout=30) != d:
                    errors.append(f"thread {seed}: mismatch at {i}")
        except Exception as exc:  # collected for the assertion below
            errors.append(f"thread {seed}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    run_threads(threads, 120)
    assert errors == []


def test_handle_is_done_after_its_result(client):
    h = client.submit(L.OP_ECHO, b"abc")
    assert h.result(timeout=10) == b"abc"
    assert h.done()


def test_drain_with_a_limit_reads_that_many_answers_and_leaves_the_rest(client):
    """``Receiver.drain(limit)`` (a history's push reads earlier answers a few at a time):
    it reads exactly ``limit`` of 20 published simple answers, in order, and leaves the rest
    published and their handles pending for the next read; past what the tail shows, it
    stops."""
    rx = client._receiver
    cons = rx._consumer
    handles = [client.submit(L.OP_ECHO, b"%02d" % i) for i in range(20)]
    # Every answer (a 32-byte header and 2 bytes) takes one chunk: all 20 are published.
    assert eventually(lambda: cons.q[cons.tail_word] - cons.head >= 20)
    assert rx.drain(8) == 8
    assert [h._state == _FINISHED for h in handles] == [True] * 8 + [False] * 12
    assert rx.drain(3) == 3  # a run of 2, then a run of 1: still exactly the limit
    assert rx.drain(50) == 9  # a limit beyond what the tail shows: what it shows
    assert [h._state == _FINISHED for h in handles] == [True] * 20
    assert [h.result() for h in handles] == [b"%02d" % i for i in range(20)]
