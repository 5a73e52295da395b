"""Echo round trip and pipelined throughput: chunkring vs the peers, in one run.

Measures, for payloads of 64 B, 1 KiB and 64 KiB:

* ``0-floor-rust-spin``: the bare floor issue 10's goals are measured against: this Python
  process writes the request into a shared ``mmap`` and stores one 8-byte sequence word; a Rust
  process (``examples/floor_echo.rs``) spinning on that word copies the request out, copies it
  into the response area and stores the response word (no framing, no waiting, no liveness).
  Its pipelined rate comes from the same pair passing 64 B messages through a bare ring of
  ``--window`` slots each way. When cargo or the build is unavailable it is ``NOT RUN`` and the
  goals fall back to the Python floor, which the output and the JSON say;
* ``0b-floor-python-spin``: the same with a Python responder (two Python processes): the floor
  earlier runs reported (as ``0-mmap-pingpong-floor``), kept as a reference row;
* ``1-chunkring``: ``Client.spawn()`` + ``client.echo`` (round trip) and ``submit`` with a
  window of requests in flight (pipelined); also ``submit_many`` in batches of 64 frames and
  ``client.map`` with the same window;
* ``2-pipe``: ``multiprocessing.Pipe`` to an echo child process (``send_bytes``/``recv_bytes``);
* ``3-unix-socket``: a Unix stream socket with length-prefixed frames to an echo process;
* ``4-pyzmq-ipc``: pyzmq PAIR sockets over ``ipc://``;
* ``5-faster-fifo``: two faster-fifo queues (request, response);
* ``6-subprocess-per-call``: ``subprocess.run(["cat"])`` per request (round trips only);
* ``7-iceoryx2-pubsub``: iceoryx2's Python bindings, a publish-subscribe service each way,
  both sides busy-polling (round trips only).

Peers 4, 5 and 7 come from ``benches/python/requirements.txt`` and are reported as
``NOT MEASURED`` when absent.

Round trip: p50 and p99 of single request → response latencies. Pipelined: frames/s with up
to ``--window`` requests in flight. It also times the ``ctypes`` fence call ([W2]/[W5]).
Prints a table with ratios against chunkring and the exact command, and writes
``bench-results/echo.json``.

    .venv/bin/python benches/python/echo_peers.py [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import json
import mmap
import multiprocessing as mp
import os
import platform
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

from chunkring import Client, _barrier  # noqa: E402 (after the sys.path insert)
from chunkring import _layout as L  # noqa: E402
from cargo_example import example_bin  # noqa: E402 (benches/python is the script's folder)

SIZES = (64, 1024, 64 * 1024)
ns = time.perf_counter_ns


def percentiles(samples: list[int]) -> dict:
    s = sorted(samples)
    def pick(q: float) -> int:
        return s[min(len(s) - 1, int(q * len(s)))]

    return {"p50_us": pick(0.50) / 1e3, "p99_us": pick(0.99) / 1e3, "n": len(s)}


def timed_echoes(echo, data: bytes, n: int) -> list[int]:
    """``n`` timed round trips ``echo(data)`` (ns each) after ``n // 10`` untimed warm-up
    ones; asserts the last answer equals ``data``."""
    samples = []
    for i in range(n + n // 10):
        t0 = ns()
        back = echo(data)
        t1 = ns()
        if i >= n // 10:
            samples.append(t1 - t0)
    assert back == data
    return samples


# ---- 0: the bare floor: Python mmap <-> a spinning peer (Rust, or Python) ------------------
# Layout of the shared page (u64 words): [0] request seq, [8] response seq, [9] length, [16]
# set by a Rust peer once it spins; [4096:...] request bytes, [4096 + MAXB:...] response bytes.
# The pipelined ring uses [0] as the published count, [8] as the answered count and 64-byte
# slots from 4096 (requests) and 4096 + 64 * window (responses). examples/floor_echo.rs says
# the same.
MAXB = 64 * 1024
FLOOR_SECONDS = 600  # a floor peer exits by itself after this long, so it never outlives us


def _floor_child(path: str, stop_at: float) -> None:
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, 4096 + 2 * MAXB)
    q = memoryview(mm)[:4096].cast("Q")
    seen = 0
    while time.monotonic() < stop_at:
        s = q[0]
        if s == seen:
            continue
        if s == 0xFFFFFFFFFFFFFFFF:
            break
        n = q[9]
        data = mm[4096 : 4096 + n]  # copy out, as a real consumer must
        mm[4096 + MAXB : 4096 + MAXB + n] = data
        seen = s
        q[8] = s
    q.release()
    mm.close()
    os.close(fd)


def _start_floor(path: str, q, rust_exe: str | None, py_target, py_args: tuple, rust_args: list):
    """Start a floor peer on the created ``path``: ``rust_exe`` (``floor_echo``) with
    ``rust_args`` and wait until it says it spins (word [16]), or fork ``py_target``."""
    if rust_exe is None:
        child = mp.get_context("fork").Process(target=py_target, args=(path, *py_args))
        child.start()
        return child
    child = subprocess.Popen([rust_exe, *rust_args])
    deadline = time.monotonic() + 30
    while q[16] != 1:
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            child.wait()
            raise RuntimeError(f"floor_echo did not start (exit code {child.returncode})")
        time.sleep(0.001)
    return child


def _stop_floor(q, child, mm, fd: int, path: str) -> None:
    """Tell a floor child (if it started) to stop (the all-ones word), wait for it, unmap and
    unlink."""
    q[0] = 0xFFFFFFFFFFFFFFFF
    if isinstance(child, subprocess.Popen):
        child.wait(10)
    elif child is not None:
        child.join(10)
    q.release()
    mm.close()
    os.close(fd)
    os.unlink(path)


def bench_floor(iters: int, rust_exe: str | None = None, sizes=SIZES) -> dict:
    """Round trips through the bare floor: a Rust peer (``rust_exe``, ``floor_echo``) or, when
    None, a forked Python one (``_floor_child``). Asserts each size's last answer."""
    path = f"/dev/shm/chunkring-bench-floor-{os.getpid()}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, 4096 + 2 * MAXB)
    mm = mmap.mmap(fd, 4096 + 2 * MAXB)
    q = memoryview(mm)[:4096].cast("Q")
    child = None
    out = {}
    seq = 0
    try:
        child = _start_floor(path, q, rust_exe, _floor_child,
                             (time.monotonic() + FLOOR_SECONDS,),
                             ["roundtrip", path, str(FLOOR_SECONDS)])
        for size in sizes:
            data = os.urandom(size)
            samples = []
            for i in range(iters + iters // 10):
                t0 = ns()
                mm[4096 : 4096 + size] = data
                q[9] = size
                seq += 1
                q[0] = seq
                while q[8] != seq:
                    pass
                back = mm[4096 + MAXB : 4096 + MAXB + size]
                t1 = ns()
                if i >= iters // 10:
                    samples.append(t1 - t0)
            assert back == data
            out[size] = {"samples": samples}
    finally:
        _stop_floor(q, child, mm, fd, path)
    return out


def _floor_pipe_child(path: str, window: int) -> None:
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, 4096 + 2 * window * 64)
    q = memoryview(mm)[:4096].cast("Q")
    req, resp = 4096, 4096 + window * 64
    seen = 0
    while True:
        t = q[0]
        if t == 0xFFFFFFFFFFFFFFFF:
            break
        while seen < t:
            i = (seen % window) * 64
            mm[resp + i : resp + i + 64] = mm[req + i : req + i + 64]
            seen += 1
        q[8] = seen
    q.release()
    mm.close()
    os.close(fd)


