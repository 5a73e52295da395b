"""``python -m chunkring``: the same command line as the ``chunkring`` binary.

``demo`` and ``bench`` are Python and run here (the binary hands them to this module);
every other command runs the worker binary with the given arguments (after ruff's
``__main__.py``). ``python -m chunkring --find`` prints which binary would be used.
A binary that cannot be found is one line on stderr and exit status 1, not a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ._find_worker import find_worker_bin
from .errors import WorkerNotFound

#: Commands written in Python: name -> module (imported only when asked for).
PYTHON_COMMANDS = {"demo": "chunkring._demo", "bench": "chunkring._bench"}


def main(argv: list[str] | None = None) -> int:
    """Run ``chunkring`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in PYTHON_COMMANDS:
        import importlib

        module = importlib.import_module(PYTHON_COMMANDS[args[0]])
        return int(module.main(args[1:]) or 0)
    try:
        binary = find_worker_bin()
    except WorkerNotFound as exc:
        print(f"chunkring: {_one_line(exc)}", file=sys.stderr)
        return 1
    if args == ["--find"]:
        print(binary)
        return 0
    if os.name == "posix":
        sys.stdout.flush()
        os.execv(binary, [binary, *args])
    try:
        return subprocess.run([binary, *args]).returncode
    except KeyboardInterrupt:
        return 130


def _one_line(exc: WorkerNotFound) -> str:
    """The error as one line: a wrong ``CHUNKRING_WORKER`` as is, a search as its summary."""
    text = str(exc)
    if "\n" not in text:
        return text
    tried = text.count("\n  - ") + 1
    return (f"the worker binary is not installed (looked in {tried} places; "
            f"python -c 'import chunkring; chunkring.find_worker_bin()' lists them): "
            f"reinstall the chunkring wheel or set CHUNKRING_WORKER")


if __name__ == "__main__":
    sys.exit(main())
