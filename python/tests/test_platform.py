"""Unsupported platforms are refused with a clear error, not served by a silent slow path.

chunkring supports Linux on x86-64 and aarch64 (``_platform.py``); ``Client.spawn`` and
``Client.attach`` check before starting or attaching anything. The other platforms are
simulated by monkeypatching ``sys.platform`` and ``platform.machine``.
"""

from __future__ import annotations

import platform
import sys

import pytest

from chunkring import Client, UnsupportedPlatform
from chunkring._platform import ALLOW_ENV, check_platform


@pytest.mark.parametrize("system, machine", [
    ("darwin", "arm64"), ("win32", "AMD64"), ("linux", "armv7l"), ("linux", "riscv64"),
    ("freebsd14", "x86_64"), ("linux", ""),
])
def test_spawn_and_attach_refuse_an_unsupported_platform(monkeypatch, system, machine):
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.setattr(sys, "platform", system)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    for start in (lambda: Client.spawn(worker="/nonexistent/chunkring"),
                  lambda: Client.attach("never-created")):
        with pytest.raises(UnsupportedPlatform) as e:
            start()
        message = str(e.value)
        assert "Linux on x86-64 and aarch64" in message and system in message, message
        assert ALLOW_ENV in message
        assert isinstance(e.value, OSError)


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_linux_on_x86_64_and_aarch64_is_supported(monkeypatch, machine):
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(platform, "machine", lambda: machine)
    check_platform()


def test_the_override_lets_an_experiment_through(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    monkeypatch.setenv(ALLOW_ENV, "1")
    check_platform()
    monkeypatch.setenv(ALLOW_ENV, "yes")
    with pytest.raises(UnsupportedPlatform):
        check_platform()


def test_this_machine_passes_the_check_and_serves(client):
    check_platform()
    assert client.echo(b"here") == b"here"
