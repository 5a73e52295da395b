"""Op names: every op's name as the worker lists it (``OP_INFO``'s ``ops``, ``chunkring call
--ops``: ``echo``, ``md.render``, ``snap.push_fields``, ...), so a caller may pass a name
wherever an op code goes (``Client.call``, ``submit``, ``map``, ``submit_many``,
``pipeline``). The names follow from layout.md's constants: ``OP_MD_RENDER`` is
``md.render`` (the group, a dot, the rest, lower case); a control op has no group.
"""

from __future__ import annotations

from . import _layout as L

#: The op groups of layout.md §7 (the first word of a grouped op's constant).
_GROUPS = ("md", "snap", "log")


#: Op code → its layout.md constant's name (``OP_LOG_APPEND``), for error messages.
OP_CONSTANTS: dict[int, str] = {code: const for const, code in vars(L).items()
                                if const.startswith("OP_") and type(code) is int}


def _name(const: str) -> str:
    name = const[3:].lower()
    group, _, rest = name.partition("_")
    return f"{group}.{rest}" if group in _GROUPS and rest else name


#: Op name → op code, for every op layout.md defines.
OP_CODES: dict[str, int] = {_name(const): code for code, const in OP_CONSTANTS.items()}


def op_code(op) -> int:
    """The op code of ``op``: an int op code (0..0xFFFF) as it is, or an op's name
    (:data:`OP_CODES`) as its code; ``TypeError``/``ValueError`` naming ``op`` otherwise."""
    if type(op) is str:
        code = OP_CODES.get(op)
        if code is None:
            import difflib  # (only to explain the error)

            near = difflib.get_close_matches(op, OP_CODES, 3)
            hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            raise ValueError(f"unknown op name {op!r}{hint} (the names: chunkring call --ops)")
        return code
    if not isinstance(op, int) or isinstance(op, bool):
        raise TypeError(f"op must be an op code (int) or an op name (str), not "
                        f"{type(op).__name__}")
    if not 0 <= op <= 0xFFFF:
        raise ValueError(f"op must be an op code in 0..0xFFFF, not {op}")
    return op
