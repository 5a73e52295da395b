"""chunkring: a Python client for the chunkring shared-memory worker (standard library only).

    from chunkring import Client
    with Client.spawn() as client:
        assert client.echo(b"hi") == b"hi"

Requests in flight are ``concurrent.futures.Future``s (:class:`Handle`);
``chunkring.aio.AsyncClient`` (or ``client.aio``) awaits answers from asyncio. Log records go
to the ``chunkring`` logger (worker start and stop, a worker that died, a malformed answer);
the library adds only a ``NullHandler``.

The wire contract is layout.md at the repository root. Supported platforms: Linux on x86-64
and aarch64 (``Client.spawn``/``attach`` raise :class:`UnsupportedPlatform` elsewhere).
"""

import logging as _logging

from . import _layout as layout  # op codes, flags, error codes: the names of layout.md
from ._find_worker import find_worker_bin
from ._version import version as _version
from .client import Client, Handle
from .errors import (
    ChunkringError,
    ClientClosed,
    ProtocolError,
    RegionLost,
    ChecksumError,
    RequestError,
    RequestTimeout,
    StateMismatch,
    UnencodableSnapshot,
    UnsupportedPlatform,
    WorkerDied,
    WorkerNotFound,
    WorkerRestarted,
    WorkerStartError,
)

_logging.getLogger(__name__).addHandler(_logging.NullHandler())


def __getattr__(name: str):
    # AsyncClient on first use only: importing asyncio costs every client ~10 ms otherwise.
    if name == "AsyncClient":
        from .aio import AsyncClient
        return AsyncClient
    # __version__ likewise: an installed package reads it from its metadata, and
    # importlib.metadata costs every import ~17 ms (measured with -X importtime).
    if name == "__version__":
        global __version__
        __version__ = _version()
        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "AsyncClient",
    "ChunkringError",
    "Client",
    "ClientClosed",
    "Handle",
    "ProtocolError",
    "RegionLost",
    "ChecksumError",
    "RequestError",
    "RequestTimeout",
    "StateMismatch",
    "UnencodableSnapshot",
    "UnsupportedPlatform",
    "WorkerDied",
    "WorkerNotFound",
    "WorkerRestarted",
    "WorkerStartError",
    "__version__",
    "find_worker_bin",
    "layout",
]
