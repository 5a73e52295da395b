"""Files the worker reads for a client: bounded, regular, never blocking, never escaping the root
(issue 11, items 3-4; layout.md §9.2 "Reading under the root" and §9.3 "History files").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chunkring import _layout as L  # noqa: E402
from chunkring.errors import RequestError  # noqa: E402
from chunkring.snapshots import History, Log  # noqa: E402

from conftest import run_bounded  # noqa: E402


def worker_peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def test_aggregate_refuses_a_huge_file_before_reading_it(own_client, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    sparse(root / "huge.txt", 400 << 20)
    (root / "small.txt").write_text("ok\n")
    md = own_client.markdown
    with pytest.raises(RequestError) as e:
        md.aggregate(["small.txt", "huge.txt"], root=root)
    assert e.value.code == L.ERR_IO
    assert "more than the" in e.value.message and "read limit" in e.value.message
    assert worker_peak_rss_kib(own_client.pid) < 200 << 10
    assert md.aggregate(["small.txt"], root=root).endswith("ok\n```\n")


def test_load_refuses_a_huge_file_after_reading_only_its_header(own_client, tmp_path):
    big = sparse(tmp_path / "big.crsnap", 1 << 30)
    big.chmod(0o600)
    with pytest.raises(RequestError) as e:
        History.load(own_client, big)
    assert e.value.code == L.ERR_CORRUPT_DATA
    assert worker_peak_rss_kib(own_client.pid) < 200 << 10


def test_fifos_are_refused_without_blocking_the_worker(client, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe.md")

    def body():
        with pytest.raises(RequestError) as e:
            client.markdown.aggregate(["pipe.md"], root=root)
        assert e.value.code == L.ERR_IO and "not a regular file" in e.value.message
        for load in (History.load, Log.load):
            with pytest.raises(RequestError) as e:
                load(client, root / "pipe.md")
            assert e.value.code == L.ERR_PATH_REFUSED
        assert client.echo(b"x") == b"x"

    run_bounded(body, 20)


def test_refusals_say_which_rule_refused(client, tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f.txt").write_text("in\n")
    (tmp_path / "secret").write_text("out\n")
    os.symlink(tmp_path / "secret", root / "link")
    os.symlink(root / "d", root / "dlink")
    md = client.markdown
    # With on_error="raise" the message is `file <i> ("<path>"): <reason>`, the reason from
    # layout.md §9.2's "Per-file errors" table (aggregate names the rule, in those words).
    cases = {
        "../secret": (L.ERR_PATH_REFUSED, "escapes the root"),
        "link": (L.ERR_PATH_REFUSED, "a symlink"),
        "dlink/f.txt": (L.ERR_PATH_REFUSED, "a symlink"),
        "d": (L.ERR_IO, "a directory"),
    }
    for path, (code, reason) in cases.items():
        with pytest.raises(RequestError) as e:
            md.aggregate([path], root=root)
        assert e.value.code == code, (path, e.value)
        assert e.value.message == f'file 0 ("{path}"): {reason}', (path, e.value.message)


SWAPPER = """
import os, sys
root, outside = sys.argv[1], sys.argv[2]
real, aside, link = root + "/d", root + "/d.real", root + "/d.link"
os.symlink(outside, link)
while True:
    os.rename(real, aside)
    os.rename(link, real)  # d -> outside
    os.rename(real, link)
    os.rename(aside, real)  # d is the real directory again
"""


def test_swapping_a_directory_for_a_symlink_never_leads_out_of_the_root(client, tmp_path):
    """Item 4: a directory under the root swapped for a link to the outside, back and forth
    by another process, while the worker reads through it. Old code (canonicalize, then open
    by name) returned the outside file in about 2% of reads."""
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f.txt").write_text("inside\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("SECRET\n")
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(root), str(outside)])
    seen = {"inside": 0, "refused": 0, "leaked": 0}
    try:
        for _ in range(3000):
            try:
                doc = client.markdown.aggregate(["d/f.txt"], root=root)
            except RequestError as e:
                assert e.code in (L.ERR_PATH_REFUSED, L.ERR_IO), e
                seen["refused"] += 1
                continue
            if "SECRET" in doc:
                seen["leaked"] += 1
            else:
                seen["inside"] += 1
    finally:
        swapper.kill()
        swapper.wait()
    assert seen["leaked"] == 0, seen
    assert seen["inside"] > 0, seen
