"""The compiled structs of the ring's bulk paths stay within their bound
(``_struct_cache.py``): a client answered in runs of many sizes does not grow with every size."""

import tracemalloc

from chunkring import _layout as L
from chunkring import _struct_cache
from chunkring._struct_cache import FRAMES, StructCache
from conftest import eventually


def test_the_cache_starts_again_when_its_structs_would_describe_too_many_frames():
    cache = StructCache()
    for k in range(FRAMES // 64):
        assert cache.compile(k, 64, "<" + "Q" * 64) is not None
    assert (len(cache.structs), cache.frames) == (FRAMES // 64, FRAMES)
    st = cache.compile("next", 2, "<QQ")
    assert cache.structs == {"next": st} and cache.frames == 2
    assert cache.compile("big", FRAMES, "<Q") is not None and cache.frames == FRAMES


def test_a_shape_asked_for_once_is_kept_when_it_comes_back():
    cache = StructCache()
    first = cache.compile(("n", 7), 8, "<8Q", keep_new=False)
    assert first.size == 64 and first.unpack(bytes(range(64)))[0] == 0x0706050403020100
    assert cache.structs == {} and cache.frames == 0  # compiled for the caller, not kept
    st = cache.compile(("n", 7), 8, "<8Q", keep_new=False)
    assert st.size == 64 and cache.structs == {("n", 7): st} and cache.frames == 8
    # The shapes seen once are forgotten past SEEN of them, so they stay bounded too.
    for k in range(_struct_cache.SEEN):
        cache.compile(k, 1, "<Q", keep_new=False)
    assert len(cache.structs) == 1
    cache.compile(0, 1, "<Q", keep_new=False)
    assert len(cache.structs) == 1  # (forgotten: seen once again)


def test_answers_of_many_sizes_in_runs_keep_the_compiled_structs_bounded(client):
    # Runs of 16 same-size answers, a new size for every run: before the bound, every
    # (chunks, run, size) kept a struct of its own: 360 KB for these 400 sizes here.
    bodies = [bytes([k % 251]) * size for size in range(1, 401) for k in range(16)]
    tracemalloc.start()
    try:
        answers = list(client.map(L.OP_ECHO, bodies, window=256))
        traces = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, _struct_cache.__file__)]).traces
    finally:
        tracemalloc.stop()
    assert answers == bodies
    cache = client._receiver._consumer._structs
    assert 0 < cache.frames <= FRAMES
    held = sum(t.size for t in traces)
    assert held < 120_000, f"{held} bytes of compiled structs for {cache.frames} frames"


def test_answers_alternating_in_size_are_read_one_by_one_without_a_struct(own_client):
    # 10- and 100-byte echoes alternate: one chunk, then three. Every run is one frame long,
    # and no struct is compiled for the long run the published chunks would make of
    # one-chunk frames (before, (1 chunk, 32 frames)-shaped structs were kept for them).
    c = own_client
    cons = c._receiver._consumer
    bodies = [bytes([k]) * (10 if k % 2 else 100) for k in range(48)]
    for _ in range(3):
        handles = c.submit_many([(L.OP_ECHO, b, None) for b in bodies])
        assert eventually(lambda: cons.q[cons.tail_word] - cons.head >= 24 * 1 + 24 * 3, 10)
        assert [h.result(timeout=10) for h in handles] == bodies
    assert cons._structs.structs == {}
