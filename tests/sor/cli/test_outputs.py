"""Outputs as a user meets them: never over an input, checked before any work, written whole and
results JSON last, a closed stdout losing nothing, and one live run per results file."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from sor.cli.output import claim_outputs
from sor.cli.run import companions, write_outputs
from sor.config import load_config
from sor.files import lock_file
from sor.synth.generate import generate
from sweep.driver import SweepResult

ROOT = Path(__file__).resolve().parents[3]


def sor(*args, cwd=None, timeout=600, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if "stdout" not in kwargs:
        kwargs["capture_output"] = True
    return subprocess.run(
        [sys.executable, "-m", "sor", *map(str, args)],
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        **kwargs,
    )


def start_sor(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "sor", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def csv_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("outputs") / "data.csv"
    generate(path, n_events=3000, schema="mbp-1", seed=3)
    return path.read_bytes()


@pytest.fixture
def folder(tmp_path, csv_bytes):
    (tmp_path / "d.csv").write_bytes(csv_bytes)
    return tmp_path


def one_line_error(result, *parts):
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sor: error: "), result.stderr[-3000:]
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def setup_hard_link(folder):
    os.link(folder / "d.csv", folder / "hard.json")
    return ["backtest", "--data", "d.csv", "--out", "hard.json"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["backtest", "--data", "d.csv", "--out", "d.csv"], ["d.csv"]),
        (["backtest", "--data", "./sub/../d.csv", "--out", "d.csv"], ["./sub/../d.csv"]),
        (["backtest", "--data", "d.csv", "--out", "link.json"], ["link.json", "d.csv"]),
        (["run", "--data", "results_trials.csv", "--trials", 2], ["results_trials.csv"]),
        (["run", "--data", "x_venue_shares.png", "--out", "x.json"], ["x_venue_shares.png"]),
        (["backtest", "--data", "d.csv", "--config", "c.yaml", "--out", "c.yaml"], ["c.yaml"]),
        (
            ["run", "--data", "d.csv", "--storage", "sqlite:///s.json", "--out", "s.json"],
            ["s.json"],
        ),
        ("hard link", ["hard.json", "d.csv"]),
    ],
)
def test_an_output_that_is_an_input_is_refused_before_any_work(folder, args, named):
    (folder / "sub").mkdir()
    (folder / "link.json").symlink_to("d.csv")
    for copy in ("results_trials.csv", "x_venue_shares.png"):
        (folder / copy).write_bytes((folder / "d.csv").read_bytes())
    (folder / "c.yaml").write_text("order:\n  size: 2000\n")
    if args == "hard link":
        args = setup_hard_link(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    result = sor(*args, "-q", cwd=folder, timeout=120)
    line = one_line_error(result, "would overwrite the", *named)
    assert "choose another --out" in line
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert after == before  # nothing written, no lock left behind


@pytest.mark.parametrize("out", ["/", "{folder}", "{folder}/"])
def test_a_folder_as_out_is_refused(folder, out):
    result = sor("backtest", "--data", "d.csv", "--out", out.format(folder=folder), cwd=folder)
    one_line_error(result, "is a folder; give the results file")


@pytest.mark.ray
def test_an_unwritable_out_folder_is_refused_before_any_work(folder):
    (folder / "blocker").write_text("a file where a folder should be\n")
    run = sor("run", "--data", "d.csv", "--trials", 2, "--out", "blocker/r.json", cwd=folder)
    one_line_error(run, "blocker/r.json", "cannot write in the folder blocker")
    assert "Ray" not in run.stderr and "Kafka" not in run.stderr  # nothing was started
    backtest = sor("backtest", "--data", "d.csv", "--out", "/proc/x/r.json", cwd=folder)
    one_line_error(backtest, "cannot write in the folder /proc/x")


def closed_stdout(*args, cwd):
    """Run sor with a stdout pipe whose reader has already gone (`sor ... | true`)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return sor(*args, cwd=cwd, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)


