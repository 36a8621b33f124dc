"""Compiled kernels of the calibrated generator (`sor.synth.profiles`): the market and the CSV.

`simulate` plays one trading session forward in chunks of rows: a latent fair price, a book of
`LEVELS` price levels per side at every venue, quote updates, and prints that carry information
(model.md §8). `format_rows` turns a chunk of rows into Databento CSV bytes. Both run in Numba,
so a chunk of 65,536 rows costs milliseconds and memory stays at one chunk whatever the length
of the file. There is no Python twin: the facts (`sor.synth.facts`) check the result. The
field writers are shared with the legacy generator's formatter (`sor.synth.csv_nb`).

Every array argument is documented at `simulate`; the column indices below name the entries of
the parameter arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sor.synth.csv_nb import put_bytes, put_clock, put_fixed, put_uint

__all__ = ["LEVELS", "N_MARKET", "N_VENUE", "format_rows", "seed", "simulate", "start_day"]

LEVELS = 10  #: book levels per side

# Venue parameters: float64[V, N_VENUE].
V_QUOTE_HZ, V_TRADE_SHARE, V_SPREAD_MU, V_SPREAD_SIGMA, V_LOT_P = 0, 1, 2, 3, 4
V_ODD_PROB, V_LAG_S, V_LATENCY_NS, V_FOLLOW = 5, 6, 7, 8
N_VENUE = 9

# Market parameters: float64[N_MARKET].
M_VOL, M_BURST_HZ, M_BURST_P, M_FAST_PROB, M_FAST_S, M_SLOW_S = 0, 1, 2, 3, 4, 5
M_INSIDE, M_TRADE_ODD, M_TRADE_LOT_P, M_IMPACT_NOW, M_IMPACT_LATER, M_IMPACT_TAU = (
    6,
    7,
    8,
    9,
    10,
    11,
)
M_PICKOFF, M_TOP_PROB, M_GAP_P, M_ADD_PROB, M_RATE_SCALE, M_REDRAW, M_REACT = (
    12,
    13,
    14,
    15,
    16,
    17,
    18,
)
N_MARKET = 19

# State: float64 fs[2] = (fair price in ticks, impact still to come in ticks);
# int64 ts[3] = (now, next quote event, next burst of prints), ns.
_BID, _ASK = 0, 1
_MAX_BURST = 32


@njit(cache=True)
def seed(s: int) -> None:
    """Seed Numba's random generator (the kernels draw from it)."""
    np.random.seed(s)


@njit(cache=True)
def _order(vf: np.ndarray, v: int) -> int:
    """One displayed order at venue v, shares: an odd lot or round lots."""
    if np.random.random() < vf[v, V_ODD_PROB]:
        return 1 + int(math.exp(np.random.random() * math.log(300.0)))
    return 100 * int(np.random.geometric(vf[v, V_LOT_P]))


@njit(cache=True)
def _spread(vf: np.ndarray, v: int) -> int:
    """A target spread of venue v, ticks: lognormal around its median, at least one tick."""
    x = math.exp(vf[v, V_SPREAD_MU] + vf[v, V_SPREAD_SIGMA] * np.random.standard_normal())
    return max(1, int(round(x)))


@njit(cache=True)
def _targets(vfair: np.ndarray, spread: np.ndarray, v: int) -> tuple[int, int]:
    s = spread[v]
    tb = int(math.floor(vfair[v] - s / 2.0 + 0.5))
    return tb, tb + s


@njit(cache=True)
def _insert(px: np.ndarray, sz: np.ndarray, ct: np.ndarray, v: int, s: int, p: int, q: int) -> None:
    """A new best level at price p on side s; the deepest level drops from view."""
    for k in range(LEVELS - 1, 0, -1):
        px[v, s, k] = px[v, s, k - 1]
        sz[v, s, k] = sz[v, s, k - 1]
        ct[v, s, k] = ct[v, s, k - 1]
    px[v, s, 0] = p
    sz[v, s, 0] = q
    ct[v, s, 0] = 1


@njit(cache=True)
def _remove(
    px: np.ndarray,
    sz: np.ndarray,
    ct: np.ndarray,
    vf: np.ndarray,
    mf: np.ndarray,
    v: int,
    s: int,
    d: int,
) -> None:
    """Level d of side s goes; a level comes into view behind the deepest one."""
    for k in range(d, LEVELS - 1):
        px[v, s, k] = px[v, s, k + 1]
        sz[v, s, k] = sz[v, s, k + 1]
        ct[v, s, k] = ct[v, s, k + 1]
    away = 1 if s == _ASK else -1
    px[v, s, LEVELS - 1] = px[v, s, LEVELS - 2] + away * np.random.geometric(mf[M_GAP_P])
    sz[v, s, LEVELS - 1] = _order(vf, v)
    ct[v, s, LEVELS - 1] = 1


