"""``Client.spawn(restart=True)``: a worker killed mid-work is replaced, safe requests are
answered as if nothing happened, unsafe ones raise, saved histories come back (issue 11 item 7,
layout.md §12 "Client recovery"). Real workers, real SIGKILLs, real shm."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import uuid

import pytest
from chunkring import Client, WorkerDied, WorkerRestarted
from chunkring import _layout as L
from chunkring._payload import encode_list
from chunkring._supervisor import RestartPolicy, repeatable
from conftest import REPO_ROOT, SMALL_RING_BYTES, eventually, run_bounded


def _spawn(worker_bin, **kw) -> Client:
    name = kw.pop("name", f"rs-{uuid.uuid4().hex[:10]}")
    return Client.spawn(name, ring_bytes=SMALL_RING_BYTES, worker=worker_bin, restart=True, **kw)


def _kill(client: Client) -> int:
    pid = client.pid
    os.kill(pid, signal.SIGKILL)
    return pid


def _freeze(client: Client) -> None:
    """Stop the worker (SIGSTOP): what is sent now stays in flight until the kill."""
    os.kill(client.pid, signal.SIGSTOP)


def _regions_of(name: str) -> list[str]:
    return sorted(f for f in os.listdir("/dev/shm") if f.startswith(f"chunkring-{name}"))


@pytest.fixture
def c(worker_bin):
    """A client spawned with restart=True; after the test, none of its regions is left."""
    c = _spawn(worker_bin)
    name = c.name
    yield c
    c.close()
    assert _regions_of(name) == []  # the dead workers' regions and the last one's are gone


# ------------------------------------------------------------------ safe requests
def test_sigkill_mid_stream_of_echos_answers_every_call_once(c):
    big = os.urandom(3 * SMALL_RING_BYTES)  # larger than the ring
    mid = os.urandom(SMALL_RING_BYTES // 2)  # three fragments, fits in the stopped ring
    answers = []
    first_pid = c.pid
    # Handles in flight at the kill (some watched as futures), synchronous calls
    # before it and straight through it.
    handles = [c.submit(L.OP_ECHO, b"h%d" % i) for i in range(32)]
    called_back = []
    handles[3].add_done_callback(lambda f: called_back.append(f.result()))
    for i in range(400):
        if i == 150:
            _freeze(c)
            handles += [c.submit(L.OP_ECHO, b"h%d" % i) for i in range(32, 64)]
            handles.append(c.submit(L.OP_ECHO, mid))
            handles[40].add_done_callback(lambda f: called_back.append(f.result()))
            _kill(c)
        answers.append(c.echo(b"e%d" % i))
    assert answers == [b"e%d" % i for i in range(400)]
    assert [h.result(timeout=30) for h in handles[:-1]] == [b"h%d" % i for i in range(64)]
    assert handles[-1].result(timeout=30) == mid
    assert c.echo(big) == big
    assert called_back == [b"h3", b"h40"]
    assert c.restarts == 1
    assert c.pid != first_pid
    assert isinstance(c.last_death, WorkerDied) and "-9" in str(c.last_death)
    assert c.info()["pid"] == c.pid


def test_threads_calling_through_a_kill_all_get_their_answers(c):
    # Every thread is mid-stream when the worker dies: the kill comes only after each has
    # had answers, and each goes on calling until it has had 50 more after it saw the kill
    # (a fixed count of calls could all be answered before the kill lands).
    errors: list = []
    calls = [0] * 4
    killed = threading.Event()
    done = threading.Barrier(5)

    def caller(t: int) -> None:
        try:
            i = after = 0
            while after < 50:
                body = b"t%d-%d" % (t, i) * (1 + i % 7)
                if c.echo(body, timeout=60) != body:
                    errors.append((t, i))
                i += 1
                calls[t] = i
                if killed.is_set():
                    after += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        done.wait()

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    assert eventually(lambda: min(calls) >= 20 or errors, 60)
    pid = _kill(c)
    assert eventually(lambda: _dead(pid), 30)
    killed.set()
    run_bounded(done.wait, 120)
    assert errors == []
    assert c.restarts == 1


def _dead(pid: int) -> bool:
    """True once ``pid`` is gone or a zombie: it answers nothing more."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):  # reaped (between open and read: ESRCH)
        return True


