"""Where a sweep's Optuna study is stored, and the locks beside its file.

Light on purpose (Optuna is not imported here): `sor run` takes the study's lock and names its
file among the inputs it must not overwrite before anything slow is imported or started.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sor.config import Config
from sor.errors import ConfigError
from sor.files import FileLock, lock_file
from sor.redaction import redact_url

__all__ = ["beside_storage", "storage_file", "study_lock"]


def storage_file(url: str | None) -> Path | None:
    """The local file behind a storage: a journal file or an SQLite database; else None."""
    if url is None:
        return None
    if "://" not in url:
        return Path(url) if url.endswith((".log", ".jsonl")) else None
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///").split("?", 1)[0]
        return Path(path) if path and path != ":memory:" else None
    return None


@contextmanager
def beside_storage(config: Config, suffix: str, *, wait: bool) -> Iterator[FileLock | int | None]:
    """A lock file beside the storage's local file: the held lock, the holder's pid, or None
    (no local file, or its folder missing: opening the storage then says what is wrong)."""
    path = storage_file(config.search.storage)
    if path is None:
        yield None
        return
    try:
        lock = lock_file(path.with_name(f"{path.name}.{suffix}"), wait=wait)
    except OSError:
        yield None
        return
    try:
        yield lock
    finally:
        if isinstance(lock, FileLock):
            lock.release()


_running: dict[Path, int] = {}  # study locks this process holds, with their nesting depth


@contextmanager
def study_lock(config: Config) -> Iterator[None]:
    """Hold the configured study for one driver: a second live driver of the same stored study
    (same SQLite or journal file, same study name) is refused, naming its pid.

    Two drivers of one study would each take the other's running trials for abandoned ones
    and ask them again. Re-entrant within a process; no-op for in-memory and server storages.

    Raises:
        ConfigError: another process drives the study.
    """
    search = config.search
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", search.study_name)
    path = storage_file(search.storage)
    key = path.resolve() if path is not None else None
    if key is None or key in _running:
        if key is not None:
            _running[key] += 1
        try:
            yield
        finally:
            if key is not None:
                _running[key] -= 1
        return
    with beside_storage(config, f"{name}.run.lock", wait=False) as lock:
        if isinstance(lock, int):
            raise ConfigError(
                f"study {search.study_name!r} in {redact_url(search.storage)} is being run by "
                f"another sor process (pid {lock or 'unknown'}, lock {path}.{name}.run.lock): "
                "wait for it to finish or choose another --study-name"
            )
        _running[key] = 1
        try:
            yield
        finally:
            del _running[key]
