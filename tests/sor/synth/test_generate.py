"""Tests of the synthetic Databento MBP generator (sor.synth.generate)."""

from __future__ import annotations

import gzip
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sor.synth.generate import DEFAULT_VENUES, UNDEF_PRICE, VenueProfile, generate, header
from tests.csvdata import SHARED_DATA

HEAD5 = SHARED_DATA / "l1_day_head5.csv"
TICK_UNITS = 10_000_000  # one cent in Databento's 1e-9 price units
LEVELS = [f"{k:02d}" for k in range(10)]
STR_COLS = {"action": str, "side": str, "symbol": str}


def _read(path: Path, **kw) -> pd.DataFrame:
    return pd.read_csv(path, dtype=STR_COLS, **kw)


@pytest.fixture(scope="module")
def default_file(tmp_path_factory) -> tuple[Path, object]:
    """The defaults: 60,000 MBP-10 rows, pretty style, seed 0."""
    path = tmp_path_factory.mktemp("gen") / "default.csv"
    return path, generate(path)


@pytest.fixture(scope="module")
def default_df(default_file) -> pd.DataFrame:
    return _read(default_file[0])


@pytest.fixture(scope="module")
def raw_df(tmp_path_factory) -> pd.DataFrame:
    """A smaller raw-style MBP-10 file: exact integer prices and timestamps."""
    path = tmp_path_factory.mktemp("gen") / "raw.csv"
    generate(path, n_events=20_000, style="raw", seed=3)
    return _read(path)


# --- format -----------------------------------------------------------------------------------


def test_header_mbp10_is_exact(default_file):
    first = default_file[0].read_text().split("\n", 1)[0]
    assert first == header("mbp-10")
    cols = first.split(",")
    assert len(cols) == 74
    assert cols[:13] == [
        "ts_recv",
        "ts_event",
        "rtype",
        "publisher_id",
        "instrument_id",
        "action",
        "side",
        "depth",
        "price",
        "size",
        "flags",
        "ts_in_delta",
        "sequence",
    ]
    assert cols[13:19] == [
        "bid_px_00",
        "ask_px_00",
        "bid_sz_00",
        "ask_sz_00",
        "bid_ct_00",
        "ask_ct_00",
    ]
    assert cols[-7:] == [
        "bid_px_09",
        "ask_px_09",
        "bid_sz_09",
        "ask_sz_09",
        "bid_ct_09",
        "ask_ct_09",
        "symbol",
    ]


@pytest.mark.skipif(not HEAD5.exists(), reason="shared data not available")
def test_header_matches_l1_day():
    assert HEAD5.read_text().split("\n", 1)[0] == header("mbp-10")


def test_header_mbp1_is_exact(tmp_path):
    path = tmp_path / "mbp1.csv"
    generate(path, n_events=500, schema="mbp-1")
    first = path.read_text().split("\n", 1)[0]
    assert first == (
        "ts_recv,ts_event,rtype,publisher_id,instrument_id,action,side,depth,price,size,flags,"
        "ts_in_delta,sequence,bid_px_00,ask_px_00,bid_sz_00,ask_sz_00,bid_ct_00,ask_ct_00,symbol"
    )
    df = _read(path)
    assert (df["rtype"] == 1).all()
    assert (df["depth"] == 0).all()  # MBP-1 holds top-level events only


def test_pretty_row_format(default_file, default_df):
    lines = default_file[0].read_text().split("\n")
    assert lines[-1] == ""  # newline-terminated, like the Databento export
    fields = lines[1].split(",")
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
    assert iso.match(fields[0]) and iso.match(fields[1])
    assert fields[-1] == "SYNTH-AAPL"
    assert (default_df["rtype"] == 10).all()
    assert (default_df["instrument_id"] == 38).all()
    # Prices are written as short decimals on the cent grid: no float noise like 222.83000000001.
    px_cols = ["price"] + [f"{s}_px_{k}" for k in LEVELS for s in ("bid", "ask")]
    text = pd.read_csv(
        default_file[0], usecols=px_cols, nrows=5000, dtype=str, keep_default_na=False
    )
    decimal = re.compile(r"^(\d+(\.\d{1,2})?)?$")
    assert text.apply(lambda c: c.str.match(decimal)).all().all()