def test_pure_markdown_process_and_pipeline_are_sent_again(c):
    want_html = c.markdown.render("# Title\n\n*x*")
    want_process = c.snapshots.process([{"a": 1}, {"a": 2}])
    stages = [(L.OP_ECHO, {}), (L.OP_MD_RENDER, {})]
    want_pipe = c.pipeline(stages, encode_list([b"# P"]))
    _freeze(c)
    fut = c.markdown.submit_render(["# A", "# B"])
    pipe_fut = c.submit(L.OP_PIPELINE, encode_list([b"# P"]), {"stages": [
        {"op": op, "params": params} for op, params in stages]})
    append = c.submit(L.OP_LOG_APPEND, encode_list([b"x"]), {"name": "l"})
    named = c.submit("echo", b"by name")  # (an op by its name: the same op)
    named_append = c.submit("log.append", encode_list([b"y"]), {"name": "l"})
    _kill(c)
    assert fut.result(timeout=30) == [c.markdown.render("# A"), c.markdown.render("# B")]
    assert c.markdown.render("# Title\n\n*x*") == want_html
    assert c.snapshots.process([{"a": 1}, {"a": 2}]) == want_process
    assert c.pipeline(stages, encode_list([b"# P"])) == want_pipe
    assert pipe_fut.result(timeout=30) == want_pipe
    with pytest.raises(WorkerRestarted, match="OP_LOG_APPEND"):  # never sent again
        append.result(timeout=30)
    assert named.result(timeout=30) == b"by name"
    with pytest.raises(WorkerRestarted, match="OP_LOG_APPEND"):
        named_append.result(timeout=30)
    assert c.restarts == 1


def test_map_of_a_pure_op_answers_in_order_through_a_kill(c):
    bodies = [b"m%d" % i * (1 + i % 50) for i in range(3000)]
    out = []
    for i, answer in enumerate(c.map(L.OP_ECHO, bodies, window=64)):
        if i == 1000:
            _kill(c)
        out.append(answer)
    assert out == bodies
    assert c.restarts == 1


# ------------------------------------------------------------------ unsafe requests, histories
def test_push_in_flight_raises_and_the_saved_history_comes_back(c, tmp_path):
    h = c.history("ui", capacity=20)
    for i in range(5):
        h.push({"files": [f"f{j}" for j in range(i)], "n": i}, label=f"s{i}")
    h.undo()
    saved = tmp_path / "ui.hist"
    h.save(saved)
    saved_list = h.list()
    saved_current = h.current()
    assert len(saved_list) == 5 and saved_current["n"] == 3
    # Pushes after the save: one answered, one in flight when the worker is killed.
    h.push({"n": 10}, wait=True)
    h.push({"n": 11, "big": "x" * 100_000}, label="in flight")
    _kill(c)
    with pytest.raises(WorkerRestarted) as info:
        h.current()  # collects the push in flight first: that push raises
    err = info.value
    assert err.history == "ui"
    assert list(err.pushes) == [5, 6]  # both unsaved pushes, numbered as push errors are
    assert "push #6 ('in flight')" in str(err) and "#5..#6" in str(err)
    assert str(saved) in str(err)
    # The history is exactly the saved one, and keeps working.
    assert h.list() == saved_list
    assert h.current() == saved_current
    assert c.restarts == 1
    h.push({"n": 12}, wait=True)
    assert h.current() == {"n": 12}
    assert len(h) == 5  # the redo branch (entry 4) was dropped by the push


def test_push_met_by_the_death_raises_at_that_call_naming_it(c, tmp_path):
    h = c.history("w")
    h.push({"n": 0}, wait=True)
    h.save(tmp_path / "w.hist")
    h.write_behind = 4  # buffered in Python, then sent together by flush()
    h.push({"n": 1})
    h.push({"n": 2})
    _kill(c)
    with pytest.raises(WorkerRestarted) as info:
        h.flush()  # the buffered pushes: raised, not sent to the new worker
    assert info.value.history == "w"
    assert set(info.value.pushes) <= {1, 2} and len(info.value.pushes) >= 1
    assert h.current() == {"n": 0}  # reopened from the save: no buffered push got in
    assert len(h) == 1


