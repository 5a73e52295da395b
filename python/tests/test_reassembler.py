"""The client's Reassembler on its own (layout.md §6.4): fragments in, whole answers out,
and every broken sequence reported against its request id. No worker needed."""

from __future__ import annotations

import pytest

from chunkring import _layout as L
from chunkring._reassembler import FragmentError, Reassembler

MORE = L.FLAG_MORE
OP = L.OP_ECHO


def test_a_single_frame_passes_through():
    sut = Reassembler()
    assert sut.accept(0, OP, 7, 0, 3, b"abc") == b"abc"
    assert sut.open is None and sut.take_abandoned() is None


def test_fragments_are_joined_once_the_last_is_in():
    sut = Reassembler()
    assert sut.accept(MORE, OP, 7, 0, 6, b"ab") is None
    assert sut.accept(MORE, OP, 7, 1, 6, b"cd") is None
    assert sut.open.next_index == 2 and sut.open.received == 4
    assert sut.accept(0, OP, 7, 2, 6, b"ef") == b"abcdef"
    assert sut.open is None


def test_a_new_first_fragment_abandons_the_open_message():
    sut = Reassembler()
    sut.accept(MORE, OP, 7, 0, 6, b"ab")
    assert sut.accept(0, OP, 8, 0, 2, b"xy") == b"xy"
    assert sut.take_abandoned() == 7
    assert sut.take_abandoned() is None


@pytest.mark.parametrize(
    "frame, got",
    [
        ((0, OP, 7, 2, 6, b"cd"), 2),  # index 2 where 1 was expected
        ((0, OP, 9, 1, 6, b"cd"), 1),  # another request id
        ((0, OP + 1, 7, 1, 6, b"cd"), 1),  # another op
        ((MORE, OP, 7, 1, 6, b"cdefgh"), 8),  # more bytes than message_len
        ((0, OP, 7, 1, 6, b"c"), 3),  # the last fragment leaves the message short
    ],
)
def test_a_broken_sequence_fails_its_request_and_drops_the_message(frame, got):
    sut = Reassembler()
    sut.accept(MORE, OP, 7, 0, 6, b"ab")
    with pytest.raises(FragmentError) as info:
        sut.accept(*frame)
    assert info.value.request_id == frame[2]
    assert str(info.value) == f"response fragments out of sequence (message_len 6, got {got})"
    assert sut.open is None


def test_a_fragment_with_no_open_message_is_out_of_sequence():
    with pytest.raises(FragmentError, match=r"message_len 4, got 1"):
        Reassembler().accept(0, OP, 7, 1, 4, b"ab")


def test_a_single_frame_shorter_than_message_len_is_out_of_sequence():
    with pytest.raises(FragmentError, match=r"message_len 4, got 2"):
        Reassembler().accept(0, OP, 7, 0, 4, b"ab")
