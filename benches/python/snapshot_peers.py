"""Undo/redo history of UI snapshots: chunkring vs what a Python GUI would do instead.

Measures, in one run and on the same documents (UISnapshot-like: 13 fields, lists of dicts
for discussion entries, files, context files, screenshots; sizes below):

* Python-thread CPU time (``time.thread_time``) per ``push`` and per ``undo``, paced at 60 Hz,
  for: ``copy.deepcopy`` of the dict; a ``to_dict``/``from_dict`` deep copy through dataclasses;
  ``pickle`` bytes; an orjson-bytes ``deque`` (the fastest pure-Python-with-dependencies
  history); and chunkring (``marshal.dumps``, then the default write-behind sends 8 queued
  pushes with one ``submit_many``: the mean includes the sending push; ``wb=1`` sends every
  push at once; ``chunkring+orjson`` pushes ``orjson.dumps`` bytes as JSON and undoes with
  ``orjson.loads`` of the raw reply; undo = one request + ``marshal.loads``). Every undo returns a fresh object
  the GUI may mutate. Means are the amortized cost; medians hide the sending pushes.
* Memory held by a full 100-snapshot history: Python heap growth (tracemalloc) for each
  approach, plus the worker's ``stored_bytes`` for chunkring.
* ``process`` throughput for batches of 100 and 10,000 snapshots (snapshots/s and MB/s),
  against a pure-Python equivalent (hashlib digest + field/list-entry comparison).

Writes ``bench-results/snapshots.json`` and prints a ratio table and the exact command.
Run: ``.venv/bin/python benches/python/snapshot_peers.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import collections
import copy
import dataclasses
import gc
import hashlib
import json
import marshal
import os
import pickle
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

from chunkring.client import Client  # noqa: E402

try:
    import orjson
except ImportError:  # pragma: no cover - reported in the output
    orjson = None


# ---- the documents ---------------------------------------------------------------------------

@dataclasses.dataclass
class Entry:
    role: str
    content: str
    ts: int
    collapsed: bool
    model: str | None

    def to_dict(self):
        return {"role": self.role, "content": self.content, "ts": self.ts,
                "collapsed": self.collapsed, "model": self.model}

    @classmethod
    def from_dict(cls, d):
        return cls(d["role"], d["content"], d["ts"], d["collapsed"], d["model"])


@dataclasses.dataclass
class FileRef:
    path: str
    open: bool
    lines: int

    def to_dict(self):
        return {"path": self.path, "open": self.open, "lines": self.lines}

    @classmethod
    def from_dict(cls, d):
        return cls(d["path"], d["open"], d["lines"])


@dataclasses.dataclass
class UISnapshot:
    """13 fields, as in the GUI this benchmark stands in for."""

    discussion: list
    files: list
    context_files: list
    screenshots: list
    title: str
    model: str
    temperature: float
    top_p: float
    max_tokens: int
    system_prompt: str
    cursor: int
    scroll: float
    dirty: bool

    def to_dict(self):
        return {
            "discussion": [e.to_dict() for e in self.discussion],
            "files": [f.to_dict() for f in self.files],
            "context_files": [f.to_dict() for f in self.context_files],
            "screenshots": [dict(s) for s in self.screenshots],
            "title": self.title, "model": self.model, "temperature": self.temperature,
            "top_p": self.top_p, "max_tokens": self.max_tokens,
            "system_prompt": self.system_prompt, "cursor": self.cursor, "scroll": self.scroll,
            "dirty": self.dirty,
        }

    @classmethod
    def from_dict(cls, d):
        return cls(
            [Entry.from_dict(e) for e in d["discussion"]],
            [FileRef.from_dict(f) for f in d["files"]],
            [FileRef.from_dict(f) for f in d["context_files"]],
            [dict(s) for s in d["screenshots"]],
            d["title"], d["model"], d["temperature"], d["top_p"], d["max_tokens"],
            d["system_prompt"], d["cursor"], d["scroll"], d["dirty"],
        )


def make_doc(n_entries: int, variant: int) -> dict:
    """A snapshot dict; ``variant`` edits one discussion entry (one GUI change per push)."""
    disc = [
        {"role": "user" if i % 2 == 0 else "assistant",
         "content": f"entry {i}: " + "some discussion text that a user typed " * 4,
         "ts": 1_700_000_000 + i, "collapsed": i % 5 == 0, "model": None if i % 2 == 0 else "m-1"}
        for i in range(n_entries)
    ]
    disc[variant % n_entries]["content"] += f" (edit {variant})"
    return {
        "discussion": disc,
        "files": [{"path": f"src/pkg/module_{i}.py", "open": i % 3 == 0, "lines": 100 + i} for i in range(30)],
        "context_files": [{"path": f"docs/ctx_{i}.md", "open": False, "lines": 40} for i in range(10)],
        "screenshots": [{"path": f"shots/{i}.png", "w": 1920, "h": 1080} for i in range(3)],
        "title": "refactor session", "model": "m-1", "temperature": 0.7, "top_p": 0.95,
        "max_tokens": 4096, "system_prompt": "You are a careful assistant. " * 5,
        "cursor": 17, "scroll": 0.25, "dirty": True,
    }


def entries_for(size_kb: int) -> int:
    lo, hi = 1, 2000
    while lo < hi:
        mid = (lo + hi) // 2
        if len(marshal.dumps(make_doc(mid, 0), 4)) < size_kb * 1024:
            lo = mid + 1
        else:
            hi = mid
    return lo


# ---- the approaches --------------------------------------------------------------------------

class Approach:
    name = ""

    def push(self, doc): ...

    def undo(self): ...


class DeepCopy(Approach):
    name = "copy.deepcopy"

    def __init__(self):
        self.h = collections.deque(maxlen=100)

    def push(self, doc):
        self.h.append(copy.deepcopy(doc))

    def undo(self):
        self.h.pop()
        return copy.deepcopy(self.h[-1])


class ToFromDict(Approach):
    name = "to_dict/from_dict"

    def __init__(self):
        self.h = collections.deque(maxlen=100)

    def push(self, obj):
        self.h.append(obj.to_dict())

    def undo(self):
        self.h.pop()
        return UISnapshot.from_dict(self.h[-1])


class Pickle(Approach):
    name = "pickle bytes"

    def __init__(self):
        self.h = collections.deque(maxlen=100)

    def push(self, doc):
        self.h.append(pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL))

    def undo(self):
        self.h.pop()
        return pickle.loads(self.h[-1])


class Orjson(Approach):
    name = "orjson deque"

    def __init__(self):
        self.h = collections.deque(maxlen=100)

    def push(self, doc):
        self.h.append(orjson.dumps(doc))

    def undo(self):
        self.h.pop()
        return orjson.loads(self.h[-1])


class Chunkring(Approach):
    name = "chunkring"

    def __init__(self, client, name, write_behind=None):
        self.hist = client.history(name, capacity=100)
        if write_behind is not None:
            self.hist.write_behind = write_behind
            self.name = f"chunkring wb={write_behind}"

    def push(self, doc):
        self.hist.push(doc)

    def undo(self):
        return self.hist.undo()


class ChunkringOrjson(Chunkring):
    """chunkring fed JSON bytes by orjson (what a user who has orjson can do)."""

    def __init__(self, client, name):
        super().__init__(client, name)
        self.name = "chunkring+orjson"

    def push(self, doc):
        self.hist.push(orjson.dumps(doc), encoding="json")

    def undo(self):
        return orjson.loads(self.hist.undo(raw=True))


# ---- measurement -----------------------------------------------------------------------------

def paced(fn, items, hz):
    """Calls fn(item) at ``hz``; returns per-call thread CPU seconds and wall seconds."""
    cpu, wall = [], []
    period = 1.0 / hz if hz else 0.0
    nxt = time.perf_counter()
    for it in items:
        if period:
            nxt += period
        c0, w0 = time.thread_time(), time.perf_counter()
        fn(it)
        c1, w1 = time.thread_time(), time.perf_counter()
        cpu.append(c1 - c0)
        wall.append(w1 - w0)
        if period:
            delay = nxt - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    return cpu, wall


def summary(xs):
    xs = sorted(xs)
    return {"mean_us": statistics.fmean(xs) * 1e6, "median_us": xs[len(xs) // 2] * 1e6,
            "p95_us": xs[int(len(xs) * 0.95)] * 1e6}


def time_history(approach, inputs, hz, n_push, n_undo):
    """Warm-up, then ``n_push`` pushes (history full → evictions), then ``n_undo`` undos."""
    for x in inputs[:100]:
        approach.push(x)
    if isinstance(approach, Chunkring):
        approach.hist.flush()
    push_in = [inputs[i % len(inputs)] for i in range(n_push)]
    gc.collect()
    pcpu, pwall = paced(approach.push, push_in, hz)
    if isinstance(approach, Chunkring):
        # The queued tail and the answers still pending are part of the pushes' cost:
        # spread the flush's CPU over them.
        c0 = time.thread_time()
        approach.hist.flush()
        extra = (time.thread_time() - c0) / len(pcpu)
        pcpu = [c + extra for c in pcpu]
    ucpu, uwall = paced(lambda _: approach.undo(), range(n_undo), hz)
    return {"push_cpu": summary(pcpu), "push_wall": summary(pwall),
            "undo_cpu": summary(ucpu), "undo_wall": summary(uwall)}


def history_memory(make, inputs):
    """Python heap growth of building a full 100-snapshot history."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    a = make()
    for x in inputs[:100]:
        a.push(x)
    if isinstance(a, Chunkring):
        a.hist.flush()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return a, grown