def bench_floor_pipelined(frames: int, window: int, rust_exe: str | None = None) -> float:
    """The floor's pipelined rate: 64 B messages through a bare ring of ``window`` 64-byte
    slots each way, this Python process on one side and a Rust peer (``rust_exe``) or, when
    None, a forked Python one on the other, every message published with its own index store
    and every answer copied out (no framing, no waiting, no liveness)."""
    path = f"/dev/shm/chunkring-bench-floorpipe-{os.getpid()}"
    size = 4096 + 2 * window * 64
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, size)
    mm = mmap.mmap(fd, size)
    q = memoryview(mm)[:4096].cast("Q")
    req, resp = 4096, 4096 + window * 64
    data = os.urandom(64)
    child = None
    try:
        child = _start_floor(path, q, rust_exe, _floor_pipe_child, (window,),
                             ["pipe", path, str(window), str(FLOOR_SECONDS)])
        sent = recv = 0
        t0 = ns()
        while recv < frames:
            while sent < frames and sent - recv < window:
                i = (sent % window) * 64
                mm[req + i : req + i + 64] = data
                sent += 1
                q[0] = sent
            done = q[8]
            while recv < done:
                i = (recv % window) * 64
                back = mm[resp + i : resp + i + 64]
                recv += 1
        dt = ns() - t0
        assert back == data
    finally:
        _stop_floor(q, child, mm, fd, path)
    return frames / (dt / 1e9)


