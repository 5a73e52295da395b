"""The fast path's numbers (issue 10) in one run: latency against the client's think time,
the operating system's futex wake-up floor, one shared core, render back to back, frame
sizes up to 1 MiB and the idle worker's CPU.

* **Think-time sweep.** ``client.echo`` of 64 B after the client "thinks" for 0, 10, 50, 100,
  500 µs and 1 ms (busy: a GUI computing), at a steady 5 ms and 16 ms cadence (sleeping until
  the next deadline, as a frame loop does), and after irregular 5-50 ms gaps. For each
  point: p10/p50/p90 latency and the worker's CPU (``/proc/PID/schedstat``) over the phase.
* **Awake floor**: the cadence and irregular phases against a second worker that never
  parks (``--spin-us 100000000``): the best any wait policy can do; the rest is the calling
  Python process's own cost after it slept.
* **Bare floor**: every phase against ``echo_peers.py``'s mmap ping-pong (one page, one
  sequence word, a Python peer polling all the time): the calling Python process's own cost
  after the same think time or sleep, with no framing and no wait policy at all.
* **OS floor** (``0-futex-wake-floor``): after the same irregular gaps, a Python process
  stores a sequence word and ``futex_wake``s a Python peer parked in ``futex_wait`` on a
  shared page, then spins until the peer stores the answer word: the cheapest a call to a
  parked worker can be.
* **One core**: client and worker pinned to one CPU (``taskset -c CPU``), 64 B round trips of
  chunkring, ``multiprocessing.Pipe`` and a Unix socket to a Rust echo process
  (``examples/uds_echo.rs``).
* **Render**: a 2 KB markdown document rendered back to back, chunkring against cmarkgfm in
  this process (when installed).
* **Sizes**: echo round trips from 64 B to 1 MiB (GB/s = payload bytes / round-trip time).
* **Idle**: the worker's CPU over 10 s without requests.

Writes ``bench-results/think_time.json`` and ``bench-results/think_time.png`` (latency against
think time, with the floor) and ``bench-results/sizes.png``; prints the table, the ratios and
the exact command. ``--rounds`` repeats the sweep and reports the spread across rounds.

    .venv/bin/python benches/python/think_time.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import multiprocessing as mp
import os
import platform
import random
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

from chunkring import Client  # noqa: E402 (after the sys.path insert)
from chunkring import _barrier, _futex  # noqa: E402
from cargo_example import example_bin  # noqa: E402 (benches/python is the script's folder)

ns = time.perf_counter_ns
THINK_US = (0, 10, 50, 100, 500, 1000)
CADENCE_MS = (5, 16)
IRREGULAR_MS = (5, 50)
SIZES = (64, 1024, 16 << 10, 64 << 10, 256 << 10, 1 << 20)


def pct(samples: list[int]) -> dict:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1e3  # noqa: E731
    return {"p10_us": pick(0.1), "p50_us": pick(0.5), "p90_us": pick(0.9), "n": len(s)}


def timed(fn, arg, n: int, warm: int = 0) -> dict:
    """Percentiles of ``n`` timed calls ``fn(arg)``, after ``warm`` untimed ones."""
    for _ in range(warm):
        fn(arg)
    s = []
    for _ in range(n):
        t0 = ns()
        fn(arg)
        s.append(ns() - t0)
    return pct(s)


def cpu_ns(pid: int) -> int:
    """Time ``pid`` spent on a CPU so far (all its threads), in ns."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def busy(us: int) -> None:
    end = ns() + us * 1000
    while ns() < end:
        pass


def sleep_until(deadline: int) -> None:
    """Sleep, then spin the last 200 µs, until ``perf_counter_ns() >= deadline``."""
    left = deadline - ns()
    if left > 300_000:
        time.sleep((left - 200_000) / 1e9)
    while ns() < deadline:
        pass


def gaps_irregular(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(*IRREGULAR_MS) / 1e3 for _ in range(n)]


# ---- the sweep ---------------------------------------------------------------------------
def sweep(c: Client, quick: bool, seed: int, phases=("think", "cadence", "irregular")) -> dict:
    return sweep_echo(c.echo, c.pid, quick, seed, phases)


