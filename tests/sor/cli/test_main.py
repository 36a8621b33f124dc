"""The command line as a user runs it: exit codes, one-line errors, the whole `sor run` job."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sor.synth.generate import generate


def sor(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "sor", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def multi_venue_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "venues.csv"
    generate(path, n_events=4000, schema="mbp-10", seed=11)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "--data", "nope.csv"], "nope.csv: no such file"),
        (["backtest", "--data", "x.csv", "--set", "order.sise=5"], "unknown key 'order.sise'"),
        (["backtest"], "sor backtest needs --data PATH"),
        (["run", "--data", "nope.csv", "--trials", "0"], "search.trials: Input should be greater"),
        (["generate", "/nonexistent/dir/g.csv"], "directory /nonexistent/dir does not exist"),
        (["generate", "g.csv", "--rows", "0"], "--rows must be at least 1, but got 0"),
        (["generate", "g.csv", "--days", "0"], "--days must be at least 1, but got 0"),
        (["generate", "g.csv", "--rows", "2", "--days", "3"], "--rows must be at least --days"),
        (["generate", "g.csv", "--profile", "nyse"], "invalid choice: 'nyse'"),
        (["generate", "."], ".: exists; pass --force to overwrite it"),
        (["backtest", "--data", "."], ".: is a folder, not a data file"),
        (["run", "--data", ".", "--trials", "2"], ".: is a folder, not a data file"),
        (
            ["run", "--storage", "sqlite:////nonexistent/dir/x.db", "--trials", "2"],
            "search.storage 'sqlite:////nonexistent/dir/x.db': cannot open it",
        ),
        (
            ["run", "--ray-address", "127.0.0.1:1", "--trials", "2"],
            "cannot reach Ray at 127.0.0.1:1",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message):
    result = sor(*args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_has_examples():
    for command in ("backtest", "run", "produce", "broker", "generate"):
        result = sor(command, "--help", timeout=60)
        assert result.returncode == 0 and "example" in result.stdout


def test_backtest_writes_the_task_json(multi_venue_csv, tmp_path):
    out = tmp_path / "bt.json"
    result = sor(
        "backtest",
        "--data",
        multi_venue_csv,
        "--out",
        out,
        "--lambda-over",
        0.01,
        "--lambda-under",
        0.02,
        "--theta-queue",
        0.0,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert json.loads(result.stdout) == report  # printed, as the task does, and saved
    assert report["best_parameters"] == {
        "lambda_over": 0.01,
        "lambda_under": 0.02,
        "theta_queue": 0.0,
    }
    strategies = {"optimized": report["optimized"], **report["baselines"]}
    assert set(report["baselines"]) == {"best_ask", "twap", "vwap"}
    assert set(report["savings_vs_baselines_bps"]) == {"best_ask", "twap", "vwap"}
    for result_ in strategies.values():
        assert result_["filled_shares"] + result_["unfilled_shares"] == 5000
        assert result_["avg_fill_px"] * result_["filled_shares"] == pytest.approx(
            result_["total_cash"], rel=1e-12
        )
    assert len(report["data"]["venues"]) == 5 and report["data"]["snapshots"] > 3000


@pytest.mark.kafka
@pytest.mark.ray
@pytest.mark.slow
def test_run_end_to_end_matches_backtest_of_the_best_parameters(multi_venue_csv, tmp_path):
    out = tmp_path / "run" / "results.json"
    result = sor(
        "run",
        "--data",
        multi_venue_csv,
        "--trials",
        8,
        "--sampler",
        "random",
        "--num-cpus",
        2,
        "--out",
        out,
        "-q",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ""  # -q: nothing but errors; the results are in the files
    report = json.loads(out.read_text())
    trials_csv = out.with_name("results_trials.csv").read_text().splitlines()
    assert len(trials_csv) == 1 + 8
    assert report["sweep"]["trials_complete"] == 8 and report["sweep"]["trials_failed"] == 0
    assert report["stream"]["consume"]["events"] == report["data"]["snapshots"]
    page = out.with_name("results_report.html").read_text()
    for png in (
        "results_fill_path.png",
        "results_venue_shares.png",
        "results_optimization_history.png",
    ):
        assert out.with_name(png).stat().st_size > 1000 and f'src="{png}"' in page

    best = report["best_parameters"]
    bt_out = tmp_path / "bt.json"
    backtest = sor(
        "backtest",
        "--data",
        multi_venue_csv,
        "--out",
        bt_out,
        "-q",
        "--lambda-over",
        repr(best["lambda_over"]),
        "--lambda-under",
        repr(best["lambda_under"]),
        "--theta-queue",
        repr(best["theta_queue"]),
    )
    assert backtest.returncode == 0, backtest.stderr
    direct = json.loads(bt_out.read_text())
    assert direct["baselines"] == report["baselines"]
    assert direct["optimized"] == report["optimized"]
    assert direct["savings_vs_baselines_bps"] == report["savings_vs_baselines_bps"]
    # the reported best is no worse than any trial
    values = [float(line.split(",")[1]) for line in trials_csv[1:]]
    assert report["optimized"]["completed_cash"] == pytest.approx(min(values), rel=1e-12)


def test_summary_table_goes_to_stderr_unless_quiet(multi_venue_csv, tmp_path):
    loud = sor("backtest", "--data", multi_venue_csv, "--out", tmp_path / "a.json")
    quiet = sor("backtest", "--data", multi_venue_csv, "--out", tmp_path / "b.json", "-q")
    assert loud.returncode == quiet.returncode == 0
    report = json.loads(loud.stdout)
    assert "strategy" in loud.stderr and "savings bps" in loud.stderr
    assert "savings: in sample, 1 parent order (tuned on the same data)" in loud.stderr
    assert report["measured_on"] == "in_sample"
    # generated data says so, in the JSON and at the top of the summary
    assert report["data"]["generated"] is True and report["data"]["symbol"] == "SYNTH-AAPL"
    assert "Smart order router results — SYNTH-AAPL, 2024-08-01 (generated data)" in loud.stderr
    assert "at the parameters given: one number per baseline, no interval" in loud.stderr
    twap = f"{report['savings_vs_baselines_bps']['twap']:+.3f}"
    assert twap in loud.stderr
    assert quiet.stdout == "" and quiet.stderr == ""


@pytest.fixture(scope="module")
def longer_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "longer.csv"
    generate(path, n_events=20_000, schema="mbp-10", seed=12)
    return path


@pytest.mark.ray
@pytest.mark.slow
def test_run_cont_kukanov_schedule_end_to_end(longer_csv, tmp_path):
    out = tmp_path / "ck" / "results.json"
    schedule = ["--set", "schedule.interval_s=10", "--set", "schedule.horizon_s=20",
                "--set", "schedule.twap_bucket_s=5", "--set", "router.iterations=300"]  # fmt: skip
    result = sor(
        "run", "--data", longer_csv, "--allocator", "cont_kukanov", "--schedule",
        "--trials", 6, "--sampler", "random", "--num-cpus", 2, "--out", out, "-q", *schedule,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["best_parameters"]) == {
        "lambda_over", "lambda_under", "theta_queue", "horizon_s"
    }  # fmt: skip
    assert report["allocator"] == "cont_kukanov"
    assert report["sweep"]["objective"] == "mean_in_sample_shortfall_bps"
    for part in ("in_sample", "out_of_sample"):
        for name in ("best_ask", "twap", "vwap"):
            s = report[part]["savings_bps"][name]
            assert s["n"] >= 2 and len(s["ci95"]) == 2
    assert 0 <= report["fills"]["passive_share"] <= 1
    page = out.with_name("results_report.html").read_text()
    png = "results_savings_distribution.png"
    assert out.with_name(png).stat().st_size > 1000 and f'src="{png}"' in page
    mean = report["out_of_sample"]["savings_bps"]["twap"]["mean"]
    assert 'id="walk-forward"' in page
    assert f'data-key="out_of_sample.savings_bps.twap.mean" data-value="{mean!r}"' in page
    # the best value is the least trial value, and `sor backtest` at the best parameters agrees
    values = [float(line.split(",")[1]) for line in
              out.with_name("results_trials.csv").read_text().splitlines()[1:]]  # fmt: skip
    assert report["sweep"]["best_value"] == pytest.approx(min(values), rel=1e-12)
    best = report["best_parameters"]
    bt_out = tmp_path / "bt.json"
    backtest = sor(
        "backtest", "--data", longer_csv, "--allocator", "cont_kukanov", "--schedule",
        "--out", bt_out, "-q", *schedule,
        *(x for k, v in best.items() for x in (f"--{k.replace('_', '-')}", repr(v))),
    )  # fmt: skip
    assert backtest.returncode == 0, backtest.stderr[-3000:]
    direct = json.loads(bt_out.read_text())
    for key in ("optimized", "baselines", "savings_vs_baselines_bps", "in_sample", "fills"):
        assert direct[key] == report[key], key


def test_a_book_without_asks_is_refused_not_a_nan_traceback(tmp_path):
    from tests.csvdata import row, write_csv

    path = write_csv(tmp_path / "bids.csv", [row(t, 2, 10.0, "", 300, 0, seq=t) for t in range(3)])
    for command in ("backtest", "run"):
        extra = ["--trials", 2] if command == "run" else []
        result = sor(command, "--data", path, *extra, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert f"{path}: no row in the window shows an ask" in result.stderr


def test_backtest_warns_about_numbers_that_are_easy_to_misread(tmp_path):
    from tests.csvdata import row, write_csv

    # asks of 100 shares in all: nearly all of a 5,000-share order goes to the clean-up order
    path = write_csv(
        tmp_path / "thin.csv", [row(t, 2, 10.0, 10.01, 300, 100, seq=t) for t in range(3)]
    )
    out = tmp_path / "thin.json"
    result = sor("backtest", "--data", path, "--out", out)
    assert result.returncode == 0, result.stderr
    notes = json.loads(out.read_text())["warnings"]
    assert any(
        "optimized left 98% of its shares (4,900 of 5,000) to the clean-up" in n for n in notes
    )
    assert any("no trade rows" in n for n in notes)
    assert "  warning: optimized left 98% of its shares" in result.stderr  # one per line
    quiet = sor("backtest", "--data", path, "--out", tmp_path / "quiet.json", "-q")
    assert "warning: optimized left 98% of its shares" in quiet.stderr  # logged even with -q
    assert "strategy" not in quiet.stderr
    report = json.loads(out.read_text())
    assert report["optimized"]["cleanup_share"] == pytest.approx(0.98)
    assert report["optimized"]["cleanup_impact_shares"] == 4_900  # no data after the window


def test_a_data_warning_is_one_log_line_not_a_python_warning(tmp_path):
    """The loader's notes about data it keeps or repairs (here a repeated row in a file without a
    sequence column) reach the terminal as one log line, not as Python's `UserWarning` with the
    loader's file, line and source."""
    from tests.csvdata import HEADER, row, write_csv

    k = HEADER.split(",").index("sequence")
    drop = lambda text: ",".join(c for i, c in enumerate(text.split(",")) if i != k)  # noqa: E731
    trade = row(5, 2, 10.0, 10.02, 300, 200, action="T", side="B", price=10.02, size=50)
    lines = [row(0, 2, 10.0, 10.02, 300, 200), trade, trade, row(9, 9, 10.0, 10.03, 100, 100)]
    path = write_csv(tmp_path / "noseq.csv", [drop(line) for line in lines], header=drop(HEADER))
    result = sor("backtest", "--data", path, "--out", tmp_path / "b.json", "--set",
                 "order.size=100")  # fmt: skip
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "repeat an earlier row" in line]
    assert len(said) == 1 and " sor: warning: " in said[0], result.stderr
    assert said[0].endswith("they are kept (a repeated trade counts twice in the traded volume)")
    assert "UserWarning" not in result.stderr and "loader.py" not in result.stderr
    quiet = sor("backtest", "--data", path, "--out", tmp_path / "q.json", "--set",
                "order.size=100", "-q")  # fmt: skip
    assert quiet.returncode == 0 and "repeat an earlier row" not in quiet.stderr
    # the results keep the warning, however quiet the terminal
    for out in ("b.json", "q.json"):
        notes = json.loads((tmp_path / out).read_text())["warnings"]
        assert [n for n in notes if n.startswith("1 row of the data repeats an earlier row")]


