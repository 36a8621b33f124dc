"""Per-venue fees and rebates, aligned to the snapshot columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from sor.vocabulary import DEFAULT_FEE, DEFAULT_REBATE

__all__ = ["VenueCosts", "VenueRules", "venue_costs", "venue_economics"]


@dataclass(frozen=True)
class VenueRules:
    """Fees and rebates as configured: defaults and per-publisher_id overrides.

    Attributes:
        fee: default fee, dollars per share taken.
        rebate: default rebate, dollars per share posted.
        overrides: publisher_id -> {"fee": .., "rebate": ..} (either key may be absent).
    """

    fee: float = DEFAULT_FEE
    rebate: float = DEFAULT_REBATE
    overrides: Mapping[int, Mapping[str, float]] = field(default_factory=dict)

    def costs(self, venues: np.ndarray) -> VenueCosts:
        """The `VenueCosts` of the venue columns `venues` (publisher_ids)."""
        return venue_costs(venues, fee=self.fee, rebate=self.rebate, overrides=self.overrides)


@dataclass(frozen=True, eq=False)
class VenueCosts:
    """Fee and rebate of each venue column of a `Snapshots`.

    Attributes:
        fee: float64[N], dollars per share taken at venue j.
        rebate: float64[N], dollars per share posted at venue j.
    """

    fee: np.ndarray
    rebate: np.ndarray


def venue_costs(
    venues: np.ndarray,
    *,
    fee: float = DEFAULT_FEE,
    rebate: float = DEFAULT_REBATE,
    overrides: Mapping[int, Mapping[str, float]] | None = None,
) -> VenueCosts:
    """Fees and rebates for `venues` (publisher_ids): the defaults, with per-publisher overrides.

    Args:
        venues: int[N] publisher_ids, the snapshot columns.
        fee: default fee, dollars per share taken.
        rebate: default rebate, dollars per share posted.
        overrides: publisher_id -> {"fee": .., "rebate": ..}; ids absent from `venues` are ignored.
    """
    fees = np.full(len(venues), float(fee))
    rebates = np.full(len(venues), float(rebate))
    for j, publisher_id in enumerate(venues.tolist()):
        override = (overrides or {}).get(int(publisher_id), {})
        fees[j] = override.get("fee", fees[j])
        rebates[j] = override.get("rebate", rebates[j])
    return VenueCosts(fee=fees, rebate=rebates)


def venue_economics(venues: np.ndarray, costs: VenueCosts) -> list[dict[str, float]]:
    """The fee and rebate of each venue, for the results JSON: one entry per publisher_id.

    Args:
        venues: int[N] publisher_ids, the snapshot columns.
        costs: their `VenueCosts`.

    Returns:
        [{"publisher_id", "fee", "rebate", "venue_net"}, ...] in column order, dollars per
        share; venue_net = fee - rebate is what the venue keeps of a share matched between a
        taker and a resting order (positive at maker-taker and inverted venues alike).
    """
    return [
        {
            "publisher_id": int(v),
            "fee": float(f),
            "rebate": float(r),
            "venue_net": float(f - r),
        }
        for v, f, r in zip(venues.tolist(), costs.fee.tolist(), costs.rebate.tolist(), strict=True)
    ]
