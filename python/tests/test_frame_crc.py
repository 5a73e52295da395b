"""Frame checksums (layout.md §6.6) with real workers over real shared memory: echo with
checksums returns what was sent at every size, a request frame changed after its checksum was
computed is refused with ``CHECKSUM`` while the worker keeps serving, and a response frame
changed after the worker computed its checksum raises :class:`ChecksumError` instead of
returning wrong bytes. The vectors of ``tests/vectors/60.checksums.json`` are encoded and
decoded by the client itself."""

from __future__ import annotations

import json
import os
import time

import pytest
from chunkring import ChecksumError, Client, Handle, ProtocolError
from chunkring import _layout as L
from conftest import (REPO_ROOT, SMALL_CHUNK_BYTES, SMALL_RING_BYTES, eventually,
                      make_region_file, start_standalone_worker)

VECTORS = json.loads((REPO_ROOT / "tests/vectors/60.checksums.json").read_text(encoding="utf-8"))
# 0, around the trailer's chunk boundary (32 + 4 + 24 + 4 = 64), several chunks, one byte
# under, at and over one frame (a quarter of a 64 KiB ring), and many fragments.
SIZES = [0, 1, 23, 24, 25, 1000, 16_339, 16_340, 16_341, 100_000, 1 << 20]


def vector(name: str) -> dict:
    (entry,) = [e for e in VECTORS if e["name"] == name]
    return entry


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", ""))


@pytest.fixture
def crc_client(worker_bin):
    """A ``--crc`` worker of its own (every frame checksummed)."""
    c = Client.spawn(ring_bytes=SMALL_RING_BYTES, chunk_bytes=SMALL_CHUNK_BYTES,
                     worker=worker_bin, crc=True)
    yield c
    c.close()


def test_echo_with_checksums_returns_what_was_sent(crc_client):
    c = crc_client
    assert c._region.frame_crc == L.FRAME_CRC_REQUIRED and c._region.crc
    for i, n in enumerate(SIZES):
        body = os.urandom(n)
        assert c.echo(body, timeout=30) == body, n
    handles = [c.submit(L.OP_ECHO, bytes([i]) * (i * 97 % 20_000)) for i in range(200)]
    assert [h.result(timeout=30) for h in handles] == [bytes([i]) * (i * 97 % 20_000)
                                                      for i in range(200)]
    assert c.stats()["malformed"] == 0


def test_checksums_with_32_byte_chunks_wrap_through_every_padding(worker_bin):
    # A padding of the ring's last 32-byte chunk has no room for a trailer and goes without
    # (layout.md §6.6); sizes stepping by 4 bytes put every padding length at the wrap point.
    with Client.spawn(ring_bytes=4096, chunk_bytes=32, worker=worker_bin, crc=True) as c:
        for n in range(0, 3000, 4):
            body = bytes([n % 251]) * n
            assert c.echo(body, timeout=10) == body, n
        stats = c.stats()
        assert stats["malformed"] == 0
        assert stats["req_padding"] > 0 and stats["resp_padding"] > 0


def test_a_checksumming_client_of_an_optional_worker_is_answered_in_kind(worker_bin):
    name = f"crc-opt-{os.getpid()}"
    proc = start_standalone_worker(worker_bin, name)
    try:
        with Client.attach(name, timeout=10, crc=True) as c:
            assert c._region.frame_crc == L.FRAME_CRC_OPTIONAL
            p = c._receiver._consumer
            assert p.crc
            for n in (0, 25, 40_000):
                body = os.urandom(n)
                assert c.echo(body, timeout=10) == body
        with Client.attach(name, timeout=10) as c:  # the default stays without checksums
            assert not c._region.crc
            assert c.echo(b"plain", timeout=10) == b"plain"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_request_changed_after_its_checksum_is_refused_and_service_continues(crc_client):
    c = crc_client
    assert c.echo(b"before", timeout=10) == b"before"
    sender, rx = c._sender, c._receiver
    p = sender.producer
    bystander = c.submit(L.OP_ECHO, b"x" * 5000)  # published earlier, maybe already answered
    rid = sender.new_request_id()
    h = Handle(rx, rid, L.OP_ECHO)
    rx.pending[rid] = h
    off = p.base + (p.tail & p.mask) * p.chunk_bytes
    with sender._lock:
        assert p.try_push_request(L.OP_ECHO, rid, b"hello, checksum")
        c._region.mm[off + L.FRAME_HEADER_BYTES + L.PARAMS_LEN_BYTES + 3] ^= 0x20  # "heLlo"
        p.publish()
    with pytest.raises(ChecksumError, match="frame checksum mismatch"):
        h.result(timeout=10)
    try:
        assert bystander.result(timeout=10) == b"x" * 5000
    except ChecksumError:
        pass  # published after the worker observed the tail: failed with the others (§6.5)
    assert eventually(lambda: c.stats()["malformed"] == 1)
    for n in (0, 3000, 70_000):
        body = os.urandom(n)
        assert c.echo(body, timeout=10) == body
    assert c._proc.poll() is None


