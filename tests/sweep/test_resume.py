"""A sweep killed with SIGKILL mid-round resumes from its Optuna storage; nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sor.config import load_config
from sor.data.loader import load_snapshots
from sor.errors import ConfigError
from sor.synth.generate import generate
from sweep.driver import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]

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


def sweep_config(storage, **overrides):
    return load_config(
        None,
        {
            "order.size": 2000,
            "search.trials": 4,
            "search.sampler": "random",
            "search.storage": storage,
            "search.study_name": "guarded",
            **overrides,
        },
    )


def test_resume_on_other_data_or_settings_is_refused_naming_what_changed(
    tmp_path, small_csv, local_ray, small_snaps
):
    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    first = run_sweep(local_ray.put(small_snaps), sweep_config(storage), progress=False)
    assert first.trials_complete == 4
    fewer = load_snapshots(small_csv, end=int(small_snaps.ts[len(small_snaps) // 2]))[0]
    resume = {"search.resume": True, "search.trials": 6}
    with pytest.raises(ConfigError, match=r"measured on other data \(.*snapshots.*this run:"):
        run_sweep(local_ray.put(fewer), sweep_config(storage, **resume), progress=False)
    changed = sweep_config(storage, **resume, **{"order.size": 3000, "router.iterations": 7})
    with pytest.raises(ConfigError) as refused:
        run_sweep(local_ray.put(small_snaps), changed, progress=False)
    assert "measured with other settings: order.size (stored 2000, now 3000); " in str(
        refused.value
    )
    assert "router.iterations (stored 1000, now 7)" in str(refused.value)
    study = optuna.load_study(study_name="guarded", storage=storage)
    assert len(study.trials) == 4  # nothing ran under the refused settings

    # Settings that do not change a trial's value may differ: more trials, a report-only key.
    report_only = {**resume, "schedule.bootstrap_samples": 300, "search.sampler": "tpe"}
    again = run_sweep(
        local_ray.put(small_snaps), sweep_config(storage, **report_only), progress=False
    )
    assert again.trials_complete == 6 and again.trials_run_now == 2


def sor(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "sor", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_sor_run_resume_on_another_data_file_or_settings_is_refused(tmp_path, small_csv):
    stored, other = tmp_path / "stored.csv", tmp_path / "other.csv"
    stored.write_bytes(small_csv.read_bytes())
    generate(other, n_events=3000, schema="mbp-1", seed=4)
    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    sweep = ("--storage", storage, "--sampler", "random", "--num-cpus", 1, "--out", "r.json")
    first = sor("run", "--data", stored, "--trials", 2, *sweep, "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    results = (tmp_path / "r.json").read_bytes()

    resume = ("run", *sweep, "--resume", "--trials", 4)
    refused = sor(*resume, "--data", other, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    line = refused.stderr.strip()
    assert "\n" not in line and "cannot resume study 'sor'" in line
    assert "measured on other data (stored.csv, " in line and "this run: other.csv, " in line
    refused = sor(*resume, "--data", stored, "--set", "venues.fee=0.004", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "other settings: venues.fee (stored 0.003, now 0.004)" in refused.stderr
    assert len(optuna.load_study(study_name="sor", storage=storage).trials) == 2
    assert (tmp_path / "r.json").read_bytes() == results


OPENER = textwrap.dedent("""
    import sys
    from sor.config import load_config
    from sweep.driver import check_study

    config = load_config(None, {"search.storage": sys.argv[1], "search.study_name": "race"})
    print("ready", flush=True)
    sys.stdin.readline()  # every process opens the new database at once
    check_study(config)
    print("opened", flush=True)
""")


@pytest.mark.parametrize("attempt", range(3))
def test_processes_creating_one_new_sqlite_study_at_once_all_succeed(tmp_path, attempt):
    storage = f"sqlite:///{tmp_path / 'new.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, storage],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(4)
    ]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out == "opened\n", err[-3000:]
    assert len(optuna.get_all_study_names(storage)) == 1
