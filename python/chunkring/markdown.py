"""Markdown ops through the worker: ``render``, ``outline``, ``aggregate`` (layout.md §9.2).

A thin layer over ``client.call``: documents go out in the list encoding of layout.md §9.1
(one ``struct.pack`` and one ``b"".join``), HTML comes back as memoryview slices decoded
straight to ``str``, and outlines come back as one JSON array that CPython's C decoder reads.

>>> with Client.spawn() as c:                        # doctest: +SKIP
...     c.markdown.render("# Hi")
'<h1>Hi</h1>\\n'

Each op has a submit form (``submit_render``, ``submit_outline``, ``submit_aggregate``) that
sends the request(s) and returns a :class:`concurrent.futures.Future` of the decoded answer
at once; ``chunkring.aio`` awaits those.
"""

from __future__ import annotations

import json
import os
import re
import struct
from typing import Any, Iterable, Sequence, Union

from . import _layout as L
from ._payload import decode_list, encode_list, item_ends
from ._futures import Derived, submitted, then
from .errors import ProtocolError, RequestError

__all__ = ["AggregateDocument", "Markdown", "aggregate_request", "aggregate_result",
           "encode_list", "decode_list"]

#: The values of ``aggregate(on_error=...)`` (layout.md §9.2 "Per-file errors").
ON_ERROR_CHOICES = ("raise", "skip", "note")


class AggregateDocument(str):
    """The context document ``aggregate`` builds: a ``str``, plus ``errors``.

    ``errors`` lists the files that were not included (``on_error="skip"`` or ``"note"``), in
    ``files`` order, each a dict ``{"index", "path", "code", "reason"}`` as layout.md §9.2's
    report gives it: ``reason`` is an exact string such as ``"a symlink"``, ``"not found"``,
    ``"a directory"`` or ``"not UTF-8 (invalid byte at offset 3)"``; ``code`` the wire error
    code ``on_error="raise"`` would have raised. Empty when every file was included.
    """

    errors: list[dict]

    def __new__(cls, text: str, errors: list[dict] | None = None) -> "AggregateDocument":
        doc = super().__new__(cls, text)
        doc.errors = errors or []
        return doc

    def __reduce__(self):
        return (AggregateDocument, (str(self), self.errors))

#: Parser options and their defaults (layout.md §9.2 "Parser options").
OPTION_DEFAULTS: dict[str, bool] = {
    "tables": True,
    "footnotes": True,
    "strikethrough": True,
    "tasklists": True,
    "smart_punctuation": False,
    "heading_attributes": False,
    "math": False,
    "definition_list": False,
    "gfm": False,
    "superscript": False,
    "subscript": False,
    "wikilinks": False,
    "old_footnotes": False,
    "metadata_blocks": False,
}

#: :data:`OPTION_DEFAULTS`' names and values in order, for one tuple comparison per call.
_OPTION_NAMES = tuple(OPTION_DEFAULTS)
_DEFAULT_VALUES = tuple(OPTION_DEFAULTS.values())
#: ``count | len`` of a one-document list (layout.md §9.1).
_ONE_DOC = struct.Struct("<II")

FileArg = Union[str, "os.PathLike[str]", tuple, dict]


def _decode_texts(buf: bytes) -> list[str]:
    """Items as ``str``. Small items decode fastest from a bytes slice; large ones from a
    memoryview slice, which skips copying the bytes first (2x faster at 50 MB)."""
    ends = item_ends(buf)
    if len(buf) > 65536 * (len(ends) - 1):
        mv = memoryview(buf)
        return [str(mv[a:b], "utf-8") for a, b in zip(ends, ends[1:])]
    return [buf[a:b].decode() for a, b in zip(ends, ends[1:])]


def _utf8(docs: Iterable[str | bytes]) -> list[bytes]:
    return [d if isinstance(d, (bytes, bytearray)) else d.encode() for d in docs]


def _encode_docs(docs: Iterable[str | bytes]) -> bytes:
    return encode_list(_utf8(docs))


def _options(opts: dict[str, bool]) -> dict[str, bool] | None:
    """Only the options that differ from the defaults (an empty params section is `{}`)."""
    changed = {k: bool(v) for k, v in opts.items() if bool(v) != OPTION_DEFAULTS[k]}
    return changed or None


