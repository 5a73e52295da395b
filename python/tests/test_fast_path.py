"""The synchronous fast path and ``Client.map`` (issue 10): answers, order and errors with
windows smaller than, equal to and larger than the ring; calls from several threads mixed
with handles; a worker that parks and is woken (by the publish, or by a client's early wake
before its request); both processes on one CPU. Behaviour only: speed belongs to the benches.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from chunkring import Client, ClientClosed, RequestError, RequestTimeout
from chunkring import _layout as L
from chunkring import _lean, _ring
from chunkring._futex import futex_wake
from chunkring._lean_submit import lean_submit
from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES, run_bounded, run_threads


def _bodies(n: int, size: int) -> list[bytes]:
    return [i.to_bytes(4, "little") * (size // 4 + 1) for i in range(n)]


@pytest.mark.parametrize("window", [1, 7, 256, 4096])
@pytest.mark.parametrize("size", [0, 60, 3000, SMALL_RING_BYTES])
def test_map_yields_every_answer_in_order(client, window, size):
    # 4096 requests of 3000 B are ~190 rings' worth: windows across the ring size, and
    # bodies that take several fragments (SMALL_RING_BYTES) interleaved with small ones.
    n = 40 if size >= SMALL_RING_BYTES else 600
    bodies = _bodies(n, size)
    got = run_bounded(lambda: list(client.map(L.OP_ECHO, bodies, window=window)))
    assert got == bodies


def test_map_consumes_the_iterable_lazily_and_stops_early(client):
    taken = []

    def gen():
        for i in range(10_000):
            taken.append(i)
            yield i.to_bytes(4, "little")

    it = client.map(L.OP_ECHO, gen(), window=8)
    assert next(it) == (0).to_bytes(4, "little")
    assert len(taken) <= 8
    it.close()
    # The requests still in flight are answered and dropped; the client keeps working.
    assert client.echo(b"after") == b"after"


def test_map_raises_a_failed_request_at_its_place_and_stops(client):
    it = client.map(0x00FE, [b"a", b"b"])  # an op code no worker registers (layout.md §7)
    with pytest.raises(RequestError):
        next(it)
    with pytest.raises(StopIteration):  # the error ends the iteration, as in Executor.map
        next(it)
    assert client.echo(b"still fine") == b"still fine"


def test_map_rejects_a_window_below_one(client):
    with pytest.raises(ValueError):
        client.map(L.OP_ECHO, [b""], window=0)


def test_call_and_echo_from_threads_mixed_with_handles(client):
    errors = []

    def caller(k: int):
        try:
            for i in range(300):
                body = f"{k}-{i}".encode() * (1 + i % 50)
                if i % 3 == 0:
                    assert client.submit(L.OP_ECHO, body).result(timeout=30) == body
                elif i % 3 == 1:
                    assert client.call(L.OP_ECHO, body, timeout=30) == body
                else:
                    assert list(client.map(L.OP_ECHO, [body, body], window=2)) == [body, body]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "hung"
    assert errors == []


def test_a_parked_worker_is_woken_by_calls_with_and_without_params(own_client):
    c = own_client
    for pause in (0.0, 0.0002, 0.003, 0.06, 0.0, 0.07):
        time.sleep(pause)  # long enough for the worker to park (hot window 2 ms)
        assert c.echo(b"ping") == b"ping"
        assert "<h1>hi</h1>" in c.markdown.render("# hi")
    assert c.stats()["worker_parks"] >= 1


def _wake_early(producer) -> bool:
    """[W7] as a client may run it before writing a request (layout.md §11 "Early wake"; the
    Python client does not): a parked worker woken with nothing published."""
    words, peer = producer._futex_words, producer._peer_word
    if not words[peer] & L.PARKED:
        return False
    words[peer] = L.AWAKE
    futex_wake(producer._peer_futex, 1)
    return True


def test_an_early_wake_with_no_request_behind_it_is_harmless(own_client):
    c = own_client
    time.sleep(0.06)  # the worker parks
    producer = c._sender.producer
    # A wake with nothing published, then nothing for a while: the worker polls through its
    # hot window and parks again.
    assert _wake_early(producer)
    time.sleep(0.06)
    assert _wake_early(producer), "the worker parked again after its hot window"
    assert c.echo(b"after an early wake") == b"after an early wake"


def test_a_steady_cadence_is_answered(own_client):
    # The worker learns the 8 ms cadence and dozes between requests (layout.md §11); every
    # request is answered, including one that comes early and one that comes late.
    c = own_client
    for i in range(12):
        time.sleep(0.008)
        assert c.echo(i.to_bytes(2, "little")) == i.to_bytes(2, "little")
    assert c.echo(b"early") == b"early"
    time.sleep(0.03)
    assert c.echo(b"late") == b"late"


@pytest.mark.skipif(shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"),
                    reason="taskset or sched_getaffinity unavailable")
def test_one_shared_cpu_answers_everything(worker_bin):
    # Client and worker pinned to one CPU: the client sees the shared core and hands it over.
    cpu = min(os.sched_getaffinity(0))
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from chunkring import Client, _layout as L\n"
        f"c = Client.spawn(ring_bytes={SMALL_RING_BYTES}, chunk_bytes={SMALL_CHUNK_BYTES},"
        " worker=sys.argv[2])\n"
        "assert c._receiver.shared_core\n"
        "for i in range(2000):\n"
        "    b = i.to_bytes(4, 'little') * (i % 300)\n"
        "    assert c.echo(b) == b\n"
        "bodies = [i.to_bytes(4, 'little') * 50 for i in range(3000)]\n"
        "assert list(c.map(L.OP_ECHO, bodies, window=64)) == bodies\n"
        "c.close()\n"
        "print('ok')\n"
    )
    pkg = os.path.join(os.path.dirname(__file__), "..")
    out = subprocess.run(["taskset", "-c", str(cpu), sys.executable, "-c", script, pkg, worker_bin],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ---- the lean round trip (_lean.py): every way it hands over to the general path ----------
def test_lone_calls_use_one_fresh_id_each_and_leave_nothing_behind(client):
    sender = client._sender
    first = sender.next_id
    bodies = [bytes([i % 251]) * (i * 7 % 3000) for i in range(400)]  # wraps the 64 KiB rings
    for b in bodies:
        assert client.echo(b) == b
        assert client.call(L.OP_ECHO, b, timeout=30) == b
    assert sender.next_id == (first + 2 * len(bodies)) % (1 << 64) or 1
    s = client.stats()
    assert client._receiver.pending == {}
    assert (s["req_head"], s["resp_head"]) == (s["req_tail"], s["resp_tail"])


def test_an_error_answer_reaches_a_lean_call(worker_bin, monkeypatch):
    # A spin long enough (~1e6 polls) that the lean path itself finds the error frame.
    monkeypatch.setattr(_lean, "SPIN_POLLS", 1_000_000)
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES,
                      worker=worker_bin) as c:
        for _ in range(3):
            with pytest.raises(RequestError) as info:
                c.call(0xFFEE, b"x")
            assert info.value.code == L.ERR_UNKNOWN_OP
            assert c.echo(b"after the error") == b"after the error"


def test_a_discarded_answer_ahead_of_a_lean_call_is_skipped(client):
    # A forgotten request's answer (one whose send timed out, §12 "Timeouts") lies unread in
    # the response ring when the next call looks there: the call must not take it for its own.
    rx = client._receiver
    h = client.submit(L.OP_ECHO, b"old answer")
    del rx.pending[h.request_id]
    deadline = time.monotonic() + 30
    while not rx.has_answers():
        assert time.monotonic() < deadline, "the worker never answered"
    assert client.echo(b"new answer") == b"new answer"
    assert client.call(L.OP_ECHO, b"next", {"unused": 1}) == b"next"


def test_a_lean_call_outlasting_its_spin_is_answered(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)  # the worker neither answers nor parks
    try:
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", c.echo(b"late", timeout=30)))
        t.start()
        time.sleep(0.05)
        assert t.is_alive() and 0 < len(c._receiver.pending) <= 1  # registered, waiting
    finally:
        os.kill(c.pid, signal.SIGCONT)
    t.join(30)
    assert out == {"r": b"late"}
    assert c._receiver.pending == {}


def test_a_call_that_wakes_a_parked_worker_reads_the_answer_itself(worker_bin, monkeypatch):
    # After a long pause the call wakes the parked worker and yields between polls until the
    # answer comes (layout.md §11 "Client"): it never registers with the general wait. The
    # spin is made long enough (~1e6 yields) that a slow wake-up on a busy machine fits too.
    monkeypatch.setattr(_lean, "WAKE_POLLS", 1_000_000)
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES,
                      worker=worker_bin) as c:
        producer = c._sender.producer
        wakes, slots = [], []
        real_wake, real_slot = _lean.futex_wake, _lean.Slot
        monkeypatch.setattr(_lean, "futex_wake", lambda addr, n: (
            wakes.append(addr), real_wake(addr, n)))
        monkeypatch.setattr(_lean, "Slot", lambda rid: slots.append(rid) or real_slot(rid))
        for i in range(4):
            time.sleep(0.06)  # the worker parks (hot window 2 ms)
            assert producer._futex_words[producer._peer_word] & L.PARKED
            body = b"after a pause %d" % i
            if i % 2:
                assert c.call(L.OP_ECHO, body, {"p": i}, timeout=30) == body
            else:
                assert c.echo(body) == body
            assert len(wakes) == i + 1, "the call woke the parked worker"
            assert slots == [], "an answer after a wake went through the general wait"
        assert c._receiver.pending == {}


def test_a_woken_worker_answering_after_the_wake_spin_is_waited_for(own_client):
    # The worker is stopped while parked: the call's wake cannot run it, the yields after the
    # wake run out, and the general wait (registered, then parked) takes the answer when the
    # worker continues.
    c = own_client
    time.sleep(0.06)  # the worker parks (hot window 2 ms)
    producer = c._sender.producer
    assert producer._futex_words[producer._peer_word] & L.PARKED
    os.kill(c.pid, signal.SIGSTOP)
    try:
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", c.echo(b"woken late", timeout=30)))
        t.start()
        deadline = time.monotonic() + 10
        while not c._receiver.pending:  # registered once the yields after the wake ran out
            assert time.monotonic() < deadline and t.is_alive(), "the call never waited"
            time.sleep(0.005)
    finally:
        os.kill(c.pid, signal.SIGCONT)
    t.join(30)
    assert out == {"r": b"woken late"}
    assert c._receiver.pending == {}
    assert c.echo(b"after") == b"after"


def test_a_parked_worker_is_woken_after_the_request_is_published(own_client, monkeypatch):
    # No early wake (layout.md §11 "Early wake"): every futex wake a call issues finds its
    # request in the ring already, published by the tail store.
    c = own_client
    producer = c._sender.producer
    published_at_wake = []
    real_wake = _lean.futex_wake
    for module in (_lean, _ring):  # (the lean path's wakes, and the ring ends')
        monkeypatch.setattr(module, "futex_wake", lambda addr, n: (
            published_at_wake.append(producer.q[producer.tail_word]), real_wake(addr, n)))
    for i in range(3):
        time.sleep(0.06)  # the worker parks (hot window 2 ms)
        assert producer._futex_words[producer._peer_word] & L.PARKED
        before = producer.q[producer.tail_word]
        assert c.echo(b"wake %d" % i) == b"wake %d" % i
        assert published_at_wake and all(t > before for t in published_at_wake), \
            "woken before the request was published"
        published_at_wake.clear()


def test_a_call_whose_params_fail_neither_sends_nor_wakes(own_client):
    # The lean path wakes a parked worker only after its publish; params that cannot be
    # encoded raise before anything is written, so the parked worker stays parked.
    c = own_client
    words, peer = c._sender.producer._futex_words, c._sender.producer._peer_word
    for _ in range(3):
        time.sleep(0.06)  # the worker parks (hot window 2 ms)
        assert words[peer] & L.PARKED
        tail = c._sender.producer.tail
        with pytest.raises(TypeError):
            c.call(L.OP_ECHO, b"x", {"not json": object()})
        assert words[peer] & L.PARKED, "a call that sent nothing woke the worker"
        assert c._sender.producer.tail == tail and c._receiver.pending == {}
        assert c.call(L.OP_ECHO, b"y", {"fine": 1}) == b"y"


@pytest.mark.parametrize("held", [False, True])
def test_a_request_written_between_the_lean_checks_and_the_lock_is_not_overwritten(
        own_client, held):
    # Another thread's request lands after the lean call read the tail and before it took
    # the sender's lock (``held``: that thread still holds the lock when the lean call tries
    # it, so the lean call goes the general way): the lean call must not write over it.
    c = own_client
    sender = c._sender
    real = sender._lock
    theirs = []
    threads = []
    holder = []  # the other thread's id while it holds the real lock

    def other_thread():
        real.acquire()
        holder.append(threading.get_ident())
        theirs.append(c.submit(L.OP_ECHO, b"theirs"))  # (its lock calls pass, see below)
        time.sleep(0.05)  # the lean call is waiting for the lock meanwhile
        holder.clear()
        real.release()

    class Interloper:
        armed = True

        def interlope(self):  # once, as the lean call is about to take the lock
            if self.armed:
                self.armed = False
                if held:
                    t = threading.Thread(target=other_thread)
                    threads.append(t)
                    t.start()
                    while not theirs:
                        time.sleep(0.001)
                    # (it looked free: the other thread took it just after)
                else:
                    theirs.append(c.submit(L.OP_ECHO, b"theirs"))  # takes and frees the lock

        def locked(self):
            self.interlope()
            return real.locked()

        def acquire(self, blocking=True, timeout=-1):
            if threading.get_ident() in holder:
                return True  # the other thread's submit, under the lock it holds
            if sys._getframe(1).f_code.co_name == "round_trip":  # (the lean call's, only)
                self.interlope()
            return real.acquire(blocking, timeout)

        def release(self):
            if threading.get_ident() not in holder:
                real.release()

        def __enter__(self):
            self.acquire()

        def __exit__(self, *exc):
            self.release()

    sender._lock = Interloper()
    try:
        # (building it takes the lock's bound methods: the interloper's)
        round_trip = _lean.lean_round_trip(sender, c._receiver, c._general, c._checked)
        # The lean call reaches its lock only with the worker awake and nothing in
        # flight (else it goes the general way at once): try until it does.
        for _ in range(100):
            assert c.echo(b"warm") == b"warm"
            assert round_trip(b"mine", 10.0) == b"mine"  # (a timeout, not a hang, if broken)
            if theirs:
                break
        assert theirs, "the lean call never reached its lock"
        assert theirs[0].result(timeout=10) == b"theirs"
        for t in threads:
            t.join(10)
    finally:
        sender._lock = real


class _StaleWord:
    """The worker's futex words as the lean call's unfenced loads may see them: the worker's
    word reads AWAKE until the next StoreLoad fence (``fence``), then the truth; stores go
    through. Models the hint load passing the tail store (layout.md §11 "Deferred wake
    check")."""

    def __init__(self, words, peer: int, fence):
        self.words, self.peer, self.stale, self.real_fence = words, peer, True, fence

    def __getitem__(self, i):
        return L.AWAKE if self.stale and i == self.peer else self.words[i]

    def __setitem__(self, i, v):
        self.words[i] = v

    def fence(self):
        self.stale = False
        self.real_fence()


def test_a_worker_parked_behind_the_unfenced_hint_is_woken_by_the_deferred_check(
        worker_bin, monkeypatch):
    # The worker parks (hot window 20 µs) and would then sleep a minute (park timeout): only
    # a wake answers within the call's timeout. The lean call reads its word as AWAKE up to
    # the deferred fence, so it enters, publishes, finds no wake owed by the hint and no
    # answer within its spin: the fenced [W5]-[W6] after the spin must wake the worker.
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES,
                      worker=worker_bin, args=["--spin-us", "20", "--park-timeout-ms", "60000"]) as c:
        producer = c._sender.producer
        stale = _StaleWord(producer._futex_words, producer._peer_word, _lean.barrier_memory)
        monkeypatch.setattr(producer, "_futex_words", stale)
        monkeypatch.setattr(_lean, "barrier_memory", stale.fence)
        round_trip = _lean.lean_round_trip(c._sender, c._receiver, c._general, c._checked)
        wakes = []
        real_wake = _lean.futex_wake
        monkeypatch.setattr(_lean, "futex_wake", lambda addr, n: wakes.append(addr) or real_wake(addr, n))
        for i in range(3):
            time.sleep(0.05)  # the worker parks
            assert producer._futex_words.words[producer._peer_word] & L.PARKED
            stale.stale = True
            body = b"deferred %d" % i
            assert round_trip(body, 10.0) == body
            assert not stale.stale, "the call took the deferred check (its fence)"
            assert wakes == [producer._peer_futex] * (i + 1), "woken by the deferred check"
        assert c._receiver.pending == {}
        assert c.echo(b"after") == b"after"


