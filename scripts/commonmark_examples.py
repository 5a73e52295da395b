#!/usr/bin/env python3
"""Gather the examples pulldown-cmark's own test suite runs, from the crate source cargo downloaded.

The published pulldown-cmark crate does not ship the CommonMark ``spec.txt`` files, but it
does ship ``tests/suite/*.rs``: the test functions its build script generated from those spec
files (``spec.rs`` from CommonMark's ``spec.txt``, ``gfm_table.rs`` from GitHub's spec, the
rest from pulldown-cmark's own ``specs/``). Each function holds the markdown (``original``),
the expected HTML and the option flags of ``tests/lib.rs::test_markdown_html``. This script
reads those functions (nothing is hand-copied) and writes them as JSON for the conformance
tests (``tests/commonmark_conformance.rs`` and ``python/tests/test_markdown.py``), with the
flags translated into the render params of layout.md §9.2 (the option set the suite uses:
math, tables, strikethrough, superscript, task lists, GFM, footnotes and heading attributes
always on; the six per-test flags on where a test asks).

Usage: python3 scripts/commonmark_examples.py [--out target/commonmark/examples.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST_FN = re.compile(
    r'#\[test\]\s*fn (\w+)\(\) \{\s*'
    r'let original = r##"(.*?)"##;\s*'
    r'let expected = r##"(.*?)"##;\s*'
    r'test_markdown_html\(original, expected, ([a-z, ]+)\);',
    re.S,
)
FLAGS = ("smart_punct", "metadata_blocks", "old_footnotes", "subscript", "wikilinks", "deflists")


def locked_version() -> str:
    """The pulldown-cmark version Cargo.lock pins."""
    lock = (REPO / "Cargo.lock").read_text()
    m = re.search(r'name = "pulldown-cmark"\nversion = "([^"]+)"', lock)
    if not m:
        sys.exit("Cargo.lock names no pulldown-cmark")
    return m.group(1)


def crate_dir(version: str) -> Path:
    """The crate source cargo unpacked for `version` (run `cargo fetch` if it is missing)."""
    home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    hits = glob.glob(str(home / "registry" / "src" / "*" / f"pulldown-cmark-{version}"))
    if not hits:
        sys.exit(f"pulldown-cmark-{version} not under {home}/registry/src; run `cargo fetch`")
    return Path(hits[0])


def params_for(flags: dict[str, bool]) -> dict[str, bool]:
    """The render params (layout.md §9.2) equal to tests/lib.rs's option set for these flags."""
    return {
        "tables": True,
        "footnotes": not flags["old_footnotes"],
        "old_footnotes": flags["old_footnotes"],
        "strikethrough": True,
        "tasklists": True,
        "smart_punctuation": flags["smart_punct"],
        "heading_attributes": True,
        "math": True,
        "definition_list": flags["deflists"],
        "gfm": True,
        "superscript": True,
        "subscript": flags["subscript"],
        "wikilinks": flags["wikilinks"],
        "metadata_blocks": flags["metadata_blocks"],
    }


def gather(suite: Path) -> list[dict]:
    examples = []
    for path in sorted(suite.glob("*.rs")):
        text = path.read_text(encoding="utf-8")
        found = TEST_FN.findall(text)
        declared = len(re.findall(r"#\[test\]", text))
        if len(found) != declared:
            sys.exit(f"{path.name}: parsed {len(found)} of {declared} tests; the format changed")
        for name, original, expected, args in found:
            values = [a.strip() == "true" for a in args.split(",")]
            flags = dict(zip(FLAGS, values, strict=True))
            examples.append(
                {
                    "file": path.stem,
                    "name": name,
                    "markdown": original,
                    "expected": expected,
                    "params": params_for(flags),
                }
            )
    return examples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "target" / "commonmark" / "examples.json"))
    args = ap.parse_args()
    version = locked_version()
    src = crate_dir(version)
    examples = gather(src / "tests" / "suite")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"source": str(src), "version": version, "examples": examples}
    out.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    per_file: dict[str, int] = {}
    for e in examples:
        per_file[e["file"]] = per_file.get(e["file"], 0) + 1
    print(f"{len(examples)} examples from {src}/tests/suite -> {out}")
    print("  " + ", ".join(f"{k}: {v}" for k, v in per_file.items()))


if __name__ == "__main__":
    main()
