"""Stylized facts of multi-venue market data that decide execution costs (model.md §8).

Pure functions: arrays in, numbers out. The same functions measure a real Databento MBP file
and a generated one, so `bench/calibration.py` and the calibration tests compare like with like.
`read_tape` is the one function that touches a file.

Conventions:

* A *quote row* is any row that is not a trade (action != "T"); its book columns show that
  venue's book after the update.
* The *pre-trade quote* of a print is the book of the previous row of the same venue (for a
  trade row, the book columns may show the book after the trade).
* The *reference mid* is the mid of the reference venue, the venue with the most quote rows
  (XNAS in a one-venue XNAS file, XNYS in the 2018 TAQ day), carried forward from its last
  quote row. One venue's mid, not the consolidated one: stale quotes of slow venues cross the
  consolidated book most of the day in the TAQ file.
* Prices in dollars per share, sizes in shares, times in ns since the epoch, drift in basis
  points of the pre-trade reference mid, signed so that a fall is negative.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DRIFT_HORIZONS_S",
    "Tape",
    "compare",
    "interarrival",
    "measure",
    "measure_days",
    "mid_volatility",
    "post_trade_drift",
    "print_location",
    "queue_rates",
    "read_tape",
    "reference_mid",
    "reference_venue",
    "session_mask",
    "spreads",
    "best_sizes",
    "trade_sizes",
]

DRIFT_HORIZONS_S = (1.0, 5.0, 30.0)  #: horizons of the post-trade drift, seconds
_NS = 1_000_000_000
_TRADE = ord("T")
_SELL, _BUY = ord("A"), ord("B")  # aggressor sides of a trade row


@dataclass(frozen=True, eq=False)
class Tape:
    """The columns of an MBP file the facts need, one entry per row in file order.

    Attributes:
        ts: int64 ts_event, ns since the epoch.
        venue: int64 publisher_id.
        action: uint8 action letter (ord("T") for a trade).
        side: uint8 side letter (a trade's aggressor: ord("B") buy, ord("A") sell, ord("N")).
        price: float64 price of the row's event, dollars per share (NaN where undefined).
        size: int64 size of the row's event, shares.
        bid_px: float64 best bid after the row, dollars per share (NaN where empty).
        ask_px: float64 best ask after the row, dollars per share (NaN where empty).
        bid_sz: int64 best bid size, shares.
        ask_sz: int64 best ask size, shares.
    """

    ts: np.ndarray
    venue: np.ndarray
    action: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    bid_px: np.ndarray
    ask_px: np.ndarray
    bid_sz: np.ndarray
    ask_sz: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, rows: np.ndarray) -> Tape:
        """The tape of `rows` (a boolean mask or indices), in that order."""
        return Tape(**{k: getattr(self, k)[rows] for k in self.__dataclass_fields__})


def read_tape(path: str | Path) -> Tape:
    """Read the columns of `Tape` from a Databento MBP-1/MBP-10 CSV (plain or gzip).

    Pretty style (ISO timestamps, decimal prices) and raw style (integer ns, 1e-9 prices) are
    both read.
    """
    import pandas as pd  # imported on use: the measuring functions need only numpy

    cols = ["ts_event", "publisher_id", "action", "side", "price", "size"]
    cols += ["bid_px_00", "ask_px_00", "bid_sz_00", "ask_sz_00"]
    df = pd.read_csv(path, usecols=cols, dtype={"action": str, "side": str})
    ts = df["ts_event"]
    if pd.api.types.is_numeric_dtype(ts):
        ts_ns = ts.to_numpy(np.int64)
    else:
        ts_ns = pd.to_datetime(ts, utc=True).to_numpy("datetime64[ns]").astype(np.int64)

    def px(name: str) -> np.ndarray:
        a = df[name].to_numpy(np.float64)
        if np.nanmax(np.abs(a), initial=0.0) > 1e7:  # raw style: 1e-9 units, i64::MAX undefined
            a = np.where(a > 9e18, np.nan, a / 1e9)
        return np.where(a > 0, a, np.nan)

    def letters(name: str) -> np.ndarray:
        s = np.asarray(df[name].fillna("N").to_numpy(dtype=object), dtype="U1")
        return s.view(np.uint32).astype(np.uint8)

    return Tape(
        ts=ts_ns,
        venue=df["publisher_id"].to_numpy(np.int64),
        action=letters("action"),
        side=letters("side"),
        price=px("price"),
        size=df["size"].to_numpy(np.int64),
        bid_px=px("bid_px_00"),
        ask_px=px("ask_px_00"),
        bid_sz=df["bid_sz_00"].to_numpy(np.int64),
        ask_sz=df["ask_sz_00"].to_numpy(np.int64),
    )


def session_mask(ts: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """Rows whose UTC time of day lies in [start_s, end_s) seconds after midnight."""
    tod = (ts % (86_400 * _NS)) / _NS
    return (tod >= start_s) & (tod < end_s)


def _pretrade_rows(venue: np.ndarray) -> np.ndarray:
    """For each row, the index of the previous row of the same venue (-1 for a venue's first)."""
    prev = np.full(len(venue), -1, dtype=np.int64)
    for v in np.unique(venue):
        rows = np.flatnonzero(venue == v)
        prev[rows[1:]] = rows[:-1]
    return prev


def reference_venue(venue: np.ndarray, action: np.ndarray) -> int:
    """The publisher_id with the most quote rows."""
    ids, counts = np.unique(venue[action != _TRADE], return_counts=True)
    return int(ids[np.argmax(counts)])


def reference_mid(tape: Tape, ref: int) -> np.ndarray:
    """The mid of venue `ref` after each row, carried forward from its last quote row (NaN before
    its first two-sided quote)."""
    own = (tape.venue == ref) & (tape.action != _TRADE)
    mid = np.where(own, (tape.bid_px + tape.ask_px) / 2, np.nan)
    valid = ~np.isnan(mid)
    last = np.where(valid, np.arange(len(mid)), -1)
    np.maximum.accumulate(last, out=last)
    return np.where(last >= 0, mid[np.maximum(last, 0)], np.nan)


def spreads(tape: Tape, tick: float) -> dict[int, dict[str, float]]:
    """Quoted spread per venue over its two-sided quote rows, in ticks.

    Returns:
        publisher_id -> {"median", "mean", "p90", "one_tick" (share of rows at one tick), "rows"}.
    """
    out: dict[int, dict[str, float]] = {}
    quote = (tape.action != _TRADE) & ~np.isnan(tape.bid_px) & ~np.isnan(tape.ask_px)
    for v in np.unique(tape.venue[quote]).tolist():
        s = np.rint((tape.ask_px - tape.bid_px)[quote & (tape.venue == v)] / tick)
        out[int(v)] = {
            "median": float(np.median(s)),
            "mean": float(s.mean()),
            "p90": float(np.quantile(s, 0.9)),
            "one_tick": float(np.mean(s == 1)),
            "rows": float(len(s)),
        }
    return out


def best_sizes(tape: Tape) -> dict[int, dict[str, float]]:
    """Displayed size at the best bid and ask per venue over its quote rows, shares.

    Returns:
        publisher_id -> {"median", "mean"} of bid and ask sizes pooled.
    """
    out: dict[int, dict[str, float]] = {}
    quote = tape.action != _TRADE
    for v in np.unique(tape.venue[quote]).tolist():
        m = quote & (tape.venue == v)
        sz = np.concatenate(
            [tape.bid_sz[m & ~np.isnan(tape.bid_px)], tape.ask_sz[m & ~np.isnan(tape.ask_px)]]
        )
        if len(sz):
            out[int(v)] = {"median": float(np.median(sz)), "mean": float(sz.mean())}
    return out


def trade_sizes(size: np.ndarray) -> dict[str, float]:
    """Distribution of print sizes, shares: mean, median, p90, odd-lot share (< 100 shares) and
    round-lot share (a positive multiple of 100)."""
    q = np.asarray(size, dtype=np.float64)
    if len(q) == 0:
        return {k: math.nan for k in ("mean", "median", "p90", "odd_lot", "round_lot")}
    return {
        "mean": float(q.mean()),
        "median": float(np.median(q)),
        "p90": float(np.quantile(q, 0.9)),
        "odd_lot": float(np.mean(q < 100)),
        "round_lot": float(np.mean((q % 100 == 0) & (q > 0))),
    }


def interarrival(ts: np.ndarray) -> dict[str, float]:
    """Gaps between consecutive prints: mean (s), coefficient of variation (1 for a Poisson
    stream, above 1 when prints cluster) and the share of gaps under one millisecond (prints of
    one sweep)."""
    gaps: np.ndarray = np.diff(np.sort(np.asarray(ts, dtype=np.int64))) / _NS
    if len(gaps) < 2:
        return {"mean_s": math.nan, "cv": math.nan, "under_1ms": math.nan}
    mean = float(gaps.mean())
    return {
        "mean_s": mean,
        "cv": float(gaps.std() / mean) if mean > 0 else math.nan,
        "under_1ms": float(np.mean(gaps < 1e-3)),
    }


def print_location(tape: Tape) -> dict[str, float]:
    """Where prints happen against their venue's pre-trade quote: the shares at (or through) the
    bid, at (or through) the ask, and strictly inside the spread."""
    prev = _pretrade_rows(tape.venue)
    tr = np.flatnonzero((tape.action == _TRADE) & (prev >= 0))
    p, j = tape.price[tr], prev[tr]
    bid, ask = tape.bid_px[j], tape.ask_px[j]
    ok = ~np.isnan(bid) & ~np.isnan(ask) & ~np.isnan(p)
    p, bid, ask = p[ok], bid[ok], ask[ok]
    if len(p) == 0:
        return {"at_bid": math.nan, "at_ask": math.nan, "inside": math.nan}
    eps = 1e-9
    at_bid = p <= bid + eps
    at_ask = (p >= ask - eps) & ~at_bid
    return {
        "at_bid": float(at_bid.mean()),
        "at_ask": float(at_ask.mean()),
        "inside": float(1 - at_bid.mean() - at_ask.mean()),
    }


def queue_rates(tape: Tape, venue: int) -> dict[str, float]:
    """How fast the best bid queue of `venue` empties and refills, per second of that venue's
    rows, in shares and relative to its mean size.

    Between two consecutive rows of the venue at the same best bid price, a smaller size is
    depletion (trades and cancels) and a larger one replenishment (adds). A change of the best
    bid price starts a new queue; `queue_life_s` is the mean time between such changes.

    Returns:
        {"deplete_per_s", "replenish_per_s"}: shares per second divided by the mean best bid
        size (1/s); "queue_life_s".
    """
    rows = np.flatnonzero((tape.venue == venue) & ~np.isnan(tape.bid_px))
    if len(rows) < 2:
        return {"deplete_per_s": math.nan, "replenish_per_s": math.nan, "queue_life_s": math.nan}
    px, sz, ts = tape.bid_px[rows], tape.bid_sz[rows].astype(np.float64), tape.ts[rows]
    same = np.abs(np.diff(px)) < 1e-9
    d = np.diff(sz)[same]
    span_s = max((ts[-1] - ts[0]) / _NS, 1e-9)
    mean_sz = max(float(sz.mean()), 1.0)
    changes = int(np.count_nonzero(~same))
    return {
        "deplete_per_s": float(-d[d < 0].sum() / span_s / mean_sz),
        "replenish_per_s": float(d[d > 0].sum() / span_s / mean_sz),
        "queue_life_s": span_s / changes if changes else math.nan,
    }


def post_trade_drift(
    ts: np.ndarray,
    mid: np.ndarray,
    trades: np.ndarray,
    horizons_s: Sequence[float] = DRIFT_HORIZONS_S,
) -> dict[float, tuple[float, float, int]]:
    """Mean move of the reference mid after prints, basis points of the pre-trade mid.

    Args:
        ts: int64[R] ts_event of every row, ns, non-decreasing.
        mid: float64[R] reference mid after each row.
        trades: int[K] row indices of the prints to average over (e.g. sell-aggressor prints).
        horizons_s: horizons h, seconds.

    Returns:
        h -> (mean, standard error, prints): the mid at the last row with ts <= ts_print + h
        against the mid of the row before the print. Prints whose horizon ends after the last
        row, or without a mid, are left out.
    """
    out: dict[float, tuple[float, float, int]] = {}
    tr = np.asarray(trades, dtype=np.int64)
    tr = tr[tr >= 1]
    for h in horizons_s:
        end = ts[tr] + int(round(h * _NS))
        j = np.searchsorted(ts, end, side="right") - 1
        m0 = mid[tr - 1]
        d = (mid[j] - m0) / m0 * 1e4
        d = d[(end <= ts[-1]) & ~np.isnan(d)] if len(tr) else d
        n = len(d)
        mean = float(d.mean()) if n else math.nan
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        out[h] = (mean, se, n)
    return out


def mid_volatility(ts: np.ndarray, mid: np.ndarray, interval_s: float = 60.0) -> float:
    """Standard deviation of the mid's change over consecutive `interval_s` intervals, basis
    points (the mid sampled at the last row of each interval; empty intervals left out)."""
    ok = ~np.isnan(mid)
    ts, mid = ts[ok], mid[ok]
    if len(ts) < 3:
        return math.nan
    bucket = (ts - ts[0]) // int(interval_s * _NS)
    last = np.flatnonzero(np.diff(bucket, append=bucket[-1] + 1))
    m, b = mid[last], bucket[last]
    step = np.diff(b) == 1
    r = (np.diff(m) / m[:-1] * 1e4)[step]
    return float(r.std(ddof=1)) if len(r) > 1 else math.nan


def compare(
    real: Mapping[str, float],
    generated: Mapping[str, float],
    tolerances: Mapping[str, tuple[float, float]],
) -> list[str]:
    """The facts outside tolerance, as lines "name: real r, generated g, allowed +-a".

    A fact passes when |g - r| <= max(rel * |r|, abs) for its (rel, abs) in `tolerances`.
    """
    bad = []
    for name, (rel, absolute) in tolerances.items():
        r, g = real[name], generated.get(name, math.nan)
        allowed = max(rel * abs(r), absolute)
        if not abs(g - r) <= allowed:
            bad.append(f"{name}: real {r:.4g}, generated {g:.4g}, allowed +-{allowed:.3g}")
    return bad


def measure_days(tape: Tape, tick: float = 0.01) -> dict[str, float]:
    """`measure` of each UTC day of `tape` separately, averaged over the days (standard errors
    combined as of a mean of independent estimates). Keeps overnight gaps out of every fact."""
    day = tape.ts // (86_400 * _NS)
    per_day = [measure(tape.take(day == d), tick) for d in np.unique(day).tolist()]
    out: dict[str, float] = {}
    for k in per_day[0]:
        vals = np.array([m.get(k, math.nan) for m in per_day])
        if k.endswith("_se"):
            out[k] = float(np.sqrt(np.nansum(vals**2))) / max(int(np.sum(~np.isnan(vals))), 1)
        elif k in ("rows", "trades", "duration_s"):
            out[k] = float(np.nansum(vals))
        else:
            out[k] = float(np.nanmean(vals)) if np.any(~np.isnan(vals)) else math.nan
    out["days"] = float(len(per_day))
    return out


def measure(tape: Tape, tick: float = 0.01) -> dict[str, float]:
    """Every fact of `tape` as one flat table: name -> value.

    Names: `spread_median[v]`, `spread_mean[v]`, `spread_p90[v]`, `spread_one_tick[v]`,
    `best_size_median[v]`, `best_size_mean[v]` per venue v; `trade_size_*`, `gap_*`, `print_*`;
    `deplete_per_s`, `replenish_per_s`, `queue_life_s` of the reference venue; `drift_sell_{h}s`
    and `drift_buy_{h}s` (with `_se`), and `quote_rows[v]`, `trade_share[v]` (the venue's share of
    prints).
    """
    out: dict[str, float] = {}
    for v, st in spreads(tape, tick).items():
        for k in ("median", "mean", "p90", "one_tick"):
            out[f"spread_{k}[{v}]"] = st[k]
        out[f"quote_rows[{v}]"] = st["rows"]
    for v, st in best_sizes(tape).items():
        out[f"best_size_median[{v}]"] = st["median"]
        out[f"best_size_mean[{v}]"] = st["mean"]
    is_trade = tape.action == _TRADE
    n_trades = int(np.count_nonzero(is_trade))
    for v in np.unique(tape.venue).tolist():
        out[f"trade_share[{v}]"] = (
            float(np.count_nonzero(is_trade & (tape.venue == v))) / n_trades if n_trades else 0.0
        )
    for k, x in trade_sizes(tape.size[is_trade]).items():
        out[f"trade_size_{k}"] = x
    for k, x in interarrival(tape.ts[is_trade]).items():
        out[f"gap_{k}"] = x
    for k, x in print_location(tape).items():
        out[f"print_{k}"] = x
    ref = reference_venue(tape.venue, tape.action)
    out.update(queue_rates(tape, ref))
    mid = reference_mid(tape, ref)
    out["vol_1min_bps"] = mid_volatility(tape.ts, mid)
    for name, letter in (("sell", _SELL), ("buy", _BUY)):
        drift = post_trade_drift(tape.ts, mid, np.flatnonzero(is_trade & (tape.side == letter)))
        for h, (mean, se, _) in drift.items():
            out[f"drift_{name}_{h:g}s"] = mean
            out[f"drift_{name}_{h:g}s_se"] = se
    for h in DRIFT_HORIZONS_S:
        # Adverse selection of a resting order, both sides pooled: positive when the mid moves
        # on with the aggressor.
        out[f"drift_{h:g}s"] = (out[f"drift_buy_{h:g}s"] - out[f"drift_sell_{h:g}s"]) / 2
    out["reference_venue"] = float(ref)
    out["rows"] = float(len(tape))
    out["trades"] = float(n_trades)
    out["duration_s"] = float((tape.ts.max() - tape.ts.min()) / _NS) if len(tape) else 0.0
    return out
