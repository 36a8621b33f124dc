"""Files written safely: whole or not at all, and locks that die with their process.

Every output goes to a temporary file in its own folder and is renamed into place
(`os.replace`, atomic on POSIX within one file system): a reader, a crash or a full disk never
sees half a file, and the file it replaces stays as it was until the new one is complete.
Locks are `fcntl.flock` locks: the kernel drops them when their process ends, however it ends,
so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Literal

__all__ = ["FileLock", "OutputWriteError", "atomic_write", "lock_file", "write_text"]


class OutputWriteError(Exception):
    """An output file could not be written (full disk, read-only folder, ...).

    The file it was to replace, if any, is left as it was; the message names the file.
    """

    def __init__(self, path: str | Path, exc: OSError) -> None:
        self.path = str(path)
        reason = exc.strerror or str(exc)
        super().__init__(f"cannot write {path}: {reason}; a previous file there is left as it was")


@contextmanager
def atomic_write(path: str | Path, mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on a clean exit, flush, sync and rename it to `path`.

    The temporary file is `.<name>.<random>.partial` in the same folder, so the rename never
    crosses file systems; it is removed if the block raises. A `path` that is a symbolic link
    is replaced by the new file: the link's target is never written.

    Args:
        path: the file to write.
        mode: "w" for text (UTF-8, no newline translation) or "wb" for bytes.

    Raises:
        OutputWriteError: the file could not be written; `path` is untouched.

    Example:
        >>> with atomic_write("runs/results.json") as f:
        ...     f.write(text)
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise OutputWriteError(path, exc) from exc
    try:
        f: IO[Any] = os.fdopen(fd, "wb")
        if mode == "w":
            f = io.TextIOWrapper(f, encoding="utf-8", newline="")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an output is readable like any other file
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise OutputWriteError(path, exc) from exc
    except BaseException:
        _remove(tmp)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically (see `atomic_write`); returns `path`."""
    with atomic_write(path) as f:
        f.write(text)
    return Path(path)


def _remove(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


class FileLock:
    """An exclusive `flock` on a lock file holding the owner's pid; see `lock_file`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    def release(self, *, remove: bool = True) -> None:
        """Unlock, and remove the lock file first if `remove` (while still holding the lock,
        so a waiting process never takes a lock on a file that is about to vanish)."""
        if self._fd < 0:
            return
        if remove:
            _remove_if_same(self.path, self._fd)
        os.close(self._fd)  # closing the last descriptor releases the flock
        self._fd = -1

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_file(path: str | Path, *, wait: bool = False) -> FileLock | int:
    """Take an exclusive lock on `path` (created if missing) and write this process's pid in it.

    Args:
        path: the lock file, e.g. `results.json.lock`.
        wait: block until the lock is free; otherwise return at once.

    Returns:
        The held `FileLock`, or, when another process holds the lock and `wait` is False, that
        process's pid as written in the file (0 if it has not written it yet).

    Raises:
        OSError: the lock file cannot be created or opened.
    """
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            return _holder(path)
        # The holder may have removed the file between our open and our lock: then the lock is
        # on a file nobody else will ever see, so open the path again.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return FileLock(path, fd)
        os.close(fd)


def _holder(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def _remove_if_same(path: Path, fd: int) -> None:
    try:
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    except FileNotFoundError:
        pass
