"""Passive fills with queue position, and the bid-queue outflow the Cont & Kukanov model samples.

A limit buy posted at a venue's best bid joins the back of that venue's queue: the displayed bid
size when it is posted is ahead of it. With top-of-book data the queue is seen only through the
venue's best bid (price and size) and trade prints, so the model (docs/cont-kukanov-router.md §2):

- Which prints can fill a resting buy, by the print's aggressor side (`trade_side`): a sell
  (-1, Databento 'A': a seller hit the bid) can; a buy (+1, 'B': a buyer lifted the ask) never
  can, whatever its price, and is ignored here altogether (it took nothing from the bid queue);
  a print without a side (0, 'N') can, as if it were a sell (the price rule alone decides).
- Such a print at the venue at the order's price first consumes the volume ahead, then fills
  the order; one below it means the level is empty, so it fills the order at once; one above it
  traded at a better bid, in front of the order, and fills nothing (trades are processed before
  the book update of their snapshot row).
- A decrease of the displayed size at the order's price that trades do not explain is a
  cancellation. `CONSERVATIVE` (the default): cancellations never move the order forward,
  except that nothing can be ahead of it beyond what is displayed (ahead = min(ahead, size)).
  `PROBABILISTIC`: a cancellation of c shares comes from ahead of the order with the share
  f(ahead) / (f(ahead) + f(behind)), f(x) = x ** power, as in the probabilistic queue models of
  high-frequency backtesters (hftbacktest's ProbQueueModel with a power function).
- The bid falling below the order's price (or the bid side emptying) means the whole level ahead
  left: the order is at the front. The bid rising above it hides the level: the order keeps its
  place and fills only from trades at or below its price.

Trades and book rows at a snapshot row are at the same clock time; everything at the posting
row happened before the decision, so fills start at the next row. Nothing here reads a row after
the one it is simulating: no look-ahead.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from sor.data.snapshots import BUY, Snapshots

__all__ = [
    "BidEvents",
    "CONSERVATIVE",
    "PROBABILISTIC",
    "QUEUE_MODELS",
    "bid_events",
    "outflow_samples",
    "queue_outflow",
    "simulate_resting",
    "simulate_resting_at",
    "trade_starts",
]

CONSERVATIVE = 0  #: cancellations never move a resting order forward
PROBABILISTIC = 1  #: cancellations come from ahead of the order with a queue-position share
QUEUE_MODELS = {"conservative": CONSERVATIVE, "probabilistic": PROBABILISTIC}

_PRICE_EPS = 1e-9


def trade_starts(snaps: Snapshots) -> np.ndarray:
    """int64[T + 1]: the trades of snapshot row t are `trade_*[starts[t]:starts[t + 1]]`."""
    return np.searchsorted(snaps.trade_row, np.arange(len(snaps) + 1), side="left").astype(np.int64)


@njit(cache=True)
def _can_fill_bid(side: int, trade_px: float, bid: float) -> bool:
    """Whether a print can take shares from a resting buy at `bid` (False for a NaN price).

    The one rule of passive fills and of the queue outflow: not a buy-aggressor print (a buyer
    lifted the ask; the bid queue gave nothing, whatever the price), and at or below `bid` (a
    sell, or a print of unknown side, there hit that bid or found the level empty).
    """
    return side != BUY and trade_px <= bid + _PRICE_EPS


@njit(cache=True)
def _ahead_after_cancel(front: float, back: float, cancelled: float, power: float) -> float:
    """Volume ahead after `cancelled` shares left the level (probabilistic model)."""
    f_front: float = front**power
    f_back: float = back**power
    if f_front + f_back <= 0.0:
        return 0.0
    behind_share = f_back / (f_front + f_back)
    return front - (1.0 - behind_share) * cancelled + min(back - behind_share * cancelled, 0.0)


@njit(cache=True)
def _start_resting(
    bid_px: np.ndarray,
    bid_sz: np.ndarray,
    first_row: int,
    price: np.ndarray,
    resting: np.ndarray,
    fills: np.ndarray,
    level_size: np.ndarray,
) -> float:
    """The level sizes seen at posting (`level_size` set in place); returns the shares filled."""
    total = 0.0
    for k in range(price.shape[0]):
        total += fills[k]
        if resting[k] > 0 and bid_px[first_row - 1, k] == price[k]:
            level_size[k] = bid_sz[first_row - 1, k]
    return total


@njit(cache=True)
def _fill_from_prints(
    first: int,
    end: int,
    trade_col: np.ndarray,
    trade_px: np.ndarray,
    trade_sz: np.ndarray,
    trade_side: np.ndarray,
    price: np.ndarray,
    ahead: np.ndarray,
    resting: np.ndarray,
    pending: np.ndarray,
    max_fill: float,
    total: float,
    fills: np.ndarray,
) -> tuple[float, bool]:
    """The prints first..end - 1 (one row's) against the resting orders: (shares filled in all,
    whether that reached `max_fill`, in which case the prints after the one that reached it are
    not read)."""
    for i in range(first, end):
        k = trade_col[i]
        if resting[k] - fills[k] <= 0:
            continue
        if not _can_fill_bid(trade_side[i], trade_px[i], price[k]):
            continue  # a buy-aggressor print, or one above the order's price
        volume = float(trade_sz[i])
        if trade_px[i] < price[k] - _PRICE_EPS:
            ahead[k] = 0.0  # a print below the order's price: its level is already empty
        used = min(ahead[k], volume)
        ahead[k] -= used
        if abs(trade_px[i] - price[k]) <= _PRICE_EPS:
            pending[k] += volume
        # whole shares: the probabilistic model can leave a fraction of a share ahead
        fill = min(resting[k] - fills[k], math.floor(volume - used + 1e-9), max_fill - total)
        if fill > 0:
            fills[k] += fill
            total += fill
        if total >= max_fill:
            return total, True
    return total, False


@njit(cache=True)
def _follow_bids(
    bid_px: np.ndarray,
    bid_sz: np.ndarray,
    t: int,
    price: np.ndarray,
    ahead: np.ndarray,
    resting: np.ndarray,
    fills: np.ndarray,
    level_size: np.ndarray,
    pending: np.ndarray,
    model: int,
    power: float,
) -> None:
    """The book update of row t of `bid_px` and `bid_sz`: each resting order's place in its
    venue's bid queue."""
    for k in range(price.shape[0]):
        if resting[k] - fills[k] <= 0:
            continue
        bp = bid_px[t, k]
        size = float(bid_sz[t, k])
        if np.isnan(bp) or bp < price[k] - _PRICE_EPS:
            ahead[k] = 0.0  # the level emptied: the order is at the front
            level_size[k] = -1.0
            pending[k] = 0.0
        elif bp > price[k] + _PRICE_EPS:
            level_size[k] = -1.0  # a better bid hides the order's level
            pending[k] = 0.0
        else:
            if level_size[k] >= 0 and level_size[k] > size:
                decrease = level_size[k] - size
                explained = min(decrease, pending[k])
                pending[k] -= explained
                cancelled = decrease - explained
                if model == PROBABILISTIC and cancelled > 0:
                    back = max(level_size[k] - ahead[k], 0.0)
                    ahead[k] = _ahead_after_cancel(ahead[k], back, cancelled, power)
            ahead[k] = max(min(ahead[k], size), 0.0)
            level_size[k] = size


