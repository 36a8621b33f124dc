"""What a Ray worker runs: the router over the shared snapshots for a batch of parameter sets."""

from __future__ import annotations

import os
import resource
import traceback
from collections import OrderedDict
from typing import Any

from sor.config import Config
from sor.data.snapshots import Snapshots
from sor.evaluation.backtest import Market, evaluate, make_market
from sor.evaluation.schedule import (
    ScheduleMarket,
    make_schedule_market,
    objective,
    run_router,
    uses_schedule,
)
from sor.routers.static import RouterParams


def evaluate_batch(
    snaps: Snapshots | Market, config: dict[str, Any], batch: list[dict[str, float]]
) -> list[dict[str, Any]]:
    """Evaluate each parameter set of `batch` on `snaps`; a failing trial does not sink the others.

    Args:
        snaps: the snapshots, or a `Market` built from them and this config.
        config: `Config.model_dump()`; only the order and venue sections are used.
        batch: parameter sets {lambda_over, lambda_under, theta_queue[, horizon_s]}.

    Returns:
        One dict per parameter set: {"ok": True, "value": completed cash (or, over a schedule
        or with the C&K router, the mean in-sample shortfall in bps), "result": ...} or
        {"ok": False, "error": ...}, each with the worker's node id and pid.
    """
    cfg = Config.model_validate(config)
    if uses_schedule(cfg):
        market = snaps if isinstance(snaps, ScheduleMarket) else make_schedule_market(snaps, cfg)
    else:
        market = snaps if isinstance(snaps, Market) else make_market(snaps, cfg)
    where = _where()
    outcomes = []
    for params in batch:
        try:
            if isinstance(market, ScheduleMarket):
                run = run_router(market, params, cfg)
                filled = float(run.filled.sum())
                value = objective(market, run)
                result = {
                    "filled_shares": int(round(filled)),
                    "avg_fill_px": float(run.total_cash.sum() / filled) if filled else None,
                }
            else:
                executed = evaluate(market, RouterParams(**params), cfg.order)
                value, result = executed.completed_cash, executed.to_dict()
            outcomes.append({"ok": True, "value": value, "result": result, **where})
        except Exception as exc:  # a trial that raises is recorded as failed, with its error
            outcomes.append(
                {
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=5),
                    **where,
                }
            )
    return outcomes


# The markets this worker process has built, by (object id, venue config): a sweep sends many
# batches over one snapshot object, and building a market (ask levels, kernel inputs) costs far
# more than a fast trial. Bounded: a worker serves one sweep at a time.
_MARKETS: OrderedDict[tuple[str, str], Market | ScheduleMarket] = OrderedDict()
_MARKETS_KEPT = 2


def evaluate_shared(
    snaps_ref: list, config: dict[str, Any], batch: list[dict[str, float]]
) -> list[dict[str, Any]]:
    """`evaluate_batch` for a Ray task, over the shared object `snaps_ref[0]`.

    The reference comes wrapped in a list so that Ray passes the reference, not the object: the
    worker fetches it (zero-copy on the same node) only when it has no market for it yet.
    """
    import ray

    ref = snaps_ref[0]
    key = (ref.hex(), repr([config[k] for k in ("venues", "router", "schedule", "baselines")]))
    market = _MARKETS.get(key)
    if market is None:
        cfg = Config.model_validate(config)
        build = make_schedule_market if uses_schedule(cfg) else make_market
        market = build(ray.get(ref), cfg)
        _MARKETS[key] = market
        while len(_MARKETS) > _MARKETS_KEPT:
            _MARKETS.popitem(last=False)
    return evaluate_batch(market, config, batch)


def _where() -> dict[str, Any]:
    try:
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    except Exception:  # outside Ray
        node = "local"
    # Peak resident memory of this worker process so far (KiB on Linux):
    # bench/sweep_throughput.py checks that it does not grow with the number of workers
    # (no per-trial data copies).
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"node": node, "pid": os.getpid(), "peak_rss_kib": peak_kib}
