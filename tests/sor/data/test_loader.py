"""The CSV loader and snapshot builder (model.md §1-§2) and their error paths."""

from __future__ import annotations

import gzip
import re
import warnings

import numpy as np
import pytest

from sor.data.loader import load_snapshots, load_updates, ns_to_iso, parse_time_bound
from sor.data.snapshots import build_snapshots
from sor.errors import DataError
from tests.csvdata import BASE_NS, HEADER, SHARED_DATA, row, to_raw_style, write_csv

HEAD5 = SHARED_DATA / "l1_day_head5.csv"


@pytest.fixture
def two_venues(tmp_path):
    return write_csv(
        tmp_path / "two.csv",
        [
            row(0, 2, 10.00, 10.02, 300, 200, seq=1),
            row(0, 2, 10.00, 10.03, 300, 999, seq=2),  # second row of the event: dropped
            row(0, 9, 10.01, 10.03, 100, 500, seq=3),
            row(5, 9, 10.01, 10.02, 100, 400, seq=4),
            row(7, 2, 10.00, "", 300, 0, seq=5),  # ask side empties at venue 2
            row(7, 2, 10.00, 10.05, 300, 100, action="T", side="B", price=10.0, size=50, seq=6),
            row(9, 2, 10.00, 10.04, 300, 600, seq=7),
        ],
    )


def test_first_row_per_event_and_forward_fill(two_venues):
    snaps, summary = load_snapshots(two_venues)
    assert snaps.venues.tolist() == [2, 9]
    assert (snaps.ts - BASE_NS).tolist() == [0, 5_000_000, 7_000_000, 9_000_000]
    np.testing.assert_array_equal(
        snaps.ask_px, [[10.02, 10.03], [10.02, 10.02], [np.nan, 10.02], [10.04, 10.02]]
    )
    np.testing.assert_array_equal(snaps.ask_sz, [[200, 500], [200, 400], [0, 400], [600, 400]])
    np.testing.assert_array_equal(snaps.bid_sz[:, 1], [100, 100, 100, 100])
    assert snaps.trade_volume.tolist() == [0, 0, 50, 0]
    assert summary.skipped["not_first_row_of_event_at_venue"] == 2
    assert summary.rows_read == 7 and summary.rows_kept == 5 and summary.trade_rows == 1


def test_mbp1_file_shows_one_ask_level(two_venues):
    """An MBP-1 file's ladder is its top of book: L = 1, level 0 equal to ask_px / ask_sz."""
    updates, _ = load_updates(two_venues)
    assert updates.n_levels == 1 and updates.ask_depth_px.shape == (len(updates), 1)
    np.testing.assert_array_equal(updates.ask_depth_px[:, 0], updates.ask_px)
    np.testing.assert_array_equal(updates.ask_depth_sz[:, 0], updates.ask_sz)
    snaps = build_snapshots(updates)
    assert snaps.n_levels == 1 and snaps.ask_depth_px is not None
    np.testing.assert_array_equal(snaps.ask_ladder()[0][:, :, 0], snaps.ask_px)  # NaN included
    np.testing.assert_array_equal(snaps.ask_ladder()[1][:, :, 0], snaps.ask_sz)


def test_size_beyond_int64_names_the_first_bad_line(tmp_path):
    """Sizes are read exactly: a cell too large for int64 is refused, and so is an earlier cell
    merely above the largest size, which is named first."""
    path = write_csv(
        tmp_path / "big.csv",
        [row(0, 2, 10.0, 10.1, 1, 1), row(1, 2, 10.0, 10.1, 1, 10**20)],
    )
    with pytest.raises(DataError, match=r":3: column 'ask_sz_00': '100000000000000000000' is not"):
        load_snapshots(path)
    path = write_csv(
        tmp_path / "big2.csv",
        [row(0, 2, 10.0, 10.1, 1, 10**10), row(1, 2, 10.0, 10.1, 1, 10**20)],
    )
    with pytest.raises(DataError, match=r":2: column 'ask_sz_00': '10000000000' is not a whole"):
        load_snapshots(path)