@njit(cache=True, nogil=True)
def simulate_resting(
    bid_px: np.ndarray,
    bid_sz: np.ndarray,
    starts: np.ndarray,
    trade_col: np.ndarray,
    trade_px: np.ndarray,
    trade_sz: np.ndarray,
    trade_side: np.ndarray,
    first_row: int,
    last_row: int,
    price: np.ndarray,
    ahead: np.ndarray,
    resting: np.ndarray,
    max_fill: float,
    model: int,
    power: float,
    fills: np.ndarray,
) -> int:
    """Fill resting limit buys over snapshot rows first_row..last_row (inclusive).

    Args:
        bid_px, bid_sz: float64[T, N] / int64[T, N], the snapshots' best bids.
        starts, trade_col, trade_px, trade_sz, trade_side: the trade prints by row
            (`trade_starts`); a print fills only if `_can_fill_bid` (module docstring).
        first_row, last_row: the rows to simulate (the row after posting to the next decision).
        price: float64[N], each order's limit price (NaN: nothing resting there).
        ahead: float64[N], shares ahead of each order; updated in place.
        resting: float64[N], shares resting at each venue (whole shares).
        max_fill: stop once this many shares have filled in all (the parent is complete).
        model: CONSERVATIVE or PROBABILISTIC.
        power: exponent of the probabilistic model.
        fills: float64[N], shares filled per venue; updated in place.

    Returns:
        The last row simulated (earlier than `last_row` when `max_fill` was reached).
    """
    n = price.shape[0]
    level_size = np.full(n, -1.0)  # displayed size at the order's price; -1 while not seen
    pending = np.zeros(n)  # traded at the order's price, not yet seen as a size decrease
    total = _start_resting(bid_px, bid_sz, first_row, price, resting, fills, level_size)
    for t in range(first_row, last_row + 1):
        total, done = _fill_from_prints(
            starts[t], starts[t + 1], trade_col, trade_px, trade_sz, trade_side,
            price, ahead, resting, pending, max_fill, total, fills,
        )  # fmt: skip
        if done:
            return t
        _follow_bids(bid_px, bid_sz, t, price, ahead, resting, fills, level_size, pending,
                     model, power)  # fmt: skip
    return last_row


