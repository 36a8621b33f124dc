"""A sweep killed with SIGKILL mid-round resumes from its Optuna storage; nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import optuna
import pytest
from optuna.trial import TrialState

from sor.config import load_config
from sor.errors import ConfigError
from sweep.driver import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]

DRIVER = textwrap.dedent("""
    import os, signal, sys
    import optuna, ray
    from sor.config import load_config
    from sor.data.loader import load_snapshots
    from sweep.driver import run_sweep

    csv, storage, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kill_at:
        told = {"n": 0}
        tell = optuna.Study.tell
        def dying_tell(self, *args, **kwargs):
            told["n"] += 1
            if told["n"] == kill_at:  # die between ask and tell, mid-round
                os.kill(os.getpid(), signal.SIGKILL)
            return tell(self, *args, **kwargs)
        optuna.Study.tell = dying_tell
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    config = load_config(None, {"order.size": 2000, "search.trials": 20, "search.sampler": "random",
                                "search.trials_per_round": 4, "search.storage": storage,
                                "search.study_name": "crash",
                                "search.resume": True})
    result = run_sweep(ray.put(load_snapshots(csv)[0]), config, progress=False)
    print("DONE", result.trials_complete, result.trials_run_now)
""")


def run_driver(csv, storage, kill_at=0):
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(csv), storage, str(kill_at)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_killed_sweep_resumes_without_losing_or_repeating_trials(
    tmp_path, small_csv, local_ray, small_snaps
):
    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    crashed = run_driver(small_csv, storage, kill_at=7)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    study = optuna.load_study(study_name="crash", storage=storage)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 6 and TrialState.RUNNING in states

    resumed = run_driver(small_csv, storage)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "DONE 20 14" in resumed.stdout  # 14 more: the 2 abandoned ones again, 12 new

    study = optuna.load_study(study_name="crash", storage=storage)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 20
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]

    uninterrupted = run_sweep(
        local_ray.put(small_snaps),
        load_config(
            None,
            {
                "order.size": 2000,
                "search.trials": 20,
                "search.sampler": "random",
                "search.trials_per_round": 4,
            },
        ),
        progress=False,
    )
    as_set = lambda trials: sorted((tuple(sorted(t.params.items())), t.value) for t in trials)  # noqa: E731
    assert as_set(complete) == as_set(uninterrupted.study.trials)
    assert min(t.value for t in complete) == uninterrupted.best_value


def test_journal_file_storage_is_accepted(tmp_path, local_ray, small_snaps):
    journal = str(tmp_path / "sweep.log")
    config = load_config(
        None,
        {
            "order.size": 2000,
            "search.trials": 4,
            "search.sampler": "random",
            "search.storage": journal,
            "search.study_name": "j",
        },
    )
    first = run_sweep(local_ray.put(small_snaps), config, progress=False)
    assert os.path.getsize(journal) > 0 and first.trials_complete == 4
    config.search.trials = 6
    with pytest.raises(
        ConfigError, match=r"study 'j' in .*sweep.log already has 4 trials: pass --resume"
    ):
        run_sweep(local_ray.put(small_snaps), config, progress=False)
    config.search.resume = True
    again = run_sweep(local_ray.put(small_snaps), config, progress=False)
    assert again.trials_complete == 6 and again.trials_run_now == 2
