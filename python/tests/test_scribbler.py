"""The scribbler test (issue 11, "Continuous evidence"): while a client streams echo requests of
random sizes through a worker started with frame checksums (layout.md §6.6), a second process
writes random bytes into random places of the request and response rings, or (separately)
into the header's non-control words (0x000..0x200: identity, sizes, pids, states, heartbeat,
stats; the ring indexes and futex words are left alone).

What must hold, and is asserted:

* every request is answered exactly once or raised: no request is left neither, every wait is
  bounded (a request not answered within ``WAIT_S`` counts as a hang and fails the test);
* no wrong echo is ever accepted: a result is what was sent, or an exception;
* the worker stays alive, or stops with a clear reported reason (an exit code and a stderr
  line), never by a signal;
* the client process never dies: it runs in a process of its own (the driver below), which
  must exit 0 after printing its figures.

Bounded in the suite (about 10 s); ``CHUNKRING_SCRIBBLE_SECONDS=120`` runs each mode that long
(the figures are printed either way, for the closing note). Run by hand::

    CHUNKRING_SCRIBBLE_SECONDS=120 .venv/bin/python -m pytest python/tests/test_scribbler.py -s
"""

from __future__ import annotations

import json
import mmap
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = HERE.parent
#: Longest wait for one answer: a request not answered or failed by then is a hang.
WAIT_S = 20.0
RING_BYTES = 64 * 1024
CHUNK_BYTES = 64
#: The header's non-control words: everything before REQ_HEAD_OFFSET (0x200).
HEADER_SCRIBBLE_END = 0x200


# ---- the scribbler process ------------------------------------------------------------------


def scribble(path: str, lo: int, hi: int, seconds: float, seed: int, mean_gap_s: float) -> None:
    """Write 1-8 random bytes at random offsets in ``[lo, hi)`` of the region file, with random
    gaps averaging ``mean_gap_s``, for ``seconds``; print how many writes were made."""
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, hi)
    os.close(fd)
    rng = random.Random(seed)
    end = time.monotonic() + seconds
    writes = 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped early: still report
    try:
        while time.monotonic() < end:
            k = rng.randint(1, 8)
            at = rng.randrange(lo, hi - k)
            mm[at : at + k] = rng.randbytes(k)
            writes += 1
            time.sleep(rng.expovariate(1 / mean_gap_s))
    finally:
        print(writes, flush=True)


# ---- the client process (the driver) -----------------------------------------------------------


def _size(rng: random.Random) -> int:
    """Mostly small echoes, some of several chunks, some fragmented (a frame is at most a
    quarter of the 64 KiB ring)."""
    r = rng.random()
    if r < 0.5:
        return rng.randrange(0, 200)
    if r < 0.8:
        return rng.randrange(200, 8000)
    if r < 0.95:
        return rng.randrange(8000, 40_000)
    return rng.randrange(40_000, 200_000)


def _kind(exc: BaseException) -> str:
    from chunkring import RequestError

    if isinstance(exc, RequestError):
        return f"RequestError.{exc.name}"
    name = type(exc).__name__
    if name == "ProtocolError":  # which rule the worker (or the client) saw broken
        text = str(exc)
        for key in ("bad frame magic", "runs past", "fragment", "status", "flag"):
            if key in text:
                return f"{name} ({key})"
        return f"{name} ({text[:60]})"
    return name


