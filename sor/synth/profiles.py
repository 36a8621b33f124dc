"""Market profiles of the generator: `legacy` and the profiles calibrated to real data.

`legacy` is `sor.synth.generate.generate` with its defaults (five venues, no adverse
selection: the demo data of earlier versions). The calibrated profiles (`taq-2018`,
`xnas-aapl`) run the compiled market of `sor.synth.engine`, whose parameters were fitted so
that the stylized facts of `sor.synth.facts` match the real file each is named after, within
the tolerances stated in `CalibratedProfile.tolerances` (docs/model.md §8;
`bench/calibration.py` prints both side by side).

`DEFAULT_PROFILE` (`taq-2018`) is the default of `write` and `sor generate`, and the market of
the bundled data set (`sor.cli.run.default_data`). `write` streams one or more trading days to a
CSV file chunk by chunk, in constant memory.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sor.synth import engine
from sor.synth.generate import (
    SCHEMAS,
    STYLES,
    GenerateSummary,
    generate,
    generate_rows,
    header,
)
from sor.synth.sink import Writer, open_sink
from sor.vocabulary import GENERATED_SYMBOL_PREFIX

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "PROFILE_NAMES",
    "CalibratedProfile",
    "VenueSpec",
    "write",
]

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_CHUNK = 65_536  # rows simulated at a time
_BUF_BYTES = 1 << 23  # bytes formatted at a time (two buffers: one is written meanwhile)


@dataclass(frozen=True)
class VenueSpec:
    """How one venue quotes and trades in a calibrated profile.

    Attributes:
        publisher_id: Databento publisher id.
        quote_hz: quote updates per second at the venue (each changes the top level in MBP-1).
        trade_share: the venue's share of prints.
        spread_median: median target spread, ticks (lognormal, at least one tick).
        spread_mean: mean target spread, ticks (>= spread_median).
        lot_p: a displayed round-lot order holds geometric(lot_p) lots of 100 shares.
        odd_lot_prob: share of displayed orders that are odd lots (1 to 300 shares).
        lag_s: time constant with which the venue's quotes follow the fair price, seconds.
        latency_us: mean ts_recv - ts_event, microseconds.
        follow: probability that a quote update moves the touch towards the venue's target.
    """

    publisher_id: int
    quote_hz: float
    trade_share: float
    spread_median: float = 1.0
    spread_mean: float = 1.0
    lot_p: float = 0.6
    odd_lot_prob: float = 0.0
    lag_s: float = 0.0
    latency_us: float = 200.0
    follow: float = 0.5

    def row(self) -> list[float]:
        """The venue's parameter row of `engine.simulate` (columns V_*)."""
        sigma = math.sqrt(2 * math.log(max(self.spread_mean / self.spread_median, 1.0)))
        return [
            self.quote_hz,
            self.trade_share,
            math.log(self.spread_median),
            sigma,
            self.lot_p,
            self.odd_lot_prob,
            self.lag_s,
            self.latency_us * 1e3,
            self.follow,
        ]


