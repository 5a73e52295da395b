"""What the snapshot and log wrappers send and read (layout.md §9.3, §9.4): snapshot
encodings, the cursor header of an answer, the save/load requests, and the small helpers the
``History``, ``Snapshots`` and ``Log`` classes share.
"""

from __future__ import annotations

import json
import marshal
import os
import struct
from functools import wraps
from json.encoder import encode_basestring_ascii as _json_str
from time import time as _time
from typing import Any, Iterable

from . import _layout as L
from ._live_state import _lookup
from ._unencodable import dumps as dumps_plain
from .errors import WorkerDied

_CURSOR = struct.Struct("<BBHII")
_ENCODINGS = ("json", "marshal", "bytes")


def encode_snapshot(snapshot: Any, encoding: str | None = None, at: list | None = None,
                    what: str = "push the snapshot") -> tuple[bytes, str]:
    """Returns ``(body, encoding name)`` for a snapshot (dict, bytes, or JSON text). A
    snapshot marshal refuses raises :class:`~chunkring.errors.UnencodableSnapshot` (``at``:
    the snapshot's path, a batch's index; ``what``: what could not be done)."""
    if encoding is not None and encoding not in _ENCODINGS:
        raise ValueError(f"encoding must be one of {_ENCODINGS}, not {encoding!r}")
    if isinstance(snapshot, (bytes, bytearray, memoryview)):
        return bytes(snapshot), encoding or "bytes"
    if isinstance(snapshot, str):
        if encoding not in (None, "json"):
            raise ValueError("a str snapshot is JSON text; use encoding='json'")
        return snapshot.encode("utf-8"), "json"
    if encoding is None or encoding == "marshal":
        return dumps_plain(snapshot, None if at is None else [(at, snapshot)], what), "marshal"
    if encoding == "json":
        return json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False).encode(), "json"
    raise ValueError("a dict snapshot cannot be sent as opaque bytes; encode it first")


def _encode_batch(snapshots: Iterable[Any], encoding: str | None, what: str, base: int = 0,
                  enc: str | None = None) -> tuple[list[bytes], str | None]:
    """The bodies of a batch and its one encoding (None for an empty batch). ``base``: the
    index of the first of ``snapshots`` in the batch, ``enc`` the batch's encoding so far
    (``what`` the batch is for, in the errors: a snapshot marshal refuses raises
    :class:`~chunkring.errors.UnencodableSnapshot` naming it by its index in the batch)."""
    bodies = []
    for i, s in enumerate(snapshots, base):
        body, e = encode_snapshot(s, encoding, [i], f"encode the {what} batch")
        if enc is not None and e != enc:
            raise ValueError(f"{what} needs one encoding for the whole batch")
        enc = e
        bodies.append(body)
    return bodies, enc


def _decode(enc: int, reply: bytes) -> Any:
    """The snapshot after the 12-byte cursor header, decoded (marshal reads it in place)."""
    if enc == 2:
        return marshal.loads(memoryview(reply)[_CURSOR.size:])
    if enc == 1:
        return json.loads(reply[_CURSOR.size:])
    return reply[_CURSOR.size:]



def _cursor_answer(r: bytes, raw: bool) -> Any:
    """A cursor op's answer: None when it did not move, else the snapshot (or its bytes)."""
    status, enc, _, _, _ = _CURSOR.unpack_from(r)
    if not status:
        return None
    return r[_CURSOR.size:] if raw else _decode(enc, r)


def _cursor_params(params: dict, encoding: str | None) -> dict:
    if encoding is None:
        return params
    if encoding not in _ENCODINGS:
        raise ValueError(f"encoding must be one of {_ENCODINGS}, not {encoding!r}")
    return dict(params, encoding=encoding)


def _json(r: bytes) -> Any:
    return json.loads(r)


def _none(_r: bytes) -> None:
    return None


def _locked(method):
    """Runs ``method`` under the history's lock (module doc, "Threads"), first reopening the
    history if the client's worker was restarted since its last call (``_supervisor.py``)."""
    @wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            if self._epoch != self._client._epoch:
                self._after_restart()
            try:
                self._tell_moves()  # (steps taken ahead of the worker: told first)
                return method(self, *args, **kwargs)
            except WorkerDied as e:  # (a restarting client's: ``_met_death``)
                out = self._met_death(e)
                if out is e:
                    raise
                raise out from None
            finally:
                self._called_at = _time()
    return locked


