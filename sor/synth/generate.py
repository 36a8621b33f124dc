"""Seeded multi-venue market data generator writing Databento MBP-1 / MBP-10 CSV (model.md §1).

One latent fair price (a random walk in whole ticks) is quoted by several venues, each with its
own spread, displayed depth, lot sizes, update rate, price lag and feed latency. Every row is one
book event at one venue (add, cancel, modify or trade) followed by that venue's book after the
event, in the column layout and both CSV styles ("pretty" and raw) of a Databento export.

A trade row shows the book after that trade, and an MBP-1 file is the top-level projection of
the MBP-10 file of the same seed.

Everything random is drawn here with NumPy; the book is played and the rows are formatted by the
compiled kernels of `sor.synth.legacy_nb`, and written in pieces of a few megabytes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from sor.synth import legacy_nb
from sor.synth.sink import Writer, open_sink
from sor.vocabulary import GENERATED_SYMBOL_PREFIX

__all__ = [
    "DEFAULT_VENUES",
    "F_LAST",
    "LEVELS",
    "SCHEMAS",
    "STYLES",
    "UNDEF_PRICE",
    "GenerateSummary",
    "VenueProfile",
    "GeneratedRows",
    "generate",
    "generate_rows",
    "header",
]

UNDEF_PRICE = 9_223_372_036_854_775_807  #: Databento's undefined price (i64::MAX), raw style
F_LAST = 128  #: flags bit: last record of the venue's event for this instrument
LEVELS = 10  #: book levels per side simulated (and written for MBP-10)
SCHEMAS = ("mbp-10", "mbp-1")
STYLES = ("pretty", "raw")

_HEAD = (
    "ts_recv,ts_event,rtype,publisher_id,instrument_id,action,side,depth,price,size,flags,"
    "ts_in_delta,sequence"
)
_BID, _ASK = 0, 1
_SIGN = (-1, 1)  # direction away from the touch: bids descend, asks ascend
_TICK_NS = 1_000_000_000
_BUF_BYTES = 1 << 23  # bytes formatted at a time (two buffers: one is written meanwhile)


@dataclass(frozen=True)
class VenueProfile:
    """How one venue quotes the common fair price.

    Attributes:
        publisher_id: Databento publisher id of the venue (2 XNAS, 9 XNYS, 43 ARCX, 5 BATS, 38 IEX).
        spread_ticks: mean quoted spread in ticks, >= 1.
        depth_shares: mean displayed size at the best level, shares.
        odd_lot_prob: probability that an order is an odd or mixed lot (not a multiple of 100).
        rate_hz: mean book events (rows) per second at this venue.
        lag_ms: how far behind the fair price the venue's quotes are centred, milliseconds.
        latency_us: mean ts_recv - ts_event (feed and capture latency), microseconds.
        empty_ask_per_min: mean number of episodes per minute in which the ask side is empty.
    """

    publisher_id: int
    spread_ticks: float = 1.0
    depth_shares: float = 300.0
    odd_lot_prob: float = 0.3
    rate_hz: float = 40.0
    lag_ms: float = 0.0
    latency_us: float = 170.0
    empty_ask_per_min: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "publisher_id >= 1": self.publisher_id >= 1,
            "spread_ticks >= 1": self.spread_ticks >= 1,
            "depth_shares > 0": self.depth_shares > 0,
            "0 <= odd_lot_prob <= 1": 0 <= self.odd_lot_prob <= 1,
            "rate_hz > 0": self.rate_hz > 0,
            "lag_ms >= 0": self.lag_ms >= 0,
            "latency_us > 0": self.latency_us > 0,
            "empty_ask_per_min >= 0": self.empty_ask_per_min >= 0,
        }
        for rule, ok in checks.items():
            if not ok:
                raise ValueError(f"`{rule}` must hold, but got {self!r}.")


DEFAULT_VENUES: tuple[VenueProfile, ...] = (
    # XNAS: deepest, fastest, tightest; the reference feed (latency as in l1_day.csv).
    VenueProfile(
        2,
        spread_ticks=1.0,
        depth_shares=320,
        odd_lot_prob=0.35,
        rate_hz=60,
        lag_ms=0.0,
        latency_us=170,
        empty_ask_per_min=0.0,
    ),
    # XNYS: deep but slower to move; captured farther from the matching engine.
    VenueProfile(
        9,
        spread_ticks=1.2,
        depth_shares=260,
        odd_lot_prob=0.25,
        rate_hz=30,
        lag_ms=3.0,
        latency_us=310,
        empty_ask_per_min=0.1,
    ),
    # ARCX: wider, thinner.
    VenueProfile(
        43,
        spread_ticks=1.5,
        depth_shares=180,
        odd_lot_prob=0.3,
        rate_hz=25,
        lag_ms=8.0,
        latency_us=240,
        empty_ask_per_min=0.2,
    ),
    # BATS: tight but thin.
    VenueProfile(
        5,
        spread_ticks=1.1,
        depth_shares=150,
        odd_lot_prob=0.4,
        rate_hz=28,
        lag_ms=2.0,
        latency_us=200,
        empty_ask_per_min=0.2,
    ),
    # IEX: few updates and a lagging quote make it the stale, thin, wide venue.
    VenueProfile(
        38,
        spread_ticks=2.5,
        depth_shares=90,
        odd_lot_prob=0.5,
        rate_hz=6,
        lag_ms=50.0,
        latency_us=420,
        empty_ask_per_min=1.0,
    ),
)


@dataclass(frozen=True)
class GenerateSummary:
    """What `generate` wrote.

    Attributes:
        path: the CSV file written.
        rows: data rows (events) written.
        venues: publisher_ids present, ascending.
        distinct_ts_event: number of distinct ts_event values.
        trades: number of trade rows (action T).
        ts_event_first: first ts_event, ns since the epoch.
        ts_event_last: last ts_event, ns since the epoch.
    """

    path: str
    rows: int
    venues: tuple[int, ...]
    distinct_ts_event: int
    trades: int
    ts_event_first: int
    ts_event_last: int

    @property
    def duration_s(self) -> float:
        """Time covered by ts_event, seconds."""
        return (self.ts_event_last - self.ts_event_first) / 1e9

    def __str__(self) -> str:
        first = np.datetime64(self.ts_event_first, "ns")
        last = np.datetime64(self.ts_event_last, "ns")
        return (
            f"{self.path}: {self.rows} rows, {self.trades} trades, venues {list(self.venues)}, "
            f"{self.distinct_ts_event} distinct ts_event, {first}Z .. {last}Z "
            f"({self.duration_s:.1f} s)"
        )


def header(schema: str = "mbp-10") -> str:
    """The exact Databento CSV header line (without newline) of `schema` ("mbp-10" or "mbp-1")."""
    _check_choice("schema", schema, SCHEMAS)
    n = LEVELS if schema == "mbp-10" else 1
    levels = ",".join(
        f"{f}_{k:02d}"
        for k in range(n)
        for f in ("bid_px", "ask_px", "bid_sz", "ask_sz", "bid_ct", "ask_ct")
    )
    return f"{_HEAD},{levels},symbol"


def generate(
    path: str | Path,
    *,
    n_events: int = 60_000,
    venues: Sequence[VenueProfile] = DEFAULT_VENUES,
    symbol: str = "AAPL",
    instrument_id: int = 38,
    start: str = "2024-08-01T13:36:32Z",
    price: float = 222.80,
    tick: float = 0.01,
    schema: str = "mbp-10",
    style: str = "pretty",
    trade_fraction: float = 0.05,
    burst_prob: float = 0.04,
    cross_venue_prob: float = 0.25,
    vol_ticks_per_min: float = 5.0,
    drift_ticks_per_min: float = 0.0,
    empty_ask_s: float = 2.0,
    seed: int = 0,
) -> GenerateSummary:
    """Simulate a multi-venue order book and write it as a Databento MBP CSV file.

    Args:
        path: output file; gzip-compressed when it ends with ".gz".
        n_events: rows (book events) to write.
        venues: one profile per venue; publisher_ids must be distinct.
        symbol: the instrument; the `symbol` column holds it as SYNTH-<symbol>
            (`GENERATED_SYMBOL_PREFIX`), so the file itself says it is generated.
        instrument_id: value of the `instrument_id` column.
        start: first ts_event, ISO 8601 UTC (e.g. "2024-08-01T13:36:32Z").
        price: initial fair price, dollars per share.
        tick: price increment, dollars per share; every price written lies on this grid.
        schema: "mbp-10" (rtype 10, ten levels) or "mbp-1" (rtype 1, top level). As in
            Databento's MBP-1, the MBP-1 file holds only the events that touch the top level
            (trades included): for the same seed it is the top-level projection of the MBP-10
            file, covering about twice the time for the same `n_events`.
        style: "pretty" (ISO timestamps, decimal prices, empty price where undefined) or
            "raw" (integer ns timestamps, prices in units of 1e-9, undefined 9223372036854775807).
        trade_fraction: approximate share of MBP-10 rows that are trades (action T); about
            twice that share of MBP-1 rows.
        burst_prob: probability that a non-trade event comes with more events at the same
            ts_event (2 or more rows).
        cross_venue_prob: probability that a trade sweep also trades at one or two other venues
            at the same ts_event.
        vol_ticks_per_min: standard deviation of the fair price change per minute, ticks.
        drift_ticks_per_min: mean fair price change per minute, ticks.
        empty_ask_s: mean duration of an episode in which a venue shows no ask, seconds.
        seed: random seed; the same arguments and seed give the same file bytes.

    Returns:
        A summary of the file written.

    Raises:
        ValueError: an argument is out of range.

    Example:
        >>> summary = generate("synthetic.csv.gz", n_events=60_000, seed=1)  # doctest: +SKIP
        >>> print(summary)  # doctest: +SKIP
    """
    rows = generate_rows(
        n_events=n_events,
        venues=venues,
        symbol=symbol,
        instrument_id=instrument_id,
        start=start,
        price=price,
        tick=tick,
        schema=schema,
        style=style,
        trade_fraction=trade_fraction,
        burst_prob=burst_prob,
        cross_venue_prob=cross_venue_prob,
        vol_ticks_per_min=vol_ticks_per_min,
        drift_ticks_per_min=drift_ticks_per_min,
        empty_ask_s=empty_ask_s,
        seed=seed,
    )
    path = Path(path)
    with open_sink(path, compresslevel=6) as out, Writer(out) as writer:
        out.write((header(schema) + "\n").encode())
        rows.write(writer)
    return rows.summary(str(path))


class GeneratedRows:
    """The rows of one `generate` run, held as columns until written.

    `write` streams the CSV lines (without the header) in chunks of `_BUF_BYTES` bytes, so the
    text of the file is never held whole.
    """

    def __init__(
        self,
        table: Mapping[str, np.ndarray],
        venues: Sequence[VenueProfile],
        schema: str,
        style: str,
        tick: float,
        symbol: str,
        instrument_id: int,
    ) -> None:
        self._table, self._venues, self._schema = table, venues, schema
        self._style, self._tick = style, tick
        self._symbol, self._instrument_id = symbol, instrument_id

    def write(self, writer: Writer) -> None:
        """Write every row as a CSV line through `writer`, in file (ts_recv) order."""
        tb = self._table
        n_lv = LEVELS if self._schema == "mbp-10" else 1
        pretty = self._style == "pretty"
        book = tb["book"]
        keys, dense, px_tab, px_off = _price_table(
            (book[:, :2, :n_lv], tb["price"]), self._style, self._tick
        )
        pub = np.array([vp.publisher_id for vp in self._venues], dtype=np.int64)
        rtype = np.frombuffer(b"10" if self._schema == "mbp-10" else b"1", np.uint8)
        instrument = np.frombuffer(str(self._instrument_id).encode(), np.uint8)
        symbol = np.frombuffer(self._symbol.encode("ascii"), np.uint8)
        order = tb["order"]
        # bytes a line can take: 19-digit integers with a sign, the longest price text
        px_len = int(np.diff(px_off).max())
        width = 260 + px_len + 6 * n_lv * max(21, px_len + 1) + len(symbol) + len(instrument)
        # Two buffers: one is formatted while the writer writes the other.
        bufs = [np.empty(max(_BUF_BYTES, width), dtype=np.uint8) for _ in range(2)]
        done, k = 0, 0
        while done < len(order):
            buf = bufs[k]
            k = 1 - k
            nbytes, lines = legacy_nb.format_rows(buf, width, order[done:], pretty, rtype,
                                                  instrument, symbol, pub, keys, dense, px_tab,
                                                  px_off, tb["ts_recv"], tb["ts_event"],
                                                  tb["venue"], tb["action"], tb["side"],
                                                  tb["depth"], tb["price"], tb["size"],
                                                  tb["flags"], tb["sequence"], book,
                                                  n_lv)  # fmt: skip
            writer.submit(buf[:nbytes].data)
            done += lines
        # The last buffer is in flight: wait, or the caller could free it while it is written.
        writer.wait()

    def summary(self, path: str) -> GenerateSummary:
        """What `write` writes, for a file at `path`."""
        ts_event, venue = self._table["ts_event"], self._table["venue"]
        ids = np.array([vp.publisher_id for vp in self._venues])
        return GenerateSummary(
            path=path,
            rows=len(ts_event),
            venues=tuple(int(i) for i in np.sort(ids[np.bincount(venue, minlength=len(ids)) > 0])),
            distinct_ts_event=_distinct(ts_event),
            trades=int(np.count_nonzero(self._table["action"] == ord("T"))),
            ts_event_first=int(ts_event.min()),
            ts_event_last=int(ts_event.max()),
        )


def _distinct(a: np.ndarray) -> int:
    """Distinct values of `a` (ts_event comes in event order, which is time order)."""
    d = np.diff(a)
    if (d >= 0).all():
        return int(np.count_nonzero(d)) + 1
    return len(np.unique(a))


def generate_rows(
    *,
    n_events: int = 60_000,
    venues: Sequence[VenueProfile] = DEFAULT_VENUES,
    symbol: str = "AAPL",
    instrument_id: int = 38,
    start: str = "2024-08-01T13:36:32Z",
    price: float = 222.80,
    tick: float = 0.01,
    schema: str = "mbp-10",
    style: str = "pretty",
    trade_fraction: float = 0.05,
    burst_prob: float = 0.04,
    cross_venue_prob: float = 0.25,
    vol_ticks_per_min: float = 5.0,
    drift_ticks_per_min: float = 0.0,
    empty_ask_s: float = 2.0,
    seed: int = 0,
) -> GeneratedRows:
    """The rows `generate` writes with these arguments (the same ones), not yet written.

    Raises:
        ValueError: an argument is out of range.
    """
    _check_choice("schema", schema, SCHEMAS)
    _check_choice("style", style, STYLES)
    params = _Params(
        n_events=n_events,
        venues=tuple(venues),
        start=start,
        price=price,
        tick=tick,
        trade_fraction=trade_fraction,
        burst_prob=burst_prob,
        cross_venue_prob=cross_venue_prob,
        vol=vol_ticks_per_min,
        drift=drift_ticks_per_min,
        empty_ask_s=empty_ask_s,
    )
    if not symbol.startswith(GENERATED_SYMBOL_PREFIX):
        symbol = GENERATED_SYMBOL_PREFIX + symbol
    rng = np.random.default_rng(seed)
    plan = _plan(rng, params)
    ev = _simulate(rng, params, plan, top_only=schema == "mbp-1")
    table = _finish(rng, params.venues, plan, ev)
    return GeneratedRows(table, params.venues, schema, style, tick, symbol, instrument_id)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}, but got {value!r}.")


@dataclass(frozen=True)
class _Params:
    """The market to simulate, checked once; units as in `generate`."""

    n_events: int
    venues: tuple[VenueProfile, ...]
    start: str
    price: float
    tick: float
    trade_fraction: float
    burst_prob: float
    cross_venue_prob: float
    vol: float
    drift: float
    empty_ask_s: float

    def __post_init__(self) -> None:
        n_events, tick, price = self.n_events, self.tick, self.price
        if n_events < 1:
            raise ValueError(f"`n_events >= 1` must hold, but got {n_events=}.")
        ids = [v.publisher_id for v in self.venues]
        if not ids or len(set(ids)) != len(ids):
            raise ValueError(f"`venues` must have distinct publisher_ids, but got {ids}.")
        if not (tick >= 1e-9 and abs(tick * _TICK_NS - round(tick * _TICK_NS)) < 1e-6):
            raise ValueError(f"`tick` must be a positive multiple of 1e-9, but got {tick=}.")
        if not price / tick >= _MIN_TICKS:
            raise ValueError(
                f"`price >= {_MIN_TICKS} * tick` must hold, but got ({price=}, {tick=})."
            )
        for name, bound in (("trade_fraction", 0.5), ("burst_prob", 1), ("cross_venue_prob", 1)):
            p = getattr(self, name)
            if not 0 <= p < bound:
                raise ValueError(f"`0 <= {name} < {bound}` must hold, but got {name}={p}.")
        vol, drift = self.vol, self.drift
        if not (vol > 0 and abs(drift) <= vol * vol):
            raise ValueError(
                "`vol_ticks_per_min > 0` and `|drift_ticks_per_min| <= vol_ticks_per_min**2` "
                f"must hold, but got ({vol=}, {drift=})."
            )
        if not self.empty_ask_s > 0:
            raise ValueError(f"`empty_ask_s > 0` must hold, but got {self.empty_ask_s=}.")
        try:
            self.start_ns  # noqa: B018 - parses start
        except ValueError as exc:
            raise ValueError(
                f"`start` must be ISO 8601 UTC like 2024-08-01T13:36:32Z, but got {self.start!r}."
            ) from exc

    @property
    def start_ns(self) -> int:
        """First ts_event, ns since the epoch."""
        return int(np.datetime64(self.start.removesuffix("Z"), "ns").astype(np.int64))


# --- plan: everything that does not depend on the book, drawn at once -----------------------


@dataclass
class _Plan:
    t: np.ndarray  # int64[G], ts_event of each event group, ns
    venue: np.ndarray  # int[G], venue index of each group
    kind: np.ndarray  # int8[G], _KIND_SINGLE, _KIND_BURST or _KIND_TRADE
    burst_len: np.ndarray  # int[G], rows of a burst group
    sweep_len: np.ndarray  # int[G, 3], trades at the main venue and at up to two others
    cross: np.ndarray  # int[G], number of other venues a sweep also trades at (0..2)
    fair: np.ndarray  # int64[G], fair price in ticks (the fair mid is fair + 0.5 ticks)
    fair_lag: np.ndarray  # int64[G, V], the fair price as each venue sees it (lagged)
    # per venue: (start_ns[E], end_ns[E]) of empty-ask episodes
    episodes: list[tuple[np.ndarray, np.ndarray]]


_KIND_SINGLE, _KIND_BURST, _KIND_TRADE = 0, 1, 2
_SWEEP_P = 0.55  # trades per venue in a sweep are geometric with mean 1 / 0.55
_MIN_TICKS = 1000  # smallest price in ticks: keeps ten levels of bids well above zero


def _plan(rng: np.random.Generator, prm: _Params) -> _Plan:
    # Every group writes at least one MBP-10 row; MBP-1 drops events below the top (about
    # half), so the plan holds enough groups for either and a seed gives the same market.
    g_count = 3 * prm.n_events
    n_v = len(prm.venues)
    rates = np.array([v.rate_hz for v in prm.venues])
    # Trade groups are rarer than trade rows: solve f = x * m_t / E for the group probability
    # x, with m_t the mean rows of a sweep and E the mean rows per group (bursts average 3).
    f, b, c = prm.trade_fraction, prm.burst_prob, prm.cross_venue_prob
    m_t = (1 + c * 1.5) / _SWEEP_P
    x = f * (1 + 2 * b) / (m_t * (1 - f) + f)
    rows_per_group = x * m_t + (1 - x) * (1 + 2 * b)
    u = rng.random(g_count)
    kind = np.where(u < x, _KIND_TRADE, _KIND_SINGLE).astype(np.int8)
    kind[(u >= x) & (rng.random(g_count) < b)] = _KIND_BURST
    burst_len = 1 + rng.geometric(0.5, g_count)
    sweep_len = rng.geometric(_SWEEP_P, (g_count, 3))
    cu = rng.random(g_count)
    cross = np.minimum(np.where(cu < c * 0.5, 2, np.where(cu < c, 1, 0)), n_v - 1)
    venue = rng.choice(n_v, size=g_count, p=rates / rates.sum())

    # Order flow clusters: a third of the gaps are tens of microseconds, the rest carry the rate.
    mean_gap_s = rows_per_group / rates.sum()
    short_p, short_s = 0.35, 30e-6
    long_s = max((mean_gap_s - short_p * short_s) / (1 - short_p), short_s)
    scale = np.where(rng.random(g_count) < short_p, short_s, long_s)
    gaps = np.maximum(np.rint(rng.exponential(scale) * 1e9), 1).astype(np.int64)
    gaps[0] = 0
    t0 = prm.start_ns
    t = t0 + np.cumsum(gaps)

    # Fair price: +-1 tick jumps at Poisson times; up and down rates give drift and variance.
    var_s, drift_s = prm.vol * prm.vol / 60, prm.drift / 60
    dt_s = np.diff(t, prepend=t0) / 1e9
    steps = rng.poisson((var_s + drift_s) / 2 * dt_s) - rng.poisson((var_s - drift_s) / 2 * dt_s)
    fair = np.maximum(round(prm.price / prm.tick) + np.cumsum(steps), _MIN_TICKS // 2)
    lag_ns = np.array([v.lag_ms * 1e6 for v in prm.venues], dtype=np.int64)
    fair_lag = fair[legacy_nb.lagged_index(t, lag_ns)]

    horizon_s = (t[-1] - t0) / 1e9 + 1
    episodes = []
    for vp in prm.venues:
        per_s = vp.empty_ask_per_min / 60
        k = int(per_s * horizon_s * 2 + 5) if per_s > 0 else 0
        starts = t0 + np.cumsum(rng.exponential(1 / per_s if per_s else 1, k) * 1e9)
        ends = starts + (0.2 + rng.exponential(prm.empty_ask_s, k)) * 1e9
        episodes.append((starts.astype(np.int64), ends.astype(np.int64)))
    return _Plan(t, venue, kind, burst_len, sweep_len, cross, fair, fair_lag, episodes)


# --- the book simulation (sequential by nature; everything random is pre-drawn) -------------


def _simulate(
    rng: np.random.Generator, prm: _Params, plan: _Plan, top_only: bool
) -> dict[str, np.ndarray]:
    """Play the plan through one book per venue (`legacy_nb.simulate`), recording each event
    and the venue's book after it. Everything random is drawn here, before the play."""
    venues, n_events = prm.venues, prm.n_events
    pool = 16 * n_events + 10_000
    # Pooled draws, consumed cyclically: cheap per event, and a run stays a pure function of the
    # seed even in the unlikely case that a pool wraps around.
    pu = rng.random(pool)
    pdepth = np.minimum(rng.geometric(0.45, pool) - 1, LEVELS - 1)
    pgap = rng.choice([1, 2, 3, 4], pool, p=[0.6, 0.25, 0.1, 0.05])
    share = np.array([vp.rate_hz for vp in venues]) / sum(vp.rate_hz for vp in venues)
    orders, mean_ct, spreads = [], [], []
    for vp, sh in zip(venues, share, strict=True):
        o = _order_sizes(rng, int(8 * n_events * sh) + 10_000, vp.odd_lot_prob)
        orders.append(o)
        mean_ct.append(max(vp.depth_shares / o.mean(), 1.0))
        spreads.append(1 + rng.poisson(vp.spread_ticks - 1, 4096))
    o_off = np.cumsum([0] + [len(o) for o in orders]).astype(np.int64)
    ep_off = np.cumsum([0] + [len(a) for a, _ in plan.episodes]).astype(np.int64)
    ep_start = np.concatenate([a for a, _ in plan.episodes]).astype(np.int64)
    ep_end = np.concatenate([b for _, b in plan.episodes]).astype(np.int64)
    out: dict[str, np.ndarray] = {
        "group": np.zeros(n_events, np.int64),
        "venue": np.zeros(n_events, np.int64),
        "action": np.zeros(n_events, np.uint8),
        "side": np.zeros(n_events, np.uint8),
        "depth": np.zeros(n_events, np.int64),
        "price": np.zeros(n_events, np.int64),
        "size": np.zeros(n_events, np.int64),
        # [rows, (bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct), level]
        "book": np.zeros((n_events, 6, LEVELS), np.int64),
    }
    i64 = np.ascontiguousarray  # the kernel takes int64 arrays; the plan's mostly are
    n = legacy_nb.simulate(
        i64(plan.t, np.int64),
        i64(plan.venue, np.int64),
        plan.kind,
        i64(plan.burst_len, np.int64),
        i64(plan.sweep_len, np.int64),
        i64(plan.cross, np.int64),
        i64(plan.fair, np.int64),
        i64(plan.fair_lag, np.int64),
        ep_start,
        ep_end,
        ep_off,
        pu,
        i64(pdepth, np.int64),
        i64(pgap, np.int64),
        i64(np.concatenate(orders), np.int64),
        o_off,
        np.array(spreads, dtype=np.int64),
        np.array(mean_ct),
        top_only,
        *out.values(),  # group, venue, action, side, depth, price, size, book
    )
    if n < n_events:
        warnings.warn(
            f"the plan ran out of events: writing {n} rows, not {n_events}.", stacklevel=4
        )
        out = {k: a[:n] for k, a in out.items()}
    return out


