"""Large messages through a real worker, copied out of the request ring once: each fragment
lands after the bytes already reassembled (``Consumer::poll_at``), and echo answers from that
buffer (``Reply::Body``), lent to its writer until the answer is written (layout.md §6.4).

Large single-frame answers are read one by one, with one copy each, between runs of small
ones (``Consumer.take_simple`` takes only answers up to ``TAKE_SIMPLE_MAX_PAYLOAD``).

Sizes sit on the fragment boundaries of the 64 KiB test rings (a frame holds at most a quarter
ring, §6.4), answers are compared byte for byte, and sizes alternate so that a buffer grown by
one message is reused, not trusted, by the next.
"""

from __future__ import annotations

import os
from collections import deque

import pytest
from chunkring import Client, RequestError
from chunkring import _layout as L
from chunkring._ring import TAKE_SIMPLE_MAX_PAYLOAD
from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES, eventually

#: Payload bytes of the largest frame the client and worker write: a quarter ring.
MAX_FRAME = SMALL_RING_BYTES // 4 - L.FRAME_HEADER_BYTES
#: A request payload is ``params_len`` (4 bytes) then the body (layout.md §9.1).
PLB = L.PARAMS_LEN_BYTES


def _sizes() -> dict[str, int]:
    out = {}
    for k in (1, 2, 3, 5):
        for d in (-1, 0, 1):
            out[f"request_{k}_frames{d:+d}"] = k * MAX_FRAME - PLB + d  # request side edges
            out[f"answer_{k}_frames{d:+d}"] = k * MAX_FRAME + d  # answer side edges
    out["one_chunk_frames"] = SMALL_CHUNK_BYTES
    out["whole_ring"] = SMALL_RING_BYTES
    out["four_rings_and_a_bit"] = 4 * SMALL_RING_BYTES + 13
    return out


SIZES = _sizes()


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_echo_is_byte_for_byte_at_every_fragment_edge(client, size):
    data = os.urandom(size)
    assert client.echo(data) == data


def test_a_large_buffer_reused_for_smaller_messages_answers_only_them(client):
    # Big, small, big again: the worker's buffer keeps its length from the big message, so
    # an answer that took the buffer's length instead of the message's would show here.
    for size in (3 * MAX_FRAME + 7, 5, MAX_FRAME + 1, 0, 2 * SMALL_RING_BYTES, 1):
        data = os.urandom(size)
        assert client.echo(data) == data, size


@pytest.mark.parametrize("size", [0, 1, MAX_FRAME - PLB - 64, MAX_FRAME - PLB,
                                  MAX_FRAME - PLB + 1, 3 * MAX_FRAME + 5])
