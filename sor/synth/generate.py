"""Seeded multi-venue market data generator writing Databento MBP-1 / MBP-10 CSV (model.md §1).

One latent fair price (a random walk in whole ticks) is quoted by several venues, each with its
own spread, displayed depth, lot sizes, update rate, price lag and feed latency. Every row is one
book event at one venue (add, cancel, modify or trade) followed by that venue's book after the
event, in the column layout and both CSV styles ("pretty" and raw) of a Databento export.

A trade row shows the book after that trade, and an MBP-1 file is the top-level projection of
the MBP-10 file of the same seed.
"""

from __future__ import annotations

import gzip
import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

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
    "generate",
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
    ev = _Simulator(rng, params, plan, top_only=schema == "mbp-1").run()
    table = _finish(rng, params.venues, plan, ev)
    text = _format(table, params.venues, schema, style, tick, symbol, instrument_id)
    path = Path(path)
    data = text.encode("ascii")
    if path.name.endswith(".gz"):
        # mtime=0 and no file name in the header keep the bytes a function of the seed alone.
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        ):
            gz.write(data)
    else:
        path.write_bytes(data)
    ts_event = table["ts_event"]
    ids = np.array([vp.publisher_id for vp in params.venues])
    return GenerateSummary(
        path=str(path),
        rows=len(ts_event),
        venues=tuple(sorted(int(i) for i in np.unique(ids[table["venue"]]))),
        distinct_ts_event=len(np.unique(ts_event)),
        trades=int(np.count_nonzero(table["action"] == "T")),
        ts_event_first=int(ts_event.min()),
        ts_event_last=int(ts_event.max()),
    )


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
    idx = np.searchsorted(t, t[:, None] - lag_ns[None, :], side="right") - 1
    fair_lag = fair[np.maximum(idx, 0)]

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


class _Book:
    """One venue's ten levels per side; index 0 is the touch; missing levels have price 0."""

    __slots__ = ("px", "sz", "ct", "n")

    def __init__(self) -> None:
        self.px = [[0] * LEVELS, [0] * LEVELS]
        self.sz = [[0] * LEVELS, [0] * LEVELS]
        self.ct = [[0] * LEVELS, [0] * LEVELS]
        self.n = [0, 0]

    def snapshot_into(self, out: list[int]) -> None:
        """Append bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct (10 values each) to `out`."""
        ext = out.extend
        px, sz, ct = self.px, self.sz, self.ct
        ext(px[0]), ext(px[1]), ext(sz[0]), ext(sz[1]), ext(ct[0]), ext(ct[1])

    def put(self, s: int, d: int, p: int, q: int, c: int) -> None:
        """Insert a level at depth d (shifting deeper ones away; the 11th drops from view)."""
        self.px[s].insert(d, p)
        self.sz[s].insert(d, q)
        self.ct[s].insert(d, c)
        del self.px[s][LEVELS], self.sz[s][LEVELS], self.ct[s][LEVELS]
        self.n[s] = min(self.n[s] + 1, LEVELS)

    def remove(self, s: int, d: int, refill: tuple[int, int, int] | None) -> None:
        """Delete level d; `refill` = (gap ticks, size, count) brings a level into view behind."""
        px, sz, ct = self.px[s], self.sz[s], self.ct[s]
        gone = px[d]
        del px[d], sz[d], ct[d]
        n = self.n[s] - 1
        if refill is None:
            px.append(0)
            sz.append(0)
            ct.append(0)
            self.n[s] = n
            return
        gap, q, c = refill
        # The level coming into view lies beyond every visible one, the removed one included.
        edge = px[n - 1] if d < n else gone
        px.insert(n, edge + _SIGN[s] * gap)
        sz.insert(n, q)
        ct.insert(n, c)
        # n - 1 levels remain plus the refill, so the count is unchanged


