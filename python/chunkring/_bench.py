"""``chunkring bench``: in a source checkout, the Python peer benches of ``benches/python``;
installed from a wheel (or with ``--builtin``), a small built-in echo and markdown bench.

The peer benches compare chunkring with what a Python user would pick instead, in one run,
and write ``bench-results/*.json`` (README "Benchmarks"); their peers come from
``benches/python/requirements*.txt`` and are reported as not measured when absent. The
built-in bench needs nothing but this package and measures chunkring alone: echo round trips
and pipelined throughput, and markdown render of the bundled sample, batched and one request
per document, against markdown-it-py when it is installed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import _layout as L
from ._progress import Progress
from .client import Client
from .errors import ChunkringError

CHECKOUT_BENCHES = Path(__file__).resolve().parents[2] / "benches" / "python"
PEER_BENCHES = {"echo": "echo_peers.py", "markdown": "markdown_peers.py", "snapshot": "snapshot_peers.py"}
SAMPLE = Path(__file__).resolve().parent / "sample"


def in_checkout() -> bool:
    """Is this package ``<repo>/python/chunkring`` of a checkout that has the peer benches?"""
    return all((CHECKOUT_BENCHES / script).is_file() for script in PEER_BENCHES.values())


def run_peer_benches(names: list[str], quick: bool) -> int:
    status = 0
    progress = Progress(len(names))
    for name in names:
        cmd = [sys.executable, str(CHECKOUT_BENCHES / PEER_BENCHES[name])]
        if quick:
            cmd.append({"markdown": "--budget=0.3"}.get(name, "--quick"))
        progress.start(f"{name}: {' '.join(cmd)}")
        print(f"==> {' '.join(cmd)}", flush=True)
        status = subprocess.run(cmd).returncode or status
    return status


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} us"


def builtin_bench(quick: bool) -> None:
    n = 500 if quick else 5000
    with Client.spawn() as client:
        print(f"echo ({n} round trips per size, then {n * 4} pipelined requests):")
        for size in (64, 1024, 65536):
            body = b"x" * size
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                client.echo(body)
                samples.append(time.perf_counter() - t0)
            samples.sort()
            t0 = time.perf_counter()
            handles = [client.submit(L.OP_ECHO, body) for _ in range(n * 4)]
            for h in handles:
                h.result(timeout=60)
            rate = n * 4 / (time.perf_counter() - t0)
            print(f"  {size:>6} B  p50 {_us(statistics.median(samples))}  "
                  f"p99 {_us(samples[int(len(samples) * 0.99)])}  pipelined {rate:>10,.0f} req/s")

        docs = [p.read_text(encoding="utf-8") for p in sorted(SAMPLE.rglob("*.md"))] * (20 if quick else 200)
        mb = sum(map(len, docs)) / 1e6
        print(f"markdown render ({len(docs)} documents, {mb:.2f} MB, best of 3):")
        rows = [("chunkring, one batched request", lambda: client.markdown.render(docs)),
                ("chunkring, one request per document", lambda: [client.markdown.render(d) for d in docs])]
        try:
            from markdown_it import MarkdownIt  # type: ignore[import-not-found]

            md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
            rows.append(("markdown-it-py, in process", lambda: [md.render(d) for d in docs]))
        except ImportError:
            print("  (markdown-it-py not installed: pip install markdown-it-py to compare)")
        for label, fn in rows:
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            print(f"  {label:<38} {best * 1e3:9.2f} ms  {len(docs) / best:>10,.0f} docs/s")


def parser() -> argparse.ArgumentParser:
    where = (f"This is a checkout: runs the peer benches of {CHECKOUT_BENCHES}."
             if in_checkout() else "This is an installed package: runs the built-in bench.")
    ap = argparse.ArgumentParser(
        prog="chunkring bench",
        description="In a source checkout, run the Python peer benches (benches/python/*.py: "
                    "chunkring against multiprocessing, sockets, pyzmq, cmarkgfm, "
                    "markdown-it-py, deepcopy and more, in one run; results in "
                    "bench-results/). Installed from a wheel, or with --builtin, run a small "
                    "built-in bench of chunkring alone: echo latency and throughput, markdown "
                    "render of the bundled sample (against markdown-it-py if installed). " + where,
        epilog="Numbers from a loaded machine swing widely: compare ratios within one run. "
               "Exit status: 0 done, 1 a bench failed, 2 bad usage.")
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"peer benches to run, of {', '.join(PEER_BENCHES)} (default: all)")
    ap.add_argument("--builtin", action="store_true", help="run the built-in bench even in a checkout")
    ap.add_argument("--quick", action="store_true", help="small counts: a smoke run, not a measurement")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in PEER_BENCHES]
    if unknown:
        ap.error(f"unknown bench {unknown[0]!r} (choose from {', '.join(PEER_BENCHES)})")
    if in_checkout() and not args.builtin:
        return run_peer_benches(args.names or list(PEER_BENCHES), args.quick)
    try:
        builtin_bench(args.quick)
    except ChunkringError as exc:
        print(f"chunkring bench: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
