"""The parent order and the rules it is executed by, as the numeric core takes them."""

from __future__ import annotations

from dataclasses import dataclass

from sor.vocabulary import Cap, ChildSizing, CostBasis, FillModel

__all__ = ["OrderRules"]


@dataclass(frozen=True)
class OrderRules:
    """One parent order and the static router's execution rules (docs/model.md).

    Attributes:
        size: shares to buy.
        step: lot size of the allocator's grid, shares.
        cap: what the allocator may send to one venue: its displayed size, or the whole order.
        cost_basis: prices the allocator compares: from the mid, or raw cash.
        child_sizing: child orders of what can fill now, or all remaining shares or nothing.
        fill_model: strict (what was taken at a venue and price stays taken until the venue's
            best ask rises above that price) or naive.
        max_participation: None (no cap), or the most every strategy may have filled at any
            snapshot as a share of the market's traded volume since the order's arrival.
        temporary_impact: None (no charge), or Y of the temporary impact charged on taken
            shares (`sor.execution.engine.temporary_impact_charge`).
    """

    size: int = 5000
    step: int = 100
    cap: Cap = "order"
    cost_basis: CostBasis = "mid"
    child_sizing: ChildSizing = "available"
    fill_model: FillModel = "strict"
    max_participation: float | None = None
    temporary_impact: float | None = None