def sweep_echo(echo, pid: int, quick: bool, seed: int,
               phases=("think", "cadence", "irregular")) -> dict:
    """The sweep's phases for ``echo(data)``, answered by the process ``pid``."""
    data = os.urandom(64)
    out = {}
    for _ in range(200):
        echo(data)

    def phase(name, calls):
        c0 = cpu_ns(pid)
        t0 = ns()
        samples = calls()
        wall = ns() - t0
        out[name] = pct(samples) | {"worker_cpu_pct": 100.0 * (cpu_ns(pid) - c0) / wall}

    for us in THINK_US if "think" in phases else ():
        n = (300 if quick else 3000) if us <= 100 else (150 if quick else 1000)

        def calls(us=us, n=n):
            s = []
            for _ in range(n):
                if us:
                    busy(us)
                t0 = ns()
                echo(data)
                s.append(ns() - t0)
            return s

        phase(f"think_{us}us", calls)
    for ms in CADENCE_MS if "cadence" in phases else ():
        n = 40 if quick else (300 if ms == 5 else 150)

        def calls(ms=ms, n=n):
            s = []
            deadline = ns()
            for _ in range(n):
                deadline += ms * 1_000_000
                sleep_until(deadline)
                t0 = ns()
                echo(data)
                s.append(ns() - t0)
            return s[10:]  # the worker learns the cadence from the first few gaps

        phase(f"cadence_{ms}ms", calls)

    def irregular():
        s = []
        for g in gaps_irregular(30 if quick else 150, seed):
            time.sleep(g)
            t0 = ns()
            echo(data)
            s.append(ns() - t0)
        return s

    if "irregular" in phases:
        phase("irregular_5_50ms", irregular)
    return out


# ---- the OS floor: waking a futex-parked peer --------------------------------------------
def _floor_child(path: str) -> None:
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, 4096)
    q = memoryview(mm).cast("Q")
    w = memoryview(mm).cast("I")
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mm)) + 128
    seen = 0
    while True:
        s = q[0]
        if s == seen:
            w[32] = 1  # parked
            _barrier.barrier_memory()
            if q[0] == seen:
                _futex.futex_wait(addr, 1, 0.1)
            w[32] = 0
            continue
        if s == 0xFFFFFFFFFFFFFFFF:
            break
        seen = s
        q[8] = s


def futex_floor(quick: bool, seed: int) -> dict:
    path = f"/dev/shm/chunkring-bench-futex-{os.getpid()}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, 4096)
    mm = mmap.mmap(fd, 4096)
    q = memoryview(mm).cast("Q")
    w = memoryview(mm).cast("I")
    buf = ctypes.c_char.from_buffer(mm)
    addr = ctypes.addressof(buf) + 128
    child = mp.get_context("fork").Process(target=_floor_child, args=(path,))
    child.start()
    samples = []
    seq = 0
    try:
        for g in gaps_irregular(30 if quick else 150, seed):
            time.sleep(g)
            seq += 1
            t0 = ns()
            q[0] = seq
            _barrier.barrier_memory()
            if w[32]:
                w[32] = 0
                _futex.futex_wake(addr, 1)
            while q[8] != seq:
                pass
            samples.append(ns() - t0)
    finally:
        q[0] = 0xFFFFFFFFFFFFFFFF
        _futex.futex_wake(addr, 1)
        child.join(10)
        del buf
        q.release()
        w.release()
        mm.close()
        os.close(fd)
        os.unlink(path)
    return pct(samples)


# ---- the awake floor: a worker that never sleeps -----------------------------------------
def awake_floor(quick: bool, seed: int) -> dict:
    """The cadence and irregular phases against a worker that never parks (``--spin-us``
    of 100 s: it polls through every gap, a core busy all the time): the best any wait policy
    can do; what is left is the calling process's own cost after it slept."""
    with Client.spawn(args=["--spin-us", "100000000"]) as c:
        res = sweep(c, quick, seed, phases=("cadence", "irregular"))
    return res


# ---- the bare floor: a Python mmap ping-pong against a peer that never sleeps ------------
def bare_floor(quick: bool, seed: int) -> dict:
    """Every phase of the sweep against ``echo_peers.py``'s floor: one shared page, the
    request copied in and one sequence word stored, a peer that polls it all the time, the
    answer copied out. No framing, no wait policy: what the calling Python process itself
    costs after it thought, busy or asleep, for the same gaps. Where this floor is above a
    phase's limit, no design of the worker's or the client's waiting can meet that limit on
    this machine."""
    from echo_peers import MAXB, _floor_child, _stop_floor

    path = f"/dev/shm/chunkring-bench-bare-{os.getpid()}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, 4096 + 2 * MAXB)
    mm = mmap.mmap(fd, 4096 + 2 * MAXB)
    q = memoryview(mm)[:4096].cast("Q")
    child = mp.get_context("fork").Process(target=_floor_child,
                                           args=(path, time.monotonic() + 3600))
    child.start()
    seq = [0]

    def echo(data: bytes) -> bytes:
        n = len(data)
        mm[4096 : 4096 + n] = data
        q[9] = n
        s = seq[0] + 1
        seq[0] = s
        q[0] = s
        while q[8] != s:
            pass
        return mm[4096 + MAXB : 4096 + MAXB + n]

    try:
        return sweep_echo(echo, child.pid, quick, seed)
    finally:
        _stop_floor(q, child, mm, fd, path)