@dataclass(frozen=True)
class CalibratedProfile:
    """A market calibrated to one real data file.

    Attributes:
        name: the profile's name (`sor generate --profile NAME`).
        source: the real file the profile reproduces, and its session.
        venues: the venues; the first is the reference venue (most quote updates).
        schema: the schema of the real file ("mbp-1" or "mbp-10"), the default of `write`.
        first_date: date of the first session, YYYY-MM-DD.
        open_s: session start, seconds after UTC midnight.
        session_s: session length, seconds; a day whose rows would not fit at the calibrated
            rates runs at proportionally higher rates (facts on times then scale too).
        price: fair price at the first open, dollars per share.
        tick: price increment, dollars per share.
        vol_bps_min: standard deviation of the fair price over one minute, basis points.
        overnight_bps: standard deviation of the fair price's change from close to next open.
        trade_hz: prints per second.
        burst_mean: mean prints per burst (one aggressor sweeping within a millisecond).
        fast_share: share of bursts that follow the previous one closely ...
        fast_s: ... after this mean gap, seconds (the rest carry `trade_hz`).
        inside_prob: probability that a print executes strictly inside its venue's spread
            (hidden or midpoint liquidity; written with side N).
        trade_odd_prob: share of prints that are odd lots (1 to 99 shares) ...
        trade_lot_p: ... the rest geometric(trade_lot_p) round lots.
        impact_now_bps: fair price move with the aggressor at each print at the touch, bps.
        impact_later_bps: further move arriving over the next seconds (exponential), bps.
        impact_tau_s: time constant of that arrival, seconds.
        pickoff: tilt of the aggressor's side towards quotes that lag the fair price.
        top_prob: share of noise quote updates at the touch (the rest deeper, MBP-10).
        gap_p: ticks between levels are geometric(gap_p).
        add_prob: share of noise quote updates that add (the rest cancel).
        redraw: probability that a quote update draws a new target spread.
        react: probability that a venue moves its touch towards the new fair price right after
            a print at its touch.
        symbol: value of the symbol column; instrument_id likewise.
        tolerances: fact name -> (relative tolerance, absolute tolerance): the generated value g
            of a fact with real value r passes when |g - r| <= max(rel * |r|, abs).
        facts: the real file's facts, as `bench/calibration.py` measured them.
    """

    name: str
    source: str
    venues: tuple[VenueSpec, ...]
    schema: str
    first_date: str
    open_s: float
    session_s: float
    price: float
    tick: float
    vol_bps_min: float
    overnight_bps: float
    trade_hz: float
    burst_mean: float
    fast_share: float
    fast_s: float
    inside_prob: float
    trade_odd_prob: float
    trade_lot_p: float
    impact_now_bps: float
    impact_later_bps: float
    impact_tau_s: float
    pickoff: float = 0.2
    top_prob: float = 1.0
    gap_p: float = 0.6
    add_prob: float = 0.5
    redraw: float = 0.05
    react: float = 0.5
    symbol: str = "XXX"
    instrument_id: int = 1
    tolerances: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    facts: Mapping[str, float] = field(default_factory=dict)

    def market_row(self, rows_per_s_needed: float) -> np.ndarray:
        """The market parameters of `engine.simulate` (entries M_*)."""
        ticks_per_bp = self.price / self.tick / 1e4
        bursts_hz = self.trade_hz / self.burst_mean
        # Slow gaps carry the rate: fast * fast_s + (1 - fast) * slow_s = 1 / bursts_hz.
        slow_s = (1 / bursts_hz - self.fast_share * self.fast_s) / (1 - self.fast_share)
        scale = max(1.0, rows_per_s_needed / self.rows_per_s())
        m = np.zeros(engine.N_MARKET)
        m[engine.M_VOL] = self.vol_bps_min * ticks_per_bp / math.sqrt(60.0)
        m[engine.M_BURST_HZ] = bursts_hz
        m[engine.M_BURST_P] = 1 / self.burst_mean
        m[engine.M_FAST_PROB] = self.fast_share
        m[engine.M_FAST_S] = self.fast_s
        m[engine.M_SLOW_S] = slow_s
        m[engine.M_INSIDE] = self.inside_prob
        m[engine.M_TRADE_ODD] = self.trade_odd_prob
        m[engine.M_TRADE_LOT_P] = self.trade_lot_p
        m[engine.M_IMPACT_NOW] = self.impact_now_bps * ticks_per_bp
        m[engine.M_IMPACT_LATER] = self.impact_later_bps * ticks_per_bp
        m[engine.M_IMPACT_TAU] = self.impact_tau_s
        m[engine.M_PICKOFF] = self.pickoff
        m[engine.M_TOP_PROB] = self.top_prob
        m[engine.M_GAP_P] = self.gap_p
        m[engine.M_ADD_PROB] = self.add_prob
        m[engine.M_RATE_SCALE] = scale
        m[engine.M_REDRAW] = self.redraw
        m[engine.M_REACT] = self.react
        return m

    def rows_per_s(self) -> float:
        """Rows per second at the calibrated rates (quote updates plus prints)."""
        return sum(v.quote_hz for v in self.venues) + self.trade_hz

    def session_rows(self) -> int:
        """Rows of one session at the calibrated rates: a day at its real pace."""
        return round(self.rows_per_s() * self.session_s)