def test_into_steps_not_yet_told_are_named_lost_and_the_save_comes_back(c, tmp_path, monkeypatch):
    # `into=` steps held ahead reach the worker later (layout.md §9.3 "Steps ahead"): the ones
    # a killed worker never learnt of are reported as lost moves, as moves in flight are.
    # Steps back to back would ask (and so tell) early by their pace: asked by count only
    # (AHEAD_LEAD 0), the steps after the first refill stay untold.
    from chunkring import _history_lean
    monkeypatch.setattr(_history_lean, "AHEAD_LEAD", 0.0)
    h = c.history("ahead-ui")
    state = {"n": 0}
    h.push(state)
    for n in range(1, 30):
        state["n"] = n
        h.push(state, changed=["n"])
    h.save(tmp_path / "ahead.hist")
    for _ in range(4):
        h.undo(into=state)
    assert state == {"n": 25} and h.index == 25
    ahead = h._prefetch_move
    assert ahead.at != ahead.told, "(the premise: steps not told yet)"
    _kill(c)
    with pytest.raises(WorkerRestarted, match="undo/redo/jump moves") as info:
        h.current()  # (its tell of the steps, sent first, met the death)
    assert info.value.history == "ahead-ui" and "ahead.hist" in str(info.value)
    assert h.current() == {"n": 29} and h.index == 29  # the save, as it was: raised once
    assert h.undo(into=h.current()) is not None and h.index == 28


def test_a_history_loaded_from_a_file_comes_back_without_error(c, tmp_path):
    h = c.history("src")
    h.push_many([{"i": i} for i in range(4)])
    path = tmp_path / "src.hist"
    h.save(path)
    h.drop()
    loaded = c.history_from(path, name="copy")
    entries = loaded.list()
    _kill(c)
    c.echo(b"after")  # the restart happens here
    assert loaded.list() == entries  # nothing unsaved: no error, the same entries
    assert loaded.current() == {"i": 3}


def test_an_unsaved_history_raises_on_every_use_and_a_log_append_is_not_repeated(c):
    h = c.history("scratch")
    h.push({"a": 1}, wait=True)
    log = c.log("events")
    log.append(b"one")
    _kill(c)
    with pytest.raises(WorkerRestarted, match="was not sent again"):
        log.append(b"two")  # met the death: not repeated on the new worker
    for _ in range(2):
        with pytest.raises(WorkerRestarted, match="never saved") as info:
            h.current()
        assert info.value.history == "scratch" and list(info.value.pushes) == [0]
    assert c.echo(b"ok") == b"ok"


def test_asyncio_on_a_restarting_client(c):
    async def main():
        ac = c.aio
        assert await ac.echo(b"a", timeout=10) == b"a"
        h = await ac.history("async-ui")
        await h.push({"n": 1})
        _freeze(c)
        pending = [asyncio.ensure_future(ac.echo(b"p%d" % i)) for i in range(32)]
        render = asyncio.ensure_future(ac.markdown.render("# Hi"))
        push = asyncio.ensure_future(h.push({"n": 2}))
        await asyncio.sleep(0.05)  # the tasks send their requests to the stopped worker
        _kill(c)
        assert await asyncio.gather(*pending) == [b"p%d" % i for i in range(32)]
        assert "<h1>Hi</h1>" in await render
        with pytest.raises(WorkerRestarted):  # met the death: not sent again
            await push
        with pytest.raises(WorkerRestarted, match="never saved"):
            await h.current()
        assert await ac.echo(b"b", timeout=10) == b"b"

    run_bounded(lambda: asyncio.run(main()), 60)
    assert c.restarts == 1


# ------------------------------------------------------------------ limits
def test_a_worker_that_keeps_dying_is_restarted_max_restarts_times_then_not(worker_bin):
    c = _spawn(worker_bin, max_restarts=2, restart_window=3600)
    name = c.name
    try:
        for n in (1, 2):
            _kill(c)
            assert c.echo(b"x") == b"x"
            assert c.restarts == n
        _kill(c)
        with pytest.raises(WorkerDied, match="max_restarts") as info:
            c.echo(b"x")
        assert not isinstance(info.value, WorkerRestarted)
        with pytest.raises(WorkerDied, match="max_restarts"):  # for good
            c.call(L.OP_INFO)
        assert c.restarts == 2
    finally:
        c.close()
    assert _regions_of(name) == []