def test_venue_absent_before_its_first_quote(tmp_path):
    path = write_csv(
        tmp_path / "late.csv", [row(0, 2, 10.0, 10.1, 1, 1), row(1, 5, 10.0, 10.2, 1, 1)]
    )
    snaps, _ = load_snapshots(path)
    assert np.isnan(snaps.ask_px[0, 1]) and snaps.ask_sz[0, 1] == 0
    assert snaps.ask_px[1, 1] == 10.2


@pytest.mark.skipif(not HEAD5.exists(), reason="../shared/data not present")
def test_l1_day_head_exact_timestamps_and_prices():
    snaps, summary = load_snapshots(HEAD5)
    assert snaps.ts.tolist() == [1722519392491911683, 1722519392491912675]
    assert snaps.ask_px[:, 0].tolist() == [222.83, 222.83]
    assert snaps.bid_sz[:, 0].tolist() == [421, 100]
    assert snaps.trade_volume.tolist() == [190 + 10 + 100 + 121, 0]
    assert summary.start == "2024-08-01T13:36:32.491911683Z"
    assert summary.price_style == "decimal" and summary.timestamp_style == "pretty"


def test_raw_style_matches_pretty_style(tmp_path, two_venues):
    """Databento's raw CSV: integer ns and 1e-9 prices, int64 max for an undefined price."""
    raw = to_raw_style(two_venues, tmp_path / "raw.csv")
    a, sa = load_snapshots(two_venues)
    b, sb = load_snapshots(raw)
    assert sb.price_style == "fixed" and sb.timestamp_style == "raw"
    assert a.equals(b)


def test_gzip_file_read_by_content(tmp_path, two_venues):
    packed = tmp_path / "data.bin"  # no .gz suffix: detected by its magic bytes
    packed.write_bytes(gzip.compress(two_venues.read_bytes()))
    assert load_snapshots(packed)[0].equals(load_snapshots(two_venues)[0])


def test_window_inclusive_and_time_of_day(two_venues):
    snaps, summary = load_snapshots(two_venues, start=BASE_NS + 5_000_000, end="13:36:32.007")
    assert (snaps.ts - BASE_NS).tolist() == [5_000_000, 7_000_000]
    assert summary.rows_in_window == 3
    # venue 2 has not been seen inside the window before 7 ms
    assert np.isnan(snaps.ask_px[0, 0])


def test_clock_ts_recv_orders_by_receive_time(tmp_path):
    path = write_csv(
        tmp_path / "recv.csv",
        [
            row(0, 2, 10.0, 10.1, 1, 1, recv_delay_ns=5_000_000),
            row(1, 9, 10.0, 10.2, 1, 1, recv_delay_ns=0),
        ],
    )
    event, _ = load_snapshots(path)
    recv, _ = load_snapshots(path, clock="ts_recv")
    assert event.ask_px[0].tolist()[0] == 10.1 and np.isnan(event.ask_px[0, 1])
    assert np.isnan(recv.ask_px[0, 0]) and recv.ask_px[0, 1] == 10.2


def test_several_symbols_need_a_choice(tmp_path):
    path = write_csv(
        tmp_path / "two_syms.csv",
        [
            row(0, 2, 10.0, 10.1, 1, 1, symbol="AAPL"),
            row(1, 2, 20.0, 20.1, 1, 1, symbol="MSFT"),
        ],
    )
    with pytest.raises(
        DataError,
        match=r"two_syms.csv:2: column 'symbol': the file holds 2 symbols: 'AAPL' \(1 rows from "
        r"line 2\), 'MSFT' \(1 rows from line 3\); choose one \(--symbol\)",
    ):
        load_snapshots(path)
    snaps, _ = load_snapshots(path, symbol="MSFT")
    assert snaps.ask_px.tolist() == [[20.1]] and snaps.symbol == "MSFT"
    with pytest.raises(DataError, match="unknown symbol 'TSLA'"):
        load_snapshots(path, symbol="TSLA")


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (
            row(1, 2, 10.0, "abc", 1, 1),
            r"bad\.csv:3: column 'ask_px_00': 'abc' is not a price: expected a decimal",
        ),
        (row(1, 2, 10.0, "inf", 1, 1), r":3: column 'ask_px_00': 'inf' is not a price"),
        (
            row(1, 2, 10.0, 10.1, 1, -5),
            r":3: column 'ask_sz_00': '-5' is not a whole number of shares",
        ),
        (
            row(1, 2, 10.0, 10.1, 1, 2.5),
            r":3: column 'ask_sz_00': '2.5' is not a whole number of shares",
        ),
        (
            row(1, 2, 10.0, -10.1, 1, 5),
            r":3: column 'ask_px_00': '-10.1' is not a price: expected a decimal number >= 0",
        ),
        (row(1, 2, 10.2, 10.1, 1, 5), r":3: column 'bid_px_00': crossed quote"),
        (
            row(1, 2, 10.0, 10.1, 1, 1)
            .replace("2024-08-01T13:36:32.001000000Z", "yesterday", 1)
            .replace("2024-08-01T13:36:32.001000000Z", "yesterday"),
            r":3: column 'ts_event': 'yesterday' is not a timestamp",
        ),
    ],
)
def test_bad_values_name_file_line_and_field(tmp_path, line, pattern):
    path = write_csv(tmp_path / "bad.csv", [row(0, 2, 10.0, 10.1, 1, 1), line])
    with pytest.raises(DataError, match=pattern):
        load_snapshots(path)


