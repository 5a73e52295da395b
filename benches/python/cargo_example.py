"""Build and find a cargo example of this repository (``examples/NAME.rs``) for the benches."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def example_bin(name: str) -> tuple[str | None, str]:
    """``(path, "")`` of ``target/release/examples/NAME``, built (or brought up to date) with
    ``cargo build --release --example NAME`` when cargo is on PATH; ``(None, why)`` when it
    cannot be had, so the caller can say ``NOT RUN`` with the reason."""
    exe = REPO / "target" / "release" / "examples" / name
    if shutil.which("cargo"):
        r = subprocess.run(["cargo", "build", "--release", "--example", name], cwd=REPO,
                           check=False, capture_output=True, text=True)
        if r.returncode != 0:
            tail = " ".join(r.stderr.strip().splitlines()[-3:])
            return None, f"cargo build --release --example {name} failed: {tail}"
    elif not exe.exists():
        return None, f"cargo is not on PATH and {exe.relative_to(REPO)} is not built"
    return str(exe), ""
