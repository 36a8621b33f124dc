"""The stylized-fact measurements (sor.synth.facts) on small tapes whose answer is obvious."""

from __future__ import annotations

import numpy as np
import pytest

from sor.synth.facts import (
    Tape,
    compare,
    interarrival,
    post_trade_drift,
    print_location,
    queue_rates,
    reference_mid,
    reference_venue,
    spreads,
    trade_sizes,
)
from tests.csvdata import SHARED_DATA

S = 1_000_000_000
T, Q = ord("T"), ord("A")


def _tape(rows: list[tuple]) -> Tape:
    """rows: (t seconds, venue, action, side, price, size, bid, ask, bid_sz, ask_sz)."""
    cols = list(zip(*rows, strict=True))
    return Tape(
        ts=(np.array(cols[0], dtype=np.float64) * S).astype(np.int64),
        venue=np.array(cols[1], dtype=np.int64),
        action=np.array([ord(a) for a in cols[2]], dtype=np.uint8),
        side=np.array([ord(a) for a in cols[3]], dtype=np.uint8),
        price=np.array(cols[4], dtype=np.float64),
        size=np.array(cols[5], dtype=np.int64),
        bid_px=np.array(cols[6], dtype=np.float64),
        ask_px=np.array(cols[7], dtype=np.float64),
        bid_sz=np.array(cols[8], dtype=np.int64),
        ask_sz=np.array(cols[9], dtype=np.int64),
    )


TAPE = _tape(
    [
        (0.0, 2, "A", "B", 10.00, 100, 10.00, 10.02, 100, 100),
        (0.5, 9, "A", "B", 10.00, 100, 10.00, 10.01, 200, 100),
        (1.0, 2, "T", "A", 10.00, 50, 10.00, 10.02, 50, 100),  # seller hits the bid
        (1.0, 2, "A", "B", 9.99, 100, 9.99, 10.01, 100, 100),
        (1.5, 2, "T", "N", 10.00, 10, 9.99, 10.01, 100, 100),  # inside the spread
        (2.0, 2, "T", "B", 10.01, 30, 9.99, 10.01, 100, 70),  # buyer lifts the ask
        (3.0, 2, "C", "B", 9.99, 40, 9.99, 10.01, 60, 70),
        (4.0, 2, "A", "B", 9.99, 20, 9.99, 10.01, 80, 70),
    ]
)


def test_spreads_per_venue_in_ticks():
    s = spreads(TAPE, 0.01)
    assert s[2]["median"] == 2.0 and s[2]["rows"] == 4
    assert s[9]["one_tick"] == 1.0


def test_reference_venue_and_mid():
    assert reference_venue(TAPE.venue, TAPE.action) == 2
    mid = reference_mid(TAPE, 2)
    assert mid[0] == pytest.approx(10.01)
    assert mid[2] == pytest.approx(10.01)  # a trade row does not update the mid
    assert mid[3] == pytest.approx(10.00)


def test_print_location_against_the_pre_trade_quote():
    loc = print_location(TAPE)
    assert loc == pytest.approx({"at_bid": 1 / 3, "at_ask": 1 / 3, "inside": 1 / 3})


def test_trade_sizes_and_gaps():
    ts = trade_sizes(np.array([50, 100, 200, 30]))
    assert ts["odd_lot"] == 0.5 and ts["round_lot"] == 0.5 and ts["median"] == 75
    gaps = interarrival(np.array([0, S, S + 100, 3 * S]))
    assert gaps["under_1ms"] == pytest.approx(1 / 3)
    assert gaps["mean_s"] == pytest.approx(1.0)


def test_queue_rates_of_the_best_bid():
    q = queue_rates(TAPE, 2)
    # At 9.99: 100 -> 100 -> 100 -> 60 (-40) -> 80 (+20) over 4 s; one price change (10.00 ->
    # 9.99) and the trade at 10.00 (100 -> 50).
    mean_sz = np.mean([100, 50, 100, 100, 100, 60, 80])
    assert q["deplete_per_s"] == pytest.approx((50 + 40) / 4 / mean_sz)
    assert q["replenish_per_s"] == pytest.approx(20 / 4 / mean_sz)
    assert q["queue_life_s"] == pytest.approx(4.0)


def test_post_trade_drift_after_a_sell():
    mid = reference_mid(TAPE, 2)
    sells = np.flatnonzero((TAPE.action == T) & (TAPE.side == ord("A")))
    d = post_trade_drift(TAPE.ts, mid, sells, (1.0, 10.0))
    mean, _, n = d[1.0]
    assert n == 1
    assert mean == pytest.approx((10.00 - 10.01) / 10.01 * 1e4)
    assert d[10.0][2] == 0  # the horizon ends after the last row: left out


def test_compare_names_the_facts_outside_tolerance():
    real = {"a": 1.0, "b": 0.5}
    gen = {"a": 1.2, "b": 0.9}
    bad = compare(real, gen, {"a": (0.3, 0), "b": (0, 0.1)})
    assert len(bad) == 1 and bad[0].startswith("b: real 0.5, generated 0.9")


@pytest.mark.skipif(not (SHARED_DATA / "real").is_dir(), reason="needs ../shared/data/real")
def test_real_xnas_rows_show_adverse_selection():
    """The number the calibration targets: the mid falls ~1.1 bps within 1 s and ~2 bps by 30 s
    after sell-aggressor prints in the real XNAS rows."""
    from sor.synth.facts import measure, read_tape

    m = measure(read_tape(SHARED_DATA / "real" / "xnas_aapl_2024-10-21_mbp10_5000rows.csv.gz"))
    assert m["drift_sell_1s"] == pytest.approx(-1.085, abs=0.01)
    assert m["drift_sell_30s"] == pytest.approx(-2.074, abs=0.01)
