"""The pure-Python way to build an ``aggregate`` context document (layout.md §9.2, full mode,
no table of contents), written from the spec: what ``chunkring demo`` times the worker against,
and checks byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

SECTION_SEPARATOR = "\n\n---\n\n"

_BY_NAME = {"Makefile": "makefile", "makefile": "makefile", "GNUmakefile": "makefile",
            "Dockerfile": "dockerfile", "CMakeLists.txt": "cmake"}
_BY_EXTENSION = {
    ext: lang
    for lang, exts in {
        "rust": "rs", "python": "py pyi", "markdown": "md markdown mdown mkd mdx",
        "javascript": "js mjs cjs", "jsx": "jsx", "typescript": "ts mts cts", "tsx": "tsx",
        "json": "json", "toml": "toml", "yaml": "yaml yml", "bash": "sh bash", "zsh": "zsh",
        "c": "c h", "cpp": "cc cpp cxx hpp hh hxx", "go": "go", "java": "java",
        "kotlin": "kt kts", "ruby": "rb", "php": "php", "csharp": "cs", "swift": "swift",
        "html": "html htm", "css": "css", "scss": "scss", "xml": "xml", "sql": "sql",
        "lua": "lua", "ini": "ini cfg", "text": "txt",
    }.items()
    for ext in exts.split()
}


def language(path: str) -> str:
    """The fence's language for ``path``: by file name, then by lower-cased extension."""
    name = path.rsplit("/", 1)[-1]
    if name in _BY_NAME:
        return _BY_NAME[name]
    stem, dot, ext = name.rpartition(".")
    return _BY_EXTENSION.get(ext.lower(), "") if dot and stem else ""


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def code_span(path: str) -> str:
    """``path`` as a code span that shows it verbatim."""
    ticks = "`" * (_longest_backtick_run(path) + 1)
    pad = path.startswith("`") or path.endswith("`") or (
        path.startswith(" ") and path.endswith(" ") and path.strip(" "))
    inner = f" {path} " if pad else path
    return f"{ticks}{inner}{ticks}"


def section(path: str, content: str) -> str:
    """One file's heading and fenced content."""
    fence = "`" * max(3, _longest_backtick_run(content) + 1)
    newline = "\n" if content and not content.endswith("\n") else ""
    return f"### {code_span(path)}\n\n{fence}{language(path)}\n{content}{newline}{fence}"


def aggregate_py(root: Path, files: list[str]) -> str:
    """Read ``files`` under ``root`` and join their sections, as the worker's aggregate does."""
    sections = [section(p, (root / p).read_text(encoding="utf-8")) for p in files]
    return SECTION_SEPARATOR.join(sections) + "\n" if sections else ""
