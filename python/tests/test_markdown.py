"""Markdown ops through a real worker (layout.md §9.2), and the wrapper's encoding.

The end-to-end tests spawn one worker for the module. The CommonMark conformance test compares
every example of pulldown-cmark's own suite, rendered through the ring, with pulldown-cmark's
in-process rendering written by ``tests/commonmark_conformance.rs`` (run here when missing).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from chunkring import _layout as L
from chunkring.errors import ProtocolError, RequestError
from chunkring.markdown import Markdown, decode_list, encode_list

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO / "target" / "commonmark"


# ---- the wrapper alone (no worker) ----------------------------------------------------------


class RecordingClient:
    """Answers like the worker would for the encoding, and records what it was sent."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.sent: list[tuple[int, bytes, dict | None]] = []

    def call(self, op, body=b"", params=None, timeout=None):
        self.sent.append((op, body, params))
        return self.answer


def test_list_encoding_round_trips_and_matches_layout():
    items = [b"a", b"", "é".encode()]
    enc = encode_list(items)
    assert enc == struct.pack("<4I", 3, 1, 0, 2) + b"a\xc3\xa9"
    assert [bytes(m) for m in decode_list(enc)] == items
    assert decode_list(encode_list([])) == []
    with pytest.raises(Exception, match="lengths sum"):
        decode_list(enc + b"x")
    with pytest.raises(Exception):
        decode_list(enc[:6])


def test_render_sends_a_list_and_only_changed_options():
    fake = RecordingClient(encode_list([b"<p>x</p>\n"]))
    md = Markdown(fake)
    assert md.render("x") == "<p>x</p>\n"
    assert fake.sent[-1] == (L.OP_MD_RENDER, encode_list([b"x"]), None)
    assert md.render(["x"], tables=False, math=True) == ["<p>x</p>\n"]
    assert fake.sent[-1][2] == {"tables": False, "math": True}


def test_one_document_is_sent_and_answered_as_a_list_of_one():
    fake = RecordingClient(encode_list(["<p>é</p>\n".encode()]))
    md = Markdown(fake)
    for doc in ("é", "é".encode()):
        assert md.render(doc) == "<p>é</p>\n"
        assert fake.sent[-1] == (L.OP_MD_RENDER, encode_list(["é".encode()]), None)
    # Options compare as bools, as the batch path's: truthy/falsy values that match the
    # defaults send no params; the others send bools.
    md.render("x", tables=1, footnotes="yes", math=0, gfm=None)
    assert fake.sent[-1][2] is None
    md.render("x", tables=0, math="on")
    assert fake.sent[-1][2] == {"tables": False, "math": True}
    assert fake.sent[-1][1] == encode_list([b"x"])


@pytest.mark.parametrize("answer,what", [
    (encode_list([b"a", b"b"]), "answered 2 documents for 1"),
    (encode_list([]), "answered 0 documents for 1"),
    (encode_list([b"abc"])[:-1], "lengths sum"),
    (b"\x01\0\0", "no count"),
])
def test_a_one_document_answer_that_is_not_one_item_is_a_protocol_error(answer, what):
    with pytest.raises(ProtocolError, match=what):
        Markdown(RecordingClient(answer)).render("x")


def test_aggregate_splits_inline_files_from_paths(tmp_path):
    fake = RecordingClient(encode_list([b"doc"]))
    md = Markdown(fake)
    out = md.aggregate(
        [("a.rs", "fn"), {"path": "b.md", "content": b"# B", "mode": "outline"}, "c.py",
         {"path": "d.txt"}],
        toc=True,
        root=tmp_path,
    )
    assert out == "doc"
    op, body, params = fake.sent[-1]
    assert op == L.OP_MD_AGGREGATE
    assert body == encode_list([b"fn", b"# B"])
    assert params == {
        "files": [
            {"path": "a.rs"},
            {"path": "b.md", "mode": "outline"},
            {"path": "c.py", "read": True},
            {"path": "d.txt", "read": True},
        ],
        "mode": "full",
        "toc": True,
        "root": str(tmp_path),
    }


