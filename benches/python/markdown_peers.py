#!/usr/bin/env python3
"""Markdown render throughput and latency: chunkring against what a Python user would pick.

One run measures, on the same corpus (``benches/python/gather_corpus.py`` → ``target/corpus``):

* ``0-native-pulldown-cmark`` — pulldown-cmark in-process in Rust, the ceiling
  (``cargo bench --bench markdown -- --native-json``, run from here);
* ``1-chunkring-batched`` — ``client.markdown.render(all_docs)``: one request per pass;
* ``2-chunkring-per-request`` — ``client.markdown.render(doc)`` for each document;
* ``2b-chunkring-per-request-pipelined`` — one request per document, all submitted before
  the first answer is read (``client.submit``);
* ``3-cmarkgfm``, ``4-mistune``, ``5-markdown-it-py`` — in-process in this interpreter.

All parsers run with tables and strikethrough on (pulldown-cmark with its §9.2 defaults,
cmarkgfm's GitHub flavour, mistune and markdown-it-py with their table/strikethrough plugins).
Throughput is the median of repeated passes over the whole corpus; latency (rows that render
one document per call) the median of repeated calls on the corpus document closest to 2 KB and
on the first documents concatenated up to 200 KB. ``uptime``'s load average is recorded, since
the machine's cores are shared. Prints a ratio table and the exact command; writes ``bench-results/markdown.json``.

Usage: .venv/bin/python benches/python/markdown_peers.py [--budget SECONDS] [--no-native]
       [--spin-us N] [--out PATH]

``--spin-us`` sets the worker's and the client's spin window before they park (both default
to 50 us); on a VM whose futex wake costs ~100 us, one-request latency depends on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))


def load_corpus() -> list[str]:
    corpus = REPO / "target" / "corpus"
    if not (corpus / "manifest.json").exists():
        subprocess.run([sys.executable, str(REPO / "benches/python/gather_corpus.py")], check=True)
    # bytes.decode, not read_text: universal newlines would turn CRLF into LF and the peers
    # would parse other text than the Rust ceiling does.
    return [p.read_bytes().decode("utf-8") for p in sorted(corpus.glob("*.md"))]


def latency_docs(docs: list[str]) -> tuple[str, str]:
    """The same choice as benches/markdown.rs: closest to 2 KB; first docs up to 200 KB."""
    small = min(docs, key=lambda d: abs(len(d.encode()) - 2048))
    parts, size, i = [], 0, 0
    while size < 200 * 1024:
        d = docs[i % len(docs)]
        parts.append(d + "\n\n")
        size += len(d.encode()) + 2
        i += 1
    return small, "".join(parts)


def median_secs(fn: Callable[[], object], budget: float, min_runs: int = 3) -> float:
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < budget or len(times) < min_runs:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(name, per_doc, batch, docs, small, large, budget) -> dict:
    """per_doc renders one str; batch (or None) renders the whole list in one call."""
    nbytes = sum(len(d.encode()) for d in docs)
    run = (lambda: batch(docs)) if batch else (lambda: [per_doc(d) for d in docs])
    run()  # warm up
    secs = median_secs(run, budget)
    res = {"docs_per_s": len(docs) / secs, "mb_per_s": nbytes / secs / 1e6}
    if batch is None:  # latency is one call per document: measured on the per-document rows
        res["latency_small_s"] = median_secs(lambda: per_doc(small), budget / 3, 10)
        res["latency_large_s"] = median_secs(lambda: per_doc(large), budget / 3, 5)
    print(f"  {name}: {res['docs_per_s']:.0f} docs/s, {res['mb_per_s']:.1f} MB/s", flush=True)
    return res


def native(out: Path) -> dict:
    cmd = ["cargo", "bench", "-q", "--bench", "markdown", "--", "--native-json", str(out)]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    r = json.loads(out.read_text())
    print(f"  0-native-pulldown-cmark: {r['docs_per_s']:.0f} docs/s, {r['mb_per_s']:.1f} MB/s")
    return r


def peers(docs, small, large, budget, spin_us=None) -> dict:
    results = {}
    try:
        from chunkring import _layout as L
        from chunkring.client import Client
        from chunkring.markdown import decode_list, encode_list
    except ImportError as e:
        print(f"  chunkring: NOT RUN (no client: {e})")
    else:
        # The worker as users build it (release profile); the native ceiling is built with
        # the bench profile (LTO, one codegen unit), so the ratio errs against chunkring.
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=REPO, check=True)
        args = ("--spin-us", str(spin_us)) if spin_us is not None else ()
        with Client.spawn(worker=REPO / "target" / "release" / "chunkring", args=args) as c:
            if spin_us is not None:
                c._spin_ns = spin_us * 1000  # the client's spin window (no public knob yet)
            md = c.markdown
            assert md.render(docs[:3]) == [md.render(d) for d in docs[:3]]
            results["1-chunkring-batched"] = measure(
                "1-chunkring-batched", md.render, md.render, docs, small, large, budget)
            results["2-chunkring-per-request"] = measure(
                "2-chunkring-per-request", md.render, None, docs, small, large, budget)

            def pipelined(ds):  # one request per document, all in flight (client.submit)
                hs = [c.submit(L.OP_MD_RENDER, encode_list([d.encode()])) for d in ds]
                return [decode_list(h.result())[0].tobytes().decode() for h in hs]

            assert pipelined(docs[:3]) == [md.render(d) for d in docs[:3]]
            results["2b-chunkring-per-request-pipelined"] = measure(
                "2b-chunkring-per-request-pipelined", md.render, pipelined, docs, small, large,
                budget)
    import cmarkgfm
    import mistune
    from markdown_it import MarkdownIt

    results["3-cmarkgfm"] = measure(
        "3-cmarkgfm", cmarkgfm.github_flavored_markdown_to_html, None, docs, small, large, budget)
    mis = mistune.create_markdown(plugins=["table", "strikethrough", "footnotes", "task_lists"])
    results["4-mistune"] = measure("4-mistune", mis, None, docs, small, large, budget)
    mdit = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    results["5-markdown-it-py"] = measure(
        "5-markdown-it-py", mdit.render, None, docs, small, large, budget)
    return results


def ratio(results, a, b, key="docs_per_s"):
    if a in results and b in results:
        return results[a][key] / results[b][key]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per throughput row")
    ap.add_argument("--no-native", action="store_true", help="skip the cargo bench ceiling")
    ap.add_argument("--out", default=str(REPO / "bench-results" / "markdown.json"))
    ap.add_argument("--spin-us", type=int, default=None,
                    help="spin window of worker and client before parking (default: theirs)")
    args = ap.parse_args()
    exe = Path(sys.executable)
    shown = os.path.relpath(exe, REPO) if REPO in exe.absolute().parents else exe.name
    command = " ".join([shown, *sys.argv])
    docs = load_corpus()
    small, large = latency_docs(docs)
    nbytes = sum(len(d.encode()) for d in docs)
    print(f"corpus: {len(docs)} docs, {nbytes / 1e6:.2f} MB; latency docs "
          f"{len(small.encode())} B and {len(large.encode())} B")
    results = {}
    if not args.no_native:
        results["0-native-pulldown-cmark"] = native(REPO / "target" / "md-native.json")
    results.update(peers(docs, small, large, args.budget, args.spin_us))

    base = "0-native-pulldown-cmark"
    print(f"\n{'':34} {'docs/s':>10} {'MB/s':>8} {'x native':>9} {'x mdit':>8} "
          f"{'2KB us':>9} {'200KB ms':>9}")
    for name, r in results.items():
        xn = ratio(results, name, base)
        xm = ratio(results, name, "5-markdown-it-py")
        small_us = r.get("latency_small_s", float("nan")) * 1e6
        large_ms = r.get("latency_large_s", float("nan")) * 1e3
        print(f"{name:34} {r['docs_per_s']:10.0f} {r['mb_per_s']:8.1f} "
              f"{xn if xn is not None else float('nan'):9.3f} "
              f"{xm if xm is not None else float('nan'):8.1f} "
              f"{small_us:9.1f} {large_ms:9.2f}")
    goals = {
        "batched_vs_native (goal >= 0.70)": ratio(results, "1-chunkring-batched", base),
        "batched_vs_cmarkgfm (goal >= 1.5)": ratio(results, "1-chunkring-batched", "3-cmarkgfm"),
        "batched_vs_markdown_it (goal >= 50)": ratio(
            results, "1-chunkring-batched", "5-markdown-it-py"),
        "native_vs_cmarkgfm (issue: ~2.3)": ratio(results, base, "3-cmarkgfm"),
        "native_vs_markdown_it (issue: ~85)": ratio(results, base, "5-markdown-it-py"),
        "cmarkgfm_2kb_latency_over_per_request (goal > 1)": ratio(
            results, "3-cmarkgfm", "2-chunkring-per-request", key="latency_small_s"),
    }
    print()
    for k, v in goals.items():
        print(f"{k}: {'NOT RUN' if v is None else f'{v:.3f}'}")
    print(f"\ncommand: {command}")
    doc = {
        "command": command,
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0],
                    "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "corpus": {"docs": len(docs), "bytes": nbytes, "latency_small_bytes": len(small.encode()),
                   "latency_large_bytes": len(large.encode())},
        "results": results,
        "ratios": goals,
        "spin_us": args.spin_us,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