def _one_doc(text: str | bytes) -> bytes:
    """The list encoding of one document (layout.md §9.1): ``1 | len | bytes``."""
    data = text.encode() if type(text) is str else text
    return _ONE_DOC.pack(1, len(data)) + data


def _one_text(buf: bytes) -> str:
    """The one document of a render answer as ``str``; any answer that is not exactly one
    item goes through :func:`_decode_texts` and :func:`_collect`, which say what is wrong."""
    if len(buf) >= 8 and _ONE_DOC.unpack_from(buf) == (1, len(buf) - 8):
        return str(memoryview(buf)[8:], "utf-8") if len(buf) > 65536 else buf[8:].decode()
    return _collect([buf], _decode_texts, 1, True, "render")


def _checked_options(options: dict[str, bool], what: str) -> dict[str, bool] | None:
    """:func:`_options` of keyword options, refusing names that are not parser options."""
    unknown = options.keys() - OPTION_DEFAULTS.keys()
    if unknown:
        raise TypeError(f"unknown {what} options: {sorted(unknown)}")
    return _options(options)


def _docs(text_or_list) -> tuple[bool, Sequence]:
    """``(single, docs)``: one document in gives one answer out, a list gives a list."""
    single = isinstance(text_or_list, (str, bytes, bytearray))
    return single, [text_or_list] if single else text_or_list


def _collect(parts, decode_part, n_docs: int, single: bool, what: str):
    """The documents of every part, checked against the batch size (one if ``single``)."""
    out: list = []
    for part in parts:
        out.extend(decode_part(part))
    if len(out) != n_docs:
        raise ProtocolError(f"{what} answered {len(out)} documents for {n_docs}")
    return out[0] if single else out


def _outlines(part: bytes) -> list:
    return json.loads(part)


_OP_NAMES = {L.OP_MD_RENDER: "render", L.OP_MD_OUTLINE: "outline"}


#: Batches larger than this are split into sub-batches of about this many bytes, all in flight
#: at once: the worker renders one while Python encodes the next and decodes the previous.
SUB_BATCH_BYTES = 256 * 1024

_DOC_INDEX = re.compile(r"^document (\d+) ")


def _split(encoded: list[bytes]) -> list[tuple[int, int]]:
    """[start, end) document ranges of about SUB_BATCH_BYTES each (one range if small)."""
    ranges, start, size = [], 0, 0
    for i, d in enumerate(encoded):
        size += len(d)
        if size >= SUB_BATCH_BYTES:
            ranges.append((start, i + 1))
            start, size = i + 1, 0
    if start < len(encoded) or not ranges:
        ranges.append((start, len(encoded)))
    return ranges


def _shifted(err: RequestError, offset: int) -> RequestError:
    """A sub-batch's error with its document index made batch-wide (layout.md §9.2 message)."""
    m = _DOC_INDEX.match(err.message)
    if not offset or m is None:
        return err
    message = f"document {int(m.group(1)) + offset} " + err.message[m.end():]
    return RequestError(err.code, message, err.op)


def _parts(ranges, handles, timeout):
    """Yields each sub-batch's response in order. Every response is awaited before an error
    is raised, so none is left pending; an ``INVALID_UTF8`` message names the document's
    index in the whole batch."""
    first_error = None
    for (a, _), h in zip(ranges, handles):
        try:
            part = h.result(timeout)
        except RequestError as e:
            first_error = first_error or _shifted(e, a)
            continue
        if first_error is None:
            yield part  # decoded by the caller while the worker runs the next ones
    if first_error is not None:
        raise first_error


