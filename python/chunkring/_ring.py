"""One ring's producer and consumer over the mapped region (layout.md §5, §6, §10, §11).

The client produces into the request ring and consumes the response ring. :class:`Producer`
is the only code of the client that writes frames into the mapping and publishes them
(steps [R1]-[R4], padding frames, and the wake check [W5]-[W6] after each publish);
:class:`Consumer` the only code that reads them and releases their chunks ([R5], [R6], and
[W5]-[W6] after each release). Each side keeps its own index locally ("always in sync":
nobody else writes it) and a cached copy of the peer's index ("may be stale"); the peer's
word is loaded only when the cached value says the ring is full (producer, [R1]) or empty
(consumer, [R5]).

Batches (``submit_many``, ``Client.map``): :meth:`Producer.encode_requests` builds a batch
of one-frame requests as one bytes-like and :meth:`Producer.try_push_encoded` copies it in
with one slice per free stretch of the ring; :meth:`Consumer.take_simple` copies a run of
same-size simple answers out with one slice and checks every header before moving past it.
Neither adds a step to the protocol: the same frames, padding and index stores.

Ordering steps are tagged as in layout.md §10, so ``grep -n '\\[R3\\]'`` finds the spec row,
the Rust site and this one. The barriers are ``_barrier.py``'s: on x86-64
``barrier_read``/``barrier_write`` are no-ops (TSO) and the hot path skips them through
``NEED_RW_FENCES``. Index words are read and written as single aligned 8-byte items of
``memoryview.cast("Q")`` (layout.md §10 "Atomicity"), frame bytes with ``pack_into`` and
slice assignment straight into the mapping.
"""

from __future__ import annotations

import struct
import zlib
from bisect import bisect_right
from itertools import accumulate, repeat
from operator import add as _add

from . import _layout as L
from ._barrier import NEED_RW_FENCES, barrier_memory, barrier_read, barrier_write
from ._futex import futex_wake
from ._struct_cache import StructCache
from .errors import ChecksumError, ProtocolError

#: Frame header followed by the request payload's ``params_len`` prefix: one pack for the
#: common single-frame request (layout.md §6, §9.1).
HEADER_AND_PARAMS_LEN = struct.Struct("<HHHHQIIQI")
#: Largest answer :meth:`Consumer.take_simple` takes in a run. A run copies its frames out of
#: the mapping and then slices each payload out of that copy: two passes over the bytes, which
#: only pay off while the per-frame steps they save cost more than a copy (small answers). A
#: larger answer is read by :meth:`Consumer.poll`: one copy (a 1 MiB answer read by a run
#: cost a second pass and 256 page faults per call).
TAKE_SIMPLE_MAX_PAYLOAD = 16 * 1024
#: Most frames :meth:`Consumer.take_simple` reads in one run.
TAKE_SIMPLE_RUN = 256
#: The same bytes for a request without flags, status, fragments or params in 6 fields, not 9
#: (fewer arguments to convert: the lean paths, ``_lean.py``, ``_lean_submit.py``):
#: ``magic | flags << 16``, ``op | status << 16``, ``request_id``,
#: ``payload_len | fragment_index << 32``, ``message_len``, ``params_len`` (little-endian).
PLAIN_REQUEST_HEAD = struct.Struct("<IIQQQI")
assert PLAIN_REQUEST_HEAD.pack(L.FRAME_MAGIC, 7, 9, 5, 5, 0) == \
    HEADER_AND_PARAMS_LEN.pack(L.FRAME_MAGIC, 0, 7, 0, 9, 5, 0, 5, 0)
# Bound methods of the precompiled records, looked up once.
_pack_header = L.FRAME_HEADER.pack_into
_pack_header_and_params_len = HEADER_AND_PARAMS_LEN.pack_into
_pack_header_and_params_len_bytes = HEADER_AND_PARAMS_LEN.pack
_unpack_header = L.FRAME_HEADER.unpack_from
_MAGIC = L.FRAME_MAGIC
_HB = L.FRAME_HEADER_BYTES
_PLB = L.PARAMS_LEN_BYTES
_PAD = L.FLAG_PADDING
_MORE = L.FLAG_MORE
_PARKED = L.PARKED
_PARKED_FOR_ROOM = L.PARKED_FOR_ROOM
_AWAKE = L.AWAKE
_CRC = L.FLAG_CRC
_CRCB = L.FRAME_CRC_BYTES
_crc32 = zlib.crc32
_pack_header_bytes = L.FRAME_HEADER.pack
_pack_crc = struct.Struct("<I").pack_into
_unpack_crc = struct.Struct("<I").unpack_from
_NO_PARAMS_LEN = bytes(_PLB)
_U16 = None


