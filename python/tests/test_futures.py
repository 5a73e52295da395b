"""Request handles are concurrent.futures.Futures (issue 12): cf.wait, as_completed,
add_done_callback and asyncio.wrap_future work on them, completed by the client's background
receiver thread when nobody waits in result(); result() still reads the ring itself."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import signal
import threading

import pytest
from chunkring import Handle, RequestError, WorkerDied
from chunkring import _layout as L
from conftest import eventually, run_bounded


def _echoes(client, n: int, tag: bytes = b"") -> list[tuple[Handle, bytes]]:
    datas = [tag + i.to_bytes(4, "little") * (1 + i % 50) for i in range(n)]
    return [(client.submit(L.OP_ECHO, d), d) for d in datas]


def test_a_handle_is_a_concurrent_future(client):
    h = client.submit(L.OP_ECHO, b"abc")
    assert isinstance(h, cf.Future)
    assert h.result(timeout=10) == b"abc"
    assert h.done() and not h.cancelled() and not h.running()
    assert h.exception() is None


def test_cf_wait_completes_handles_nobody_reads(client):
    pairs = _echoes(client, 300)
    done, not_done = cf.wait([h for h, _ in pairs], timeout=30)
    assert not not_done and len(done) == 300
    assert all(h.result() == d for h, d in pairs)


def test_cf_wait_first_completed_returns_early(client):
    pairs = _echoes(client, 50)
    done, _ = cf.wait([h for h, _ in pairs], timeout=30, return_when=cf.FIRST_COMPLETED)
    assert done
    assert all(h.result(timeout=30) == d for h, d in pairs)


def test_cf_wait_first_exception_sees_an_error_frame(client):
    bad = client.submit(0x7777)  # an op the worker does not know
    good = client.submit(L.OP_ECHO, b"fine")
    done, _ = cf.wait([good, bad], timeout=30, return_when=cf.FIRST_EXCEPTION)
    assert bad in done
    assert isinstance(bad.exception(), RequestError)
    assert bad.exception().name == "UNKNOWN_OP"
    assert good.result(timeout=30) == b"fine"


def test_as_completed_yields_every_handle_once(client):
    pairs = dict(_echoes(client, 500, b"ac"))
    seen = [h for h in cf.as_completed(list(pairs), timeout=30)]
    assert len(seen) == len(set(seen)) == 500
    assert all(h.result() == pairs[h] for h in seen)


def test_done_callbacks_run_without_anyone_waiting(client):
    pairs = _echoes(client, 200, b"cb")
    got: dict = {}
    all_in = threading.Event()

    def on_done(h):
        got[h.request_id] = h.result()
        if len(got) == len(pairs):
            all_in.set()

    for h, _ in pairs:
        h.add_done_callback(on_done)
    assert all_in.wait(30)
    assert all(got[h.request_id] == d for h, d in pairs)


def test_a_callback_added_after_completion_runs_at_once(client):
    h = client.submit(L.OP_ECHO, b"late")
    assert h.result(timeout=10) == b"late"
    seen = []
    h.add_done_callback(seen.append)
    assert seen == [h]


def test_a_callback_may_submit_and_wait_on_the_same_client(client):
    """Callbacks run outside the receiver's lock, on the receiver thread: calling the client
    from one (even a synchronous call) neither deadlocks nor loses the answer."""
    out: list = []
    done = threading.Event()

    def chain(h):
        out.append(client.echo(h.result() + b"+", timeout=30))
        done.set()

    client.submit(L.OP_ECHO, b"first").add_done_callback(chain)
    assert done.wait(30)
    assert out == [b"first+"]


def test_asyncio_wrap_future_awaits_a_handle(client):
    async def main():
        hs = [client.submit(L.OP_ECHO, bytes([i])) for i in range(100)]
        return await asyncio.gather(*(asyncio.wrap_future(h) for h in hs))

    assert asyncio.run(main()) == [bytes([i]) for i in range(100)]


def test_result_still_reads_the_ring_when_the_receiver_thread_runs(client):
    # A watched handle pending keeps the background thread busy; result() on other handles
    # must still work (whoever drains first completes both kinds).
    watched = [h for h, _ in _echoes(client, 100, b"w")]
    for h in watched:
        h.add_done_callback(lambda _h: None)
    for i in range(2000):
        d = i.to_bytes(4, "little")
        assert client.echo(d, timeout=30) == d
    assert all(h.result(timeout=30) for h in watched)


def test_cancel_discards_the_answer_and_frees_the_request_id(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)  # nothing is answered until SIGCONT
    try:
        hs = [c.submit(L.OP_ECHO, b"x" * i) for i in range(50)]
        keep = c.submit(L.OP_ECHO, b"kept")
        assert all(h.cancel() for h in hs)
        assert all(h.cancelled() and h.done() for h in hs)
        assert c.stats()["pending"] == 1  # only `keep`: cancelled ids left the table at once
        done, not_done = cf.wait(hs, timeout=0)  # cancelled counts as done for cf.wait
        assert len(done) == 50 and not not_done
        with pytest.raises(cf.CancelledError):
            hs[0].result()
    finally:
        os.kill(c.pid, signal.SIGCONT)
    assert keep.result(timeout=30) == b"kept"  # the discarded answers came before it
    assert c.stats()["pending"] == 0
    assert not hs[0].cancel()  # already cancelled
    assert not keep.cancel()  # already done
    assert c.echo(b"after", timeout=30) == b"after"


def test_a_dead_worker_fails_watched_handles(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)
    hs = [c.submit(L.OP_ECHO, b"never") for _ in range(20)]
    errors: list = []
    for h in hs:
        h.add_done_callback(lambda f: errors.append(f.exception()))
    os.kill(c.pid, signal.SIGKILL)
    # Nobody calls result(): only the background thread's liveness check can notice.
    assert eventually(lambda: len(errors) == 20, 30)
    assert all(isinstance(e, WorkerDied) for e in errors)
    done, _ = cf.wait(hs, timeout=5)
    assert len(done) == 20


def test_close_stops_the_receiver_thread_and_fails_watched_handles(worker_bin):
    from chunkring import Client, ClientClosed
    from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES

    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin)
    os.kill(c.pid, signal.SIGSTOP)
    h = c.submit(L.OP_ECHO, b"stuck")
    h.add_done_callback(lambda _h: None)
    pump = c._receiver.pump
    assert pump is not None and pump.is_alive()
    os.kill(c.pid, signal.SIGKILL)  # close() would wait for a stopped worker otherwise
    run_bounded(c.close, 30)
    assert not pump.is_alive()
    assert isinstance(h.exception(timeout=1), (ClientClosed, WorkerDied))


def test_synchronous_calls_start_no_thread(worker_bin):
    from chunkring import Client

    with Client.spawn(worker=worker_bin) as c:
        for _ in range(100):
            assert c.echo(b"s", timeout=10) == b"s"
        c.submit(L.OP_ECHO, b"t").result(timeout=10)
        assert c._receiver.pump is None


def test_callbacks_run_on_the_receiver_thread_even_when_a_sender_read_the_answer(client):
    """A thread writing a request larger than the ring drains answers while it holds the
    sender's lock; a done callback that calls the client must not run there (it would
    deadlock on that lock)."""
    threads: list = []
    answers: list = []
    done = threading.Event()
    in_blocker = threading.Event()
    gate = threading.Event()

    def blocker(_h):  # keeps the receiver thread away from the ring until `gate`
        in_blocker.set()
        gate.wait(60)

    def callback(h):
        threads.append(threading.current_thread().name)
        answers.append(client.submit(L.OP_ECHO, h.result() + b"!").result(timeout=30))
        if len(answers) == 50:
            done.set()

    client.submit(L.OP_ECHO, b"block").add_done_callback(blocker)
    assert in_blocker.wait(30)
    try:
        for i in range(50):
            client.submit(L.OP_ECHO, b"%d" % i).add_done_callback(callback)
        big = os.urandom(4 * client.ring_bytes)
        # This thread, not the receiver thread, reads the 50 answers (while sending `big`).
        assert run_bounded(lambda: client.echo(big, timeout=60), 60) == big
    finally:
        gate.set()
    assert done.wait(30)
    assert sorted(answers) == sorted(b"%d!" % i for i in range(50))
    assert set(threads) == {"chunkring-receiver"}


def test_a_callback_may_close_the_client(worker_bin):
    from chunkring import Client, ClientClosed
    from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES

    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin)
    os.kill(c.pid, signal.SIGSTOP)
    others = [c.submit(L.OP_ECHO, b"other") for _ in range(5)]
    closing = c.submit(L.OP_ECHO, b"closer")
    closed = threading.Event()
    closing.add_done_callback(lambda _h: (c.close(timeout=1), closed.set()))
    errors: list = []
    for h in others:
        h.add_done_callback(lambda f: errors.append(f.exception()))
    os.kill(c.pid, signal.SIGCONT)
    assert closed.wait(30)
    assert eventually(lambda: len(errors) == 5, 10)
    assert all(e is None or isinstance(e, ClientClosed) for e in errors)
    assert eventually(lambda: not c._receiver.pump.is_alive(), 10)


def test_cancel_from_another_thread_ends_a_blocked_result(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)
    try:
        h = c.submit(L.OP_ECHO, b"never read")
        waiting = threading.Event()

        def wait_for_it():
            waiting.set()
            with pytest.raises(cf.CancelledError):
                h.result()  # no timeout: only the cancel can end it
            return True

        with cf.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(wait_for_it)
            assert waiting.wait(30)
            assert h.cancel()
            assert fut.result(30)
    finally:
        os.kill(c.pid, signal.SIGCONT)
    assert c.echo(b"on", timeout=30) == b"on"