def test_pretty_and_raw_describe_the_same_numbers(tmp_path):
    pretty, raw = tmp_path / "p.csv", tmp_path / "r.csv"
    generate(pretty, n_events=1500, style="pretty", seed=7)
    generate(raw, n_events=1500, style="raw", seed=7)
    p = pd.read_csv(pretty, dtype=str, keep_default_na=False)
    r = pd.read_csv(raw, dtype=str, keep_default_na=False)
    assert list(p.columns) == list(r.columns) and len(p) == len(r) == 1500
    for col in p.columns:
        if col in ("ts_recv", "ts_event"):
            ns = p[col].str.removesuffix("Z").to_numpy().astype("datetime64[ns]").astype(np.int64)
            assert (ns.astype(str) == r[col].to_numpy()).all(), col
        elif col == "price" or "_px_" in col:
            conv = [str(int(Decimal(x) * 10**9)) if x else str(UNDEF_PRICE) for x in p[col]]
            assert conv == r[col].tolist(), col
        else:
            assert p[col].equals(r[col]), col


# --- determinism and files --------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    generate(a, n_events=3000, seed=11)
    generate(b, n_events=3000, seed=11)
    generate(c, n_events=3000, seed=12)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_gz_path_writes_gzip_of_the_same_text(tmp_path):
    plain, gz1, gz2 = tmp_path / "x.csv", tmp_path / "x.csv.gz", tmp_path / "y.csv.gz"
    generate(plain, n_events=2000, seed=5)
    generate(gz1, n_events=2000, seed=5)
    generate(gz2, n_events=2000, seed=5)
    data = gz1.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    assert gzip.decompress(data) == plain.read_bytes()
    assert data == gz2.read_bytes()
    assert data[4:8] == b"\x00\x00\x00\x00" and not data[3] & 0x08  # no mtime, no file name
    assert len(_read(gz1)) == 2000


def test_summary_matches_file(default_file, default_df):
    summary = default_file[1]
    df = default_df
    assert summary.rows == len(df) == 60_000
    assert summary.venues == tuple(sorted(df["publisher_id"].unique()))
    assert summary.distinct_ts_event == df["ts_event"].nunique()
    assert summary.trades == int((df["action"] == "T").sum())
    ts = df["ts_event"].str.removesuffix("Z").to_numpy().astype("datetime64[ns]").astype(np.int64)
    assert (summary.ts_event_first, summary.ts_event_last) == (ts.min(), ts.max())
    assert summary.ts_event_first == np.datetime64("2024-08-01T13:36:32", "ns").astype(np.int64)
    assert "60000 rows" in str(summary)


def test_mbp1_is_the_top_level_projection_of_mbp10(tmp_path):
    m10, m1 = tmp_path / "m10.csv", tmp_path / "m1.csv"
    generate(m10, n_events=6000, schema="mbp-10", style="raw", seed=2)
    generate(m1, n_events=6000, schema="mbp-1", style="raw", seed=2)
    a, b = _read(m10), _read(m1)
    cut = a["ts_event"].max()  # the MBP-1 file runs longer; compare the common span
    a = a[(a["depth"] == 0) & (a["ts_event"] < cut)]
    b = b[b["ts_event"] < cut]
    cols = ["publisher_id", "ts_event", "action", "side", "price", "size"] + [
        f"{s}_{f}_00" for f in ("px", "sz", "ct") for s in ("bid", "ask")
    ]

    def key(d: pd.DataFrame) -> pd.DataFrame:
        d = d[cols].sort_values(["publisher_id", "ts_event"], kind="stable")
        return d.reset_index(drop=True)

    assert len(b) > 2000
    pd.testing.assert_frame_equal(key(a), key(b))


# --- book semantics ---------------------------------------------------------------------------


def test_no_crossed_book_within_a_venue(default_df):
    df = default_df
    both = df["bid_px_00"].notna() & df["ask_px_00"].notna()
    assert both.mean() > 0.95
    assert (df.loc[both, "bid_px_00"] < df.loc[both, "ask_px_00"]).all()


def test_levels_are_ordered_and_sized(raw_df):
    df = raw_df
    bid = df[[f"bid_px_{k}" for k in LEVELS]].to_numpy()
    ask = df[[f"ask_px_{k}" for k in LEVELS]].to_numpy()
    for side, px in (("bid", bid), ("ask", ask)):
        sz = df[[f"{side}_sz_{k}" for k in LEVELS]].to_numpy()
        ct = df[[f"{side}_ct_{k}" for k in LEVELS]].to_numpy()
        shown = px != UNDEF_PRICE
        assert ((px % TICK_UNITS == 0) | ~shown).all()
        assert (sz[shown] > 0).all() and (ct[shown] > 0).all() and (sz[shown] >= ct[shown]).all()
        assert (sz[~shown] == 0).all() and (ct[~shown] == 0).all()
        # Levels fill from the top: no shown level below a missing one.
        assert (shown[:, 1:] <= shown[:, :-1]).all()
        step = np.diff(px, axis=1)
        both = shown[:, 1:] & shown[:, :-1]
        if side == "bid":
            assert (step[both] <= -TICK_UNITS).all()
        else:
            assert (step[both] >= TICK_UNITS).all()
    assert shown[:, 9].mean() > 0.9  # ten levels are usually shown
    assert bid[:, 0].min() > 0


