"""The wheel as a user gets it: built from this tree by maturin (``pip wheel .``), installed
into a fresh venv, and used from a folder outside the repository with no
``CHUNKRING_WORKER`` and no ``PYTHONPATH``: the client must find the worker the wheel put in
the venv's ``bin/``.

Cost: the build reuses the repository's ``target/`` (``CARGO_TARGET_DIR``), so after
``cargo build --release`` only the chunkring crate is recompiled (maturin strips the binary,
which changes its flags): about 30 s on 2 shared cores; a fresh venv and the install add a few
seconds. Uses the ``maturin`` installed next to this interpreter (ci/test.sh installs
``python/requirements-build.txt``), else pip's build isolation fetches it from PyPI.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def cargo_version() -> str:
    package = (REPO / "Cargo.toml").read_text().split("[package]")[1]
    return re.search(r'^version = "([^"]+)"', package, flags=re.M).group(1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    env = dict(os.environ, CARGO_TARGET_DIR=str(REPO / "target"))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [sys.executable, "-m", "pip", "wheel", str(REPO), "-w", str(out), "--no-deps",
           "--disable-pip-version-check", "--quiet"]
    if importlib.util.find_spec("maturin") is not None:
        cmd.append("--no-build-isolation")
    t0 = time.monotonic()
    build = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert build.returncode == 0, build.stdout + build.stderr
    print(f"pip wheel: {time.monotonic() - t0:.1f} s")
    (found,) = out.glob("chunkring-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--disable-pip-version-check", str(wheel)], check=True, timeout=300)
    return root


def run_outside(venv: Path, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """``argv`` (a program of the venv's ``bin/``, then its arguments) in ``tmp_path``, with an
    environment that knows nothing of this repository."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHUNKRING_WORKER", "PYTHONPATH", "VIRTUAL_ENV", "CARGO_TARGET_DIR")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    return subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_wheel_is_platform_tagged_and_ships_the_worker_the_types_and_the_sample(wheel):
    assert not wheel.name.endswith("-none-any.whl"), wheel.name
    assert re.search(r"-py3-none-(many)?linux\w*_(x86_64|aarch64)\.whl$", wheel.name), wheel.name
    names = set(zipfile.ZipFile(wheel).namelist())
    version = cargo_version()
    assert f"chunkring-{version}.data/scripts/chunkring" in names
    assert "chunkring/py.typed" in names
    assert "chunkring/sample/README.md" in names
    assert "chunkring/__main__.py" in names and "chunkring/_demo.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("chunkring/tests")]
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 1e3:.0f} kB")


def test_version_matches_cargo_toml_from_the_binary_and_the_package(venv, tmp_path):
    version = cargo_version()
    out = run_outside(venv, tmp_path, "chunkring", "--version")
    assert (out.returncode, out.stdout) == (0, f"chunkring {version} (layout 1)\n"), out.stderr
    out = run_outside(venv, tmp_path, "python", "-c", "import chunkring; print(chunkring.__version__)")
    assert out.stdout.strip() == version, out.stderr


def test_python_dash_m_chunkring_help_runs_the_bundled_worker(venv, tmp_path):
    out = run_outside(venv, tmp_path, "python", "-m", "chunkring", "--help")
    assert out.returncode == 0, out.stderr
    assert "usage: chunkring <command>" in out.stdout
    for command in ("serve", "inspect", "call", "demo", "bench"):
        assert f"\n  {command} " in out.stdout, command
    out = run_outside(venv, tmp_path, "python", "-m", "chunkring", "--find")
    assert out.stdout.strip() == str(venv / "bin" / "chunkring")


def test_import_and_echo_find_the_bundled_worker(venv, tmp_path):
    code = ("import chunkring\n"
            "print(chunkring.find_worker_bin())\n"
            "with chunkring.Client.spawn() as c:\n"
            "    assert c.echo(b'ping') == b'ping'\n"
            "    print(c.markdown.render('# hi').strip())\n")
    out = run_outside(venv, tmp_path, "python", "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == [str(venv / "bin" / "chunkring"), "<h1>hi</h1>"]


def test_chunkring_demo_runs_on_the_bundled_sample(venv, tmp_path):
    t0 = time.monotonic()
    out = run_outside(venv, tmp_path, "chunkring", "demo")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "every answer equal" in out.stdout
    assert "aggregate 6 files" in out.stdout and "same bytes" in out.stdout, out.stdout
    assert "history: 50 kept of 60" in out.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written without --out
    print(f"chunkring demo: {time.monotonic() - t0:.1f} s")


def test_pipe_mode_and_the_builtin_bench_work_from_the_wheel(venv, tmp_path):
    out = run_outside(venv, tmp_path, "chunkring", "call", "md.render", "--list", "--unlist")
    assert (out.returncode, out.stdout) == (0, ""), out.stderr  # stdin is not a terminal: empty
    out = subprocess.run([str(venv / "bin" / "chunkring"), "call", "md.render", "--list", "--unlist"],
                         input="*x*", capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.stdout == "<p><em>x</em></p>\n"
    out = run_outside(venv, tmp_path, "chunkring", "bench", "--help")
    assert "installed package: runs the built-in bench" in " ".join(out.stdout.split())
    out = run_outside(venv, tmp_path, "chunkring", "bench", "--quick")
    assert out.returncode == 0, out.stderr
    assert "pipelined" in out.stdout and "docs/s" in out.stdout


def test_the_sdist_holds_the_crate_and_the_package(tmp_path):
    if importlib.util.find_spec("maturin") is None:
        pytest.skip("maturin is not installed next to this interpreter (python/requirements-build.txt)")
    out = subprocess.run([sys.executable, "-m", "maturin", "sdist", "-o", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (sdist,) = tmp_path.glob("chunkring-*.tar.gz")
    import tarfile

    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for needed in ("pyproject.toml", "Cargo.toml", "Cargo.lock", "src/main.rs", "src/pipe.rs",
                   "layout.md", "python/chunkring/__init__.py", "python/chunkring/py.typed",
                   "python/chunkring/sample/README.md"):
        assert needed in names, needed