# ---- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(worker_bin):
    """A worker with the default 4 MiB rings: the 50 MB document crosses them in fragments."""
    from chunkring import Client

    c = Client.spawn(worker=worker_bin)
    yield c
    c.close()


@pytest.fixture(scope="module")
def md(client):
    assert isinstance(client.markdown, Markdown)
    return client.markdown


def _conformance_files():
    examples, inprocess = CONFORMANCE / "examples.json", CONFORMANCE / "inprocess.json"
    if not examples.exists():
        subprocess.run([sys.executable, str(REPO / "scripts" / "commonmark_examples.py")],
                       check=True)
    if not inprocess.exists() or inprocess.stat().st_mtime < examples.stat().st_mtime:
        subprocess.run(["cargo", "test", "-q", "--test", "commonmark_conformance"], cwd=REPO,
                       check=True)
    exs = json.loads(examples.read_text(encoding="utf-8"))["examples"]
    want = json.loads(inprocess.read_text(encoding="utf-8"))
    assert len(exs) == len(want) > 1000
    return exs, want


def test_every_suite_example_renders_through_the_ring_as_in_process(md):
    exs, want = _conformance_files()
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(exs):
        got = md.render(ex["markdown"], **ex["params"])
        assert got == want[i], ex["name"]
        groups.setdefault(json.dumps(ex["params"], sort_keys=True), []).append(i)
    for key, idx in groups.items():
        got = md.render([exs[i]["markdown"] for i in idx], **json.loads(key))
        assert got == [want[i] for i in idx]


def _docs(n):
    return [f"# Doc {i}\n\n*text* {i} [l](http://x/{i})\n\n```py\n{i}\n```\n" for i in range(n)]


@pytest.mark.parametrize("n", [1, 100, 10_000])
def test_batches_render_and_outline_every_document(md, n):
    docs = _docs(n)
    html = md.render(docs)
    assert len(html) == n
    assert html[-1] == (
        f'<h1>Doc {n - 1}</h1>\n<p><em>text</em> {n - 1} <a href="http://x/{n - 1}">l</a></p>\n'
        f'<pre><code class="language-py">{n - 1}\n</code></pre>\n'
    )
    assert html == [md.render(d) for d in docs[:3]] + html[3:]
    outlines = md.outline(docs)
    assert [o["headings"][0]["text"] for o in outlines] == [f"Doc {i}" for i in range(n)]
    assert outlines[-1]["code_blocks"] == [
        {"lang": "py", "fenced": True, "start_line": 5, "end_line": 7}
    ]
    assert outlines[-1]["links"][0]["dest"] == f"http://x/{n - 1}"


def test_one_50_mb_document_travels_in_fragments(md):
    unit = "## Part\n\n" + "Some *prose* with `code` and a [link](http://e.com).\n" * 40 + "\n"
    count = 50_000_000 // len(unit) + 1
    doc = unit * count
    assert len(doc) >= 50_000_000
    # The sections are independent blocks, so the document's HTML is theirs concatenated.
    assert md.render(doc) == md.render(unit) * count
    o = md.outline(doc)
    assert len(o["headings"]) == count
    assert o["headings"][-1]["line"] == (count - 1) * unit.count("\n") + 1
    assert o["headings"][-1]["slug"] == f"part-{count - 1}"


def test_invalid_utf8_names_document_and_offset(md):
    with pytest.raises(RequestError) as e:
        md.render(["ok", b"ab\xffcd"])
    assert e.value.code == L.ERR_INVALID_UTF8
    assert e.value.message == "document 1 is not valid UTF-8 at byte offset 2"
    with pytest.raises(RequestError) as e:
        md.render(b"ab\xffcd")
    assert e.value.message == "document 0 is not valid UTF-8 at byte offset 2"
    with pytest.raises(RequestError) as e:
        md.outline(b"\xc3")
    assert e.value.code == L.ERR_INVALID_UTF8