@njit(cache=True)
def _seed_book(
    px: np.ndarray,
    sz: np.ndarray,
    ct: np.ndarray,
    vf: np.ndarray,
    mf: np.ndarray,
    vfair: np.ndarray,
    spread: np.ndarray,
    v: int,
) -> None:
    tb, ta = _targets(vfair, spread, v)
    for s in range(2):
        p = tb if s == _BID else ta
        away = 1 if s == _ASK else -1
        for k in range(LEVELS):
            px[v, s, k] = p
            sz[v, s, k] = _order(vf, v)
            ct[v, s, k] = 1
            p += away * np.random.geometric(mf[M_GAP_P])


@njit(cache=True)
def start_day(
    px: np.ndarray,
    sz: np.ndarray,
    ct: np.ndarray,
    vf: np.ndarray,
    mf: np.ndarray,
    vfair: np.ndarray,
    spread: np.ndarray,
    fs: np.ndarray,
    ts: np.ndarray,
    t0: int,
) -> None:
    """Open a session at t0 (ns): every venue quotes the fair price afresh, no impact pending."""
    fs[1] = 0.0
    for v in range(vf.shape[0]):
        vfair[v] = fs[0]
        spread[v] = _spread(vf, v)
        _seed_book(px, sz, ct, vf, mf, vfair, spread, v)
    ts[0] = t0
    ts[1] = t0 + _quote_gap(vf, mf)
    ts[2] = t0 + _burst_gap(mf)


@njit(cache=True)
def _quote_gap(vf: np.ndarray, mf: np.ndarray) -> int:
    rate = vf[:, V_QUOTE_HZ].sum() * mf[M_RATE_SCALE]
    return max(1, int(np.random.exponential(1.0 / rate) * 1e9))


@njit(cache=True)
def _burst_gap(mf: np.ndarray) -> int:
    # Bursts of prints cluster: a mixture of short and long exponential gaps.
    mean = mf[M_FAST_S] if np.random.random() < mf[M_FAST_PROB] else mf[M_SLOW_S]
    return max(1, int(np.random.exponential(mean / mf[M_RATE_SCALE]) * 1e9))


@njit(cache=True)
def _pick(weights_cum: np.ndarray) -> int:
    u = np.random.random() * weights_cum[-1]
    return min(int(np.searchsorted(weights_cum, u, side="right")), len(weights_cum) - 1)