def test_event_fields_are_valid(raw_df):
    df = raw_df
    assert set(df["action"]) == {"A", "C", "M", "T"}
    assert set(df["side"]) <= {"A", "B", "N"}
    assert (df["size"] > 0).all()
    assert ((df["price"] % TICK_UNITS) == 0).all()
    assert df["depth"].between(0, 9).all()
    assert set(df["flags"]) == {0, 128}
    assert (df["symbol"] == "SYNTH-AAPL").all()


def test_trades_take_the_touch_and_the_book_shows_it(raw_df):
    df = raw_df
    trades = df["action"] == "T"
    assert 0.02 < trades.mean() < 0.1
    assert set(df.loc[trades, "side"]) == {"A", "B"}
    prev = df.groupby("publisher_id").shift(1)
    t = df[trades & prev["ask_sz_00"].notna()]
    p = prev.loc[t.index]
    buy = t["side"] == "B"  # buy aggressor: lifts the ask; sell aggressor hits the bid
    hit_px = np.where(buy, p["ask_px_00"], p["bid_px_00"])
    hit_sz = np.where(buy, p["ask_sz_00"], p["bid_sz_00"])
    now_px = np.where(buy, t["ask_px_00"], t["bid_px_00"])
    now_sz = np.where(buy, t["ask_sz_00"], t["bid_sz_00"])
    assert (t["price"].to_numpy() == hit_px).all()
    left = np.where(now_px == hit_px, now_sz, 0)  # the level is gone when fully taken
    assert (hit_sz - left == t["size"].to_numpy()).all()


def test_adds_and_cancels_change_the_level_by_their_size(raw_df):
    df = raw_df
    prev = df.groupby("publisher_id").shift(1)
    rows = df["action"].isin(["A", "C"]) & prev["bid_px_00"].notna()
    d, p = df[rows], prev[rows]
    for side, char in (("bid", "B"), ("ask", "A")):
        on = (d["side"] == char).to_numpy()
        price = d["price"].to_numpy()[:, None]
        px_now = d[[f"{side}_px_{k}" for k in LEVELS]].to_numpy()
        sz_now = d[[f"{side}_sz_{k}" for k in LEVELS]].to_numpy()
        px_before = p[[f"{side}_px_{k}" for k in LEVELS]].to_numpy()
        sz_before = p[[f"{side}_sz_{k}" for k in LEVELS]].to_numpy()
        at_now = np.where(px_now == price, sz_now, 0).sum(axis=1)
        at_before = np.where(px_before == price, sz_before, 0).sum(axis=1)
        sign = np.where(d["action"] == "A", 1, -1)
        assert on.sum() > 1000
        assert ((at_now - at_before)[on] == (sign * d["size"].to_numpy())[on]).all()


def test_sizes_are_mostly_round_lots_with_odd_lots(default_df):
    size = default_df["size"]
    odd = size % 100 != 0
    assert 0.2 < odd.mean() < 0.6
    assert (size < 100).any() and (odd & (size > 100)).any()  # odd lots (36), mixed lots (121)
    assert (size[~odd] >= 100).all()


def test_some_asks_are_empty(default_df, raw_df):
    empty = default_df["ask_px_00"].isna()
    assert 0 < empty.sum() < 0.05 * len(default_df)
    assert (default_df.loc[empty, "ask_sz_00"] == 0).all()
    assert default_df.loc[empty, "bid_px_00"].notna().all()
    assert default_df.loc[empty, "publisher_id"].nunique() >= 2
    raw_empty = raw_df["ask_px_00"] == UNDEF_PRICE
    assert raw_empty.any() and (raw_df.loc[raw_empty, "ask_sz_00"] == 0).all()


# --- time, venues, bursts ---------------------------------------------------------------------