def test_a_lean_call_answered_within_its_spin_runs_no_fence(own_client, monkeypatch):
    # The usual case: the worker awake and polling answers within the spin, and no request
    # was written after ours: neither the publish's nor the release's [W5] fence runs.
    c = own_client
    fences = []
    real = _lean.barrier_memory
    monkeypatch.setattr(_lean, "barrier_memory", lambda: fences.append(1) or real())
    round_trip = _lean.lean_round_trip(c._sender, c._receiver, c._general, c._checked)
    counts = []
    for i in range(200):
        fences.clear()
        assert round_trip(b"x%d" % i) == b"x%d" % i
        counts.append(len(fences))
    # Some calls may miss the spin (a busy machine) and fence once; most fence never.
    assert min(counts) == 0 and counts.count(0) > 100 and max(counts) <= 1, counts


class _Words:
    """The region's index words with hooks: ``on_load(i)`` before each load, ``on_store(i)``
    after each store."""

    def __init__(self, q, on_load, on_store):
        self.q, self.on_load, self.on_store = q, on_load, on_store

    def __getitem__(self, i):
        self.on_load(i)
        return self.q[i]

    def __setitem__(self, i, v):
        self.q[i] = v
        self.on_store(i)


def test_a_request_written_after_a_lean_calls_own_makes_its_release_check_for_room(
        own_client, monkeypatch):
    # Another request is written while the lean call spins: after releasing its answer the
    # call must run [W5]-[W6] for room (the worker may owe that request an answer that needs
    # the room), and both answers arrive.
    c = own_client
    producer, consumer = c._sender.producer, c._receiver._consumer
    events = []
    theirs = []

    def on_load(i):
        if i == consumer.tail_word and not theirs and events == ["published"]:
            theirs.append(c.submit(L.OP_ECHO, b"theirs"))  # the sender's lock is free now

    def on_store(i):
        if i == producer.tail_word and not events:
            events.append("published")
        elif i == consumer.head_word:
            events.append("released")

    words = _Words(producer.q, on_load, on_store)
    monkeypatch.setattr(producer, "q", words)
    real = _lean.barrier_memory
    monkeypatch.setattr(_lean, "barrier_memory", lambda: events.append("fence") or real())
    round_trip = _lean.lean_round_trip(c._sender, c._receiver, c._general, c._checked)
    for _ in range(100):
        events.clear()
        theirs.clear()
        assert round_trip(b"mine", 10.0) == b"mine"
        if theirs:  # (none when the call went the general way from the start)
            assert theirs[0].result(timeout=10) == b"theirs"
        if "released" in events:  # the lean read (not the general wait) took our answer
            break
    assert "released" in events, events
    assert "fence" in events[events.index("released"):], events
    assert c._receiver.pending == {}


