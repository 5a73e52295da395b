"""Compiled ``struct.Struct`` records for runs of frames, kept within a bound.

The ring's bulk paths (``_ring.py``: :meth:`Consumer.take_simple` reading a run of answers,
:meth:`Producer.encode_requests` writing a batch) unpack or pack a whole run with one
precompiled struct whose format repeats a frame's fields once per frame. One struct per run
shape is much faster than per-frame slicing (a run of 16 small answers: 0.4 µs against
1.7–3 µs here), but a compiled struct holds 100–200 bytes per frame it describes: a run of
256 frames is a 27–50 KB struct. The shapes seen depend on the sizes a program sends and on
timing (how many answers are in when the client looks), so a cache keyed by shape alone grew
with every new answer size, by tens of KB in a run of pushes of varying sizes and up to
megabytes in principle. The bound here is on what the structs describe (:data:`FRAMES`), not
on how many there are.

Which shapes come is not known ahead: the answers of a run of pushes differ in size (each
carries its patch back), and a flush that read a hundred of them at once compiled 25-34
structs, 10-22 KB, most of them for runs longer than the answers made
(:meth:`Consumer.take_simple` now sizes a run by its frames first). A shape is also kept only
when it comes back (``keep_new=False``): the first time, the struct is compiled for that one
run and dropped.
"""

from __future__ import annotations

import struct

#: Most frames the cached structs describe together (about 100 KB of compiled structs at the
#: most, measured): the two structs of a full 256-frame run of same-size answers (headers and
#: payloads). Past it the cache starts again empty.
FRAMES = 512
#: Most shapes remembered as seen once (``keep_new=False``) before those are forgotten.
SEEN = 64


class StructCache:
    """Structs by key: look one up in :attr:`structs` (a plain dict, so a hit costs one
    ``dict.get``) and on a miss :meth:`compile` it, which keeps the structs kept describing
    at most :data:`FRAMES` frames."""

    __slots__ = ("structs", "_frames", "_seen")

    def __init__(self) -> None:
        #: key → compiled struct (cleared, never replaced: a bound ``get`` stays valid).
        self.structs: dict = {}
        self._frames = 0
        self._seen: set = set()

    def compile(self, key, frames: int, fmt: str, *, keep_new: bool = True) -> struct.Struct:
        """The struct of format ``fmt`` (describing ``frames`` frames or records) for
        ``key``, compiled and kept. With ``keep_new`` False it is kept only from the second
        time ``key`` is asked for: the first time it is compiled for the caller alone."""
        if not keep_new and key not in self._seen:
            if len(self._seen) >= SEEN:
                self._seen.clear()
            self._seen.add(key)
            return struct.Struct(fmt)
        if self._frames + frames > FRAMES:
            self.structs.clear()
            self._frames = 0
        st = self.structs[key] = struct.Struct(fmt)
        self._frames += frames
        return st

    @property
    def frames(self) -> int:
        """How many frames the kept structs describe (at most :data:`FRAMES`)."""
        return self._frames
