"""Shared memory is untrusted input (layout.md §6.5): a raw frame with an unknown op, a length
beyond the ring, a corrupt header ... gets an error frame with a clear message, and the worker
goes on serving the next good request.

Frames are written verbatim into the request ring through the client's private
``_publish_raw`` hook. Each test waits for the error before it sends the next request, since
an error with request id 0 discards everything in flight (§6.5).
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from chunkring import ProtocolError, RequestError
from chunkring import _layout as L
from conftest import SMALL_CHUNK_BYTES, SMALL_RING_BYTES, eventually, run_bounded

CHUNKS = SMALL_RING_BYTES // SMALL_CHUNK_BYTES


def frame(rid, *, op=L.OP_ECHO, payload=b"\0\0\0\0", magic=L.FRAME_MAGIC, flags=0, status=0,
          payload_len=None, fragment_index=0, message_len=None) -> bytes:
    """A request frame with any field overridden; lengths default to the payload's."""
    plen = len(payload) if payload_len is None else payload_len
    mlen = len(payload) if message_len is None else message_len
    return L.FRAME_HEADER.pack(magic, flags, op, status, rid, plen, fragment_index, mlen) + payload


def expect_error(client, raw: bytes, rid: int, code: int, *words: str) -> RequestError:
    """Publish ``raw``; assert it is answered by an error frame ``code`` for ``rid``, whose
    lower-case message contains ``words``; then check the worker still serves."""
    before = client.stats()["malformed"]
    h = client._sender.publish_raw(raw, expect_id=rid)
    with pytest.raises(RequestError) as info:
        run_bounded(lambda: h.result(timeout=10), 30)
    err = info.value
    assert err.code == code, err
    assert err.message and err.message[0].islower(), err.message
    for w in words:
        assert w in err.message, err.message
    good = os.urandom(300)
    assert client.echo(good, timeout=10) == good
    if code in (L.ERR_MALFORMED_HEADER, L.ERR_FRAME_LENGTH, L.ERR_FRAGMENT_SEQUENCE):
        assert eventually(lambda: client.stats()["malformed"] > before)
    return err


def test_unknown_op_gets_an_error_frame(client):
    rid = client._sender.new_request_id()
    err = expect_error(client, frame(rid, op=0x7777), rid, L.ERR_UNKNOWN_OP)
    assert "0x7777" in err.message or str(0x7777) in err.message


def test_op_zero_is_unknown(client):
    rid = client._sender.new_request_id()
    expect_error(client, frame(rid, op=0), rid, L.ERR_UNKNOWN_OP)


def test_length_beyond_the_ring_gets_an_error_frame(client):
    rid = client._sender.new_request_id()
    # One chunk published, but the header claims twice the ring.
    raw = frame(rid, payload=b"", payload_len=2 * SMALL_RING_BYTES, message_len=2 * SMALL_RING_BYTES)
    # An extent that cannot be trusted resynchronises the ring: id 0 (layout.md §6.5).
    expect_error(client, raw, 0, L.ERR_FRAME_LENGTH)


def test_length_beyond_the_published_tail_gets_an_error_frame(client):
    rid = client._sender.new_request_id()
    raw = frame(rid, payload=b"\0" * 8, payload_len=10 * SMALL_CHUNK_BYTES, message_len=10 * SMALL_CHUNK_BYTES)
    expect_error(client, raw, 0, L.ERR_FRAME_LENGTH)


def test_bad_magic_gets_an_error_frame_with_id_zero(client):
    raw = frame(client._sender.new_request_id(), magic=0xDEAD)
    expect_error(client, raw, 0, L.ERR_MALFORMED_HEADER)


def test_unknown_flag_bit_gets_an_error_frame(client):
    rid = client._sender.new_request_id()
    expect_error(client, frame(rid, flags=0x0080), rid, L.ERR_MALFORMED_HEADER)


def test_request_with_error_flag_or_status_gets_an_error_frame(client):
    rid = client._sender.new_request_id()
    expect_error(client, frame(rid, status=3), rid, L.ERR_MALFORMED_HEADER)


