"""Multi-day evaluation: the window on every day, orders within a day, walk-forward by days."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sor.cli.main import main
from sor.config import load_config
from sor.data.days import day_labels, forget_previous_days
from sor.data.loader import load_snapshots
from sor.errors import ConfigError
from sor.evaluation.modes import prepare
from sor.evaluation.rules import evaluation_rules
from sor.evaluation.schedule import make_schedule_market, parent_orders
from sor.routers.static import reference_mid
from sor.vocabulary import NS_PER_S
from tests.csvdata import SHARED_DATA, two_generated_days

TAQ_QUOTES = SHARED_DATA / "real" / "taq_2018-01-02_03_mbp1.csv.gz"
DAY_NS = 86_400 * NS_PER_S
PARAMS = {"lambda_over": 0.05, "lambda_under": 0.05, "theta_queue": 0.001}
SETTINGS = {
    "window.start": "14:30",
    "window.end": "14:31",
    "schedule.enabled": True,
    "schedule.interval_s": 5,
    "schedule.horizon_s": 10,
    "schedule.twap_bucket_s": 2,
    "schedule.bootstrap_samples": 200,
}


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    return two_generated_days(tmp_path_factory.mktemp("days"))


def config(path, **settings):
    return load_config(None, {"data.path": str(path), **SETTINGS, **settings})


@pytest.fixture(scope="module")
def evaluation(two_days):
    # train_days decides; the train_fraction (all of the window) is left unused
    cfg = config(two_days, **{"schedule.train_days": 1, "schedule.train_fraction": 1.0})
    snaps = load_snapshots(two_days, **cfg.load_options())[0]
    return prepare(snaps, cfg)


def test_the_window_applies_on_every_day(two_days):
    snaps, summary = load_snapshots(two_days, start="14:30", end="14:31")
    time_of_day = snaps.ts % DAY_NS
    assert time_of_day.min() >= 52_200 * NS_PER_S and time_of_day.max() <= 52_260 * NS_PER_S
    dates = {str(d) for d in snaps.ts.astype("datetime64[ns]").astype("datetime64[D]")}
    assert dates == {"2024-08-01", "2024-08-02"}
    assert summary.start.startswith("2024-08-01T14:30") and summary.end.startswith("2024-08-02")
    # an end given as a full timestamp is one instant: the first day only
    first, _ = load_snapshots(two_days, start="14:30", end="2024-08-01T14:31:00Z")
    assert {str(d) for d in first.ts.astype("datetime64[ns]").astype("datetime64[D]")} == {
        "2024-08-01"
    }


def test_parent_orders_never_straddle_a_day(evaluation):
    sm, snaps = evaluation.schedule, evaluation.snaps
    days = day_labels(snaps.ts)
    assert len({o.day for o in sm.orders}) == 2
    for order, parent in zip(sm.orders, sm.parents, strict=True):
        assert days[order.first] == days[order.last] == order.day
        day_rows = np.flatnonzero(days == order.day)
        assert order.arrival_ns + 10 * NS_PER_S <= snaps.ts[day_rows[-1]]
        # the clean-up takes from this day's data only: the rows after the horizon to its end
        assert len(parent.after.best_ask) == day_rows[-1] - order.last
    # each day's schedule starts at that day's first snapshot
    second = next(o for o in sm.orders if o.day == days[-1])
    assert second.arrival_ns == snaps.ts[np.flatnonzero(days == days[-1])[0]]
    # without the day rule, orders at the end of the first day would have horizons running
    # into the night (their clean-ups taking from the second day's data)
    one_day = parent_orders(
        snaps, reference_mid(snaps), interval_s=5, horizon_s=10, train_fraction=0.5
    )
    first_day_end = snaps.ts[np.flatnonzero(days == days[0])[-1]]
    assert any(o.arrival_ns <= first_day_end < o.arrival_ns + 10 * NS_PER_S for o in one_day)


def test_each_day_starts_without_the_previous_days_quotes(evaluation, two_days):
    cfg = config(two_days)
    snaps = load_snapshots(two_days, **cfg.load_options())[0]
    days = day_labels(snaps.ts)
    start = int(np.flatnonzero(days == days[-1])[0])
    # the generated second day starts with one venue's update: the rest show the evening before
    assert np.isfinite(snaps.ask_px[start]).sum() > 1
    fresh = forget_previous_days(snaps, days)
    assert np.isfinite(fresh.ask_px[start]).sum() == 1
    assert evaluation.snaps.equals(fresh)  # prepare runs on the fresh books


def test_train_days_tunes_on_the_first_days_and_reports_the_rest(evaluation):
    sm = evaluation.schedule
    first_day = sm.orders[0].day
    assert [o.in_sample for o in sm.orders] == [o.day == first_day for o in sm.orders]
    report = evaluation.report(PARAMS)
    assert report["measured_on"] == "out_of_sample"
    assert "of the 1 day after the first 1 day (schedule.train_days)" in report["measured_on_note"]
    assert report["schedule"]["train_days"] == 1
    assert report["schedule"]["days"] == ["2024-08-01", "2024-08-02"]
    assert report["in_sample"]["parent_orders_by_day"].keys() == {"2024-08-01"}
    assert report["out_of_sample"]["parent_orders_by_day"].keys() == {"2024-08-02"}
    assert [d["sample"] for d in report["per_day"]] == ["in_sample", "out_of_sample"]


def test_per_day_numbers_add_up_to_the_totals(evaluation):
    report = evaluation.report(PARAMS)
    per_day = report["per_day"]
    assert sum(d["parent_orders"] for d in per_day) == report["schedule"]["parent_orders"]
    for part in ("in_sample", "out_of_sample"):
        days = [d for d in per_day if d["sample"] == part]
        n = np.array([d["parent_orders"] for d in days])
        assert n.sum() == report[part]["parent_orders"]
        router = np.array([d["shortfall_bps"]["optimized"] for d in days])
        expected = report[part]["router_shortfall_bps"]["mean"]
        assert float(n @ router / n.sum()) == pytest.approx(expected, abs=1e-9)
        for name in ("best_ask", "twap", "vwap"):
            savings = np.array([d["savings_bps"][name] for d in days])
            expected = report[part]["savings_bps"][name]["mean"]
            assert float(n @ savings / n.sum()) == pytest.approx(expected, abs=1e-9)
            shortfall = np.array([d["shortfall_bps"][name] for d in days])
            assert savings == pytest.approx(shortfall - router, abs=1e-9)
    out = [d for d in per_day if d["sample"] == "out_of_sample"]
    assert report["savings_vs_baselines_bps"]["twap"] == pytest.approx(
        out[0]["savings_bps"]["twap"], abs=1e-9
    )
    assert {"sigma_per_sqrt_s", "volume_per_s"} <= per_day[0]["cleanup_impact_model"].keys()


def test_train_days_must_leave_a_day_out_of_sample(two_days):
    cfg = config(two_days, **{"schedule.train_days": 2})
    snaps = load_snapshots(two_days, **cfg.load_options())[0]
    message = (
        "schedule.train_days: 2 leaves no day out of sample: the parent orders fall on 2 days "
        r"\(2024-08-01, 2024-08-02\); set it below 2"
    )
    with pytest.raises(ConfigError, match=message):
        make_schedule_market(snaps, evaluation_rules(cfg))
    one_day = config(two_days, **{"schedule.train_days": 1, "window.end": "2024-08-01T23:00Z"})
    snaps = load_snapshots(two_days, **one_day.load_options())[0]
    with pytest.raises(ConfigError, match=r"fall on 1 day \(2024-08-01\), so no whole day"):
        make_schedule_market(snaps, evaluation_rules(one_day))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", "schedule.train_days: 2 leaves no day out of sample"),
        ("0", "schedule.train_days: Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_train_days_is_one_error_naming_the_key(two_days, tmp_path, capsys, value, expected):
    args = ["backtest", "--data", str(two_days), "--schedule", "--out", str(tmp_path / "r.json")]
    for key, setting in {**SETTINGS, "schedule.train_days": value}.items():
        args += ["--set", f"{key}={setting}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1


def test_without_train_days_the_fraction_splits_by_time(two_days):
    cfg = config(two_days, **{"schedule.train_fraction": 0.25})
    snaps = load_snapshots(two_days, **cfg.load_options())[0]
    sm = make_schedule_market(snaps, evaluation_rules(cfg))
    split = snaps.ts[0] + 0.25 * (snaps.ts[-1] - snaps.ts[0])
    assert all(o.in_sample == (o.arrival_ns + 10 * NS_PER_S <= split) for o in sm.orders)
    assert {o.day for o in sm.orders if o.in_sample} == {sm.orders[0].day}


@pytest.mark.slow
@pytest.mark.skipif(not TAQ_QUOTES.exists(), reason="shared data not available")
def test_real_two_days_in_regular_hours(tmp_path):
    out = tmp_path / "results.json"
    args = ["backtest", "--data", str(TAQ_QUOTES), "--schedule", "--start", "14:30"]
    args += ["--end", "21:00", "--set", "schedule.train_days=1", "--out", str(out)]
    args += ["--set", "schedule.bootstrap_samples=200"]
    assert main(args) == 0
    report = json.loads(out.read_text())
    per_day = report["per_day"]
    assert [(d["day"], d["sample"]) for d in per_day] == [
        ("2018-01-02", "in_sample"),
        ("2018-01-03", "out_of_sample"),
    ]
    # 14:30-21:00 each day, 30 s apart with 60 s horizons: 779 orders a day at most
    assert all(700 < d["parent_orders"] <= 779 for d in per_day)
    assert report["data"]["start"].startswith("2018-01-02T14:30")
    assert report["data"]["end"].startswith("2018-01-03T20:59")
    assert report["savings_vs_baselines_bps"] == {
        name: pytest.approx(per_day[1]["savings_bps"][name], abs=1e-9)
        for name in ("best_ask", "twap", "vwap")
    }
