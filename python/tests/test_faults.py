"""Faults are loud (layout.md §3 validation, §12 liveness): dead workers, bad binaries,
bad headers, a taken client slot, timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from chunkring import (
    Client,
    ClientClosed,
    ProtocolError,
    RequestTimeout,
    WorkerDied,
    WorkerNotFound,
    WorkerStartError,
)
from chunkring import _layout as L
from conftest import (
    SMALL_RING_BYTES,
    eventually,
    make_region_file,
    run_bounded,
    start_standalone_worker,
)

# ---- a dead worker ----------------------------------------------------------------------


def test_pending_requests_fail_when_worker_is_killed(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)  # nothing gets answered from here on
    handles = [c.submit(L.OP_ECHO, os.urandom(100)) for _ in range(100)]
    os.kill(c.pid, signal.SIGKILL)

    def collect():
        outcomes = []
        for h in handles:
            with pytest.raises(WorkerDied) as info:
                h.result()
            outcomes.append(info.value)
        return outcomes

    errors = run_bounded(collect, 30)
    assert len(errors) == 100
    assert errors[0].returncode == -signal.SIGKILL
    assert "exited with code -9" in str(errors[0])
    with pytest.raises(WorkerDied):
        c.echo(b"after death")


def test_worker_killed_mid_stream_fails_the_rest(own_client):
    c = own_client
    payload = os.urandom(4000)
    handles = [c.submit(L.OP_ECHO, payload) for _ in range(30)]
    assert handles[0].result(timeout=10) == payload
    os.kill(c.pid, signal.SIGKILL)

    def keep_going():
        answered = died = 0
        for h in handles[1:]:
            try:
                assert h.result() == payload
                answered += 1
            except WorkerDied:
                died += 1
        # Requests submitted after the kill are refused at once.
        for _ in range(50):
            try:
                c.submit(L.OP_ECHO, payload)
            except WorkerDied:
                died += 1
                break
        return answered, died

    answered, died = run_bounded(keep_going, 30)
    assert answered + died >= 29
    assert died >= 1


def test_a_submit_blocked_on_a_full_ring_fails_when_worker_dies(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)

    def kill_soon():
        time.sleep(0.2)
        os.kill(c.pid, signal.SIGKILL)

    import threading

    threading.Thread(target=kill_soon, daemon=True).start()
    with pytest.raises(WorkerDied):
        # 4 rings of payload cannot fit while the worker is stopped: submit waits, then fails.
        run_bounded(lambda: c.echo(os.urandom(4 * SMALL_RING_BYTES)), 30)


def test_result_timeout_leaves_the_request_pending(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)
    h = c.submit(L.OP_ECHO, b"later")
    assert not h.done()
    with pytest.raises(RequestTimeout):
        h.result(timeout=0.05)
    os.kill(c.pid, signal.SIGCONT)
    assert h.result(timeout=10) == b"later"
    assert h.done()


def test_close_stops_the_spawned_worker_and_removes_its_region(worker_bin):
    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, worker=worker_bin)
    path, pid = c.path, c.pid
    assert path.exists()
    assert c.echo(b"x") == b"x"
    c.close()
    assert not path.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ClientClosed):
        c.echo(b"x")


def test_shutdown_op_stops_the_worker(worker_bin):
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, worker=worker_bin) as c:
        c.shutdown()
        assert c._proc.returncode == 0
        with pytest.raises(WorkerDied):
            run_bounded(lambda: c.echo(b"x", timeout=5), 30)


def test_worker_exits_when_its_owner_dies(worker_bin, tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from chunkring import Client
        c = Client.spawn(ring_bytes={SMALL_RING_BYTES}, worker={worker_bin!r})
        print(c.pid, c.path, flush=True)
        os._exit(0)  # no close(): the worker must notice on its own
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    pid_text, path_text = out.stdout.split()
    pid = int(pid_text)

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    assert eventually(gone, 10)
    assert eventually(lambda: not Path(path_text).exists(), 10)


# ---- a worker that does not start -------------------------------------------------------


def test_spawn_with_unknown_flag_raises_with_stderr(worker_bin):
    with pytest.raises(WorkerStartError) as info:
        Client.spawn(worker=worker_bin, args=["--no-such-flag"], timeout=10)
    err = info.value
    assert err.returncode not in (None, 0)
    assert "no-such-flag" in err.stderr
    assert "no-such-flag" in str(err)


def test_spawn_with_bad_ring_size_raises_with_stderr(worker_bin):
    with pytest.raises(WorkerStartError) as info:
        Client.spawn(worker=worker_bin, ring_bytes=1000, timeout=10)
    assert info.value.returncode not in (None, 0)
    assert info.value.stderr.strip()


def test_spawn_with_a_binary_that_fails_raises(tmp_path):
    fake = tmp_path / "chunkring"
    fake.write_text("#!/bin/sh\necho 'cannot serve: broken on purpose' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(WorkerStartError) as info:
        Client.spawn(worker=fake, timeout=10)
    assert info.value.returncode == 3
    assert "broken on purpose" in info.value.stderr


def test_spawn_with_a_binary_that_never_gets_ready_times_out(tmp_path):
    fake = tmp_path / "chunkring"
    fake.write_text("#!/bin/sh\necho 'warming up' >&2\nexec sleep 30\n")
    fake.chmod(0o755)
    t0 = time.monotonic()
    with pytest.raises(WorkerStartError) as info:
        Client.spawn(worker=fake, timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert "warming up" in info.value.stderr
    assert "not become ready" in str(info.value)


def test_spawn_with_a_missing_binary_raises(tmp_path):
    with pytest.raises(WorkerStartError):
        Client.spawn(worker=tmp_path / "nope", timeout=5)


def test_worker_not_found_lists_every_place_tried(tmp_path):
    # A copy of the package outside the repository: no target/ folder above it.
    import shutil

    pkg = Path(__file__).resolve().parents[1] / "chunkring"
    shutil.copytree(pkg, tmp_path / "chunkring", ignore=shutil.ignore_patterns("bin", "__pycache__"))
    env = {"PATH": str(tmp_path / "empty-bin"), "PYTHONPATH": str(tmp_path)}
    code = "from chunkring import find_worker_bin\nfind_worker_bin()"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "WorkerNotFound" in out.stderr
    assert "CHUNKRING_WORKER" in out.stderr
    assert str(tmp_path / "bin" / "chunkring") in out.stderr  # a `pip install --target` layout
    assert "on PATH" in out.stderr
    assert "target" in out.stderr


def test_a_wrong_worker_env_variable_is_an_error(monkeypatch, tmp_path):
    from chunkring._find_worker import find_worker_bin

    monkeypatch.setenv("CHUNKRING_WORKER", str(tmp_path / "missing"))
    with pytest.raises(WorkerNotFound, match="not an executable file"):
        find_worker_bin()


def test_worker_env_variable_wins(worker_bin, monkeypatch, tmp_path):
    from chunkring._find_worker import find_worker_bin

    fake = tmp_path / "chunkring"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CHUNKRING_WORKER", str(fake))
    assert find_worker_bin() == str(fake)
    assert isinstance(WorkerNotFound("x"), FileNotFoundError)


# ---- attach -----------------------------------------------------------------------------


def test_attach_to_a_valid_file_region(tmp_path):
    c = Client.attach(file=make_region_file(tmp_path), timeout=1)
    assert c.ring_bytes == 4096 and c.chunk_bytes == 64
    c.close()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(magic=b"NOTCHUNK"), "not a chunkring region"),
        (dict(version=2), "layout version mismatch: the region has version 2"),
        (dict(endian=0x04030201), "big-endian peer"),
        (dict(header_bytes=8192), "header page is 8192 bytes"),
        (dict(chunk_bytes=48), "chunk size 48 is not a power of two"),
        (dict(chunk_bytes=16), "chunk size 16"),
        (dict(req_chunks=48), "request ring of 48 chunks"),
        (dict(resp_chunks=1), "response ring of 1 chunks"),
        (dict(req_off=0), "request ring offset 0"),
        (dict(resp_off=L.HEADER_BYTES), "response ring offset"),
        (dict(region_bytes=1 << 20), "region size"),
        (dict(state=L.WORKER_STOPPED), "has stopped"),
    ],
)
def test_attach_refuses_a_bad_header(tmp_path, overrides, message):
    with pytest.raises(ProtocolError, match=message):
        Client.attach(file=make_region_file(tmp_path, **overrides), timeout=1)


def test_attach_refuses_a_region_larger_than_its_file(tmp_path):
    path = make_region_file(tmp_path)
    os.truncate(path, L.HEADER_BYTES + 4096)
    with pytest.raises(ProtocolError, match="exceeds the mapped file"):
        Client.attach(file=path, timeout=1)


def test_attach_times_out_on_a_zero_header(tmp_path):
    path = tmp_path / "zeros"
    path.write_bytes(b"\0" * 3 * 4096)
    path.chmod(0o600)
    with pytest.raises(TimeoutError, match="all zero"):
        Client.attach(file=path, timeout=0.2)


def test_attach_times_out_on_a_missing_region():
    with pytest.raises(TimeoutError, match="does not exist"):
        Client.attach(f"missing-{uuid.uuid4().hex[:8]}", timeout=0.2)


def test_attach_refuses_an_invalid_name():
    with pytest.raises(ValueError, match="invalid region name"):
        Client.attach("../etc/passwd", timeout=0.2)


def test_attach_to_a_running_worker_and_take_turns(worker_bin):
    name = f"att-{uuid.uuid4().hex[:10]}"
    proc = start_standalone_worker(worker_bin, name)
    try:
        first = Client.attach(name, timeout=10)
        assert first.pid == proc.pid
        assert first.echo(b"one") == b"one"
        with pytest.raises(ProtocolError, match="another client"):
            Client.attach(name, timeout=1)
        first.close()  # detaches; the standalone worker keeps serving
        second = Client.attach(name, timeout=10)
        assert second.echo(b"two" * 1000) == b"two" * 1000
        assert second.stats()["requests"] >= 1
        second.shutdown()
        second.close()
        assert proc.wait(10) == 0
        assert not Path(f"/dev/shm/chunkring-{name}").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        Path(f"/dev/shm/chunkring-{name}").unlink(missing_ok=True)


def test_attached_client_notices_a_dead_worker(worker_bin):
    name = f"att-{uuid.uuid4().hex[:10]}"
    proc = start_standalone_worker(worker_bin, name)
    try:
        c = Client.attach(name, timeout=10)
        os.kill(proc.pid, signal.SIGSTOP)
        h = c.submit(L.OP_ECHO, b"x")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with pytest.raises(WorkerDied, match="no longer exists"):
            run_bounded(h.result, 30)
        c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        Path(f"/dev/shm/chunkring-{name}").unlink(missing_ok=True)


def test_spawn_over_a_file_region_leaves_the_file(worker_bin, tmp_path):
    path = tmp_path / "region"
    with Client.spawn(file=path, ring_bytes=SMALL_RING_BYTES, worker=worker_bin) as c:
        assert c.path == path
        data = os.urandom(3 * SMALL_RING_BYTES)
        assert c.echo(data) == data
    assert path.exists()  # a --file region is left in place for inspection (§12)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_scribbled_header_stops_the_worker_and_fails_pending_requests(own_client):
    """Issue 11 item 11: a header overwritten under a running pair used to leave the region
    stuck while the worker looked alive. The worker re-checks the header at every liveness
    check, marks itself WORKER_FAILED and exits non-zero; the client raises WorkerDied."""
    from chunkring.errors import WorkerDied

    c = own_client
    c._region.mm[0:8] = b"SCRIBBLE"
    assert eventually(lambda: c._proc.poll() is not None, 10)
    assert c._proc.returncode != 0
    with pytest.raises(WorkerDied):
        c.echo(b"x", timeout=10)