def test_fragment_without_a_first_fragment_gets_an_error_frame(client):
    rid = client._sender.new_request_id()
    raw = frame(rid, payload=b"\0" * 10, fragment_index=1, message_len=20)
    expect_error(client, raw, rid, L.ERR_FRAGMENT_SEQUENCE)


def test_last_fragment_short_of_message_len_gets_an_error_frame(client):
    rid = client._sender.new_request_id()
    raw = frame(rid, payload=b"\0" * 10, message_len=20)  # no FLAG_MORE, 10 of 20 bytes
    expect_error(client, raw, rid, L.ERR_FRAGMENT_SEQUENCE)


def test_message_too_large_gets_an_error_frame(client):
    rid = client._sender.new_request_id()
    raw = frame(rid, payload=b"\0" * 8, flags=L.FLAG_MORE, message_len=client._region.max_message_bytes + 1)
    expect_error(client, raw, rid, L.ERR_MESSAGE_TOO_LARGE)


def test_padding_that_does_not_end_the_ring_gets_an_error_frame(client):
    raw = frame(0, op=0, flags=L.FLAG_PADDING, payload=b"", payload_len=SMALL_CHUNK_BYTES - 32, message_len=0)
    # A padding frame carries request id 0, so the error does too (§6.5).
    expect_error(client, raw, 0, L.ERR_FRAME_LENGTH, "ring")


def test_payload_shorter_than_params_len_gets_bad_payload(client):
    rid = client._sender.new_request_id()
    expect_error(client, frame(rid, payload=b"\x01\0"), rid, L.ERR_BAD_PAYLOAD)
    rid = client._sender.new_request_id()
    expect_error(client, frame(rid, payload=b"\xff\0\0\0{}"), rid, L.ERR_BAD_PAYLOAD)


def test_invalid_params_json_gets_bad_params(client):
    rid = client._sender.new_request_id()
    params = b"{not json"
    raw = frame(rid, op=L.OP_PIPELINE, payload=len(params).to_bytes(4, "little") + params)
    expect_error(client, raw, rid, L.ERR_BAD_PARAMS)


def test_pipeline_stage_error_names_the_stage(client):
    with pytest.raises(RequestError) as info:
        client.pipeline([(L.OP_ECHO, {}), (0x7777, {})], b"x")
    assert info.value.code == L.ERR_UNKNOWN_OP
    assert info.value.message.startswith("stage 1")


def test_error_with_id_zero_fails_everything_in_flight(own_client):
    c = own_client
    # Stop the worker so the corrupt frame and the good request are read in one go.
    os.kill(c.pid, signal.SIGSTOP)
    zero = c._sender.publish_raw(frame(c._sender.new_request_id(), magic=0xBEEF), expect_id=0)
    lost = c.submit(L.OP_ECHO, b"lost")
    os.kill(c.pid, signal.SIGCONT)
    with pytest.raises(RequestError) as info:
        run_bounded(lambda: zero.result(timeout=10), 30)
    assert info.value.code == L.ERR_MALFORMED_HEADER
    try:
        answered = run_bounded(lambda: lost.result(timeout=10), 30)
    except ProtocolError as exc:
        assert "discarded every request in flight" in str(exc)
    else:
        # The worker read the good frame before it saw the bad one's tail: then it is answered.
        assert answered == b"lost"
    assert c.echo(b"still serving", timeout=10) == b"still serving"