def test_crossed_quotes_can_be_skipped_and_counted(tmp_path):
    path = write_csv(tmp_path / "x.csv", [row(0, 2, 10.0, 10.1, 1, 1), row(1, 2, 10.2, 10.1, 1, 5)])
    with pytest.warns(UserWarning, match="skipped 1 crossed"):
        snaps, summary = load_snapshots(path, crossed="skip")
    assert len(snaps) == 1 and summary.skipped["crossed_quote"] == 1


def test_locked_quote_is_accepted(tmp_path):
    path = write_csv(tmp_path / "lock.csv", [row(0, 2, 10.1, 10.1, 1, 1)])
    assert load_snapshots(path)[0].ask_px.tolist() == [[10.1]]


def test_missing_columns_and_other_schemas(tmp_path):
    trades = tmp_path / "trades.csv"
    trades.write_text(
        "ts_recv,ts_event,rtype,publisher_id,instrument_id,action,side,depth,price,"
        "size,flags,ts_in_delta,sequence,symbol\n"
    )
    with pytest.raises(DataError, match=r"trades\.csv: missing columns .*looks like a trades file"):
        load_snapshots(trades)
    ohlcv = tmp_path / "ohlcv.csv"
    ohlcv.write_text("ts_event,rtype,publisher_id,instrument_id,open,high,low,close,volume\n")
    with pytest.raises(DataError, match="OHLCV"):
        load_snapshots(ohlcv)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        load_snapshots(empty)
    header_only = write_csv(tmp_path / "h.csv", [])
    header_only.write_text(HEADER + "\n")
    with pytest.raises(DataError, match="header but no rows"):
        load_snapshots(header_only)
    with pytest.raises(DataError, match="no such file"):
        load_snapshots(tmp_path / "nope.csv")


def test_wrong_column_count_names_the_line(tmp_path):
    path = write_csv(
        tmp_path / "cols.csv",
        [row(0, 2, 10.0, 10.1, 1, 1), row(1, 2, 10.0, 10.1, 1, 1) + ",extra,fields"],
    )
    with pytest.raises(DataError, match=r"cols\.csv:3: malformed line: 22 fields, expected 20"):
        load_snapshots(path)


def test_empty_window_says_what_the_file_spans(two_venues):
    with pytest.raises(DataError, match=r"no rows in the window.*runs from 2024-08-01T13:36:32"):
        load_snapshots(two_venues, start="14:00:00")
    with pytest.raises(DataError, match="after end"):
        load_snapshots(two_venues, start="13:40:00", end="13:30:00")
    with pytest.raises(DataError, match="is not a time"):
        load_snapshots(two_venues, start="noon")


def test_out_of_order_rows_are_sorted_and_reported(tmp_path):
    path = write_csv(
        tmp_path / "ooo.csv", [row(5, 2, 10.0, 10.2, 1, 1), row(0, 2, 10.0, 10.1, 1, 1)]
    )
    snaps, summary = load_snapshots(path)
    assert snaps.ask_px[:, 0].tolist() == [10.1, 10.2]
    assert summary.repaired["rows_out_of_ts_event_order_sorted"] == 1


