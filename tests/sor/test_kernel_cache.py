"""Compiled kernels are cached per version of every kernel module's source (sor.kernel_cache)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import sor
from sor.kernel_cache import KERNEL_MODULES, cache_dir, kernel_digest

PACKAGE = Path(sor.__file__).resolve().parent


def test_every_module_that_compiles_with_numba_is_a_kernel_module():
    uses_numba = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if re.search(r"^(from numba import|import numba)", path.read_text(), re.MULTILINE)
    }
    assert uses_numba == set(KERNEL_MODULES)


def test_an_edit_to_any_kernel_module_moves_the_cache(tmp_path):
    package = tmp_path / "sor"
    for name in KERNEL_MODULES:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACKAGE / name, package / name)
    original = kernel_digest(package)
    assert original == kernel_digest(PACKAGE)
    for name in KERNEL_MODULES:
        source = (package / name).read_bytes()
        (package / name).write_bytes(source + b"\n# edited\n")
        assert kernel_digest(package) != original, name
        (package / name).write_bytes(source)
    assert kernel_digest(package) == original


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "SOR_KERNEL_CACHE_DIR")
    }
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def where_numba_caches(env: dict[str, str]) -> str:
    code = "import sor.routers.pcg64_nb, numba, os; print(numba.config.CACHE_DIR)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def test_the_cache_folder_is_the_sources_and_a_users_choice_is_kept(tmp_path):
    env = clean_env(tmp_path)
    expected = tmp_path / "cache" / "sor" / "numba" / kernel_digest()
    assert where_numba_caches(env) == str(expected)
    assert cache_dir().name == expected.name
    mine = str(tmp_path / "mine")
    assert where_numba_caches({**env, "NUMBA_CACHE_DIR": mine}) == mine


def test_old_versions_folders_are_pruned(tmp_path):
    env = clean_env(tmp_path)
    versions = tmp_path / "cache" / "sor" / "numba"
    for i in range(7):
        (versions / f"old{i}").mkdir(parents=True)
        os.utime(versions / f"old{i}", (1_000_000 + i, 1_000_000 + i))
    where_numba_caches(env)
    left = {p.name for p in versions.iterdir()}
    assert left == {kernel_digest(), "old3", "old4", "old5", "old6"}  # the newest four kept


def test_a_folder_sor_set_for_other_sources_is_not_taken_for_a_users(tmp_path):
    # A parent process that imported sor before an edit passes its folder on; the child, on the
    # edited sources, computes its own rather than keep the parent's as if a user had chosen it.
    env = clean_env(tmp_path)
    stale = str(tmp_path / "cache" / "sor" / "numba" / "0123456789abcdef")
    env["NUMBA_CACHE_DIR"] = env["SOR_KERNEL_CACHE_DIR"] = stale
    expected = tmp_path / "cache" / "sor" / "numba" / kernel_digest()
    assert where_numba_caches(env) == str(expected)
