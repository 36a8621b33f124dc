"""A Ray worker killed mid-sweep: its trials are retried, the sweep finishes, nothing is lost."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from sor.config import load_config
from sweep.driver import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def busy_workers() -> list[int]:
    """pids of Ray worker processes running a trial batch (Ray names them after the task)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes().startswith(b"ray::evaluate_shared"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_killed_worker_trials_are_retried_and_the_sweep_finishes(local_ray, small_snaps):
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set() and len(killed) < 2:
            for pid in busy_workers():
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.005)

    config = load_config(
        None,
        {
            "order.size": 2000,
            "search.trials": 40,
            "search.sampler": "random",
            "search.trials_per_round": 8,
        },
    )
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        result = run_sweep(local_ray.put(small_snaps), config, progress=False)
    finally:
        stop.set()
        thread.join()
    assert killed, "no worker was caught running a trial batch"
    assert result.trials_complete + result.trials_failed == 40
    assert result.trials_complete == 40  # retried on a fresh worker (max_retries=2)
    reference = run_sweep(local_ray.put(small_snaps), config, progress=False)
    assert sorted(t.value for t in result.study.trials) == sorted(
        t.value for t in reference.study.trials
    )
