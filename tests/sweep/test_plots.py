"""Each plot on degenerate inputs: fills at one instant, one price, no fills, one parent order,
savings all zero; and the savings plot's in-sample and out-of-sample boxes kept apart."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pytest

from sor.evaluation.backtest import FillRecord
from sweep.plots import (
    MIN_PRICE_SPAN,
    MIN_TIME_SPAN_NS,
    fill_path_figure,
    savings_distribution_figure,
    venue_shares_figure,
    write_plots,
)
from tests.sweep.test_report_html import png_size

INSTANT = "2024-08-01T13:36:32.000000000Z"
INSTANT_NS = int(np.datetime64(INSTANT.rstrip("Z"), "ns").astype(np.int64))
NAMES = ("optimized", "best_ask", "twap", "vwap")


def result(filled: int, unfilled: int, by_venue: dict[str, int]) -> dict:
    return {
        "avg_fill_px": 222.9 if filled else None,
        "filled_shares": filled,
        "unfilled_shares": unfilled,
        "shares_by_venue": by_venue,
    }


def report(start: str = INSTANT, end: str = INSTANT, filled: int = 100) -> dict:
    by_venue = {"2": filled} if filled else {}
    one = result(filled, 5000 - filled, by_venue)
    return {
        "optimized": one,
        "baselines": {name: dict(one) for name in NAMES[1:]},
        "config": {"order": {"size": 5000}},
        "data": {"start": start, "end": end},
    }


def fill(ts: int, shares: int, price: float) -> FillRecord:
    return FillRecord(
        ts, np.array([shares, 0]), np.array([price, np.nan]), np.array([shares * price, 0.0])
    )


def as_ns(value: float) -> int:
    """A matplotlib date number as ns since the epoch (to the microsecond)."""
    when = mdates.num2date(value)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def x_limits_ns(ax) -> tuple[int, int]:
    lo, hi = ax.get_xlim()
    return as_ns(lo), as_ns(hi)


def tick_labels_apart(fig, ax) -> list[str]:
    """The x tick labels shown, after checking that no two of them overlap on the canvas."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
    for left, right in zip(boxes, boxes[1:], strict=False):
        assert left.x1 <= right.x0, "x tick labels overlap"
    return [t.get_text() for t in labels]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_fills_at_one_instant_get_a_second_around_it():
    # As `sor run --data l1_day_head5.csv`: the window is one instant and every fill is in it.
    paths = {name: [fill(INSTANT_NS, 100, 222.9)] for name in NAMES}
    fig = fill_path_figure(report(), paths)
    top, bottom = fig.axes
    lo, hi = x_limits_ns(bottom)
    assert hi - lo == pytest.approx(MIN_TIME_SPAN_NS, abs=2_000)  # not weeks
    assert lo < INSTANT_NS < hi
    assert abs((lo + hi) // 2 - INSTANT_NS) <= 2_000
    labels = tick_labels_apart(fig, bottom)
    assert 2 <= len(labels) <= 8
    # the price panel shows the one price, as a point, on an axis a cent wide
    y_lo, y_hi = bottom.get_ylim()
    assert y_lo < 222.9 < y_hi and y_hi - y_lo == pytest.approx(MIN_PRICE_SPAN)
    points = [line for line in bottom.lines if line.get_marker() == "o"]
    assert points and all(np.allclose(line.get_ydata(), [222.9]) for line in points)
    t_lo, t_hi = top.get_ylim()
    assert t_lo <= 0 and 5000 <= t_hi < 6000  # from nothing to the order size


def test_one_price_over_a_long_window_keeps_a_cent_wide_price_axis():
    start, end = "2024-08-01T13:36:32Z", "2024-08-01T13:45:14Z"
    t0 = int(np.datetime64(start.rstrip("Z"), "ns").astype(np.int64))
    paths = {name: [fill(t0 + k * 10**10, 100, 222.9) for k in range(50)] for name in NAMES}
    fig = fill_path_figure(report(start, end, 5000), paths)
    bottom = fig.axes[1]
    lo, hi = x_limits_ns(bottom)
    assert lo <= t0 and hi >= t0 + (8 * 60 + 42) * 10**9  # the whole window
    assert hi - lo < 10 * 60 * 10**9  # and not much more
    y_lo, y_hi = bottom.get_ylim()
    assert y_lo < 222.9 < y_hi and y_hi - y_lo == pytest.approx(MIN_PRICE_SPAN)
    assert 2 <= len(tick_labels_apart(fig, bottom)) <= 8


@pytest.mark.parametrize("window", [True, False], ids=["window", "no-window"])
def test_no_fills_at_all(window):
    rep = report(filled=0) if window else {**report(filled=0), "data": {}}
    fig = fill_path_figure(rep, {name: [] for name in NAMES})
    top, bottom = fig.axes
    said = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no fills: no average price" in said
    assert "no strategy filled any shares" in said
    y_lo, y_hi = bottom.get_ylim()
    assert np.isfinite([y_lo, y_hi]).all() and 0 < y_hi - y_lo <= 1
    if window:
        lo, hi = x_limits_ns(bottom)
        assert lo < INSTANT_NS < hi and hi - lo <= 2 * MIN_TIME_SPAN_NS


def test_venue_shares_with_nothing_filled():
    rep = report(filled=0)
    for r in (rep["optimized"], *rep["baselines"].values()):
        r["unfilled_shares"] = 0  # not even an unfilled bar
    fig = venue_shares_figure(rep)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["no shares filled at any venue"]
    assert ax.get_ylim() == pytest.approx((0, 1.05))
    # everything unfilled: one bar group, on a sane axis
    fig = venue_shares_figure(report(filled=0))
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["unfilled"]
    assert ax.get_ylim() == pytest.approx((0, 5000 * 1.05))


def schedule_report(in_sample: list[bool], router: list[float], **baselines) -> dict:
    return {
        "schedule": {
            "shortfall_bps": {"router": router, **baselines},
            "in_sample": in_sample,
        }
    }


def medians(fig) -> dict[str, float]:
    (ax,) = fig.axes
    found = {}
    for line in ax.lines:
        gid = line.get_gid() or ""
        if gid.startswith("median:"):
            found[gid.removeprefix("median:")] = float(np.mean(line.get_ydata()))
    return found


def test_savings_boxes_keep_in_and_out_of_sample_apart():
    router = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    twap = [2.0, 4.0, 6.0, 3.0, 4.0, 5.0]  # savings: 1, 2, 3 in sample; -1, -1, -1 out
    rep = schedule_report([True, True, True, False, False, False], router, twap=twap)
    fig = savings_distribution_figure(rep)
    assert medians(fig) == {"twap:in_sample": 2.0, "twap:out_of_sample": -1.0}
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["in sample (tuned on), 3 orders", "out of sample, 3 orders"]


def test_savings_plot_on_degenerate_orders():
    # one parent order, in sample: one box; savings all zero: an axis a bps wide around 0
    fig = savings_distribution_figure(schedule_report([True], [1.5], twap=[1.5], vwap=[1.5]))
    assert medians(fig) == {"twap:in_sample": 0.0, "vwap:in_sample": 0.0}
    (ax,) = fig.axes
    lo, hi = ax.get_ylim()
    assert lo < 0 < hi and hi - lo == pytest.approx(1.0)
    # a NaN shortfall is left out, not drawn as an empty box
    nan = savings_distribution_figure(schedule_report([False, False], [1.0, np.nan], twap=[2, 3]))
    assert medians(nan) == {"twap:out_of_sample": 1.0}
    # no orders at all
    empty = savings_distribution_figure(schedule_report([], [], twap=[]))
    (ax,) = empty.axes
    assert medians(empty) == {} and [t.get_text() for t in ax.texts] == [
        "no parent order with a savings number"
    ]


def test_write_plots_on_a_degenerate_report(tmp_path):
    paths = {name: [fill(INSTANT_NS, 100, 222.9)] for name in NAMES}
    rep = {**report(), **schedule_report([True], [0.0], twap=[0.0])}
    written = write_plots(rep, None, paths, tmp_path, "one")
    assert list(written) == ["fill_path", "venue_shares", "savings_distribution"]
    for name in written.values():
        width, height = png_size(tmp_path / name)
        assert width >= 400 and height >= 200
