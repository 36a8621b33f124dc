"""Parent-order schedules, the Cont & Kukanov router over them, and their statistics."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from sor.config import Config
from sor.data.loader import load_snapshots
from sor.errors import ConfigError
from sor.evaluation.metrics import block_length, summarize
from sor.evaluation.rules import evaluation_rules
from sor.evaluation.schedule import (
    ParentOrder,
    _part,
    make_schedule_market,
    objective,
    overlap_orders,
    parent_orders,
    run_router,
    schedule_report,
    slice_rows,
)
from sor.execution.venues import venue_costs
from sor.routers.placement import (
    PlacementParams,
    PlacementSettings,
    execute_parent,
    make_passive_market,
)
from sor.routers.static import reference_mid
from sor.synth.generate import generate
from sor.vocabulary import NS_PER_S

PARAMS = {"lambda_over": 0.05, "lambda_under": 0.05, "theta_queue": 0.001, "horizon_s": 4.0}


@pytest.fixture(scope="module")
def snaps(tmp_path_factory):
    path = tmp_path_factory.mktemp("schedule") / "day.csv"
    generate(path, n_events=24_000, schema="mbp-10", seed=5)
    return load_snapshots(path)[0]


def config(**sections) -> Config:
    base = {
        "router": {"allocator": "cont_kukanov", "iterations": 300},
        "schedule": {"enabled": True, "interval_s": 10, "horizon_s": 20, "twap_bucket_s": 5},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return Config.model_validate(base)


def test_parent_orders_cover_the_window_and_split_for_walk_forward(snaps):
    orders = parent_orders(
        snaps, reference_mid(snaps), interval_s=10, horizon_s=20, train_fraction=0.6
    )
    span = (snaps.ts[-1] - snaps.ts[0]) / NS_PER_S
    split = snaps.ts[0] + 0.6 * (snaps.ts[-1] - snaps.ts[0])
    arrivals = snaps.ts[0] + np.arange(int((span - 20) // 10) + 1) * 10 * NS_PER_S
    # every arrival whose horizon does not straddle the walk-forward split
    kept = arrivals[(arrivals + 20 * NS_PER_S <= split) | (arrivals >= split)]
    assert [o.arrival_ns for o in orders] == kept.tolist()
    assert len(kept) < len(arrivals)  # the test has teeth: some order straddled the split
    for o in orders:
        assert snaps.ts[o.first] >= o.arrival_ns
        assert o.first == 0 or snaps.ts[o.first - 1] < o.arrival_ns
        assert snaps.ts[o.last] <= o.arrival_ns + 20 * NS_PER_S < snaps.ts[o.last + 1]
        # no row is both tuned on and reported on
        assert o.in_sample == (snaps.ts[o.last] <= split)
        assert o.in_sample or o.arrival_ns >= split
    assert orders[0].in_sample and not orders[-1].in_sample


def test_slice_rows_keeps_each_rows_trades(snaps):
    part = slice_rows(snaps, 100, 900)
    assert len(part) == 801 and np.array_equal(part.bid_px, snaps.bid_px[100:901], equal_nan=True)
    keep = (snaps.trade_row >= 100) & (snaps.trade_row <= 900)
    assert np.array_equal(part.trade_row, snaps.trade_row[keep] - 100)
    assert np.array_equal(part.trade_sz, snaps.trade_sz[keep])
    assert len(part.trade_row) > 0
    # the ask ladders of those rows (MBP-10: ten levels)
    assert part.n_levels == snaps.n_levels == 10
    assert np.array_equal(part.ask_depth_px, snaps.ask_depth_px[100:901], equal_nan=True)
    assert np.array_equal(part.ask_depth_sz, snaps.ask_depth_sz[100:901])
    top_only = dataclasses.replace(snaps, ask_depth_px=None, ask_depth_sz=None)
    part = slice_rows(top_only, 100, 900)
    assert part.ask_depth_px is None and part.ask_depth_sz is None and part.n_levels == 1


@pytest.mark.parametrize("where", [(0.0, 0.0), (0.1, 0.9), (0.0, 1.0), (0.5, 0.5), (0.3, 0.31)])
def test_slice_rows_by_bisection_equals_the_pass_over_every_trade(snaps, where):
    assert (np.diff(snaps.trade_row) >= 0).all()  # as data-built snapshots have them
    traded = snaps.trade_row[[int(w * (len(snaps.trade_row) - 1)) for w in where]]
    for first, last in [
        (traded[0], traded[1]),
        (traded[0] + 1, traded[1] - 1 + (traded[0] == traded[1]) * 2),
    ]:
        first, last = int(first), int(min(max(last, first), len(snaps) - 1))
        bisected = slice_rows(snaps, first, last, trades_in_row_order=True)
        passed = slice_rows(snaps, first, last)
        for f in dataclasses.fields(snaps):
            a, b = getattr(bisected, f.name), getattr(passed, f.name)
            if isinstance(a, np.ndarray):
                assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f.name
            else:
                assert a == b, f.name


def test_no_look_ahead_decisions_before_t_ignore_data_after_t(snaps):
    costs = venue_costs(snaps.venues)
    settings = PlacementSettings(iterations=300)
    params = PlacementParams(**PARAMS)
    first, last = 2000, 7000
    cut = 4500
    log_a: list = []
    execute_parent(make_passive_market(snaps, costs), first, last, 5000, params, settings, log_a)
    # scramble everything from row `cut` on: quotes, sizes and trade prints
    rng = np.random.default_rng(0)
    bid_sz, ask_sz = snaps.bid_sz.copy(), snaps.ask_sz.copy()
    bid_sz[cut:] = rng.integers(1, 5000, bid_sz[cut:].shape)
    ask_sz[cut:] = rng.integers(1, 5000, ask_sz[cut:].shape)
    trade_sz = snaps.trade_sz.copy()
    later = snaps.trade_row >= cut
    trade_sz[later] = rng.integers(1, 5000, int(later.sum()))
    changed = dataclasses.replace(snaps, bid_sz=bid_sz, ask_sz=ask_sz, trade_sz=trade_sz)
    log_b: list = []
    execute_parent(make_passive_market(changed, costs), first, last, 5000, params, settings, log_b)
    before = [d for d in log_a if d[0] < cut]
    assert len(before) >= 3
    for a, b in zip(before, log_b, strict=False):
        assert a[0] == b[0] and a[1] == b[1] and np.array_equal(a[2], b[2])
    assert any(d[2].any() for d in before)  # limit orders were posted: the check has teeth


def test_router_posts_where_the_rebate_is_clearly_larger(snaps):
    generous = int(snaps.venues[2])
    cfg = config(venues={"overrides": {generous: {"rebate": 0.01}}})
    sm = make_schedule_market(snaps, evaluation_rules(cfg))
    # a small tuning sweep over the penalties and T; the best must post most at that venue
    rng = np.random.default_rng(0)
    trials = [
        {
            "lambda_over": float(rng.uniform(0.01, 0.1)),
            "lambda_under": float(rng.uniform(0.01, 0.1)),
            "theta_queue": float(rng.uniform(0.0, 0.005)),
            "horizon_s": float(rng.uniform(2, 10)),
        }
        for _ in range(6)
    ]
    runs = [run_router(sm, p, evaluation_rules(cfg)) for p in trials]
    best = runs[int(np.argmin([objective(sm, r) for r in runs]))]
    j = int(np.flatnonzero(snaps.venues == generous)[0])
    assert int(np.argmax(best.posted_shares)) == j
    assert int(np.argmax(best.passive_shares)) == j


def test_report_has_intervals_per_baseline_and_fill_statistics(snaps):
    cfg = config(schedule={"train_fraction": 0.5})
    sm = make_schedule_market(snaps, evaluation_rules(cfg))
    report = schedule_report(sm, PARAMS, evaluation_rules(cfg))
    assert report["best_parameters"]["horizon_s"] == 4.0
    assert report["savings_basis"] == "mean_shortfall_out_of_sample"
    n_in = report["in_sample"]["parent_orders"]
    n_out = report["out_of_sample"]["parent_orders"]
    assert n_in + n_out == len(sm.orders) == report["schedule"]["parent_orders"] and n_out > 1
    for name in ("best_ask", "twap", "vwap"):
        s = report["out_of_sample"]["savings_bps"][name]
        assert s["n"] == n_out and s["ci95"][0] <= s["mean"] <= s["ci95"][1]
        assert report["savings_vs_baselines_bps"][name] == s["mean"]
        per_order = np.array(report["schedule"]["shortfall_bps"][name]) - np.array(
            report["schedule"]["shortfall_bps"]["router"]
        )
        out = ~np.array(report["schedule"]["in_sample"])
        assert s["mean"] == pytest.approx(per_order[out].mean())
    # labelled: measured out of sample, with the orders per day and the methods of each summary
    assert report["measured_on"] == "out_of_sample"
    assert f"the {n_out} parent orders arriving after" in report["measured_on_note"]
    assert report["schedule"]["overlap_orders"] == 2  # 20 s horizon, 10 s apart
    for part, n in (("in_sample", n_in), ("out_of_sample", n_out)):
        assert sum(report[part]["parent_orders_by_day"].values()) == n
        assert list(report[part]["parent_orders_by_day"]) == ["2024-08-01"]  # the generator's
        s = report[part]["router_shortfall_bps"]
        assert s["days"] == 1 and s["std_error_method"] == "newey_west"
        assert s["ci95_method"] == "circular_block_bootstrap"
        assert s["block_length"] == block_length(n, overlap=2) == s["hac_lag"] + 1
    fills = report["fills"]
    passive = sum(v["passive"] for v in fills["per_venue"].values())
    taken = sum(v["taken"] for v in fills["per_venue"].values())
    assert fills["passive_share"] == pytest.approx(passive / (passive + taken), abs=1e-3)
    assert 0 < fills["passive_share"] < 1
    opt = report["optimized"]
    assert opt["filled_shares"] + opt["unfilled_shares"] == cfg.order.size * len(sm.orders)


def test_static_allocator_over_a_schedule_matches_the_single_order_kernel(snaps):
    from sor.evaluation.backtest import evaluate, make_market
    from sor.routers.static import RouterParams

    cfg = config(router={"allocator": "static"})
    sm = make_schedule_market(snaps, evaluation_rules(cfg))
    params = {k: PARAMS[k] for k in ("lambda_over", "lambda_under", "theta_queue")}
    run = run_router(sm, params, evaluation_rules(cfg))
    o = sm.orders[3]
    part = make_market(slice_rows(snaps, o.first, o.last), evaluation_rules(cfg))
    direct = evaluate(part, RouterParams(**params), cfg.order)
    assert run.completed_cash[3] == direct.completed_cash


def test_schedule_errors_name_the_setting(snaps):
    with pytest.raises(ConfigError, match="schedule.horizon_s: no parent order fits"):
        make_schedule_market(snaps, evaluation_rules(config(schedule={"horizon_s": 1e6})))
    cfg = config(schedule={"train_fraction": 0.0})
    sm = make_schedule_market(snaps, evaluation_rules(cfg))
    with pytest.raises(ConfigError, match="schedule.train_fraction"):
        objective(sm, run_router(sm, PARAMS, evaluation_rules(cfg)))


def test_overlap_orders_is_the_orders_within_one_horizon():
    def rules(**schedule):
        return evaluation_rules(config(schedule=schedule))

    assert overlap_orders(rules(interval_s=30, horizon_s=60)) == 2
    assert overlap_orders(rules(interval_s=30, horizon_s=45)) == 2
    assert overlap_orders(rules(interval_s=30, horizon_s=90)) == 3
    assert overlap_orders(rules(interval_s=0.1, horizon_s=0.3)) == 3  # not 4 by float error
    assert overlap_orders(rules(interval_s=60, horizon_s=30)) == 1
    assert overlap_orders(rules(enabled=False)) == 1


def two_day_orders(n_first: int, n_second: int) -> list[ParentOrder]:
    """Parent orders every 30 s on two UTC dates: 2024-08-01 from 13:30, 2024-08-02 likewise."""
    day_ns = 86_400 * NS_PER_S
    open_ns = 19_936 * day_ns + int(13.5 * 3600) * NS_PER_S  # 2024-08-01 13:30 UTC
    arrivals = [open_ns + i * 30 * NS_PER_S for i in range(n_first)]
    arrivals += [open_ns + day_ns + i * 30 * NS_PER_S for i in range(n_second)]
    return [
        ParentOrder(i, i + 1, a, 100.0, in_sample=False, day=a // day_ns)
        for i, a in enumerate(arrivals)
    ]


def test_statistics_of_orders_on_two_dates_count_the_days_and_keep_blocks_within_them():
    orders = two_day_orders(20, 28)
    rng = np.random.default_rng(4)
    # overlapping orders: neighbours share a shock; the router is a little cheaper than twap
    shocks = rng.normal(size=49)
    twap = shocks[:-1] + shocks[1:]
    router = twap - 0.2 + 0.3 * rng.normal(size=48)
    sm = SimpleNamespace(orders=orders, baselines={"twap": twap}, baseline_fills={})
    run = SimpleNamespace(shortfall=router, filled=np.full(48, 5000.0))
    rules = evaluation_rules(config(schedule={"interval_s": 30, "horizon_s": 60}))
    part = _part(sm, run, np.ones(48, dtype=bool), rules)
    assert part["parent_orders"] == 48
    assert part["parent_orders_by_day"] == {"2024-08-01": 20, "2024-08-02": 28}
    savings = part["savings_bps"]["twap"]
    days = np.array([19_936] * 20 + [19_937] * 28)
    expected = summarize(twap - router, overlap=2, days=days, resamples=2000, seed=0)
    assert savings == expected and savings["days"] == 2 and savings["block_length"] == 4
    # the day boundary changed the numbers: the same series as one day gives others
    one_day = summarize(twap - router, overlap=2, resamples=2000, seed=0)
    assert savings["std_error"] != one_day["std_error"] and savings["ci95"] != one_day["ci95"]
    assert part["router_shortfall_bps"]["days"] == 2
    # only the second day's orders: one day
    second = _part(sm, run, np.arange(48) >= 20, rules)
    assert second["parent_orders_by_day"] == {"2024-08-02": 28}
    assert second["savings_bps"]["twap"]["days"] == 1


def test_savings_measured_in_sample_say_so(snaps):
    cfg = config(schedule={"train_fraction": 1.0})
    sm = make_schedule_market(snaps, evaluation_rules(cfg))
    report = schedule_report(sm, PARAMS, evaluation_rules(cfg))
    assert report["out_of_sample"]["parent_orders"] == 0
    assert report["out_of_sample"]["parent_orders_by_day"] == {}
    assert report["savings_basis"] == "mean_shortfall_in_sample"
    assert report["measured_on"] == "in_sample"
    n_in = len(sm.orders)
    assert (
        f"the {n_in} in-sample parent orders, the same ones the sweep tunes on"
        in (report["measured_on_note"])
    )


def test_the_single_order_is_measured_in_sample(snaps):
    from sor.evaluation.backtest import SINGLE_ORDER_NOTE
    from sor.evaluation.modes import prepare

    static = prepare(snaps, Config.model_validate({}))
    report = static.report({"lambda_over": 0.4, "lambda_under": 0.6, "theta_queue": 0.3})
    assert report["measured_on"] == "in_sample"
    assert report["measured_on_note"] == SINGLE_ORDER_NOTE
    one = slice_rows(snaps, 0, 3000)  # the C&K router over one order, kept short
    cfg = config(schedule={"enabled": False})
    report = schedule_report(make_schedule_market(one, evaluation_rules(cfg)), PARAMS,
                             evaluation_rules(cfg))  # fmt: skip
    assert report["savings_basis"] == "completed_avg_px"
    assert report["measured_on"] == "in_sample"
    assert report["measured_on_note"] == SINGLE_ORDER_NOTE


@pytest.mark.parametrize("allocator", ["static", "cont_kukanov"])
def test_the_in_sample_objective_reads_nothing_after_the_walk_forward_split(allocator):
    # 40 one-second rows, tuning on the first half; only rows after the split differ: a lower
    # ask and far more volume. The objective the sweep tunes on must not move.
    from sor.data.snapshots import Snapshots
    from sor.evaluation.rules import EvaluationRules, ScheduleRules
    from sor.execution.rules import OrderRules
    from tests.sor.data.snapdata import make_snaps

    def market(tail_px: float, tail_volume: int) -> Snapshots:
        snaps = make_snaps(
            [[10.0]] * 20 + [[tail_px]] * 20,
            [[100]] * 40,
            ts_s=list(range(40)),
            trade_volume=[100] * 20 + [tail_volume] * 20,
        )
        bid = np.array([[9.98 if t % 2 else 9.96] for t in range(40)])
        return Snapshots(**{**snaps.__dict__, "bid_px": bid})

    rules = EvaluationRules(
        order=OrderRules(size=1000, step=100, cap="displayed", temporary_impact=1.0),
        allocator=allocator,
        schedule=ScheduleRules(enabled=True, interval_s=5, horizon_s=5, train_fraction=0.5),
    )
    params = {"lambda_over": 0.0, "lambda_under": 0.05, "theta_queue": 0.0, "horizon_s": 2.0}
    values = []
    for tail in ((10.0, 100), (10.0, 100_000), (9.5, 100)):
        sm = make_schedule_market(market(*tail), rules)
        values.append(objective(sm, run_router(sm, params, rules)))
    assert values[0] == values[1] == values[2]
