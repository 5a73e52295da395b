"""Litmus stress, Python client <-> Rust worker over real shared memory (layout.md §10, §16).

Two real processes hammer the paths the loom models check: requests come in bursts separated
by sleeps longer than the worker's spin window (``--spin-us 20``), so the worker parks on
``WORKER_FUTEX`` before nearly every burst and the client's [W5]/[W6] must wake it; rings of
4096 bytes in 32-byte chunks with random body sizes (some larger than the ring, so
fragmented) put frames and padding frames across the wrap point constantly. Every answer's
bytes and the count are checked; the run reports how many worker parks ended by the timeout
backstop although a request was waiting (``STAT_TIMEOUT_WAKEUPS``).

The second test runs the same load with the client's StoreLoad fence removed — the client as
it runs without libatomic (layout.md §10 "What Python has"). A lost wake-up is then possible
and costs at most one park timeout; the test checks that nothing is lost or reordered and
reports the backstop count next to the fenced run's. Backstop counts are reported, never
asserted: they depend on timing.

Short by default (2 s each); ``CHUNKRING_LITMUS_SECS=600`` for the run before a release;
``CHUNKRING_LITMUS_SEED`` replays a reported seed.
"""

from __future__ import annotations

import os
import random
import time

import pytest

import chunkring._barrier as _barrier
import chunkring._receiver as _receiver
import chunkring._ring as _ring
from chunkring import Client

SECS = float(os.environ.get("CHUNKRING_LITMUS_SECS", "2"))
#: ``CHUNKRING_LITMUS_SEED`` replays the request sizes of a reported run.
SEED = os.environ.get("CHUNKRING_LITMUS_SEED")


def seed() -> int:
    return int(SEED) if SEED else random.randrange(1 << 32)
OP_ECHO = 0x0001
RING_BYTES = 4096
CHUNK_BYTES = 32
WORKER_ARGS = ["--spin-us", "20", "--park-timeout-ms", "20"]


def body(i: int, n: int) -> bytes:
    return bytes(((i * 131) ^ (k * 7)) & 0xFF for k in range(n))


def hammer(c: Client, seconds: float, seed: int) -> dict:
    rng = random.Random(seed)
    sent = received = bursts = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        handles = []
        for _ in range(rng.randint(1, 6)):
            sent += 1
            r = rng.random()
            if r < 0.1:
                n = RING_BYTES + rng.randrange(6000)
            elif r < 0.4:
                n = rng.randrange(1000)
            else:
                n = rng.randrange(120)
            b = body(sent, n)
            handles.append((b, c.submit(OP_ECHO, b)))
        for want, h in handles:
            got = h.result(timeout=30)
            assert got == want, f"request {h.request_id}: {len(got)} bytes, wanted {len(want)}"
            received += 1
        bursts += 1
        # Longer than the worker's spin window plus its backoff: it parks.
        time.sleep(rng.uniform(100e-6, 1000e-6))
    time.sleep(0.03)  # let the worker's last Relaxed counter stores land
    stats = c.stats()
    stats.update(sent=sent, received=received, bursts=bursts, seed=seed)
    return stats


def report(label: str, s: dict) -> None:
    print(
        f"\nlitmus ({label}): {s['bursts']} bursts, {s['sent']} requests, seed {s['seed']}; "
        f"worker parks {s['worker_parks']}, timeout wake-ups (backstop) {s['timeout_wakeups']}, "
        f"request padding {s['req_padding']}, request fragments {s['req_fragments']}, "
        f"response padding {s['resp_padding']}, client wakes {s['client_wakes']}"
    )


def check(s: dict) -> None:
    assert s["received"] == s["sent"], "every request answered exactly once"
    assert s["requests"] == s["sent"], "the worker counted every request"
    # The run must really have exercised what it claims to.
    assert s["bursts"] >= 10
    assert s["worker_parks"] > 0, "the worker never parked"
    assert s["req_padding"] > 0 and s["resp_padding"] > 0, "no frame crossed the wrap point"
    assert s["req_fragments"] > 0, "no fragmented request"


@pytest.fixture
def litmus_client(worker_bin):
    c = Client.spawn(ring_bytes=RING_BYTES, chunk_bytes=CHUNK_BYTES, worker=worker_bin,
                     args=WORKER_ARGS)
    yield c
    c.close()


def test_bursts_with_parks_and_wraps_deliver_every_frame(litmus_client):
    s = hammer(litmus_client, SECS, seed())
    fenced = _ring.barrier_memory is not _barrier._noop
    report("python client, with the StoreLoad fence" if fenced
           else "python client, no libatomic on this machine (no StoreLoad fence)", s)
    check(s)


def test_without_the_storeload_fence_a_lost_wakeup_is_only_a_delay(litmus_client, monkeypatch):
    # The client as it runs without libatomic: [W2]/[W5] have no fence (layout.md §10).
    monkeypatch.setattr(_receiver, "barrier_memory", lambda: None)  # [W2]
    monkeypatch.setattr(_ring, "barrier_memory", lambda: None)  # [W5]
    s = hammer(litmus_client, SECS, seed())
    report("python client, StoreLoad fence removed", s)
    check(s)