def _mismatches_in_threads(client, mismatches, threads: int = 4) -> None:
    """Run ``mismatches(k)`` (a list of wrong answers) in ``threads`` threads at once and
    assert that none found one or raised, and that nothing stays pending."""
    errors = []

    def run(k):
        try:
            errors.extend(mismatches(k))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    run_threads(ts, 60)
    assert errors == []
    assert client._receiver.pending == {}


def test_threads_racing_on_the_lean_path_each_get_their_own_answer(client):
    # Several threads calling at once: the lean path's locks send the losers down the
    # general path; every answer reaches its caller, and nothing stays pending.
    def caller(k):
        bodies = [b"%d:%d" % (k, i) for i in range(300)]
        got = [client.echo(b) if i % 2 else client.call(L.OP_ECHO, b) for i, b in enumerate(bodies)]
        return [(b, g) for b, g in zip(bodies, got) if b != g]

    _mismatches_in_threads(client, caller)


def test_echo_takes_any_bytes_like_data_and_names_a_wrong_type(client):
    # `client.echo` is the lean closure itself: data that is not `bytes` goes the checked
    # general way, as `call` does, with the same answers and errors.
    assert client.echo(bytearray(b"ba")) == b"ba"
    assert client.echo(memoryview(b"mv")) == b"mv"
    assert client.echo(b"kw", timeout=5) == b"kw"
    with pytest.raises(TypeError, match="body"):
        client.echo("text")
    assert client._receiver.pending == {}
    assert client.echo(b"after") == b"after"