def save_params(name: str, path: str | os.PathLike) -> dict:
    """The params of ``OP_SNAP_SAVE``/``OP_LOG_SAVE``: ``name`` at ``path`` (made absolute)."""
    return {"name": name, "path": os.path.abspath(os.fspath(path))}


def _save(client: Any, op: int, name: str, path: str | os.PathLike) -> dict:
    """``OP_SNAP_SAVE``/``OP_LOG_SAVE``: persist ``name`` crash-safely at ``path``."""
    return json.loads(client.call(op, b"", save_params(name, path)))


def load_params(path: str | os.PathLike, name: str | None, replace: bool) -> dict:
    """The params of ``OP_SNAP_LOAD``/``OP_LOG_LOAD`` (``name`` defaults to the saved one)."""
    params: dict[str, Any] = {"path": os.path.abspath(os.fspath(path)), "replace": replace}
    if name is not None:
        params["name"] = name
    return params


def _load(client: Any, op: int, path: str | os.PathLike, name: str | None, replace: bool) -> dict:
    """``OP_SNAP_LOAD``/``OP_LOG_LOAD``: the worker's reply."""
    return json.loads(client.call(op, b"", load_params(path, name, replace)))


def params_prefix(params_json: bytes) -> bytes:
    """``params_len | params`` (layout.md §9.1) of a request's params already written as
    JSON text (what ``encode_params`` makes of a dict, without ``json.dumps``)."""
    return len(params_json).to_bytes(L.PARAMS_LEN_BYTES, "little") + params_json


def json_text(value: Any) -> str:
    """``value`` (a str, an int, or a list of those, nested) as compact JSON text, built
    without ``json.dumps``' Python layers (a push's ``paths`` param)."""
    t = type(value)
    if t is str:
        return _json_str(value)
    if t is int:
        return str(value)
    if t is list:
        return "[" + ",".join([json_text(v) for v in value]) + "]"
    return json.dumps(value)


def _paths_json(paths: list) -> str:
    """A list of paths (lists of str and int steps) as JSON text: :func:`json_text` with a
    Python call per path rather than per step (a push sends one or a few)."""
    return "[" + ",".join(["[" + ",".join([_json_str(s) if type(s) is str else json_text(s)
                                           for s in path]) + "]" for path in paths]) + "]"


def _changed_paths(snapshot: Any, changed: Iterable[Any]) -> tuple[list, list, list]:
    """``(paths, values, removes)`` of ``push(changed=…)``: one value per path found in
    ``snapshot``, the paths not found in ``removes``."""
    if type(snapshot) is not dict:
        raise TypeError("push(changed=...) needs a dict snapshot")
    if isinstance(changed, str):
        changed = (changed,)
    paths: list[list] = []
    values: list[Any] = []
    removes: list[list] = []
    for item in changed:
        path = list(item) if isinstance(item, (tuple, list)) else [item]
        found, value = _lookup(snapshot, path)
        if found:
            paths.append(path)
            values.append(value)
        else:
            removes.append(path)
    return paths, values, removes


def fields_body(snapshot: Any, changed: Iterable[Any]) -> tuple[bytes, str, list]:
    """``(marshal body, params JSON tail, paths)`` of ``OP_SNAP_PUSH_FIELDS`` for
    ``push(changed=…)`` (layout.md §9.3); ``paths`` lists every path named, found or
    removed. The tail's JSON is written without ``json.dumps`` (the common push's path)."""
    paths, values, removes = _changed_paths(snapshot, changed)
    tail = ',"paths":' + _paths_json(paths)
    if removes:
        tail += ',"remove":' + _paths_json(removes)
    return dumps_plain(values, zip(paths, values)), tail, paths + removes


def fields_request(name: str, snapshot: Any, changed: Iterable[Any],
                   encoding: str | None) -> tuple:
    """``(op, body, encoding, params, paths)`` of ``OP_SNAP_PUSH_FIELDS`` for
    ``push(changed=…)`` in any encoding (layout.md §9.3), as :func:`fields_body`."""
    paths, values, removes = _changed_paths(snapshot, changed)
    if encoding in (None, "marshal"):
        body, enc = dumps_plain(values, zip(paths, values)), "marshal"
    else:
        body, enc = encode_snapshot(values, encoding)
    params: dict[str, Any] = {"name": name, "encoding": enc, "time": _time(),
                              "paths": paths}
    if removes:
        params["remove"] = removes
    return L.OP_SNAP_PUSH_FIELDS, body, enc, params, paths + removes
