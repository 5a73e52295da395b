"""Locate the ``chunkring`` worker binary (after ruff's ``_find_ruff.py``).

Search order, first hit wins:

1. the ``CHUNKRING_WORKER`` environment variable (a path; when set it must name an
   executable file, else ``WorkerNotFound`` at once);
2. next to the package: ``chunkring/bin/chunkring`` (where a wheel would put it);
3. ``PATH``;
4. every cargo ``target`` folder found walking up from the package: ``target/release`` then
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
        # An explicit override that is wrong is an error, not a hint to look elsewhere.
        raise WorkerNotFound(f"${ENV_VAR} is set to {env}, which is not an executable file")
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

    found_target = False
    for parent in package_dir.parents:
        target = parent / "target"
        if not target.is_dir():
            continue
        found_target = True
        for profile in ("release", "debug"):
            candidate = target / profile / BINARY
            if _is_executable(candidate):
                return str(candidate)
            tried.append(str(candidate))
    if not found_target:
        tried.append(f"a cargo target/ folder in any parent of {package_dir}")

    raise WorkerNotFound(
        "could not find the chunkring worker binary; tried:\n  - "
        + "\n  - ".join(tried)
        + "\nbuild it with `cargo build --release` or set "
        + ENV_VAR
    )