def test_a_closed_stdout_loses_no_backtest_results(folder):
    result = closed_stdout("backtest", "--data", "d.csv", "--out", "r.json", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert json.loads((folder / "r.json").read_text())["best_parameters"]


@pytest.mark.ray
@pytest.mark.slow
def test_a_closed_stdout_loses_no_run_results(folder):
    args = ("run", "--data", "d.csv", "--trials", 4, "--sampler", "random", "--num-cpus", 1)
    result = closed_stdout(*args, "--out", "r.json", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert json.loads((folder / "r.json").read_text())["sweep"]["trials_complete"] == 4
    assert len((folder / "r_trials.csv").read_text().splitlines()) == 1 + 4


def limit_file_size(limit):
    """preexec_fn: no file of this process may grow past `limit` bytes, as on a full disk."""

    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_leaves_the_previous_results_whole(folder):
    old = json.dumps({"previous": "run"}) + "\n"
    (folder / "r.json").write_text(old)
    result = sor(
        "backtest",
        "--data",
        "d.csv",
        "--out",
        "r.json",
        "-q",
        cwd=folder,
        preexec_fn=limit_file_size(2048),  # the results JSON is about 6 kB
    )
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write r.json: File too large" in lines[0], result.stderr
    assert (folder / "r.json").read_text() == old
    assert sorted(p.name for p in folder.iterdir()) == ["d.csv", "r.json"]  # no partial file


def small_sweep(config):
    """A finished in-memory study over the configured space, as `run_sweep` returns it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    study.optimize(lambda t: t.suggest_float("lambda_under", 0.0, 0.1), n_trials=3)
    best = study.best_trial
    return SweepResult(
        best_params={**config.params.model_dump(), **best.params},
        best_value=float(best.value),
        trials_complete=3,
        trials_failed=0,
        trials_run_now=3,
        wall_s=1.0,
        workers=1,
        study=study,
    )


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("interrupted", [True, False])
def test_the_report_never_leaves_old_and_new_outputs_together(folder, monkeypatch, interrupted):
    import sor.cli.run as run_module

    out = folder / "results.json"
    config = load_config(None, {"order.size": 2000, "output.out": str(out)})
    old_files = [out, *companions(out)]
    for path in old_files:
        path.write_text("old\n")
    result = small_sweep(config)
    report = {"best_parameters": result.best_params, "note": "new"}
    if interrupted:

        def interrupt(*args):
            raise Interrupted

        monkeypatch.setattr(run_module, "write_visual_report", interrupt)
    else:
        monkeypatch.setattr(run_module, "write_visual_report", lambda *args: None)
    with claim_outputs(out, companions=companions(out), inputs={}) as outputs:
        if interrupted:
            with pytest.raises(Interrupted):
                write_outputs(outputs, None, config, result, report)
        else:
            write_outputs(outputs, None, config, result, report)
    left = {
        p.name: p.read_text() for p in folder.iterdir() if p.suffix != ".csv" or "trials" in p.name
    }
    assert "old\n" not in left.values()  # no old file beside new ones
    trials = left.pop("results_trials.csv")  # the companion written before the interruption
    assert len(trials.splitlines()) == 1 + 3
    assert left == ({} if interrupted else {"results.json": json.dumps(report, indent=2) + "\n"})


def wait_for_lock(path, pid, proc):
    """Wait until `proc` has taken the lock at `path` (it writes its pid there)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sor exited without taking {path}: {proc.communicate()[1][-3000:]}")
        try:
            if path.read_text().strip() == str(pid):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    pytest.fail(f"{path} never held pid {pid}")


@pytest.mark.ray
@pytest.mark.slow
def test_a_second_live_run_on_the_same_results_or_study_is_refused(folder):
    sweep = ("--trials", 4, "--sampler", "random", "--num-cpus", 1, "--storage", "sqlite:///s.db")
    # Hold the study's open lock, so the first run stops right after claiming its outputs and
    # its study, before it streams anything: the second run then meets a live first run.
    held = lock_file(folder / "s.db.open.lock")
    first = start_sor("run", "--data", "d.csv", *sweep, "--out", "r.json", "-q", cwd=folder)
    try:
        wait_for_lock(folder / "r.json.lock", first.pid, first)
        wait_for_lock(folder / "s.db.sor.run.lock", first.pid, first)
        same_out = sor("run", "--data", "d.csv", *sweep, "--out", "r.json", cwd=folder)
        one_line_error(same_out, f"(pid {first.pid})", "r.json.lock", "writing these results")
        same_study = sor("run", "--data", "d.csv", *sweep, "--out", "other.json", cwd=folder)
        one_line_error(same_study, f"pid {first.pid}", "study 'sor'", "being run by another")
    finally:
        held.release()
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-3000:]
    assert json.loads((folder / "r.json").read_text())["sweep"]["trials_complete"] == 4
    assert not (folder / "r.json.lock").exists() and not (folder / "other.json").exists()


def test_a_killed_runs_lock_does_not_block_the_next_run(folder):
    held = lock_file(folder / "s.db.open.lock")
    try:
        first = start_sor(
            "run", "--data", "d.csv", "--storage", "sqlite:///s.db", "--out", "r.json", cwd=folder
        )
        wait_for_lock(folder / "r.json.lock", first.pid, first)
        first.send_signal(signal.SIGKILL)
        first.communicate()
    finally:
        held.release()
    assert (folder / "r.json.lock").read_text().strip() == str(first.pid)  # left behind ...
    again = sor("backtest", "--data", "d.csv", "--out", "r.json", "-q", cwd=folder)
    assert again.returncode == 0, again.stderr  # ... but not held by anyone
    assert json.loads((folder / "r.json").read_text())["best_parameters"]
