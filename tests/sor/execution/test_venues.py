"""Fee schedules (sor.execution.venues) and the shipped US equities schedule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sor.config import load_config
from sor.errors import ConfigError
from sor.execution.venues import VenueRules, venue_economics

SCHEDULE = Path(__file__).resolve().parents[3] / "configs" / "venues-us-equities.yaml"


def _rules(path: Path | None = SCHEDULE, overrides: dict | None = None) -> VenueRules:
    v = load_config(path, overrides).venues
    return VenueRules(
        fee=v.fee,
        rebate=v.rebate,
        overrides={
            pid: {k: x for k, x in o.model_dump().items() if x is not None}
            for pid, o in v.overrides.items()
        },
    )


def test_us_equities_schedule_loads_and_applies_per_venue():
    venues = np.array([2, 9, 6, 3, 38, 99])  # 99: not in the schedule, the defaults
    costs = _rules().costs(venues)
    fee = dict(zip(venues.tolist(), costs.fee.tolist(), strict=True))
    rebate = dict(zip(venues.tolist(), costs.rebate.tolist(), strict=True))
    assert fee[2] == 0.0030 and rebate[2] == 0.0020  # maker-taker
    assert fee[6] < 0 and rebate[6] < 0  # inverted: the taker is paid, the maker pays
    assert fee[3] < 0 and rebate[3] < 0
    assert fee[38] == 0.0009 and rebate[38] == 0.0  # IEX
    assert fee[99] == 0.0030 and rebate[99] == 0.0020
    # No venue pays out more than it takes in on a matched share.
    assert all(f - r > 0 for f, r in zip(costs.fee, costs.rebate, strict=True))


def test_every_publisher_of_the_taq_file_has_a_line():
    overrides = load_config(SCHEDULE).venues.overrides
    assert set(overrides) == {2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 38, 43}


def test_venue_economics_table_for_the_results():
    venues = np.array([38, 6])
    table = venue_economics(venues, _rules().costs(venues))
    assert table == [
        {"publisher_id": 38, "fee": 0.0009, "rebate": 0.0, "venue_net": 0.0009},
        {"publisher_id": 6, "fee": -0.0005, "rebate": -0.0018, "venue_net": pytest.approx(0.0013)},
    ]


def test_override_beyond_a_cent_a_share_is_refused():
    """A fee of 0.3 is almost surely cents typed as dollars: refused, naming the key."""
    with pytest.raises(ConfigError, match=r"venues\.overrides\.2\.fee"):
        load_config(None, {"venues.overrides": {2: {"fee": 0.3}}})
