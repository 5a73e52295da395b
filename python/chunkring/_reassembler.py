"""Reassembly of fragmented responses (layout.md §6.4): the client's side of Rust's
``src/ring/fragment.rs`` ``Reassembler``.

A message larger than one frame arrives as fragments 0, 1, ... of the same request id, op
and ``message_len``, every one but the last flagged ``FLAG_MORE``. The worker's producer is
trusted to follow §6.4 but checked all the same; what breaks the rules fails that one
request with :class:`~chunkring.errors.ProtocolError`, never the client.

Compared with Rust's ``Reassembler`` (which guards the worker against any client): no
``MAX_MESSAGE_BYTES`` check (the worker's answers are bounded by the worker), and no
"dropping" state: the remaining fragments of a broken message find no open message and are
reported against the same request id again, whose handle has already failed.
"""

from __future__ import annotations

import ctypes

from . import _layout as L

_MORE = L.FLAG_MORE


def _bytes_maker():
    """A way to build the whole message with one copy of each fragment: an uninitialised
    ``bytes`` of the message's length (``PyBytes_FromStringAndSize(NULL, n)``, CPython's own
    way to build a bytes object in place) filled with ``memmove`` before anyone else sees it.
    None off CPython: fragments then go into a ``bytearray``, copied once more at the end."""
    try:
        fn = ctypes.pythonapi.PyBytes_FromStringAndSize
    except AttributeError:
        return None
    fn.restype = ctypes.py_object
    fn.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
    return fn


_new_bytes = _bytes_maker()
#: Offset of a bytes object's first data byte from its address (``ob_sval``).
_BYTES_DATA = bytes.__basicsize__ - 1
_memmove = ctypes.memmove
_c_char = ctypes.c_char
_addressof = ctypes.addressof


def _address(payload) -> tuple:
    """``(address, keepalive)`` of a fragment's bytes: a ``bytes`` object, or a writable
    memoryview of the mapped response ring (``Consumer.poll`` hands out fragments that way,
    valid until the chunks are released)."""
    if isinstance(payload, bytes):
        return ctypes.cast(ctypes.c_char_p(payload), ctypes.c_void_p).value, payload
    owner = _c_char.from_buffer(payload)
    return _addressof(owner), owner


class FragmentError(Exception):
    """Fragments that break §6.4; fail the request ``request_id`` with this message."""

    def __init__(self, request_id: int, message: str):
        super().__init__(message)
        self.request_id = request_id


class _Open:
    """The message being reassembled: its first fragment's fields, the message buffer (the
    final ``bytes``, or a ``bytearray`` off CPython) and how many bytes arrived so far."""

    __slots__ = ("request_id", "op", "message_len", "next_index", "buf", "addr", "received")

    def __init__(self, request_id: int, op: int, message_len: int):
        self.request_id = request_id
        self.op = op
        self.message_len = message_len
        self.next_index = 1
        if _new_bytes is not None:
            self.buf = _new_bytes(None, message_len)
            self.addr = id(self.buf) + _BYTES_DATA
        else:
            self.buf = bytearray(message_len)
            self.addr = 0
        self.received = 0

    def add(self, payload) -> bool:
        """Copy one fragment in after the previous ones; False if it would overrun."""
        n = len(payload)
        at = self.received
        if at + n > self.message_len:
            return False
        if self.addr:
            src, keep = _address(payload)
            _memmove(self.addr + at, src, n)
            del keep
        else:
            self.buf[at : at + n] = payload
        self.received = at + n
        return True

    def whole(self) -> bytes:
        buf = self.buf
        return buf if isinstance(buf, bytes) else bytes(buf)


class Reassembler:
    """Collects the fragments of one message at a time.

    ``open`` is the message in progress (None between messages); :meth:`take_abandoned`
    reports a message left incomplete by the first fragment of the next one.
    """

    __slots__ = ("open", "_abandoned")

    def __init__(self):
        self.open: _Open | None = None
        self._abandoned: int | None = None

    def take_abandoned(self) -> int | None:
        """The request id of a message abandoned before its last fragment, once; else None."""
        rid, self._abandoned = self._abandoned, None
        return rid

    def accept(self, flags: int, op: int, request_id: int, fragment_index: int,
               message_len: int, payload: bytes) -> bytes | None:
        """Feed one frame; the whole payload once its last fragment is in, else None.

        Raises :class:`FragmentError` for a fragment out of sequence, one that belongs to
        another message, or fragments whose sizes do not add up to ``message_len``; the open
        message is dropped.
        """
        if fragment_index == 0:
            if self.open is not None:
                self._abandoned = self.open.request_id
                self.open = None
            if not flags & _MORE:
                if message_len != len(payload):
                    raise _out_of_sequence(request_id, message_len, len(payload))
                return bytes(payload)
            try:
                m = _Open(request_id, op, message_len)
            except (MemoryError, OverflowError):
                raise _out_of_sequence(request_id, message_len, len(payload)) from None
            if not m.add(payload):
                raise _out_of_sequence(request_id, message_len, len(payload))
            self.open = m
            return None
        m = self.open
        if (m is None or m.request_id != request_id or m.op != op
                or m.message_len != message_len or m.next_index != fragment_index):
            self.open = None
            raise _out_of_sequence(request_id, message_len, fragment_index)
        if not m.add(payload):
            self.open = None
            raise _out_of_sequence(request_id, message_len, m.received + len(payload))
        m.next_index += 1
        if flags & _MORE:
            return None
        self.open = None
        if m.received != message_len:
            raise _out_of_sequence(request_id, message_len, m.received)
        return m.whole()


def _out_of_sequence(request_id: int, message_len: int, got: int) -> FragmentError:
    return FragmentError(
        request_id, f"response fragments out of sequence (message_len {message_len}, got {got})"
    )
