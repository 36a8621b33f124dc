"""What a stored study's trials were measured on: the data and the settings of the objective.

A study's trial values are comparable only if every trial ran the same objective on the same
snapshots. `sweep.driver` stores these fingerprints in the study's user attributes and refuses
to resume a study whose fingerprints differ from the run's, naming what changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from sor.config import Config
from sor.data.snapshots import Snapshots

__all__ = [
    "NOT_OBJECTIVE",
    "OBJECTIVE_SECTIONS",
    "config_changes",
    "config_fingerprint",
    "file_fingerprint",
    "same_data",
    "snapshots_fingerprint",
]

#: Config sections whose settings change a trial's value (data, window, fill rules, fees, router,
#: schedule). The search settings are left out: a resumed study runs more trials, possibly over
#: another range, of the same objective.
OBJECTIVE_SECTIONS = ("data", "window", "order", "venues", "router", "schedule")
#: Keys of those sections that do not change a trial's value: where the data file lies (its
#: content is fingerprinted instead) and the report-only settings.
NOT_OBJECTIVE = frozenset({"data.path", "schedule.twap_bucket_s", "schedule.bootstrap_samples"})
_CHUNK = 1 << 20


def config_fingerprint(config: Config) -> dict[str, Any]:
    """The settings that change a trial's value, as {dotted key: JSON value}, sorted by key."""
    dumped = config.model_dump(mode="json")
    flat: dict[str, Any] = {}
    for section in OBJECTIVE_SECTIONS:
        _flatten(dumped[section], section, flat)
    return {k: flat[k] for k in sorted(flat) if k not in NOT_OBJECTIVE}


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}", out)
    else:
        out[prefix] = value


def config_changes(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The keys whose values differ, each as "key (stored X, now Y)", sorted by key."""
    missing = object()
    changes = []
    for key in sorted(set(stored) | set(now)):
        before, after = stored.get(key, missing), now.get(key, missing)
        if before != after:
            shown = ["unset" if v is missing else repr(v) for v in (before, after)]
            changes.append(f"{key} (stored {shown[0]}, now {shown[1]})")
    return changes


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    """Size and BLAKE2b hash of a file's bytes, read in 1 MiB chunks.

    Returns:
        {"file": its name, "bytes": size, "blake2b": hex digest}; the name is shown in
        messages but never compared: the same bytes moved elsewhere are the same data.
    """
    path = Path(path)
    digest = hashlib.blake2b(digest_size=20)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"file": path.name, "bytes": size, "blake2b": digest.hexdigest()}


def snapshots_fingerprint(snaps: Snapshots) -> dict[str, Any]:
    """BLAKE2b hash of every snapshot array (name, dtype, shape and values) and the symbol.

    This is what the objective reads, however the snapshots were built (CSV, DBN or Kafka).

    Returns:
        {"snapshots": count, "blake2b": hex digest}.
    """
    digest = hashlib.blake2b(digest_size=20)
    for f in fields(snaps):
        value = getattr(snaps, f.name)
        digest.update(f.name.encode())
        if isinstance(value, np.ndarray):
            array = np.ascontiguousarray(value)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.data)  # the buffer itself: no copy of a large array
        else:
            digest.update(repr(value).encode())
    return {"snapshots": len(snaps), "blake2b": digest.hexdigest()}


def same_data(stored: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether two fingerprints (of files or of snapshots) describe the same data."""
    return {k: v for k, v in stored.items() if k != "file"} == {
        k: v for k, v in now.items() if k != "file"
    }