def test_a_response_changed_after_its_checksum_raises_and_the_client_goes_on(crc_client):
    c = crc_client
    rx, region = c._receiver, c._region
    cons = rx._consumer
    h = c.submit(L.OP_ECHO, b"the answer is 42")
    # Wait for the answer to be published, without reading it.
    deadline = time.monotonic() + 10
    while region.q[L.RESP_TAIL_OFFSET // 8] == cons.head:
        assert time.monotonic() < deadline, "no answer published"
        time.sleep(0.001)
    off = cons.base + (cons.head & cons.mask) * cons.chunk_bytes
    region.mm[off + L.FRAME_HEADER_BYTES + 14] ^= 0x01  # "42" -> "43"
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        h.result(timeout=10)
    assert c.echo(b"after", timeout=10) == b"after"


def test_a_required_worker_refuses_a_client_without_checksums(crc_client):
    with pytest.raises(ProtocolError, match="requires frame checksums"):
        Client(crc_client._region, crc=False)


# ---- the client's encoder and decoder against tests/vectors/60.checksums.json -------------------


@pytest.fixture
def offline_crc_client(tmp_path):
    """A checksumming client of a region file no worker serves: its rings are ours to inspect."""
    c = Client.attach(file=make_region_file(tmp_path), timeout=1, crc=True)
    yield c
    c._receiver.fail_all(RuntimeError("test over"))
    c.close()


def _write_response(c, raw: bytes) -> None:
    region = c._region
    tail = region.q[L.RESP_TAIL_OFFSET // 8]
    off = region.resp_ring_offset + (tail % region.resp_ring_chunks) * c.chunk_bytes
    region.mm[off : off + len(raw)] = raw
    region.q[L.RESP_TAIL_OFFSET // 8] = tail + (len(raw) + c.chunk_bytes - 1) // c.chunk_bytes


def _expect(c, request_id: int) -> Handle:
    h = Handle(c._receiver, request_id, 0)
    c._receiver.pending[request_id] = h
    return h


def test_the_client_encodes_the_checksummed_request_vector(offline_crc_client):
    c = offline_crc_client
    entry = vector("echo request id 1 body 'hi' with FLAG_CRC")
    p = c._sender.producer
    off = c._region.req_ring_offset + (p.tail & p.mask) * c.chunk_bytes
    c._sender.next_id = 1
    c.submit(L.OP_ECHO, b"hi")
    raw = unhex(entry["hex"])
    assert bytes(c._region.mm[off : off + len(raw)]) == raw


def test_the_client_checks_the_response_vectors(offline_crc_client):
    c = offline_crc_client
    good = vector("echo response id 1 with FLAG_CRC")
    h = _expect(c, 1)
    _write_response(c, unhex(good["hex"]))
    assert h.result(timeout=0) == b"hi"
    # The same frame with one payload byte changed: refused, and the next frame is read.
    bad = bytearray(unhex(good["hex"]))
    bad[L.FRAME_HEADER_BYTES] ^= 0xFF
    h = _expect(c, 1)
    bystander = _expect(c, 2)
    _write_response(c, bytes(bad))
    with pytest.raises(ChecksumError):
        h.result(timeout=0)
    with pytest.raises(ChecksumError):
        bystander.result(timeout=0)
    h = _expect(c, 1)
    _write_response(c, unhex(good["hex"]))
    assert h.result(timeout=0) == b"hi"
    # The worker's CHECKSUM error frame (id 0) fails everything in flight.
    err = vector("CHECKSUM error frame answering the changed body")
    bystander = _expect(c, 3)
    _write_response(c, unhex(err["hex"]))
    with pytest.raises(ChecksumError, match="frame checksum mismatch"):
        bystander.result(timeout=0)


def test_a_checksumming_client_refuses_a_response_without_a_checksum(offline_crc_client):
    from test_vectors import _frames  # the plain echo response of 10.frame-header.json

    c = offline_crc_client
    (plain,) = [e for e in _frames("10.frame-header.json") if e["name"] == "echo response id 1"]
    h = _expect(c, 1)
    _write_response(c, unhex(plain["hex"]))
    with pytest.raises(ChecksumError, match="without a checksum"):
        h.result(timeout=0)