class BidEvents(NamedTuple):
    """The rows at which something can move a resting buy, with what `simulate_resting_at`
    reads there side by side (`bid_events`).

    Attributes:
        rows: int64[E], the rows t >= 1 with a print or a venue whose best bid (price or size)
            differs from row t - 1 (a missing bid equal to a missing bid), ascending.
        bid_px, bid_sz: float64[E, N] / int64[E, N], the best bids at those rows.
        first_print, end_print: int64[E], the prints of each row are
            `trade_*[first_print:end_print]`.
    """

    rows: np.ndarray
    bid_px: np.ndarray
    bid_sz: np.ndarray
    first_print: np.ndarray
    end_print: np.ndarray


def bid_events(snaps: Snapshots, starts: np.ndarray) -> BidEvents:
    """The `BidEvents` of `snaps`, `starts` its `trade_starts`.

    Between those rows nothing moves a resting buy: a row with the bids of the row before and no
    print leaves every order where that row left it (`simulate_resting_at`).
    """
    px, sz = snaps.bid_px, snaps.bid_sz
    same = ((px[1:] == px[:-1]) | (np.isnan(px[1:]) & np.isnan(px[:-1]))) & (sz[1:] == sz[:-1])
    moved = ~same.all(axis=1) | (starts[2:] > starts[1:-1])
    rows = (np.flatnonzero(moved) + 1).astype(np.int64)
    return BidEvents(
        rows,
        np.ascontiguousarray(px[rows], dtype=np.float64),
        np.ascontiguousarray(sz[rows], dtype=np.int64),
        np.ascontiguousarray(starts[rows], dtype=np.int64),
        np.ascontiguousarray(starts[rows + 1], dtype=np.int64),
    )


@njit(cache=True, nogil=True)
def simulate_resting_at(
    bid_px: np.ndarray,
    bid_sz: np.ndarray,
    starts: np.ndarray,
    trade_col: np.ndarray,
    trade_px: np.ndarray,
    trade_sz: np.ndarray,
    trade_side: np.ndarray,
    events: np.ndarray,
    event_px: np.ndarray,
    event_sz: np.ndarray,
    first_print: np.ndarray,
    end_print: np.ndarray,
    first_row: int,
    last_row: int,
    price: np.ndarray,
    ahead: np.ndarray,
    resting: np.ndarray,
    max_fill: float,
    model: int,
    power: float,
    fills: np.ndarray,
) -> int:
    """`simulate_resting` reading only the rows where something can move an order: first_row,
    then the rows of `events` up to last_row, each read from the arrays of `BidEvents` (`events`
    its rows, `event_px` ... `end_print` the rest, in order). The same fills, the same `ahead`.

    A row skipped here has no print and every venue's bid as in the row before, which the
    simulation has already followed: its update would set each order's state to what it is
    (the level emptied or hidden again, or the same size, with `ahead` already within it).
    """
    n = price.shape[0]
    level_size = np.full(n, -1.0)
    pending = np.zeros(n)
    total = _start_resting(bid_px, bid_sz, first_row, price, resting, fills, level_size)
    if first_row > last_row:
        return last_row
    total, done = _fill_from_prints(
        starts[first_row], starts[first_row + 1], trade_col, trade_px, trade_sz, trade_side,
        price, ahead, resting, pending, max_fill, total, fills,
    )  # fmt: skip
    if done:
        return first_row
    _follow_bids(bid_px, bid_sz, first_row, price, ahead, resting, fills, level_size, pending,
                 model, power)  # fmt: skip
    for i in range(np.searchsorted(events, first_row, side="right"), events.shape[0]):
        t = events[i]
        if t > last_row:
            break
        total, done = _fill_from_prints(
            first_print[i], end_print[i], trade_col, trade_px, trade_sz, trade_side,
            price, ahead, resting, pending, max_fill, total, fills,
        )  # fmt: skip
        if done:
            return int(t)
        _follow_bids(event_px, event_sz, i, price, ahead, resting, fills, level_size, pending,
                     model, power)  # fmt: skip
    return last_row


