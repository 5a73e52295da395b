"""The main job on the bundled sample data (the README's first command runs this).

Starts a worker, then, through the stdlib-only client:

1. pushes a batch of echo requests of random sizes (many in flight) and checks every answer;
2. aggregates ``sample/`` into one context document (the worker reads the files under the
   root we name), renders it to HTML and outlines it: written to ``target/demo/``;
3. records a 60-snapshot UI history (push, undo, redo, diff, stats);
4. prints the worker's ``inspect`` table.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from chunkring import Client  # noqa: E402
from chunkring import _layout as L  # noqa: E402

OUT = REPO / "target" / "demo"


def echo_batch(client: Client, n: int = 10_000) -> None:
    rng = random.Random(7)
    bodies = [rng.randbytes(rng.choice((0, 1, 63, 64, 65, 700, 4096, 70_000))) for _ in range(n)]
    t0 = time.perf_counter()
    handles = [client.submit(L.OP_ECHO, body) for body in bodies]
    bad = sum(h.result(timeout=60) != body for h, body in zip(handles, bodies))
    dt = time.perf_counter() - t0
    mb = sum(map(len, bodies)) / 1e6
    print(f"echo: {n} requests ({mb:.1f} MB) answered in {dt * 1e3:.0f} ms "
          f"({n / dt:,.0f} req/s), {bad} mismatches")
    if bad:
        raise SystemExit("echo answers differ from their requests")


def markdown(client: Client) -> None:
    files = sorted(str(p.relative_to(REPO / "sample")) for p in (REPO / "sample").rglob("*") if p.is_file())
    context = client.markdown.aggregate(files, root=str(REPO / "sample"), toc=True)
    html = client.markdown.render(context, tables=True, footnotes=True, tasklists=True)
    outline = client.markdown.outline(context)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "context.md").write_text(context)
    (OUT / "context.html").write_text(html)
    (OUT / "outline.json").write_text(json.dumps(outline, indent=1))
    headings = [h["text"] for h in outline["headings"] if h["level"] == 3]
    print(f"markdown: aggregated {len(files)} files into {len(context):,} chars "
          f"({len(headings)} file sections), rendered {len(html):,} chars of HTML, "
          f"{outline['words']} words -> {OUT.relative_to(REPO)}/")


def snapshots(client: Client) -> None:
    h = client.history("demo-ui", capacity=50)
    discussion = []
    for i in range(60):
        discussion.append({"role": "user" if i % 2 == 0 else "assistant", "text": f"message {i} " * 40})
        h.push({"discussion": list(discussion), "files": ["sample/README.md"], "tab": i % 3}, label=f"step {i}")
    before = h.current()
    h.undo()
    h.undo()
    patch = h.diff(len(h) - 1, len(h) - 3)
    h.redo()
    stats = h.stats()
    print(f"snapshots: {len(h)} kept of 60 pushed (capacity 50), undo/redo ok, "
          f"diff has {len(patch)} ops, stored {stats['stored_bytes']:,} B for "
          f"{stats['logical_bytes']:,} B logical (sharing x{stats['sharing_ratio']:.1f})")
    assert h.current() != before and h.can_redo


def main() -> None:
    with Client.spawn() as client:
        print(f"worker pid {client.pid}, region chunkring-{client.name}, "
              f"rings of {client.ring_bytes} B, chunks of {client.chunk_bytes} B")
        echo_batch(client)
        markdown(client)
        snapshots(client)
        binary = os.environ.get("CHUNKRING_WORKER") or str(REPO / "target" / "release" / "chunkring")
        print("inspect:")
        print(subprocess.run([binary, "inspect", client.name], capture_output=True, text=True, check=True).stdout)


if __name__ == "__main__":
    main()