def test_timestamps_and_sequences(raw_df):
    df = raw_df
    assert df["ts_recv"].is_monotonic_increasing  # written in ts_recv order, as Databento does
    assert (df["ts_recv"] > df["ts_event"]).all()
    assert (df["ts_in_delta"] == df["ts_recv"] - df["ts_event"]).all()
    for _, d in df.groupby("publisher_id"):
        assert d["ts_event"].is_monotonic_increasing
        assert (d["sequence"].diff().dropna() > 0).all()
    # Rows of one venue's event share the packet, and the last one carries F_LAST.
    last = df.groupby(["publisher_id", "ts_event"])["flags"].last()
    assert (last == 128).all()


def test_venues_differ(default_df):
    df = default_df
    rows = df["publisher_id"].value_counts()
    assert set(rows.index) == {vp.publisher_id for vp in DEFAULT_VENUES} == {2, 9, 43, 5, 38}
    assert rows[2] > 3 * rows[38]  # XNAS updates often, IEX rarely (stale quotes)
    spread = (df["ask_px_00"] - df["bid_px_00"]).round(2).groupby(df["publisher_id"]).median()
    assert spread[2] == 0.01 and spread[38] > spread[2]
    lat = df.groupby("publisher_id")["ts_in_delta"].median()
    assert lat[9] > lat[2]


def test_bursts_share_ts_event(default_df):
    df = default_df
    per_event = df.groupby("ts_event").size()
    assert (per_event > 1).sum() > 1000
    venues = df.groupby("ts_event")["publisher_id"].nunique()
    assert (venues > 1).sum() > 20  # sweeps across venues at the same ts_event
    sweeps = df[df["action"] == "T"].groupby(["publisher_id", "ts_event"]).size()
    assert (sweeps >= 3).any()
    ratio = df["ts_event"].nunique() / len(df)
    assert 0.8 <= ratio <= 0.98  # l1_day.csv: 54,537 / 59,999 = 0.91


def test_fair_price_moves_a_few_ticks_per_minute(default_df):
    df = default_df[default_df["publisher_id"] == 2]
    mid = (df["bid_px_00"] + df["ask_px_00"]) / 2
    ts = pd.to_datetime(df["ts_event"].str.removesuffix("Z"))
    per_min = mid.groupby(ts.dt.floor("min")).last().diff().dropna().abs() / 0.01
    assert 0 < per_min.median() < 30
    assert abs(mid.iloc[0] - 222.8) < 0.05


# --- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schema": "mbp-5"}, "schema"),
        ({"style": "fancy"}, "style"),
        ({"n_events": 0}, "n_events"),
        ({"venues": (VenueProfile(2), VenueProfile(2))}, "distinct"),
        ({"venues": ()}, "distinct"),
        ({"trade_fraction": 0.7}, "trade_fraction"),
        ({"tick": 0}, "tick"),
        ({"price": 1.0}, "price"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(tmp_path / "x.csv", **{"n_events": 100, **kwargs})
    assert not (tmp_path / "x.csv").exists()


def test_venue_profile_checks_its_values():
    with pytest.raises(ValueError, match="spread_ticks >= 1"):
        VenueProfile(2, spread_ticks=0.5)


def test_custom_venues_and_symbol(tmp_path):
    venues = (VenueProfile(2, rate_hz=50), VenueProfile(43, rate_hz=10, empty_ask_per_min=6))
    path = tmp_path / "two.csv"
    summary = generate(
        path, n_events=4000, venues=venues, symbol="MSFT", instrument_id=7, price=410.0, seed=1
    )
    df = _read(path)
    assert summary.venues == (2, 43)
    assert set(df["publisher_id"]) == {2, 43}
    assert (df["symbol"] == "SYNTH-MSFT").all() and (df["instrument_id"] == 7).all()
    assert abs(df["bid_px_00"].iloc[0] - 410.0) < 0.1


def test_a_generated_file_says_it_is_generated(tmp_path):
    from sor.data.loader import load_snapshots

    path = tmp_path / "marked.csv"
    generate(path, n_events=2000, schema="mbp-1", symbol="SYNTH-AAPL", seed=4)
    snaps, summary = load_snapshots(path)
    # the prefix is not doubled, the file stays a Databento CSV, and the loader reads the mark
    assert _read(path)["symbol"].unique().tolist() == ["SYNTH-AAPL"]
    assert snaps.symbol == summary.symbol == "SYNTH-AAPL"
    assert summary.generated is True and summary.to_dict()["generated"] is True
    if HEAD5.exists():  # real data is not marked
        assert load_snapshots(HEAD5)[1].generated is False