@njit(cache=True)
def _outflow_increments(
    bid_px: np.ndarray,
    bid_sz: np.ndarray,
    starts: np.ndarray,
    trade_col: np.ndarray,
    trade_px: np.ndarray,
    trade_sz: np.ndarray,
    trade_side: np.ndarray,
    out: np.ndarray,
) -> None:
    t_count, n = bid_px.shape
    pending = np.zeros(n)
    for t in range(1, t_count):
        for i in range(starts[t], starts[t + 1]):
            k = trade_col[i]
            prev = bid_px[t - 1, k]
            if not np.isnan(prev) and _can_fill_bid(trade_side[i], trade_px[i], prev):
                out[t, k] += trade_sz[i]
                pending[k] += trade_sz[i]
        for k in range(n):
            prev, now = bid_px[t - 1, k], bid_px[t, k]
            if np.isnan(prev):
                pending[k] = 0.0
                continue
            prev_size = float(bid_sz[t - 1, k])
            if np.isnan(now) or now < prev - _PRICE_EPS:
                left = prev_size  # the level emptied: all of it left the front
            elif now > prev + _PRICE_EPS:
                left = 0.0  # a new level in front: nothing left the old one that we can see
                pending[k] = 0.0
                continue
            else:
                left = max(prev_size - float(bid_sz[t, k]), 0.0)
            explained = min(left, pending[k])
            pending[k] -= explained
            out[t, k] += left - explained
            if np.isnan(now) or now < prev - _PRICE_EPS:
                pending[k] = 0.0


def queue_outflow(snaps: Snapshots) -> np.ndarray:
    """float64[T, N]: shares that left the front of each venue's bid queue at each snapshot row.

    Trades at or below the previous best bid, plus decreases of the best bid size at an unchanged
    price that those trades do not explain (cancellations), plus the whole level when the bid
    falls or empties (docs/cont-kukanov-router.md §3). Row t uses rows t - 1 and t only.

    The trades counted are exactly those that can fill a resting buy (`_can_fill_bid`, the rule
    of `simulate_resting`): sell-aggressor prints and prints without a side, never buy-aggressor
    prints. The Cont & Kukanov allocator reads these samples as the volume that would have
    reached a limit order at the back of the queue; counting prints that the execution never lets
    fill would make it expect passive fills the simulation cannot give. A buy-aggressor print is
    skipped altogether, not remembered as explaining a size drop: it took nothing from the bid,
    so a drop of the bid size that follows it is a cancellation and still counted as such.
    """
    out = np.zeros(snaps.bid_px.shape)
    _outflow_increments(
        snaps.bid_px,
        snaps.bid_sz,
        trade_starts(snaps),
        snaps.trade_col,
        snaps.trade_px,
        snaps.trade_sz,
        snaps.trade_side,
        out,
    )
    return out


def outflow_samples(
    ts: np.ndarray,
    cumulative: np.ndarray,
    decision_ts: int,
    horizon_ns: int,
    lookback_ns: int,
    max_samples: int,
) -> np.ndarray:
    """Joint outflow samples over past windows of length `horizon_ns`, strictly before a decision.

    Windows end at decision_ts - j * stride (j = 0, 1, ...) and lie within `lookback_ns` before
    the decision and after the first snapshot; the stride spaces up to `max_samples` of them
    evenly (overlapping when the lookback is shorter than max_samples horizons).

    Args:
        ts: int64[T], snapshot times.
        cumulative: float64[T + 1, N], row-wise cumulative outflow with a leading zero row.
        decision_ts: the decision time; only rows with ts < decision_ts are read.
        horizon_ns: T, the window length.
        lookback_ns: how far back windows may start.
        max_samples: at most this many windows.

    Returns:
        float64[n, N], one row per window; empty (n = 0) when no window fits.

    Compiled twin: `sor.routers.placement_nb._sample_windows` (the window rule).
    """
    earliest = max(int(ts[0]), decision_ts - lookback_ns)
    span = decision_ts - horizon_ns - earliest
    if span < 0 or horizon_ns <= 0:
        return np.zeros((0, cumulative.shape[1]))
    count = int(min(max_samples, span // max(horizon_ns // 4, 1) + 1))
    stride = span // max(count - 1, 1) if count > 1 else 0
    ends = decision_ts - stride * np.arange(count, dtype=np.int64)
    hi = np.searchsorted(ts, ends, side="left")
    lo = np.searchsorted(ts, ends - horizon_ns, side="left")
    samples: np.ndarray = cumulative[hi] - cumulative[lo]
    return samples