def _order_sizes(rng: np.random.Generator, n: int, odd_lot_prob: float) -> np.ndarray:
    """Order sizes in shares: round lots mostly, odd and mixed lots (36, 121) with odd_lot_prob."""
    lots = 100 * rng.geometric(0.55, n)
    odd = np.exp(rng.uniform(0.0, math.log(300.0), n)).astype(np.int64)
    odd[odd % 100 == 0] += 1
    return np.where(rng.random(n) < odd_lot_prob, odd, lots).astype(np.int64)


# --- timestamps, sequence numbers, flags; file order ----------------------------------------


def _finish(
    rng: np.random.Generator,
    venues: Sequence[VenueProfile],
    plan: _Plan,
    ev: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Add ts_recv, ts_in_delta's basis, sequence and flags, and the file order (by ts_recv)."""
    n = len(ev["group"])
    group, venue = ev["group"], ev["venue"]
    # A chunk is one venue's records of one event (one packet): they share ts_recv, and the
    # last of them carries F_LAST.
    new_chunk = np.ones(n, dtype=bool)
    new_chunk[1:] = (group[1:] != group[:-1]) | (venue[1:] != venue[:-1])
    last = np.ones(n, dtype=bool)
    last[:-1] = new_chunk[1:]
    chunk = np.cumsum(new_chunk) - 1
    n_chunks = int(chunk[-1]) + 1
    lat_us = np.array([vp.latency_us for vp in venues])
    # Latency: venue-specific, with a lognormal tail for the occasional slow packet.
    jitter = rng.lognormal(0.0, 0.25, n_chunks)
    ts_event = plan.t[group]
    ts_recv = ts_event + np.rint(lat_us[venue] * 1e3 * jitter[chunk]).astype(np.int64)
    sequence = np.empty(n, dtype=np.int64)
    other_traffic = 1 + rng.poisson(150, n)  # messages for other instruments on the channel
    seq_start = rng.integers(1_000_000, 90_000_000, len(venues))
    for v in range(len(venues)):
        rows = np.flatnonzero(venue == v)
        if len(rows) == 0:
            continue
        # A feed delivers packets in order, so ts_recv never goes back within a venue.
        ts_recv[rows] = np.maximum.accumulate(ts_recv[rows])
        inc = np.where(new_chunk[rows], other_traffic[rows], 1)
        inc[0] = 0
        sequence[rows] = seq_start[v] + np.cumsum(inc)
    # The file order; the columns stay in event order (the book is not copied).
    out = {k: a for k, a in ev.items() if k != "group"}
    out.update(
        order=np.argsort(ts_recv, kind="stable"),
        ts_recv=ts_recv,
        ts_event=ts_event,
        flags=np.where(last, F_LAST, 0).astype(np.int64, copy=False),
        sequence=sequence,
    )
    return out


# --- CSV text ---------------------------------------------------------------------------------


def _price_table(
    arrays: Sequence[np.ndarray], style: str, tick: float
) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray]:
    """The text of every price (ticks) in `arrays`, for `legacy_nb.format_rows`.

    Returns (keys, dense, text bytes, offsets): entry i is text[off[i]:off[i + 1]]; a dense
    table holds the prices keys[0], keys[0] + 1, ... (a price range of at most two million
    ticks), else the sorted distinct prices `keys`. The last entry is the missing price
    (values <= 0): empty in the pretty style, Databento's undefined price in the raw one.
    """
    if style == "pretty":
        exponent = Decimal(str(tick)).normalize().as_tuple().exponent
        assert isinstance(exponent, int)  # `_Params` checked that the tick is finite
        decimals = max(-exponent, 0)

        # round() leaves the shortest decimal that is exactly the tick multiple: no float noise.
        def fmt_px(k: int) -> str:
            return repr(round(k * tick, decimals))

        missing = ""
    else:
        tick_units = round(tick * _TICK_NS)

        def fmt_px(k: int) -> str:
            return str(k * tick_units)

        missing = str(UNDEF_PRICE)

    valid = [a[a > 0] for a in arrays]
    lo = min((int(v.min()) for v in valid if len(v)), default=0)
    hi = max((int(v.max()) for v in valid if len(v)), default=-1)
    dense = hi - lo <= 2_000_000
    if dense:
        keys = np.array([lo], dtype=np.int64)
        texts = [fmt_px(k) for k in range(lo, hi + 1)]
    else:
        keys = np.unique(np.concatenate(valid)).astype(np.int64)
        texts = [fmt_px(k) for k in keys.tolist()]
    encoded = [t.encode("ascii") for t in [*texts, missing]]
    off = np.zeros(len(encoded) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(b) for b in encoded])
    return keys, dense, np.frombuffer(b"".join(encoded), np.uint8), off
