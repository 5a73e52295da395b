"""``chunkring demo [PATH]``: chunkring on a folder, against the pure-Python way, in one run.

Starts a worker, then, through the stdlib-only client:

1. pushes a batch of echo requests of random sizes (many in flight) and checks every answer;
2. aggregates the folder's text files into one context document (the worker reads them),
   then builds the same document in pure Python and compares bytes and times;
3. renders it to HTML (against markdown-it-py, when installed) and outlines it (against a
   regex outline in Python);
4. keeps an undo history of a growing UI state (against a deque of ``copy.deepcopy``);
5. prints a short report; ``--out DIR`` also writes context.md, context.html, outline.json.

Without PATH it works on the small sample project shipped inside the package
(``chunkring/sample``), so it runs the same from a wheel install and from a checkout.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

from . import _layout as L
from ._aggregate_py import aggregate_py
from ._progress import Progress
from .client import Client
from .errors import ChunkringError

SAMPLE = Path(__file__).resolve().parent / "sample"
#: Folders a context build never wants.
SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "target", "__pycache__", "build", "dist"}
MAX_FILE_BYTES = 1 << 20

T = TypeVar("T")


def best_of(fn: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """Fastest of ``repeat`` runs of ``fn`` in seconds, and its last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out  # type: ignore[return-value]


def scan(root: Path, max_files: int, progress: Progress | None = None) -> list[str]:
    """Relative paths of the UTF-8 text files under ``root`` (no symlinks, no hidden or build
    folders, at most 1 MiB each), sorted; at most ``max_files``."""
    found: list[str] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            continue
        try:
            path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found.append(rel.as_posix())
        if progress is not None and len(found) % 100 == 0:
            progress.note(f"{len(found):,} files")
        if len(found) >= max_files:
            break
    return found


