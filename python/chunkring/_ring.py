"""One ring's producer and consumer over the mapped region (layout.md §5, §6, §10).

The client produces into the request ring and consumes the response ring. Each side keeps
its own index locally ("always in sync": nobody else writes it) and a cached copy of the
peer's index ("may be stale"); the peer's word is loaded only when the cached value says the
ring is full (producer, [R1]) or empty (consumer, [R5]).

Ordering steps are tagged as in layout.md §10, so ``grep -n '\\[R3\\]'`` finds the spec row,
the Rust site and this one. On x86-64 ``barrier_read``/``barrier_write`` are no-ops (TSO);
on aarch64 they are libatomic fences (``_barrier.py``). Index words are read and written as
single aligned 8-byte items of ``memoryview.cast("Q")`` (layout.md §10 "Atomicity").
"""

from __future__ import annotations

import struct

from . import _layout as L
from ._barrier import NEED_RW_FENCES, barrier_read, barrier_write
from .errors import ProtocolError

_HEADER = L.FRAME_HEADER
#: Frame header followed by the request payload's ``params_len`` prefix: one pack for the
#: common single-frame request.
HEADER_AND_PARAMS_LEN = struct.Struct("<HHHHQIIQI")
_MAGIC = L.FRAME_MAGIC
_HB = L.FRAME_HEADER_BYTES
_PAD = L.FLAG_PADDING


class _RingEnd:
    """What both ends of a ring know: where its words and chunks are (layout.md §4, §5)."""

    __slots__ = ("q", "head_word", "tail_word", "base", "chunks", "mask", "chunk_bytes")

    def __init__(self, region, ring_offset: int, chunks: int, head_offset: int, tail_offset: int):
        self.q = region.q
        self.head_word = head_offset // 8
        self.tail_word = tail_offset // 8
        self.base = ring_offset
        self.chunks = chunks
        self.mask = chunks - 1
        self.chunk_bytes = region.chunk_bytes


