"""What frame checksums cost (layout.md §6.6): echo with CRC off and on, in one run.

Measures, for payloads of 64 B, 1 KiB, 64 KiB and 1 MiB:

* ``off``: ``Client.spawn()``, the default (no checksums);
* ``on``: ``Client.spawn(crc=True)`` (``serve --crc``: every frame in both rings carries a
  CRC-32; the client computes it with ``zlib.crc32``, the worker with ``crc32fast``);

each as the p50/p99 of single echo round trips and as pipelined frames/s with up to
``--window`` requests in flight (fewer for 1 MiB, so the window fits the rings). Both modes run
in every one of ``--rounds`` rounds, in alternating order, and the samples are pooled, so a
burst of outside load does not land on one mode only. Also times ``zlib.crc32`` alone per size
(the client does it twice per round trip: request out, answer in). Prints the table with the
on/off ratios, the load average and the exact command; writes ``bench-results/crc.json``.

    .venv/bin/python benches/python/crc_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import zlib
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

from chunkring import Client  # noqa: E402 (after the sys.path insert)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from echo_peers import percentiles, timed_echoes  # noqa: E402 (the same measurement)
from chunkring import _layout as L  # noqa: E402

SIZES = (64, 1024, 64 * 1024, 1 << 20)
MODES = ("off", "on")
ns = time.perf_counter_ns


def iters_for(size: int, iters: int) -> int:
    """Fewer round trips for big payloads (each is milliseconds)."""
    return max(50, iters // max(1, size // 16384))


def one_mode(crc: bool, iters: int, frames: int, window: int, worker: str | None) -> dict:
    out = {}
    with Client.spawn(crc=crc, worker=worker) as c:
        assert c._region.crc == crc
        for size in SIZES:
            data = os.urandom(size)
            samples = timed_echoes(c.echo, data, iters_for(size, iters))
            n = max(200, frames * 64 // max(64, size)) if size > 1024 else frames
            w = max(2, min(window, (2 << 20) // max(1, size)))
            submit = c.submit
            inflight = deque()
            t0 = ns()
            for _ in range(n):
                inflight.append(submit(L.OP_ECHO, data))
                if len(inflight) >= w:
                    assert inflight.popleft().result() == data
            while inflight:
                assert inflight.popleft().result() == data
            dt = ns() - t0
            out[size] = {"samples": samples, "fps": n / (dt / 1e9), "mb_s": n * size / (dt / 1e3),
                         "pipelined_n": n, "window": w}
        out["stats"] = c.stats()
    return out


def crc32_alone() -> dict:
    out = {}
    for size in SIZES:
        data = os.urandom(size)
        k = max(20, (64 << 20) // size)
        t0 = ns()
        for _ in range(k):
            zlib.crc32(data)
        out[size] = (ns() - t0) / k / 1e3
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=2000, help="round trips per size per round (64 B)")
    p.add_argument("--frames", type=int, default=20000, help="pipelined frames per size (64 B, 1 KiB)")
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", default=None, help="the chunkring binary (default: the usual search)")
    p.add_argument("--quick", action="store_true", help="a smoke run: few iterations, one round")
    p.add_argument("--out", default=str(REPO / "bench-results" / "crc.json"))
    a = p.parse_args()
    if a.quick:
        a.iters, a.frames, a.rounds = 200, 2000, 1
    command = " ".join([Path(sys.executable).name, *sys.argv])

    load_before = os.getloadavg()
    raw = {m: {s: {"samples": [], "fps": [], "mb_s": []} for s in SIZES} for m in MODES}
    stats = {}
    for r in range(a.rounds):
        for mode in (MODES if r % 2 == 0 else MODES[::-1]):
            res = one_mode(mode == "on", a.iters, a.frames, a.window, a.worker)
            for size in SIZES:
                acc = raw[mode][size]
                acc["samples"] += res[size]["samples"]
                acc["fps"].append(res[size]["fps"])
                acc["mb_s"].append(res[size]["mb_s"])
                acc["window"] = res[size]["window"]
                acc["pipelined_n"] = res[size]["pipelined_n"]
            stats[mode] = res["stats"]
    crc_us = crc32_alone()
    load_after = os.getloadavg()

    def med(xs):
        return sorted(xs)[len(xs) // 2]

    results = {}
    for mode in MODES:
        results[mode] = {}
        for size in SIZES:
            acc = raw[mode][size]
            results[mode][str(size)] = {
                "roundtrip": percentiles(acc["samples"]),
                "pipelined_frames_per_s": med(acc["fps"]),
                "pipelined_frames_per_s_rounds": acc["fps"],
                "pipelined_mb_per_s": med(acc["mb_s"]),
                "pipelined_window": acc["window"],
                "pipelined_n": acc["pipelined_n"],
            }
    ratios = {}
    print(f"command: {command}")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"{a.rounds} rounds, modes alternating")
    head = (f"{'size':>8} {'p50 off':>9} {'p50 on':>9} {'on/off':>7} {'p99 off':>9} {'p99 on':>9} "
            f"{'fps off':>9} {'fps on':>9} {'on/off':>7} {'zlib.crc32':>11}")
    print(head)
    print("-" * len(head))
    for size in SIZES:
        off, on = results["off"][str(size)], results["on"][str(size)]
        r50 = on["roundtrip"]["p50_us"] / off["roundtrip"]["p50_us"]
        rfps = on["pipelined_frames_per_s"] / off["pipelined_frames_per_s"]
        ratios[str(size)] = {"p50_on_over_off": r50, "frames_per_s_on_over_off": rfps,
                             "p50_added_us": on["roundtrip"]["p50_us"] - off["roundtrip"]["p50_us"]}
        print(f"{size:>8} {off['roundtrip']['p50_us']:>9.1f} {on['roundtrip']['p50_us']:>9.1f} "
              f"{r50:>6.2f}x {off['roundtrip']['p99_us']:>9.1f} {on['roundtrip']['p99_us']:>9.1f} "
              f"{off['pipelined_frames_per_s']:>9.0f} {on['pipelined_frames_per_s']:>9.0f} "
              f"{rfps:>6.2f}x {crc_us[size]:>9.1f}us")
    print("(times in µs; on/off > 1 for p50 and < 1 for frames/s: what checksums cost)")

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": command,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "rounds": a.rounds,
        "window": a.window,
        "loadavg_before_after": [load_before, load_after],
        "zlib_crc32_us": {str(k): v for k, v in crc_us.items()},
        "results": results,
        "ratios": ratios,
        "worker_stats_last_round": stats,
        "notes": "off = Client.spawn(), on = Client.spawn(crc=True) (serve --crc, layout.md §6.6); "
                 "both modes in every round, alternating order, samples pooled",
    }, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