def test_outline_reports_headings_code_links_and_words(md):
    o = md.outline("# A *b*\n\nx [t](u \"T\") ![i](p)\n\n    code\n\nA b\n---\n")
    assert o["headings"] == [
        {"level": 1, "text": "A b", "slug": "a-b", "line": 1},
        {"level": 2, "text": "A b", "slug": "a-b-1", "line": 7},
    ]
    assert o["code_blocks"] == [{"lang": None, "fenced": False, "start_line": 5, "end_line": 5}]
    assert o["links"] == [
        {"kind": "link", "dest": "u", "title": "T", "text": "t", "line": 3},
        {"kind": "image", "dest": "p", "title": "", "text": "i", "line": 3},
    ]
    assert o["words"] == 2 + 3 + 1 + 2


FILES = [
    ("three.md", "# Three\n\n```rust\nfn x() {}\n```\n"),
    ("four.md", "````\n```\ninner\n```\n````\n"),
    ("empty.txt", ""),
    ("tail.py", "x = 1"),
]


def test_aggregate_fences_survive_and_the_outline_finds_every_file(md):
    doc = md.aggregate(FILES, toc=True)
    assert "### `four.md`\n\n`````markdown\n````\n```\ninner" in doc
    assert "### `empty.txt`\n\n```text\n```" in doc
    assert "### `tail.py`\n\n```python\nx = 1\n```\n" in doc
    assert doc.count("\n\n---\n\n") == len(FILES)
    o = md.outline(doc)
    files = [h for h in o["headings"] if h["level"] == 3]
    assert [h["text"] for h in files] == [p for p, _ in FILES]
    assert [link["dest"] for link in o["links"]] == ["#" + h["slug"] for h in files]
    assert [b["lang"] for b in o["code_blocks"]] == ["markdown", "markdown", "text", "python"]
    assert o["headings"][0]["text"] == "Contents"


def test_aggregate_outline_mode_and_the_pipeline_to_render(md, client):
    doc = md.aggregate([("g.md", "# G\n## H\n"), ("x.rs", "fn")], mode="outline")
    assert doc == "### `g.md`\n\n- G\n  - H\n\n---\n\n### `x.rs`\n\n```rust\nfn\n```\n"
    params = {"files": [{"path": "g.md"}], "mode": "outline"}
    out = client.pipeline([(L.OP_MD_AGGREGATE, params), (L.OP_MD_RENDER, {})],
                          encode_list([b"# G\n"]))
    assert [str(h, "utf-8") for h in decode_list(out)] == [
        "<h3><code>g.md</code></h3>\n<ul>\n<li>G</li>\n</ul>\n"
    ]


def test_aggregate_reads_under_root_and_refuses_escapes(md, tmp_path):
    root = tmp_path / "root"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.rs").write_text("pub fn a() {}\n")
    (root / "bin.dat").write_bytes(b"\x00\x01\xfe\xff")
    (tmp_path / "secret").write_text("no\n")
    os.symlink(tmp_path / "secret", root / "link")
    doc = md.aggregate(["src/a.rs", ("inline.md", "# I\n")], root=root)
    assert doc.startswith("### `src/a.rs`\n\n```rust\npub fn a() {}\n```\n\n---\n\n")
    for bad in ["../secret", "src/../../secret", "link", str(tmp_path / "secret")]:
        with pytest.raises(RequestError) as e:
            md.aggregate([bad], root=root)
        assert e.value.code == L.ERR_PATH_REFUSED, bad
    with pytest.raises(RequestError) as e:
        md.aggregate(["missing.rs"], root=root)
    assert e.value.code == L.ERR_IO
    with pytest.raises(RequestError) as e:
        md.aggregate(["bin.dat"], root=root)
    assert e.value.code == L.ERR_INVALID_UTF8
    assert "file 0 (\"bin.dat\")" in e.value.message and "byte offset 2" in e.value.message
    with pytest.raises(RequestError) as e:
        md.aggregate([("ok.txt", "fine"), ("bad.txt", b"caf\xe9")])
    assert e.value.code == L.ERR_INVALID_UTF8