class Producer(_RingEnd):
    """Writes frames into one ring and publishes them with one tail store per batch.

    ``tail`` is always in sync (this producer owns the word); ``published`` is the value last
    stored; ``cached_head`` may be stale (only ever behind the real head).
    """

    __slots__ = ("view", "tail", "published", "cached_head", "max_frame_payload", "max_frame_chunks")

    def __init__(self, region, ring_offset: int, chunks: int, head_offset: int, tail_offset: int):
        super().__init__(region, ring_offset, chunks, head_offset, tail_offset)
        self.view = region.view
        # Continue from the positions found in the region (layout.md §12 "Attach").
        self.tail = self.published = self.q[self.tail_word]
        self.cached_head = self.q[self.head_word]
        # Frames of at most a quarter of the ring, so producer and consumer overlap (§6.4).
        self.max_frame_chunks = max(1, chunks // 4)
        self.max_frame_payload = self.max_frame_chunks * self.chunk_bytes - _HB

    def chunks_for(self, payload_len: int) -> int:
        """Chunks a frame with ``payload_len`` payload bytes occupies (§5)."""
        return (_HB + payload_len + self.chunk_bytes - 1) // self.chunk_bytes

    def _room(self, n: int) -> bool:
        if self.chunks - (self.tail - self.cached_head) >= n:
            return True
        # [R1] the cached head says full: load the consumer's head; barrier_read() so the
        # chunk writes below cannot pass this load (pairs with [R6] in the worker).
        head = self.q[self.head_word]
        if NEED_RW_FENCES:
            barrier_read()
        if not self.tail - self.chunks <= head <= self.tail:
            raise ProtocolError(
                f"request ring head {head} is outside tail {self.tail} - {self.chunks} chunks"
            )
        self.cached_head = head
        return self.chunks - (self.tail - head) >= n

    def reserve(self, n: int) -> int:
        """Byte offset where a frame of ``n`` chunks may be written, or -1 if there is no room.

        Writes a padding frame first when the frame would not fit before the ring's end
        (§6.3); the padding advances ``tail`` even if the frame itself then has no room.
        The caller writes the frame and then advances ``tail`` by ``n`` ([R2]).
        """
        idx = self.tail & self.mask
        if idx + n > self.chunks:
            pad = self.chunks - idx
            if not self._room(pad):
                return -1
            # [R2] padding frame covering the rest of the ring (§6.3).
            _HEADER.pack_into(
                self.view, self.base + idx * self.chunk_bytes,
                _MAGIC, _PAD, 0, 0, 0, pad * self.chunk_bytes - _HB, 0, 0,
            )
            self.tail += pad
            idx = 0
        if not self._room(n):
            return -1
        return self.base + idx * self.chunk_bytes

    def publish(self) -> bool:
        """Publish every frame written since the last call with one tail store; True if any."""
        tail = self.tail
        if tail == self.published:
            return False
        if NEED_RW_FENCES:
            barrier_write()  # [R3] frame bytes above happen-before the tail store below
        # [R4] one tail store for the whole batch; pairs with [R5] in the worker's consumer.
        self.q[self.tail_word] = tail
        self.published = tail
        return True

    def head_moved(self) -> bool:
        """True when the live head is past the cached one: room was freed since [R1]."""
        return self.q[self.head_word] != self.cached_head


class Consumer(_RingEnd):
    """Reads frames from one ring, skipping padding, and releases them with one head store.

    ``head`` is always in sync (this consumer owns the word); ``released`` is the value last
    stored; ``cached_tail`` may be stale (only ever behind the real tail).
    """

    __slots__ = ("mm", "head", "released", "cached_tail")

    def __init__(self, region, ring_offset: int, chunks: int, head_offset: int, tail_offset: int):
        super().__init__(region, ring_offset, chunks, head_offset, tail_offset)
        self.mm = region.mm
        self.head = self.released = self.q[self.head_word]
        self.cached_tail = self.head

    def pending(self) -> bool:
        """True when the live tail shows frames not yet read (a cheap, lock-free peek)."""
        return self.q[self.tail_word] != self.head

    def poll(self):
        """The next frame as ``(flags, op, status, request_id, fragment_index, message_len,
        payload: bytes)``, or None when the ring is empty. Padding frames are skipped.

        Raises ProtocolError when the worker broke §4 or §6 (the client cannot resynchronise
        a response ring: its producer is the one that is broken).
        """
        while True:
            head = self.head
            if head == self.cached_tail:
                # [R5] load tail, then barrier_read() before reading the frames it publishes;
                # pairs with [R3]/[R4] in the worker's producer.
                tail = self.q[self.tail_word]
                if NEED_RW_FENCES:
                    barrier_read()
                if tail == head:
                    return None
                if not head < tail <= head + self.chunks:
                    raise ProtocolError(
                        f"response ring tail {tail} is outside head {head} + {self.chunks} chunks"
                    )
                self.cached_tail = tail
            idx = head & self.mask
            off = self.base + idx * self.chunk_bytes
            magic, flags, op, status, rid, plen, fidx, mlen = _HEADER.unpack_from(self.mm, off)
            n = (_HB + plen + self.chunk_bytes - 1) // self.chunk_bytes
            if magic != _MAGIC:
                raise ProtocolError(f"response frame at position {head} has bad magic {magic:#06x}")
            if idx + n > self.chunks or head + n > self.cached_tail:
                raise ProtocolError(
                    f"response frame at position {head} ({plen} payload bytes) runs past "
                    "the published tail or the ring's end"
                )
            if flags & _PAD:
                if idx + n != self.chunks:
                    raise ProtocolError(f"padding frame at position {head} does not end the ring")
                self.head = head + n
                continue
            # Copy the payload out (mmap slicing returns a new bytes object) before the
            # chunks are released in `release`.
            payload = self.mm[off + _HB : off + _HB + plen]
            self.head = head + n
            return flags, op, status, rid, fidx, mlen, payload

    def release(self) -> bool:
        """Give the chunks read so far back to the producer with one head store; True if any."""
        head = self.head
        if head == self.released:
            return False
        if NEED_RW_FENCES:
            barrier_write()  # [R6] the copy-outs above happen-before the head store below
        # [R6] store head; pairs with [R1] in the worker's producer.
        self.q[self.head_word] = head
        self.released = head
        return True
