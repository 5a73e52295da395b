"""Requests written and answers read in batches (issue 10, pipelining): ``submit_many`` and
``Client.map`` build a batch of one-frame requests at once and copy it into the request ring
in one slice per free stretch, padding at the ring's end (layout.md §6.3); the receiver
copies runs of simple answers out at once (``Consumer.take_simple``) and leaves everything
else (errors, fragments, checksums) to the frame-by-frame path. Real workers, small rings.
"""

from __future__ import annotations

import itertools
import random
import threading

import pytest

from chunkring import Client, RequestError
from chunkring import _layout as L

from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES, eventually, run_bounded, run_threads

UNKNOWN_OP = 0x7777


def _bodies(seed: int, count: int, max_size: int) -> list[bytes]:
    rng = random.Random(seed)
    # The index up front makes every body distinct, so a mismatched pairing cannot pass.
    return [i.to_bytes(4, "little") + rng.randbytes(rng.randrange(0, max_size))
            for i in range(count)]


def _record_runs(c: Client) -> list[list[int]]:
    """Every run of answers the receiver resolves in bulk, as lists of request ids."""
    rx = c._receiver
    runs: list[list[int]] = []
    resolve_run = rx._resolve_run

    def spy(run, late):
        runs.append(list(run[0]))
        return resolve_run(run, late)

    rx._resolve_run = spy
    return runs


def _wait_published(c: Client, chunks: int) -> None:
    """Until the worker has published at least ``chunks`` response chunks past the head."""
    cons = c._receiver._consumer
    assert eventually(lambda: cons.q[cons.tail_word] - cons.head >= chunks, 10)


def test_batches_of_mixed_sizes_wrap_the_request_ring_many_times(own_client):
    c = own_client
    # Bodies of 0..700 bytes take 1..12 chunks: batches mix frame sizes, and 3000 of them
    # are about eight request rings, so batches are split at the ring's end by padding.
    bodies = _bodies(1, 3000, 700)
    requests = [(L.OP_ECHO, b, None) for b in bodies]
    runs = _record_runs(c)
    handles = []
    for at in range(0, len(requests), 250):
        handles += run_bounded(lambda: c.submit_many(requests[at : at + 250]), 60)
    assert [h.result(timeout=30) for h in handles] == bodies
    stats = c.stats()
    assert stats["req_padding"] > 0  # the batches did wrap
    assert stats["requests"] >= 3000
    assert any(len(r) > 1 for r in runs)  # answers were read in runs, not one by one


def test_map_yields_answers_in_order_across_wraps(own_client):
    c = own_client
    bodies = _bodies(2, 4000, 300)
    got = run_bounded(lambda: list(c.map(L.OP_ECHO, bodies, window=64)), 60)
    assert got == bodies
    assert c.stats()["req_padding"] > 0
    assert c._receiver.pending == {}


def test_map_with_a_window_larger_than_the_ring(own_client):
    c = own_client
    # 2000 requests of ~1 KiB in flight at once are about 30 rings: every batch waits for room.
    bodies = _bodies(3, 2000, 1000)
    got = run_bounded(lambda: list(c.map(L.OP_ECHO, bodies, window=2000)), 60)
    assert got == bodies


def test_an_error_answer_ends_a_bulk_run_and_is_raised_by_its_handle(own_client):
    c = own_client
    runs = _record_runs(c)
    echo = [b"e%d" % i for i in range(10)]
    requests = ([(L.OP_ECHO, b, None) for b in echo[:5]] + [(UNKNOWN_OP, b"?", None)]
                + [(L.OP_ECHO, b, None) for b in echo[5:]])
    handles = c.submit_many(requests)
    ids = [h.request_id for h in handles]
    # Each echo answer is one 64-byte chunk, the error at least one: wait until all ten
    # echoes' chunks plus one are published, so one drain sees the error inside the span.
    _wait_published(c, 11)
    assert [h.result(timeout=10) for h in handles[:5]] == echo[:5]
    with pytest.raises(RequestError) as info:
        handles[5].result(timeout=10)
    assert info.value.code == L.ERR_UNKNOWN_OP
    assert [h.result(timeout=10) for h in handles[6:]] == echo[5:]
    assert list(itertools.chain(*runs)) == ids[:5] + ids[6:]  # every echo went in a run,
    assert all(set(r) <= set(ids[:5]) or set(r) <= set(ids[6:]) for r in runs)  # none past
    assert max(map(len, runs)) > 1  # the error, which the frame-by-frame path read


