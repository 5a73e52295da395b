"""chunkring: a Python client for the chunkring shared-memory worker (standard library only)."""

from .errors import (
    ChunkringError,
    ClientClosed,
    ProtocolError,
    RequestError,
    RequestTimeout,
    WorkerDied,
    WorkerNotFound,
    WorkerStartError,
)

__all__ = [
    "ChunkringError",
    "ClientClosed",
    "ProtocolError",
    "RequestError",
    "RequestTimeout",
    "WorkerDied",
    "WorkerNotFound",
    "WorkerStartError",
]
