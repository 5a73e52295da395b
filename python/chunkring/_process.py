"""The worker as a child process: launch it, tell whether it (or any pid) is alive or
shares our one CPU, read its stderr, and reap it (layout.md §12 "Start", "Dead worker").

``Client.spawn`` launches through :func:`launch`; the client keeps the ``Popen`` to notice an
exit within one wait timeout and to report the exit code and stderr in ``WorkerDied``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from typing import IO, Sequence

from .errors import WorkerStartError


def launch(binary: str, name: str, *, file: str | None, ring_bytes: int | None,
           chunk_bytes: int | None, args: Sequence[str]) -> tuple[subprocess.Popen, IO[bytes]]:
    """Starts ``chunkring serve`` owned by this process (``--owner-pid``); its stderr goes to
    a temporary file returned with the ``Popen``."""
    cmd = [binary, "serve", "--name", name, "--owner-pid", str(os.getpid())]
    if file is not None:
        cmd += ["--file", str(file)]
    if ring_bytes is not None:
        cmd += ["--size", str(int(ring_bytes))]
    if chunk_bytes is not None:
        cmd += ["--chunk-size", str(int(chunk_bytes))]
    cmd += [str(a) for a in args]
    stderr_file = tempfile.TemporaryFile(prefix="chunkring-worker-", suffix=".stderr")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr_file)
    except OSError as exc:
        stderr_file.close()
        raise WorkerStartError(f"could not start {binary}: {exc}", None, str(exc)) from exc
    return proc, stderr_file


def raise_if_exited(proc: subprocess.Popen, stderr_file: IO[bytes]) -> None:
    """:class:`WorkerStartError` with the exit code and stderr if ``proc`` has exited."""
    rc = proc.poll()
    if rc is not None:
        err = read_all(stderr_file)
        raise WorkerStartError(
            f"worker exited with code {rc} before it was ready: {err.strip() or '(no stderr)'}",
            rc, err,
        )


def pid_alive(pid: int) -> bool:
    """``kill(pid, 0)``: gone only on ESRCH (EPERM means alive but not ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def shares_one_cpu(pid: int) -> bool:
    """Can this process and ``pid`` only ever run on the same single CPU?"""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return os.cpu_count() == 1
    try:
        mine, theirs = getaffinity(0), getaffinity(pid)
    except OSError:
        return os.cpu_count() == 1
    return len(mine) == 1 and mine == theirs


def read_all(f: IO[bytes] | None) -> str:
    """Everything written to ``f`` so far, as text ("" when unreadable)."""
    if f is None:
        return ""
    try:
        f.seek(0)
        return f.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def shm_identity(path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of a region under ``/dev/shm`` (None for a ``--file`` region,
    which is left in place, or one already gone): what :func:`unlink_shm` checks."""
    if not str(path).startswith("/dev/shm/"):
        return None
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def unlink_shm(path, identity: tuple[int, int] | None) -> None:
    """Unlink the shm object of a spawned worker that can no longer do it (layout.md §12
    "Dead worker"), if ``path`` is still that object (``identity``), not a successor's."""
    if identity is None or shm_identity(path) != identity:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def reap(proc: subprocess.Popen, grace: float = 5.0, term_wait: float = 1.0) -> None:
    """Wait ``grace`` seconds for ``proc``; then SIGTERM and ``term_wait`` seconds more, then
    SIGKILL, if it does not exit."""
    if proc.poll() is not None:
        return
    for sig, wait in ((None, grace), (signal.SIGTERM, term_wait), (signal.SIGKILL, 5.0)):
        if sig is not None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