def test_a_bad_length_in_a_batch_of_real_requests_loses_nothing_silently(own_client):
    """Issue 11 item 9: a frame with a good magic and a bad length, published between real
    requests in one batch. Every request id the client published is answered or failed
    (layout.md §6.5): those before the bad frame are answered; the bad frame and everything
    after it up to the observed tail are failed by the id-0 error frame."""
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)
    before = [c.submit(L.OP_ECHO, b"before %d" % i) for i in range(10)]
    rid = c._sender.new_request_id()
    bad = c._sender.publish_raw(
        frame(rid, payload=b"\0" * 8, payload_len=40 * SMALL_CHUNK_BYTES,
              message_len=40 * SMALL_CHUNK_BYTES),
        expect_id=0,
    )
    after = [c.submit(L.OP_ECHO, b"after %d" % i) for i in range(10)]
    os.kill(c.pid, signal.SIGCONT)
    outcomes = []
    for h in [*before, bad, *after]:
        try:
            outcomes.append(run_bounded(lambda h=h: h.result(timeout=10), 30))
        except (RequestError, ProtocolError) as exc:
            outcomes.append(exc)
    assert outcomes[:10] == [b"before %d" % i for i in range(10)]
    assert isinstance(outcomes[10], RequestError) and outcomes[10].code == L.ERR_FRAME_LENGTH
    for o in outcomes[11:]:
        assert isinstance(o, ProtocolError), o
    assert c.echo(b"still serving", timeout=10) == b"still serving"


@pytest.mark.parametrize("op", [L.OP_ECHO, L.OP_INFO])
@pytest.mark.parametrize("params", [b"[1]", b'"x"', b"7", b"{"])
def test_ops_without_params_refuse_params_that_are_not_an_object(client, op, params):
    """Issue 11 item 17: ECHO and INFO accepted any params, and every op JSON arrays."""
    rid = client._sender.new_request_id()
    payload = len(params).to_bytes(4, "little") + params
    expect_error(client, frame(rid, op=op, payload=payload), rid, L.ERR_BAD_PARAMS)


def test_json_array_params_are_refused_by_every_op(client):
    rid = client._sender.new_request_id()
    params = b'["x", 10]'  # serde would read it as a struct's fields in order
    payload = len(params).to_bytes(4, "little") + params
    err = expect_error(client, frame(rid, op=L.OP_SNAP_STATS, payload=payload), rid,
                       L.ERR_BAD_PARAMS)
    assert "JSON object" in err.message


def test_a_request_with_id_zero_is_not_served(own_client):
    c = own_client
    h = c._sender.publish_raw(frame(0, payload=b"\0\0\0\0boom"), expect_id=0)
    with pytest.raises(RequestError) as info:
        run_bounded(lambda: h.result(timeout=10), 30)
    assert info.value.code == L.ERR_MALFORMED_HEADER
    assert "request_id 0 is reserved" in info.value.message
    assert c.echo(b"ok", timeout=10) == b"ok"


def test_a_request_after_shutdown_in_the_same_batch_is_answered(own_client):
    c = own_client
    os.kill(c.pid, signal.SIGSTOP)
    stop = c.submit(L.OP_SHUTDOWN)
    late = c.submit(L.OP_ECHO, b"too late")
    os.kill(c.pid, signal.SIGCONT)
    assert run_bounded(lambda: stop.result(timeout=10), 30) == b""
    with pytest.raises(RequestError) as info:
        run_bounded(lambda: late.result(timeout=10), 30)
    assert info.value.code == L.ERR_SHUTTING_DOWN


def test_many_bad_frames_then_good_traffic(client):
    for i in range(50):
        rid = client._sender.new_request_id()
        h = client._sender.publish_raw(frame(rid, op=0x7000 + i), expect_id=rid)
        with pytest.raises(RequestError):
            h.result(timeout=10)
    datas = [os.urandom(i * 37) for i in range(200)]
    assert [h.result(timeout=10) for h in client.submit_many([(L.OP_ECHO, d, None) for d in datas])] == datas
    info = client.info()
    assert json.dumps(info)  # still answers JSON


# ---- the client treats the response ring as untrusted too ----------------------------------


@pytest.fixture
def offline_client(tmp_path):
    """A client on a region file no worker serves; the test plays a (broken) worker."""
    from chunkring import Client
    from conftest import make_region_file

    c = Client.attach(file=make_region_file(tmp_path), timeout=1)
    yield c
    c._receiver.fail_all(RuntimeError("test over"))
    c.close()


def _resp_tail(c, value=None):
    word = L.RESP_TAIL_OFFSET // 8
    if value is not None:
        c._region.q[word] = value
    return c._region.q[word]