# ---- 1: chunkring -------------------------------------------------------------------------
def bench_chunkring(iters: int, frames: int, window: int, worker_args=()) -> dict:
    out = {}
    with Client.spawn(args=worker_args) as c:
        for size in SIZES:
            data = os.urandom(size)
            samples = timed_echoes(c.echo, data, iters)
            n = frames if size <= 1024 else max(1000, frames // 20)
            submit = c.submit
            inflight = deque()
            t0 = ns()
            for _ in range(n):
                inflight.append(submit(L.OP_ECHO, data))
                if len(inflight) >= window:
                    inflight.popleft().result()
            while inflight:
                inflight.popleft().result()
            dt = ns() - t0
            # The same, published in batches of 64 frames per tail store (submit_many).
            batch = [(L.OP_ECHO, data, None)] * 64
            rounds = max(1, n // 64)
            pending = deque()
            t0 = ns()
            for _ in range(rounds):
                pending.extend(c.submit_many(batch))
                while len(pending) >= window:
                    pending.popleft().result()
            while pending:
                pending.popleft().result()
            dt_batch = ns() - t0
            # client.map: batches of half a window per tail store, answers drained as they come.
            t0 = ns()
            for back in c.map(L.OP_ECHO, itertools.repeat(data, n), window=window):
                pass
            dt_map = ns() - t0
            assert back == data
            out[size] = {"samples": samples, "fps": [n / (dt / 1e9)], "pipelined_n": n,
                         "batch64_fps": [rounds * 64 / (dt_batch / 1e9)],
                         "map_fps": [n / (dt_map / 1e9)]}
        out["stats"] = c.stats()
    return out


# ---- 2: multiprocessing.Pipe ---------------------------------------------------------------
def _pipe_child(conn) -> None:
    recv, send = conn.recv_bytes, conn.send_bytes
    while True:
        b = recv()
        if b == b"STOP":
            break
        send(b)


def bench_pipe(iters: int, frames: int, window: int) -> dict:
    parent, child_end = mp.Pipe()
    child = mp.get_context("fork").Process(target=_pipe_child, args=(child_end,))
    child.start()
    try:
        # A socketpair buffer holds only so much (both directions full = deadlock): keep the
        # bytes in flight within 128 KiB; the window used is recorded.
        return _send_recv_bench(parent.send_bytes, parent.recv_bytes, iters, frames, window,
                                cap_bytes=128 * 1024)
    finally:
        parent.send_bytes(b"STOP")
        child.join(10)


# ---- a peer that is a pair of send/recv callables -----------------------------------------
def _send_recv_bench(send, recv, iters: int, frames: int, window: int, cap_bytes=None) -> dict:
    """Round-trip samples and pipelined frames/s for one peer given as ``send(bytes)`` and
    ``recv() -> bytes``. ``cap_bytes`` bounds the bytes in flight for stream peers whose
    kernel buffers would otherwise fill in both directions and deadlock."""
    out = {}
    for size in SIZES:
        data = os.urandom(size)
        samples = []
        for i in range(iters + iters // 10):
            t0 = ns()
            send(data)
            back = recv()
            t1 = ns()
            if i >= iters // 10:
                samples.append(t1 - t0)
        assert back == data
        n = frames if size <= 1024 else max(1000, frames // 20)
        w = window if cap_bytes is None else max(1, min(window, cap_bytes // (size + 64)))
        inflight = 0
        t0 = ns()
        for _ in range(n):
            send(data)
            inflight += 1
            if inflight >= w:
                recv()
                inflight -= 1
        while inflight:
            recv()
            inflight -= 1
        dt = ns() - t0
        out[size] = {"samples": samples, "fps": [n / (dt / 1e9)], "pipelined_n": n,
                     "pipelined_window": w}
    return out


# ---- 3: a Unix stream socket to an echo process ----------------------------------------------
def _recv_exact(sock, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise EOFError("peer closed")
        got += k
    return bytes(buf)


def _socket_child(sock) -> None:
    while True:
        (n,) = struct.unpack("<I", _recv_exact(sock, 4))
        if n == 0xFFFFFFFF:
            break
        sock.sendall(struct.pack("<I", n) + _recv_exact(sock, n))


def bench_unix_socket(iters: int, frames: int, window: int) -> dict:
    parent, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = mp.get_context("fork").Process(target=_socket_child, args=(child_end,))
    child.start()
    try:
        def send(b):
            parent.sendall(struct.pack("<I", len(b)) + b)

        def recv():
            (n,) = struct.unpack("<I", _recv_exact(parent, 4))
            return _recv_exact(parent, n)

        return _send_recv_bench(send, recv, iters, frames, window, cap_bytes=128 * 1024)
    finally:
        parent.sendall(struct.pack("<I", 0xFFFFFFFF))
        child.join(10)


# ---- 4: pyzmq PAIR sockets over ipc:// ------------------------------------------------------
def _zmq_child(addr: str) -> None:
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    s.connect(addr)
    while True:
        b = s.recv(copy=True)
        if b == b"STOP":
            break
        s.send(b)
    s.close(linger=0)
    ctx.term()


def bench_zmq(iters: int, frames: int, window: int) -> dict:
    import zmq
    addr = f"ipc:///tmp/chunkring-bench-zmq-{os.getpid()}"
    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    s.bind(addr)
    child = mp.get_context("spawn").Process(target=_zmq_child, args=(addr,))
    child.start()
    try:
        return _send_recv_bench(s.send, s.recv, iters, frames, window)
    finally:
        s.send(b"STOP")
        child.join(10)
        s.close(linger=0)
        ctx.term()


# ---- 5: faster-fifo queues --------------------------------------------------------------------
def _fifo_child(q_in, q_out) -> None:
    while True:
        b = q_in.get(timeout=60)
        if b == b"STOP":
            break
        q_out.put(b, timeout=60)


def bench_faster_fifo(iters: int, frames: int, window: int) -> dict:
    from faster_fifo import Queue
    q_req, q_resp = Queue(max_size_bytes=8 << 20), Queue(max_size_bytes=8 << 20)
    child = mp.get_context("fork").Process(target=_fifo_child, args=(q_req, q_resp))
    child.start()
    try:
        return _send_recv_bench(lambda b: q_req.put(b, timeout=60), lambda: q_resp.get(timeout=60),
                                iters, frames, window, cap_bytes=4 << 20)
    finally:
        q_req.put(b"STOP")
        child.join(10)


# ---- 6: one subprocess per call ---------------------------------------------------------------
def bench_subprocess(iters: int) -> dict:
    """``subprocess.run(["cat"])`` per request: what a helper spawned per call costs."""
    out = {}
    for size in SIZES:
        data = os.urandom(size)
        samples = []
        for _ in range(max(20, iters // 25)):
            t0 = ns()
            back = subprocess.run(["cat"], input=data, capture_output=True, check=True).stdout
            samples.append(ns() - t0)
        assert back == data
        out[size] = {"samples": samples}
    return out



# ---- 7: iceoryx2's Python bindings, publish-subscribe both ways -----------------------------
def _iox_service(iox2, node, name):
    return (node.service_builder(iox2.ServiceName.new(name))
            .publish_subscribe(iox2.Slice[ctypes.c_uint8]).open_or_create())


def _iox_publisher(iox2, service):
    return (service.publisher_builder().initial_max_slice_len(64)
            .allocation_strategy(iox2.AllocationStrategy.PowerOfTwo).create())


def _iox_send(publisher, b: bytes) -> None:
    sample = publisher.loan_slice_uninit(len(b))
    sample.payload().as_memory_view().cast("B")[:] = b
    sample.assume_init().send()


def _iox_recv(subscriber) -> bytes:
    while True:  # busy-poll: iceoryx2 pub/sub has no blocking receive of its own
        sample = subscriber.receive()
        if sample is not None:
            b = bytes(sample.payload().as_memory_view())
            sample.delete()
            return b


def _iox_child(tag: str, ready) -> None:
    import iceoryx2 as iox2
    iox2.set_log_level_from_env_or(iox2.LogLevel.Error)
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    req = _iox_service(iox2, node, f"{tag}-req").subscriber_builder().create()
    resp = _iox_publisher(iox2, _iox_service(iox2, node, f"{tag}-resp"))
    ready.set()
    while True:
        data = _iox_recv(req)
        if data == b"STOP":
            break
        _iox_send(resp, data)


def bench_iceoryx2(iters: int) -> dict:
    """Round trips only: both sides busy-poll (no blocking wait), default subscriber buffers
    (a pipelined run would need tuned buffers and back-pressure; not measured)."""
    import iceoryx2 as iox2
    iox2.set_log_level_from_env_or(iox2.LogLevel.Error)
    tag = f"chunkring-bench-iox-{os.getpid()}"
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    req = _iox_publisher(iox2, _iox_service(iox2, node, f"{tag}-req"))
    resp = _iox_service(iox2, node, f"{tag}-resp").subscriber_builder().create()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=_iox_child, args=(tag, ready))
    child.start()
    ready.wait(60)
    time.sleep(0.2)  # let the child's subscriber connect before the first sample
    out = {}
    try:
        for size in SIZES:
            data = os.urandom(size)
            samples = []
            for i in range(iters + iters // 10):
                t0 = ns()
                _iox_send(req, data)
                back = _iox_recv(resp)
                t1 = ns()
                if i >= iters // 10:
                    samples.append(t1 - t0)
            assert back == data
            out[size] = {"samples": samples}
    finally:
        _iox_send(req, b"STOP")
        child.join(10)
    return out


# ---- the ctypes fence ----------------------------------------------------------------------
def bench_fence(n: int = 200_000) -> dict:
    fence = _barrier.barrier_memory

    def nothing():
        return None

    best = {}
    for name, fn in (("barrier_memory", fence), ("empty_python_call", nothing)):
        runs = []
        for _ in range(5):
            t0 = ns()
            for _ in range(n):
                fn()
            runs.append((ns() - t0) / n)
        best[name] = min(runs)
    return {
        "libatomic": _barrier.FENCE_AVAILABLE,
        "fence_call_ns": best["barrier_memory"],
        "empty_python_call_ns": best["empty_python_call"],
        "fence_cost_over_empty_call_ns": best["barrier_memory"] - best["empty_python_call"],
    }


def plot_cdf(peers: dict, out_dir: Path) -> None:
    """``bench-results/echo_cdf.png``: the 64 B round-trip latency CDF of every peer."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("NOT PLOTTED: matplotlib is not installed (benches/python/requirements.txt)")
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, res in peers.items():
        cdf = res[64].get("cdf_us")
        if cdf:
            ax.plot(cdf, [q / 100 for q in range(100)], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("64 B round trip (µs, log)")
    ax.set_ylabel("fraction of calls")
    ax.set_title("64 B echo round-trip latency CDF, one run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "echo_cdf.png", dpi=110)
    plt.close(fig)
    print(f"wrote {os.path.relpath(out_dir / 'echo_cdf.png', os.getcwd())}")


RUST_FLOOR = "0-floor-rust-spin"
PY_FLOOR = "0b-floor-python-spin"


def floor_ratios(ring: dict, floor: dict, floor_pipe: list, tag: str) -> dict:
    """Issue 10's three goal ratios of chunkring (``ring``) against one floor row and its
    pipelined rounds; keys carry ``tag`` (``""`` for the goal floor, ``"python_"``)."""
    fp = sorted(floor_pipe)[len(floor_pipe) // 2]
    return {
        f"roundtrip_64_over_{tag}floor": ring[64]["roundtrip"]["p50_us"]
        / floor[64]["roundtrip"]["p50_us"],
        f"{tag}floor_pipelined_64_frames_per_s": fp,
        f"{tag}floor_pipelined_rounds": floor_pipe,
        f"submit_loop_64_over_{tag}floor_pipelined": ring[64]["pipelined_frames_per_s"] / fp,
        f"map_64_over_{tag}floor_pipelined": ring[64]["pipelined_map_frames_per_s"] / fp,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=5000, help="round trips per size")
    ap.add_argument("--frames", type=int, default=50_000, help="pipelined frames (64 B, 1 KiB)")
    ap.add_argument("--window", type=int, default=256, help="pipelined requests in flight")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; samples are pooled")
    ap.add_argument("--worker-args", default="",
                    help='extra `chunkring serve` flags, e.g. "--spin-us 0"')
    ap.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    ap.add_argument("--out", default=str(REPO / "bench-results" / "echo.json"))
    a = ap.parse_args()
    if a.quick:
        a.iters, a.frames, a.rounds = 500, 5000, 1
    command = " ".join([os.path.relpath(sys.executable, os.getcwd()), *sys.argv])

    fence = bench_fence()
    # The floor needs the Rust responder; without it the goals fall back to the Python
    # floor, and the output and the JSON say so.
    floor_exe, floor_not_run = example_bin("floor_echo")
    if floor_exe is None:
        print(f"NOT RUN: floor_echo ({floor_not_run}); the goals below use {PY_FLOOR} instead")
    benches = {
        RUST_FLOOR: lambda: bench_floor(a.iters, floor_exe),
        PY_FLOOR: lambda: bench_floor(a.iters),
        "1-chunkring": lambda: bench_chunkring(a.iters, a.frames, a.window, a.worker_args.split()),
        "2-pipe": lambda: bench_pipe(a.iters, a.frames, a.window),
        "3-unix-socket": lambda: bench_unix_socket(a.iters, a.frames, a.window),
        "4-pyzmq-ipc": lambda: bench_zmq(a.iters, a.frames, a.window),
        "5-faster-fifo": lambda: bench_faster_fifo(a.iters, a.frames, a.window),
        "6-subprocess-per-call": lambda: bench_subprocess(a.iters),
        "7-iceoryx2-pubsub": lambda: bench_iceoryx2(a.iters),
    }
    # Peers from PyPI (benches/python/requirements.txt) are skipped, and said so, if absent.
    for name, module in (("4-pyzmq-ipc", "zmq"), ("5-faster-fifo", "faster_fifo"),
                         ("7-iceoryx2-pubsub", "iceoryx2")):
        try:
            __import__(module)
        except ImportError:
            print(f"NOT MEASURED: {name} ({module} is not installed)")
            del benches[name]
    # The machine is shared: run every peer in each of --rounds rounds, in a rotating order,
    # and pool the samples, so a burst of outside load does not land on one peer only.
    if floor_exe is None:
        del benches[RUST_FLOOR]
    raw: dict = {name: {} for name in benches}
    names = list(benches)
    load_before = os.getloadavg()
    floor_pipe: dict = {RUST_FLOOR: [], PY_FLOOR: []}
    pipe_floors = [(PY_FLOOR, None)] + ([(RUST_FLOOR, floor_exe)] if floor_exe else [])
    for r in range(a.rounds):
        for name, exe in pipe_floors[r % 2:] + pipe_floors[: r % 2]:
            floor_pipe[name].append(bench_floor_pipelined(a.frames, a.window, exe))
        for name in names[r % len(names):] + names[: r % len(names)]:
            res = benches[name]()
            for size in SIZES:
                acc = raw[name].setdefault(size, {"samples": [], "fps": []})
                acc["samples"] += res[size]["samples"]
                acc["fps"] += res[size].get("fps", [])
                acc.setdefault("batch64_fps", []).extend(res[size].get("batch64_fps", []))
                acc.setdefault("map_fps", []).extend(res[size].get("map_fps", []))
                for k in ("pipelined_n", "pipelined_window"):
                    if k in res[size]:
                        acc[k] = res[size][k]
            if "stats" in res:
                raw[name]["stats"] = res["stats"]
    load_after = os.getloadavg()
    peers = {}
    for name, per in raw.items():
        peers[name] = {}
        for size in SIZES:
            acc = per[size]
            entry = {"roundtrip": percentiles(acc["samples"])}
            if acc["fps"]:
                entry["pipelined_frames_per_s"] = sorted(acc["fps"])[len(acc["fps"]) // 2]
                entry["pipelined_frames_per_s_rounds"] = acc["fps"]
            if acc["map_fps"]:
                entry["pipelined_map_frames_per_s"] = sorted(acc["map_fps"])[len(acc["map_fps"]) // 2]
                entry["pipelined_map_frames_per_s_rounds"] = acc["map_fps"]
            if size == 64:
                srt = sorted(acc["samples"])
                entry["cdf_us"] = [srt[min(len(srt) - 1, int(q / 100 * len(srt)))] / 1e3
                                   for q in range(100)]
            if acc["batch64_fps"]:
                entry["pipelined_batch64_frames_per_s"] = sorted(acc["batch64_fps"])[
                    len(acc["batch64_fps"]) // 2]
            for k in ("pipelined_n", "pipelined_window"):
                if k in acc:
                    entry[k] = acc[k]
            peers[name][size] = entry
        if "stats" in per:
            peers[name]["worker_stats_last_round"] = per["stats"]
    ring = peers["1-chunkring"]

    print(f"command: {command}")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"{a.rounds} rounds x {a.iters} round trips per size and peer")
    print(f"ctypes fence (atomic_thread_fence seq_cst): {fence['fence_call_ns']:.0f} ns per call "
          f"(an empty Python call: {fence['empty_python_call_ns']:.0f} ns)")
    print()
    head = f"{'size':>7} {'peer':<22} {'p50 us':>9} {'p99 us':>9} {'p50 vs ring':>12} {'frames/s':>11} {'vs ring':>8}"
    print(head)
    print("-" * len(head))
    ratios = {}
    for size in SIZES:
        r50 = ring[size]["roundtrip"]["p50_us"]
        rfps = ring[size]["pipelined_frames_per_s"]
        for name, res in peers.items():
            rt = res[size]["roundtrip"]
            fps = res[size].get("pipelined_frames_per_s")
            ratio50 = rt["p50_us"] / r50
            ratio_fps = fps / rfps if fps else None
            ratios.setdefault(str(size), {})[name] = {"p50_over_chunkring": ratio50,
                                                      "frames_per_s_over_chunkring": ratio_fps}
            print(f"{size:>7} {name:<22} {rt['p50_us']:>9.1f} {rt['p99_us']:>9.1f} "
                  f"{ratio50:>11.2f}x {fps if fps else float('nan'):>11.0f} "
                  f"{(f'{ratio_fps:.2f}x' if ratio_fps else '-'):>8}")
    print("\n(p50 vs ring > 1: the peer is slower than chunkring; frames/s vs ring > 1: faster.)")
    goal_floor = RUST_FLOOR if floor_exe else PY_FLOOR
    pipe50 = peers["2-pipe"][64]["roundtrip"]["p50_us"]
    goals = {
        "floor": goal_floor,
        "floor_echo_not_run": floor_not_run or None,
        **floor_ratios(ring, peers[goal_floor], floor_pipe[goal_floor], ""),
        "pipe_roundtrip_64_over_chunkring": pipe50 / ring[64]["roundtrip"]["p50_us"],
        **floor_ratios(ring, peers[PY_FLOOR], floor_pipe[PY_FLOOR], "python_"),
    }
    print(f"64 B goals against {goal_floor}"
          + ("" if floor_exe else f" (NOT RUN: floor_echo, {floor_not_run})") + ": "
          f"round trip {goals['roundtrip_64_over_floor']:.2f}x the floor (goal <= 1.5), "
          f"mp.Pipe {goals['pipe_roundtrip_64_over_chunkring']:.1f}x slower (goal >= 20); "
          f"pipelined floor {goals['floor_pipelined_64_frames_per_s']:.0f} frames/s "
          f"(rounds {[round(x) for x in floor_pipe[goal_floor]]}), "
          f"submit loop {goals['submit_loop_64_over_floor_pipelined']:.2f}x, "
          f"map {goals['map_64_over_floor_pipelined']:.2f}x of it (goal >= 0.7)")
    print(f"the same against {PY_FLOOR} (reference): "
          f"round trip {goals['roundtrip_64_over_python_floor']:.2f}x; pipelined floor "
          f"{goals['python_floor_pipelined_64_frames_per_s']:.0f} frames/s "
          f"(rounds {[round(x) for x in floor_pipe[PY_FLOOR]]}), "
          f"submit loop {goals['submit_loop_64_over_python_floor_pipelined']:.2f}x, "
          f"map {goals['map_64_over_python_floor_pipelined']:.2f}x of it")
    print("chunkring pipelined with submit_many, 64 frames per tail store: " + ", ".join(
        f"{size} B {ring[size]['pipelined_batch64_frames_per_s']:.0f} frames/s" for size in SIZES))

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": command,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "window": a.window,
        "rounds": a.rounds,
        "worker_args": a.worker_args,
        "iters_per_round": a.iters,
        "loadavg_before_after": [load_before, load_after],
        "fence": fence,
        "results": {name: {str(k): v for k, v in res.items()} for name, res in peers.items()},
        "notes": f"goals are against {goal_floor} (goals.floor; goals.floor_echo_not_run says why "
                 "when the Rust floor could not run); the goal keys with python_ are against "
                 f"{PY_FLOOR}, two Python processes, called 0-mmap-pingpong-floor in earlier "
                 "runs. The floors' pipelined rates are goals.floor_pipelined_64_frames_per_s "
                 "and goals.python_floor_pipelined_64_frames_per_s "
                 "(a bare ring of --window 64-byte slots each way, 64 B only); "
                 "2-pipe and 3-unix-socket keep at most 128 KiB in flight (pipelined_window) "
                 "so the socket buffers cannot deadlock with both directions full; "
                 "6-subprocess-per-call and 7-iceoryx2-pubsub are measured for round trips "
                 "only; 7-iceoryx2-pubsub busy-polls on both sides (100% of a core each)",
        "ratios": ratios,
        "goals": goals,
    }, indent=2) + "\n")
    plot_cdf(peers, out.parent)
    print(f"wrote {os.path.relpath(out, os.getcwd())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