@njit(cache=True, nogil=True)
def simulate(
    px: np.ndarray,
    sz: np.ndarray,
    ct: np.ndarray,
    vf: np.ndarray,
    mf: np.ndarray,
    vfair: np.ndarray,
    spread: np.ndarray,
    seq: np.ndarray,
    fs: np.ndarray,
    ts: np.ndarray,
    top_only: bool,
    want: int,
    o_ts: np.ndarray,
    o_recv: np.ndarray,
    o_venue: np.ndarray,
    o_action: np.ndarray,
    o_side: np.ndarray,
    o_depth: np.ndarray,
    o_px: np.ndarray,
    o_sz: np.ndarray,
    o_seq: np.ndarray,
    o_book: np.ndarray,
) -> int:
    """Play the market forward until at least `want` rows are written; return the rows written.

    Args:
        px, sz, ct: int64[V, 2, LEVELS] price (ticks), size (shares) and order count of every
            venue's levels, side 0 bid and 1 ask, level 0 the touch; updated in place.
        vf: float64[V, N_VENUE] venue parameters (columns V_*).
        mf: float64[N_MARKET] market parameters (entries M_*).
        vfair: float64[V] the fair price as each venue sees it (lagged), ticks.
        spread: int64[V] each venue's target spread, ticks.
        seq: int64[V] last sequence number of each venue.
        fs: float64[2] fair price (ticks) and the part of past prints' impact still to come.
        ts: int64[3] now, next quote event and next burst of prints, ns.
        top_only: write only rows that change the top level (MBP-1).
        want: rows wanted; a burst of prints and the quotes reacting to it may add up to
            32 + V more.
        o_*: the rows out (capacity at least want + 32): ts_event and ts_recv (ns), venue
            index, action and side letters, depth, price (ticks), size (shares), sequence, and
            o_book[row, field, level] = (bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct) of the
            venue after the row (only level 0 when o_book has one level).
    """
    n_v = vf.shape[0]
    q_cum = np.cumsum(vf[:, V_QUOTE_HZ])
    t_cum = np.cumsum(vf[:, V_TRADE_SHARE])
    n_lv = o_book.shape[2]
    n = 0
    while n < want:
        quote = ts[1] <= ts[2]
        t = ts[1] if quote else ts[2]
        dt = (t - ts[0]) / 1e9
        ts[0] = t
        # Fair price: diffusion, plus the part of earlier prints' impact that arrives now.
        release = fs[1] * (1.0 - math.exp(-dt / mf[M_IMPACT_TAU]))
        fs[0] += mf[M_VOL] * math.sqrt(dt) * np.random.standard_normal() + release
        fs[1] -= release
        for w in range(n_v):
            lag = vf[w, V_LAG_S]
            vfair[w] += (fs[0] - vfair[w]) * (1.0 if lag <= 0 else 1.0 - math.exp(-dt / lag))
        if quote:
            ts[1] = t + _quote_gap(vf, mf)
            v = _pick(q_cum)
            act, sd, d, p, q = _quote_event(px, sz, ct, vf, mf, vfair, spread, v, top_only, False)
            if act == 0 or (top_only and d > 0):
                continue
            n = _emit(n, t, v, act, sd, d, p, q, px, sz, ct, vf, seq, n_lv, o_ts, o_recv,
                      o_venue, o_action, o_side, o_depth, o_px, o_sz, o_seq, o_book)  # fmt: skip
            continue
        ts[2] = t + _burst_gap(mf)
        # A burst: one aggressor's prints at one or more venues within a millisecond.
        ref_mid = (px[0, _BID, 0] + px[0, _ASK, 0]) / 2.0
        p_buy = 0.5 + mf[M_PICKOFF] * math.tanh(fs[0] - ref_mid)
        s_hit = _ASK if np.random.random() < p_buy else _BID
        sign = 1.0 if s_hit == _ASK else -1.0
        k = min(np.random.geometric(mf[M_BURST_P]), _MAX_BURST)
        tp = t
        hit = np.zeros(n_v, dtype=np.bool_)
        for _ in range(k):
            v = _pick(t_cum)
            bid, ask = px[v, _BID, 0], px[v, _ASK, 0]
            if mf[M_TRADE_ODD] > np.random.random():
                q = 1 + int(99.0 * np.random.random() ** 1.5)
            else:
                q = 100 * np.random.geometric(mf[M_TRADE_LOT_P])
            if ask - bid >= 2 and np.random.random() < mf[M_INSIDE]:
                # Hidden or midpoint liquidity: the print leaves the displayed book alone and,
                # its aggressor unseen, carries no information here.
                p = bid + 1 + int(np.random.random() * (ask - bid - 1))
                n = _emit(n, tp, v, ord("T"), ord("N"), 0, p, q, px, sz, ct, vf, seq, n_lv,
                          o_ts, o_recv, o_venue, o_action, o_side, o_depth, o_px, o_sz, o_seq,
                          o_book)  # fmt: skip
            else:
                p = px[v, s_hit, 0]
                level = sz[v, s_hit, 0]
                if q >= level:
                    q = level
                    _remove(px, sz, ct, vf, mf, v, s_hit, 0)
                else:
                    c = ct[v, s_hit, 0]
                    ct[v, s_hit, 0] = max(1, c - (q * c) // level)
                    sz[v, s_hit, 0] = level - q
                # Prints carry information: the fair price moves with the aggressor, part now,
                # part over the next seconds (model.md §8).
                fs[0] += sign * mf[M_IMPACT_NOW]
                fs[1] += sign * mf[M_IMPACT_LATER]
                hit[v] = True
                aggressor = ord("B") if s_hit == _ASK else ord("A")
                n = _emit(n, tp, v, ord("T"), aggressor, 0, p, q, px, sz, ct, vf, seq, n_lv,
                          o_ts, o_recv, o_venue, o_action, o_side, o_depth, o_px, o_sz, o_seq,
                          o_book)  # fmt: skip
            tp += 1 + int(np.random.exponential(20e3))
        # Market makers at a venue that printed re-centre their quote on the news at once.
        for v in range(n_v):
            if not hit[v] or np.random.random() >= mf[M_REACT]:
                continue
            vfair[v] = fs[0]
            act, sd, d, p, q = _quote_event(px, sz, ct, vf, mf, vfair, spread, v, top_only, True)
            n = _emit(n, tp, v, act, sd, d, p, q, px, sz, ct, vf, seq, n_lv, o_ts, o_recv,
                      o_venue, o_action, o_side, o_depth, o_px, o_sz, o_seq, o_book)  # fmt: skip
            tp += 1 + int(np.random.exponential(50e3))
        ts[0] = tp
        ts[1] = max(ts[1], tp)
        ts[2] = max(ts[2], tp)
    return n


@njit(cache=True)
def _quote_event(
    px: np.ndarray,
    sz: np.ndarray,
    ct: np.ndarray,
    vf: np.ndarray,
    mf: np.ndarray,
    vfair: np.ndarray,
    spread: np.ndarray,
    v: int,
    top_only: bool,
    force: bool,
) -> tuple[int, int, int, int, int]:
    """One add or cancel at venue v: a move of the touch towards the venue's target quote, or
    noise in the queues. Returns (action letter or 0 for nothing, side index, depth, price, size).
    """
    if np.random.random() < mf[M_REDRAW]:
        spread[v] = _spread(vf, v)
    tb, ta = _targets(vfair, spread, v)
    bid, ask = px[v, _BID, 0], px[v, _ASK, 0]
    if (force or np.random.random() < vf[v, V_FOLLOW]) and (bid != tb or ask != ta):
        fix_bid = abs(bid - tb) >= abs(ask - ta)
        for _ in range(2):
            if fix_bid:
                if bid < tb < ask:
                    q = _order(vf, v)
                    _insert(px, sz, ct, v, _BID, tb, q)
                    return ord("A"), _BID, 0, tb, q
                if bid > tb:
                    q = sz[v, _BID, 0]
                    _remove(px, sz, ct, vf, mf, v, _BID, 0)
                    return ord("C"), _BID, 0, bid, q
            else:
                if bid < ta < ask:
                    q = _order(vf, v)
                    _insert(px, sz, ct, v, _ASK, ta, q)
                    return ord("A"), _ASK, 0, ta, q
                if ask < ta:
                    q = sz[v, _ASK, 0]
                    _remove(px, sz, ct, vf, mf, v, _ASK, 0)
                    return ord("C"), _ASK, 0, ask, q
            fix_bid = not fix_bid
    s = _BID if np.random.random() < 0.5 else _ASK
    d = 0
    if not top_only and np.random.random() >= mf[M_TOP_PROB]:
        d = min(np.random.geometric(0.35), LEVELS - 1)
    p = px[v, s, d]
    if np.random.random() < mf[M_ADD_PROB]:
        q = _order(vf, v)
        sz[v, s, d] += q
        ct[v, s, d] += 1
        return ord("A"), s, d, p, q
    c, level = ct[v, s, d], sz[v, s, d]
    if c <= 1:
        _remove(px, sz, ct, vf, mf, v, s, d)
        return ord("C"), s, d, p, level
    q = min(_order(vf, v), level - (c - 1))
    sz[v, s, d] = level - q
    ct[v, s, d] = c - 1
    return ord("C"), s, d, p, q


@njit(cache=True)
def _emit(
    n: int,
    t: int,
    v: int,
    action: int,
    side: int,
    depth: int,
    price: int,
    size: int,
    px: np.ndarray,
    sz: np.ndarray,
    ct: np.ndarray,
    vf: np.ndarray,
    seq: np.ndarray,
    n_lv: int,
    o_ts: np.ndarray,
    o_recv: np.ndarray,
    o_venue: np.ndarray,
    o_action: np.ndarray,
    o_side: np.ndarray,
    o_depth: np.ndarray,
    o_px: np.ndarray,
    o_sz: np.ndarray,
    o_seq: np.ndarray,
    o_book: np.ndarray,
) -> int:
    o_ts[n] = t
    o_recv[n] = t + int(vf[v, V_LATENCY_NS] * math.exp(0.25 * np.random.standard_normal()))
    o_venue[n] = v
    o_action[n] = action
    o_side[n] = side if side > 1 else (ord("B") if side == _BID else ord("A"))
    o_depth[n] = depth
    o_px[n] = price
    o_sz[n] = size
    seq[v] += 1 + np.random.poisson(20.0)
    o_seq[n] = seq[v]
    for k in range(n_lv):
        o_book[n, 0, k] = px[v, _BID, k]
        o_book[n, 1, k] = px[v, _ASK, k]
        o_book[n, 2, k] = sz[v, _BID, k]
        o_book[n, 3, k] = sz[v, _ASK, k]
        o_book[n, 4, k] = ct[v, _BID, k]
        o_book[n, 5, k] = ct[v, _ASK, k]
    return n + 1


# --- CSV bytes ----------------------------------------------------------------------------------


@njit(cache=True)
def _put_ts(buf: np.ndarray, pos: int, t: int, pretty: bool, day0: int, date: np.ndarray) -> int:
    if not pretty:
        return put_uint(buf, pos, t)
    pos = put_bytes(buf, pos, date)  # "YYYY-MM-DDT"
    return put_clock(buf, pos, t - day0)


@njit(cache=True)
def _put_px(buf: np.ndarray, pos: int, k: int, pretty: bool, unit: int, decimals: int) -> int:
    """Price of k ticks: raw, k * unit (1e-9 units); pretty, Python's repr of the decimal value."""
    if not pretty:
        return put_uint(buf, pos, k * unit)
    scale = 10**decimals
    v = k * (unit // 10 ** (9 - decimals))  # in units of 10**-decimals
    pos = put_uint(buf, pos, v // scale)
    buf[pos] = 46
    pos += 1
    frac = v % scale
    if frac == 0:
        buf[pos] = 48
        return pos + 1
    width = decimals
    while frac % 10 == 0:
        frac //= 10
        width -= 1
    return put_fixed(buf, pos, frac, width)


@njit(cache=True, nogil=True)
def format_rows(
    buf: np.ndarray,
    width: int,
    start: int,
    n: int,
    pretty: bool,
    day0: int,
    date: np.ndarray,
    unit: int,
    decimals: int,
    rtype: np.ndarray,
    instrument: np.ndarray,
    symbol: np.ndarray,
    pub: np.ndarray,
    o_ts: np.ndarray,
    o_recv: np.ndarray,
    o_venue: np.ndarray,
    o_action: np.ndarray,
    o_side: np.ndarray,
    o_depth: np.ndarray,
    o_px: np.ndarray,
    o_sz: np.ndarray,
    o_seq: np.ndarray,
    o_book: np.ndarray,
) -> tuple[int, int]:
    """Write rows start..n-1 as Databento CSV lines into `buf` (uint8) while a line of at most
    `width` bytes fits; return (bytes written, the next row to write).

    Args:
        pretty: ISO timestamps and decimal prices; else integer ns and 1e-9 price units.
        day0: ns of the UTC midnight of the rows' date; `date` its "YYYY-MM-DDT" bytes.
        unit: one tick in 1e-9 price units; `decimals` the tick's decimal places.
        rtype, instrument, symbol: bytes of those columns; pub: int64[V] publisher_ids.
    """
    pos = 0
    n_lv = o_book.shape[2]
    for r in range(start, n):
        if pos + width > len(buf):
            return pos, r
        pos = _put_ts(buf, pos, o_recv[r], pretty, day0, date)
        buf[pos] = 44
        pos = _put_ts(buf, pos + 1, o_ts[r], pretty, day0, date)
        buf[pos] = 44
        pos = put_bytes(buf, pos + 1, rtype)
        buf[pos] = 44
        pos = put_uint(buf, pos + 1, pub[o_venue[r]])
        buf[pos] = 44
        pos = put_bytes(buf, pos + 1, instrument)
        buf[pos] = 44
        buf[pos + 1] = o_action[r]
        buf[pos + 2] = 44
        buf[pos + 3] = o_side[r]
        buf[pos + 4] = 44
        pos = put_uint(buf, pos + 5, o_depth[r])
        buf[pos] = 44
        pos = _put_px(buf, pos + 1, o_px[r], pretty, unit, decimals)
        buf[pos] = 44
        pos = put_uint(buf, pos + 1, o_sz[r])
        buf[pos] = 44
        pos = put_uint(buf, pos + 1, 128)  # F_LAST: every row is its venue's whole event
        buf[pos] = 44
        pos = put_uint(buf, pos + 1, o_recv[r] - o_ts[r])
        buf[pos] = 44
        pos = put_uint(buf, pos + 1, o_seq[r])
        for k in range(n_lv):
            for f in range(6):
                buf[pos] = 44
                if f < 2:
                    pos = _put_px(buf, pos + 1, o_book[r, f, k], pretty, unit, decimals)
                else:
                    pos = put_uint(buf, pos + 1, o_book[r, f, k])
        buf[pos] = 44
        pos = put_bytes(buf, pos + 1, symbol)
        buf[pos] = 10
        pos += 1
    return pos, n