def test_lean_submit_hands_everything_unusual_to_the_sender(client):
    # `client.submit` is the lean closure: params, a timeout, bytes-like bodies, bodies of
    # several frames and bad op codes take Sender.submit's way, with its answers and errors.
    big = bytes(range(256)) * (SMALL_RING_BYTES // 128)  # fragments, more than a ring
    handles = [
        client.submit(L.OP_ECHO, b"plain"),
        client.submit(L.OP_ECHO, b"p", {"k": 1}),
        client.submit(L.OP_ECHO, b"t", timeout=5),
        client.submit(L.OP_ECHO, bytearray(b"ba")),
        client.submit(L.OP_ECHO, big),
        client.submit(L.OP_ECHO),
    ]
    assert [h.result(timeout=10) for h in handles] == [b"plain", b"p", b"t", b"ba", big, b""]
    assert client.submit("echo", b"x").result(timeout=10) == b"x"  # (a name: its code)
    with pytest.raises(TypeError, match="op"):
        client.submit(1.5, b"x")
    with pytest.raises(ValueError, match="op"):
        client.submit(0x10000, b"x")
    with pytest.raises(TypeError, match="body"):
        client.submit(L.OP_ECHO, "text")
    assert client._receiver.pending == {}


def test_lean_submit_wraps_the_ring_and_wakes_a_parked_worker(worker_bin):
    # Sizes that land frames at every distance from the ring's end (the lean submit leaves
    # the padding to the general way), a window that keeps the ring nearly full (room by a
    # fresh head), and pauses after which the worker has parked (the [W6] wake).
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES,
                      worker=worker_bin, args=["--spin-us", "50"]) as c:
        bodies = [bytes([i % 251]) * (i % 300) for i in range(3000)]
        inflight, got, woke = [], [], []
        for i, body in enumerate(bodies):
            pause = i % 500 == 499
            if pause:
                time.sleep(0.02)  # the worker parks (hot window 50 µs)
            inflight.append(c.submit(L.OP_ECHO, body))
            if pause:
                woke.append(c._sender.worker_woken)
            if len(inflight) >= 200:
                got.append(inflight.pop(0).result(timeout=10))
        got += [h.result(timeout=10) for h in inflight]
        assert got == bodies
        assert any(woke), "no submit found the worker parked and woke it"
        assert c._receiver.pending == {}


