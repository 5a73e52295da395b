"""The list encoding every batch op uses (layout.md §9.1): ``count | count × len | items``.

One implementation for all op wrappers (markdown, snapshots, logs), mirroring
``ops::encode_list``/``ops::decode_list`` on the Rust side.
"""

from __future__ import annotations

import struct
from itertools import accumulate
from typing import Sequence

from .errors import ProtocolError

_U32 = struct.Struct("<I")


def encode_list(items: Sequence[bytes]) -> bytes:
    """The list encoding of layout.md §9.1: ``count | count × len | items``."""
    return b"".join(_list_parts(items))


def _list_parts(items: Sequence[bytes]) -> list:
    """The list encoding's parts: its header (count and lengths), then the items."""
    n = len(items)
    return [struct.pack(f"<{n + 1}I", n, *map(len, items)), *items]


class Gathered:
    """A request body given as parts written one after the other into the ring, never joined
    into one ``bytes`` first (a batch of large items: the join would copy every byte once
    more). ``Sender.submit`` and ``Client.submit`` take it as a body; so may anything
    that takes a bytes body through the general path."""

    __slots__ = ("parts", "nbytes")

    def __init__(self, parts: list):
        #: The parts, bytes each.
        self.parts = parts
        #: Their total length.
        self.nbytes = sum(map(len, parts))

    def join(self) -> bytes:
        """The body as one ``bytes``."""
        return b"".join(self.parts)


def gathered_list(items: Sequence[bytes]) -> Gathered:
    """:func:`encode_list` as a :class:`Gathered` body: the items are not copied."""
    return Gathered(_list_parts(items))


def item_ends(buf: bytes) -> list[int]:
    """Start of the first item, then the end of each (layout.md §9.1).

    Raises :class:`ProtocolError` when the lengths do not add up to the buffer.
    """
    if len(buf) < 4:
        raise ProtocolError(f"list response of {len(buf)} bytes has no count")
    (n,) = _U32.unpack_from(buf, 0)
    start = 4 + 4 * n
    if start > len(buf):
        raise ProtocolError(f"list response of {n} items is shorter than its length table")
    ends = list(accumulate(struct.unpack_from(f"<{n}I", buf, 4), initial=start))
    if ends[-1] != len(buf):
        raise ProtocolError(f"list response lengths sum to {ends[-1]}, buffer holds {len(buf)}")
    return ends


def decode_list(buf: bytes) -> list[memoryview]:
    """Items of a list-encoded response as memoryview slices (no copies)."""
    ends = item_ends(buf)
    mv = memoryview(buf)
    return [mv[a:b] for a, b in zip(ends, ends[1:])]


def decode_list_bytes(buf: bytes) -> list[bytes]:
    """Items of a list-encoded response as ``bytes``."""
    ends = item_ends(buf)
    return [buf[a:b] for a, b in zip(ends, ends[1:])]