def test_time_helpers_round_trip():
    ns = 1722519392491911683
    assert ns_to_iso(ns) == "2024-08-01T13:36:32.491911683Z"
    assert parse_time_bound(ns_to_iso(ns), ns, name="start") == ns
    assert parse_time_bound("13:36:32", ns, name="start") == 1722519392000000000
    assert parse_time_bound(None, ns, name="start") is None


def test_updates_are_in_clock_order(two_venues):
    updates, _ = load_updates(two_venues)
    assert np.all(np.diff(updates.ts) >= 0)
    assert updates.venue.dtype == np.int32 and updates.ask_sz.dtype == np.int64


def test_truncated_line_names_the_line(tmp_path):
    path = write_csv(
        tmp_path / "cut.csv",
        [
            row(0, 2, 10.0, 10.1, 1, 1),
            row(1, 2, 10.0, 10.1, 1, 1)[:60],
            row(2, 2, 10.0, 10.1, 1, 1),
        ],
    )
    with pytest.raises(DataError, match=r"cut\.csv:3: malformed line: \d+ fields, expected 20"):
        load_snapshots(path)


def test_last_line_without_newline_is_read(tmp_path):
    path = tmp_path / "nonl.csv"
    path.write_text(
        HEADER + "\n" + row(0, 2, 10.0, 10.1, 1, 1) + "\n" + row(1, 2, 10.0, 10.2, 1, 1)
    )
    assert load_snapshots(path)[0].ask_px[:, 0].tolist() == [10.1, 10.2]


# --- trade prints ---------------------------------------------------------------------------


@pytest.fixture
def trades_at_two_venues(tmp_path):
    return write_csv(
        tmp_path / "trades.csv",
        [
            row(0, 2, 10.00, 10.02, 300, 200, seq=1),
            row(0, 9, 10.01, 10.03, 100, 500, seq=2),
            # Two trades at venue 9 at 3 ms, both counted at the 3 ms snapshot, in order.
            row(3, 9, 10.01, 10.03, 100, 400, action="T", side="B", price=10.03, size=100, seq=3),
            row(3, 9, 10.00, 10.03, 300, 400, action="T", side="A", price=10.01, size=40, seq=4),
            # A trade at venue 2 whose row is not the first of its event; no price, no side.
            row(5, 2, 10.00, 10.02, 300, 150, seq=5),
            row(5, 2, 10.00, 10.02, 300, 150, action="T", side="N", size=50, seq=6),
            # Simultaneous trades at two venues, written venue 9 first: ordered by venue.
            row(8, 9, 10.01, 10.04, 100, 500, action="T", side="B", price=10.03, size=7, seq=7),
            row(8, 2, 9.99, 10.02, 100, 150, action="T", side="A", price=10.0, size=200, seq=8),
            row(9, 2, 9.99, 10.02, 100, 150, seq=9),
        ],
    )


def test_trade_prints_per_venue(trades_at_two_venues):
    updates, summary = load_updates(trades_at_two_venues)
    assert (updates.trade_ts - BASE_NS).tolist() == [3e6, 3e6, 5e6, 8e6, 8e6]
    assert updates.trade_venue.tolist() == [9, 9, 2, 2, 9]
    assert updates.trade_size.tolist() == [100, 40, 50, 200, 7]
    np.testing.assert_array_equal(updates.trade_px, [10.03, 10.01, np.nan, 10.0, 10.03])
    assert updates.trade_side.tolist() == [1, -1, 0, -1, 1]
    assert updates.trade_venue.dtype == np.int32 and updates.trade_side.dtype == np.int8
    assert summary.trade_rows == 5 and summary.traded_shares == 397

    snaps = build_snapshots(updates)
    assert snaps.venues.tolist() == [2, 9]
    assert (snaps.ts - BASE_NS).tolist() == [0, 3e6, 5e6, 8e6, 9e6]
    assert snaps.trade_volume.tolist() == [0, 140, 50, 207, 0]
    assert snaps.trade_row.tolist() == [1, 1, 2, 3, 3]
    assert snaps.trade_col.tolist() == [1, 1, 0, 0, 1]
    np.testing.assert_array_equal(snaps.trade_px, [10.03, 10.01, np.nan, 10.0, 10.03])
    assert snaps.trade_sz.tolist() == [100, 40, 50, 200, 7]
    assert snaps.trade_side.tolist() == [1, -1, 0, -1, 1]
    for name, dtype in [
        ("trade_row", np.int64),
        ("trade_col", np.int32),
        ("trade_px", np.float64),
        ("trade_sz", np.int64),
        ("trade_side", np.int8),
    ]:
        assert getattr(snaps, name).dtype == dtype, name


