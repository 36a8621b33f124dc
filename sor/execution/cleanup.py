"""The clean-up of a parent order: what its unfilled shares would cost after its horizon.

A strategy that leaves shares unfilled at the end of its horizon still has to buy them, and a
desk would do it with a marketable order. So the clean-up (docs/model.md §4):

1. keeps taking the visible ask depth of every venue, cheapest first, from the first snapshot
   after the horizon on, at every snapshot until the remainder is bought or the data ends, by
   the same strict fill model as the strategy (what the strategy took stays taken);
2. prices only what the data cannot supply before it ends by an explicit impact model, the
   square-root law: buying Q more shares costs the last best ask plus its fee, times
   (1 + Y * sigma * sqrt(Q / v)), with sigma the volatility of the mid per square-root second
   and v the traded volume per second, both estimated from the data itself (`ImpactModel`).

The square-root law's usual form, I = Y * sigma_day * sqrt(Q / V_day), needs daily figures;
with sigma_day = sigma * sqrt(D) and V_day = v * D for a session of D seconds, D cancels, so the
per-second estimates of a short file give the same number without assuming a session length.
Without trade prints in the data, v is the rate at which displayed best-ask size is depleted (a
proxy, reported as such).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sor.data.snapshots import Snapshots, reference_mid
from sor.execution.depth import PRICE_EPS, TakenMemory, shares_left, take_cheapest
from sor.execution.venues import VenueCosts
from sor.vocabulary import NS_PER_S

__all__ = [
    "AfterHorizon",
    "Cleanup",
    "ImpactModel",
    "OrderLimits",
    "after_horizon",
    "clean_up",
    "end_price",
    "estimate_impact",
]

#: Y of the square-root law: 1 sits at the conservative end of published estimates (0.5-1).
DEFAULT_IMPACT_Y = 1.0


@dataclass(frozen=True)
class ImpactModel:
    """The square-root law's inputs, estimated from one market's data.

    Attributes:
        sigma: volatility of the log mid per square-root second.
        volume_per_s: shares traded per second (or the depletion proxy).
        volume_source: "trades", "ask_depletion" (no trade prints in the data: the shares
            leaving the best asks), or "visible_depth_per_minute" (neither: the visible ask
            depth at the end taken as one minute's volume).
        y: the law's constant Y.
    """

    sigma: float
    volume_per_s: float
    volume_source: str
    y: float = DEFAULT_IMPACT_Y

    def fraction(self, shares: float) -> float:
        """Price impact of buying `shares` at once, as a fraction of the price.

        Compiled twin: `sor.execution.cleanup_nb._impact_fraction`.
        """
        if shares <= 0:
            return 0.0
        if not self.volume_per_s > 0:
            return math.inf
        return self.y * self.sigma * math.sqrt(shares / self.volume_per_s)

    def to_dict(self) -> dict[str, float | str]:
        """JSON-ready inputs of the model."""
        return {
            "law": "square_root",
            "y": self.y,
            "sigma_per_sqrt_s": self.sigma,
            "volume_per_s": self.volume_per_s,
            "volume_source": self.volume_source,
        }


def estimate_impact(snaps: Snapshots, y: float = DEFAULT_IMPACT_Y) -> ImpactModel:
    """Estimate the square-root law's sigma and v from `snaps`.

    sigma: the realized volatility of the log mid, per square-root second: the square root of
    the sum of squared changes of the log mid between snapshots over the data's duration (the
    mid of the best bid and ask across venues; the best ask where no bid shows). Microstructure
    noise can only raise it, which errs on the side of a dearer clean-up. v: total traded shares
    over the duration; without trades, the total decrease of each venue's best-ask size while
    its price stays the same (shares leaving the queue), per second.
    """
    ts = snaps.ts
    duration_s = max((int(ts[-1]) - int(ts[0])) / NS_PER_S, 1.0) if len(ts) else 1.0
    mid = reference_mid(snaps)
    mid = mid[np.isfinite(mid) & (mid > 0)]
    sigma = float(np.sqrt(np.sum(np.diff(np.log(mid)) ** 2) / duration_s)) if len(mid) > 1 else 0.0
    traded = float(snaps.trade_volume.sum())
    if traded > 0:
        return ImpactModel(sigma, traded / duration_s, "trades", y)
    px, sz = snaps.ask_px, snaps.ask_sz
    same = (px[1:] == px[:-1]) & np.isfinite(px[1:])
    depleted = np.where(same, np.maximum(sz[:-1] - sz[1:], 0), 0).sum()
    if depleted > 0:
        return ImpactModel(sigma, float(depleted) / duration_s, "ask_depletion", y)
    # Nothing to measure a flow by (a few static snapshots): take the visible ask depth at the
    # end as one minute's volume, a guess the results name.
    prices, sizes = snaps.ask_ladder()
    shown = (
        np.where(np.isfinite(prices[-1]) & (sizes[-1] > 0), sizes[-1], 0).sum() if len(ts) else 0
    )
    return ImpactModel(sigma, max(float(shown), 1.0) / 60.0, "visible_depth_per_minute", y)


@dataclass(frozen=True, eq=False)
class AfterHorizon:
    """The data a parent order's clean-up may take from: the snapshots after its horizon.

    Compiled twin: `sor.execution.cleanup_nb.AfterArrays`.

    Attributes:
        prices: float64[R, N, L], the ask levels of the R rows after the horizon (views).
        sizes: int64[R, N, L], shares at those levels.
        best_ask: float64[R, N], each venue's best ask in those rows.
        venues: int[N] publisher_ids of the venue columns.
        trade_volume: int64[R], the market's traded shares at those rows (the participation
            cap counts them).
        end_price: dollars per share of the best ask plus its fee at the data's last snapshot
            that shows an ask (the lowest fee among venues tied at that price).
        impact: the impact model for what the rows cannot supply.
    """

    prices: np.ndarray
    sizes: np.ndarray
    best_ask: np.ndarray
    venues: np.ndarray
    trade_volume: np.ndarray
    end_price: float
    impact: ImpactModel


def after_horizon(
    snaps: Snapshots,
    costs: VenueCosts,
    start: int,
    impact: ImpactModel,
    last_price: float | None = None,
) -> AfterHorizon:
    """The rows of `snaps` from `start` on (none when start == len(snaps)), as views.

    `last_price`: `end_price(snaps, costs)` when the caller has it (it reads every row, the same
    for every parent order over `snaps`).
    """
    prices, sizes = snaps.ask_ladder()
    return AfterHorizon(
        prices=prices[start:],
        sizes=sizes[start:],
        best_ask=snaps.ask_px[start:],
        venues=snaps.venues,
        trade_volume=snaps.trade_volume[start:],
        end_price=end_price(snaps, costs) if last_price is None else last_price,
        impact=impact,
    )


def end_price(snaps: Snapshots, costs: VenueCosts) -> float:
    """The best ask plus its fee at the last snapshot showing an ask (lowest fee among ties)."""
    with_ask = np.flatnonzero(np.isfinite(snaps.ask_px).any(axis=1))
    if len(with_ask) == 0:
        return math.nan
    ask = snaps.ask_px[int(with_ask[-1])]
    best = float(np.nanmin(ask))
    return best + float(costs.fee[np.isfinite(ask) & (ask <= best + PRICE_EPS)].min())


@dataclass(frozen=True)
class Cleanup:
    """What the clean-up bought and paid.

    Compiled twin: `sor.execution.cleanup_nb.CleanupTotals`.

    Attributes:
        taken_shares: shares taken from the visible depth after the horizon.
        taken_cash: dollars paid for them, fees included.
        impact_shares: shares the data could not supply, priced by the impact model.
        impact_cash: dollars charged for them.
    """

    taken_shares: int = 0
    taken_cash: float = 0.0
    impact_shares: int = 0
    impact_cash: float = 0.0

    @property
    def shares(self) -> int:
        """Shares the clean-up bought."""
        return self.taken_shares + self.impact_shares

    @property
    def cash(self) -> float:
        """Dollars of the whole clean-up."""
        return self.taken_cash + self.impact_cash


@dataclass(frozen=True)
class OrderLimits:
    """The rules a strategy's taking was held to, which its clean-up is held to as well.

    Attributes:
        max_participation: the participation cap, or None.
        traded: the market's traded shares from the order's arrival through its horizon.
        filled: shares the strategy filled within the horizon.
        impact_charge: `sor.execution.engine.temporary_impact_charge` (0: none).
    """

    max_participation: float | None = None
    traded: int = 0
    filled: int = 0
    impact_charge: float = 0.0


def clean_up(
    after: AfterHorizon,
    fees: np.ndarray,
    shares: int,
    memory: TakenMemory | None,
    limits: OrderLimits | None = None,
) -> Cleanup:
    """Buy `shares` left at the end of a horizon: the depth after it, then the impact model.

    The clean-up takes by the rules the strategy took by: under a participation cap the order
    (strategy and clean-up together) never has more than the cap's share of the market's traded
    volume since its arrival, and a temporary impact charges its takes as the strategy's, so
    that leaving shares to the clean-up never escapes either.

    Compiled twin: `sor.execution.cleanup_nb.clean_up_row_loop`.

    Args:
        after: the data after the horizon.
        fees: float64[N], dollars per share taken at each venue column.
        shares: shares left unfilled.
        memory: what the strategy took, already forgotten through the horizon's last row and
            rebased to `after`'s rows (strict fill model); None: the naive model, every
            snapshot shows its full displayed size.
        limits: the cap and the charge the strategy ran under (None: neither).

    Returns:
        The clean-up's shares and cash.
    """
    if shares <= 0:
        return Cleanup()
    limits = limits or OrderLimits()
    prices, sizes = after.prices, after.sizes
    need, cash = int(shares), 0.0
    traded = limits.traded
    for t in range(len(prices)):
        if need <= 0:
            break
        allowed = need
        if limits.max_participation is not None:
            traded += int(after.trade_volume[t])
            done = limits.filled + int(shares) - need
            allowed = min(need, int(math.floor(limits.max_participation * traded)) - done)
            if allowed <= 0:
                continue
        left = shares_left(prices[t], sizes[t], memory, after.best_ask, t)
        bought, spent = take_cheapest(allowed, prices[t], left, after.venues, fees, memory)
        got = int(bought.sum())
        if limits.impact_charge:
            spent *= 1.0 + limits.impact_charge * math.sqrt(float(got))
        cash += spent
        need -= got
    impact_cash = 0.0
    if need > 0:
        impact_cash = need * after.end_price * (1.0 + after.impact.fraction(need))
    return Cleanup(int(shares) - need, cash, need, impact_cash)
