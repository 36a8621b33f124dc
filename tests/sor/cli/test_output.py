"""The terminal summary table says which parent orders its savings column covers."""

from __future__ import annotations

from sor.cli.output import summary_table

RESULT = {
    "avg_fill_px": 222.8,
    "filled_shares": 5000,
    "unfilled_shares": 0,
    "completed_cash": 1114000.0,
}


def report(measured_on: str, n: int) -> dict:
    return {
        "best_parameters": {"lambda_over": 0.4},
        "optimized": RESULT,
        "baselines": {"twap": RESULT},
        "savings_vs_baselines_bps": {"twap": 0.125},
        "savings_basis": f"mean_shortfall_{measured_on}",
        "measured_on": measured_on,
        measured_on: {"parent_orders": n},
    }


def test_the_table_header_says_out_of_sample_or_in_sample():
    lines = summary_table(report("out_of_sample", 40)).splitlines()
    assert lines[1] == "savings: out of sample, 40 parent orders"
    assert lines[2].split()[0] == "strategy" and "+0.125" in lines[-1]
    lines = summary_table(report("in_sample", 12)).splitlines()
    assert lines[1] == "savings: in sample, 12 parent orders (tuned on the same data)"
