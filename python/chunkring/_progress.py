"""Progress of a long command-line run (``chunkring demo``, ``chunkring bench``) on stderr.

On a terminal one status line is redrawn in place (``[2/5] aggregate 1,200 files … 0.8 s``);
elsewhere (a pipe, a CI log) each step is one line when it starts, so logs stay readable.
Results go to stdout as before: progress never mixes into what a script parses.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Numbered steps of one run; ``note`` updates the current step (a count while scanning)."""

    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.step = 0
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._tty = enabled and self._stream.isatty()
        self._label = ""
        self._t0 = time.perf_counter()
        self._last_draw = 0.0

    def start(self, label: str) -> None:
        """Begins the next step."""
        self.step += 1
        self._label = label
        if not self._enabled:
            return
        if self._tty:
            self._draw(force=True)
        else:
            print(f"[{self.step}/{self.total}] {label}", file=self._stream, flush=True)

    def note(self, detail: str) -> None:
        """Updates the current step's detail (redrawn at most 10 times a second on a terminal;
        not printed elsewhere)."""
        if self._tty:
            self._draw(detail)

    def done(self) -> None:
        """Clears the status line (terminal only)."""
        if self._tty:
            print("\r\x1b[K", end="", file=self._stream, flush=True)

    def _draw(self, detail: str = "", force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        text = f"[{self.step}/{self.total}] {self._label} {detail} {now - self._t0:.1f} s"
        print(f"\r\x1b[K{text}", end="", file=self._stream, flush=True)