def _u16_table() -> bytes:
    """Every u16, little-endian, in order (128 KiB, built on first use): the low two bytes
    of a batch's request ids are a slice of it (``Producer.encode_requests``)."""
    global _U16
    if _U16 is None:
        _U16 = struct.pack("<65536H", *range(65536))
    return _U16


class _RingEnd:
    """What both ends of a ring know: where its words and chunks are (layout.md §4, §5), and
    the futex word of the peer (the worker) to wake after publishing or releasing (§11)."""

    __slots__ = ("q", "head_word", "tail_word", "base", "chunks", "mask", "chunk_bytes",
                 "_futex_words", "_peer_word", "_peer_futex")

    def __init__(self, region, ring_offset: int, chunks: int, head_offset: int, tail_offset: int):
        self.q = region.q
        self.head_word = head_offset // 8
        self.tail_word = tail_offset // 8
        self.base = ring_offset
        self.chunks = chunks
        self.mask = chunks - 1
        self.chunk_bytes = region.chunk_bytes
        # The client's peer on both rings is the worker: [W6] looks at WORKER_FUTEX.
        self._futex_words = region.i
        self._peer_word = L.WORKER_FUTEX_OFFSET // 4
        self._peer_futex = region.worker_futex_addr

    def extent(self) -> tuple[int, int, int, int]:
        """The ring's chunks, index mask, chunk bytes and first chunk's byte offset (the
        lean paths bind them once, when they are built)."""
        return self.chunks, self.mask, self.chunk_bytes, self.base


def _length(rest) -> int:
    """Bytes in a frame's ``rest``: one bytes-like, or a list of them (a gathered body)."""
    return sum(map(len, rest)) if type(rest) is list else len(rest)


def _copy_rest(view, at: int, rest) -> None:
    """[R2] ``rest`` (one bytes-like, or a list of them) copied into ``view`` from ``at``."""
    if type(rest) is not list:
        view[at : at + len(rest)] = rest
        return
    for part in rest:
        view[at : at + len(part)] = part
        at += len(part)


