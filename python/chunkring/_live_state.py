"""The live state a GUI keeps in step with a history (module doc of :mod:`chunkring.snapshots`,
"Undo into the live state"): the fingerprint of a snapshot's top level that tells cheaply
whether a dict is still the current snapshot, and the move patch of ``OP_SNAP_MOVE``
(layout.md §9.3) applied to it in place.
"""

from __future__ import annotations

import json
import marshal
from typing import Any

from ._payload import item_ends

#: Top-level values compared by kind and length (others by value); the kind is what the
#: worker keeps (a tuple is stored as a list).
_SIZED = {list: list, tuple: list, dict: dict, bytes: bytes, bytearray: bytes}


def _fingerprint(state: dict) -> tuple[dict, dict]:
    """What :meth:`History.undo` ``into=`` checks cheaply (:func:`matches`): the top level as
    it is now (a shallow copy: each value as the object it is) and the length of each list,
    dict or bytes in it, by key."""
    values = state.copy()
    return values, {k: len(v) for k, v in values.items() if type(v) in _SIZED}


def matches(synced: tuple[dict, dict], state: dict) -> bool:
    """True when ``state`` matches the fingerprint ``synced``: the same keys, each scalar
    equal, each list, dict or bytes of the same kind and length (a tuple counts as a list).
    At once when every value is still the object it was and each container has the length
    it had (a GUI's live state edited in place, as pushed or moved); else key by key."""
    values, lengths = synced
    try:
        if list(map(len, map(state.__getitem__, lengths))) != list(lengths.values()):
            return False
    except (KeyError, TypeError):
        return False
    # The same keys, each value the object it was or equal to it (which passes the rules
    # below as well). Dict equality pairs the values key by key (not by position: the same
    # keys in another order would pair different keys' values) and tries identity first, so
    # a state edited in place costs one C-level pass; a value that is another object is
    # compared by value (a state rebuilt each time pays a deep comparison here), then by the
    # rules.
    return values == state or not differing_keys(synced, state)


def _lookup(snapshot: dict, path: list) -> tuple[bool, Any]:
    """``(True, value)`` at ``path`` of ``snapshot``, ``(False, None)`` when its last step is
    missing from a dict (the push removes it); a negative list index is resolved in place.
    Raises ``KeyError``/``IndexError``/``TypeError`` for a path that leads nowhere."""
    if not path:
        raise ValueError("an empty path in changed=")
    node: Any = snapshot
    for n, step in enumerate(path):
        last = n == len(path) - 1
        if type(node) is dict:
            if step not in node:
                if last:
                    return False, None
                raise KeyError(f"changed= path {path!r}: no key {step!r}")
        elif isinstance(node, (list, tuple)):
            if isinstance(step, bool) or not isinstance(step, int):
                raise TypeError(f"changed= path {path!r}: {step!r} indexes a list")
            if step < 0:
                step += len(node)
                path[n] = step
            if not 0 <= step < len(node):
                raise IndexError(f"changed= path {path!r}: index {step} beyond the list")
        else:
            raise TypeError(f"changed= path {path!r}: step {step!r} into a "
                            f"{type(node).__name__}")
        node = node[step]
    return True, node


def _apply_patch(state: dict, body: memoryview, touched: set | None = None) -> list[dict]:
    """Applies an ``OP_SNAP_MOVE`` patch in the list form (layout.md §9.3: the ops as JSON,
    one marshal blob per value) to ``state``; as :func:`apply_ops` otherwise."""
    ends = item_ends(body)
    ops = json.loads(bytes(body[ends[0]:ends[1]]))
    at = 1
    for o in ops:
        if o[0] != "remove":
            o.append(marshal.loads(body[ends[at]:ends[at + 1]]))
            at += 1
    return apply_ops(state, ops, set() if touched is None else touched)


def apply_compact(state: dict, body: memoryview, touched: set) -> list[dict]:
    """Applies a ``compact`` ``OP_SNAP_MOVE`` patch (layout.md §9.3: one marshal list of
    ``[op, pointer, segments, value?]``) to ``state``; as :func:`apply_ops` otherwise."""
    return apply_ops(state, marshal.loads(body), touched)