def test_trade_prints_in_raw_style(tmp_path, trades_at_two_venues):
    """Raw prices in 1e-9 dollars, int64 max for an undefined trade price: the same prints."""
    raw = to_raw_style(trades_at_two_venues, tmp_path / "raw.csv", timestamps=False)
    snaps, summary = load_snapshots(raw)
    assert summary.price_style == "fixed"
    assert snaps.equals(load_snapshots(trades_at_two_venues)[0])
    assert np.isnan(snaps.trade_px[2]) and snaps.trade_px[0] == 10.03


def test_trades_without_price_and_side_columns(tmp_path, trades_at_two_venues):
    import pandas as pd

    df = pd.read_csv(trades_at_two_venues, dtype=str, keep_default_na=False)
    bare = tmp_path / "bare.csv"
    df.drop(columns=["price", "side"]).to_csv(bare, index=False)
    snaps, _ = load_snapshots(bare)
    full, _ = load_snapshots(trades_at_two_venues)
    assert snaps.trade_sz.tolist() == full.trade_sz.tolist()
    assert snaps.trade_col.tolist() == full.trade_col.tolist()
    assert np.isnan(snaps.trade_px).all() and snaps.trade_px.dtype == np.float64
    assert (snaps.trade_side == 0).all() and snaps.trade_side.dtype == np.int8


def test_file_without_trades_has_empty_trade_arrays(two_venues, tmp_path):
    path = write_csv(tmp_path / "quotes.csv", [row(0, 2, 10.0, 10.1, 1, 1)])
    updates, _ = load_updates(path)
    assert len(updates.trade_ts) == len(updates.trade_px) == len(updates.trade_side) == 0
    snaps = build_snapshots(updates)
    assert len(snaps.trade_row) == len(snaps.trade_col) == len(snaps.trade_px) == 0
    assert snaps.trade_side.dtype == np.int8 and snaps.trade_col.dtype == np.int32


def trade_line(**kw):
    return row(1, 2, 10.0, 10.1, 1, 1, action="T", size=5, **kw)


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (
            trade_line(side="B", price="abc"),
            r"bad\.csv:3: column 'price': 'abc' is not a price: expected a decimal",
        ),
        (trade_line(side="B", price="-10.1"), r"bad\.csv:3: column 'price': '-10.1' is not a"),
        (trade_line(side="B", price="nan"), r"bad\.csv:3: column 'price': 'nan' is not a price"),
        (trade_line(side="B", price="1e300"), r":3: column 'price': '1e300' is above the largest"),
        (trade_line(side="b", price=10.1), r"bad\.csv:3: column 'side': 'b' is not a side"),
        (trade_line(side="S", price=10.1), r":3: column 'side': 'S' is not a side: expected A"),
        (trade_line(side="BUY", price=10.1), r":3: column 'side': 'BUY' is not a side"),
    ],
)
def test_bad_trade_cells_name_file_line_and_field(tmp_path, line, pattern):
    path = write_csv(tmp_path / "bad.csv", [row(0, 2, 10.0, 10.1, 1, 1), line])
    with pytest.raises(DataError, match=pattern):
        load_snapshots(path)


def test_decimal_trade_price_in_raw_file_is_refused(tmp_path):
    raw = "9223372036854775807"
    lines = [
        row(0, 2, 10_000_000_000, 10_100_000_000, 1, 1, price=raw),
        row(1, 2, 10_000_000_000, 10_100_000_000, 1, 1, action="T", side="A", price=10.0, size=1),
    ]
    path = write_csv(tmp_path / "mixed.csv", lines)
    with pytest.raises(DataError, match=r"mixed\.csv:3: column 'price': '10.0' is not a price: "):
        load_snapshots(path)