# Facts of the real files (`sor.synth.facts.measure`; the TAQ day in regular hours) and the
# tolerance of each: (relative, absolute), see `facts.compare`. The tolerances of the XNAS
# drift are wide because the real estimate is: 81 sell and 90 buy prints, standard errors
# 0.11-0.29 bps. The tests and the bench check
# generated data against them; `bench/calibration.py` prints every fact.
# The tolerances both profiles hold their trades, prints and queues to.
_SHARED_TOLERANCES: dict[str, tuple[float, float]] = {
    "trade_size_median": (0.3, 0),
    "trade_size_mean": (0.3, 0),
    "trade_size_odd_lot": (0, 0.1),
    "gap_mean_s": (0.3, 0),
    "gap_cv": (0.25, 0),
    "gap_under_1ms": (0, 0.1),
    "print_at_bid": (0, 0.06),
    "print_at_ask": (0, 0.06),
    "print_inside": (0, 0.06),
    "deplete_per_s": (0.5, 0),
    "replenish_per_s": (1.0, 0),
    "queue_life_s": (0.5, 0),
}
_TAQ_TOLERANCES: dict[str, tuple[float, float]] = {
    **_SHARED_TOLERANCES,
    "vol_1min_bps": (0.6, 0),
    "drift_1s": (0.4, 0),
    "drift_5s": (0.4, 0),
    "spread_median[9]": (0.3, 0),
    "spread_mean[9]": (0.3, 0),
    "best_size_median[9]": (0.3, 0),
    "best_size_mean[9]": (0.6, 0),
    "spread_median[2]": (0.5, 0),
    "spread_median[43]": (0.5, 0),
    "spread_median[8]": (0.5, 0),
    "spread_median[5]": (0.5, 0),
    "best_size_median[2]": (0.3, 0),
    "best_size_median[43]": (0.3, 0),
    "best_size_median[8]": (0.3, 0),
    "best_size_median[5]": (0.3, 0),
    "trade_share[9]": (0.15, 0),
    "trade_share[2]": (0.15, 0),
    "trade_share[43]": (0.15, 0),
    "trade_share[8]": (0.15, 0),
    "trade_share[5]": (0.15, 0),
}
_TAQ_FACTS: dict[str, float] = {
    "trade_size_median": 100,
    "trade_size_mean": 86.931,
    "trade_size_odd_lot": 0.450953,
    "gap_mean_s": 0.876458,
    "gap_cv": 3.25397,
    "gap_under_1ms": 0.673122,
    "print_at_bid": 0.211642,
    "print_at_ask": 0.223343,
    "print_inside": 0.565015,
    "deplete_per_s": 0.106322,
    "replenish_per_s": 0.128113,
    "queue_life_s": 2.23068,
    "vol_1min_bps": 5.26818,
    "drift_1s": 0.205552,
    "drift_5s": 0.301842,
    "spread_median[9]": 4,
    "spread_mean[9]": 4.85953,
    "best_size_median[9]": 200,
    "best_size_mean[9]": 211.247,
    "spread_median[2]": 4,
    "spread_median[43]": 5,
    "spread_median[8]": 5,
    "spread_median[5]": 6,
    "best_size_median[2]": 100,
    "best_size_median[43]": 100,
    "best_size_median[8]": 100,
    "best_size_median[5]": 100,
    "trade_share[9]": 0.215776,
    "trade_share[2]": 0.233567,
    "trade_share[43]": 0.114124,
    "trade_share[8]": 0.134612,
    "trade_share[5]": 0.110454,
    "drift_sell_1s": -0.295485,
    "drift_sell_5s": -0.314984,
    "drift_sell_30s": -0.0555784,
    "drift_buy_1s": 0.115618,
    "drift_buy_5s": 0.288701,
    "drift_buy_30s": 0.467003,
    "drift_30s": 0.261291,
}
_XNAS_TOLERANCES: dict[str, tuple[float, float]] = {
    **_SHARED_TOLERANCES,
    "vol_1min_bps": (1.5, 0),
    "drift_1s": (0.5, 0),
    "drift_5s": (0.5, 0),
    "spread_median[2]": (0.3, 0),
    "spread_mean[2]": (0.3, 0),
    "best_size_median[2]": (0.3, 0),
    "best_size_mean[2]": (0.3, 0),
    "drift_30s": (0.5, 0),
    "drift_sell_1s": (0.5, 0),
    "drift_sell_30s": (0.5, 0),
}
_XNAS_FACTS: dict[str, float] = {
    "trade_size_median": 37.5,
    "trade_size_mean": 55.8007,
    "trade_size_odd_lot": 0.804196,
    "gap_mean_s": 14.1404,
    "gap_cv": 2.06508,
    "gap_under_1ms": 0.385965,
    "print_at_bid": 0.300699,
    "print_at_ask": 0.321678,
    "print_inside": 0.377622,
    "deplete_per_s": 0.00799011,
    "replenish_per_s": 0.00671573,
    "queue_life_s": 8.99337,
    "vol_1min_bps": 2.48571,
    "drift_1s": 0.903783,
    "drift_5s": 1.00239,
    "spread_median[2]": 11,
    "spread_mean[2]": 12.744,
    "best_size_median[2]": 100,
    "best_size_mean[2]": 208.903,
    "drift_30s": 1.6401,
    "drift_sell_1s": -1.08503,
    "drift_sell_30s": -2.07417,
    "drift_sell_5s": -1.17064,
    "drift_buy_1s": 0.722542,
    "drift_buy_5s": 0.834136,
    "drift_buy_30s": 1.20603,
}

