"""``Snapshots.process`` (layout.md §9.3 "Process"): a batch sent as a run of
``OP_SNAP_PROCESS`` requests written while the next chunk is encoded, answered as marshal.

Each request after the first carries the previous chunk's last snapshot as item 0
(``carry``), so the worker compares every snapshot with its predecessor in the batch exactly
as in one request, and names records and errors by their index in the whole batch (``base``):
the answers are concatenated as they are, with no Python step per record.
"""

from __future__ import annotations

import marshal
from itertools import islice, repeat
from typing import Any, Iterable

from . import _layout as L
from ._payload import gathered_list
from ._snapshot_wire import _encode_batch
from ._unencodable import explain
from .errors import RequestError

#: Snapshots in the first request: small, so the worker starts while Python encodes the rest.
FIRST_CHUNK = 8
_DICT = {dict}


def _bodies(items: list, encoding: str | None, enc: str | None,
            base: int) -> tuple[list[bytes], str]:
    """The encoded ``items`` (``base``: the first one's index in the batch) and their one
    encoding (``enc``: the batch's so far). A snapshot marshal refuses raises
    :class:`~chunkring.errors.UnencodableSnapshot` naming it by its index in the batch."""
    if encoding is None and set(map(type, items)) == _DICT:
        try:
            bodies, e = list(map(marshal.dumps, items, repeat(4))), "marshal"
        except ValueError as exc:
            raise explain([([base + i], s) for i, s in enumerate(items)], exc,
                          "encode the process batch") from None
        if enc not in (None, e):
            raise ValueError("process needs one encoding for the whole batch")
        return bodies, e
    bodies, enc = _encode_batch(items, encoding, "process", base, enc)
    return bodies, enc  # type: ignore[return-value]


def process_batch(client: Any, batch: Iterable[Any], encoding: str | None,
                  chunk: int) -> list[dict]:
    """The records of ``batch``, sent in requests of at most ``chunk`` snapshots: the first
    ones smaller, doubling, so the worker starts early, and (when ``batch`` has a length) the
    last ones halving, so little of its work is left once Python has encoded the last
    snapshot; see :meth:`Snapshots.process`."""
    it = iter(batch)
    total = len(batch) if hasattr(batch, "__len__") else None  # type: ignore[arg-type]
    handles = []
    enc: str | None = None
    prev: bytes | None = None
    base = 0
    size = min(FIRST_CHUNK, chunk)
    while items := list(islice(it, size)):
        bodies, enc = _bodies(items, encoding, enc, base)
        params: dict = {"encoding": enc, "answer": "marshal", "base": base}
        if prev is not None:
            params["carry"] = True
            bodies.insert(0, prev)
        # (gathered: each snapshot is copied into the ring as it is, never joined first)
        handles.append(client.submit(L.OP_SNAP_PROCESS, gathered_list(bodies), params))
        base += len(items)
        prev = bodies[-1]
        size = min(size * 2, chunk)
        if total is not None:  # the last requests halve: the worker's last one is short
            size = min(size, max(FIRST_CHUNK, (total - base) // 2))
    if not handles:  # an empty batch: one empty request, as before
        return []
    out: list[dict] = []
    for n, h in enumerate(handles):
        try:
            out += marshal.loads(h.result())
        except RequestError:
            for rest in handles[n + 1:]:
                rest.done()
            raise
    return out