def test_price_and_side_of_other_rows_are_not_read(tmp_path):
    """Only trade rows' price and side are used, so only they must be valid."""
    path = write_csv(
        tmp_path / "other.csv",
        [
            row(0, 2, 10.0, 10.1, 1, 1, action="A", side="?", price="n/a"),
            row(1, 2, 10.0, 10.1, 1, 1, action="T", side="A", price=10.0, size=3),
        ],
    )
    snaps, _ = load_snapshots(path)
    assert snaps.trade_px.tolist() == [10.0] and snaps.trade_side.tolist() == [-1]


def test_trade_price_style_from_trades_when_no_quote_has_a_price(tmp_path):
    """A raw file whose quotes are all empty: the trade prices tell the style."""
    undefined = "9223372036854775807"
    path = write_csv(
        tmp_path / "noquotes.csv",
        [
            row(0, 2, undefined, undefined, 0, 0),
            row(1, 2, "", "", 0, 0, action="T", side="B", price=222_830_000_000, size=3),
        ],
    )
    snaps, summary = load_snapshots(path)
    assert summary.price_style == "fixed" and snaps.trade_px.tolist() == [222.83]


def test_generated_trade_rows_load_as_written(tmp_path):
    """Every trade row of a generated raw file, as the arrays hold it."""
    import pandas as pd

    from sor.synth.generate import generate

    path = tmp_path / "gen.csv"
    generate(path, n_events=3000, schema="mbp-10", style="raw", seed=5)
    updates, _ = load_updates(path)
    df = pd.read_csv(path, dtype={"side": str}, usecols=range(13))
    t = df[df.action == "T"].sort_values(["ts_event", "publisher_id", "sequence"], kind="stable")
    assert len(t) > 50
    assert updates.trade_ts.tolist() == t.ts_event.tolist()
    assert updates.trade_venue.tolist() == t.publisher_id.tolist()
    assert updates.trade_size.tolist() == t["size"].tolist()
    assert updates.trade_px.tolist() == (t.price / 1e9).tolist()
    assert updates.trade_side.tolist() == t.side.map({"B": 1, "A": -1, "N": 0}).tolist()
    snaps = build_snapshots(updates)
    assert len(snaps.trade_row) == len(t) and snaps.trade_sz.sum() == snaps.trade_volume.sum()
    assert (np.diff(snaps.trade_row) >= 0).all()
    assert (snaps.venues[snaps.trade_col] == updates.trade_venue).all()


@pytest.mark.parametrize("fraction", ["", ".5", ".000", ".123456"])
def test_iso_timestamps_with_fewer_than_nine_decimals_are_exact(tmp_path, two_venues, fraction):
    """pandas infers seconds or microseconds from the digits shown; the loader keeps ns."""
    import pandas as pd

    df = pd.read_csv(two_venues, dtype=str, keep_default_na=False)
    df["ts_event"] = "2024-08-01T13:36:32" + fraction + "Z"
    df["ts_recv"] = df["ts_event"]
    path = tmp_path / "short.csv"
    df.to_csv(path, index=False)
    snaps, _ = load_snapshots(path)
    expected = int(pd.Timestamp("2024-08-01T13:36:32" + fraction + "Z").value)
    assert snaps.ts.tolist() == [expected]


