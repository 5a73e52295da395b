"""chunkring: a Python client for the chunkring shared-memory worker (standard library only).

    from chunkring import Client
    with Client.spawn() as client:
        assert client.echo(b"hi") == b"hi"

The wire contract is layout.md at the repository root. Supported platforms: Linux on x86-64
and aarch64 (``Client.spawn``/``attach`` raise :class:`UnsupportedPlatform` elsewhere).
"""

from . import _layout as layout  # op codes, flags, error codes: the names of layout.md
from ._find_worker import find_worker_bin
from ._version import version as _version
from .client import Client, Handle
from .errors import (
    ChunkringError,
    ClientClosed,
    ProtocolError,
    RequestError,
    RequestTimeout,
    UnsupportedPlatform,
    WorkerDied,
    WorkerNotFound,
    WorkerStartError,
)

__version__: str = _version()

__all__ = [
    "ChunkringError",
    "Client",
    "ClientClosed",
    "Handle",
    "ProtocolError",
    "RequestError",
    "RequestTimeout",
    "UnsupportedPlatform",
    "WorkerDied",
    "WorkerNotFound",
    "WorkerStartError",
    "__version__",
    "find_worker_bin",
    "layout",
]