def test_a_gathered_body_is_the_bytes_of_its_parts(client, size, worker_bin):
    # One frame: the parts are copied into the ring one after the other, never joined; larger:
    # joined, then fragmented. Either way the worker sees the bytes of the parts in order,
    # with params before them and through checksummed frames alike.
    from chunkring._payload import Gathered
    data = os.urandom(size)
    cuts = sorted({0, size, size // 3, size // 2, max(size - 1, 0)})
    parts = [data[a:b] for a, b in zip(cuts, cuts[1:])] + [b""]
    assert client.submit(L.OP_ECHO, Gathered(parts)).result(10) == data
    assert client.submit(L.OP_ECHO, Gathered(parts), {"p": 1}).result(10) == data
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES,
                      worker=worker_bin, crc=True) as checked:
        assert checked.submit(L.OP_ECHO, Gathered(parts), {"p": 1}).result(10) == data


def test_a_gathered_body_over_the_message_limit_is_refused_before_anything_is_sent(client):
    from chunkring._payload import Gathered
    big = Gathered([b"x" * 1024] * (client._sender._max_message_bytes // 1024 + 1))
    tail = client._sender.producer.tail
    with pytest.raises(ValueError, match="MAX_MESSAGE_BYTES"):
        client.submit(L.OP_ECHO, big)
    assert client._sender.producer.tail == tail


def test_params_before_a_fragmented_body_are_not_echoed(client):
    data = os.urandom(2 * MAX_FRAME + 3)
    params = {"pad": "x" * 3000, "n": [1, 2, 3]}  # the params cross into a second frame too
    assert client.call(L.OP_ECHO, data, params=params) == data


def test_bad_params_on_a_fragmented_echo_are_refused_and_the_worker_goes_on(client):
    data = os.urandom(3 * MAX_FRAME)
    # Params that are a JSON array, not an object (§9.1): ``call`` only sends dicts, so the
    # encoded prefix goes through the general path the client's own calls take.
    bad = (5).to_bytes(PLB, "little") + b"[1,2]"
    with pytest.raises(RequestError) as err:
        client._general(L.OP_ECHO, data, bad, None)
    assert err.value.code == L.ERR_BAD_PARAMS
    assert client.echo(data) == data


def test_fragmented_echoes_in_flight_while_the_answers_wait_for_room(client):
    # More answer bytes than the response ring holds, none read until all are sent: the
    # worker's answer waits for room while holding the request buffer it answers from.
    payloads = [os.urandom(SMALL_RING_BYTES // 2 + i * 977) for i in range(12)]
    handles = deque(client.submit(L.OP_ECHO, p) for p in payloads)
    for p in payloads:
        assert handles.popleft().result(30) == p


def test_pipeline_stages_echo_a_fragmented_body(client):
    data = os.urandom(3 * MAX_FRAME + 11)
    assert client.pipeline([(L.OP_ECHO, None), (L.OP_ECHO, {})], data) == data


@pytest.fixture(scope="module")
def wide_client(worker_bin):
    """Rings of 256 KiB: single frames up to 64 KiB, larger than TAKE_SIMPLE_MAX_PAYLOAD."""
    c = Client.spawn(ring_bytes=256 * 1024, chunk_bytes=SMALL_CHUNK_BYTES, worker=worker_bin)
    yield c
    c.close()


def test_large_single_frame_answers_are_read_one_by_one_between_runs_of_small_ones(
        wide_client):
    T = TAKE_SIMPLE_MAX_PAYLOAD
    sizes = [T - 1, T, T + 1, 3 * T, 10, 64, T + 1, 12, 3 * T - PLB]
    assert max(sizes) + PLB <= 256 * 1024 // 4 - L.FRAME_HEADER_BYTES  # one frame each
    for size in sizes:  # one in flight: the synchronous paths
        data = os.urandom(size)
        assert wide_client.echo(data) == data, size
    # Many in flight: runs of small answers (take_simple) and large ones (poll) interleave.
    payloads = [os.urandom(sizes[i % len(sizes)]) for i in range(40)]
    handles = [wide_client.submit(L.OP_ECHO, p) for p in payloads]
    assert [h.result(30) for h in handles] == payloads
    # The run reader leaves an answer over T to poll: nothing of it is taken.
    h = wide_client.submit(L.OP_ECHO, os.urandom(T + 1))
    rx = wide_client._receiver
    cons = rx._consumer
    assert eventually(cons.pending), "the answer is published"
    with rx._lock:
        head = cons.head
        assert cons.take_simple() is None
        assert cons.head == head
    assert len(h.result(30)) == T + 1


def _raw(rid, payload, *, flags=0, status=0, index=0, message_len=None):
    """A request frame built by hand, as an independent client may fragment (layout.md §6.4)."""
    mlen = len(payload) if message_len is None else message_len
    return L.FRAME_HEADER.pack(L.FRAME_MAGIC, flags, L.OP_ECHO, status, rid, len(payload),
                               index, mlen) + payload


def test_an_error_answered_mid_message_leaves_the_open_message_whole(own_client):
    # A small fragmented echo in a fresh worker (a buffer of a few bytes), with a malformed
    # frame between its fragments: the error's answer must not take the place of the buffer
    # the first fragment was copied into, or the message is answered from other bytes.
    tx = own_client._sender
    rid, bad = tx.new_request_id(), tx.new_request_id()
    message = b"\0\0\0\0xy"  # params_len 0, body "xy"
    h = tx.publish_raw(_raw(rid, message[:3], flags=L.FLAG_MORE, message_len=6), expect_id=rid)
    e = tx.publish_raw(_raw(bad, b"\0\0\0\0", status=3), expect_id=bad)
    with pytest.raises(RequestError) as info:
        e.result(10)
    assert info.value.code == L.ERR_MALFORMED_HEADER
    tx.publish_raw(_raw(rid, message[3:], index=1, message_len=6))
    assert h.result(10) == b"xy"


def test_a_message_abandoned_midway_leaves_the_next_one_whole(own_client):
    # The first fragment of a new message abandons the open one (answered FRAGMENT_SEQUENCE):
    # that answer must not take the place of the buffer holding the new message.
    tx = own_client._sender
    old, new = tx.new_request_id(), tx.new_request_id()
    h_old = tx.publish_raw(_raw(old, b"\0\0\0", flags=L.FLAG_MORE, message_len=6), expect_id=old)
    h_new = tx.publish_raw(_raw(new, b"\0\0\0\0hi"), expect_id=new)
    with pytest.raises(RequestError) as info:
        h_old.result(10)
    assert info.value.code == L.ERR_FRAGMENT_SEQUENCE
    assert h_new.result(10) == b"hi"
