"""Echo through a real worker at every size edge (layout.md §5, §6.3 padding, §6.4 fragments)."""

from __future__ import annotations

import os

import pytest
from chunkring import _layout as L
from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES, eventually

CHUNK = SMALL_CHUNK_BYTES
RING = SMALL_RING_BYTES

SIZES = {
    "empty": 0,
    "one_byte": 1,
    "chunk_minus_one": CHUNK - 1,
    "chunk": CHUNK,
    "chunk_plus_one": CHUNK + 1,
    "ring_capacity_minus_one": RING - 1,
    "four_rings_fragmented": 4 * RING,
}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_echo_returns_identical_bytes(client, size):
    data = os.urandom(size)
    assert client.echo(data) == data


def test_region_has_the_requested_geometry(client):
    assert client.ring_bytes == RING
    assert client.chunk_bytes == CHUNK
    assert client.path.name == f"chunkring-{client.name}"


def test_frames_that_straddle_the_ring_end_are_padded(client):
    before = client.stats()
    # 7-chunk frames do not divide a 1024-chunk ring: every lap needs a padding frame.
    size = 7 * CHUNK - L.FRAME_HEADER_BYTES - 4
    for i in range(3 * RING // (7 * CHUNK)):
        data = bytes([i % 256]) * size
        assert client.echo(data) == data
    assert eventually(lambda: client.stats()["req_padding"] > before["req_padding"])
    assert eventually(lambda: client.stats()["resp_padding"] > before["resp_padding"])


def test_fragmented_messages_are_counted_by_the_worker(client):
    before = client.stats()
    data = os.urandom(2 * RING + 17)
    assert client.echo(data) == data
    assert eventually(lambda: client.stats()["req_fragments"] >= before["req_fragments"] + 8)
    assert eventually(lambda: client.stats()["resp_fragments"] >= before["resp_fragments"] + 8)


def test_call_with_params_and_body(client):
    assert client.call(L.OP_ECHO, b"body", params={"ignored": [1, 2]}) == b"body"


def test_memoryview_and_bytearray_bodies(client):
    raw = bytearray(os.urandom(3 * CHUNK))
    assert client.echo(raw) == bytes(raw)
    assert client.call(L.OP_ECHO, memoryview(raw)[5:], params={}) == bytes(raw[5:])


def test_pipeline_of_echo_stages(client):
    data = os.urandom(1000)
    assert client.pipeline([(L.OP_ECHO, None), (L.OP_ECHO, {})], data) == data


def test_info_describes_the_worker(client):
    info = client.info()
    assert info["layout_version"] == L.LAYOUT_VERSION
    assert info["pid"] == client.pid
    assert info["chunk_bytes"] == CHUNK
    codes = {op["code"] for op in info["ops"]}
    assert {L.OP_ECHO, L.OP_PIPELINE, L.OP_SHUTDOWN, L.OP_INFO} <= codes


def test_stats_count_requests_and_responses(client):
    before = client.stats()
    for _ in range(10):
        client.echo(b"x")

    # Counters are Relaxed stores the worker may make just after publishing the response.
    def caught_up():
        s = client.stats()
        return (
            s["requests"] >= before["requests"] + 10
            and s["responses"] >= before["responses"] + 10
            and s["req_head"] == s["req_tail"]
            and s["resp_head"] == s["resp_tail"]
        )

    assert eventually(caught_up)
    assert client.stats()["worker_state"] == L.WORKER_READY


def test_stats_keys_are_the_counter_names_then_the_ring_words(client):
    # The names `chunkring inspect` prints (L.STAT_NAMES), in index order; callers key on them.
    assert list(client.stats()) == [
        "requests", "responses", "error_frames", "req_bytes", "resp_bytes", "worker_parks",
        "timeout_wakeups", "client_wakes", "req_padding", "resp_padding", "req_fragments",
        "resp_fragments", "resp_batches", "malformed",
        "req_head", "req_tail", "resp_head", "resp_tail", "worker_state", "pending",
    ]
