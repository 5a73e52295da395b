"""Saved histories and logs are created safely (issue 11, item 14; layout.md §9.3 "History
files"): owner-only, through a temp file whose name nobody can plant in advance.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chunkring.snapshots import History, Log  # noqa: E402


def test_saved_files_are_owner_only_and_planted_temp_names_are_never_written(client, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    victim.chmod(0o644)
    h = History(client, "saved-files")
    h.push({"a": 1}, wait=True)
    log = Log(client, "saved-files-log")
    log.append(b"record")
    for kind, obj, target in (("history", h, tmp_path / "h.crsnap"), ("log", log, tmp_path / "l.crlog")):
        # The temp names an old worker used: PATH.tmp-<pid>, planted as links to the victim.
        os.symlink(victim, f"{target}.tmp-{client.pid}")
        obj.save(target)
        mode = stat.S_IMODE(target.stat().st_mode)
        assert mode == 0o600, (kind, oct(mode))
        assert not target.is_symlink()
    assert victim.read_text() == "untouched\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name and not p.is_symlink()]
    assert leftovers == []
    assert History.load(client, tmp_path / "h.crsnap", "saved-files-2").current() == {"a": 1}