class _Simulator:
    """Plays the plan through one book per venue, recording each event and the book after it."""

    def __init__(self, rng: np.random.Generator, prm: _Params, plan: _Plan, top_only: bool) -> None:
        venues, n_events = prm.venues, prm.n_events
        self.venues, self.plan, self.n_events, self.top_only = venues, plan, n_events, top_only
        pool = 16 * n_events + 10_000
        # Pooled draws, consumed by cycling iterators: cheap per event, and a run stays a pure
        # function of the seed even in the unlikely case that a pool wraps around.
        self._u = itertools.cycle(rng.random(pool).tolist()).__next__
        depths = np.minimum(rng.geometric(0.45, pool) - 1, LEVELS - 1)
        self._depth = itertools.cycle(depths.tolist()).__next__
        gaps = rng.choice([1, 2, 3, 4], pool, p=[0.6, 0.25, 0.1, 0.05])
        self._gap = itertools.cycle(gaps.tolist()).__next__
        share = np.array([vp.rate_hz for vp in venues]) / sum(vp.rate_hz for vp in venues)
        self._orders, self.mean_ct, self._spread_draw = [], [], []
        for vp, sh in zip(venues, share, strict=True):
            orders = _order_sizes(rng, int(8 * n_events * sh) + 10_000, vp.odd_lot_prob)
            self._orders.append(itertools.cycle(orders.tolist()).__next__)
            self.mean_ct.append(max(vp.depth_shares / orders.mean(), 1.0))
            spreads = 1 + rng.poisson(vp.spread_ticks - 1, 4096)
            self._spread_draw.append(itertools.cycle(spreads.tolist()).__next__)
        self.spread = [draw() for draw in self._spread_draw]
        self.books = [_Book() for _ in venues]
        # (group, venue, action, side, depth, price ticks, size)
        self.meta: list[tuple[int, int, str, str, int, int, int]] = []
        self.snaps: list[int] = []  # flat: 6 * LEVELS values per row

    def _level(self, v: int) -> tuple[int, int]:
        """(size, count) of a level coming into view: a skewed count of the venue's orders."""
        c = 1 + int(-math.log(1.0 - self._u()) * (self.mean_ct[v] - 1.0))
        return sum(self._orders[v]() for _ in range(c)), c

    def _refill(self, v: int) -> tuple[int, int, int]:
        q, c = self._level(v)
        return self._gap(), q, c

    def _emit(
        self, g: int, v: int, action: str, side: str, depth: int, price: int, size: int
    ) -> None:
        # MBP-1 carries only the events that change the top level (Databento's definition);
        # the book underneath evolves the same either way.
        if depth and self.top_only:
            return
        self.meta.append((g, v, action, side, depth, price, size))
        self.books[v].snapshot_into(self.snaps)

    def run(self) -> dict[str, np.ndarray]:
        plan, n_events = self.plan, self.n_events
        for v in range(len(self.venues)):
            self._seed_book(v, int(plan.fair_lag[0, v]))
        ep_next = [0] * len(self.venues)
        ep_end = [-1] * len(self.venues)  # >= 0 while the venue's ask side is empty
        t = plan.t.tolist()
        venue, kind = plan.venue.tolist(), plan.kind.tolist()
        burst_len = plan.burst_len.tolist()
        episodes = [(a.tolist(), b.tolist()) for a, b in plan.episodes]
        n_v = len(self.venues)
        fair, fair_lag = plan.fair.tolist(), plan.fair_lag.ravel().tolist()  # [g * n_v + v]
        g, g_count = 0, len(t)
        while len(self.meta) < n_events and g < g_count:
            v, tg = venue[g], t[g]
            if self._u() < 0.02:  # venues re-choose their spread now and then, not every event
                self.spread[v] = self._spread_draw[v]()
            starts, ends = episodes[v]
            if ep_end[v] >= 0:
                if tg >= ep_end[v]:
                    self._requote_ask(g, v, fair_lag[g * n_v + v])
                    ep_end[v] = -1
                    g += 1
                    continue
            else:
                i = ep_next[v]
                while i < len(starts) and ends[i] <= tg:
                    i += 1
                if i < len(starts) and starts[i] <= tg:
                    self._clear_ask(g, v)
                    ep_end[v] = int(ends[i])
                    ep_next[v] = i + 1
                    g += 1
                    continue
                ep_next[v] = i
            if kind[g] == _KIND_TRADE:
                self._sweep_group(g, v, fair[g], ep_end)
            else:
                rows = burst_len[g] if kind[g] == _KIND_BURST else 1
                for _ in range(rows):
                    self._book_event(g, v, fair_lag[g * n_v + v], ep_end[v] >= 0)
            g += 1
        if len(self.meta) < n_events:
            warnings.warn(
                f"the plan ran out of events: writing {len(self.meta)} rows, not {n_events}.",
                stacklevel=3,
            )
        meta = self.meta[:n_events]
        snaps = np.array(self.snaps[: len(meta) * 6 * LEVELS], dtype=np.int64)
        snaps = snaps.reshape(len(meta), 6, LEVELS)
        cols = list(zip(*meta, strict=True))
        return {
            "group": np.array(cols[0], dtype=np.int64),
            "venue": np.array(cols[1], dtype=np.int64),
            "action": np.array(cols[2], dtype="<U1"),
            "side": np.array(cols[3], dtype="<U1"),
            "depth": np.array(cols[4], dtype=np.int64),
            "price": np.array(cols[5], dtype=np.int64),
            "size": np.array(cols[6], dtype=np.int64),
            "book": snaps,  # [rows, (bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct), level]
        }

    def _targets(self, v: int, f: int) -> tuple[int, int]:
        s = self.spread[v]
        tb = f - s // 2
        return tb, tb + s

    def _seed_book(self, v: int, f: int) -> None:
        book = self.books[v]
        tb, ta = self._targets(v, f)
        for s, p in ((_BID, tb), (_ASK, ta)):
            for d in range(LEVELS):
                q, c = self._level(v)
                book.put(s, d, p, q, c)
                p += _SIGN[s] * self._gap()

    def _book_event(self, g: int, v: int, f: int, ask_off: bool) -> None:
        """One add, cancel or modify: a correction towards the venue's target quote or noise."""
        book = self.books[v]
        tb, ta = self._targets(v, f)
        nb, na = book.n
        bb = book.px[_BID][0]
        ba = book.px[_ASK][0] if na else None
        fixes: list[tuple[int, int | None]] = []
        if bb < tb and (ba is None or tb < ba):
            fixes.append((_BID, tb))
        elif bb > tb:
            fixes.append((_BID, None))
        if not ask_off:
            if ba is None:
                fixes.append((_ASK, max(ta, bb + 1)))
            elif ba > ta and ta > bb:
                fixes.append((_ASK, ta))
            elif ba < ta:
                fixes.append((_ASK, None))
        u = self._u()
        # Half the events move the quote towards the target, so venues follow the fair price
        # within a few events: frequent venues closely, rare ones (IEX) with visible staleness.
        if fixes and u < 0.5:
            s, p = fixes[int(u * 2 * len(fixes))]
            if p is None:
                self._cancel(g, v, s, 0)
            else:
                q = self._orders[v]()
                book.put(s, 0, p, q, 1)
                self._emit(g, v, "A", "AB"[s == _BID], 0, p, q)
            return
        s = _BID if ask_off or self._u() < 0.5 else _ASK
        n = book.n[s]
        px = book.px[s]
        if n < LEVELS and self._u() < 0.3:
            p = px[n - 1] + _SIGN[s] * self._gap()
            q = self._orders[v]()
            book.put(s, n, p, q, 1)
            self._emit(g, v, "A", "AB"[s == _BID], n, p, q)
            return
        d = min(self._depth(), n - 1)
        c = book.ct[s][d]
        # Adds and cancels balance around the venue's mean order count per level.
        p_add = min(max(0.5 + 0.1 * (self.mean_ct[v] - c), 0.15), 0.85)
        u = self._u()
        if u < p_add * 0.9:
            q = self._orders[v]()
            holes = abs(px[n - 1] - px[0]) - (n - 1)  # empty ticks inside the visible book
            if self._u() < min(0.1 + 0.06 * holes, 0.9):
                # Liquidity fills the book from the touch outwards: a new level in the first
                # gap, the more often the sparser the book. Without it the levels left behind
                # when the price moves would stay put and the book would thin out.
                for k in range(n - 1):
                    gap = abs(px[k + 1] - px[k])
                    if gap > 1:
                        p = px[k] + _SIGN[s] * min(self._gap(), gap - 1)
                        book.put(s, k + 1, p, q, 1)
                        self._emit(g, v, "A", "AB"[s == _BID], k + 1, p, q)
                        return
            book.sz[s][d] += q
            book.ct[s][d] = c + 1
            self._emit(g, v, "A", "AB"[s == _BID], d, px[d], q)
        elif u < 0.9:
            self._cancel(g, v, s, d)
        else:
            sz = book.sz[s][d]
            old = min(max(self._orders[v](), 1), sz - (c - 1))
            new = self._orders[v]()
            if new == old:
                new = max(old // 2, 1)
            book.sz[s][d] = sz - old + new
            self._emit(g, v, "M", "AB"[s == _BID], d, book.px[s][d], new)

    def _cancel(self, g: int, v: int, s: int, d: int) -> None:
        """Cancel one order at depth d; the level goes when its last order does."""
        book = self.books[v]
        p, sz, c = book.px[s][d], book.sz[s][d], book.ct[s][d]
        if c <= 1:
            book.remove(s, d, self._refill(v))
            self._emit(g, v, "C", "AB"[s == _BID], d, p, sz)
            return
        q = min(max(self._orders[v](), 1), sz - (c - 1))
        book.sz[s][d] = sz - q
        book.ct[s][d] = c - 1
        self._emit(g, v, "C", "AB"[s == _BID], d, p, q)

    def _sweep_group(self, g: int, v: int, f_now: int, ep_end: list[int]) -> None:
        book = self.books[v]
        mid = (book.px[_BID][0] + book.px[_ASK][0]) / 2 if book.n[_ASK] else None
        # Aggressors pick off quotes that lag the fair price (fair mid = fair + 0.5 ticks).
        p_buy = 0.5 if mid is None else 0.5 + 0.4 * math.tanh(f_now + 0.5 - mid)
        s = _ASK if self._u() < p_buy else _BID
        plan = self.plan
        self._sweep(g, v, s, int(plan.sweep_len[g, 0]), ep_end[v] >= 0)
        n_cross = int(plan.cross[g])
        if n_cross:
            others = [w for w in range(len(self.venues)) if w != v]
            for k in range(n_cross):
                w = others.pop(int(self._u() * len(others)))
                self._sweep(g, w, s, int(plan.sweep_len[g, 1 + k]), ep_end[w] >= 0)

    def _sweep(self, g: int, v: int, s: int, k: int, ask_off: bool) -> None:
        """k trades against the touch on side s (the side hit); the book shows each fill."""
        book = self.books[v]
        if book.n[s] == 0:
            s = _BID
        aggressor = "B" if s == _ASK else "A"
        for _ in range(k):
            p, sz, c = book.px[s][0], book.sz[s][0], book.ct[s][0]
            u = self._u()
            if c <= 1:
                q = sz if u < 0.75 or sz == 1 else max(int(sz * u), 1)
            else:
                q = min(max(self._orders[v](), 1), sz - (c - 1))
                c -= 1
            if q >= sz:
                refill = None if (s == _ASK and ask_off) else self._refill(v)
                book.remove(s, 0, refill)
            else:
                book.sz[s][0] = sz - q
                book.ct[s][0] = c
            self._emit(g, v, "T", aggressor, 0, p, q)
            if book.n[s] == 0:
                break

    def _clear_ask(self, g: int, v: int) -> None:
        """The venue pulls its whole offer: one cancel per level, all at one ts_event."""
        book = self.books[v]
        while book.n[_ASK]:
            p, q = book.px[_ASK][0], book.sz[_ASK][0]
            book.remove(_ASK, 0, None)
            self._emit(g, v, "C", "A", 0, p, q)

    def _requote_ask(self, g: int, v: int, f: int) -> None:
        """The offer comes back: a few one-order levels from the target ask outwards."""
        book = self.books[v]
        _, ta = self._targets(v, f)
        p = max(ta, book.px[_BID][0] + 1)
        levels = 3 + int(self._u() * 4)
        for d in range(levels):
            q = self._orders[v]()
            book.put(_ASK, d, p, q, 1)
            self._emit(g, v, "A", "A", d, p, q)
            p += self._gap()


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
    """Add ts_recv, ts_in_delta's basis, sequence and flags; put the rows in ts_recv order."""
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
    order = np.argsort(ts_recv, kind="stable")
    out = {k: a[order] for k, a in ev.items() if k != "group"}
    out.update(
        ts_recv=ts_recv[order],
        ts_event=ts_event[order],
        flags=np.where(last, F_LAST, 0)[order],
        sequence=sequence[order],
    )
    return out


# --- CSV text ---------------------------------------------------------------------------------


def _lookup(a: np.ndarray, fmt: Callable[[int], str], missing: str) -> np.ndarray:
    """Format integer array `a` through a table over its range; values <= 0 become `missing`."""
    valid = a > 0
    if not valid.any():
        return np.full(a.shape, missing, dtype=object)
    lo, hi = int(a[valid].min()), int(a[valid].max())
    if hi - lo > 2_000_000:
        u, inv = np.unique(a, return_inverse=True)
        table = np.array([fmt(x) if x > 0 else missing for x in u.tolist()], dtype=object)
        return table[inv.reshape(a.shape)]
    table = np.array([fmt(x) for x in range(lo, hi + 1)] + [missing], dtype=object)
    return table[np.where(valid, a - lo, hi - lo + 1)]


def _format(
    table: Mapping[str, np.ndarray],
    venues: Sequence[VenueProfile],
    schema: str,
    style: str,
    tick: float,
    symbol: str,
    instrument_id: int,
) -> str:
    """The whole CSV text: header, then one line per row of `table`."""
    n = len(table["ts_event"])
    n_lv = LEVELS if schema == "mbp-10" else 1
    tick_units = round(tick * _TICK_NS)
    if style == "pretty":
        exponent = Decimal(str(tick)).normalize().as_tuple().exponent
        assert isinstance(exponent, int)  # `_Params` checked that the tick is finite
        decimals = max(-exponent, 0)

        # round() leaves the shortest decimal that is exactly the tick multiple: no float noise.
        def fmt_px(k: int) -> str:
            return repr(round(k * tick, decimals))

        def fmt_ts(a: np.ndarray) -> list[str]:
            return [s + "Z" for s in np.datetime_as_string(a.astype("datetime64[ns]"), unit="ns")]

        missing_px = ""
    else:

        def fmt_px(k: int) -> str:
            return str(k * tick_units)

        def fmt_ts(a: np.ndarray) -> list[str]:
            return [str(x) for x in a.tolist()]

        missing_px = str(UNDEF_PRICE)

    pub = np.array([vp.publisher_id for vp in venues])[table["venue"]]
    book = table["book"][:, :, :n_lv]  # [rows, field, level]
    px = _lookup(book[:, :2, :], fmt_px, missing_px)
    qty = _lookup(book[:, 2:, :], str, "0")
    fields = np.concatenate([px, qty], axis=1)  # bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct
    level_cols = fields.transpose(0, 2, 1).reshape(n, 6 * n_lv).T.tolist()
    ts_recv, ts_event = table["ts_recv"], table["ts_event"]
    cols = [
        fmt_ts(ts_recv),
        fmt_ts(ts_event),
        ["10" if schema == "mbp-10" else "1"] * n,
        _lookup(pub, str, "0").tolist(),
        [str(instrument_id)] * n,
        table["action"].tolist(),
        table["side"].tolist(),
        _lookup(table["depth"] + 1, lambda x: str(x - 1), "").tolist(),
        _lookup(table["price"], fmt_px, missing_px).tolist(),
        _lookup(table["size"], str, "0").tolist(),
        _lookup(table["flags"], str, "0").tolist(),
        [str(x) for x in (ts_recv - ts_event).tolist()],
        [str(x) for x in table["sequence"].tolist()],
        *level_cols,
        [symbol] * n,
    ]
    lines = map(",".join, zip(*cols, strict=True))
    return header(schema) + "\n" + "\n".join(lines) + "\n"