def test_each_subcommand_shows_only_its_own_flags():
    from sor.cli.main import build_parser

    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    flags = {
        name: {o for a in p._actions for o in a.option_strings} for name, p in subcommands.items()
    }
    assert not {"--out", "--allocator", "--schedule"} & flags["produce"]
    assert {"--data", "--bootstrap", "--speed"} <= flags["produce"]
    assert {"--out", "--allocator", "--schedule", "--lambda-over"} <= flags["backtest"]
    assert {"--out", "--allocator", "--trials", "--bootstrap"} <= flags["run"]


def test_generate_defaults_to_the_calibrated_profile_and_keeps_legacy(tmp_path):
    from sor.cli.main import build_parser
    from sor.synth.profiles import DEFAULT_PROFILE, PROFILE_NAMES, write

    action = next(
        a
        for p in build_parser()._subparsers._group_actions[0].choices.values()
        for a in p._actions
        if a.dest == "profile"
    )
    assert action.default == DEFAULT_PROFILE == "taq-2018"
    assert list(action.choices) == list(PROFILE_NAMES)
    default, calibrated, legacy = tmp_path / "d.csv", tmp_path / "c.csv", tmp_path / "l.csv"
    assert sor("generate", default, "--rows", 500, "-q").returncode == 0
    write(calibrated, profile="taq-2018", rows=500, seed=0)
    assert default.read_bytes() == calibrated.read_bytes()
    assert sor("generate", legacy, "--rows", 500, "--profile", "legacy", "-q").returncode == 0
    generate(calibrated, n_events=500, schema="mbp-10", seed=0)  # the legacy market, unchanged
    assert legacy.read_bytes() == calibrated.read_bytes()


