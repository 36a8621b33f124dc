"""Events <-> QuoteUpdates and the stream checks, without a broker."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from sor.data.snapshots import QuoteUpdates, build_snapshots
from sor.errors import DataError, StreamError
from stream.assembler import StreamAssembler
from stream.book import Trade
from stream.events import COMPACT_BLOCKS, UpdatesBuilder, event_columns, split_events
from stream.messages import cut, decode, encode_event, encode_events, event_rows
from tests.sor.data import snapdata
from tests.stream.helpers import BASE_NS, encoded_stream, small_updates

SID = "0123456789abcdef0123456789abcdef"


def updates_with_trades() -> QuoteUpdates:
    """`snapdata.updates_with_trades` on a trading day (the loader's years): times BASE_NS +
    10, 20, 30 ns."""
    updates = snapdata.updates_with_trades()
    return replace(updates, ts=updates.ts + BASE_NS, trade_ts=updates.trade_ts + BASE_NS)


def test_split_events_counts_trades_as_build_snapshots_does():
    updates = updates_with_trades()
    events = list(split_events(updates))
    assert [e.ts - BASE_NS for e in events] == [10, 20, 30]
    assert [e.trade_volume for e in events] == build_snapshots(updates).trade_volume.tolist()
    assert [e.trade_volume for e in events] == [3, 36, 8]  # 16 after the last snapshot: dropped
    # three ask levels: each update carries the levels shown beyond level 0
    assert events[0].updates == [
        [9, 10.02, 100, 10.0, 300, [10.03], [200]],
        [2, None, 0, 9.99, 10, [], []],
    ]
    assert events[1].updates == [[2, 10.01, 50, None, 0, [10.01, 10.05], [20, 300]]]
    assert [e.trades for e in events] == [
        [[9, 10.02, 1, 1], [2, 9.99, 2, -1]],
        [[5, 10.0, 4, 1], [9, None, 32, 0]],
        [[9, 10.0, 8, -1]],
    ]
    assert all(type(v) is int for e in events for t in e.trades for v in (t[0], t[2], t[3]))


def test_builder_restores_the_snapshots():
    updates = updates_with_trades()
    builder = UpdatesBuilder(levels=3)
    events = event_columns(updates)
    builder.add(cut(events, 0, 1))
    builder.add(cut(events, 1, 3))
    assert len(builder) == 3
    restored = builder.build("XYZ")
    np.testing.assert_array_equal(restored.ask_depth_px, updates.ask_depth_px)  # NaN included
    np.testing.assert_array_equal(restored.ask_depth_sz, updates.ask_depth_sz)
    assert restored.ask_depth_px.dtype == np.float64 and restored.ask_depth_sz.dtype == np.int64
    rebuilt = build_snapshots(restored)
    assert rebuilt.equals(build_snapshots(updates)) and rebuilt.n_levels == 3
    assert rebuilt.trade_sz.tolist() == [1, 2, 32, 8]
    assert rebuilt.trade_col.tolist() == [1, 0, 1, 1]
    pieces = list(builder.pieces(0, 3))
    assert [first for first, _ in pieces] == [0, 1]
    assert [e for _, piece in pieces for e in event_rows(piece)] == list(split_events(updates))
    assert [first for first, _ in builder.pieces(2, 3)] == [2]
    with pytest.raises(ValueError, match="events of 1 ask level"):
        builder.add(event_columns(top_of_book_only(updates)))


def test_builder_joins_runs_of_small_blocks():
    """One event a block: joined COMPACT_BLOCKS at a time (copies, not views of the messages),
    the events and the pieces unchanged."""
    updates = small_updates(1000)
    events = event_columns(updates)
    builder = UpdatesBuilder(levels=2)
    for i in range(600):
        builder.add(cut(events, i, i + 1))
    builder.add(cut(events, 600, 1000))  # a large block stays as it is
    assert len(builder._blocks) == 2 + (600 - 2 * COMPACT_BLOCKS) + 1
    assert not np.shares_memory(builder._blocks[0].ts, events.ts)
    assert len(builder) == 1000
    assert build_snapshots(builder.build("AAPL")).equals(build_snapshots(updates))
    pieces = list(builder.pieces(250, 700))
    firsts = [first for first, _ in pieces]
    assert firsts[:3] == [250, 256, 512] and firsts[-2:] == [599, 600]
    rows = [row for _, piece in pieces for row in event_rows(piece)]
    assert rows == list(split_events(updates))[250:700]


def test_builder_with_no_trades_at_all():
    updates = updates_with_trades()
    quiet = QuoteUpdates(
        **{**updates.__dict__, **{k: v[:0] for k, v in updates.__dict__.items() if "trade" in k}}
    )
    builder = UpdatesBuilder(quiet.n_levels)
    for event in split_events(quiet):
        assert event.trades == [] and event.trade_volume == 0
    builder.add(event_columns(quiet))
    rebuilt = builder.build("XYZ")
    assert rebuilt.trade_side.dtype == np.int8 and len(rebuilt.trade_ts) == 0
    assert build_snapshots(rebuilt).equals(build_snapshots(quiet))


def test_split_events_refuses_unsorted_updates():
    updates = updates_with_trades()
    unsorted = QuoteUpdates(**{**updates.__dict__, "ts": updates.ts[::-1].copy()})
    with pytest.raises(DataError, match="non-decreasing clock order"):
        list(split_events(unsorted))


def test_split_events_refuses_infinite_prices():
    updates = updates_with_trades()
    ask_px = updates.ask_px.copy()
    ask_px[2] = np.inf
    with pytest.raises(DataError, match="infinite price"):
        list(split_events(QuoteUpdates(**{**updates.__dict__, "ask_px": ask_px})))


def top_of_book_only(updates: QuoteUpdates) -> QuoteUpdates:
    """The same updates with a ladder of one level, the best ask."""
    return replace(
        updates, ask_depth_px=updates.ask_px[:, None], ask_depth_sz=updates.ask_sz[:, None]
    )


def test_top_of_book_updates_keep_five_fields_and_round_trip():
    updates = top_of_book_only(updates_with_trades())
    events = list(split_events(updates))
    assert events[0].updates == [[9, 10.02, 100, 10.0, 300], [2, None, 0, 9.99, 10]]
    builder = UpdatesBuilder()
    builder.add(event_columns(updates))
    rebuilt = builder.build("XYZ")
    assert rebuilt.n_levels == 1 and build_snapshots(rebuilt).equals(build_snapshots(updates))


def test_builder_with_no_updates_at_all():
    empty = UpdatesBuilder(levels=10).build("XYZ")
    assert empty.ask_depth_px.shape == (0, 10) and empty.ask_depth_sz.dtype == np.int64


def with_ladder(updates: QuoteUpdates, row: int, px: list[float], sz: list[int]) -> QuoteUpdates:
    """`updates` with row `row`'s ask ladder (level 0 too) replaced."""
    depth_px, depth_sz = updates.ask_depth_px.copy(), updates.ask_depth_sz.copy()
    depth_px[row], depth_sz[row] = px, sz
    ask_px, ask_sz = updates.ask_px.copy(), updates.ask_sz.copy()
    ask_px[row], ask_sz[row] = px[0], sz[0]
    return replace(
        updates, ask_px=ask_px, ask_sz=ask_sz, ask_depth_px=depth_px, ask_depth_sz=depth_sz
    )


@pytest.mark.parametrize(
    ("px", "sz", "match"),
    [
        ([10.01, 10.0, 10.05], [50, 20, 300], "quote update 2: an ask ladder broken at level 1"),
        ([10.01, np.nan, 10.05], [50, 0, 300], "an ask ladder broken at level 2"),
        ([np.nan, 10.01, 10.05], [0, 20, 300], "an ask ladder broken at level 1"),
        ([10.01, 10.02, 10.05], [50, 0, 300], "a price with no size"),
        ([10.01, np.nan, np.nan], [50, 5, 0], "a price with no size, or a size with no price"),
        ([10.01, 10.02, np.nan], [0, 5, 0], "a price with no size"),
        ([10.01, -10.02, np.nan], [50, 5, 0], r"ask price outside \(0, "),
        ([10.01, 1e10, np.nan], [50, 5, 0], r"ask price outside \(0, "),
        ([10.01, 10.02, np.nan], [50, 10**9 + 1, 0], r"ask size outside \[0, 1000000000\]"),
        ([10.01, 10.02, np.inf], [50, 5, 5], "infinite price"),
    ],
)
def test_split_events_refuses_ladders_a_consumer_would_refuse(px, sz, match):
    """The producer refuses what the CSV loader and the consumer refuse, before sending."""
    updates = with_ladder(updates_with_trades(), 2, px, sz)
    with pytest.raises(DataError, match=match):
        list(split_events(updates))


def test_split_events_refuses_a_ladder_not_starting_at_the_best_ask():
    updates = updates_with_trades()
    ask_sz = updates.ask_sz.copy()
    ask_sz[2] += 1
    with pytest.raises(DataError, match="level 0 of the ask ladder is not ask_px / ask_sz"):
        list(split_events(replace(updates, ask_sz=ask_sz)))
    bid_px = updates.bid_px.copy()
    bid_px[0] = 0.0
    with pytest.raises(DataError, match=r"bid price outside \(0, "):
        list(split_events(replace(updates, bid_px=bid_px)))


def test_assembler_refuses_events_not_fitting_the_declared_levels():
    """An event whose updates do not have the layout the start message declares is refused."""
    deep = encoded_stream(updates_with_trades(), SID)  # three levels: updates of 7 fields
    flat = encoded_stream(top_of_book_only(updates_with_trades()), SID)  # one level: 5 fields
    for start, event in ((deep[0], flat[1]), (flat[0], deep[1])):
        with pytest.raises(StreamError, match=r"event seq 1 at offset 1 does not fit the start"):
            feed(StreamAssembler(), [start, event])
    # more levels beyond level 0 than the start message allows (2 for three levels)
    too_deep = encode_event(
        SID, 1, BASE_NS, [[2, 10.0, 1, None, 0, [10.1, 10.2, 10.3], [1, 1, 1]]], [], levels=4
    )
    with pytest.raises(StreamError, match="carry 3 ask level.s. beyond level 0, not 2"):
        feed(StreamAssembler(), [deep[0], too_deep])
    fits = encode_event(
        SID, 1, BASE_NS, [[2, 10.0, 1, None, 0, [10.1, 10.2], [1, 1]]], [], levels=3
    )
    assembler = StreamAssembler()
    feed(assembler, [deep[0], fits])
    assert assembler.events == 1 and assembler.updates().ask_depth_px.tolist() == [
        [10.0, 10.1, 10.2]
    ]


def feed(assembler: StreamAssembler, messages: list[bytes]) -> bool:
    done = False
    for offset, raw in enumerate(messages):
        done = assembler.accept(decode(raw), offset)
    return done


def test_live_book_matches_each_snapshot_row():
    updates = updates_with_trades()
    expected = build_snapshots(updates)
    rows = []

    def on_event(ts, book):
        with pytest.raises(TypeError):
            book.quotes[99] = None  # read-only view
        rows.append((ts, dict(book.quotes), book.trade_volume, book.best_ask(), book.trades))

    assert feed(StreamAssembler(on_event=on_event), encoded_stream(updates))
    # The trade prints of each snapshot, venue 5's too (it has no column); NaN: no price.
    assert rows[0][4] == (Trade(9, 10.02, 1, 1), Trade(2, 9.99, 2, -1))
    venue5, no_price = rows[1][4]
    assert venue5 == Trade(5, 10.0, 4, 1)
    assert (no_price.venue, no_price.sz, no_price.side) == (9, 32, 0) and math.isnan(no_price.px)
    assert rows[2][4] == (Trade(9, 10.0, 8, -1),)
    for i, (ts, quotes, volume, *_) in enumerate(rows):
        assert ts == expected.ts[i] and volume == expected.trade_volume[i]
        for j, venue in enumerate(expected.venues.tolist()):
            if venue not in quotes:
                assert expected.ask_sz[i, j] == 0 and math.isnan(expected.ask_px[i, j])
                continue
            q = quotes[venue]
            np.testing.assert_array_equal(
                [q.ask_px, q.bid_px], [expected.ask_px[i, j], expected.bid_px[i, j]]
            )
            assert (q.ask_sz, q.bid_sz) == (expected.ask_sz[i, j], expected.bid_sz[i, j])
    assert [best[0] for *_, best, _ in rows] == [9, 2, 2]


def test_best_ask_ties_go_to_larger_size_then_lower_venue():
    updates = QuoteUpdates(
        ts=np.array([BASE_NS] * 3, dtype=np.int64),
        venue=np.array([7, 3, 5], dtype=np.int32),
        ask_px=np.array([10.0, 10.0, 10.0]),
        ask_sz=np.array([100, 200, 200]),
        bid_px=np.array([9.0, 9.0, 9.0]),
        bid_sz=np.array([1, 1, 1]),
        ask_depth_px=np.array([[10.0], [10.0], [10.0]]),
        ask_depth_sz=np.array([[100], [200], [200]]),
        trade_ts=np.zeros(0, dtype=np.int64),
        trade_size=np.zeros(0, dtype=np.int64),
        trade_venue=np.zeros(0, dtype=np.int32),
        trade_px=np.zeros(0),
        trade_side=np.zeros(0, dtype=np.int8),
    )
    best = []
    feed(
        StreamAssembler(on_event=lambda ts, book: best.append(book.best_ask())),
        encoded_stream(updates),
    )
    assert best == [(3, 10.0, 200)]


def test_messages_before_the_start_are_skipped_and_later_ids_refused():
    first, second = encoded_stream(updates_with_trades()), encoded_stream(updates_with_trades())
    assembler = StreamAssembler()
    assert feed(assembler, [*first[3:], *second])
    assert assembler.skipped == 2 and assembler.events == 3

    assembler = StreamAssembler()
    with pytest.raises(StreamError, match="interleaved"):
        feed(assembler, [*first[:2], second[0]])


def test_end_is_final():
    messages = encoded_stream(updates_with_trades())
    assembler = StreamAssembler()
    assert feed(assembler, messages)
    with pytest.raises(StreamError, match="is complete"):
        assembler.accept(decode(messages[1]), 99)


def test_event_times_must_increase():
    updates = updates_with_trades()
    messages = encoded_stream(updates, SID)
    # Same seq numbers, but the second event claims the first event's time.
    second = split_events(updates)
    next(second)
    _, rows, trades = next(second)
    messages[2] = encode_event(SID, 2, BASE_NS + 10, rows, trades, levels=3)
    with pytest.raises(StreamError, match="seq 2 at offset 2 has ts .* not after the previous"):
        feed(StreamAssembler(), messages)
    # Inside one message: refused when the message is decoded, naming the event.
    both = list(split_events(updates))[:2]
    both[1] = both[1]._replace(ts=both[0].ts)
    with pytest.raises(StreamError, match="event seq 2 holds .* not after the previous event"):
        decode(encode_events(SID, 1, both, levels=3))
