"""The asyncio face (chunkring.aio, issue 12) under real event loops and real workers:
concurrency, cancellation, timeouts, a worker dying mid-await, a loop that stays responsive
during a long op, and the async forms of the markdown and snapshot wrappers."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import uuid
from pathlib import Path

import pytest
from chunkring import RequestError, RequestTimeout, WorkerDied
from chunkring import _layout as L
from chunkring.aio import AsyncClient
from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES, eventually, start_standalone_worker


def run(coro, seconds: float = 60.0):
    """Run ``coro`` on a fresh event loop, failing instead of hanging."""
    return asyncio.run(asyncio.wait_for(coro, seconds))


@pytest.fixture
def aclient(client) -> AsyncClient:
    return client.aio


class Ticker:
    """Counts how often the event loop gets to run a task that only yields: a loop blocked
    by a call would not tick at all while that call runs."""

    def __init__(self):
        self.ticks = 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    async def until(self, n: int) -> None:
        """Until the ticker advanced ``n`` more times."""
        target = self.ticks + n
        while self.ticks < target:
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._task.cancel()


def test_hundreds_of_concurrent_awaits_pair_up(aclient):
    async def one(i: int) -> bool:
        d = i.to_bytes(4, "little") * (1 + i % 300)
        return await aclient.echo(d, timeout=30) == d

    async def main():
        return await asyncio.gather(*(one(i) for i in range(800)))

    assert all(run(main()))
    assert aclient.client.stats()["pending"] == 0


def test_no_thread_per_request(aclient):
    async def main():
        before = threading.active_count()
        peak = before

        async def one(i):
            nonlocal peak
            r = await aclient.echo(bytes([i % 256]) * 100)
            peak = max(peak, threading.active_count())
            return r

        await asyncio.gather(*(one(i) for i in range(300)))
        return before, peak

    before, peak = run(main())
    assert peak <= before + 1  # at most the client's one receiver thread, started lazily
    assert aclient.client._receiver.pump is not None


def test_error_frames_raise_request_error(aclient):
    with pytest.raises(RequestError) as info:
        run(aclient.call(0x7777))
    assert info.value.name == "UNKNOWN_OP"


def test_timeout_raises_a_timeout_error_and_frees_the_request(own_client):
    ac = own_client.aio
    os.kill(own_client.pid, signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutError) as info:  # asyncio.TimeoutError is this, on 3.11
            run(ac.echo(b"x", timeout=0.2))
        assert isinstance(info.value, RequestTimeout)
        assert isinstance(info.value, asyncio.TimeoutError)
        assert own_client.stats()["pending"] == 0
    finally:
        os.kill(own_client.pid, signal.SIGCONT)
    assert run(ac.echo(b"after", timeout=30)) == b"after"


def test_an_into_step_keeps_its_timeout_and_moves_nothing_after_it(own_client):
    # Without a fingerprint (here after current()), the step first asks the worker for the
    # current snapshot; a stopped worker makes that wait. The timeout still holds, and the
    # move is not sent once the caller gave up.
    ac = own_client.aio

    async def main():
        h = await ac.history("aio-into-timeout")
        state = {"n": 0}
        await h.push(state)
        state["n"] = 1
        await h.push(state)
        assert await h.current() == state  # (drops the fingerprint)
        os.kill(own_client.pid, signal.SIGSTOP)
        try:
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(RequestTimeout):
                await h.undo(into=state, timeout=0.3)
            assert asyncio.get_running_loop().time() - t0 < 5
        finally:
            os.kill(own_client.pid, signal.SIGCONT)
        await asyncio.sleep(0.2)  # (the sending thread gets its answer and sends nothing)
        assert await h.position() == (1, 2) and state == {"n": 1}
        assert await h.undo(into=state, timeout=30) == [{"op": "replace", "path": "/n", "value": 0}]
        assert state == {"n": 0}

    run(main())


def test_cancelling_the_awaiting_task_discards_the_answer(own_client):
    ac = own_client.aio

    async def main():
        os.kill(own_client.pid, signal.SIGSTOP)
        try:
            tasks = [asyncio.ensure_future(ac.echo(b"c" * i)) for i in range(100)]
            await asyncio.sleep(0)  # let every task send its request
            assert own_client.stats()["pending"] == 100
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            assert own_client.stats()["pending"] == 0
        finally:
            os.kill(own_client.pid, signal.SIGCONT)
        # The worker still runs the cancelled requests; their answers are discarded.
        assert await ac.echo(b"next", timeout=30) == b"next"
        assert own_client.stats()["pending"] == 0

    run(main())


def test_a_worker_killed_mid_await_raises_worker_died(own_client):
    ac = own_client.aio

    async def main():
        os.kill(own_client.pid, signal.SIGSTOP)
        tasks = [asyncio.ensure_future(ac.echo(b"doomed")) for _ in range(50)]
        await asyncio.sleep(0)
        os.kill(own_client.pid, signal.SIGKILL)
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = run(main(), 30)
    assert all(isinstance(r, WorkerDied) for r in results)
    assert results[0].returncode == -signal.SIGKILL
    with pytest.raises(WorkerDied):
        run(ac.echo(b"after"))


def test_the_loop_keeps_running_while_a_long_op_is_awaited(own_client, tmp_path):
    """The op cannot finish until the test lets it (the worker is stopped), whatever the
    machine's speed; meanwhile the loop must keep ticking."""
    ac = own_client.aio
    for i in range(200):
        (tmp_path / f"f{i}.md").write_text(f"# file {i}\n\n" + "some words here\n" * 500)
    files = [f"f{i}.md" for i in range(200)]

    async def main():
        ticker = Ticker()
        os.kill(own_client.pid, signal.SIGSTOP)
        try:
            task = asyncio.ensure_future(ac.markdown.aggregate(files, root=tmp_path, toc=True))
            await ticker.until(200)  # would never return if the await blocked the loop
            assert not task.done()
        finally:
            os.kill(own_client.pid, signal.SIGCONT)
        before = ticker.ticks
        context = await task
        ticker.stop()
        return context, ticker.ticks - before

    context, ticks_during = run(main())
    assert context.count("### `f") == 200
    assert ticks_during >= 1  # the loop ran while the worker built and sent the answer


