"""The words and constants sor's settings are made of, each defined once.

Every choice a user makes by name is a `Literal` type here; the configuration (`sor.config`)
types its fields with them, and the code that checks a value at run time uses the tuple of
names derived from the same type (`get_args`), so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "ALLOCATORS",
    "ALLOCATOR_PARAMS",
    "CAPS",
    "CHILD_SIZINGS",
    "CLOCKS",
    "COST_BASES",
    "CROSSED",
    "DEFAULT_FEE",
    "DEFAULT_MAX_DATA_BYTES",
    "DEFAULT_REBATE",
    "FILL_MODELS",
    "GENERATED_SYMBOL_PREFIX",
    "MAX_SIZE",
    "NS_PER_S",
    "PARAM_NAMES",
    "QUEUE_MODELS",
    "SAMPLERS",
    "SEARCHED_PARAMS",
    "SECRET_WORDS",
    "Allocator",
    "Cap",
    "ChildSizing",
    "Clock",
    "CostBasis",
    "Crossed",
    "FillModel",
    "QueueModel",
    "SamplerName",
]

#: How much the static allocator may send to one venue: its displayed size, or the whole order
#: (docs/model.md, the allocator).
Cap = Literal["displayed", "order"]
#: Prices the static allocator compares: measured from the mid, or raw cash.
CostBasis = Literal["mid", "cash"]
#: Child orders of the static router: what can fill now, or all remaining shares or nothing.
ChildSizing = Literal["available", "all_or_none"]
#: Whether taken shares stay taken until the ask moves (strict) or every snapshot shows its full
#: displayed size again (naive, the task's replay).
FillModel = Literal["strict", "naive"]
#: Which router decides: the static split at every snapshot, or the Cont & Kukanov placement
#: of a market order and limit orders every T seconds.
Allocator = Literal["static", "cont_kukanov"]
#: How cancellations move a resting limit order in its queue.
QueueModel = Literal["conservative", "probabilistic"]
#: Optuna samplers a sweep can use.
SamplerName = Literal["grid", "random", "tpe", "cmaes", "qmc"]
#: Which timestamp of a data row orders the snapshots.
Clock = Literal["ts_event", "ts_recv"]
#: What the loader does with a crossed quote (bid above ask at one venue).
Crossed = Literal["error", "skip"]

CAPS: tuple[Cap, ...] = get_args(Cap)
COST_BASES: tuple[CostBasis, ...] = get_args(CostBasis)
CHILD_SIZINGS: tuple[ChildSizing, ...] = get_args(ChildSizing)
FILL_MODELS: tuple[FillModel, ...] = get_args(FillModel)
ALLOCATORS: tuple[Allocator, ...] = get_args(Allocator)
QUEUE_MODELS: tuple[QueueModel, ...] = get_args(QueueModel)
SAMPLERS: tuple[SamplerName, ...] = get_args(SamplerName)
CLOCKS: tuple[Clock, ...] = get_args(Clock)
CROSSED: tuple[Crossed, ...] = get_args(Crossed)

#: The parameters a sweep can tune: three penalties in dollars per share and the horizon T.
PARAM_NAMES = ("lambda_over", "lambda_under", "theta_queue", "horizon_s")
#: The parameters each allocator uses: horizon_s (T) only matters to the Cont & Kukanov router.
ALLOCATOR_PARAMS: dict[Allocator, tuple[str, ...]] = {
    "static": ("lambda_over", "lambda_under", "theta_queue"),
    "cont_kukanov": PARAM_NAMES,
}
#: The parameters each allocator's default search space varies: those that can change its
#: answer. The static allocator's cost never has an overfill (model.md §3), so lambda_over cannot
#: change its split: the sweep fixes it at `params.lambda_over` unless `search.space` sets it.
SEARCHED_PARAMS: dict[Allocator, tuple[str, ...]] = {
    "static": ("lambda_under", "theta_queue"),
    "cont_kukanov": PARAM_NAMES,
}

DEFAULT_FEE = 0.003  #: dollars per share taken
DEFAULT_REBATE = 0.002  #: dollars per share posted
MAX_SIZE = 10**9  #: shares; larger sizes in data are taken for corrupt data
#: bytes; the largest data file content (after decompression) read unless configured otherwise
#: (`data.max_bytes`). Loading takes about three times the content in memory, so this bounds a
#: run to a few GiB and stops a small gzip file that inflates to many GiB early.
DEFAULT_MAX_DATA_BYTES = 2**30
NS_PER_S = 1_000_000_000  #: nanoseconds per second
#: Start of the symbol `sor.synth.generate` writes (SYNTH-AAPL): no exchange lists such a
#: symbol, so a generated CSV says it is generated wherever it travels, and the loader knows.
GENERATED_SYMBOL_PREFIX = "SYNTH-"
#: Words that mark a setting as secret wherever settings are logged or written out.
SECRET_WORDS = ("password", "token", "keyfile", "secret")