def py_process(docs):
    """What ``process`` computes, in pure Python (the peer)."""
    out, prev = [], None
    for i, d in enumerate(docs):
        b = marshal.dumps(d, 4)
        rec = {"index": i, "digest": hashlib.blake2b(b, digest_size=8).hexdigest(), "size": len(b)}
        if prev is None:
            rec["changed"], rec["entries"] = list(d), {}
        else:
            changed = [k for k in d if k not in prev or prev[k] != d[k]] + [k for k in prev if k not in d]
            entries = {}
            for k in changed:
                a, c = prev.get(k), d.get(k)
                if isinstance(a, list) and isinstance(c, list):
                    entries[k] = {"changed": [j for j in range(len(c)) if j >= len(a) or a[j] != c[j]],
                                  "old_len": len(a), "new_len": len(c)}
            rec["changed"], rec["entries"] = changed, entries
        out.append(rec)
        prev = d
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer iterations, no pacing")
    ap.add_argument("--hz", type=float, default=60.0)
    ap.add_argument("--sizes", default="10,30,50", help="document sizes in KB (marshal)")
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "snapshots.json"))
    args = ap.parse_args()
    hz = 0 if args.quick else args.hz
    n_push, n_undo = (60, 60) if args.quick else (180, 90)
    command = " ".join([sys.executable] + sys.argv)
    results = {"command": command, "python": platform.python_version(),
               "machine": platform.machine(), "cpus": os.cpu_count(), "hz": hz,
               "n_push": n_push, "n_undo": n_undo, "sizes": [], "batch": []}
    if orjson is None:
        print("NOT RUN: orjson missing (pip install -r benches/python/requirements-snapshots.txt)")
    with Client.spawn() as client:
        # One-time client-side initialisation (lazy objects, the ring's first pages) is not
        # part of any history's memory: warm up before measuring.
        warm = client.history("warm-up", capacity=4)
        for v in range(20):
            warm.push(make_doc(20, v))
            warm.undo()
        warm.drop()
        for kb in [int(s) for s in args.sizes.split(",")]:
            n = entries_for(kb)
            docs = [make_doc(n, v) for v in range(200)]
            objs = [UISnapshot.from_dict(d) for d in docs]
            size = len(marshal.dumps(docs[0], 4))
            row = {"size_kb": kb, "marshal_bytes": size, "json_bytes": len(json.dumps(docs[0])),
                   "approaches": {}}
            makers = [
                (DeepCopy, docs), (ToFromDict, objs), (Pickle, docs),
                *([(Orjson, docs)] if orjson else []),
                (lambda: Chunkring(client, f"bench-{kb}-{time.monotonic_ns()}"), docs),
                (lambda: Chunkring(client, f"bench1-{kb}-{time.monotonic_ns()}", 1), docs),
                *([(lambda: ChunkringOrjson(client, f"bencho-{kb}-{time.monotonic_ns()}"), docs)]
                  if orjson else []),
            ]
            for make, inputs in makers:
                a, mem = history_memory(make, inputs)
                t = time_history(a, inputs, hz, n_push, n_undo)
                if hz:
                    # Back to back (hot caches): the same ops without pacing.
                    hot = time_history(a, inputs, 0, n_push, n_undo)
                    t["unpaced"] = {k: hot[k] for k in ("push_cpu", "undo_cpu")}
                t["python_heap_bytes"] = mem
                if isinstance(a, Chunkring):
                    s = a.hist.stats()
                    t["worker_stored_bytes"] = s["stored_bytes"]
                    t["worker_logical_bytes"] = s["logical_bytes"]
                    a.hist.drop()
                row["approaches"][a.name] = t
                del a
                gc.collect()
            results["sizes"].append(row)
        # process throughput: batches of 100 and 10,000 (10 KB documents).
        n = entries_for(10)
        for count in (100, 10_000):
            docs = [make_doc(n, v) for v in range(count)]
            total = sum(len(marshal.dumps(d, 4)) for d in docs)
            reps = 5 if count == 100 else 1
            t0 = time.perf_counter()
            for _ in range(reps):
                out = client.snapshots.process(docs)
            t_cr = (time.perf_counter() - t0) / reps
            t0 = time.perf_counter()
            for _ in range(reps):
                ref = py_process(docs)
            t_py = (time.perf_counter() - t0) / reps
            assert [o["changed"] for o in out] == [r["changed"] for r in ref]
            assert [o["entries"] for o in out] == [r["entries"] for r in ref]
            results["batch"].append({
                "count": count, "bytes": total,
                "chunkring": {"seconds": t_cr, "snapshots_per_s": count / t_cr, "mb_per_s": total / t_cr / 1e6},
                "pure_python": {"seconds": t_py, "snapshots_per_s": count / t_py, "mb_per_s": total / t_py / 1e6},
            })
            del docs, out, ref
            gc.collect()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    report(results)
    print(f"\nwrote {args.out}\ncommand: {command}")


