"""sor: tune how a parent order is split across venues and measure it against benchmarks.

What a user scripts with, e.g. in a notebook::

    import sor

    config = sor.load_config(None, {"order.size": 5000})
    snaps, summary = sor.load_snapshots("l1_day.csv", **config.load_options())
    evaluation = sor.prepare(snaps, config)
    evaluation.evaluate({"lambda_over": 0.4, "lambda_under": 0.6, "theta_queue": 0.3}).value
    report = evaluation.report({"lambda_over": 0.4, "lambda_under": 0.6, "theta_queue": 0.3})

The names below are loaded on first use: `import sor.errors` (every package does) or the
`sor` command's start-up must not pay for NumPy, pandas and Numba.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sor.kernel_cache import configure as _configure_kernel_cache

_configure_kernel_cache()  # before any kernel module is imported (see sor.kernel_cache)

if TYPE_CHECKING:
    from sor.config import Config, load_config
    from sor.data.loader import DataSummary, load_snapshots, load_updates
    from sor.data.snapshots import QuoteUpdates, Snapshots
    from sor.errors import ConfigError, DataError, SorError, StreamError
    from sor.evaluation.modes import Evaluation, TrialOutcome, prepare
    from sor.evaluation.rules import EvaluationRules, evaluation_rules
    from sor.execution.engine import ExecutionResult
    from sor.routers.placement import PlacementParams
    from sor.routers.static import RouterParams
    from sor.synth.generate import generate

__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "Evaluation",
    "EvaluationRules",
    "ExecutionResult",
    "DataSummary",
    "PlacementParams",
    "QuoteUpdates",
    "RouterParams",
    "Snapshots",
    "SorError",
    "StreamError",
    "TrialOutcome",
    "evaluation_rules",
    "generate",
    "load_config",
    "load_snapshots",
    "load_updates",
    "prepare",
]

# Where each public name lives; the TYPE_CHECKING imports above say the same for type checkers
# (tests/test_public_api.py keeps the two in step).
_HOME = {
    "Config": "sor.config",
    "load_config": "sor.config",
    "DataSummary": "sor.data.loader",
    "load_snapshots": "sor.data.loader",
    "load_updates": "sor.data.loader",
    "QuoteUpdates": "sor.data.snapshots",
    "Snapshots": "sor.data.snapshots",
    "ConfigError": "sor.errors",
    "DataError": "sor.errors",
    "SorError": "sor.errors",
    "StreamError": "sor.errors",
    "Evaluation": "sor.evaluation.modes",
    "TrialOutcome": "sor.evaluation.modes",
    "prepare": "sor.evaluation.modes",
    "EvaluationRules": "sor.evaluation.rules",
    "evaluation_rules": "sor.evaluation.rules",
    "ExecutionResult": "sor.execution.engine",
    "PlacementParams": "sor.routers.placement",
    "RouterParams": "sor.routers.static",
    "generate": "sor.synth.generate",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'sor' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
