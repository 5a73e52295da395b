"""Exceptions raised by the chunkring client.

Every failure a caller can see is a :class:`ChunkringError`; each subclass also derives from
the closest builtin so ``except TimeoutError`` or ``except FileNotFoundError`` keep working.
"""

from __future__ import annotations

from . import _layout as L


class ChunkringError(Exception):
    """Base class of every chunkring error."""


class WorkerNotFound(ChunkringError, FileNotFoundError):
    """The ``chunkring`` binary was not found; the message lists every place that was tried."""


class UnsupportedPlatform(ChunkringError, OSError):
    """chunkring does not run on this operating system or architecture (it supports Linux on
    x86-64 and aarch64); the message names what was found and the override for experiments."""


class WorkerStartError(ChunkringError, RuntimeError):
    """The worker exited (or never became ready) while starting; carries its exit code and stderr."""

    def __init__(self, message: str, returncode: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class WorkerDied(ChunkringError, ConnectionError):
    """The worker went away; every request still pending raises this."""

    def __init__(self, message: str, returncode: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class RegionLost(WorkerDied):
    """The region was truncated by another process while mapped (layout.md §12 "Truncated
    region"): every request in flight and every later call raises this. The client is not
    killed (its mapping is replaced by zero pages when it touches the lost part, or as soon as
    a liveness check sees the file shrink); close it and start or attach a new one."""


class WorkerRestarted(WorkerDied):
    """The worker died and a client spawned with ``restart=True`` started a new one, but this
    request (or state) did not survive: it changes what the worker keeps (a history push or
    move, a log append, a save) so it is not sent again, or it is a history's pushes made
    since its last save (``history`` names it, ``pushes`` are the lost push numbers, as in
    ``push #N`` errors). Safe requests (``_layout.PURE_OPS``) never raise it: they are sent
    again to the new worker (layout.md §12 "Client recovery")."""

    def __init__(self, message: str, returncode: int | None = None, stderr: str = "", *,
                 history: str | None = None, pushes: range = range(0)):
        super().__init__(message, returncode, stderr)
        self.history = history
        self.pushes = pushes


class RequestError(ChunkringError):
    """The worker answered a request with an error frame (layout.md §8).

    ``code`` is the numeric wire code, ``name`` its layout.md name (``"UNKNOWN_OP"`` …),
    ``message`` the worker's text.
    """

    def __init__(self, code: int, message: str, op: int | None = None):
        self.code = code
        self.name = L.ERROR_NAMES.get(code, f"UNKNOWN_CODE_{code}")
        self.message = message
        self.op = op
        super().__init__(f"{self.name.lower()} ({code}): {message}")


class ProtocolError(ChunkringError):
    """The peer broke layout.md (bad magic, version mismatch, a malformed frame)."""


class ChecksumError(ProtocolError):
    """A frame failed its CRC-32 check (layout.md §6.6): a torn or overwritten frame, in either
    ring. Every request in flight at that moment fails with it (none may have run, some may
    have); nothing read from an unchecked frame is ever returned."""


class RequestTimeout(ChunkringError, TimeoutError):
    """A result was not available within the timeout; the request stays pending."""


class ClientClosed(ChunkringError, RuntimeError):
    """The client was closed; no further requests can be made."""


class UnencodableSnapshot(ChunkringError, TypeError, ValueError):
    """A snapshot ``push`` cannot encode: a value of a type that is not plain data (a subclass
    of one included), a str, bytes or container over marshal's 2 GiB, or nesting past its
    depth limit. The message names the first such value by its JSON pointer. Raised by the
    push itself, before anything is sent; a ``TypeError`` and, as ``marshal``'s own refusal
    was, a ``ValueError``."""


class StateMismatch(ChunkringError, ValueError):
    """``undo(into=state)`` (or ``redo``/``jump``) was given a ``state`` that is not the
    history's current snapshot, as far as the client can tell cheaply; ``state`` is unchanged."""
