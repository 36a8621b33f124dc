"""Atomic writes and flock locks (`sor.files`), with real files and real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sor.files import FileLock, OutputWriteError, atomic_write, lock_file, write_text

ROOT = Path(__file__).resolve().parents[2]


def test_a_failed_write_leaves_the_old_file_and_no_partial_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write("half of the new")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_link_is_replaced_not_followed(tmp_path):
    target = tmp_path / "data.csv"
    target.write_text("market data\n")
    link = tmp_path / "results.json"
    link.symlink_to(target)
    write_text(link, "{}\n")
    assert target.read_text() == "market data\n"
    assert not link.is_symlink() and link.read_text() == "{}\n"


def test_bytes_and_an_unwritable_folder(tmp_path):
    with atomic_write(tmp_path / "a.png", "wb") as f:
        f.write(b"\x89PNG")
    assert (tmp_path / "a.png").read_bytes() == b"\x89PNG"
    assert oct((tmp_path / "a.png").stat().st_mode & 0o777) == "0o644"
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputWriteError, match=r"cannot write .*file/x.json: Not a directory"):
        write_text(tmp_path / "file" / "x.json", "{}")


HOLDER = textwrap.dedent("""
    import sys
    from sor.files import lock_file
    lock = lock_file(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.readline()
""")


def test_a_lock_held_by_another_process_names_its_pid_and_dies_with_it(tmp_path):
    path = tmp_path / "results.json.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        assert lock_file(path) == holder.pid
    finally:
        holder.kill()
        holder.communicate()
    lock = lock_file(path)  # killed: the kernel dropped its lock, the file's pid is stale
    assert isinstance(lock, FileLock)
    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()
    assert not path.exists()


def test_a_second_lock_in_the_same_process_is_refused_until_released(tmp_path):
    path = tmp_path / "x.lock"
    first = lock_file(path)
    assert isinstance(first, FileLock)
    assert lock_file(path) == os.getpid()  # flock: another open of the file conflicts
    first.release()
    assert not path.exists()
    second = lock_file(path)
    assert isinstance(second, FileLock) and path.exists()
    second.release()
