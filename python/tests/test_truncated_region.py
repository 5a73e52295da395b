"""A region truncated under a running pair by another process (issue 11 item 8, layout.md §12
"Truncated region"): neither process dies of a signal.

Four variants (shm and ``--file`` × truncated to zero and to half), each with a client that
streams echo requests while it happens and with one that is idle: the client runs as its own
process (so a SIGBUS would show as a negative return code, not kill pytest), raises
``RegionLost`` for the request in flight or its next call within ``BOUND_S``, and exits
normally; the worker exits with status 1 and "region truncated by another process" on
stderr, not of a signal; no shm object is left in ``/dev/shm``.
"""

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

from chunkring import _layout as L

#: How long the client may take to raise (generous: the client notices within one 10 ms wait
#: timeout plus a liveness check; the machine may be loaded).
BOUND_S = 10.0
RING = 64 * 1024
REGION_BYTES = L.HEADER_BYTES + 2 * RING
PYTHON_DIR = Path(__file__).resolve().parents[1]

#: The client process: attaches, streams (or idles), reports how its calls ended.
CLIENT = textwrap.dedent("""
    import concurrent.futures as cf, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from chunkring import Client, RegionLost
    mode, where = sys.argv[2], sys.argv[3]
    kw = {"file": where} if mode == "file" else {"name": where}
    c = Client.attach(timeout=20, **kw)
    for _ in range(50):
        assert c.echo(b"warm-up" * 10) == b"warm-up" * 10
    print("ready", flush=True)
    if sys.argv[4] == "idle":
        sys.stdin.readline()  # the test truncates, waits for the worker to exit, then says go
    t0 = time.monotonic()
    n = 0
    try:
        while time.monotonic() - t0 < 60:
            handles = [c.submit(1, b"p" * (n % 300)) for _ in range(8)]
            if n % 2:  # as futures: the background receiver thread drains the ring too
                cf.wait(handles, timeout=30)
            assert c.echo(b"s" * (n % 5000)) == b"s" * (n % 5000)
            for h in handles:
                h.result(timeout=30)
            n += 1
        print("never-lost", n, flush=True)
    except RegionLost as e:
        print("lost", round(time.monotonic() - t0, 3), n, repr(e)[:200], flush=True)
        try:
            c.echo(b"again", timeout=5)
            print("later-call-succeeded", flush=True)
        except RegionLost:
            print("later-call-lost", flush=True)
    except BaseException as e:
        print("other", repr(e)[:300], flush=True)
    c.close()
    print("closed", flush=True)
""")


def _truncate(path: Path, size: int) -> None:
    # Another process, as the issue found it: coreutils truncate(1).
    subprocess.run(["truncate", "-s", str(size), str(path)], check=True)


@pytest.mark.parametrize("mode", ["shm", "file"])
@pytest.mark.parametrize("to", ["zero", "half"])
@pytest.mark.parametrize("client_is", ["streaming", "idle"])
def test_truncating_the_region_kills_neither_process(worker_bin, tmp_path, mode, to, client_is):
    name = f"trunc-{uuid.uuid4().hex[:12]}"
    if mode == "shm":
        place, where = ["--name", name], name
        path = Path("/dev/shm") / f"chunkring-{name}"
    else:
        path = tmp_path / "region"
        place, where = ["--file", str(path)], str(path)
    worker = subprocess.Popen([worker_bin, "serve", *place, "--size", str(RING)],
                              stderr=subprocess.PIPE, text=True)
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(PYTHON_DIR), mode, where,
                               client_is], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert client.stdout.readline().strip() == "ready"
        if client_is == "streaming":
            time.sleep(0.2)  # let it stream (not a threshold: any moment of streaming will do)
        _truncate(path, 0 if to == "zero" else REGION_BYTES // 2)
        if client_is == "idle":
            # The worker notices on its own (a fault, or its size check at a liveness
            # check), then the client's next call meets the lost region.
            worker.wait(timeout=BOUND_S * 3)
            client.stdin.write("go\n")
            client.stdin.flush()
        t0 = time.monotonic()
        out, _ = client.communicate(timeout=BOUND_S * 3)
        elapsed = time.monotonic() - t0
        werr = worker.communicate(timeout=BOUND_S * 3)[1]
    finally:
        for p in (client, worker):
            if p.poll() is None:
                p.kill()
                p.wait()
    lines = out.splitlines()
    assert client.returncode == 0, f"client returncode {client.returncode} (negative: a signal); {out}"
    assert lines[0].split()[0] == "lost", out
    assert elapsed <= BOUND_S, (elapsed, out)
    assert "RegionLost" in lines[0] and "truncated by another process" in lines[0], out
    assert lines[1:] == ["later-call-lost", "closed"], out
    assert worker.returncode == 1, f"worker returncode {worker.returncode}; stderr: {werr}"
    assert "region truncated by another process" in werr, werr
    if mode == "shm":
        assert not path.exists(), f"{path} left behind"


#: A process that protects one mapping and faults on another, unprotected one.
NOT_OURS = textwrap.dedent("""
    import ctypes, mmap, os, sys
    sys.path.insert(0, sys.argv[1])
    from chunkring import _sigbus
    def mapped(path, size):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    _, ours = mapped(sys.argv[2], 4096)
    _sigbus.register(ctypes.addressof(ctypes.c_char.from_buffer(ours)), 4096)
    fd, other = mapped(sys.argv[3], 8192)
    os.ftruncate(fd, 0)
    print("touching", flush=True)
    if sys.argv[4] == "fault":
        other[4100:4101] = b"x"  # past the end of its file, and not a registered region
    else:
        os.kill(os.getpid(), 7)  # kill -BUS: sent, not a fault
    print("survived", flush=True)
""")


@pytest.mark.parametrize("how", ["fault", "kill"])
def test_a_sigbus_that_is_not_ours_still_kills_the_client_process(tmp_path, how):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    p = subprocess.run([sys.executable, "-c", NOT_OURS, str(PYTHON_DIR), str(tmp_path / "a"),
                        str(tmp_path / "b"), how], capture_output=True, text=True, timeout=60,
                       env=env)
    assert p.stdout == "touching\n", (p.stdout, p.stderr)
    assert p.returncode == -signal.SIGBUS, (p.returncode, p.stderr)