def test_the_loop_keeps_running_during_a_big_render(aclient):
    docs = ["# big\n\n" + "*word* and `code` " * 20_000] * 20

    async def main():
        ticker = Ticker()
        await asyncio.sleep(0)
        start = ticker.ticks
        html = await aclient.markdown.render(docs, timeout=120)
        ticks = ticker.ticks - start
        ticker.stop()
        return html, ticks

    html, ticks = run(main(), 120)
    assert len(html) == 20 and html[0].startswith("<h1>big</h1>")
    assert ticks >= 3  # submit, the receiver thread's read, the wake: the loop ran between


def test_markdown_async_forms_match_the_synchronous_ones(client, aclient):
    docs = ["# A\n\n[l](http://x)", "## B\n\n```py\nx\n```"]

    async def main():
        return await asyncio.gather(
            aclient.markdown.render(docs[0]),
            aclient.markdown.render(docs, smart_punctuation=True),
            aclient.markdown.outline(docs),
            aclient.markdown.aggregate([("a.md", docs[0]), ("b.md", docs[1])], toc=True),
        )

    r1, r2, o, agg = run(main())
    assert r1 == client.markdown.render(docs[0])
    assert r2 == client.markdown.render(docs, smart_punctuation=True)
    assert o == client.markdown.outline(docs)
    assert agg == client.markdown.aggregate([("a.md", docs[0]), ("b.md", docs[1])], toc=True)
    with pytest.raises(TypeError):
        client.markdown.submit_render("x", no_such_option=True)


