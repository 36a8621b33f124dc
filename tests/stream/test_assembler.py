"""Events <-> QuoteUpdates and the stream checks, without a broker."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sor.data.snapshots import QuoteUpdates, build_snapshots
from sor.errors import DataError, StreamError
from stream.assembler import StreamAssembler
from stream.book import Trade
from stream.events import UpdatesBuilder, split_events
from stream.messages import decode
from tests.sor.data.snapdata import updates_with_trades
from tests.stream.helpers import encoded_stream


def test_split_events_counts_trades_as_build_snapshots_does():
    updates = updates_with_trades()
    events = list(split_events(updates))
    assert [e.ts for e in events] == [10, 20, 30]
    assert [e.trade_volume for e in events] == build_snapshots(updates).trade_volume.tolist()
    assert [e.trade_volume for e in events] == [3, 36, 8]  # 16 after the last snapshot: dropped
    assert events[0].updates == [[9, 10.02, 100, 10.0, 300], [2, None, 0, 9.99, 10]]
    assert [e.trades for e in events] == [
        [[9, 10.02, 1, 1], [2, 9.99, 2, -1]],
        [[5, 10.0, 4, 1], [9, None, 32, 0]],
        [[9, 10.0, 8, -1]],
    ]
    assert all(type(v) is int for e in events for t in e.trades for v in (t[0], t[2], t[3]))


def test_builder_restores_the_snapshots():
    updates = updates_with_trades()
    builder = UpdatesBuilder()
    for event in split_events(updates):
        builder.add(*event)
    assert len(builder) == 3
    rebuilt = build_snapshots(builder.build("XYZ"))
    assert rebuilt.equals(build_snapshots(updates))
    assert rebuilt.trade_sz.tolist() == [1, 2, 32, 8]
    assert rebuilt.trade_col.tolist() == [1, 0, 1, 1]
    assert [builder.event(i) for i in range(3)] == list(split_events(updates))


def test_builder_with_no_trades_at_all():
    updates = updates_with_trades()
    quiet = QuoteUpdates(
        **{**updates.__dict__, **{k: v[:0] for k, v in updates.__dict__.items() if "trade" in k}}
    )
    builder = UpdatesBuilder()
    for event in split_events(quiet):
        assert event.trades == [] and event.trade_volume == 0
        builder.add(*event)
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
        ts=np.array([1, 1, 1], dtype=np.int64),
        venue=np.array([7, 3, 5], dtype=np.int32),
        ask_px=np.array([10.0, 10.0, 10.0]),
        ask_sz=np.array([100, 200, 200]),
        bid_px=np.array([9.0, 9.0, 9.0]),
        bid_sz=np.array([1, 1, 1]),
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
    messages = encoded_stream(updates)
    # Same seq numbers, but the second event claims the first event's time.
    messages[2] = messages[2].replace(b'"ts":20', b'"ts":10')
    with pytest.raises(StreamError, match="out of clock order"):
        feed(StreamAssembler(), messages)
