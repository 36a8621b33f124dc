"""Pinned golden backtests: `sor backtest` on one small seeded file, numbers fixed to today's.

As backtesting.py's `test_compute_stats` does, one generated market (3,000 events, MBP-10, seed
11, 20.2 s) goes through the command line (`sor.cli.main(["backtest", ...])`) with fixed
parameters, once with the static router and once with the Cont & Kukanov router over a schedule
of parent orders, and the results JSON must give exactly the numbers below: the optimized
strategy's and each baseline's total_cash, filled_shares, unfilled_shares, completed_cash,
shares_by_venue and the clean-up's split (cleanup_taken_shares, cleanup_impact_shares), and the
savings in bps (floats to 1e-9 relative, the rest exactly).

A change to these numbers must be intended, and the commit that changes them says why (which
rule or default changed, and how the numbers moved). Do not paste new values to make the test
pass without that explanation.

Last re-pinned when execution began to walk the visible ask depth (the numbers are the same
before and after the participation cap and the temporary impact were added, both off here).
They moved because:

- market orders walk every venue's visible ask levels (ten in this MBP-10 file), cheapest
  first, each level at its own price plus the fee: Best-Ask (and the static router, which
  splits like it here) buys its 5,000 shares in 3 child orders deep in three venues' books
  instead of 35 on the top of book alone, and pays 1,114,472.12 instead of 1,114,084.76
  (+3.5 bps); TWAP no longer leaves 369 shares to the clean-up; VWAP's split moves 22 shares
  from venue 9 to venue 2 at the same cost; the Cont & Kukanov router leaves 97 shares
  unfilled instead of 362;
- the strict fill model remembers the shares taken at each venue and price until that venue's
  best ask rises above the price (before: until its ask changed), and the clean-up takes the
  visible depth of the rows after the horizon first and prices only the rest by the
  square-root impact model (before: all at the last ask plus fee). On the top of book alone
  these move Best-Ask from 1,114,094.95 to 1,114,084.76, TWAP's clean-up of 369 shares from
  82,225.38 to 82,226.58, and the schedule's baselines by $10 at most; the router's 97 unfilled
  shares are all taken from the data after its horizon;
- passive fills by the trade's aggressor side were already in the previous pins and are not
  why they moved (erasing the trade sides would still move the router's completed cash over
  the schedule, from 2,228,276.98 to 2,228,275.15).
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
        "total_cash": 1114472.1199999999,
        "filled_shares": 5000,
        "unfilled_shares": 0,
        "completed_cash": 1114472.1199999999,
        "shares_by_venue": {"2": 2019, "5": 1366, "9": 1615},
        "cleanup_taken_shares": 0,
        "cleanup_impact_shares": 0,
    },
    "baselines": {
        "best_ask": {
            "total_cash": 1114472.1199999999,
            "filled_shares": 5000,
            "unfilled_shares": 0,
            "completed_cash": 1114472.1199999999,
            "shares_by_venue": {"2": 2019, "5": 1366, "9": 1615},
            "cleanup_taken_shares": 0,
            "cleanup_impact_shares": 0,
        },
        "twap": {
            "total_cash": 1114122.37,
            "filled_shares": 5000,
            "unfilled_shares": 0,
            "completed_cash": 1114122.37,
            "shares_by_venue": {"2": 1005, "5": 1196, "9": 1991, "43": 808},
            "cleanup_taken_shares": 0,
            "cleanup_impact_shares": 0,
        },
        "vwap": {
            "total_cash": 1114072.7199999997,
            "filled_shares": 5000,
            "unfilled_shares": 0,
            "completed_cash": 1114072.7199999997,
            "shares_by_venue": {"2": 2028, "5": 251, "9": 1152, "38": 210, "43": 1359},
            "cleanup_taken_shares": 0,
            "cleanup_impact_shares": 0,
        },
    },
    "savings_vs_baselines_bps": {
        "best_ask": 0.0,
        "twap": -3.1392422360201464,
        "vwap": -3.5850442509727407,
    },
    "savings_basis": "completed_avg_px",
}

CONT_KUKANOV_GOLDEN = {
    "optimized": {
        "total_cash": 2206663.0239999997,
        "filled_shares": 9903,
        "unfilled_shares": 97,
        "completed_cash": 2228276.9849999994,
        "shares_by_venue": {"2": 3229, "5": 1056, "9": 3734, "38": 872, "43": 1012},
        "cleanup_taken_shares": 97,
        "cleanup_impact_shares": 0,
    },
    "baselines": {
        "best_ask": {
            "total_cash": 2228749.08,
            "filled_shares": 10000,
            "unfilled_shares": 0,
            "completed_cash": 2228749.08,
            "shares_by_venue": {"2": 5127, "5": 1366, "9": 3507},
            "cleanup_taken_shares": 0,
            "cleanup_impact_shares": 0,
        },
        "twap": {
            "total_cash": 2228264.6900000004,
            "filled_shares": 10000,
            "unfilled_shares": 0,
            "completed_cash": 2228264.6900000004,
            "shares_by_venue": {"2": 3761, "5": 986, "9": 2635, "38": 659, "43": 1959},
            "cleanup_taken_shares": 0,
            "cleanup_impact_shares": 0,
        },
        "vwap": {
            "total_cash": 2228173.3200000003,
            "filled_shares": 10000,
            "unfilled_shares": 0,
            "completed_cash": 2228173.3200000003,
            "shares_by_venue": {"2": 3625, "5": 1218, "9": 2374, "38": 834, "43": 1949},
            "cleanup_taken_shares": 0,
            "cleanup_impact_shares": 0,
        },
    },
    "savings_vs_baselines_bps": {
        "best_ask": 1.0870004263633013,
        "twap": 0.19262616969328072,
        "vwap": 0.09810829611858585,
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
        for key in (
            "filled_shares",
            "unfilled_shares",
            "shares_by_venue",
            "cleanup_taken_shares",
            "cleanup_impact_shares",
        ):
            assert got[key] == expected[key], (name, key)
        for key in ("total_cash", "completed_cash"):
            assert got[key] == pytest.approx(expected[key], rel=REL), (name, key)
    savings = golden["savings_vs_baselines_bps"]
    assert report["savings_vs_baselines_bps"] == pytest.approx(savings, rel=REL)
    assert report["savings_basis"] == golden["savings_basis"]


def test_static_router_backtest_is_pinned(data_file, tmp_path):
    report = backtest(data_file, tmp_path / "static.json", STATIC_ARGS)
    # The only cautions: the schedules' participation in the market's volume (uncapped here).
    warned = {note.split(" bought ")[0] for note in report["warnings"]}
    assert all(" of the market's traded volume" in note for note in report["warnings"])
    assert warned == {
        name
        for name, r in {"optimized": report["optimized"], **report["baselines"]}.items()
        if (r["participation"] or 0) > 0.25
    }
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
