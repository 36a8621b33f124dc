"""`sor backtest`: the router at fixed parameters and every baseline, straight from a file."""

from __future__ import annotations

import argparse

from sor.cli.flags import COMMON_FLAGS, PARAM_FLAGS, config_from_args
from sor.cli.output import write_json
from sor.errors import SorError


def cmd_backtest(args: argparse.Namespace) -> int:
    """Router at fixed parameters and all baselines, straight from the CSV."""
    from sor.data.loader import load_snapshots, require_asks
    from sor.evaluation.backtest import (
        build_report,
        evaluate,
        make_market,
        result_warnings,
        run_baselines,
    )
    from sor.evaluation.schedule import make_schedule_market, schedule_report, uses_schedule
    from sor.routers.static import RouterParams
    from sor.vocabulary import ALLOCATOR_PARAMS

    config = config_from_args(args, COMMON_FLAGS, PARAM_FLAGS)
    if config.data.path is None:
        raise SorError("sor backtest needs --data PATH (or data.path in the config)")
    snaps, summary = load_snapshots(
        config.data.path,
        **config.load_options(),
    )
    require_asks(snaps.ask_px, config.data.path)
    if uses_schedule(config):
        names = ALLOCATOR_PARAMS[config.router.allocator]
        params = {k: v for k, v in config.params.model_dump().items() if k in names}
        report = schedule_report(make_schedule_market(snaps, config), params, config)
    else:
        market = make_market(snaps, config)
        static = RouterParams(
            **{k: getattr(config.params, k) for k in RouterParams.__annotations__}
        )
        report = build_report(
            static,
            evaluate(market, static, config.order),
            run_baselines(market, config),
            config.order.size,
        )
    report["data"] = {**summary.to_dict(), "snapshots": len(snaps), "snapshot_bytes": snaps.nbytes}
    report["warnings"] = result_warnings(report)
    report["config"] = config.redacted()
    write_json(report, config.output.out)
    return 0