# ---- one shared core ---------------------------------------------------------------------
def _pipe_child(conn) -> None:
    while True:
        b = conn.recv_bytes()
        if b == b"STOP":
            break
        conn.send_bytes(b)


def one_core_child(n: int) -> dict:
    """Runs pinned (``taskset``): every process it starts inherits the one CPU."""
    data = os.urandom(64)
    out = {}
    with Client.spawn() as c:
        out["shared_core_detected"] = c._receiver.shared_core
        out["1-chunkring"] = timed(c.echo, data, n, warm=200)
    parent, child_end = mp.Pipe()
    child = mp.get_context("fork").Process(target=_pipe_child, args=(child_end,))
    child.start()
    s = []
    for i in range(n + 200):
        t0 = ns()
        parent.send_bytes(data)
        parent.recv_bytes()
        if i >= 200:
            s.append(ns() - t0)
    parent.send_bytes(b"STOP")
    child.join(10)
    out["2-pipe"] = pct(s)
    exe, _ = example_bin("uds_echo")
    if exe:
        path = f"/tmp/chunkring-bench-uds-{os.getpid()}"
        proc = subprocess.Popen([exe, path])
        for _ in range(500):
            if os.path.exists(path):
                break
            time.sleep(0.01)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        frame = struct.pack("<I", len(data)) + data
        s = []
        for i in range(n + 200):
            t0 = ns()
            sock.sendall(frame)
            got = 0
            while got < len(frame):
                got += len(sock.recv(len(frame) - got))
            if i >= 200:
                s.append(ns() - t0)
        sock.sendall(struct.pack("<I", 0xFFFFFFFF))
        proc.wait(10)
        sock.close()
        out["3-unix-socket-rust-echo"] = pct(s)
    return out


