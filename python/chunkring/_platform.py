"""The supported platforms, checked before a worker is spawned or attached.

chunkring runs on **Linux on x86-64 and aarch64**: the client parks and wakes through the
shared (non-private) futex of Linux (``_futex.py``, layout.md §11), and its ring fences are
those of these two architectures (``_barrier.py``, layout.md §10). Elsewhere the client could
only sleep-poll, which is slow in a way that looks like a bug, so :func:`check_platform`
refuses with :class:`~chunkring.errors.UnsupportedPlatform` instead. Setting
``CHUNKRING_ALLOW_UNSUPPORTED_PLATFORM=1`` lets an experiment go ahead anyway (a port to
macOS or Windows starts there; see the BRIEF's "How users get it").
"""

from __future__ import annotations

import os
import platform
import sys

from .errors import UnsupportedPlatform

__all__ = ["ALLOW_ENV", "SUPPORTED", "check_platform"]

#: The override: set to ``1`` to run on a platform that is not supported.
ALLOW_ENV = "CHUNKRING_ALLOW_UNSUPPORTED_PLATFORM"
#: What is supported, as a sentence for messages and docs.
SUPPORTED = "Linux on x86-64 and aarch64"
_MACHINES = {"x86_64", "amd64", "aarch64", "arm64"}


def check_platform() -> None:
    """Raise :class:`UnsupportedPlatform` unless this is Linux on x86-64 or aarch64 (or the
    override is set). Reads ``sys.platform`` and ``platform.machine()`` at each call."""
    system, machine = sys.platform, platform.machine()
    if system.startswith("linux") and machine.lower() in _MACHINES:
        return
    if os.environ.get(ALLOW_ENV) == "1":
        return
    raise UnsupportedPlatform(
        f"chunkring supports {SUPPORTED}; this is {system} on {machine or 'an unknown machine'} "
        f"(the futex wait and wake it parks on are Linux's, its fences those of x86-64 and "
        f"aarch64). Set {ALLOW_ENV}=1 to try it anyway: the client then sleep-polls"
    )
