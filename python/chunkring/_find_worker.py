"""Locate the ``chunkring`` worker binary (after ruff's ``_find_ruff.py``).

The wheel (maturin ``bindings = "bin"``) installs the binary as the ``chunkring`` script of
the environment the package is installed into, so the search starts there.
Search order, first hit wins:

1. the ``CHUNKRING_WORKER`` environment variable (a path; when set it must name an
   executable file, else ``WorkerNotFound`` at once);
2. the scripts folder that belongs to the site-packages holding this package: a venv's
   ``bin/``, ``~/.local/bin`` for ``pip install --user``, ``<prefix>/bin`` for
   ``pip install --prefix``, ``<target>/bin`` for ``pip install --target``. Only the
   environment this copy of the package was installed into counts, so a source checkout
   never picks up a binary some other install left in the running venv;
3. every cargo ``target`` folder found walking up from the package: ``target/release`` then
   ``target/debug`` (a source checkout after ``cargo build``);
4. ``PATH``.

Nothing found: :class:`~chunkring.errors.WorkerNotFound` listing every place tried.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from .errors import WorkerNotFound

ENV_VAR = "CHUNKRING_WORKER"
BINARY = "chunkring" + (sysconfig.get_config_var("EXE") or "")


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _user_scheme() -> str:
    if sys.version_info >= (3, 10):
        return sysconfig.get_preferred_scheme("user")
    return "nt_user" if os.name == "nt" else "posix_user"


def _install_scripts_dirs(package_dir: Path) -> list[Path]:
    """The scripts folders of the installs whose site-packages hold ``package_dir``."""
    site = package_dir.parent
    dirs: list[Path] = []
    # Every scheme this interpreter knows: its own (a venv), the base interpreter's, the user's.
    schemes = [
        (None, None),
        (None, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}),
        (_user_scheme(), None),
    ]
    for scheme, scheme_vars in schemes:
        kwargs = {"vars": scheme_vars} if scheme_vars else {}
        if scheme:
            kwargs["scheme"] = scheme
        libs = {sysconfig.get_path(key, **kwargs) for key in ("purelib", "platlib")}
        if any(lib and Path(lib).resolve() == site for lib in libs):
            dirs.append(Path(sysconfig.get_path("scripts", **kwargs)))
    # `pip install --prefix P`: P/lib/pythonX.Y/site-packages/chunkring -> P/bin.
    if site.name in ("site-packages", "dist-packages") and site.parent.name.startswith("python"):
        dirs.append(site.parent.parent.parent / "bin")
    # `pip install --target T`: T/chunkring -> T/bin.
    dirs.append(site / "bin")
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def find_worker_bin() -> str:
    """Return the path of the ``chunkring`` binary, or raise ``WorkerNotFound``."""
    tried: list[str] = []

    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env)
        if _is_executable(path):
            return str(path)
        # An explicit override that is wrong is an error, not a hint to look elsewhere.
        raise WorkerNotFound(f"${ENV_VAR} is set to {env}, which is not an executable file")
    tried.append(f"${ENV_VAR} (not set)")

    package_dir = Path(__file__).resolve().parent
    for scripts in _install_scripts_dirs(package_dir):
        candidate = scripts / BINARY
        if _is_executable(candidate):
            return str(candidate)
        tried.append(str(candidate))

    found_target = False
    for parent in package_dir.parents:
        target = parent / "target"
        if not target.is_dir():
            continue
        found_target = True
        for profile in ("release", "debug"):
            candidate = target / profile / BINARY
            if _is_executable(candidate):
                return str(candidate)
            tried.append(str(candidate))
    if not found_target:
        tried.append(f"a cargo target/ folder in any parent of {package_dir}")

    on_path = shutil.which(BINARY)
    if on_path:
        return on_path
    tried.append(f"{BINARY} on PATH")

    raise WorkerNotFound(
        "could not find the chunkring worker binary; tried:\n  - "
        + "\n  - ".join(tried)
        + "\ninstall the package with its worker (pip install chunkring, or pip install . in a"
        " checkout), build it with cargo build --release, or set " + ENV_VAR
    )