TAQ_2018 = CalibratedProfile(
    name="taq-2018",
    source=(
        "taq_2018-01-02_mbp1_trades.csv.gz: one NYSE-listed stock on 12 exchanges, "
        "2018-01-02 regular hours 14:30-21:00 UTC (MBP-1, quotes and prints)"
    ),
    venues=(
        VenueSpec(9, 2.1, 0.216, 3.4, 4.0, 0.6, 0.0, 0.5, 300, 0.6),
        VenueSpec(2, 0.115, 0.234, 2.2, 2.6, 0.7, 0.0, 2.0, 200, 0.6),
        VenueSpec(43, 0.105, 0.114, 3.0, 3.4, 0.7, 0.0, 2.0, 250, 0.6),
        VenueSpec(8, 0.078, 0.135, 2.8, 3.3, 0.7, 0.0, 2.0, 200, 0.6),
        VenueSpec(5, 0.091, 0.110, 3.8, 4.4, 0.75, 0.0, 2.0, 200, 0.6),
        VenueSpec(3, 0.127, 0.067, 65.0, 374.0, 0.9, 0.0, 30.0, 300, 0.3),
        VenueSpec(6, 0.107, 0.060, 64.0, 320.0, 0.9, 0.0, 30.0, 300, 0.3),
        VenueSpec(4, 0.035, 0.008, 42.0, 414.0, 0.35, 0.0, 30.0, 300, 0.3),
        VenueSpec(7, 0.029, 0.016, 77.0, 353.0, 0.85, 0.0, 30.0, 300, 0.3),
        VenueSpec(38, 0.010, 0.033, 358.0, 400.0, 0.95, 0.0, 60.0, 400, 0.3),
        VenueSpec(11, 0.004, 0.007, 23.0, 200.0, 0.7, 0.0, 60.0, 400, 0.3),
    ),
    schema="mbp-1",
    first_date="2018-01-02",
    open_s=14.5 * 3600,
    session_s=6.5 * 3600,
    price=164.0,
    tick=0.01,
    vol_bps_min=5.3,
    overnight_bps=60.0,
    trade_hz=1.14,
    burst_mean=3.0,
    fast_share=0.5,
    fast_s=0.05,
    inside_prob=0.6,
    trade_odd_prob=0.45,
    trade_lot_p=0.93,
    impact_now_bps=0.05,
    impact_later_bps=0.03,
    impact_tau_s=3.0,
    pickoff=0.1,
    react=1.0,
    symbol="XXX",
    instrument_id=1,
    tolerances=_TAQ_TOLERANCES,
    facts=_TAQ_FACTS,
)

XNAS_AAPL = CalibratedProfile(
    name="xnas-aapl",
    source=(
        "xnas_aapl_2024-10-21_mbp10_5000rows.csv.gz: AAPL on XNAS, 2024-10-21 "
        "11:54-13:04 UTC (pre-market), MBP-10"
    ),
    venues=(VenueSpec(2, 1.12, 1.0, 9.5, 10.0, 0.7, 0.6, 0.3, 170, 0.4),),
    schema="mbp-10",
    first_date="2024-10-21",
    open_s=11.9 * 3600,
    session_s=70 * 60,
    price=233.7,
    tick=0.01,
    vol_bps_min=0.3,
    overnight_bps=80.0,
    trade_hz=0.068,
    burst_mean=1.6,
    fast_share=0.3,
    fast_s=1.0,
    inside_prob=0.4,
    trade_odd_prob=0.83,
    trade_lot_p=0.9,
    impact_now_bps=0.25,
    impact_later_bps=0.3,
    impact_tau_s=25.0,
    top_prob=0.1,
    gap_p=0.35,
    redraw=0.02,
    symbol="AAPL",
    instrument_id=38,
    tolerances=_XNAS_TOLERANCES,
    facts=_XNAS_FACTS,
)

