"""The package's public names: everything ``__all__`` lists resolves (``AsyncClient`` lazily),
and every error the client raises is exported, so ``from chunkring import *`` and ``except
chunkring.X`` reach all of them."""

from __future__ import annotations

import inspect

import chunkring
from chunkring import errors


def test_every_listed_name_resolves_and_star_import_gives_exactly_them():
    for name in chunkring.__all__:
        assert getattr(chunkring, name) is not None, name
    ns: dict = {}
    exec("from chunkring import *", ns)
    assert sorted(k for k in ns if k != "__builtins__") == sorted(chunkring.__all__)


def test_every_error_class_is_exported():
    ours = {name for name, obj in vars(errors).items()
            if inspect.isclass(obj) and issubclass(obj, chunkring.ChunkringError)
            and obj.__module__ == errors.__name__}
    assert "StateMismatch" in ours and "UnencodableSnapshot" in ours
    assert ours <= set(chunkring.__all__), sorted(ours - set(chunkring.__all__))
    for name in ours:
        assert getattr(chunkring, name) is getattr(errors, name)
