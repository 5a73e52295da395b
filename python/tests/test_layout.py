"""layout.md's tables equal ``_layout.py`` (the spec drives the tests, STYLE.md §6).

Every ``| NAME | value | ...`` row of §3, §4, §6, §7 and §8 is parsed and compared; and every
code-like constant of ``_layout.py`` (ops, flags, error codes, stats, offsets) must appear in
those tables, so neither side can grow alone.
"""

from __future__ import annotations

import re

import pytest
from chunkring import _layout as L
from conftest import REPO_ROOT

SECTIONS = ("3", "4", "6", "7", "8")
_ROW = re.compile(r"^\|\s*([A-Z][A-Z0-9_]+)\s*\|\s*(0x[0-9A-Fa-f]+|\d+)\s*\|")
_HEADING = re.compile(r"^##\s+(\d+)\.")


def layout_rows() -> dict[str, int]:
    rows: dict[str, int] = {}
    section = None
    for line in (REPO_ROOT / "layout.md").read_text(encoding="utf-8").splitlines():
        m = _HEADING.match(line)
        if m:
            section = m.group(1)
            continue
        if section not in SECTIONS:
            continue
        m = _ROW.match(line)
        if m:
            name, value = m.group(1), int(m.group(2), 0)
            assert name not in rows, f"{name} appears twice in layout.md"
            rows[name] = value
    return rows


ROWS = layout_rows()


def test_tables_were_found():
    assert len(ROWS) >= 80
    for family in ("OP_", "ERR_", "FLAG_", "STAT_", "FRAME_"):
        assert any(n.startswith(family) for n in ROWS), family


@pytest.mark.parametrize("name", sorted(ROWS))
def test_layout_md_row_equals_layout_py(name):
    assert hasattr(L, name), f"{name} is in layout.md but not in _layout.py"
    assert getattr(L, name) == ROWS[name]


_FAMILIES = re.compile(r"^(OP_|ERR_|FLAG_|STAT_|FRAME_.*_OFFSET$|.*_OFFSET$)")
_NOT_TABLED = {"STATS_COUNT", "FRAME_HEADER", "FRAME_HEADER_BYTES", "FRAME_MAGIC"}


def test_every_layout_py_code_is_in_layout_md():
    names = [
        n for n, v in vars(L).items()
        if isinstance(v, int) and _FAMILIES.match(n) and n not in _NOT_TABLED
    ]
    missing = sorted(n for n in names if n not in ROWS)
    assert missing == []


def test_frame_header_struct_matches_the_offsets():
    offsets = [ROWS[n] for n in (
        "FRAME_MAGIC_OFFSET", "FRAME_FLAGS_OFFSET", "FRAME_OP_OFFSET", "FRAME_STATUS_OFFSET",
        "FRAME_REQUEST_ID_OFFSET", "FRAME_PAYLOAD_LEN_OFFSET", "FRAME_FRAGMENT_INDEX_OFFSET",
        "FRAME_MESSAGE_LEN_OFFSET",
    )]
    sizes = [2, 2, 2, 2, 8, 4, 4, 8]
    assert offsets == [sum(sizes[:i]) for i in range(len(sizes))]
    assert L.FRAME_HEADER.size == sum(sizes) == L.FRAME_HEADER_BYTES


def test_control_words_sit_on_their_own_128_byte_lines():
    words = [ROWS[n] for n in ("REQ_HEAD_OFFSET", "REQ_TAIL_OFFSET", "RESP_HEAD_OFFSET",
                               "RESP_TAIL_OFFSET", "WORKER_FUTEX_OFFSET", "CLIENT_FUTEX_OFFSET")]
    assert all(w % 128 == 0 for w in words)
    assert len({w // 128 for w in words}) == len(words)


def test_stat_names_are_indexed_by_the_stat_values():
    stats = {n: v for n, v in vars(L).items() if n.startswith("STAT_") and isinstance(v, int)}
    assert sorted(stats.values()) == list(range(len(L.STAT_NAMES)))
    for name, index in stats.items():
        assert L.STAT_NAMES[index] == name[len("STAT_"):].lower()
