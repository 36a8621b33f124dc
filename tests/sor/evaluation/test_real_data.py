"""On real data, leaving the order to the clean-up earns no savings (skips without the shared data).

The clean-up buys what a strategy leaves from the depth after its horizon, then by the impact
model, so a router that takes almost nothing (all penalties 0) cannot look better than the
baselines by waiting: priced at the last best ask for any size, as a naive clean-up would be,
this very case scores tens of bps in the waiting router's favour.
"""

from __future__ import annotations

import pytest

from sor.config import load_config
from sor.data.loader import load_snapshots
from sor.evaluation.modes import prepare
from tests.csvdata import SHARED_DATA

TAQ_QUOTES = SHARED_DATA / "real" / "taq_2018-01-02_03_mbp1.csv.gz"


@pytest.mark.slow
@pytest.mark.skipif(not TAQ_QUOTES.exists(), reason="shared data not available")
def test_a_router_that_waits_shows_no_savings_from_the_clean_up():
    config = load_config(
        None,
        {
            "window.start": "2018-01-02T14:30:00Z",
            "window.end": "2018-01-02T16:30:00Z",
            "schedule.enabled": True,
            "schedule.bootstrap_samples": 500,
        },
    )
    snaps = load_snapshots(TAQ_QUOTES, **config.load_options())[0]
    evaluation = prepare(snaps, config)
    report = evaluation.report({"lambda_over": 0.0, "lambda_under": 0.0, "theta_queue": 0.0})
    out = report["out_of_sample"]
    assert out["cleanup_share"]["optimized"] > 0.5  # most of the order left to the clean-up
    for name in ("best_ask", "twap", "vwap"):
        low, _ = out["savings_bps"][name]["ci95"]
        assert low <= 0.0, (name, out["savings_bps"][name])  # not significantly positive
