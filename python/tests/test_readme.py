"""The README's Python example runs as written (against a real worker), so it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_python_example_runs():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python example"
    r = subprocess.run([sys.executable, "-c", blocks[0]], cwd=REPO, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert "'op': 'add'" in r.stdout and "/discussion/0" in r.stdout, r.stdout
