"""``python -m chunkring``: run the worker binary with the given arguments (after ruff's
``__main__.py``), or ``python -m chunkring --find`` to print which binary would be used."""

from __future__ import annotations

import os
import subprocess
import sys

from ._find_worker import find_worker_bin


def main(argv: list[str] | None = None) -> int:
    """Exec (POSIX) or run (elsewhere) the ``chunkring`` worker with ``argv``."""
    args = sys.argv[1:] if argv is None else argv
    binary = find_worker_bin()
    if args == ["--find"]:
        print(binary)
        return 0
    if os.name == "posix":
        os.execvp(binary, [binary, *args])
    return subprocess.run([binary, *args]).returncode


if __name__ == "__main__":
    sys.exit(main())