class Markdown:
    """The markdown ops of one client (``client.markdown``)."""

    __slots__ = ("_client",)

    def __init__(self, client: Any):
        self._client = client

    def render(
        self,
        text_or_list: str | bytes | Sequence[str | bytes],
        *,
        tables: bool = True,
        footnotes: bool = True,
        strikethrough: bool = True,
        tasklists: bool = True,
        smart_punctuation: bool = False,
        heading_attributes: bool = False,
        math: bool = False,
        definition_list: bool = False,
        gfm: bool = False,
        superscript: bool = False,
        subscript: bool = False,
        wikilinks: bool = False,
        old_footnotes: bool = False,
        metadata_blocks: bool = False,
        timeout: float | None = None,
    ) -> str | list[str]:
        """Markdown → HTML with pulldown-cmark. A ``str`` in gives a ``str`` out; a list gives
        a list (one request for the whole batch).

        Raises :class:`~chunkring.errors.RequestError` (``INVALID_UTF8`` for ``bytes`` that are
        not UTF-8, naming the document and byte offset).
        """
        values = (tables, footnotes, strikethrough, tasklists, smart_punctuation,
                  heading_attributes, math, definition_list, gfm, superscript, subscript,
                  wikilinks, old_footnotes, metadata_blocks)  # _OPTION_NAMES' order
        params = (None if values == _DEFAULT_VALUES
                  else _options(dict(zip(_OPTION_NAMES, values))))
        if type(text_or_list) is str or type(text_or_list) is bytes:
            # One document, one request (as _documents would send it), fewer steps.
            out = self._client.call(L.OP_MD_RENDER, _one_doc(text_or_list), params,
                                    timeout=timeout)
            return _one_text(out)
        return self._documents(L.OP_MD_RENDER, text_or_list, params, _decode_texts, timeout)

    def submit_render(self, text_or_list: str | bytes | Sequence[str | bytes],
                      **options: bool) -> Derived:
        """:meth:`render` without waiting: a future of its answer (``options`` as there)."""
        params = _checked_options(options, "render")
        return self._submit_documents(L.OP_MD_RENDER, text_or_list, params, _decode_texts)

    def _documents(self, op: int, text_or_list, params, decode_part, timeout):
        """The answer for each document (one answer for one document), waited for."""
        single, docs = _docs(text_or_list)
        parts = self._batched(op, docs, params, timeout)
        return _collect(parts, decode_part, len(docs), single, _OP_NAMES[op])

    def _submit_documents(self, op: int, text_or_list, params, decode_part) -> Derived:
        """:meth:`_documents` as a future: every sub-batch sent, nothing waited for."""
        single, docs = _docs(text_or_list)
        encoded = _utf8(docs)
        ranges = _split(encoded)
        handles = self._submit_parts(op, encoded, ranges, params)
        return then(handles, lambda hs: _collect(_parts(ranges, hs, None), decode_part,
                                                 len(docs), single, _OP_NAMES[op]))

    def _submit_parts(self, op: int, encoded: list[bytes], ranges, params) -> list:
        """One request per ``[a, b)`` range of ``encoded``; their handles."""
        return [self._client.submit(op, encode_list(encoded[a:b]), params) for a, b in ranges]

    def _batched(self, op: int, docs, params, timeout):
        """Yields the responses of ``docs`` sent as one request, or, for a batch over
        SUB_BATCH_BYTES, as sub-batches all submitted before the first is awaited."""
        encoded = _utf8(docs)
        ranges = _split(encoded)
        if len(ranges) == 1:
            yield self._client.call(op, encode_list(encoded), params, timeout=timeout)
            return
        yield from _parts(ranges, self._submit_parts(op, encoded, ranges, params), timeout)

    def outline(
        self,
        text_or_list: str | bytes | Sequence[str | bytes],
        *,
        timeout: float | None = None,
        **options: bool,
    ) -> dict | list[dict]:
        """Headings, code blocks, links and word count (layout.md §9.2 "outline").

        A ``str`` in gives one dict; a list gives a list of dicts. ``options`` are the parser
        options of :meth:`render` (same defaults).
        """
        params = _checked_options(options, "outline")
        return self._documents(L.OP_MD_OUTLINE, text_or_list, params, _outlines, timeout)

    def submit_outline(self, text_or_list: str | bytes | Sequence[str | bytes],
                       **options: bool) -> Derived:
        """:meth:`outline` without waiting: a future of its answer."""
        params = _checked_options(options, "outline")
        return self._submit_documents(L.OP_MD_OUTLINE, text_or_list, params, _outlines)

    def aggregate(
        self,
        files: Iterable[FileArg],
        *,
        mode: str = "full",
        toc: bool = False,
        root: str | os.PathLike[str] | None = None,
        on_error: str = "raise",
        timeout: float | None = None,
    ) -> AggregateDocument:
        """Many files → one context document (layout.md §9.2 "aggregate").

        Each of ``files`` is a ``(path, content)`` tuple, a dict ``{"path", "content",
        "mode"}`` (``content`` and ``mode`` optional), or a bare path. Files without content
        are read by the worker under ``root`` (made absolute here, since the worker's working
        directory may differ). ``content`` may be ``str`` or ``bytes``.

        ``on_error`` says what a file that cannot be read or is not UTF-8 does:

        * ``"raise"`` (default): raise ``RequestError`` for the first one (``PATH_REFUSED`` for
          a path escaping ``root``, ``IO``, ``INVALID_UTF8`` naming the byte offset);
        * ``"skip"``: leave it out of the document;
        * ``"note"``: keep its heading, with ``*(not included: <reason>)*`` in place of its
          content.

        Returns an :class:`AggregateDocument`: the document as a ``str`` whose ``errors``
        lists the files not included, with the reason for each.

        >>> doc = client.markdown.aggregate(["a.md", "link"], root=".", on_error="note")  # doctest: +SKIP
        >>> doc.errors                                                                    # doctest: +SKIP
        [{'index': 1, 'path': 'link', 'code': 11, 'reason': 'a symlink'}]
        """
        op, body, params = aggregate_request(files, mode=mode, toc=toc, root=root,
                                             on_error=on_error)
        out = self._client.call(op, body, params, timeout=timeout)
        return aggregate_result(out, on_error=on_error)

    def submit_aggregate(self, files: Iterable[FileArg], *, mode: str = "full", toc: bool = False,
                         root: str | os.PathLike[str] | None = None,
                         on_error: str = "raise") -> Derived:
        """:meth:`aggregate` without waiting: a future of the :class:`AggregateDocument`."""
        op, body, params = aggregate_request(files, mode=mode, toc=toc, root=root,
                                             on_error=on_error)
        return submitted(self._client, op, body, params,
                         lambda out: aggregate_result(out, on_error=on_error))


