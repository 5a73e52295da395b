"""The README's Python example runs as written (against a real worker), so it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_blocks() -> list[str]:
    """Each ```python block of the README run from the repository root; their stdouts."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python example"
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    outs = []
    for block in blocks:
        r = subprocess.run([sys.executable, "-c", block], cwd=REPO, capture_output=True,
                           text=True, timeout=120, env=env)
        assert r.returncode == 0, block + r.stderr
        outs.append(r.stdout)
    return outs


def test_the_readme_python_examples_run():
    quick_start, using = run_blocks()
    assert "'reason': 'not found'" in quick_start, quick_start
    assert "'op': 'add'" in using and "/discussion/0" in using, using