def test_generate_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("keep me")
    refused = sor("generate", path, "--rows", "10")
    assert refused.returncode == 2 and "pass --force" in refused.stderr
    assert path.read_text() == "keep me"
    assert sor("generate", path, "--rows", "10", "--force").returncode == 0
    assert path.read_text().startswith("ts_recv")


def test_a_bundled_data_set_made_before_the_generated_mark_is_made_again(tmp_path, monkeypatch):
    from sor.cli.run import DEFAULT_DATA, default_data
    from sor.synth.profiles import TAQ_2018, write

    monkeypatch.chdir(tmp_path)
    DEFAULT_DATA.parent.mkdir(parents=True)
    write(DEFAULT_DATA, profile="taq-2018", rows=200, seed=0)
    old = DEFAULT_DATA.read_text().replace(",SYNTH-XXX\n", ",XXX\n")  # as older versions wrote
    DEFAULT_DATA.write_text(old)
    assert default_data() == DEFAULT_DATA
    rows = DEFAULT_DATA.read_text().splitlines()
    assert len(rows) == 1 + TAQ_2018.session_rows()
    assert all(r.endswith(",SYNTH-XXX") for r in rows[1:])
    mtime = DEFAULT_DATA.stat().st_mtime_ns
    assert default_data() == DEFAULT_DATA and DEFAULT_DATA.stat().st_mtime_ns == mtime  # kept


