"""A Tk window that stays responsive while chunkring aggregates a big folder.

    python examples/tk_aggregate.py [FOLDER]        # default: the sample project in the package

The recipe: never wait for the worker on the GUI thread. Submit the request (publishing it
takes microseconds), then let Tk's main loop poll the handle with ``root.after``: each poll
calls ``handle.done()``, which drains whatever part of the answer the worker has published
and returns at once. When it says True, ``handle.result()`` returns without blocking, and the
result is shown from that ``after`` callback, so it arrives on the GUI thread, where Tk may be
touched. No thread, no lock, no queue; a spinner keeps turning all the while.

This uses only what chunkring's ``Handle`` has always had, ``done()`` and ``result()``. Where
handles are ``concurrent.futures.Future``\\ s, the callback form works too, with one rule: the
callback runs on whichever thread completed the future, never touch Tk from it. Hand the
result to the GUI thread through a queue that an ``after`` loop drains::

    results = queue.SimpleQueue()
    handle.add_done_callback(results.put)          # any thread
    def drain():                                    # the GUI thread
        while not results.empty():
            show(aggregate_result(results.get().result(), on_error="note"))
        root.after(POLL_MS, drain)

Files that cannot be read (a symlink, a binary file, ...) do not fail the build: with
``on_error="note"`` each keeps its heading with a note in place of its content, and the status
line counts them (``doc.errors`` lists each path with its reason).

``--once`` runs one aggregate as soon as the window is up, prints a JSON line describing what
the GUI thread saw, and quits: ``python/tests/test_tk_example.py`` drives the example that way
under Xvfb (with ``--ring-bytes 65536``, so the answer needs many polls to drain).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import tkinter as tk
from pathlib import Path

try:
    import chunkring
except ImportError:  # run from a checkout without `pip install .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import chunkring

from chunkring import ChunkringError, Client
from chunkring.markdown import aggregate_request, aggregate_result

#: How often the GUI thread looks at the handle, in milliseconds.
POLL_MS = 15
#: How often the spinner turns, in milliseconds.
TICK_MS = 10
#: The text widget shows at most this many characters of the document.
SHOWN_CHARS = 200_000
SPINNER = "|/-\\"


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder`` (symlinks included: the worker decides), relative, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(folder)
        out.extend(str(rel / f) for f in sorted(filenames) if not f.startswith("."))
    return out


class AggregateWindow:
    """The window: a status line with a spinner, an Aggregate button and the document."""

    def __init__(self, root: tk.Tk, client: Client, folder: Path):
        self.root = root
        self.client = client
        self.folder = folder
        self.gui_thread = threading.get_ident()
        self.handle = None
        self.on_result = None  # called with the document (or the error) after it is shown
        # What the GUI thread did while the answer was pending (the test reads these).
        self.ticks = 0
        self.ticks_while_pending = 0
        self.polls_pending = 0
        self.result_thread = None
        root.title(f"chunkring: aggregate {folder}")
        self.status = tk.StringVar(value="ready")
        bar = tk.Frame(root)
        bar.pack(fill="x")
        self.button = tk.Button(bar, text="Aggregate", command=self.start)
        self.button.pack(side="left")
        tk.Label(bar, textvariable=self.status, anchor="w").pack(side="left", fill="x")
        self.text = tk.Text(root, width=100, height=30)
        self.text.pack(fill="both", expand=True)
        self._tick()

    def _tick(self) -> None:
        """The GUI's own work (a spinner here): runs every TICK_MS, busy worker or not."""
        self.ticks += 1
        if self.handle is not None:
            self.ticks_while_pending += 1
            elapsed = time.monotonic() - self.started
            self.status.set(f"{SPINNER[self.ticks % 4]} aggregating... {elapsed:.2f} s")
        self.root.after(TICK_MS, self._tick)

    def start(self) -> None:
        """Submit the aggregate and return to the main loop at once."""
        if self.handle is not None:
            return
        files = files_under(self.folder)
        op, body, params = aggregate_request(files, root=self.folder, toc=True, on_error="note")
        self.started = time.monotonic()
        self.nfiles = len(files)
        self.button.configure(state="disabled")
        self.handle = self.client.submit(op, body, params)
        self.root.after(POLL_MS, self._poll)

    def _poll(self) -> None:
        """On the GUI thread: done() drains what is ready without blocking."""
        if not self.handle.done():
            self.polls_pending += 1
            self.root.after(POLL_MS, self._poll)
            return
        handle, self.handle = self.handle, None
        try:
            result = aggregate_result(handle.result(), on_error="note")
        except ChunkringError as e:  # a request error, or the worker died
            result = e
        self._show(result)

    def _show(self, result) -> None:
        self.result_thread = threading.get_ident()
        self.button.configure(state="normal")
        self.text.delete("1.0", "end")
        elapsed = time.monotonic() - self.started
        if isinstance(result, Exception):
            self.status.set(f"failed after {elapsed:.2f} s: {result}")
        else:
            self.text.insert("1.0", result[:SHOWN_CHARS])
            self.status.set(f"{self.nfiles} files, {len(result):,} characters in {elapsed:.2f} s; "
                            f"{len(result.errors)} not included")
        if self.on_result is not None:
            self.on_result(result)


def run_once(window: AggregateWindow) -> None:
    """Start one aggregate when the main loop runs; print what the GUI thread saw; quit."""

    def report(result) -> None:
        failed = isinstance(result, Exception)
        print(json.dumps({
            "files": window.nfiles,
            "chars": 0 if failed else len(result),
            "errors": [] if failed else result.errors,
            "error": str(result) if failed else None,
            "ticks_while_pending": window.ticks_while_pending,
            "polls_pending": window.polls_pending,
            "result_on_gui_thread": window.result_thread == window.gui_thread,
        }), flush=True)
        window.root.after(0, window.root.destroy)

    window.on_result = report
    window.root.after(0, window.start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", type=Path,
                    default=Path(chunkring.__file__).parent / "sample",
                    help="the folder to aggregate (default: the bundled sample project)")
    ap.add_argument("--ring-bytes", type=int, default=None,
                    help="ring size for the spawned worker (default: the worker's, 4 MiB)")
    ap.add_argument("--once", action="store_true",
                    help="aggregate once, print a JSON line of what the GUI thread saw, quit")
    args = ap.parse_args(argv)
    root = tk.Tk()
    with Client.spawn(ring_bytes=args.ring_bytes) as client:
        window = AggregateWindow(root, client, args.folder.resolve())
        if args.once:
            run_once(window)
        root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