def test_lean_submit_from_threads_while_one_holds_the_lock(client):
    # Threads submitting at once: the lean submit finds the lock taken and waits for it
    # (Sender.submit's way); every handle gets its own answer.
    def submitter(k):
        bodies = [b"%d:%d" % (k, i) for i in range(500)]
        handles = [client.submit(L.OP_ECHO, b) for b in bodies]
        return [(b, g) for b, g in zip(bodies, (h.result(timeout=10) for h in handles)) if b != g]

    _mismatches_in_threads(client, submitter)


def _close_before_the_lock(c) -> None:
    """Make the sender's lock one whose first acquire closes ``c`` (another thread's close
    between a lean path's first look and its lock), then takes the real lock. The worker is
    killed first, so the close sends no OP_SHUTDOWN (which would move the tail and send a
    lean call the general way for that reason alone)."""
    sender = c._sender
    real = sender._lock

    class CloseFirst:
        def locked(self):
            return real.locked()

        def acquire(self, blocking=True, timeout=-1):
            sender._lock = real  # (the close takes the real lock)
            c._proc.kill()
            c._proc.wait()
            c.close()
            return real.acquire(blocking, timeout)

        def release(self):
            real.release()

    sender._lock = CloseFirst()


def test_lean_submit_racing_a_close_raises_client_closed(own_client):
    # The submit must find the client closed under the lock, as Sender.submit does, and
    # raise ClientClosed, not write into the unmapped region nor leave a handle pending that
    # the close can no longer fail.
    c = own_client
    _close_before_the_lock(c)
    submit = lean_submit(c._sender)  # (building it takes the lock's bound methods)
    with pytest.raises(ClientClosed):
        submit(L.OP_ECHO, b"late")
    assert c._receiver.pending == {}