def test_a_batch_over_the_sub_batch_size_keeps_document_indices_in_errors(aclient):
    from chunkring.markdown import SUB_BATCH_BYTES

    docs = ["x" * 1000] * (2 * SUB_BATCH_BYTES // 1000) + [b"bad \xff utf-8"]

    with pytest.raises(RequestError) as info:
        run(aclient.markdown.render(docs))
    assert info.value.name == "INVALID_UTF8"
    assert info.value.message.startswith(f"document {len(docs) - 1} ")


def test_history_and_log_async_forms(aclient):
    async def main():
        h = await aclient.history("aio-ui", capacity=10)
        await h.push({"files": [], "n": 0}, label="start")
        for n in range(1, 4):
            await h.push({"files": [f"f{n}"], "n": n})
        assert (await h.stats())["snapshots"] == 4
        assert await h.undo() == {"files": ["f2"], "n": 2}
        assert await h.redo() == {"files": ["f3"], "n": 3}
        assert await h.jump(0) == {"files": [], "n": 0}
        assert await h.current() == {"files": [], "n": 0}
        assert await h.get(1) == {"files": ["f1"], "n": 1}
        assert [e["label"] for e in await h.list()][0] == "start"
        assert {"op": "replace", "path": "/n", "value": 3} in await h.diff(0, 3)
        h.history.push({"files": [], "n": 9})  # a queued (write-behind) push
        await h.flush()
        with pytest.raises(RequestError):
            await h.push(["not a dict"], encoding="json")
        log = await aclient.log("aio-log")
        assert await log.append([b"a", "b"]) == 2
        assert await log.tail(1) == [b"b"]
        assert await log.read(0, 2) == [b"a", b"b"]
        res = await aclient.snapshots.process([{"a": 1}, {"a": 2}])
        assert [r["changed"] for r in res][1] == ["a"]

    run(main())


def test_the_gui_forms_async_match_a_sync_history_step_for_step(aclient):
    # The same seeded run of pushes (whole, changed=key, changed=path) and into= steps
    # through an AsyncHistory and a sync History: the same operations, the same live state,
    # and that state is the history's current snapshot after every step.
    import random

    from chunkring import StateMismatch

    async def main():
        ah = await aclient.history("aio-gui")
        sh = aclient.client.history("sync-gui")
        a_state = {"rows": [{"t": "r0"}], "title": "x", "n": 0}
        s_state = {"rows": [{"t": "r0"}], "title": "x", "n": 0}
        await ah.push(a_state)
        sh.push(s_state)
        rng = random.Random(7)
        for step in range(60):
            kind = rng.randrange(6)
            for state in (a_state, s_state):
                if kind == 0:
                    state["rows"].append({"t": f"r{step}"})
                elif kind == 1:
                    state["rows"][-1]["t"] = f"e{step}"
                elif kind == 2:
                    state["n"] = step
            if kind == 0:
                await ah.push(a_state, changed=("rows",))
                sh.push(s_state, changed=("rows",))
            elif kind == 1:
                path = ("rows", len(a_state["rows"]) - 1, "t")
                await ah.push(a_state, changed=[path])
                sh.push(s_state, changed=[path])
            elif kind == 2:
                await ah.push(a_state)
                sh.push(s_state)
            elif kind == 3:
                assert await ah.undo(into=a_state) == sh.undo(into=s_state)
            elif kind == 4:
                assert await ah.redo(into=a_state) == sh.redo(into=s_state)
            else:
                i = rng.randrange(len(sh))
                assert await ah.jump(i, into=a_state) == sh.jump(i, into=s_state)
            assert a_state == s_state
            assert await ah.current() == a_state
        stale = dict(a_state, title="edited, not pushed")
        with pytest.raises(StateMismatch, match="not the current snapshot"):
            await ah.undo(into=stale)
        assert stale["title"] == "edited, not pushed" and await ah.current() == a_state
        with pytest.raises(TypeError):
            await ah.redo(into=["not", "a", "dict"])
        with pytest.raises(ValueError):
            await ah.jump(-1, into=a_state)

    run(main())


def test_an_async_history_has_the_sync_ones_other_methods(aclient, tmp_path):
    async def main():
        h = await aclient.history("aio-rest")
        assert await h.position() == (None, 0)
        assert not await h.can_undo() and not await h.can_redo()
        for i in range(3):
            await h.push({"i": i})
        sender = aclient.client._sender
        sent = sender.next_id
        assert await h.position() == (2, 3)
        assert await h.can_undo() and not await h.can_redo()
        assert sender.next_id == sent, "after its own pushes a History knows its position"
        await h.undo()
        assert await h.can_undo() and await h.can_redo()
        assert await h.push_many([{"i": 10}, {"i": 11}], ["a", "b"]) == 4  # the redo branch went
        assert await h.position() == (3, 4) and not await h.can_redo()
        path = tmp_path / "aio.crsnap"
        assert (await h.save(path))["snapshots"] == 4
        assert h.history._saved_path == str(path)
        loaded = await aclient.history_from(path, name="aio-rest-2")
        assert await loaded.current() == {"i": 11}
        assert [e["label"] for e in await loaded.list()] == [None, None, "a", "b"]
        await h.drop()
        with pytest.raises(RequestError, match="unknown history"):
            await h.current()
        assert await loaded.position() == (3, 4)
        assert (await aclient.snapshots.stats())["histories"] >= 1  # (aio-rest-2)
        log = await aclient.log("aio-rest-log")
        await log.append([b"x", b"y"])
        assert (await log.save(tmp_path / "aio.crlog"))["len"] == 2
        from chunkring.snapshots import Log
        assert Log.load(aclient.client, tmp_path / "aio.crlog", name="aio-rest-log-2").tail(1) == [b"y"]

    run(main())


def test_async_map_yields_in_order_lazily_and_stops_at_a_failure(aclient):
    from chunkring._payload import encode_list

    async def main():
        taken = []

        def bodies(n):
            for i in range(n):
                taken.append(i)
                yield i.to_bytes(4, "little") * (1 + i % 50)

        it = aclient.map("echo", bodies(500), window=8)
        first = await it.__anext__()
        assert first == (0).to_bytes(4, "little")
        assert len(taken) <= 8, "the iterable is read at most a window ahead"
        rest = [b async for b in it]
        assert [first] + rest == [i.to_bytes(4, "little") * (1 + i % 50) for i in range(500)]
        # A request that fails raises when its answer is reached, after the ones before it.
        docs = [encode_list([b"# ok"]), b"not a list body", encode_list([b"# never"])]
        got = []
        with pytest.raises(RequestError) as e:
            async for html in aclient.map(L.OP_MD_RENDER, docs, window=4, params={}):
                got.append(html)
        assert got == [encode_list([b"<h1>ok</h1>\n"])]
        assert e.value.name == "BAD_PAYLOAD"
        with pytest.raises(ValueError):
            await aclient.map("echo", [b"x"], window=0).__anext__()

    run(main())


def test_async_client_spawns_and_closes_its_worker(worker_bin):
    async def main():
        async with await AsyncClient.spawn(ring_bytes=SMALL_RING_BYTES,
                                           chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin) as ac:
            assert await ac.echo(b"own", timeout=30) == b"own"
            assert (await ac.info())["pid"] == ac.client.pid
            assert await ac.pipeline([(L.OP_ECHO, {})], b"p") == b"p"
            proc = ac.client._proc
        return proc

    proc = run(main())
    assert eventually(lambda: proc.poll() is not None)


def test_async_client_spawn_is_awaited_or_entered_directly(worker_bin):
    """``async with AsyncClient.spawn() as ac`` (no ``await``) opens and closes the client as
    ``async with await …`` does; ``await AsyncClient.spawn()`` gives a client to close."""
    kw = dict(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin)

    async def main():
        async with AsyncClient.spawn(**kw) as ac:
            assert isinstance(ac, AsyncClient)
            assert await ac.echo(b"entered", timeout=30) == b"entered"
            entered = ac.client._proc
        ac = await AsyncClient.spawn(**kw)
        try:
            assert await ac.echo(b"awaited", timeout=30) == b"awaited"
        finally:
            await ac.aclose()
        # attach is the same: entered, the client is closed on the way out (not the worker).
        async with AsyncClient.attach(name, timeout=10) as attached:
            assert await attached.echo(b"attached", timeout=30) == b"attached"
        assert attached.client._receiver.closed
        return entered, ac.client._proc

    name = f"aio-{uuid.uuid4().hex[:10]}"
    standalone = start_standalone_worker(worker_bin, name)
    try:
        entered, awaited = run(main())
    finally:
        standalone.kill()
        standalone.wait()
        Path(f"/dev/shm/chunkring-{name}").unlink(missing_ok=True)
    assert eventually(lambda: entered.poll() is not None)
    assert eventually(lambda: awaited.poll() is not None)


def test_client_aio_is_one_async_face(client):
    assert client.aio is client.aio
    assert isinstance(client.aio, AsyncClient) and client.aio.client is client
