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


def test_savings_that_are_mostly_the_markets_move_are_warned_about():
    report = single_order_report(swept=False)
    report["baselines"] = {"twap": FILLED, "vwap": FILLED, "best_ask": FILLED}
    report["savings_vs_baselines_bps"] = {"twap": 63.3, "vwap": 5.0, "best_ask": 9.6}
    report["mid_move_bps"] = {"optimized": 0.3, "twap": 83.5, "vwap": 4.0, "best_ask": -20.0}
    notes = result_warnings(report)
    moved = [n for n in notes if n.startswith("the mid moved")]
    # twap: +83.2 bps of move for +63.3 of savings; vwap: +3.7 for +5.0 (more than half);
    # best_ask: the mid fell, so its savings are not the move's
    assert moved == [
        "the mid moved +83.2 bps between the router's last fill and twap's: much of the +63.3 "
        "bps against twap is that move of the market, not routing (a schedule of shorter "
        "parent orders, schedule.enabled, measures routing)",
        "the mid moved +3.7 bps between the router's last fill and vwap's: much of the +5.0 bps "
        "against vwap is that move of the market, not routing (a schedule of shorter parent "
        "orders, schedule.enabled, measures routing)",
    ]
    report["mid_move_bps"] = {"optimized": 0.0, "twap": 20.0, "vwap": 1.0}
    assert not [n for n in result_warnings(report) if n.startswith("the mid moved")]


def test_the_mid_move_is_measured_from_arrival_to_each_last_fill():
    import numpy as np

    from sor.data.snapshots import Snapshots
    from sor.evaluation.backtest import mid_moves_bps
    from sor.execution.engine import ExecutionResult

    t = 5
    asks = np.array([[100.02], [100.04], [np.nan], [100.12], [100.22]])
    bids = np.array([[99.98], [100.0], [np.nan], [100.08], [100.18]])
    snaps = Snapshots(
        ts=np.arange(t, dtype=np.int64) * 1_000,
        venues=np.array([1], dtype=np.int32),
        ask_px=asks,
        ask_sz=np.full((t, 1), 100, dtype=np.int64),
        bid_px=bids,
        bid_sz=np.full((t, 1), 100, dtype=np.int64),
        trade_volume=np.zeros(t, dtype=np.int64),
    )

    def last_fill_at(ts: int) -> ExecutionResult:
        fields = dict.fromkeys(ExecutionResult.__dataclass_fields__, 0)
        return ExecutionResult(**{**fields, "last_fill_ts": ts})

    results = {"now": last_fill_at(1), "quoteless": last_fill_at(2_500)}
    moves = mid_moves_bps(snaps, {**results, "late": last_fill_at(4_000), "none": last_fill_at(0)})
    assert moves["now"] == 0.0
    assert abs(moves["quoteless"] - 2.0) < 1e-9  # the row without quotes: the last mid before it
    assert abs(moves["late"] - 20.0) < 1e-9
    assert "none" not in moves


def test_repeated_rows_kept_without_a_sequence_column_are_warned_about():
    report = single_order_report(swept=False)
    assert result_warnings(report) == []
    report["data"] = {"repeated_rows_kept": 1_251, "trade_rows": 10}
    (note,) = result_warnings(report)
    assert note.startswith(
        "1,251 rows of the data repeat an earlier row in every column read, kept"
    )
    assert "counts twice" in note and "sequence column" in note
