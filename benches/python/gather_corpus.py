#!/usr/bin/env python3
"""Gather a markdown corpus nobody here wrote: README and doc files already on this machine.

Sources, in order: every ``*.md`` / ``*.markdown`` file of the crates cargo unpacked under
``$CARGO_HOME/registry/src``; every ``*.md`` file and every markdown long description
(``Description-Content-Type: text/markdown`` in a ``*.dist-info/METADATA``) of the Python
packages installed in the site-packages directories this interpreter and the project's
``.venv`` see. Files that are not UTF-8 or are empty are skipped, duplicates (by content)
kept once. The corpus goes to ``target/corpus/`` (not committed: third-party text), one
``NNNNN.md`` per document plus ``manifest.json`` naming each document's source.

Usage: python3 benches/python/gather_corpus.py [--out target/corpus]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import site
import sys
from email.parser import HeaderParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def crate_docs() -> list[Path]:
    home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    hits = []
    for pattern in ("**/*.md", "**/*.markdown"):
        hits += glob.glob(str(home / "registry" / "src" / "*" / "*" / pattern), recursive=True)
    return sorted(Path(h) for h in hits)


def site_dirs() -> list[Path]:
    dirs = set(site.getsitepackages()) | {site.getusersitepackages()}
    dirs |= set(glob.glob(str(REPO / ".venv" / "lib" / "python3*" / "site-packages")))
    dirs |= {p for p in sys.path if p.endswith("site-packages")}
    return sorted(Path(d) for d in dirs if Path(d).is_dir())


def python_docs() -> list[tuple[str, str]]:
    """(source, text) for markdown files and markdown long descriptions of installed packages."""
    out = []
    for d in site_dirs():
        for f in sorted(d.glob("**/*.md")):
            out.append((str(f), f.read_bytes()))
        for meta in sorted(d.glob("*.dist-info/METADATA")):
            raw = meta.read_bytes()
            head, _, body = raw.partition(b"\n\n")
            headers = HeaderParser().parsestr(head.decode("utf-8", "replace"))
            if "markdown" in (headers.get("Description-Content-Type") or "") and body.strip():
                out.append((str(meta), body))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "target" / "corpus"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.md"):
        old.unlink()
    candidates = [(str(p), p.read_bytes()) for p in crate_docs()] + python_docs()
    seen: set[bytes] = set()
    manifest = []
    for source, raw in candidates:
        if not raw.strip():
            continue
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        digest = hashlib.sha256(raw).digest()
        if digest in seen:
            continue
        seen.add(digest)
        name = f"{len(manifest):05d}.md"
        (out / name).write_bytes(raw)
        manifest.append({"file": name, "source": source, "bytes": len(raw)})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    total = sum(m["bytes"] for m in manifest)
    print(f"{len(manifest)} documents, {total / 1e6:.2f} MB -> {out}")


if __name__ == "__main__":
    main()
