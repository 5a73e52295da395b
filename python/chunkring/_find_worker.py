"""Locate the ``chunkring`` worker binary (after ruff's ``_find_ruff.py``).

Search order, first hit wins:

1. the ``CHUNKRING_WORKER`` environment variable (a path; it must exist);
2. next to the package: ``chunkring/bin/chunkring`` (where a wheel would put it);
3. ``PATH``;
4. the cargo target folder found by walking up from the package: ``target/release`` then
   ``target/debug`` (a source checkout after ``cargo build``).

Nothing found: :class:`~chunkring.errors.WorkerNotFound` listing every place tried.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import WorkerNotFound

ENV_VAR = "CHUNKRING_WORKER"
BINARY = "chunkring" + (".exe" if os.name == "nt" else "")


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_worker_bin() -> str:
    """Return the path of the ``chunkring`` binary, or raise ``WorkerNotFound``."""
    tried: list[str] = []

    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env)
        if _is_executable(path):
            return str(path)
        tried.append(f"${ENV_VAR}={env} (not an executable file)")
    else:
        tried.append(f"${ENV_VAR} (not set)")

    package_dir = Path(__file__).resolve().parent
    beside = package_dir / "bin" / BINARY
    if _is_executable(beside):
        return str(beside)
    tried.append(str(beside))

    on_path = shutil.which(BINARY)
    if on_path:
        return on_path
    tried.append(f"{BINARY} on PATH")

    for parent in package_dir.parents:
        target = parent / "target"
        if not target.is_dir():
            continue
        for profile in ("release", "debug"):
            candidate = target / profile / BINARY
            if _is_executable(candidate):
                return str(candidate)
            tried.append(str(candidate))
        break
    else:
        tried.append(f"a cargo target/ folder above {package_dir}")

    raise WorkerNotFound(
        "could not find the chunkring worker binary; tried:\n  - "
        + "\n  - ".join(tried)
        + "\nbuild it with `cargo build --release` or set "
        + ENV_VAR
    )
