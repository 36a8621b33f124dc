"""Where Numba keeps sor's compiled kernels: one folder per version of the kernels' source.

Numba checks a cached kernel only against the source file that defines it, while sor's kernels
call one another across modules (a parent order's kernel compiles the solver, the draws, the
depth and the clean-up into itself). After an edit to a callee's module, the caller's cached
machine code would still hold the old callee and compute with it, silently. So the cache lives
in a folder named by a hash of every module that defines kernels (`KERNEL_MODULES`): a change
to any of them starts a fresh folder, and an unchanged checkout (or the same release on another
machine of a Ray cluster) finds its kernels compiled.

The folder is `$XDG_CACHE_HOME/sor/numba/<hash>` (`~/.cache/...` without it). A user who sets
`NUMBA_CACHE_DIR` keeps it, and with it the responsibility for clearing it after an upgrade; a
value sor set itself, inherited by a process on other sources, is recomputed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

__all__ = ["KERNEL_MODULES", "cache_dir", "configure", "kernel_digest"]

#: The modules, relative to the package, whose functions are compiled with Numba.
KERNEL_MODULES = (
    "evaluation/baselines_nb.py",
    "execution/cleanup_nb.py",
    "execution/depth_nb.py",
    "execution/passive.py",
    "routers/cont_kukanov.py",
    "routers/pcg64_nb.py",
    "routers/placement_nb.py",
    "routers/static_nb.py",
    "synth/csv_nb.py",
    "synth/engine.py",
    "synth/legacy_nb.py",
)
_PACKAGE = Path(__file__).resolve().parent
_KEPT = 4  # folders of other versions kept beside the current one's
_SET_HERE = "SOR_KERNEL_CACHE_DIR"  # the NUMBA_CACHE_DIR `configure` set, not the user


def kernel_digest(package: Path = _PACKAGE) -> str:
    """A hash of the kernel modules' bytes (16 hex digits)."""
    digest = hashlib.sha256()
    for name in KERNEL_MODULES:
        digest.update(name.encode())
        digest.update((package / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_dir(package: Path = _PACKAGE) -> Path:
    """The folder the kernels of the sources in `package` are cached in."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sor" / "numba" / kernel_digest(package)


def configure() -> None:
    """Point Numba's cache at `cache_dir()`, unless the user set `NUMBA_CACHE_DIR`.

    Set in the environment, so that every process this one starts (Ray's workers) uses the same
    folder, and in Numba's configuration when Numba is imported already. The value set here is
    also kept in `SOR_KERNEL_CACHE_DIR`, so that a process started later, perhaps on edited
    sources (a notebook that imported sor, then ran `sor` after an edit), tells it from a
    user's and computes its own. Old versions' folders beyond the most recent few are removed.
    """
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if chosen is not None and chosen != os.environ.get(_SET_HERE):
        return
    try:
        folder = cache_dir()
    except OSError:  # the sources cannot be read (a zipped install): Numba's default
        return
    os.environ["NUMBA_CACHE_DIR"] = os.environ[_SET_HERE] = str(folder)
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.config.CACHE_DIR = str(folder)
    if not folder.exists():
        _prune(folder.parent)


def _prune(parent: Path) -> None:
    """Remove all but the `_KEPT` most recently used version folders under `parent`."""
    try:
        versions = sorted(parent.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in versions[_KEPT:]:
        shutil.rmtree(old, ignore_errors=True)