class Producer(_RingEnd):
    """Writes frames into one ring and publishes them with one tail store per batch.

    ``tail`` is always in sync (this producer owns the word); ``published`` is the value last
    stored; ``cached_head`` may be stale (only ever behind the real head). The ``try_push*``
    methods write one frame ([R1]-[R2]) or return False, having written nothing but perhaps
    a padding frame, when the ring has no room; :meth:`publish` makes every frame written so
    far visible ([R3]-[R4]) and wakes the worker if it waits for them ([W5]-[W6]).
    """

    __slots__ = ("view", "tail", "published", "cached_head", "max_frame_payload", "max_frame_chunks",
                 "crc", "_structs")

    def __init__(self, region, ring_offset: int, chunks: int, head_offset: int, tail_offset: int):
        super().__init__(region, ring_offset, chunks, head_offset, tail_offset)
        self.view = region.view
        # Continue from the positions found in the region (layout.md §12 "Attach").
        self.tail = self.published = self.q[self.tail_word]
        self.cached_head = self.q[self.head_word]
        # Frames of at most a quarter of the ring, so producer and consumer overlap (§6.4).
        self.max_frame_chunks = max(1, chunks // 4)
        self.max_frame_payload = self.max_frame_chunks * self.chunk_bytes - _HB
        #: Every frame (padding too) gets a CRC-32 trailer (layout.md §6.6).
        self.crc = getattr(region, "crc", False)
        if self.crc:
            self.max_frame_payload -= _CRCB
        self._structs = StructCache()

    # ---- [R1] room ---------------------------------------------------------------------
    def reserve(self, n: int) -> int:
        """Byte offset where a frame of ``n`` chunks may be written, or -1 if there is no room.

        Writes a padding frame first when the frame would not fit before the ring's end
        (§6.3); the padding advances ``tail`` even if the frame itself then has no room.
        The caller writes the frame ([R2]) and then advances ``tail`` by ``n``.
        """
        tail = self.tail
        idx = tail & self.mask
        if idx + n > self.chunks:
            pad = self.chunks - idx
            if not self._room(pad):
                return -1
            # [R2] padding frame covering the rest of the ring (§6.3).
            off = self.base + idx * self.chunk_bytes
            if self.crc:
                self._write_crc_padding(off, pad)
            else:
                _pack_header(self.view, off, _MAGIC, _PAD, 0, 0, 0, pad * self.chunk_bytes - _HB, 0, 0)
            self.tail = tail = tail + pad
            idx = 0
        if self.chunks - (tail - self.cached_head) < n and not self._room(n):
            return -1
        return self.base + idx * self.chunk_bytes

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

    def head_moved(self) -> bool:
        """True when the live head is past the cached one: room was freed since [R1]."""
        return self.q[self.head_word] != self.cached_head

    # ---- [R2] frames -------------------------------------------------------------------
    def try_push_request(self, op: int, request_id: int, body) -> bool:
        """Write one unfragmented request frame whose payload is ``params_len`` 0 and ``body``
        (§9.1); the caller checked it fits in one frame (``max_frame_payload``)."""
        plen = _PLB + len(body)
        if self.crc:
            return self._try_push_crc(0, op, request_id, 0, plen, _NO_PARAMS_LEN, body)
        n = (_HB + plen + self.chunk_bytes - 1) // self.chunk_bytes
        tail = self.tail
        idx = tail & self.mask
        if idx + n <= self.chunks and self.chunks - (tail - self.cached_head) >= n:
            off = self.base + idx * self.chunk_bytes  # room by the cached head: no [R1] needed
        else:
            off = self.reserve(n)  # [R1] reload the head and/or pad first
            if off < 0:
                return False
        # [R2] header and params_len in one pack straight into the mapping, then the body.
        view = self.view
        _pack_header_and_params_len(view, off, _MAGIC, 0, op, 0, request_id, plen, 0, plen, 0)
        view[off + _HB + _PLB : off + _HB + plen] = body
        self.tail += n
        return True

    # ---- [R2] batches ------------------------------------------------------------------
    def encode_requests(self, op: int, request_id: int, bodies, longest: int, ops=None):
        """Build one-frame requests (ids ``request_id``, +1, …; ``params_len`` 0; §9.1) for
        ``bodies`` (the longest ``longest`` bytes) as one bytes-like ready to copy into the
        ring, and the chunk where each frame ends, counted from its start; every frame's op
        is ``op``, or ``ops[i]``.

        No Python-level step per frame: bodies of one length with one op are joined with
        the padding and the (shared) header as separator, then the ids, which differ only in
        their low 16 bits within such a batch, are stored by two strided slice assignments
        from a table; other batches are one precompiled struct per frame (header,
        ``params_len``, body NUL-padded to the frame's chunks) mapped over the bodies.

        The caller checked: the op codes, every body is ``bytes`` of at most
        ``max_frame_payload - PARAMS_LEN_BYTES``, the ids stay below 2**64, and the ring has
        no checksums (those go frame by frame)."""
        k = len(bodies)
        cb = self.chunk_bytes
        low = request_id & 0xFFFF
        if ops is None and len(bodies[0]) == longest and low + k <= 0x10000:
            plen = _PLB + longest
            n = (_HB + plen + cb - 1) // cb
            stride = n * cb
            header = _pack_header_and_params_len_bytes(_MAGIC, 0, op, 0, request_id - low, plen,
                                                       0, plen, 0)
            pad = bytes(stride - _HB - plen)
            data = bytearray(header)
            data += (pad + header).join(bodies)
            data += pad
            # Every body as long as the longest (else the frames would be shorter):
            if len(data) == k * stride:
                # [R2] request ids: the low two bytes of each (little-endian, §6.1).
                ids = _u16_table()[2 * low : 2 * (low + k)]
                data[8::stride] = ids[0::2]
                data[9::stride] = ids[1::2]
                return data, range(n, n * (k + 1), n)
        plens = list(map(_add, map(len, bodies), repeat(_PLB, k)))
        if ops is None:
            ops = repeat(op, k)
        ids = range(request_id, request_id + k)
        lo = (_HB + min(plens) + cb - 1) // cb
        hi = (_HB + max(plens) + cb - 1) // cb
        if lo == hi:
            pack = self._request_struct(hi).pack
            data = b"".join(map(pack, repeat(_MAGIC, k), repeat(0, k), ops, repeat(0, k), ids,
                                plens, repeat(0, k), plens, repeat(0, k), bodies))
            return data, range(hi, hi * (k + 1), hi)
        sizes = [(_HB + p + cb - 1) // cb for p in plens]
        packs = {n: self._request_struct(n).pack for n in set(sizes)}
        data = b"".join([packs[n](_MAGIC, 0, op, 0, rid, p, 0, p, 0, body)
                         for n, op, rid, p, body in zip(sizes, ops, ids, plens, bodies)])
        return data, list(accumulate(sizes))

    def _request_struct(self, n: int) -> struct.Struct:
        """The struct of a whole one-frame request of ``n`` chunks (``encode_requests``)."""
        st = self._structs.structs.get(n)
        if st is None:
            # (one record, ~480 bytes compiled: counted as the 4 frames of a run it matches)
            st = self._structs.compile(
                n, 4, f"<HHHHQIIQI{n * self.chunk_bytes - _HB - _PLB}s")
        return st

    def try_push_encoded(self, data: bytes, ends, done: int) -> int:
        """Copy the frames ``done``, ``done + 1``, … of an :meth:`encode_requests` batch into
        the ring ([R2]) with one slice assignment per stretch of free chunks, as many as there
        is room for: a padding frame (§6.3) where the next frame would pass the ring's end,
        the head reloaded ([R1]) only when the cached one says full. The index of the first
        frame not written (``len(ends)`` when all were). Nothing is published."""
        k = len(ends)
        cb = self.chunk_bytes
        chunks = self.chunks
        data = memoryview(data)
        while done < k:
            base = ends[done - 1] if done else 0
            tail = self.tail
            idx = tail & self.mask
            # Frames [done, last) end before the ring does.
            last = bisect_right(ends, base + chunks - idx, done)
            if last == done:
                # [R2] the next frame does not fit before the ring's end: pad (§6.3).
                off = self.reserve(ends[done] - base)
                if off < 0:
                    return done
                continue  # reserve() padded; the next pass writes from chunk 0
            want = ends[last - 1] - base
            if chunks - (tail - self.cached_head) < want and not self._room(want):
                # [R1] room for fewer: the frames that end within it.
                last = bisect_right(ends, base + chunks - (tail - self.cached_head), done)
                if last == done:
                    return done
                want = ends[last - 1] - base
            off = self.base + idx * cb
            # [R2] every frame of the stretch in one copy.
            self.view[off : off + want * cb] = data[base * cb : (base + want) * cb]
            self.tail = tail + want
            done = last
        return done

    def try_push(self, flags: int, op: int, request_id: int, fragment_index: int,
                 message_len: int, payload, rest=b"") -> bool:
        """Write one frame whose payload is ``payload`` followed by ``rest`` (§6): a fragment
        of a message of ``message_len`` bytes, or a whole one. ``rest`` may be a list of
        bytes, copied one after the other (a gathered body: never joined first)."""
        if self.crc:
            return self._try_push_crc(flags, op, request_id, fragment_index, message_len, payload,
                                      rest)
        first = len(payload)
        plen = first + _length(rest)
        n = (_HB + plen + self.chunk_bytes - 1) // self.chunk_bytes
        off = self.reserve(n)
        if off < 0:
            return False
        # [R2] header, then the payload bytes.
        view = self.view
        _pack_header(view, off, _MAGIC, flags, op, 0, request_id, plen, fragment_index, message_len)
        off += _HB
        view[off : off + first] = payload
        _copy_rest(view, off + first, rest)
        self.tail += n
        return True

    def _try_push_crc(self, flags, op, request_id, fragment_index, message_len, payload,
                      rest) -> bool:
        """:meth:`try_push` with ``FLAG_CRC``: the trailer is the CRC-32 of the header and
        payload as this producer built them, never read back from the ring (§6.6)."""
        first = len(payload)
        plen = first + _length(rest)
        n = (_HB + plen + _CRCB + self.chunk_bytes - 1) // self.chunk_bytes
        off = self.reserve(n)
        if off < 0:
            return False
        header = _pack_header_bytes(_MAGIC, flags | _CRC, op, 0, request_id, plen, fragment_index,
                                    message_len)
        # [R2] header, payload, trailer.
        view = self.view
        view[off : off + _HB] = header
        at = off + _HB
        view[at : at + first] = payload
        _copy_rest(view, at + first, rest)
        crc = _crc32(payload, _crc32(header))
        for part in rest if type(rest) is list else (rest,):
            crc = _crc32(part, crc)
        _pack_crc(view, at + plen, crc)
        self.tail += n
        return True

    def _write_crc_padding(self, off: int, pad: int) -> None:
        """[R2] a padding frame with ``FLAG_CRC``: 4 bytes shorter so that its trailer (the
        CRC-32 of its header alone) ends the ring (§6.3, §6.6); a padding of one 32-byte chunk
        has no room for one and goes without."""
        plen = pad * self.chunk_bytes - _HB - _CRCB
        if plen < 0:
            _pack_header(self.view, off, _MAGIC, _PAD, 0, 0, 0, 0, 0, 0)
            return
        header = _pack_header_bytes(_MAGIC, _PAD | _CRC, 0, 0, 0, plen, 0, 0)
        self.view[off : off + _HB] = header
        _pack_crc(self.view, off + _HB + plen, _crc32(header))

    def try_push_raw(self, frame: bytes) -> bool:
        """Test hook: write ``frame`` verbatim, taking ``ceil(len(frame) / CHUNK_BYTES)`` chunks."""
        n = max(1, (len(frame) + self.chunk_bytes - 1) // self.chunk_bytes)
        off = self.reserve(n)
        if off < 0:
            return False
        self.view[off : off + len(frame)] = frame  # [R2]
        self.tail += n
        return True

    # ---- [R3]-[R4] publish, [W5]-[W6] wake ---------------------------------------------
    def publish(self, wake: bool = True) -> int:
        """Publish every frame written since the last call with one tail store and wake the
        worker if it parked waiting for frames. 0 when there was nothing to publish, 1 when
        published, 2 when published and a futex wake was issued (the worker was parked).
        ``wake=False`` (a snapshot push, which nobody waits for) skips [W5]-[W6]: a parked
        worker finds the frames at its next park timeout, or at the next :meth:`wake`."""
        tail = self.tail
        if tail == self.published:
            return 0
        if NEED_RW_FENCES:
            barrier_write()  # [R3] frame bytes above happen-before the tail store below
        # [R4] one tail store for the whole batch; pairs with [R5] in the worker's consumer.
        self.q[self.tail_word] = tail
        self.published = tail
        if wake and self.wake():
            return 2
        return 1

    def wake(self) -> bool:
        """[W5]-[W6] after a tail store: wake the worker if it parked for frames; True when a
        futex wake was issued. :meth:`publish` calls it; a client that published with
        ``wake=False`` calls it before it waits for an answer."""
        barrier_memory()  # [W5] StoreLoad: the tail store before the load below
        # [W6] if the worker parked for frames (PARKED), mark it awake and wake it; pairs
        # with [W4]. AWAKE first, so a wait that has not started yet returns at once.
        i = self._futex_words
        if i[self._peer_word] & _PARKED:
            i[self._peer_word] = _AWAKE
            futex_wake(self._peer_futex, 1)
            return True
        return False


class Consumer(_RingEnd):
    """Reads frames from one ring, skipping padding, and releases them with one head store.

    ``head`` is always in sync (this consumer owns the word); ``released`` is the value last
    stored; ``cached_tail`` may be stale (only ever behind the real tail).
    """

    __slots__ = ("mm", "view", "head", "released", "cached_tail", "crc", "_structs")

    def __init__(self, region, ring_offset: int, chunks: int, head_offset: int, tail_offset: int):
        super().__init__(region, ring_offset, chunks, head_offset, tail_offset)
        self.mm = region.mm
        self.view = region.view
        self.head = self.released = self.q[self.head_word]
        self.cached_tail = self.head
        #: Every response frame must carry a CRC-32 that matches (layout.md §6.6).
        self.crc = getattr(region, "crc", False)
        self._structs = StructCache()

    def pending(self) -> bool:
        """True when the live tail shows frames not yet read (a cheap, lock-free peek)."""
        return self.q[self.tail_word] != self.head

    def poll(self):
        """The next frame as ``(flags, op, status, request_id, fragment_index, message_len,
        payload: bytes)``, or None when the ring is empty. Padding frames are skipped.

        Raises ProtocolError when the worker broke §4 or §6 (the client cannot resynchronise
        a response ring: its producer is the one that is broken). With checksums (§6.6) a
        frame that fails them raises :class:`ChecksumError` after moving past everything
        published: checked frames make resynchronising safe.
        """
        if self.crc:
            return self._poll_crc()
        while True:
            head = self.head
            if head == self.cached_tail and not self._load_tail():  # [R5]
                return None
            idx = head & self.mask
            off = self.base + idx * self.chunk_bytes
            magic, flags, op, status, rid, plen, fidx, mlen = _unpack_header(self.mm, off)
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
            # chunks are released in `release`. A fragment is handed out as a view of the
            # mapping instead: the reassembler copies it once, straight into the whole
            # message, before `release` (valid only until then).
            if flags & _MORE or fidx:
                payload = self.view[off + _HB : off + _HB + plen]
            else:
                payload = self.mm[off + _HB : off + _HB + plen]
            self.head = head + n
            return flags, op, status, rid, fidx, mlen, payload

    def take_simple(self, limit: int = TAKE_SIMPLE_RUN):
        """Read a run of simple answers at the head at once: ``(request_ids, payloads)``, or
        None when the next frame is not one (or nothing is published).

        Simple: a single-frame answer without flags (no error, fragment, padding or
        checksum: those take :meth:`poll`) of as many chunks as the first, which holds at
        most :data:`TAKE_SIMPLE_MAX_PAYLOAD` bytes (a larger one is read by :meth:`poll`). The run (a power
        of two of frames, at most ``limit``, so that few structs are ever compiled) is copied
        out of the mapping with one slice, every header parsed from that copy by one
        precompiled struct and checked (magic, flags, status, fragment fields, a
        ``payload_len`` that takes exactly those chunks) before the head moves past it; the
        first frame that fails a check ends the run, and :meth:`poll` reads it."""
        head = self.head
        if head == self.cached_tail and not self._load_tail():
            return None  # ([R5] in _load_tail)
        idx = head & self.mask
        off = self.base + idx * self.chunk_bytes
        cb = self.chunk_bytes
        mm = self.mm
        magic, flags, _, status, rid, plen, fidx, mlen = _unpack_header(mm, off)
        if magic != _MAGIC or flags or plen > TAKE_SIMPLE_MAX_PAYLOAD:
            return None
        n = (_HB + plen + cb - 1) // cb
        # Whole frames of n chunks before the published tail and the ring's end.
        m = min(self.cached_tail - head, self.chunks - idx, limit * n) // n
        if not m:
            return None
        m = 1 << (m.bit_length() - 1)
        stride = n * cb
        low = stride - cb - _HB  # payload_len in (low, high] takes exactly n chunks
        high = stride - _HB
        # The run is as long as the frames are the first one's size; answers of many sizes
        # (a flush of pushes, each with its patch back) make short runs. The header where
        # the run's last frame would start is looked at first, halving the run until it
        # is one such frame's (a guess: every header is checked below), so a short run
        # is not parsed, nor a struct compiled, for the chunks of a long one.
        while m > 1:
            last_magic, last_flags, _, _, _, last_plen, _, _ = _unpack_header(
                mm, off + (m - 1) * stride)
            if last_magic == _MAGIC and not last_flags and low < last_plen <= high:
                break
            m >>= 1
        if m == 1:
            # One frame (an answer awaited alone): checked from the header read above.
            if status or fidx or plen != mlen:
                return None
            self.head = head + n
            return (rid,), (mm[off + _HB : off + _HB + plen],)
        cache = self._structs
        st = cache.structs.get((n, m))
        if st is None:
            # Per frame five fields, not eight: magic | flags << 16 (both checked by one
            # compare with FRAME_MAGIC), op skipped, status, request_id, payload_len |
            # fragment_index << 32 (a fragment index makes it exceed any payload_len),
            # message_len (layout.md §6.1, little-endian).
            st = cache.compile((n, m), m, "<" + f"I2xHQQQ{stride - _HB}x" * m, keep_new=False)
        buf = self.mm[off : off + m * stride]
        fields = st.unpack(buf)
        rids = fields[2::5]
        plens = fields[3::5]
        if not (fields[0::5].count(_MAGIC) == fields[1::5].count(0) == m
                and plens == fields[4::5] and low < min(plens) and max(plens) <= high):
            # The run ends at the first frame that is not simple (rare: an error answer, a
            # frame of another size); loop over the headers only to find it.
            good = 0
            for at in range(0, 5 * m, 5):
                magic_flags, status, _, plen_fidx, mlen = fields[at : at + 5]
                if (magic_flags != _MAGIC or status or plen_fidx != mlen
                        or not low < plen_fidx <= high):
                    break
                good += 1
            if not good:
                return None
            m = good
            rids = rids[:m]
            plens = plens[:m]
        self.head = head + m * n
        plen = plens[0]
        if m == len(fields) // 5 and plens.count(plen) == m:
            # Same-size answers (the common case): one struct slices every payload out.
            st = cache.structs.get((n, m, plen))
            if st is None:
                st = cache.compile((n, m, plen), m,
                                   "<" + f"{_HB}x{plen}s{stride - _HB - plen}x" * m, keep_new=False)
            return rids, st.unpack(buf)
        return rids, [buf[at : at + p] for at, p in zip(range(_HB, _HB + m * stride, stride), plens)]

    def _load_tail(self) -> bool:
        """[R5] load the tail into ``cached_tail``; False when nothing new is published."""
        head = self.head
        tail = self.q[self.tail_word]
        if NEED_RW_FENCES:
            barrier_read()  # [R5] pairs with [R3]/[R4] in the worker's producer
        if tail == head:
            return False
        if not head < tail <= head + self.chunks:
            raise ProtocolError(
                f"response ring tail {tail} is outside head {head} + {self.chunks} chunks"
            )
        self.cached_tail = tail
        return True

    def _poll_crc(self):
        """:meth:`poll` for checksummed frames (§6.6): header, payload and trailer are copied
        out first and the CRC computed over the copies before any field but the extent is
        used; every failure resynchronises (head to the observed tail) and raises
        :class:`ChecksumError`."""
        mm = self.mm
        while True:
            head = self.head
            if head == self.cached_tail and not self._load_tail():
                return None
            idx = head & self.mask
            off = self.base + idx * self.chunk_bytes
            header = mm[off : off + _HB]
            magic, flags, op, status, rid, plen, fidx, mlen = _unpack_header(header)
            if magic != _MAGIC:
                self._resync(f"bad magic {magic:#06x}")
            if not flags & _CRC:
                if flags == _PAD and idx + 1 == self.chunks and self.chunk_bytes < _HB + _CRCB:
                    self.head = head + 1  # a 32-byte padding: no room for a trailer (§6.6)
                    continue
                self._resync("a frame without a checksum (FLAG_CRC) from a checksumming worker")
            n = (_HB + plen + _CRCB + self.chunk_bytes - 1) // self.chunk_bytes
            if idx + n > self.chunks or head + n > self.cached_tail:
                self._resync(f"{plen} payload bytes run past the published tail or the ring's end")
            at = off + _HB + plen
            (trailer,) = _unpack_crc(mm, at)
            padding = flags & _PAD
            payload = b"" if padding else mm[off + _HB : at]
            computed = _crc32(payload, _crc32(header))
            if computed != trailer:
                self._resync(f"checksum mismatch (trailer {trailer:#010x}, computed {computed:#010x})")
            self.head = head + n
            if padding:
                if idx + n != self.chunks:
                    self._resync("a padding frame that does not end the ring")
                continue
            return flags, op, status, rid, fidx, mlen, payload

    def _resync(self, why: str):
        """§6.5/§6.6 on the response ring: skip everything published up to the observed tail
        (the producer publishes whole frames, so the next one starts there) and raise."""
        at = self.head
        self.head = self.cached_tail
        raise ChecksumError(
            f"response frame at position {at} failed its check: {why}; every request in flight "
            "is failed"
        )

    def release(self) -> bool:
        """Give the chunks read so far back to the producer with one head store, and wake the
        worker if it parked waiting for room; True if there was anything to release."""
        head = self.head
        if head == self.released:
            return False
        if NEED_RW_FENCES:
            barrier_write()  # [R6] the copy-outs above happen-before the head store below
        # [R6] store head; pairs with [R1] in the worker's producer.
        self.q[self.head_word] = head
        self.released = head
        barrier_memory()  # [W5] StoreLoad: the head store above before the load below
        # [W6] wake the worker only if it parked for room (PARKED_FOR_ROOM). A worker parked
        # for requests is left asleep: waking an idle worker only because we read its answer
        # cost ~60 µs of a futex wake per call on this kind of machine (layout.md §10).
        i = self._futex_words
        if i[self._peer_word] & _PARKED_FOR_ROOM:
            i[self._peer_word] = _AWAKE
            futex_wake(self._peer_futex, 1)
        return True