def drive(mode: str, seconds: float, seed: int, crc: bool = True) -> dict:
    """Sessions of: spawn a ``--crc`` worker, start a scribbler on its region, stream echoes
    with up to 8 in flight until the time is up or the worker is gone; then the next session.
    Returns the figures. ``crc=False`` (by hand only: ``... drive rings 30 1 nocrc``) is the
    control run that shows what the checksums catch."""
    from chunkring import Client, WorkerDied
    from chunkring import _layout as L
    from chunkring._process import read_all

    rng = random.Random(seed)
    figures: dict = {"mode": mode, "crc": crc, "seconds": seconds, "seed": seed, "sessions": 0,
                     "requests": 0, "answered_ok": 0, "wrong_accepted": 0, "hangs": 0,
                     "raised": Counter(), "bytes_echoed": 0, "scribbles": 0,
                     "worker_outcomes": Counter(), "worker_stop_reasons": [],
                     "pending_left": 0}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        figures["sessions"] += 1
        c = Client.spawn(ring_bytes=RING_BYTES, chunk_bytes=CHUNK_BYTES, crc=crc)
        region = c._region
        lo, hi = ((L.HEADER_BYTES, region.region_bytes) if mode == "rings"
                  else (0, HEADER_SCRIBBLE_END))
        left = max(0.5, end - time.monotonic())
        scribbler = subprocess.Popen(
            [sys.executable, __file__, "scribble", str(region.path), str(lo), str(hi), str(left),
             str(rng.randrange(1 << 30)), "0.004" if mode == "rings" else "0.05"],
            stdout=subprocess.PIPE, text=True)
        inflight: deque = deque()
        dead = False

        def settle(h, body) -> None:
            nonlocal dead
            try:
                got = h.result(timeout=WAIT_S)
            except BaseException as exc:  # every failure is counted by kind
                kind = _kind(exc)
                if kind == "RequestTimeout":
                    figures["hangs"] += 1
                figures["raised"][kind] += 1
                dead = dead or isinstance(exc, WorkerDied)
                return
            if got == body:
                figures["answered_ok"] += 1
                figures["bytes_echoed"] += len(body)
            else:
                figures["wrong_accepted"] += 1

        while time.monotonic() < end and not dead:
            body = rng.randbytes(_size(rng))
            figures["requests"] += 1
            try:
                inflight.append((c.submit(L.OP_ECHO, body, timeout=WAIT_S), body))
            except BaseException as exc:  # raised before a handle existed: counted as raised
                figures["raised"][_kind(exc)] += 1
                dead = isinstance(exc, WorkerDied)
            while len(inflight) >= 8 or (dead and inflight):
                settle(*inflight.popleft())
        while inflight:
            settle(*inflight.popleft())
        figures["pending_left"] += len(c._receiver.pending)
        scribbler.terminate()
        out, _ = scribbler.communicate(timeout=10)
        figures["scribbles"] += int(out.split()[0]) if out.split() else 0
        # The worker's own state before close (which stops it, or kills it after 5 s).
        rc = c._proc.poll()
        if rc is None:
            figures["worker_outcomes"]["alive"] += 1
        else:
            figures["worker_outcomes"][f"exit {rc}"] += 1
            # The line saying why, its values masked so that the reasons can be counted.
            lines = [ln for ln in read_all(c._stderr_file).split("\n") if "stopping" in ln]
            masked = re.sub(r"\[[^\]]*\]|\{[^}]*\}?", "[..]", lines[-1]) if lines else ""
            figures["worker_stop_reasons"].append(re.sub(r"0x[0-9a-f]+|\d+", "N", masked)[:140])
        c.close()
    figures["raised"] = dict(figures["raised"])
    figures["worker_outcomes"] = dict(figures["worker_outcomes"])
    figures["worker_stop_reasons"] = sorted(set(figures["worker_stop_reasons"]))
    return figures


# ---- the tests ---------------------------------------------------------------------------------


def _run(mode: str, seconds: float, worker_bin: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR), CHUNKRING_WORKER=worker_bin)
    proc = subprocess.run(
        [sys.executable, __file__, "drive", mode, str(seconds), str(random.randrange(1 << 30))],
        env=env, capture_output=True, text=True, timeout=seconds + 120)
    assert proc.returncode == 0, (
        f"the client process ended with {proc.returncode} (negative: a signal)\n{proc.stderr[-4000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nscribbler figures ({mode}): {json.dumps(figures)}")
    return figures


def _check(f: dict) -> None:
    raised = sum(f["raised"].values())
    assert f["wrong_accepted"] == 0, f
    assert f["hangs"] == 0, f
    assert f["pending_left"] == 0, f
    assert f["answered_ok"] + raised == f["requests"], f  # each exactly once, one way or the other
    assert f["scribbles"] > 0, f
    for outcome in f["worker_outcomes"]:
        assert outcome == "alive" or int(outcome.split()[1]) > 0, f  # an exit code, never a signal
    if any(o != "alive" for o in f["worker_outcomes"]):
        assert all(f["worker_stop_reasons"]), f  # and it said why


def _seconds(default: float) -> float:
    return float(os.environ.get("CHUNKRING_SCRIBBLE_SECONDS", default))


def test_scribbling_the_rings_never_yields_a_wrong_echo(worker_bin):
    f = _run("rings", _seconds(6.0), worker_bin)
    _check(f)
    assert f["answered_ok"] > 0, f
    assert f["worker_outcomes"] == {"alive": f["sessions"]}, f  # ring scribbles never stop it
    assert f["raised"], f  # the scribbles were noticed (CHECKSUM or a response check)


def test_scribbling_the_header_stops_the_worker_with_a_reason_or_is_harmless(worker_bin):
    f = _run("header", _seconds(4.0), worker_bin)
    _check(f)


if __name__ == "__main__":
    if sys.argv[1] == "scribble":
        path, lo, hi, secs, seed, gap = sys.argv[2:8]
        scribble(path, int(lo), int(hi), float(secs), int(seed), float(gap))
    else:
        result = drive(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]),
                       crc=sys.argv[5:6] != ["nocrc"])
        print(json.dumps(result), flush=True)
