"""Pinned golden backtests: `sor backtest` on one small seeded file, numbers fixed to today's.

As backtesting.py's `test_compute_stats` does, one generated market (3,000 events, MBP-10, seed
11, 20.2 s) goes through the command line (`sor.cli.main(["backtest", ...])`) with fixed
parameters, once with the static router and once with the Cont & Kukanov router over a schedule
of parent orders, and the results JSON must give exactly the numbers below: the optimized
strategy's and each baseline's total_cash, filled_shares, unfilled_shares, completed_cash and
shares_by_venue, and the savings in bps (floats to 1e-9 relative, the rest exactly).

A change to these numbers must be intended, and the commit that changes them says why (which
rule or default changed, and how the numbers moved). Do not paste new values to make the test
pass without that explanation.
"""

from __future__ import annotations

import filecmp
import json

import pytest

from sor.cli import main
from sor.synth.generate import GenerateSummary, generate

REL = 1e-9  # relative tolerance of pinned floats

#: The static router at fixed penalties against the baselines, one parent order of 5,000 shares.
STATIC_ARGS = [
    "--set",
    "order.size=5000",
    "--lambda-over",
    "0.4",
    "--lambda-under",
    "0.6",
    "--theta-queue",
    "0.3",
    "--set",
    "baselines.twap_bucket_s=5",
]
#: The Cont & Kukanov router over a schedule: a parent order every 4 s with 8 s to complete fits
#: twice in the 20.2 s file with the walk-forward split at its middle, one order in sample (at
#: 0 s) and one out of sample (at 12 s); the orders at 4 s and 8 s straddle the split.
CONT_KUKANOV_ARGS = [
    *STATIC_ARGS,
    "--allocator",
    "cont_kukanov",
    "--schedule",
    "--horizon-s",
    "2",
    "--set",
    "schedule.interval_s=4",
    "--set",
    "schedule.horizon_s=8",
    "--set",
    "schedule.twap_bucket_s=2",
    "--set",
    "router.iterations=200",
    "--set",
    "schedule.bootstrap_samples=200",
]

STATIC_GOLDEN = {
    "optimized": {
        "total_cash": 1114094.9499999997,
        "filled_shares": 5000,
        "unfilled_shares": 0,
        "completed_cash": 1114094.9499999997,
        "shares_by_venue": {"2": 1246, "5": 1655, "9": 1627, "38": 166, "43": 306},
    },
    "baselines": {
        "best_ask": {
            "total_cash": 1114094.9499999997,
            "filled_shares": 5000,
            "unfilled_shares": 0,
            "completed_cash": 1114094.9499999997,
            "shares_by_venue": {"2": 1246, "5": 1655, "9": 1627, "38": 166, "43": 306},
        },
        "twap": {
            "total_cash": 1031868.0830000001,
            "filled_shares": 4631,
            "unfilled_shares": 369,
            "completed_cash": 1114093.4600000002,
            "shares_by_venue": {"2": 1505, "5": 1396, "9": 625, "38": 92, "43": 1013},
        },
        "vwap": {
            "total_cash": 1114072.7199999995,
            "filled_shares": 5000,
            "unfilled_shares": 0,
            "completed_cash": 1114072.7199999995,
            "shares_by_venue": {"2": 2006, "5": 251, "9": 1174, "38": 210, "43": 1359},
        },
    },
    "savings_vs_baselines_bps": {
        "best_ask": 0.0,
        "twap": -0.013374102381399104,
        "vwap": -0.1995381414625407,
    },
    "savings_basis": "completed_avg_px",
}