def report(r):
    print(f"UI-snapshot history: Python-thread CPU per op (µs, median / mean), paced at {r['hz'] or 'max'} Hz")
    print("ratios (÷ copy.deepcopy, ÷ orjson deque) use medians; means include preemption on a shared machine")
    print("and, for chunkring's write-behind, the push that sends the queue (see the mean line below each table)")
    for row in r["sizes"]:
        a = row["approaches"]
        dc, oj = a["copy.deepcopy"], a.get("orjson deque")
        print(f"\n{row['size_kb']} KB doc ({row['marshal_bytes']} B marshal, {row['json_bytes']} B json)")
        print(f"{'approach':18} {'push med/mean':>15} {'undo med/mean':>15} {'push/dc':>8} {'undo/dc':>8} "
              f"{'push/oj':>8} {'undo/oj':>8} {'heap KB':>8} {'worker KB':>9}")
        for name, t in a.items():
            p, u = t["push_cpu"], t["undo_cpu"]
            rel = lambda x, y, k: x[k]["median_us"] / y[k]["median_us"] if y else float("nan")
            print(f"{name:18} {p['median_us']:7.1f}/{p['mean_us']:<7.1f} {u['median_us']:7.1f}/{u['mean_us']:<7.1f} "
                  f"{rel(t, dc, 'push_cpu'):8.3f} {rel(t, dc, 'undo_cpu'):8.3f} "
                  f"{rel(t, oj, 'push_cpu'):8.2f} {rel(t, oj, 'undo_cpu'):8.2f} "
                  f"{t['python_heap_bytes'] / 1024:8.0f} {t.get('worker_stored_bytes', 0) / 1024:9.0f}")
        if "unpaced" in dc:
            print("back to back (unpaced, hot caches), median µs push/undo and ÷ deepcopy, ÷ orjson:")
            for name, t in a.items():
                p, u = t["unpaced"]["push_cpu"]["median_us"], t["unpaced"]["undo_cpu"]["median_us"]
                dp, du = dc["unpaced"]["push_cpu"]["median_us"], dc["unpaced"]["undo_cpu"]["median_us"]
                op = oj["unpaced"]["push_cpu"]["median_us"] if oj else float("nan")
                ou = oj["unpaced"]["undo_cpu"]["median_us"] if oj else float("nan")
                print(f"  {name:18} {p:7.1f} {u:7.1f}   {p / dp:6.3f} {u / du:6.3f}   {p / op:5.2f} {u / ou:5.2f}")
        cr = a["chunkring"]
        print(f"chunkring (write-behind 8) mean push / deepcopy mean: "
              f"{cr['push_cpu']['mean_us'] / dc['push_cpu']['mean_us']:.3f}; / orjson mean: "
              f"{cr['push_cpu']['mean_us'] / oj['push_cpu']['mean_us']:.2f}" if oj else "")
        held = cr["python_heap_bytes"] + cr["worker_stored_bytes"]
        print(f"memory of a full 100-snapshot history: deep copies {dc['python_heap_bytes'] / 1024:.0f} KB, "
              f"chunkring {held / 1024:.0f} KB (Python heap + worker stored) → {dc['python_heap_bytes'] / max(held, 1):.1f}x less")
    print("\nprocess, 10 KB docs (end to end from dicts: marshal.dumps, transfer, worker, json.loads):")
    for b in r["batch"]:
        c, p = b["chunkring"], b["pure_python"]
        print(f"batch {b['count']:>6}: chunkring {c['snapshots_per_s']:8.0f} snap/s {c['mb_per_s']:6.1f} MB/s | "
              f"pure Python {p['snapshots_per_s']:8.0f} snap/s {p['mb_per_s']:6.1f} MB/s | "
              f"ratio {c['snapshots_per_s'] / p['snapshots_per_s']:.2f}")


if __name__ == "__main__":
    main()
