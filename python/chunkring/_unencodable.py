"""Why ``marshal.dumps`` refused a snapshot, said with the place in it (a push's error path).

``marshal`` says only ``unmarshallable object`` (for a value of a type it does not know, a
subclass of a plain type included, and for a str, bytes or container past its 2 GiB limit) or
``object too deeply nested to marshal``. :func:`explain` walks the values that were encoded,
once and only after the refusal, and names the first value at fault by its JSON pointer
(RFC 6901, as the ``into=`` operations name paths): its type, or its size, or the depth. The
walk is iterative and visits each node once, so a deep or wide snapshot costs no recursion.
"""

from __future__ import annotations

import marshal
from typing import Any, Iterable

from .errors import UnencodableSnapshot

_dumps = marshal.dumps

#: Types whose exact instances ``marshal`` writes and the worker stores (layout.md §9.3:
#: tuples are stored as lists).
PLAIN = (dict, list, tuple, str, bytes, int, float, bool, type(None))
#: Values marshal refuses past its length limit.
_SIZED = (str, bytes, list, tuple, dict)
#: Containers the walk goes into.
_CONTAINERS = (dict, list, tuple)
#: ``marshal``'s nesting limit (CPython's ``MAX_MARSHAL_STACK_DEPTH``).
MARSHAL_DEPTH = 2000
#: ``marshal`` writes lengths as 32-bit signed ints.
MARSHAL_MAX_LEN = (1 << 31) - 1


def pointer(path: Iterable[Any]) -> str:
    """The JSON pointer (RFC 6901) of ``path``: ``~`` and ``/`` escaped, ``""`` for the root."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def dumps(value: Any, pairs: Iterable[tuple[list, Any]] | None = None,
          what: str = "push the snapshot") -> bytes:
    """``marshal.dumps(value, 4)``; its refusal raised as :func:`explain` says it. ``pairs``:
    where the parts of ``value`` are in the snapshot (``value`` itself at the root when
    None)."""
    try:
        return _dumps(value, 4)
    except ValueError as exc:
        raise explain([([], value)] if pairs is None else pairs, exc, what) from None


def explain(pairs: Iterable[tuple[list, Any]], exc: ValueError,
            what: str = "push the snapshot") -> UnencodableSnapshot:
    """The error for ``exc`` raised by ``marshal.dumps`` on the values of ``pairs`` (each a
    path in the snapshot and the value there): the first value at fault, found by a walk,
    or ``exc``'s own words when the walk finds none. ``what``: what could not be done."""
    for path, value in pairs:
        why = _first_fault(list(path), value)
        if why is not None:
            return UnencodableSnapshot(f"cannot {what}: {why}")
    return UnencodableSnapshot(f"cannot {what}: marshal refused it ({exc})")


def _first_fault(path: list, value: Any) -> str | None:
    stack = [(value, path)]
    while stack:
        v, at = stack.pop()
        t = type(v)
        if t not in PLAIN:
            return (f"the value at {_where(at)} has type {_name(t)}; a snapshot holds plain data "
                    "only (dict, list, tuple, str, bytes, int, float, bool, None; not a subclass)")
        if t in _SIZED and len(v) > MARSHAL_MAX_LEN:
            return f"the {t.__name__} at {_where(at)} is longer than marshal's limit of 2 GiB"
        if t not in _CONTAINERS:
            continue
        if len(at) - len(path) >= MARSHAL_DEPTH:
            return (f"the value at {_where(at)} is nested deeper than marshal's limit of "
                    f"{MARSHAL_DEPTH}")
        if t is dict:
            for k in v:
                if type(k) not in PLAIN:
                    return (f"a key of the dict at {_where(at)} has type {_name(type(k))}, "
                            "which marshal cannot encode")
        items = enumerate(v) if t is not dict else v.items()
        # Reversed, so the walk meets the values in the order marshal writes them.
        stack.extend((x, at + [k]) for k, x in reversed(list(items)))
    return None


def _where(at: list) -> str:
    """``at`` as the message shows it (built only for the value at fault)."""
    return _shown(pointer(at)) or "the top level"


def _name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _shown(where: str, most: int = 160) -> str:
    """``where`` cut in the middle past ``most`` characters (a path thousands of levels deep)."""
    return where if len(where) <= most else f"{where[:100]}…{where[-50:]}"