def test_a_worker_binary_that_exits_at_once_stops_the_restarts(worker_bin, tmp_path):
    broken = tmp_path / "broken"
    script = tmp_path / "worker.sh"
    script.write_text(f'#!/bin/sh\n[ -e "{broken}" ] && {{ echo "broken on purpose" >&2; exit 3; }}\n'
                      f'exec "{worker_bin}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    c = _spawn(str(script), max_restarts=3, restart_window=3600)
    name = c.name
    try:
        assert c.echo(b"x") == b"x"
        broken.touch()
        _kill(c)
        with pytest.raises(WorkerDied, match="max_restarts") as info:
            run_bounded(lambda: c.echo(b"x"), 60)
        assert "broken on purpose" in str(info.value.__cause__)  # the last failed start
        assert c.restarts == 0
        assert "broken on purpose" in str(c.last_death)
    finally:
        c.close()
    assert _regions_of(name) == []


def test_restart_policy_backs_off_and_limits():
    p = RestartPolicy(3, 10.0)
    assert [p.next_pause(0.0), p.next_pause(1.0), p.next_pause(2.0)] == [0.0, 0.1, 0.2]
    assert p.next_pause(3.0) is None
    assert p.next_pause(10.5) == 0.2  # the first one left the window
    with pytest.raises(ValueError):
        RestartPolicy(-1, 10.0)
    with pytest.raises(ValueError):
        RestartPolicy(1, 0)


def test_without_restart_a_death_still_fails_everything(own_client):
    h = own_client.submit(L.OP_ECHO, b"x" * 10)
    h.result(timeout=10)
    _kill(own_client)
    with pytest.raises(WorkerDied) as info:
        for _ in range(1000):
            own_client.echo(b"y", timeout=10)
    assert not isinstance(info.value, WorkerRestarted)
    assert own_client.restarts == 0


def test_shutdown_and_close_are_not_restarted(worker_bin):
    c = _spawn(worker_bin)
    c.shutdown()
    with pytest.raises(WorkerDied):
        c.echo(b"x", timeout=10)
    assert c.restarts == 0
    c.close()


def test_file_regions_are_refused_with_restart(worker_bin, tmp_path):
    with pytest.raises(ValueError, match="file="):
        Client.spawn(file=tmp_path / "r", worker=worker_bin, restart=True)


# ------------------------------------------------------------------ the contract
def test_the_repeatable_ops_are_the_ones_layout_md_names():
    text = (REPO_ROOT / "layout.md").read_text(encoding="utf-8")
    para = text[text.index("* **Client recovery.**"):text.index("## 13.")]
    safe = para[para.index("Requests safe to repeat"):para.index("that were in")]
    named = set(re.findall(r"`(OP_[A-Z_]+)`", safe))
    assert {getattr(L, n) for n in named if n != "OP_PIPELINE"} == L.PURE_OPS
    assert "OP_PIPELINE" in named
    assert repeatable(L.OP_PIPELINE, {"stages": [{"op": L.OP_ECHO}, {"op": L.OP_MD_RENDER}]})
    assert not repeatable(L.OP_PIPELINE, {"stages": [{"op": L.OP_ECHO}, {"op": L.OP_SNAP_PUSH}]})
    assert not repeatable(L.OP_PIPELINE, {"stages": []})
    assert not repeatable(L.OP_SNAP_PUSH, {"name": "x"})
    assert not repeatable(L.OP_SNAP_CURRENT, {"name": "x"})  # reads state the worker held
    # An op given by its name is the same op.
    assert repeatable("echo", None) and repeatable("md.render", None)
    assert not repeatable("snap.push", {"name": "x"}) and not repeatable("no.such.op", None)


def test_futures_of_pure_ops_complete_through_as_completed(c):
    futs = [c.submit(L.OP_ECHO, b"f%d" % i) for i in range(100)]
    _kill(c)
    got = sorted(f.result() for f in cf.as_completed(futs, timeout=60))
    assert got == sorted(b"f%d" % i for i in range(100))


def test_a_checksummed_client_restarts_checksummed(worker_bin):
    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, worker=worker_bin, restart=True, crc=True)
    try:
        assert c._region.crc
        _kill(c)
        assert c.echo(b"x" * 40_000) == b"x" * 40_000
        assert c.restarts == 1 and c._region.crc  # the new worker runs with --crc too
    finally:
        c.close()


#: A restarting client in its own process (a SIGBUS would show as a negative return code):
#: prints its region's path, then streams echoes until the region is truncated under it.
TRUNCATED = """
import sys
sys.path.insert(0, sys.argv[1])
from chunkring import Client, RegionLost
c = Client.spawn(ring_bytes=65536, worker=sys.argv[2], restart=True)
print(c.path, flush=True)
sys.stdin.readline()
try:
    for i in range(10**7):
        c.echo(b"%d" % i)
    print("never lost", flush=True)
except RegionLost:
    print("lost", c.restarts, flush=True)
c.close()
"""


def test_a_truncated_region_is_not_restarted_and_nothing_hangs(worker_bin):
    child = subprocess.Popen([sys.executable, "-c", TRUNCATED, str(REPO_ROOT / "python"),
                              worker_bin], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        path = child.stdout.readline().strip()
        subprocess.run(["truncate", "-s", "0", path], check=True)
        child.stdin.write("go\n")
        child.stdin.flush()
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, out
    assert out.split() == ["lost", "0"]  # RegionLost, raised as such: no restart
