"""Nobody gets in through the region (issue 11, items 8, 13, 15; layout.md §12 "Region files
and ownership" and "Attach"): both sides refuse a region that is not the user's own with mode
0600, ``serve --file`` never truncates a file that is not an unserved region of ours, a second
``serve`` on a live region refuses, and of two clients racing to attach exactly one wins.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chunkring.client import Client  # noqa: E402
from chunkring.errors import ProtocolError  # noqa: E402

from chunkring import _layout as L  # noqa: E402
from conftest import SMALL_RING_BYTES, eventually, make_region_file, start_standalone_worker  # noqa: E402

PY = Path(__file__).resolve().parents[1]


def serve_file(worker_bin: str, path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [worker_bin, "serve", "--file", str(path), "--size", str(SMALL_RING_BYTES)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def stop_worker(name: str | None, worker: subprocess.Popen, file: Path | None = None,
                client: Client | None = None) -> None:
    """Shut the standalone worker down through ``client`` (else a client of its own), then
    reap it.

    The worker unlinks its shm object after it answers the shutdown: wait for it to exit
    before the SIGKILL backstop, which would otherwise race that unlink and leave the object
    in /dev/shm (an attached client does not reap a worker it did not spawn)."""
    try:
        c = client if client is not None else Client.attach(name, file=file, timeout=10)
        c.shutdown()
        c.close()
        worker.wait(timeout=20)
    finally:
        worker.kill()
        worker.wait()


def test_attach_refuses_a_region_other_users_could_read_or_a_link_to_one(tmp_path):
    path = make_region_file(tmp_path)
    path.chmod(0o644)
    with pytest.raises(ProtocolError, match="mode 0644, not 0600"):
        Client.attach(file=path, timeout=1)
    path.chmod(0o600)
    link = tmp_path / "link"
    os.symlink(path, link)
    with pytest.raises(ProtocolError, match="symbolic link"):
        Client.attach(file=link, timeout=1)


def test_serve_file_never_truncates_a_file_that_is_not_a_region(worker_bin, tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("precious\n")
    p = serve_file(worker_bin, precious)
    _, err = p.communicate(timeout=20)
    assert p.returncode != 0
    assert b"not a chunkring region" in err
    assert precious.read_text() == "precious\n"
    link = tmp_path / "link"
    os.symlink(precious, link)
    p = serve_file(worker_bin, link)
    p.communicate(timeout=20)
    assert p.returncode != 0
    assert precious.read_text() == "precious\n"


def test_a_second_serve_on_a_live_file_region_refuses_and_the_first_keeps_serving(worker_bin, tmp_path):
    path = tmp_path / "region"
    first = serve_file(worker_bin, path)
    c = None
    try:
        c = Client.attach(file=path, timeout=10)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        size = path.stat().st_size
        second = serve_file(worker_bin, path)
        _, err = second.communicate(timeout=20)
        assert second.returncode != 0
        assert b"in use" in err
        assert path.stat().st_size == size
        assert c.echo(b"still mine") == b"still mine"
    finally:
        stop_worker(None, first, file=path, client=c)


def test_serve_file_makes_an_existing_region_of_ours_owner_only(worker_bin, tmp_path):
    path = make_region_file(tmp_path, worker_pid=2**31 - 1)  # a stale region, no worker
    path.chmod(0o644)
    p = serve_file(worker_bin, path)
    try:
        assert eventually(lambda: L.REGION_HEADER.unpack_from(path.read_bytes())[10] == p.pid, 10)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        stop_worker(None, p, file=path)


def test_a_second_serve_on_a_live_shm_region_refuses(worker_bin):
    name = f"sec-{uuid.uuid4().hex[:12]}"
    first = start_standalone_worker(worker_bin, name)
    c = None
    try:
        c = Client.attach(name, timeout=10)
        second = start_standalone_worker(worker_bin, name)
        _, err = second.communicate(timeout=20)
        assert second.returncode != 0, err
        assert c.echo(b"x") == b"x"
    finally:
        stop_worker(name, first, client=c)


RACER = """
import os, sys, time
sys.path.insert(0, {py!r})
from chunkring import _layout as L
from chunkring.client import Client
from chunkring.errors import ProtocolError
from chunkring._region import Region, region_path
region = Region.attach(region_path({name!r}, None), 10)
c = Client(region, name={name!r})
slot = L.CLIENT_PID_OFFSET // 8
me = os.getpid()
wins = stolen = 0
sys.stdin.readline()  # go: both racers are mapped and ready
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    try:
        c._claim_slot()
    except ProtocolError:
        continue
    wins += 1
    for _ in range(20):  # hold the slot a moment, as a client does
        pass
    if region.client_slot()[0] != me:
        stolen += 1  # the other racer got in while this one held the slot
    region.q[slot] = L.CLIENT_DETACHED << 32  # release: one 8-byte store
print(wins, stolen, flush=True)
"""


def test_of_two_clients_racing_to_attach_exactly_one_wins(worker_bin):
    """Item 15: two processes claim and release the client slot as fast as they can for two
    seconds; a claim is a compare-and-swap, so no claim ever lands on a slot already held.
    The old read-check-write claim let the other racer in (16 of 60 attach races in the
    issue's report; hundreds of steals here)."""
    name = f"race-{uuid.uuid4().hex[:12]}"
    worker = start_standalone_worker(worker_bin, name)
    try:
        Client.attach(name, timeout=10).close()
        code = RACER.format(py=str(PY), name=name, seconds=2.0)
        racers = [
            subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for r in racers:
            r.stdin.write("go\n")
            r.stdin.flush()
        results = [tuple(map(int, r.communicate(timeout=30)[0].split())) for r in racers]
        assert all(wins > 0 for wins, _ in results), results
        assert [stolen for _, stolen in results] == [0, 0], results
    finally:
        stop_worker(name, worker)


def test_the_worker_clears_a_dead_clients_pid(worker_bin):
    """Issue 11 item 17: CLIENT_PID kept a dead client's pid (which a stranger may reuse)."""
    name = f"dead-{uuid.uuid4().hex[:12]}"
    worker = start_standalone_worker(worker_bin, name, "--park-timeout-ms", "10")
    try:
        c = Client.attach(name, timeout=10)
        c.close()
        code = (f"import sys; sys.path.insert(0, {str(PY)!r}); from chunkring.client import "
                f"Client; c = Client.attach({name!r}, timeout=10); print('attached', flush=True); "
                "sys.stdin.readline()")
        racer = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        assert racer.stdout.readline().strip() == "attached"
        racer.kill()
        racer.wait()
        path = Path(f"/dev/shm/chunkring-{name}")

        def slot():
            head = path.read_bytes()[: L.HEADER_BYTES]
            return (int.from_bytes(head[L.CLIENT_PID_OFFSET:L.CLIENT_PID_OFFSET + 4], "little"),
                    int.from_bytes(head[L.CLIENT_STATE_OFFSET:L.CLIENT_STATE_OFFSET + 4], "little"))

        assert eventually(lambda: slot() == (0, L.CLIENT_DETACHED), 10), slot()
    finally:
        stop_worker(name, worker)


def test_a_one_chunk_ring_is_refused_with_the_reason(worker_bin, tmp_path):
    p = subprocess.run([worker_bin, "serve", "--file", str(tmp_path / "r"), "--size", "4096",
                        "--chunk-size", "4096"], capture_output=True, timeout=20)
    assert p.returncode != 0
    assert b"a ring needs at least 2 chunks" in p.stderr, p.stderr