PROFILES: dict[str, CalibratedProfile | None] = {
    "legacy": None,
    "taq-2018": TAQ_2018,
    "xnas-aapl": XNAS_AAPL,
}
PROFILE_NAMES = tuple(PROFILES)
#: The market of `write` and `sor generate` unless told otherwise, and of the bundled data.
DEFAULT_PROFILE = "taq-2018"


def write(
    path: str | Path,
    *,
    profile: str | CalibratedProfile = DEFAULT_PROFILE,
    rows: int = 60_000,
    days: int = 1,
    schema: str | None = None,
    style: str = "pretty",
    seed: int = 0,
) -> GenerateSummary:
    """Write `rows` rows of the market `profile` over `days` trading days to a Databento CSV.

    Each day is one session on consecutive calendar dates, starting at the profile's open with
    the fair price carried over from the previous close plus an overnight move. Rows are
    spread evenly over the days (the first days take the remainder). The file is written in
    chunks: memory does not grow with `rows` or `days`.

    Args:
        path: output file; gzip-compressed when it ends with ".gz".
        profile: one of `PROFILE_NAMES` or a `CalibratedProfile` (default `DEFAULT_PROFILE`).
            "legacy" is `generate` with its defaults, one day at a time.
        rows: data rows in all, at least `days`.
        days: trading days, at least 1.
        schema: "mbp-10" or "mbp-1"; None takes the profile's (legacy: "mbp-10").
        style: "pretty" or "raw" (see `generate`).
        seed: random seed; the same arguments give the same file bytes.

    Raises:
        ValueError: an argument is out of range.
    """
    if isinstance(profile, str) and profile not in PROFILES:
        raise ValueError(f"`profile` must be one of {PROFILE_NAMES}, but got {profile!r}.")
    if days < 1 or rows < days:
        raise ValueError(f"`days >= 1` and `rows >= days` must hold, but got ({rows=}, {days=}).")
    if style not in STYLES:
        raise ValueError(f"`style` must be one of {STYLES}, but got {style!r}.")
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    schema = schema or (prof.schema if prof else "mbp-10")
    if schema not in SCHEMAS:
        raise ValueError(f"`schema` must be one of {SCHEMAS}, but got {schema!r}.")
    per_day = [rows // days + (1 if d < rows % days else 0) for d in range(days)]
    path = Path(path)
    if prof is None:
        return _write_legacy(path, per_day, schema, style, seed)
    return _write_calibrated(path, prof, per_day, schema, style, seed)


def _write_legacy(
    path: Path, per_day: list[int], schema: str, style: str, seed: int
) -> GenerateSummary:
    if len(per_day) == 1:
        return generate(path, n_events=per_day[0], schema=schema, style=style, seed=seed)
    # One `generate` run per day, each held in memory only while it is written.
    first_day = dt.date(2024, 8, 1)
    parts: list[GenerateSummary] = []
    with open_sink(path, compresslevel=1) as out, Writer(out) as writer:
        out.write((header(schema) + "\n").encode())
        for d, n in enumerate(per_day):
            day = first_day + dt.timedelta(days=d)
            rows = generate_rows(
                n_events=n,
                schema=schema,
                style=style,
                seed=seed + d,
                start=f"{day.isoformat()}T13:36:32Z",
            )
            rows.write(writer)
            parts.append(rows.summary(str(path)))
            del rows
    return GenerateSummary(
        path=str(path),
        rows=sum(p.rows for p in parts),
        venues=tuple(sorted({v for p in parts for v in p.venues})),
        distinct_ts_event=sum(p.distinct_ts_event for p in parts),
        trades=sum(p.trades for p in parts),
        ts_event_first=parts[0].ts_event_first,
        ts_event_last=parts[-1].ts_event_last,
    )


def _write_calibrated(
    path: Path, prof: CalibratedProfile, per_day: list[int], schema: str, style: str, seed: int
) -> GenerateSummary:
    top_only = schema == "mbp-1"
    n_lv = 1 if top_only else engine.LEVELS
    vf = np.array([v.row() for v in prof.venues], dtype=np.float64)
    n_v = len(prof.venues)
    pub = np.array([v.publisher_id for v in prof.venues], dtype=np.int64)
    px = np.zeros((n_v, 2, engine.LEVELS), dtype=np.int64)
    sz, ct = np.zeros_like(px), np.zeros_like(px)
    vfair = np.zeros(n_v)
    spread = np.zeros(n_v, dtype=np.int64)
    rng = np.random.default_rng(seed)
    seq = rng.integers(1_000_000, 90_000_000, n_v).astype(np.int64)
    fs = np.array([prof.price / prof.tick, 0.0])
    ts = np.zeros(3, dtype=np.int64)
    cap = _CHUNK + 64 + n_v
    o_ts, o_recv = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
    o_venue = np.zeros(cap, np.int64)
    o_action, o_side = np.zeros(cap, np.uint8), np.zeros(cap, np.uint8)
    o_depth, o_px, o_sz, o_seq = (np.zeros(cap, np.int64) for _ in range(4))
    o_book = np.zeros((cap, 6, n_lv), dtype=np.int64)
    # Two byte buffers: one is formatted while the other is written (`sink.Writer`).
    width = 40 + 12 * 6 * n_lv + 200  # bytes a line can take
    bufs = [np.zeros(max(_BUF_BYTES, width), dtype=np.uint8) for _ in range(2)]
    unit = round(prof.tick * _NS)
    decimals = max(0, -int(math.floor(math.log10(prof.tick) + 1e-9)))
    rtype = np.frombuffer(b"1" if top_only else b"10", np.uint8)
    instrument = np.frombuffer(str(prof.instrument_id).encode(), np.uint8)
    # every generated file says it is generated (`sor.data.loader` reads the mark)
    marked = prof.symbol
    if not marked.startswith(GENERATED_SYMBOL_PREFIX):
        marked = GENERATED_SYMBOL_PREFIX + marked
    symbol = np.frombuffer(marked.encode(), np.uint8)
    pretty = style == "pretty"
    total = trades = distinct = 0
    first_ts = last_ts = 0
    venues_seen = np.zeros(n_v, dtype=bool)
    date0 = dt.date.fromisoformat(prof.first_date)
    with open_sink(path, compresslevel=1) as out:
        out.write((header(schema) + "\n").encode())
        with Writer(out) as writer:
            k = 0
            for d, want_day in enumerate(per_day):
                date = date0 + dt.timedelta(days=d)
                day0 = int(np.datetime64(date.isoformat(), "ns").astype(np.int64))
                mf = prof.market_row(want_day / prof.session_s)
                day_seed = int(rng.integers(0, 2**31 - 1))
                engine.seed(day_seed)
                if d:
                    overnight = prof.overnight_bps * prof.price / prof.tick / 1e4
                    fs[0] += overnight * np.random.default_rng(day_seed).standard_normal()
                engine.start_day(
                    px, sz, ct, vf, mf, vfair, spread, fs, ts, day0 + round(prof.open_s * _NS)
                )
                date_bytes = np.frombuffer((date.isoformat() + "T").encode(), np.uint8)
                left = want_day
                prev_ts = -1
                while left:
                    want = min(_CHUNK, left)
                    n = engine.simulate(px, sz, ct, vf, mf, vfair, spread, seq, fs, ts, top_only,
                                        want, o_ts, o_recv, o_venue, o_action, o_side, o_depth,
                                        o_px, o_sz, o_seq, o_book)  # fmt: skip
                    n = min(n, left)
                    r = 0
                    while r < n:
                        buf = bufs[k]
                        k = 1 - k
                        nbytes, r = engine.format_rows(buf, width, r, n, pretty, day0, date_bytes,
                                                       unit, decimals, rtype, instrument, symbol,
                                                       pub, o_ts, o_recv, o_venue, o_action,
                                                       o_side, o_depth, o_px, o_sz, o_seq,
                                                       o_book)  # fmt: skip
                        writer.submit(buf[:nbytes].data)
                    t = o_ts[:n]
                    distinct += int(np.count_nonzero(np.diff(t))) + int(t[0] != prev_ts)
                    prev_ts = int(t[-1])
                    trades += int(np.count_nonzero(o_action[:n] == ord("T")))
                    venues_seen[o_venue[:n]] = True
                    if not total:
                        first_ts = int(t[0])
                    last_ts = int(t[-1])
                    total += n
                    left -= n
    return GenerateSummary(
        path=str(path),
        rows=total,
        venues=tuple(sorted(int(p) for p in pub[venues_seen])),
        distinct_ts_event=distinct,
        trades=trades,
        ts_event_first=first_ts,
        ts_event_last=last_ts,
    )


def with_impact(profile: CalibratedProfile, now_bps: float, later_bps: float) -> CalibratedProfile:
    """`profile` with other impact parameters (the calibration's knob)."""
    return replace(profile, impact_now_bps=now_bps, impact_later_bps=later_bps)