def test_aggregate_on_error_skip_and_note_report_each_file_with_its_exact_reason(md, tmp_path):
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "a.rs").write_text("pub fn a() {}\n")
    (root / "latin1.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "secret").write_text("no\n")
    os.symlink(tmp_path / "secret", root / "link")
    files = ["a.rs", "link", "latin1.txt", "missing.rs", "dir", "../secret", ("raw.bin", b"\xff")]
    want = [
        {"index": 1, "path": "link", "code": L.ERR_PATH_REFUSED, "reason": "a symlink"},
        {"index": 2, "path": "latin1.txt", "code": L.ERR_INVALID_UTF8,
         "reason": "not UTF-8 (invalid byte at offset 3)"},
        {"index": 3, "path": "missing.rs", "code": L.ERR_IO, "reason": "not found"},
        {"index": 4, "path": "dir", "code": L.ERR_IO, "reason": "a directory"},
        {"index": 5, "path": "../secret", "code": L.ERR_PATH_REFUSED,
         "reason": "escapes the root"},
        {"index": 6, "path": "raw.bin", "code": L.ERR_INVALID_UTF8,
         "reason": "not UTF-8 (invalid byte at offset 0)"},
    ]
    skipped = md.aggregate(files, root=root, on_error="skip")
    assert skipped == "### `a.rs`\n\n```rust\npub fn a() {}\n```\n"
    assert skipped.errors == want
    noted = md.aggregate(files, root=root, on_error="note", toc=True)
    assert noted.errors == want
    assert "### `link`\n\n*(not included: a symlink)*\n\n---\n\n" in noted
    assert "### `dir`\n\n*(not included: a directory)*" in noted
    assert "- [`missing.rs`](#missingrs)" in noted
    html = md.render(noted)
    assert "<em>(not included: not UTF-8 (invalid byte at offset 3))</em>" in html
    with pytest.raises(RequestError) as e:
        md.aggregate(files, root=root)
    assert (e.value.code, e.value.message) == (L.ERR_PATH_REFUSED, 'file 1 ("link"): a symlink')
    ok = md.aggregate(["a.rs"], root=root, on_error="note")
    assert ok.errors == [] and isinstance(ok, str)
    with pytest.raises(ValueError, match="on_error"):
        md.aggregate(["a.rs"], root=root, on_error="ignore")


def test_aggregate_asks_for_the_report_only_off_the_default(tmp_path):
    fake = RecordingClient(encode_list([b"doc"]))
    md = Markdown(fake)
    doc = md.aggregate([("a", "x")])
    assert "on_error" not in fake.sent[-1][2] and "report" not in fake.sent[-1][2]
    assert doc == "doc" and doc.errors == []
    # A worker older than on_error answers one item: it included every file or raised.
    assert md.aggregate([("a", "x")], on_error="skip").errors == []
    assert fake.sent[-1][2]["on_error"] == "skip" and fake.sent[-1][2]["report"] is True
    fake.answer = encode_list([b"doc", b'{"errors":[{"index":0,"path":"a","code":8,"reason":"r"}]}'])
    assert md.aggregate([("a", "x")], on_error="note").errors[0]["reason"] == "r"
    import pickle
    assert pickle.loads(pickle.dumps(doc)).errors == []


def test_large_batches_split_into_sub_batches_with_batch_wide_error_indices(md, monkeypatch):
    import chunkring.markdown as m

    monkeypatch.setattr(m, "SUB_BATCH_BYTES", 64)
    docs = [f"# D{i}\n\n" + "word " * 20 for i in range(50)]
    assert md.render(docs) == [md.render(d) for d in docs]
    assert [o["headings"][0]["text"] for o in md.outline(docs)] == [f"D{i}" for i in range(50)]
    bad = [d.encode() for d in docs]
    bad[37] = b"ok \xff"
    with pytest.raises(RequestError) as e:
        md.render(bad)
    assert e.value.message == "document 37 is not valid UTF-8 at byte offset 3"
    assert md.render("still serving") == "<p>still serving</p>\n"


def test_split_ranges_cover_every_document_once():
    from chunkring.markdown import SUB_BATCH_BYTES, _split

    assert _split([]) == [(0, 0)]
    assert _split([b"x"]) == [(0, 1)]
    big = b"x" * SUB_BATCH_BYTES
    assert _split([big, b"a", big, b"b"]) == [(0, 1), (1, 3), (3, 4)]
