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

from . import _layout as L

_MORE = L.FLAG_MORE


class FragmentError(Exception):
    """Fragments that break §6.4; fail the request ``request_id`` with this message."""

    def __init__(self, request_id: int, message: str):
        super().__init__(message)
        self.request_id = request_id


class _Open:
    """The message being reassembled: its first fragment's fields and what arrived so far."""

    __slots__ = ("request_id", "op", "message_len", "next_index", "parts", "received")

    def __init__(self, request_id: int, op: int, message_len: int, first: bytes):
        self.request_id = request_id
        self.op = op
        self.message_len = message_len
        self.next_index = 1
        self.parts = [first]
        self.received = len(first)


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
                return payload
            self.open = _Open(request_id, op, message_len, payload)
            return None
        m = self.open
        if (m is None or m.request_id != request_id or m.op != op
                or m.message_len != message_len or m.next_index != fragment_index):
            self.open = None
            raise _out_of_sequence(request_id, message_len, fragment_index)
        m.parts.append(payload)
        m.received += len(payload)
        m.next_index += 1
        if m.received > message_len:
            self.open = None
            raise _out_of_sequence(request_id, message_len, m.received)
        if flags & _MORE:
            return None
        self.open = None
        if m.received != message_len:
            raise _out_of_sequence(request_id, message_len, m.received)
        return b"".join(m.parts)


def _out_of_sequence(request_id: int, message_len: int, got: int) -> FragmentError:
    return FragmentError(
        request_id, f"response fragments out of sequence (message_len {message_len}, got {got})"
    )
