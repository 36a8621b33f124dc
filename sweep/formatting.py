"""Numbers of a results JSON as people read them: units, sensible rounding, thousands separators.

`format_value(path, value)` decides from the value's dotted JSON path what it is (a price, bps,
cash, shares, a share of an order, a time in ns) and shows it so. The HTML page and the
terminal summary use it, so a number reads the same in both.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

__all__ = ["format_value", "kind_of"]

_PRICE_KEYS = {"avg_fill_px", "lambda_over", "lambda_under", "theta_queue"}
_CASH_KEYS = {"total_cash", "completed_cash", "best_completed_cash"}
_SHARE_KEYS = {
    "filled_shares",
    "unfilled_shares",
    "size",
    "cleanup_taken_shares",
    "cleanup_impact_shares",
    "market_volume",
}
_SHARE_OF_KEYS = {"cleanup_share", "participation", "passive_share"}  # fractions, as percent
_COUNT_KEYS = {"n", "days", "hac_lag", "block_length"}  # counts inside a per-order summary
#: Integers shown without thousands separators: identifiers, not quantities.
_ID_KEYS = {"seed", "port", "publisher_id", "instrument_id", "pid", "schema"}


def kind_of(path: str) -> str:
    """What the JSON value at `path` (dotted) is: "bps", "price", "cash", "percent", "shares",
    "time_ns", "in_sample", "id" or "plain"."""
    parts = path.split(".")
    last = parts[-1]
    if len(parts) > 1 and parts[-2] == "in_sample" and last.isdigit():
        return "in_sample"  # schedule.in_sample.<order>: whether that order was tuned on
    if parts[0] == "savings_vs_baselines_bps":
        return "bps"
    if any(p.endswith("_bps") for p in parts) and last not in _COUNT_KEYS:
        return "bps"  # shortfalls and savings per parent order, their means and intervals
    if parts[0] == "best_parameters" or last in _PRICE_KEYS:
        return "price"
    if last in _CASH_KEYS:
        return "cash"
    if last in _SHARE_OF_KEYS or (len(parts) > 1 and parts[-2] == "cleanup_share"):
        return "percent"
    if last in _SHARE_KEYS or (len(parts) > 1 and parts[-2] == "shares_by_venue"):
        return "shares"
    if last.endswith("_ns"):
        return "time_ns"
    if last in _ID_KEYS or last.endswith("_id"):
        return "id"
    return "plain"


def _is_saving(path: str) -> bool:
    """Savings (and their means and interval ends) are signed: + the router paid less."""
    parts = path.split(".")
    if parts[0] == "savings_vs_baselines_bps":
        return True
    if "savings_bps" not in parts:
        return False
    return parts[-1] == "mean" or (len(parts) > 1 and parts[-2] == "ci95")


def _plain_float(value: float) -> str:
    """A float of no known unit, to about six significant digits, with thousands separators.

    1114073.2899999996 -> "1,114,073.29"; 38.68912 -> "38.6891"; 0.00871293 -> "0.008713".
    """
    size = abs(value)
    if size >= 1000:
        text = f"{value:,.2f}"
    elif size >= 1:
        text = f"{value:,.4f}"
    elif size >= 1e-4 or value == 0:
        text = f"{value:.6f}"
    else:
        return f"{value:.3e}"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def format_value(path: str, value: Any) -> str:
    """How the JSON value at `path` (dotted) is shown to people.

    Prices and the penalties in dollars per share with 6 decimals; savings and shortfalls in bps
    with 3 (savings signed: + when the router paid less); cash in dollars with 2 (cents) and
    thousands separators; shares as integers with separators; shares of an order as percent;
    times in ns as ISO 8601 UTC; other numbers to about six significant digits with separators
    (identifiers such as a seed without). None (e.g. the average price of a strategy that
    filled nothing) is "n/a".

    Example:
        >>> format_value("savings_vs_baselines_bps.twap", 0.9428359590219088)
        '+0.943'
        >>> format_value("sweep.best_value", 1114073.2899999996)
        '1,114,073.29'
    """
    if value is None:
        return "n/a"
    kind = kind_of(path)
    if isinstance(value, bool):
        if kind == "in_sample":
            return "in sample" if value else "out of sample"
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if kind == "price":
            return f"{value:.6f}"
        if kind == "bps":
            value = value if round(value, 3) else 0.0  # no "-0.000"
            return f"{value:+.3f}" if _is_saving(path) else f"{value:.3f}"
        if kind == "cash":
            return f"{value:,.2f}"
        if kind == "shares":
            return f"{int(value):,}"
        if kind == "percent":
            return f"{value:.1%}"
        if kind == "time_ns" and isinstance(value, int):
            when = datetime.fromtimestamp(value // 1_000_000_000, tz=timezone.utc)
            return f"{when:%Y-%m-%dT%H:%M:%S}.{value % 1_000_000_000:09d}Z"
        if kind == "id" or isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return f"{value:,}"
        return _plain_float(value)
    if isinstance(value, (list, dict)) and not value:
        return "(none)"
    if isinstance(value, list):
        return ", ".join(format_value(path, v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)