def test_lean_call_racing_a_close_raises_client_closed(own_client):
    # As for the lean submit: ClientClosed (the general way's check), not a write into the
    # unmapped region.
    c = own_client
    _close_before_the_lock(c)
    round_trip = _lean.lean_round_trip(c._sender, c._receiver, c._general, c._checked)
    with pytest.raises(ClientClosed):
        round_trip(b"late")
    assert c._receiver.pending == {}


def test_a_subclass_overriding_echo_or_submit_is_not_bypassed(worker_bin):
    # Client.echo and Client.submit are closures cached on the instance; a subclass's own
    # echo or submit (a spawn on a subclass is supported) must still be the one called.
    calls = []

    class Mine(Client):
        def echo(self, data, timeout=None):
            calls.append("echo")
            return super().echo(data, timeout)

        def submit(self, op, body=b"", params=None, *, timeout=None):
            calls.append("submit")
            return super().submit(op, body, params, timeout=timeout)

    with Mine.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES,
                    worker=worker_bin) as c:
        assert c.echo(b"a") == b"a"
        assert c.submit(L.OP_ECHO, b"b").result(timeout=10) == b"b"
    assert calls == ["echo", "submit"]


class _TakenJustAfter:
    """A stand-in for the sender's lock that another thread takes the first time a lean
    path looks at it or tries it (after it looked free), and holds until ``done`` is set."""

    def __init__(self, real):
        self.real, self.armed = real, True
        self.taken, self.done = threading.Event(), threading.Event()

    def _holder(self):
        with self.real:
            self.taken.set()
            self.done.wait(5)  # (set by the test; bounds the wait of a path that blocks)

    def _interlope(self):
        if self.armed:
            self.armed = False
            threading.Thread(target=self._holder).start()
            self.taken.wait(5)

    def locked(self):  # (a look at the lock: it was free, then taken)
        self._interlope()
        return False

    def acquire(self, blocking=True, timeout=-1):
        self._interlope()
        return self.real.acquire(blocking, timeout)

    def release(self):
        self.real.release()