def test_time_of_day_window_on_a_multi_day_file_applies_on_every_day(tmp_path):
    day = 86_400_000  # ms
    lines = [
        row(t, 2, 10.0, 10.01, 300, 100, seq=i)
        for i, t in enumerate([-60_000, 0, 1_000, 120_000, day - 60_000, day, day + 120_000])
    ]
    path = write_csv(tmp_path / "two_days.csv", lines)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        snaps, summary = load_snapshots(path, start="13:36:00", end="13:37:00")
    # 13:36:00-13:37:00 on both dates: 13:36:32 and 13:36:33 on the first, 13:36:32 on the next
    assert ((snaps.ts - BASE_NS) // 1_000_000).tolist() == [0, 1_000, day]
    assert summary.rows_in_window == 3
    # a full timestamp stays one instant: the window ends on the first date
    snaps, _ = load_snapshots(path, start="13:36:00", end="2024-08-01T23:59:59Z")
    assert ((snaps.ts - BASE_NS) // 1_000_000).tolist() == [0, 1_000, 120_000]


@pytest.mark.parametrize("bad", ["25:00", "13:61", "13:36:75"])
def test_time_of_day_out_of_range_is_refused(two_venues, bad):
    with pytest.raises(DataError, match=f"window start '{bad}' is not a time of day"):
        load_snapshots(two_venues, start=bad)


def test_gzip_inflating_past_max_bytes_is_refused_while_reading(tmp_path):
    import tracemalloc

    bomb = tmp_path / "bomb.csv.gz"
    inflated = 256 * 2**20
    with gzip.open(bomb, "wb", compresslevel=1) as fh:
        chunk = b"0" * 2**20
        for _ in range(inflated // len(chunk)):
            fh.write(chunk)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=rf"^{bomb}: the gzip file inflates to more than "):
            load_updates(bomb, max_bytes=2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < inflated / 4  # stopped near the limit, not after inflating everything


def test_file_longer_than_max_bytes_is_refused(two_venues):
    size = two_venues.stat().st_size
    with pytest.raises(DataError, match=rf"holds more than {size - 1:,} bytes.*max_bytes"):
        load_updates(two_venues, max_bytes=size - 1)
    assert len(load_updates(two_venues, max_bytes=size)[0]) > 0


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-13-45T13:36:32.000000000Z",
        "2024-02-30T13:36:32.000000000Z",
        "2023-02-29T13:36:32.000000000Z",
        "2024-08-01T25:61:61.000000000Z",
        "2024-08-01T13:36:32.5+25:00",
    ],
)
@pytest.mark.parametrize("column", ["ts_event", "ts_recv"])
@pytest.mark.parametrize("reader", ["auto", "precise"])
def test_impossible_calendar_date_names_file_line_and_column(tmp_path, stamp, column, reader):
    lines = [row(t, 2, 10.0, 10.01, 100, 100, seq=t + 1) for t in range(5)]
    path = write_csv(tmp_path / "dates.csv", lines)
    text = path.read_text().splitlines()
    cells = text[3].split(",")
    cells[HEADER.split(",").index(column)] = stamp
    text[3] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=rf"^{path}:4: column '{column}': '{re.escape(stamp)}' is"):
        load_updates(path, clock=column, reader=reader)


def without_sequence(lines: list[str]) -> tuple[str, list[str]]:
    """HEADER and `lines` without their sequence column."""
    k = HEADER.split(",").index("sequence")
    drop = lambda text: ",".join(c for i, c in enumerate(text.split(",")) if i != k)  # noqa: E731
    return drop(HEADER), [drop(line) for line in lines]


@pytest.mark.parametrize("reader", ["auto", "precise"])
def test_repeated_rows_without_a_sequence_column_are_kept_counted_and_reported(tmp_path, reader):
    trade = row(5, 2, 10.0, 10.02, 300, 200, action="T", side="B", price=10.02, size=50)
    header, lines = without_sequence(
        [row(0, 2, 10.0, 10.02, 300, 200), trade, trade, row(9, 9, 10.0, 10.03, 100, 100)]
    )
    path = write_csv(tmp_path / "noseq.csv", lines, header=header)
    with pytest.warns(UserWarning, match=r"1 rows repeat an earlier row .* they are kept"):
        updates, summary = load_updates(path, reader=reader)
    assert summary.repeated_rows_kept == 1
    assert summary.trade_rows == 2 and summary.traded_shares == 100  # two events or one resent
    assert "duplicate_rows" not in summary.skipped


def test_repeated_rows_with_a_sequence_column_are_dropped_as_before(tmp_path):
    trade = row(5, 2, 10.0, 10.02, 300, 200, action="T", side="B", price=10.02, size=50, seq=7)
    path = write_csv(tmp_path / "seq.csv", [row(0, 2, 10.0, 10.02, 300, 200, seq=1), trade, trade])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        updates, summary = load_updates(path)
    assert summary.skipped["duplicate_rows"] == 1 and summary.repeated_rows_kept == 0
    assert summary.traded_shares == 50


@pytest.mark.parametrize("reader", ["auto", "precise"])
def test_sequence_numbers_at_int64_max_load_without_warning(tmp_path, reader):
    top = 2**63 - 1
    lines = [row(t, 2 + t % 2, 10.0, 10.01, 100, 100, seq=top - t % 3) for t in range(6)]
    path = write_csv(tmp_path / "seqmax.csv", lines)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        updates, summary = load_updates(path, reader=reader)
    assert summary.rows_kept == 6
