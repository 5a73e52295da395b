"""Op names wherever an op code goes (``_op_names.py``): the client's table is the worker's
own list (``OP_INFO``), and ``call``, ``submit``, ``map``, ``submit_many``, ``pipeline`` and
``AsyncClient.call`` take a name as they take its code; an unknown name or a wrong type is
refused before anything is sent."""

from __future__ import annotations

import asyncio

import pytest

from chunkring import Client
from chunkring import _layout as L
from chunkring._op_names import OP_CODES, op_code
from chunkring._payload import encode_list
from conftest import SMALL_RING_BYTES


def test_the_names_are_the_workers_own(client):
    listed = {op["name"]: op["code"] for op in client.info()["ops"]}
    assert OP_CODES == listed
    assert OP_CODES["md.render"] == L.OP_MD_RENDER and OP_CODES["echo"] == L.OP_ECHO
    assert OP_CODES["snap.push_fields"] == L.OP_SNAP_PUSH_FIELDS


def test_every_way_to_send_takes_a_name(client):
    _sends_by_name(client)


def test_a_restarting_client_takes_names_too(worker_bin):
    with Client.spawn(ring_bytes=SMALL_RING_BYTES, worker=worker_bin, restart=True) as c:
        _sends_by_name(c)


def _sends_by_name(client):
    assert client.call("echo", b"by name") == b"by name"
    assert client.call("echo", bytearray(b"a bytearray")) == b"a bytearray"  # (checked way)
    assert b"<h1>hi</h1>" in client.call("md.render", encode_list([b"# hi"]))
    assert client.submit("echo", b"submitted").result(timeout=30) == b"submitted"
    assert list(client.map("echo", [b"a", b"bb"], window=2)) == [b"a", b"bb"]
    hs = client.submit_many([("echo", b"one", None), ("echo", b"two", {"x": 1})])
    assert [h.result(timeout=30) for h in hs] == [b"one", b"two"]
    assert client.pipeline([("echo", None), (L.OP_ECHO, None)], b"piped") == b"piped"

    async def main():
        return await client.aio.call("echo", b"awaited")

    assert asyncio.run(main()) == b"awaited"


@pytest.mark.parametrize("op, exc, words", [
    ("md.rendr", ValueError, "did you mean 'md.render'"),
    ("nothing.like.it", ValueError, "unknown op name 'nothing.like.it'"),
    (True, TypeError, "not bool"),
    (1.0, TypeError, "not float"),
    (0x10000, ValueError, "0..0xFFFF"),
])
def test_a_wrong_op_is_refused_before_anything_is_sent(client, op, exc, words):
    tail = client._sender.producer.tail
    for send in (lambda: client.call(op, b"x"), lambda: client.submit(op, b"x"),
                 lambda: list(client.map(op, [b"x"])),
                 lambda: client.submit_many([(op, b"x", None)])):
        with pytest.raises(exc, match=words.replace("(", r"\(").replace(".", r"\.")):
            send()
    assert client._sender.producer.tail == tail and client._receiver.pending == {}
    with pytest.raises(exc):
        op_code(op)
