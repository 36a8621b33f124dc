"""Benchmark strategies (model.md §5): best_ask, twap and vwap."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from sor.data.snapshots import Snapshots
from sor.execution.depth import sweep_ladder
from sor.execution.engine import Strategy

__all__ = [
    "BASELINES",
    "Baseline",
    "BestAsk",
    "Twap",
    "Vwap",
    "savings_bps",
    "twap_due",
    "vwap_due",
]


class Baseline(Strategy, Protocol):
    """A benchmark strategy that can be built for any parent order (an entry of `BASELINES`)."""

    @classmethod
    def for_order(cls, snaps: Snapshots, order_size: int, twap_bucket_s: float) -> Baseline:
        """The strategy for a parent order of `order_size` shares over `snaps`."""
        ...


class BestAsk:
    """At each snapshot, all remaining shares to the one venue with the lowest ask.

    Ties: the larger displayed size, then the lower publisher_id. Venues with nothing left to
    take (strict fill model) are passed over.

    Compiled twin, executed: `sor.evaluation.baselines_nb._execute`, run by
    `sor.evaluation.baselines_nb.run_baseline_nb`.
    """

    name = "best_ask"

    def __init__(self, snaps: Snapshots) -> None:
        self._snaps = snaps

    @classmethod
    def for_order(cls, snaps: Snapshots, order_size: int, twap_bucket_s: float) -> BestAsk:
        """Best-Ask needs neither the order size nor a bucket."""
        return cls(snaps)

    def next_action(self, t: int, filled: int) -> int:
        """Acts at every snapshot."""
        return t

    def orders(self, t: int, remaining: int, prices: np.ndarray, left: np.ndarray) -> np.ndarray:
        """All `remaining` shares to the venue with the lowest ask that has shares left; it
        fills what its visible levels hold, cheapest first.

        Compiled twin: `sor.evaluation.baselines_nb._best_ask_venue`.
        """
        available = left.sum(axis=1)
        sent = np.zeros(len(available), dtype=np.int64)
        quoted = np.flatnonzero(available > 0)
        if len(quoted):
            ask = self._snaps.ask_px[t, quoted]
            best = quoted[np.lexsort((self._snaps.venues[quoted], -available[quoted], ask))[0]]
            sent[best] = remaining
        return sent


class _Schedule:
    """Buys, at each snapshot, what a cumulative schedule `due` says is due and not yet filled."""

    name = "schedule"

    def __init__(self, snaps: Snapshots, due: np.ndarray) -> None:
        self._snaps = snaps
        self.due = due  #: int64[T], shares due by each snapshot, non-decreasing

    def next_action(self, t: int, filled: int) -> int:
        """The first snapshot from t on whose due exceeds what is filled (due never decreases)."""
        return max(t, int(np.searchsorted(self.due, filled, side="right")))

    def orders(self, t: int, remaining: int, prices: np.ndarray, left: np.ndarray) -> np.ndarray:
        """The shortfall against the schedule, to the cheapest asks first across venues and
        levels."""
        filled = int(self.due[-1]) - remaining
        need = int(self.due[t]) - filled
        return sweep_ladder(need, prices, left, self._snaps.venues)


def twap_due(ts: np.ndarray, order_size: int, bucket_s: float) -> np.ndarray:
    """int64[T] shares due by each snapshot under TWAP (model.md §5).

    n_buckets = ceil(window_seconds / bucket_s) over the first-to-last snapshot window; a
    snapshot in bucket k is due floor(S * (k + 1) / n_buckets), all S in the last bucket.
    """
    if bucket_s <= 0:
        raise ValueError(f"`twap_bucket_s > 0` must hold, but got {bucket_s=}.")
    elapsed = ts - ts[0]
    bucket_ns = bucket_s * 1e9
    n_buckets = max(1, math.ceil(int(elapsed[-1]) / bucket_ns))
    bucket = np.minimum((elapsed // bucket_ns).astype(np.int64), n_buckets - 1)
    due: np.ndarray = (order_size * (bucket + 1)) // n_buckets
    return due


def vwap_due(snaps: Snapshots, order_size: int) -> np.ndarray:
    """int64[T] shares due by each snapshot under VWAP (model.md §5).

    Due is floor(S * V(t) / V) with V(t) the traded volume up to t; with no trades in the data,
    displayed ask size summed over venues stands in for traded volume.
    """
    volume = snaps.trade_volume
    if volume.sum() == 0:
        volume = snaps.ask_sz.sum(axis=1)
    cumulative = np.cumsum(volume, dtype=np.int64)
    total = int(cumulative[-1])
    if total == 0:
        return np.full(len(snaps), order_size, dtype=np.int64)
    due = (order_size * cumulative) // total
    due[-1] = order_size
    return due


class Twap(_Schedule):
    """Time-weighted schedule in buckets of `bucket_s` seconds.

    Compiled twin, executed: `sor.evaluation.baselines_nb._execute` (its `next_action` and
    `orders` inline), run by `sor.evaluation.baselines_nb.run_baseline_nb`.
    """

    name = "twap"

    def __init__(self, snaps: Snapshots, order_size: int, bucket_s: float = 60.0) -> None:
        super().__init__(snaps, twap_due(snaps.ts, order_size, bucket_s))

    @classmethod
    def for_order(cls, snaps: Snapshots, order_size: int, twap_bucket_s: float) -> Twap:
        """TWAP over buckets of `twap_bucket_s` seconds."""
        return cls(snaps, order_size, twap_bucket_s)


class Vwap(_Schedule):
    """Volume-weighted schedule following the market's traded volume.

    Compiled twin, executed: `sor.evaluation.baselines_nb._execute` (its `next_action` and
    `orders` inline), run by `sor.evaluation.baselines_nb.run_baseline_nb`.
    """

    name = "vwap"

    def __init__(self, snaps: Snapshots, order_size: int) -> None:
        super().__init__(snaps, vwap_due(snaps, order_size))

    @classmethod
    def for_order(cls, snaps: Snapshots, order_size: int, twap_bucket_s: float) -> Vwap:
        """VWAP needs no bucket."""
        return cls(snaps, order_size)


#: The benchmarks every router is measured against, in report order: a new one is a class here.
BASELINES: tuple[type[Baseline], ...] = (BestAsk, Twap, Vwap)


def savings_bps(baseline_avg_px: float, optimized_avg_px: float) -> float:
    """Savings of the router against a baseline in basis points; positive: the router paid less."""
    return (baseline_avg_px - optimized_avg_px) / baseline_avg_px * 1e4