def test_the_bundled_data_set_is_one_calibrated_taq_2018_session(tmp_path, monkeypatch):
    """`sor run` and `sor backtest` without --data replay the calibrated market (11 venues,
    MBP-1 quotes and prints, adverse selection), never a cached file of the legacy market."""
    from sor.cli.run import DEFAULT_DATA, default_data
    from sor.data.loader import load_snapshots
    from sor.synth.profiles import TAQ_2018

    monkeypatch.chdir(tmp_path)
    legacy = DEFAULT_DATA.parent / "generated_mbp10_seed0.csv"  # what earlier versions bundled
    legacy.parent.mkdir(parents=True)
    generate(legacy, n_events=200, schema="mbp-10", seed=0)
    path = default_data()
    assert path == DEFAULT_DATA and path.name == "generated_taq2018_seed0.csv"
    assert not path.with_suffix(".partial").exists()
    header = path.read_text().split("\n", 1)[0]
    assert "bid_px_00" in header and "bid_px_01" not in header  # MBP-1, the profile's schema
    snaps, summary = load_snapshots(path)
    assert summary.generated and summary.trade_rows > 10_000
    assert sorted(summary.venues) == sorted(v.publisher_id for v in TAQ_2018.venues)
    assert summary.rows_read == TAQ_2018.session_rows()
    assert summary.start.startswith("2018-01-02T14:30")