def one_core(quick: bool) -> dict:
    if not shutil.which("taskset") or not hasattr(os, "sched_getaffinity"):
        return {"not_measured": "taskset unavailable"}
    cpu = min(os.sched_getaffinity(0))
    cmd = ["taskset", "-c", str(cpu), sys.executable, __file__, "--one-core-child",
           str(500 if quick else 5000)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return {"error": r.stderr[-2000:]}
    return json.loads(r.stdout.strip().splitlines()[-1]) | {"cpu": cpu}


# ---- render, sizes, idle -----------------------------------------------------------------
def render_doc() -> str:
    text = "\n\n".join(p.read_text() for p in sorted(
        (REPO / "python" / "chunkring" / "sample").rglob("*.md")))
    return text[:2048].rsplit("\n", 1)[0]


def render(c: Client, quick: bool) -> dict:
    doc = render_doc()
    n = 300 if quick else 3000
    out = {"doc_bytes": len(doc.encode())}
    out["1-chunkring"] = timed(c.markdown.render, doc, n, warm=100)
    try:
        import cmarkgfm
    except ImportError:
        out["2-cmarkgfm"] = "NOT MEASURED (cmarkgfm is not installed)"
        return out
    out["2-cmarkgfm"] = timed(cmarkgfm.github_flavored_markdown_to_html, doc, n, warm=100)
    return out


def sizes(c: Client, quick: bool) -> dict:
    out = {}
    for size in SIZES:
        data = os.urandom(size)
        n = max(20 if quick else 200, (200 if quick else 2000) * 1024 // max(size, 1024))
        for _ in range(5):
            c.echo(data)
        s = []
        for _ in range(n):
            t0 = ns()
            back = c.echo(data)
            s.append(ns() - t0)
        assert back == data
        p = pct(s)
        out[str(size)] = p | {"gb_per_s_p50": size / (p["p50_us"] * 1e3)}
    return out


def idle(c: Client, seconds: float) -> dict:
    c.echo(b"x")
    time.sleep(0.1)  # past the hot window
    c0, t0 = cpu_ns(c.pid), ns()
    time.sleep(seconds)
    return {"seconds": seconds, "worker_cpu_pct": 100.0 * (cpu_ns(c.pid) - c0) / (ns() - t0)}


# ---- report ------------------------------------------------------------------------------
def spread(rounds: list[dict], key: str) -> dict:
    vals = sorted(r[key]["p50_us"] for r in rounds)
    cpu = sorted(r[key].get("worker_cpu_pct", 0.0) for r in rounds)
    return {"p50_us_median": vals[len(vals) // 2], "p50_us_min": vals[0], "p50_us_max": vals[-1],
            "worker_cpu_pct_max": cpu[-1], "rounds": [r[key] for r in rounds]}


def _save(plt, fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot(result: dict, out_dir: Path) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("NOT PLOTTED: matplotlib is not installed (benches/python/requirements.txt)")
        return []
    written = []
    sweep_ = result["sweep"]
    names = list(sweep_)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    xs = range(len(names))
    for r in sweep_[names[0]]["rounds"] and range(len(sweep_[names[0]]["rounds"])):
        ax.plot(xs, [sweep_[k]["rounds"][r]["p50_us"] for k in names], "o-", alpha=0.35,
                color="C0")
    ax.plot(xs, [sweep_[k]["p50_us_median"] for k in names], "o-", color="C0", lw=2,
            label="chunkring echo 64 B, p50 (median of rounds; thin: each round)")
    cold = result["awake_worker_floor_p50_us"]
    cx = [names.index(k) for k in cold if k in names]
    ax.plot(cx, [cold[names[i]] for i in cx], "s", color="C2",
            label="awake floor: a worker that never parks, same gaps (p50)")
    bare = result["bare_floor"]
    ax.plot(xs, [bare[k]["p50_us_median"] for k in names], "^:", color="C1",
            label="bare floor: Python mmap ping-pong, peer never sleeps (p50)")
    ax.plot(xs, [2 * sweep_[names[0]]["p50_us_median"] + 5 if k != "irregular_5_50ms"
                 else float("nan") for k in names], "_", color="C0", ms=18,
            label="goal: 2 × p50 at 0 µs + 5 µs")
    fl = result["futex_floor"]["p50_us_median"]
    ax.axhline(fl, color="C3", ls="--", label=f"OS floor: waking a futex-parked peer, p50 {fl:.0f} µs")
    ax.axhline(fl + 20, color="C3", ls=":", label="floor + 20 µs")
    ax.set_xticks(list(xs), [n.replace("think_", "").replace("cadence_", "every ").replace(
        "irregular_5_50ms", "irregular\n5-50 ms").replace("us", " µs") for n in names], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("round trip (µs, log)")
    ax.set_xlabel("client think time between calls")
    ax.set_title("64 B echo latency against think time")
    ax.legend(fontsize=8)
    written.append(_save(plt, fig, out_dir / "think_time.png"))
    sz = result["sizes"]
    fig, ax = plt.subplots(figsize=(7, 4))
    keys = list(sz)
    ax.plot([int(k) for k in keys], [sz[k]["gb_per_s_p50"] for k in keys], "o-")
    ax.axhline(2.0, color="C3", ls=":", label="goal: 2 GB/s at 1 MiB")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("payload bytes")
    ax.set_ylabel("GB/s (payload / p50 round trip)")
    ax.set_title("chunkring echo throughput by size (one request in flight)")
    ax.legend(fontsize=8)
    written.append(_save(plt, fig, out_dir / "sizes.png"))
    return written


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one-core-child":
        print(json.dumps(one_core_child(int(sys.argv[2]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--out", default=str(REPO / "bench-results" / "think_time.json"))
    a = ap.parse_args()
    command = " ".join([os.path.relpath(sys.executable, os.getcwd()), *sys.argv])
    load_before = os.getloadavg()
    rounds, floors, renders, colds, bares = [], [], [], [], []
    with Client.spawn() as c:
        for r in range(a.rounds):
            # Alternate the order so outside load does not always land on the same side.
            if r % 2:
                floors.append(futex_floor(a.quick, seed=r))
                rounds.append(sweep(c, a.quick, seed=r))
            else:
                rounds.append(sweep(c, a.quick, seed=r))
                floors.append(futex_floor(a.quick, seed=r))
            renders.append(render(c, a.quick))
            colds.append(awake_floor(a.quick, seed=r))
            bares.append(bare_floor(a.quick, seed=r))
            print(f"round {r + 1}/{a.rounds}: " + ", ".join(
                f"{k} {v['p50_us']:.1f}" for k, v in rounds[-1].items()) +
                f"; floor {floors[-1]['p50_us']:.1f} (µs p50)", flush=True)
        size_res = sizes(c, a.quick)
        idle_res = idle(c, 2.0 if a.quick else a.idle_seconds)
        stats = c.stats()
    one = one_core(a.quick)
    load_after = os.getloadavg()
    sweep_ = {k: spread(rounds, k) for k in rounds[0]}
    fl = sorted(f["p50_us"] for f in floors)
    floor = {"p50_us_median": fl[len(fl) // 2], "p50_us_min": fl[0], "p50_us_max": fl[-1],
             "rounds": floors}
    cold = {k: sorted(x[k]["p50_us"] for x in colds)[len(colds) // 2] for k in colds[0]}
    bare = {k: spread(bares, k) for k in bares[0]}
    base = sweep_["think_0us"]["p50_us_median"]
    goals = {}
    for k in [f"think_{u}us" for u in THINK_US] + [f"cadence_{m}ms" for m in CADENCE_MS]:
        lim = 2 * base + 5
        v = sweep_[k]["p50_us_median"]
        b = bare[k]["p50_us_median"]
        goals[k] = {"p50_us": v, "limit_us": lim, "met": v <= lim, "bare_floor_p50_us": b,
                    "bare_floor_within_limit": b <= lim}
        if k.startswith("cadence"):
            cpu = sweep_[k]["worker_cpu_pct_max"]
            goals[k] |= {"worker_cpu_pct_max": cpu, "cpu_met": cpu <= 3.0}
    irr = sweep_["irregular_5_50ms"]["p50_us_median"]
    goals["irregular_5_50ms"] = {"p50_us": irr, "limit_us": floor["p50_us_median"] + 20,
                                 "met": irr <= floor["p50_us_median"] + 20,
                                 "bare_floor_p50_us": bare["irregular_5_50ms"]["p50_us_median"]}
    rr = [x["1-chunkring"]["p50_us"] for x in renders]
    render_res = {"rounds": renders, "chunkring_p50_us_median": sorted(rr)[len(rr) // 2]}
    if isinstance(renders[0].get("2-cmarkgfm"), dict):
        cm = sorted(x["2-cmarkgfm"]["p50_us"] for x in renders)[len(renders) // 2]
        render_res |= {"cmarkgfm_p50_us_median": cm,
                       "ratio": render_res["chunkring_p50_us_median"] / cm}
        goals["render_2k"] = {"ratio": render_res["ratio"], "met": render_res["ratio"] <= 0.5}
    goals["one_mib_echo"] = {"gb_per_s": size_res[str(1 << 20)]["gb_per_s_p50"],
                             "met": size_res[str(1 << 20)]["gb_per_s_p50"] >= 2.0}
    goals["idle"] = {"worker_cpu_pct": idle_res["worker_cpu_pct"],
                     "met": idle_res["worker_cpu_pct"] < 1.0}
    if "1-chunkring" in one:
        ring1 = one["1-chunkring"]["p50_us"]
        uds = one.get("3-unix-socket-rust-echo", {}).get("p50_us")
        goals["one_core"] = {"p50_us": ring1, "uds_rust_p50_us": uds,
                             "met": ring1 <= 10 and (uds is None or ring1 <= uds)}
    result = {
        "command": command, "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "rounds": a.rounds,
        "loadavg_before_after": [load_before, load_after],
        "sweep": sweep_, "futex_floor": floor, "awake_worker_floor_p50_us": cold,
        "awake_worker_floor_rounds": colds, "bare_floor": bare, "render_2k": render_res, "sizes": size_res,
        "idle": idle_res, "one_core": one, "goals": goals, "worker_stats": stats,
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result["plots"] = [os.path.relpath(p, REPO) for p in plot(result, out.parent)]
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\ncommand: {command}")
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; {a.rounds} rounds")
    print(f"{'phase':<20} {'p50 us (min-max over rounds)':>30} {'worker cpu % (max)':>19}")
    for k, v in sweep_.items():
        print(f"{k:<20} {v['p50_us_median']:>10.1f} ({v['p50_us_min']:.1f}-{v['p50_us_max']:.1f})"
              f"{'':>10} {v['worker_cpu_pct_max']:>12.2f}")
    print(f"{'0-futex-wake-floor':<20} {floor['p50_us_median']:>10.1f} "
          f"({floor['p50_us_min']:.1f}-{floor['p50_us_max']:.1f})")
    print("awake floor (the same phases against a worker that never parks), p50 µs: "
          + ", ".join(f"{k} {v:.1f}" for k, v in cold.items()))
    print("bare floor (Python mmap ping-pong, a peer that never sleeps, same phases), p50 µs: "
          + ", ".join(f"{k} {v['p50_us_median']:.1f}" for k, v in bare.items()))
    print("\ngoals:")
    for k, g in goals.items():
        print(f"  {k:<18} {'met ' if g['met'] and g.get('cpu_met', True) else 'MISSED'} {g}")
    print(f"one core: {one}")
    print(f"wrote {os.path.relpath(out, os.getcwd())} and {result['plots']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
