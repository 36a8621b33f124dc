"""Plain-language warnings and the savings label of a report: how many orders, and which."""

from __future__ import annotations

from sor.evaluation.backtest import (
    MATERIAL_PARTICIPATION,
    MIN_OUT_OF_SAMPLE_ORDERS,
    SINGLE_ORDER_NOTE,
    result_warnings,
    savings_label,
)

FILLED = {"filled_shares": 5000, "unfilled_shares": 0}


def schedule_report(n_in: int, n_out: int) -> dict:
    key = "out_of_sample" if n_out else "in_sample"
    return {
        "optimized": FILLED,
        "baselines": {"twap": FILLED},
        "savings_basis": f"mean_shortfall_{key}",
        "measured_on": key,
        "in_sample": {"parent_orders": n_in},
        "out_of_sample": {"parent_orders": n_out},
        "schedule": {"parent_orders": n_in + n_out},
    }


def single_order_report(swept: bool) -> dict:
    report = {
        "optimized": FILLED,
        "baselines": {"twap": FILLED},
        "savings_basis": "completed_avg_px",
        "measured_on": "in_sample",
        "measured_on_note": SINGLE_ORDER_NOTE,
    }
    if swept:
        report["sweep"] = {"trials_complete": 10, "distinct_values": 7}
    return report


def test_few_out_of_sample_orders_are_warned_about():
    assert MIN_OUT_OF_SAMPLE_ORDERS == 30
    notes = result_warnings(schedule_report(40, 12))
    assert notes == [
        "only 12 parent orders out of sample: the interval is wide and the mean is a small "
        "sample (fewer than 30)"
    ]
    assert result_warnings(schedule_report(40, 1))[0].startswith(
        "only 1 parent order out of sample:"
    )
    assert "out of sample" in result_warnings(schedule_report(40, 29))[0]
    assert result_warnings(schedule_report(40, 30)) == []


def test_no_out_of_sample_order_is_warned_about():
    (note,) = result_warnings(schedule_report(17, 0))
    assert note.startswith("no parent order is out of sample: the savings are the mean over the")
    assert "17 parent orders the parameters are tuned on" in note


def test_a_swept_single_order_is_warned_to_be_measured_on_its_tuning_data():
    (note,) = result_warnings(single_order_report(swept=True))
    assert note.startswith(
        "one parent order (no schedule): the savings are measured on the data the parameters "
        "were tuned on"
    )
    # `sor backtest` at given parameters tunes nothing: no such warning
    assert result_warnings(single_order_report(swept=False)) == []


def test_savings_label_names_the_orders():
    assert savings_label(schedule_report(40, 40)) == "savings: out of sample, 40 parent orders"
    assert savings_label(schedule_report(40, 1)) == "savings: out of sample, 1 parent order"
    assert savings_label(schedule_report(17, 0)) == (
        "savings: in sample, 17 parent orders (tuned on the same data)"
    )
    assert savings_label(single_order_report(swept=True)) == (
        "savings: in sample, 1 parent order (tuned on the same data)"
    )
    old = schedule_report(40, 12)  # written before `measured_on`: read from savings_basis
    del old["measured_on"]
    assert savings_label(old) == "savings: out of sample, 12 parent orders"


def test_a_participation_no_desk_would_run_at_is_warned_about():
    assert MATERIAL_PARTICIPATION == 0.25
    report = schedule_report(40, 40)
    report["optimized"] = {**FILLED, "participation": 17.48}
    report["baselines"] = {"twap": {**FILLED, "participation": 0.25}, "vwap": {**FILLED}}
    (note,) = result_warnings(report)
    assert note.startswith("optimized bought 1748% of the market's traded volume while it was")
    assert "order.max_participation" in note