def apply_ops(state: dict, ops: list, touched: set, back: list | None = None) -> list[dict]:
    """Applies ``[op, pointer, segments, value?]`` operations in order to ``state``; returns
    them as RFC 6902 operations and adds the top-level keys they changed to ``touched``
    (``None`` in it: the whole root). With ``back``, appends to it the operations that undo
    them, last first (:func:`_undoing`), or ``None`` where one cannot be made safely."""
    applied = []
    for o in ops:
        op, segs = o[0], o[2]
        touched.add(segs[0] if segs else None)
        parent = state
        for seg in segs[:-1]:
            parent = parent[seg]
        if back is not None:
            back.append(_undoing(o, parent))
        if op == "remove":
            del parent[segs[-1]]
            applied.append({"op": op, "path": o[1]})
            continue
        value = o[3]
        if not segs:
            state.clear()
            state.update(value)
        elif op == "add" and type(parent) is list:
            parent.insert(segs[-1], value)
        else:
            parent[segs[-1]] = value
        applied.append({"op": op, "path": o[1], "value": value})
    if back is not None:
        back.reverse()
    return applied


#: Values an undoing operation may hold as they are: nothing can change them while it waits.
_IMMUTABLE = {str, int, float, bool, type(None), bytes}
#: Nodes (containers and values) of a list or dict an undoing operation may copy (:func:`_kept`).
KEEP_NODES = 64


def _undoing(o: list, parent: Any) -> list | None:
    """The operation that undoes ``o`` applied under ``parent`` (read before it is): the
    value it removes or replaces put back, or what it adds removed; None for the root or
    for a value that neither is :data:`_IMMUTABLE` nor can be kept (:func:`_kept`)."""
    op, pointer, segs = o[0], o[1], o[2]
    if not segs:
        return None
    key = segs[-1]
    if op == "add" and (type(parent) is list or key not in parent):
        return ["remove", pointer, segs]
    old = parent[key]
    if type(old) not in _IMMUTABLE:
        old = _kept(old)
        if old is None:
            return None
    return ["add" if op == "remove" else "replace", pointer, segs, old]


def _kept(value: Any) -> Any:
    """A copy of the list or dict ``value`` as the history holds it, to put back later: its
    own lists and dicts (the one taken out of the live state could still be changed through
    another reference), a tuple as a list (the history stores a tuple as a list, and a step
    through the worker would put back a list), every leaf :data:`_IMMUTABLE`, dict keys
    str; at most :data:`KEEP_NODES` nodes, so a step never copies much. None when it is not
    such a value (the step back then comes from the worker)."""
    budget = [KEEP_NODES]

    def copy(v: Any) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise _NotKept
        t = type(v)
        if t in _IMMUTABLE:
            return v
        if t is dict:
            if not all(type(k) is str for k in v):
                raise _NotKept
            return {k: copy(x) for k, x in v.items()}
        if t is list or t is tuple:
            return [copy(x) for x in v]
        raise _NotKept

    try:
        return copy(value)
    except _NotKept:
        return None


class _NotKept(Exception):
    """A value :func:`_kept` will not copy."""


def refresh(synced: tuple[dict, dict], state: dict, keys) -> None:
    """Brings the fingerprint ``synced`` up to date for the top-level ``keys`` of ``state``
    that changed (a key gone from ``state`` leaves it)."""
    values, lengths = synced
    for k in keys:
        if k in state:
            v = values[k] = state[k]
            if type(v) in _SIZED:
                lengths[k] = len(v)
                continue
        else:
            values.pop(k, None)
        lengths.pop(k, None)


def differing_keys(synced: tuple[dict, dict], state: dict) -> list[str]:
    """The top-level keys (as text, sorted) where ``state`` does not match the fingerprint
    ``synced`` (:func:`matches`); empty when it matches."""
    values, lengths = synced
    return sorted(str(k) for k in state.keys() | values.keys()
                  if k not in state or k not in values
                  or not _same(values[k], lengths.get(k), state[k]))


def _same(was: Any, length: int | None, v: Any) -> bool:
    """``v`` matches the value ``was`` that had ``length`` when the fingerprint was taken."""
    kind = _SIZED.get(type(was))
    if kind is None:
        return was is v or was == v
    return kind is _SIZED.get(type(v)) and len(v) == length