def outline_py(text: str) -> dict:
    """A regex outline: ATX headings outside fenced code, fenced code blocks, words."""
    headings, blocks, fence = [], 0, None
    for line in text.splitlines():
        m = re.match(r" {0,3}(`{3,}|~{3,})", line)
        if fence is None and m:
            fence, blocks = m.group(1), blocks + 1
        elif fence is not None and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            fence = None
        elif fence is None and (h := re.match(r" {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)):
            headings.append({"level": len(h.group(1)), "text": h.group(2)})
    return {"headings": headings, "code_blocks": blocks, "words": len(text.split())}


def ui_states(n: int) -> list[dict]:
    """``n`` snapshots of a chat-like GUI state that grows by one message per step."""
    discussion: list[dict] = []
    states = []
    for i in range(n):
        discussion.append({"role": "user" if i % 2 == 0 else "assistant", "text": f"message {i} " * 40})
        states.append({"discussion": list(discussion), "files": ["README.md", "docs/tasks.md"],
                       "tab": i % 3, "scroll": i * 17})
    return states


class Report:
    """Rows of ``step | chunkring | pure Python | ratio | note``."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float | None, str]] = []

    def add(self, step: str, ours: float, theirs: float | None, note: str = "") -> None:
        self.rows.append((step, ours, theirs, note))

    def print(self) -> None:
        print(f"  {'step':<34} {'chunkring':>10} {'pure Python':>12} {'speed-up':>9}  note")
        for step, ours, theirs, note in self.rows:
            py = f"{theirs * 1e3:9.2f} ms" if theirs is not None else f"{'-':>12}"
            ratio = f"{theirs / ours:8.1f}x" if theirs is not None and ours > 0 else f"{'-':>9}"
            print(f"  {step:<34} {ours * 1e3:7.2f} ms {py} {ratio}  {note}")


def echo_batch(client: Client, n: int) -> str:
    rng = random.Random(7)
    bodies = [rng.randbytes(rng.choice((0, 1, 63, 64, 65, 700, 4096, 70_000))) for _ in range(n)]
    t0 = time.perf_counter()
    handles = [client.submit(L.OP_ECHO, body) for body in bodies]
    bad = sum(h.result(timeout=60) != body for h, body in zip(handles, bodies))
    dt = time.perf_counter() - t0
    if bad:
        raise SystemExit(f"chunkring demo: {bad} echo answers differ from their requests")
    mb = sum(map(len, bodies)) / 1e6
    return f"{n:,} requests ({mb:.1f} MB) in {dt * 1e3:.0f} ms: {n / dt:,.0f} req/s, every answer equal"


def markdown_steps(client: Client, root: Path, files: list[str], report: Report,
                   progress: Progress) -> dict[str, str]:
    progress.start(f"aggregate {len(files):,} files (chunkring, then pure Python)")
    t_ours, context = best_of(lambda: client.markdown.aggregate(files, root=str(root)))
    t_py, context_py = best_of(lambda: aggregate_py(root, files))
    same = "same bytes" if context == context_py else "DIFFERENT bytes"
    report.add(f"aggregate {len(files)} files", t_ours, t_py, f"{len(context):,} chars, {same}")

    progress.start(f"render {len(context):,} chars to HTML")
    t_ours, html = best_of(lambda: client.markdown.render(context))
    try:
        from markdown_it import MarkdownIt  # type: ignore[import-not-found]

        md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
        t_py, _ = best_of(lambda: md.render(context))
        note = "vs markdown-it-py"
    except ImportError:
        t_py, note = None, "no pure-Python renderer installed (pip install markdown-it-py)"
    report.add("render to HTML", t_ours, t_py, f"{len(html):,} chars, {note}")

    progress.start("outline")
    t_ours, outline = best_of(lambda: client.markdown.outline(context))
    t_py, outline_rough = best_of(lambda: outline_py(context))
    report.add("outline", t_ours, t_py,
               f"{len(outline['headings'])} headings, {outline['words']:,} words "
               f"(regex: {len(outline_rough['headings'])}, {outline_rough['words']:,})")
    return {"context.md": context, "context.html": html, "outline.json": json.dumps(outline, indent=1)}


def snapshot_steps(client: Client, report: Report, progress: Progress) -> str:
    progress.start("undo history of a GUI state")
    states = ui_states(60)

    def ours():
        h = client.history(f"demo-{time.monotonic_ns()}", capacity=50)
        for i, s in enumerate(states):
            h.push(s, label=f"step {i}")
        h.undo()
        h.undo()
        back = h.redo()
        return h, back

    def theirs():
        past: collections.deque = collections.deque(maxlen=50)
        for s in states:
            past.append(copy.deepcopy(s))
        future = [past.pop(), past.pop()]
        back = copy.deepcopy(future[-1])
        past.append(future.pop())
        return past, back

    t_ours, (h, back) = best_of(ours)
    t_py, (_, back_py) = best_of(theirs)
    assert back == back_py, "undo/redo disagree with the pure-Python history"
    report.add("history: 60 pushes, 2 undo, 1 redo", t_ours, t_py, "vs a deque of copy.deepcopy")
    stats = h.stats()
    return (f"{len(h)} kept of 60 (capacity 50), stored {stats['stored_bytes']:,} B for "
            f"{stats['logical_bytes']:,} B logical (sharing x{stats['sharing_ratio']:.1f}), "
            f"diff of the last two: {len(h.diff(len(h) - 2, len(h) - 1))} patch ops")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="chunkring demo",
        description="Run chunkring on a folder of text files and compare each step with the "
                    "pure-Python way, in the same run: aggregate the files into one context "
                    "document, render it, outline it, keep an undo history of a GUI state.",
        epilog=f"Without PATH: the sample project bundled in the package ({SAMPLE}). "
               "Exit status: 0 done, 1 the worker failed, 2 bad usage.")
    ap.add_argument("path", nargs="?", metavar="PATH", help="folder to work on (default: the bundled sample)")
    ap.add_argument("--out", metavar="DIR", help="also write context.md, context.html and outline.json into DIR")
    ap.add_argument("--echo", type=int, default=10_000, metavar="N",
                    help="echo requests of random sizes to push through the rings first (default 10000, 0 skips)")
    ap.add_argument("--max-files", type=int, default=2000, metavar="N",
                    help="take at most N files (default 2000)")
    ap.add_argument("--quiet", action="store_true",
                    help="no progress on stderr (results still go to stdout)")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    root = Path(args.path).resolve() if args.path else SAMPLE
    if not root.is_dir():
        ap.error(f"{root} is not a folder")
    t_start = time.perf_counter()
    progress = Progress(6 if args.echo else 5, enabled=not args.quiet)
    progress.start(f"scan {root}")
    files = scan(root, args.max_files, progress)
    if not files:
        print(f"chunkring demo: no UTF-8 text files under {root}", file=sys.stderr)
        return 1
    report = Report()
    try:
        with Client.spawn() as client:
            print(f"chunkring demo on {root} ({len(files)} files)")
            print(f"worker pid {client.pid}, rings of {client.ring_bytes:,} B, chunks of {client.chunk_bytes} B")
            if args.echo:
                progress.start(f"echo {args.echo:,} requests of random sizes")
                print(f"echo: {echo_batch(client, args.echo)}")
            outputs = markdown_steps(client, root, files, report, progress)
            history = snapshot_steps(client, report, progress)
            progress.done()
    except ChunkringError as exc:
        print(f"chunkring demo: {exc}", file=sys.stderr)
        return 1
    print("best of 3 runs each:")
    report.print()
    print(f"history: {history}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, text in outputs.items():
            (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {', '.join(outputs)} to {out}/")
    print(f"done in {time.perf_counter() - t_start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