def test_lean_submit_under_a_no_wait_limit_never_waits_for_the_lock(own_client):
    # aio's loop thread submits under limit_waits(NO_WAIT): Sender.submit raises WouldWait
    # rather than wait for a lock another thread holds (one waiting for room may hold it
    # for long). Another thread taking the lock just as the lean submit finds it free must
    # end the same way, not block the loop until that thread is done.
    from chunkring._sender import NO_WAIT, WouldWait, limit_waits

    c = own_client
    sender = c._sender
    real = sender._lock
    sender._lock = lock = _TakenJustAfter(real)
    submit = lean_submit(sender)
    try:
        with limit_waits(NO_WAIT), pytest.raises(WouldWait):
            submit(L.OP_ECHO, b"loop")
    finally:
        lock.done.set()
        sender._lock = real
    assert c._receiver.pending == {}
    assert c.submit(L.OP_ECHO, b"after").result(timeout=10) == b"after"


def test_a_lean_call_waits_for_a_lock_taken_just_after_its_look_no_longer_than_its_timeout(
        own_client):
    # `call(..., timeout=)` bounds the wait for the sender's lock (Sender.send: RequestTimeout).
    # The lean call looks at the lock, then takes it; another thread taking it in between
    # must not make the call wait past its timeout for that thread.
    c = own_client
    sender = c._sender
    real = sender._lock
    sender._lock = lock = _TakenJustAfter(real)
    round_trip = _lean.lean_round_trip(sender, c._receiver, c._general, c._checked)
    try:
        with pytest.raises(RequestTimeout):
            round_trip(b"bounded", 0.05)
    finally:
        lock.done.set()
        sender._lock = real
    assert c._receiver.pending == {}
    assert c.echo(b"after") == b"after"
