"""`sor backtest`: the router at fixed parameters and every baseline, straight from a file."""

from __future__ import annotations

import argparse

from sor.cli.flags import (
    DATA_FLAGS,
    EVALUATION_FLAGS,
    PARAM_FLAGS,
    config_from_args,
    warn_unknown_venue_overrides,
)
from sor.cli.output import claim_outputs, print_report, print_warnings, write_json
from sor.errors import SorError

__all__ = ["cmd_backtest"]


def cmd_backtest(args: argparse.Namespace) -> int:
    """Router at fixed parameters and all baselines, straight from the CSV."""
    from sor.data.loader import load_snapshots, require_asks
    from sor.evaluation.backtest import result_warnings
    from sor.evaluation.modes import prepare

    config = config_from_args(args, DATA_FLAGS, EVALUATION_FLAGS, PARAM_FLAGS)
    if config.data.path is None:
        raise SorError("sor backtest needs --data PATH (or data.path in the config)")
    inputs = {"data file": config.data.path, "configuration": args.config}
    with claim_outputs(config.output.out, inputs=inputs):
        snaps, summary = load_snapshots(config.data.path, **config.load_options())
        require_asks(snaps.ask_px, config.data.path)
        warn_unknown_venue_overrides(config, snaps.venues)
        evaluation = prepare(snaps, config)
        params = config.params.model_dump()
        report = evaluation.report({k: params[k] for k in evaluation.params})
        report["data"] = {
            **summary.to_dict(),
            "snapshots": len(snaps),
            "snapshot_bytes": snaps.nbytes,
        }
        report["warnings"] = result_warnings(report)
        report["config"] = config.redacted()
        write_json(report, config.output.out)
    if args.quiet:
        print_warnings(report)
    else:
        print_report(report)
    return 0
