"""What a Ray worker runs: the router over the shared snapshots for a batch of parameter sets."""

from __future__ import annotations

import os
import resource
import traceback
from typing import Any

from sor.backtest import evaluate, make_market
from sor.config import Config
from sor.router import RouterParams
from sor.snapshots import Snapshots


def evaluate_batch(
    snaps: Snapshots, config: dict[str, Any], batch: list[dict[str, float]]
) -> list[dict[str, Any]]:
    """Evaluate each parameter set of `batch` on `snaps`; a failing trial does not sink the others.

    Args:
        snaps: the snapshots (in a Ray task, a zero-copy view of the shared object).
        config: `Config.model_dump()`; only the order and venue sections are used.
        batch: parameter sets {lambda_over, lambda_under, theta_queue}.

    Returns:
        One dict per parameter set: {"ok": True, "value": completed cash, "result": ...} or
        {"ok": False, "error": ...}, each with the worker's node id and pid.
    """
    cfg = Config.model_validate(config)
    market = make_market(snaps, cfg)
    where = _where()
    outcomes = []
    for params in batch:
        try:
            result = evaluate(market, RouterParams(**params), cfg.order)
            outcomes.append(
                {"ok": True, "value": result.completed_cash, "result": result.to_dict(), **where}
            )
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
