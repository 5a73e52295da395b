"""``chunkring.__version__``: Cargo.toml's version, the one source of truth.

An installed wheel carries it in its metadata (maturin takes the wheel's version from
Cargo.toml); a source checkout, imported from ``<repo>/python``, reads ``<repo>/Cargo.toml``
itself, so the two never disagree with the code that is actually running.
"""

from __future__ import annotations

import re
from pathlib import Path

_CARGO_TOML = Path(__file__).resolve().parents[2] / "Cargo.toml"


def _checkout_version() -> str | None:
    """The ``[package]`` version of ``<repo>/Cargo.toml`` when this package is ``<repo>/python/chunkring``."""
    if Path(__file__).resolve().parents[1].name != "python" or not _CARGO_TOML.is_file():
        return None
    text = _CARGO_TOML.read_text(encoding="utf-8")
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[)", text, flags=re.M | re.S)
    if not package or not re.search(r'^name\s*=\s*"chunkring"\s*$', package.group(1), flags=re.M):
        return None
    version = re.search(r'^version\s*=\s*"([^"]+)"\s*$', package.group(1), flags=re.M)
    return version.group(1) if version else None


def version() -> str:
    """The running package's version: the checkout's Cargo.toml, else the installed metadata."""
    found = _checkout_version()
    if found:
        return found
    from importlib import metadata

    try:
        return metadata.version("chunkring")
    except metadata.PackageNotFoundError:
        return "0+unknown"