CONT_KUKANOV_GOLDEN = {
    "optimized": {
        "total_cash": 2147494.3839999996,
        "filled_shares": 9638,
        "unfilled_shares": 362,
        "completed_cash": 2228158.3699999996,
        "shares_by_venue": {"2": 3014, "5": 1650, "9": 2392, "38": 929, "43": 1653},
    },
    "baselines": {
        "best_ask": {
            "total_cash": 2228238.0599999996,
            "filled_shares": 10000,
            "unfilled_shares": 0,
            "completed_cash": 2228238.0599999996,
            "shares_by_venue": {"2": 2908, "5": 2252, "9": 2826, "38": 1131, "43": 883},
        },
        "twap": {
            "total_cash": 2228201.41,
            "filled_shares": 10000,
            "unfilled_shares": 0,
            "completed_cash": 2228201.41,
            "shares_by_venue": {"2": 3454, "5": 1376, "9": 2269, "38": 1409, "43": 1492},
        },
        "vwap": {
            "total_cash": 2228174.14,
            "filled_shares": 10000,
            "unfilled_shares": 0,
            "completed_cash": 2228174.14,
            "shares_by_venue": {"2": 2943, "5": 1325, "9": 3601, "38": 862, "43": 1269},
        },
    },
    "savings_vs_baselines_bps": {
        "best_ask": -0.06920539460735387,
        "twap": 0.15232367659715895,
        "vwap": 0.12916545116074452,
    },
    "savings_basis": "mean_shortfall_out_of_sample",
    "schedule": {"parent_orders": 2, "in_sample": [True, False]},
}


#: What the generator wrote for the pinned file: 20.2 s, room for the two parent orders.
FILE_GOLDEN = {
    "rows": 3000,
    "trades": 137,
    "distinct_ts_event": 2699,
    "ts_event_first": 1722519392000000000,
    "ts_event_last": 1722519412156889500,
}


def generate_file(path) -> GenerateSummary:
    return generate(path, n_events=3_000, schema="mbp-10", seed=11)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> str:
    return generate_file(tmp_path_factory.mktemp("golden") / "golden.csv").path


def backtest(data: str, out, args: list[str]) -> dict:
    assert main(["-q", "backtest", "--data", data, "--out", str(out), *args]) == 0
    return json.loads(out.read_text())


def assert_pinned(report: dict, golden: dict) -> None:
    """The report's pinned numbers equal the golden ones: floats to `REL`, the rest exactly."""
    assert report["baselines"].keys() == golden["baselines"].keys()
    for name, expected in {"optimized": golden["optimized"], **golden["baselines"]}.items():
        got = report["optimized"] if name == "optimized" else report["baselines"][name]
        for key in ("filled_shares", "unfilled_shares", "shares_by_venue"):
            assert got[key] == expected[key], (name, key)
        for key in ("total_cash", "completed_cash"):
            assert got[key] == pytest.approx(expected[key], rel=REL), (name, key)
    savings = golden["savings_vs_baselines_bps"]
    assert report["savings_vs_baselines_bps"] == pytest.approx(savings, rel=REL)
    assert report["savings_basis"] == golden["savings_basis"]


def test_static_router_backtest_is_pinned(data_file, tmp_path):
    report = backtest(data_file, tmp_path / "static.json", STATIC_ARGS)
    assert report["warnings"] == []
    assert_pinned(report, STATIC_GOLDEN)


def test_cont_kukanov_schedule_backtest_is_pinned(data_file, tmp_path):
    report = backtest(data_file, tmp_path / "cont_kukanov.json", CONT_KUKANOV_ARGS)
    assert report["allocator"] == "cont_kukanov"
    assert report["schedule"]["parent_orders"] == CONT_KUKANOV_GOLDEN["schedule"]["parent_orders"]
    assert report["schedule"]["in_sample"] == CONT_KUKANOV_GOLDEN["schedule"]["in_sample"]
    assert_pinned(report, CONT_KUKANOV_GOLDEN)


def test_the_generated_file_and_backtest_are_deterministic(data_file, tmp_path):
    """The pins mean something only if the same seed gives the same file and the same report."""
    summary = generate_file(tmp_path / "again.csv")
    assert {key: getattr(summary, key) for key in FILE_GOLDEN} == FILE_GOLDEN
    again = summary.path
    assert filecmp.cmp(data_file, again, shallow=False)
    reports = [
        backtest(path, tmp_path / f"{i}.json", CONT_KUKANOV_ARGS)
        for i, path in enumerate((data_file, again))
    ]
    for report in reports:  # they differ only where they name their own files
        del report["config"]["data"]["path"], report["config"]["output"]["out"]
        del report["data"]["path"]
    assert reports[0] == reports[1]
