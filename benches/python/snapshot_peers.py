"""Undo/redo history of UI snapshots: chunkring vs what a Python GUI would do instead.

Measures, in one run and on the same documents (UISnapshot-like: 13 fields, lists of dicts
for discussion entries, files, context files, screenshots; sizes below):

* Python-thread CPU time (``time.thread_time``) per ``push`` and per ``undo``, paced at 60 Hz,
  for: ``copy.deepcopy`` of the dict; a ``to_dict``/``from_dict`` deep copy through dataclasses;
  ``pickle`` bytes; an orjson-bytes ``deque`` (the fastest pure-Python-with-dependencies
  history); and chunkring (``marshal.dumps`` + one pipelined request; undo = one request +
  ``marshal.loads``). Every undo returns a fresh object the GUI may mutate.
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

    def __init__(self, client, name):
        self.hist = client.history(name, capacity=100)

    def push(self, doc):
        self.hist.push(doc)

    def undo(self):
        return self.hist.undo()


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
        approach.hist.flush()
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
            ]
            for make, inputs in makers:
                a, mem = history_memory(make, inputs)
                t = time_history(a, inputs, hz, n_push, n_undo)
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
    print(f"UI-snapshot history, Python-thread CPU per op (mean µs), paced at {r['hz'] or 'max'} Hz")
    for row in r["sizes"]:
        a = row["approaches"]
        dc = a["copy.deepcopy"]
        print(f"\n{row['size_kb']} KB doc ({row['marshal_bytes']} B marshal, {row['json_bytes']} B json)")
        print(f"{'approach':20} {'push µs':>9} {'undo µs':>9} {'push/dc':>8} {'undo/dc':>8} {'heap KB':>9} {'worker KB':>10}")
        for name, t in a.items():
            p, u = t["push_cpu"]["mean_us"], t["undo_cpu"]["mean_us"]
            print(f"{name:20} {p:9.1f} {u:9.1f} {p / dc['push_cpu']['mean_us']:8.3f} "
                  f"{u / dc['undo_cpu']['mean_us']:8.3f} {t['python_heap_bytes'] / 1024:9.0f} "
                  f"{t.get('worker_stored_bytes', 0) / 1024:10.0f}")
        cr = a["chunkring"]
        if "orjson deque" in a:
            o = a["orjson deque"]
            print(f"chunkring / orjson: push {cr['push_cpu']['mean_us'] / o['push_cpu']['mean_us']:.2f}x, "
                  f"undo {cr['undo_cpu']['mean_us'] / o['undo_cpu']['mean_us']:.2f}x")
        held = cr["python_heap_bytes"] + cr["worker_stored_bytes"]
        print(f"memory: 100 deep copies {dc['python_heap_bytes'] / 1024:.0f} KB vs chunkring "
              f"{held / 1024:.0f} KB (heap + worker) = {dc['python_heap_bytes'] / max(held, 1):.1f}x less")
    print("\nprocess (10 KB docs):")
    for b in r["batch"]:
        c, p = b["chunkring"], b["pure_python"]
        print(f"batch {b['count']:>6}: chunkring {c['snapshots_per_s']:9.0f} snap/s {c['mb_per_s']:7.1f} MB/s | "
              f"pure Python {p['snapshots_per_s']:9.0f} snap/s {p['mb_per_s']:7.1f} MB/s | "
              f"{c['snapshots_per_s'] / p['snapshots_per_s']:.1f}x")


if __name__ == "__main__":
    main()
