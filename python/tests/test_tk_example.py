"""The GUI recipe (``examples/tk_aggregate.py``) keeps Tk responsive during a big aggregate.

The real example runs as its own process (``--once``) against a real worker on a headless X
server (Xvfb), aggregating a folder whose context document is many times the response ring
(64 KiB here), so
the answer cannot arrive before the GUI thread has drained it over several polls. The example
prints what its GUI thread saw; the test checks that the spinner kept ticking while the answer
was pending and that the result was shown from the GUI thread. Without ``tkinter`` or Xvfb
(Debian package ``xvfb``) the test is skipped, with the reason printed by ``pytest -rs``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "tk_aggregate.py"


def _skip_reason() -> str | None:
    try:
        import tkinter  # noqa: F401
    except ImportError as e:
        return f"tkinter is not available in this Python ({e})"
    if shutil.which("Xvfb") is None:
        return "Xvfb is not installed (Debian package xvfb): no headless display for Tk"
    return None


@pytest.fixture
def display():
    """A private Xvfb server; its display name (":N")."""
    reason = _skip_reason()
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "1024x768x24"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.fail(f"Xvfb did not start: {proc.communicate()[1].decode(errors='replace')}")
    yield f":{number}"
    proc.terminate()
    proc.wait(10)


def big_folder(root: Path) -> int:
    """About 4 MB of source files, plus a symlink out and a binary file; the file count."""
    line = "fn f() -> u32 { 42 } // " + "x" * 60 + "\n"
    for d in range(20):
        sub = root / f"crate{d:02}" / "src"
        sub.mkdir(parents=True)
        for i in range(25):
            (sub / f"m{i:02}.rs").write_text(line * 100)
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xff")
    os.symlink("/etc/hostname", root / "host")
    return 20 * 25 + 2


def test_tk_stays_responsive_and_gets_the_result_on_its_own_thread(display, worker_bin, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    nfiles = big_folder(folder)
    env = dict(os.environ, DISPLAY=display, CHUNKRING_WORKER=worker_bin)
    r = subprocess.run([sys.executable, str(EXAMPLE), "--once", "--ring-bytes", "65536",
                        str(folder)], env=env,
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["error"] is None, seen
    assert seen["files"] == nfiles
    assert seen["chars"] > 4_000_000
    assert {(e["path"], e["reason"]) for e in seen["errors"]} == {
        ("host", "a symlink"), ("logo.png", "not UTF-8 (invalid byte at offset 0)")}
    # The answer is ~60x the 64 KiB response ring: it can only complete while the GUI thread
    # drains it, one poll at a time, with the main loop (and the spinner) running in between.
    assert seen["polls_pending"] >= 2, seen
    assert seen["ticks_while_pending"] >= 1, seen
    assert seen["result_on_gui_thread"] is True