def _file_specs(files: Iterable[FileArg]) -> tuple[list[dict], list[str | bytes]]:
    specs: list[dict] = []
    inline: list[str | bytes] = []
    for f in files:
        if isinstance(f, tuple):
            path, content = f
            specs.append({"path": os.fspath(path)})
            inline.append(content)
        elif isinstance(f, dict):
            spec = {"path": os.fspath(f["path"])}
            if "mode" in f:
                spec["mode"] = f["mode"]
            if "content" in f:
                inline.append(f["content"])
            else:
                spec["read"] = True
            specs.append(spec)
        else:
            specs.append({"path": os.fspath(f), "read": True})
    return specs, inline


def aggregate_request(
    files: Iterable[FileArg],
    *,
    mode: str = "full",
    toc: bool = False,
    root: str | os.PathLike[str] | None = None,
    on_error: str = "raise",
) -> tuple[int, bytes, dict]:
    """The ``(op, body, params)`` of :meth:`Markdown.aggregate`, for ``client.submit``: to
    build a context without blocking (a GUI polls the handle, ``examples/tk_aggregate.py``)
    and read the answer with :func:`aggregate_result`.

    >>> h = client.submit(*aggregate_request(["README.md"], root=".", on_error="note"))  # doctest: +SKIP
    >>> doc = aggregate_result(h.result(), on_error="note")                            # doctest: +SKIP
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, not {on_error!r}")
    specs, inline = _file_specs(files)
    params: dict[str, Any] = {"files": specs, "mode": mode, "toc": toc}
    if root is not None:
        params["root"] = os.path.abspath(os.fspath(root))
    if on_error != "raise":
        params["on_error"] = on_error
        params["report"] = True
    return L.OP_MD_AGGREGATE, _encode_docs(inline) if inline else b"", params


def aggregate_result(answer: bytes, *, on_error: str = "raise") -> AggregateDocument:
    """The :class:`AggregateDocument` in the answer to :func:`aggregate_request`'s request
    with the same ``on_error``: the document, and the report item when one was asked for
    (layout.md §9.2). A worker older than ``on_error`` answers one item even then: it included
    every file or raised."""
    report = on_error != "raise"
    items = decode_list(answer)
    if len(items) not in ((1, 2) if report else (1,)):
        raise ProtocolError(f"aggregate answered {len(items)} items")
    errors = json.loads(bytes(items[1]))["errors"] if len(items) == 2 else []
    return AggregateDocument(str(items[0], "utf-8"), errors)