def test_a_fragmented_answer_between_two_runs_falls_back_and_is_reassembled(own_client):
    c = own_client
    runs = _record_runs(c)
    small = [b"s%d" % i for i in range(20)]
    big = random.Random(4).randbytes(SMALL_RING_BYTES // 3)  # two response fragments
    first = c.submit_many([(L.OP_ECHO, b, None) for b in small[:10]])
    middle = c.submit(L.OP_ECHO, big)
    last = c.submit_many([(L.OP_ECHO, b, None) for b in small[10:]])
    fragment_chunks = (len(big) + 64) // SMALL_CHUNK_BYTES  # a lower bound for both frames
    _wait_published(c, 20 + fragment_chunks)
    assert [h.result(timeout=10) for h in first] == small[:10]
    assert middle.result(timeout=10) == big
    assert [h.result(timeout=10) for h in last] == small[10:]
    ids = [h.request_id for h in first + last]
    assert list(itertools.chain(*runs)) == ids  # the fragments went frame by frame
    assert all(set(r) <= set(ids[:10]) or set(r) <= set(ids[10:]) for r in runs)
    assert max(map(len, runs)) > 1
    assert c.stats()["resp_fragments"] >= 2


def test_unknown_answers_in_a_run_are_discarded(own_client):
    c = own_client
    runs = _record_runs(c)
    handles = c.submit_many([(L.OP_ECHO, b"%d" % i, None) for i in range(8)])
    assert handles[3].cancel()  # its answer arrives for an id no longer pending
    assert [h.result(timeout=10) for h in handles if h is not handles[3]] == [
        b"%d" % i for i in range(8) if i != 3]
    assert eventually(lambda: handles[3].request_id in itertools.chain(*runs))
    assert handles[3].cancelled()
    assert c._receiver.pending == {}


def test_a_batch_whose_ids_would_wrap_skips_to_id_one(own_client):
    c = own_client
    c._sender.next_id = 2**64 - 3
    handles = c.submit_many([(L.OP_ECHO, b"%d" % i, None) for i in range(8)])
    assert [h.request_id for h in handles] == list(range(1, 9))
    assert [h.result(timeout=10) for h in handles] == [b"%d" % i for i in range(8)]
    assert c._sender.next_id == 9
    assert list(c.map(L.OP_ECHO, [b"a", b"b"])) == [b"a", b"b"]


def test_submit_many_mixing_ops_and_big_bodies(own_client):
    c = own_client
    big = b"B" * (SMALL_RING_BYTES // 2)  # fragments: the whole call goes frame by frame
    requests = [(L.OP_ECHO, b"a", None), (L.OP_ECHO, big, None), (UNKNOWN_OP, b"", None),
                (L.OP_ECHO, b"c", {"x": 1})]
    handles = c.submit_many(requests)
    assert handles[0].result(timeout=10) == b"a"
    assert handles[1].result(timeout=10) == big
    with pytest.raises(RequestError):
        handles[2].result(timeout=10)
    assert handles[3].result(timeout=10) == b"c"


def test_map_and_submit_many_with_checksums(worker_bin):
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES,
                      worker=worker_bin, crc=True) as c:
        bodies = _bodies(5, 1500, 400)
        assert run_bounded(lambda: list(c.map(L.OP_ECHO, bodies, window=128)), 60) == bodies
        handles = c.submit_many([(L.OP_ECHO, b, None) for b in bodies[:200]])
        assert [h.result(timeout=10) for h in handles] == bodies[:200]
        assert c.stats()["malformed"] == 0


def _reference_frames(op: int, rid: int, bodies: list[bytes], chunk_bytes: int) -> bytes:
    """One-frame requests as layout.md §6.1/§9.1 spell them, frame by frame."""
    out = b""
    for i, body in enumerate(bodies):
        plen = L.PARAMS_LEN_BYTES + len(body)
        frame = (L.FRAME_HEADER.pack(L.FRAME_MAGIC, 0, op, 0, rid + i, plen, 0, plen)
                 + bytes(L.PARAMS_LEN_BYTES) + body)
        out += frame + bytes(-len(frame) % chunk_bytes)
    return out


@pytest.mark.parametrize("low", [0, 5, 0xFFF0, 0xFFFF])
@pytest.mark.parametrize("sizes", [[64] * 40, [0] * 3, [1, 64, 27, 64], [700] * 5 + [3]])
def test_an_encoded_batch_is_the_frames_layout_md_spells(client, low, sizes):
    producer = client._sender.producer
    rid = (0x1234_5678_9ABC << 16) + low
    bodies = [bytes([i]) * n for i, n in enumerate(sizes)]
    expected = _reference_frames(0x0101, rid, bodies, SMALL_CHUNK_BYTES)
    for ops in (None, [0x0101] * len(bodies)):  # the joined batch and the struct per frame
        data, ends = producer.encode_requests(0x0101, rid, bodies, max(sizes), ops)
        assert bytes(data) == expected
        assert list(ends)[-1] * SMALL_CHUNK_BYTES == len(expected)


def test_map_with_ids_crossing_a_multiple_of_65536(own_client):
    c = own_client
    c._sender.next_id = 0x5_0000_FFC0  # a batch of 128 crosses 0x5_0001_0000
    bodies = [b"%05d" % i for i in range(1000)]
    assert list(c.map(L.OP_ECHO, bodies, window=256)) == bodies


def test_empty_answers_in_one_chunk_frames_next_to_padding(worker_bin):
    # 32-byte chunks: an empty answer is a header alone (one chunk), like a padding frame
    # of one chunk at the ring's end, which ends its run (a regression: the run's payload
    # slices once lost the last frame of a run of header-only frames).
    rng = random.Random(6)
    with Client.spawn(ring_bytes=4096, chunk_bytes=32, worker=worker_bin) as c:
        bodies = [b"" if rng.random() < 0.6 else rng.randbytes(rng.randrange(1, 60))
                  for _ in range(3000)]
        got = []
        for at in range(0, len(bodies), 7):
            handles = c.submit_many([(L.OP_ECHO, b, None) for b in bodies[at : at + 7]])
            got += [h.result(timeout=10) for h in handles]
        assert got == bodies
        assert c.stats()["resp_padding"] > 0
        assert run_bounded(lambda: list(c.map(L.OP_ECHO, bodies, window=16)), 60) == bodies


def test_threads_mapping_and_calling_on_one_client_get_their_own_answers(client):
    # Any thread's drain resolves any thread's answers, runs included; map reuses its slots.
    errors = []

    def mapper(seed):
        try:
            bodies = _bodies(seed, 3000, 200)
            if list(client.map(L.OP_ECHO, bodies, window=64)) != bodies:
                errors.append(f"map {seed}: answers differ")
        except Exception as exc:  # collected for the assertion below
            errors.append(f"map {seed}: {exc!r}")

    def caller():
        try:
            for i in range(1000):
                if client.echo(b"%d" % i, timeout=30) != b"%d" % i:
                    errors.append(f"echo: mismatch at {i}")
        except Exception as exc:  # collected for the assertion below
            errors.append(f"echo: {exc!r}")

    threads = [threading.Thread(target=mapper, args=(s,)) for s in (11, 12)]
    threads.append(threading.Thread(target=caller))
    run_threads(threads, 120)
    assert errors == []