@pytest.mark.parametrize(
    "header, message",
    [
        (dict(magic=0xBAD0), "bad magic"),
        (dict(payload_len=10_000), "runs past"),
        (dict(flags=L.FLAG_PADDING, payload_len=32), "does not end the ring"),
    ],
)
def test_a_broken_response_frame_fails_every_pending_request(offline_client, header, message):
    from chunkring import Handle

    c = offline_client
    handles = [Handle(c._receiver, rid, L.OP_ECHO) for rid in (11, 12)]
    for h in handles:
        c._receiver.pending[h.request_id] = h
    fields = dict(magic=L.FRAME_MAGIC, flags=0, op=L.OP_ECHO, status=0, request_id=11,
                  payload_len=4, fragment_index=0, message_len=4)
    fields.update(header)
    off = c._region.resp_ring_offset
    c._region.mm[off : off + 36] = L.FRAME_HEADER.pack(*fields.values()) + b"abcd"
    _resp_tail(c, 1)
    with pytest.raises(ProtocolError, match=message):
        handles[0].result(timeout=1)
    with pytest.raises(ProtocolError, match=message):
        handles[1].result(timeout=1)


def test_a_response_tail_beyond_the_ring_is_refused(offline_client):
    from chunkring import Handle

    c = offline_client
    h = Handle(c._receiver, 5, L.OP_ECHO)
    c._receiver.pending[5] = h
    _resp_tail(c, c._region.resp_ring_chunks + 1)
    with pytest.raises(ProtocolError, match="outside head"):
        h.result(timeout=1)


def test_responses_to_unknown_ids_are_discarded(offline_client):
    from chunkring import Handle

    c = offline_client
    h = Handle(c._receiver, 8, L.OP_ECHO)
    c._receiver.pending[8] = h
    off = c._region.resp_ring_offset
    for i, rid in enumerate((999, 8)):  # 999 belongs to an earlier client (§12)
        c._region.mm[off + 64 * i : off + 64 * i + 34] = L.FRAME_HEADER.pack(
            L.FRAME_MAGIC, 0, L.OP_ECHO, 0, rid, 2, 0, 2) + b"ok"
    _resp_tail(c, 2)
    assert h.result(timeout=1) == b"ok"


def test_submit_many_publishes_with_one_tail_store(offline_client):
    from chunkring._ring import Producer

    publishes = []

    class CountingProducer(Producer):
        __slots__ = ()

        def publish(self):
            published = super().publish()
            publishes.append(published)
            return published

    c = offline_client
    c._sender.producer.__class__ = CountingProducer
    handles = c.submit_many([(L.OP_ECHO, bytes([i]) * i, None) for i in range(20)])
    assert publishes == [True]
    assert c._region.q[L.REQ_TAIL_OFFSET // 8] == c._sender.producer.tail
    # The 20 frames sit back to back in the request ring, in order, with their ids.
    pos, ids = 0, []
    for i in range(20):
        off = c._region.req_ring_offset + pos * c.chunk_bytes
        magic, flags, op, status, rid, plen, fidx, mlen = L.FRAME_HEADER.unpack_from(c._region.mm, off)
        assert (magic, flags, op, status, fidx, plen, mlen) == (L.FRAME_MAGIC, 0, L.OP_ECHO, 0, 0, 4 + i, 4 + i)
        assert c._region.mm[off + 36 : off + 36 + i] == bytes([i]) * i
        ids.append(rid)
        pos += (32 + plen + c.chunk_bytes - 1) // c.chunk_bytes
    assert ids == [h.request_id for h in handles]
    assert pos == c._sender.producer.tail


def test_a_request_over_max_message_bytes_is_refused_before_it_is_sent(offline_client):
    c = offline_client
    limit = c._region.max_message_bytes  # 1 MiB in this region's header
    tail = c._region.q[L.REQ_TAIL_OFFSET // 8]
    with pytest.raises(ValueError, match="MAX_MESSAGE_BYTES"):
        c.submit(L.OP_ECHO, b"\0" * limit)
    assert c._region.q[L.REQ_TAIL_OFFSET // 8] == tail
    assert c._receiver.pending == {}
