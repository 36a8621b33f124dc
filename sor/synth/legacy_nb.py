"""Compiled kernels of the legacy generator (`sor.synth.generate`): the book and the CSV bytes.

`simulate` plays the plan of `generate` through one book per venue, drawing from the pools of
random numbers that `generate` drew with NumPy, in the order the mechanics below consume them;
`format_rows` writes rows as Databento CSV bytes. The same seed gives the same file as the
pure-Python simulation these kernels replace (`tests/sor/synth/legacy_reference.py` keeps it,
and `tests/sor/synth/test_legacy_nb.py` compares the two).

The random pools are cycled: a pool read past its end starts again at its beginning.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sor.synth.csv_nb import put_bytes, put_clock, put_fixed, put_int, put_uint

__all__ = ["LEVELS", "format_rows", "lagged_index", "simulate"]

LEVELS = 10  #: book levels per side
_BID, _ASK = 0, 1
_KIND_BURST, _KIND_TRADE = 1, 2
_A, _B, _C, _M, _T = ord("A"), ord("B"), ord("C"), ord("M"), ord("T")
# The simulation's state: pools (pu, pdepth, pgap, orders, o_off, spreads, mean_ct), their
# cursors, the books (px, sz, ct, level counts) and the target spreads; and the rows out.
_State = tuple[np.ndarray, ...]
_Out = tuple[np.ndarray, ...]
# Cursors into the pools: uniform, depth, gap, then orders and spreads per venue.
_CU, _CD, _CG, _CV = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def lagged_index(t: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """int64[G, V]: the last group whose time is at most t[i] - lag[v] (0 if none), for
    nondecreasing times t (ns) and lags >= 0; a merge, not a binary search per entry."""
    g_count, n_v = len(t), len(lag)
    out = np.zeros((g_count, n_v), dtype=np.int64)
    for v in range(n_v):
        k = 0
        for i in range(g_count):
            x = t[i] - lag[v]
            while k < g_count and t[k] <= x:
                k += 1
            out[i, v] = max(k - 1, 0)
    return out


@njit(cache=True)
def _next(pool: np.ndarray, cur: np.ndarray, k: int, lo: int, size: int) -> int:
    i = cur[k]
    cur[k] = i + 1 if i + 1 < size else 0
    return int(pool[lo + i])


@njit(cache=True)
def _u(pu: np.ndarray, cur: np.ndarray) -> float:
    i = cur[_CU]
    cur[_CU] = i + 1 if i + 1 < len(pu) else 0
    return float(pu[i])


@njit(cache=True)
def _order(orders: np.ndarray, o_off: np.ndarray, cur: np.ndarray, v: int) -> int:
    lo = o_off[v]
    return _next(orders, cur, _CV + v, lo, o_off[v + 1] - lo)


@njit(cache=True)
def _put(px: np.ndarray, sz: np.ndarray, ct: np.ndarray, nlev: np.ndarray,
         v: int, s: int, d: int, p: int, q: int, c: int) -> None:  # fmt: skip
    """Insert a level at depth d (deeper ones shift away; the 11th drops from view)."""
    for k in range(LEVELS - 1, d, -1):
        px[v, s, k] = px[v, s, k - 1]
        sz[v, s, k] = sz[v, s, k - 1]
        ct[v, s, k] = ct[v, s, k - 1]
    px[v, s, d] = p
    sz[v, s, d] = q
    ct[v, s, d] = c
    nlev[v, s] = min(nlev[v, s] + 1, LEVELS)


@njit(cache=True)
def _remove(px: np.ndarray, sz: np.ndarray, ct: np.ndarray, nlev: np.ndarray,
            v: int, s: int, d: int, refill: bool, gap: int, q: int, c: int) -> None:  # fmt: skip
    """Delete level d; with `refill`, a level (gap ticks, size q, count c) comes into view."""
    gone = px[v, s, d]
    for k in range(d, LEVELS - 1):
        px[v, s, k] = px[v, s, k + 1]
        sz[v, s, k] = sz[v, s, k + 1]
        ct[v, s, k] = ct[v, s, k + 1]
    n = nlev[v, s] - 1
    if not refill:
        px[v, s, LEVELS - 1] = 0
        sz[v, s, LEVELS - 1] = 0
        ct[v, s, LEVELS - 1] = 0
        nlev[v, s] = n
        return
    # The level coming into view lies beyond every visible one, the removed one included.
    edge = px[v, s, n - 1] if d < n else gone
    for k in range(LEVELS - 1, n, -1):
        px[v, s, k] = px[v, s, k - 1]
        sz[v, s, k] = sz[v, s, k - 1]
        ct[v, s, k] = ct[v, s, k - 1]
    px[v, s, n] = edge + (1 if s == _ASK else -1) * gap
    sz[v, s, n] = q
    ct[v, s, n] = c


@njit(cache=True)
def simulate(
    t: np.ndarray,
    venue: np.ndarray,
    kind: np.ndarray,
    burst_len: np.ndarray,
    sweep_len: np.ndarray,
    cross: np.ndarray,
    fair: np.ndarray,
    fair_lag: np.ndarray,
    ep_start: np.ndarray,
    ep_end_ns: np.ndarray,
    ep_off: np.ndarray,
    pu: np.ndarray,
    pdepth: np.ndarray,
    pgap: np.ndarray,
    orders: np.ndarray,
    o_off: np.ndarray,
    spreads: np.ndarray,
    mean_ct: np.ndarray,
    top_only: bool,
    o_group: np.ndarray,
    o_venue: np.ndarray,
    o_action: np.ndarray,
    o_side: np.ndarray,
    o_depth: np.ndarray,
    o_price: np.ndarray,
    o_size: np.ndarray,
    o_book: np.ndarray,
) -> int:
    """Play the plan until len(o_group) rows are recorded or the plan ends; return the rows.

    Args:
        t, venue, kind, burst_len, sweep_len, cross, fair, fair_lag: the plan's groups
            (`sor.synth.generate._Plan`).
        ep_start, ep_end_ns, ep_off: empty-ask episodes of venue v at ep_off[v]:ep_off[v + 1].
        pu, pdepth, pgap: pools of uniforms, depths and level gaps.
        orders, o_off: order sizes of venue v at o_off[v]:o_off[v + 1].
        spreads: int64[V, K] target spreads of each venue; mean_ct: float64[V] orders a level.
        top_only: record only events at the top level (MBP-1).
        o_*: the rows out: group, venue, action and side letters, depth, price (ticks), size,
            and o_book[row, field, level] = (bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct).
    """
    n_v = fair_lag.shape[1]
    cur = np.zeros(_CV + 2 * n_v, dtype=np.int64)
    px = np.zeros((n_v, 2, LEVELS), dtype=np.int64)
    sz = np.zeros_like(px)
    ct = np.zeros_like(px)
    nlev = np.zeros((n_v, 2), dtype=np.int64)
    spread = np.zeros(n_v, dtype=np.int64)
    for v in range(n_v):
        spread[v] = _next(spreads[v], cur, _CV + n_v + v, 0, spreads.shape[1])
    st = (pu, pdepth, pgap, orders, o_off, spreads, mean_ct, cur, px, sz, ct, nlev, spread)
    out = (o_group, o_venue, o_action, o_side, o_depth, o_price, o_size, o_book)
    want = len(o_group)
    cnt = np.zeros(1, dtype=np.int64)
    for v in range(n_v):
        _seed_book(st, v, fair_lag[0, v])
    ep_next = ep_off[:-1].copy()  # each venue's next episode
    ep_end = np.full(n_v, -1, dtype=np.int64)  # >= 0 while the venue's ask side is empty
    g, g_count = 0, len(t)
    while cnt[0] < want and g < g_count:
        v, tg = venue[g], t[g]
        if _u(pu, cur) < 0.02:  # venues re-choose their spread now and then
            spread[v] = _next(spreads[v], cur, _CV + n_v + v, 0, spreads.shape[1])
        if ep_end[v] >= 0:
            if tg >= ep_end[v]:
                _requote_ask(st, out, cnt, top_only, g, v, fair_lag[g, v])
                ep_end[v] = -1
                g += 1
                continue
        else:
            i, last = ep_next[v], ep_off[v + 1]
            while i < last and ep_end_ns[i] <= tg:
                i += 1
            if i < last and ep_start[i] <= tg:
                _clear_ask(st, out, cnt, top_only, g, v)
                ep_end[v] = ep_end_ns[i]
                ep_next[v] = i + 1
                g += 1
                continue
            ep_next[v] = i
        if kind[g] == _KIND_TRADE:
            _sweep_group(st, out, cnt, top_only, g, v, fair[g], ep_end, sweep_len, cross)
        else:
            rows = burst_len[g] if kind[g] == _KIND_BURST else 1
            for _ in range(rows):
                _book_event(st, out, cnt, top_only, g, v, fair_lag[g, v], ep_end[v] >= 0)
        g += 1
    return int(min(cnt[0], want))


@njit(cache=True)
def _emit(
    st: _State,
    out: _Out,
    cnt: np.ndarray,
    top_only: bool,
    g: int,
    v: int,
    action: int,
    side: int,
    depth: int,
    price: int,
    size: int,
) -> None:
    # MBP-1 carries only the events that change the top level; rows beyond the capacity are
    # dropped (`generate` keeps the first n_events).
    if depth and top_only:
        return
    n = cnt[0]
    cnt[0] = n + 1
    o_group, o_venue, o_action, o_side, o_depth, o_price, o_size, o_book = out
    if n >= len(o_group):
        return
    px, sz, ct = st[8], st[9], st[10]
    o_group[n] = g
    o_venue[n] = v
    o_action[n] = action
    o_side[n] = side
    o_depth[n] = depth
    o_price[n] = price
    o_size[n] = size
    for k in range(LEVELS):
        o_book[n, 0, k] = px[v, _BID, k]
        o_book[n, 1, k] = px[v, _ASK, k]
        o_book[n, 2, k] = sz[v, _BID, k]
        o_book[n, 3, k] = sz[v, _ASK, k]
        o_book[n, 4, k] = ct[v, _BID, k]
        o_book[n, 5, k] = ct[v, _ASK, k]


@njit(cache=True)
def _targets(st: _State, v: int, f: int) -> tuple[int, int]:
    s = st[12][v]
    tb = f - s // 2
    return tb, tb + s


@njit(cache=True)
def _gap(st: _State) -> int:
    pgap, cur = st[2], st[7]
    return _next(pgap, cur, _CG, 0, len(pgap))


@njit(cache=True)
def _depth(st: _State) -> int:
    pdepth, cur = st[1], st[7]
    return _next(pdepth, cur, _CD, 0, len(pdepth))


@njit(cache=True)
def _ord(st: _State, v: int) -> int:
    return _order(st[3], st[4], st[7], v)


@njit(cache=True)
def _level(st: _State, v: int) -> tuple[int, int]:
    """(size, count) of a level coming into view: a skewed count of the venue's orders."""
    c = 1 + int(-math.log(1.0 - _u(st[0], st[7])) * (st[6][v] - 1.0))
    q = 0
    for _ in range(c):
        q += _ord(st, v)
    return q, c


@njit(cache=True)
def _seed_book(st: _State, v: int, f: int) -> None:
    px, sz, ct, nlev = st[8], st[9], st[10], st[11]
    tb, ta = _targets(st, v, f)
    for s in range(2):
        p = tb if s == _BID else ta
        for d in range(LEVELS):
            q, c = _level(st, v)
            _put(px, sz, ct, nlev, v, s, d, p, q, c)
            p += (1 if s == _ASK else -1) * _gap(st)


@njit(cache=True)
def _remove_refilled(st: _State, v: int, s: int, d: int) -> None:
    q, c = _level(st, v)
    gap = _gap(st)
    _remove(st[8], st[9], st[10], st[11], v, s, d, True, gap, q, c)


@njit(cache=True)
def _letter(s: int) -> int:
    return _B if s == _BID else _A


@njit(cache=True)
def _book_event(
    st: _State,
    out: _Out,
    cnt: np.ndarray,
    top_only: bool,
    g: int,
    v: int,
    f: int,
    ask_off: bool,
) -> None:
    """One add, cancel or modify: a correction towards the venue's target quote or noise."""
    pu, cur = st[0], st[7]
    px, sz, ct, nlev = st[8], st[9], st[10], st[11]
    tb, ta = _targets(st, v, f)
    na = nlev[v, _ASK]
    bb = px[v, _BID, 0]
    ba = px[v, _ASK, 0]
    # fixes: up to two (side, price or -1 for a cancel)
    fs0, fp0, fs1, fp1, nf = 0, 0, 0, 0, 0
    if bb < tb and (na == 0 or tb < ba):
        fs0, fp0, nf = _BID, tb, 1
    elif bb > tb:
        fs0, fp0, nf = _BID, -1, 1
    if not ask_off:
        fs, fp, add = _ASK, 0, False
        if na == 0:
            fp, add = max(ta, bb + 1), True
        elif ba > ta and ta > bb:
            fp, add = ta, True
        elif ba < ta:
            fp, add = -1, True
        if add:
            if nf == 0:
                fs0, fp0 = fs, fp
            else:
                fs1, fp1 = fs, fp
            nf += 1
    u = _u(pu, cur)
    if nf and u < 0.5:
        i = int(u * 2 * nf)
        s, p = (fs0, fp0) if i == 0 else (fs1, fp1)
        if p == -1:
            _cancel(st, out, cnt, top_only, g, v, s, 0)
        else:
            q = _ord(st, v)
            _put(px, sz, ct, nlev, v, s, 0, p, q, 1)
            _emit(st, out, cnt, top_only, g, v, _A, _letter(s), 0, p, q)
        return
    s = _BID if ask_off or _u(pu, cur) < 0.5 else _ASK
    n = nlev[v, s]
    if n < LEVELS and _u(pu, cur) < 0.3:
        p = px[v, s, n - 1] + (1 if s == _ASK else -1) * _gap(st)
        q = _ord(st, v)
        _put(px, sz, ct, nlev, v, s, n, p, q, 1)
        _emit(st, out, cnt, top_only, g, v, _A, _letter(s), n, p, q)
        return
    d = min(_depth(st), n - 1)
    c = ct[v, s, d]
    # Adds and cancels balance around the venue's mean order count per level.
    p_add = min(max(0.5 + 0.1 * (st[6][v] - c), 0.15), 0.85)
    u = _u(pu, cur)
    if u < p_add * 0.9:
        q = _ord(st, v)
        holes = abs(px[v, s, n - 1] - px[v, s, 0]) - (n - 1)  # empty ticks inside the book
        if _u(pu, cur) < min(0.1 + 0.06 * holes, 0.9):
            # Liquidity fills the book from the touch outwards (`generate`'s model).
            for k in range(n - 1):
                gap = abs(px[v, s, k + 1] - px[v, s, k])
                if gap > 1:
                    p = px[v, s, k] + (1 if s == _ASK else -1) * min(_gap(st), gap - 1)
                    _put(px, sz, ct, nlev, v, s, k + 1, p, q, 1)
                    _emit(st, out, cnt, top_only, g, v, _A, _letter(s), k + 1, p, q)
                    return
        sz[v, s, d] += q
        ct[v, s, d] = c + 1
        _emit(st, out, cnt, top_only, g, v, _A, _letter(s), d, px[v, s, d], q)
    elif u < 0.9:
        _cancel(st, out, cnt, top_only, g, v, s, d)
    else:
        level = sz[v, s, d]
        old = min(max(_ord(st, v), 1), level - (c - 1))
        new = _ord(st, v)
        if new == old:
            new = max(old // 2, 1)
        sz[v, s, d] = level - old + new
        _emit(st, out, cnt, top_only, g, v, _M, _letter(s), d, px[v, s, d], new)


@njit(cache=True)
def _cancel(
    st: _State,
    out: _Out,
    cnt: np.ndarray,
    top_only: bool,
    g: int,
    v: int,
    s: int,
    d: int,
) -> None:
    """Cancel one order at depth d; the level goes when its last order does."""
    px, sz, ct = st[8], st[9], st[10]
    p, level, c = px[v, s, d], sz[v, s, d], ct[v, s, d]
    if c <= 1:
        _remove_refilled(st, v, s, d)
        _emit(st, out, cnt, top_only, g, v, _C, _letter(s), d, p, level)
        return
    q = min(max(_ord(st, v), 1), level - (c - 1))
    sz[v, s, d] = level - q
    ct[v, s, d] = c - 1
    _emit(st, out, cnt, top_only, g, v, _C, _letter(s), d, p, q)


@njit(cache=True)
def _sweep_group(
    st: _State,
    out: _Out,
    cnt: np.ndarray,
    top_only: bool,
    g: int,
    v: int,
    f_now: int,
    ep_end: np.ndarray,
    sweep_len: np.ndarray,
    cross: np.ndarray,
) -> None:
    pu, cur, px, nlev = st[0], st[7], st[8], st[11]
    n_v = nlev.shape[0]
    # Aggressors pick off quotes that lag the fair price (fair mid = fair + 0.5 ticks).
    p_buy = 0.5
    if nlev[v, _ASK]:
        mid = (px[v, _BID, 0] + px[v, _ASK, 0]) / 2
        p_buy = 0.5 + 0.4 * math.tanh(f_now + 0.5 - mid)
    s = _ASK if _u(pu, cur) < p_buy else _BID
    _sweep(st, out, cnt, top_only, g, v, s, sweep_len[g, 0], ep_end[v] >= 0)
    n_cross = cross[g]
    if n_cross:
        others = np.empty(n_v - 1, dtype=np.int64)
        m = 0
        for w in range(n_v):
            if w != v:
                others[m] = w
                m += 1
        for k in range(n_cross):
            j = int(_u(pu, cur) * m)
            w = others[j]
            for i in range(j, m - 1):
                others[i] = others[i + 1]
            m -= 1
            _sweep(st, out, cnt, top_only, g, w, s, sweep_len[g, 1 + k], ep_end[w] >= 0)


@njit(cache=True)
def _sweep(
    st: _State,
    out: _Out,
    cnt: np.ndarray,
    top_only: bool,
    g: int,
    v: int,
    s: int,
    k: int,
    ask_off: bool,
) -> None:
    """k trades against the touch on side s (the side hit); the book shows each fill."""
    pu, cur = st[0], st[7]
    px, sz, ct, nlev = st[8], st[9], st[10], st[11]
    if nlev[v, s] == 0:
        s = _BID
    aggressor = _B if s == _ASK else _A
    for _ in range(k):
        p, level, c = px[v, s, 0], sz[v, s, 0], ct[v, s, 0]
        u = _u(pu, cur)
        if c <= 1:
            q = level if u < 0.75 or level == 1 else max(int(level * u), 1)
        else:
            q = min(max(_ord(st, v), 1), level - (c - 1))
            c -= 1
        if q >= level:
            if s == _ASK and ask_off:
                _remove(px, sz, ct, nlev, v, s, 0, False, 0, 0, 0)
            else:
                _remove_refilled(st, v, s, 0)
        else:
            sz[v, s, 0] = level - q
            ct[v, s, 0] = c
        _emit(st, out, cnt, top_only, g, v, _T, aggressor, 0, p, q)
        if nlev[v, s] == 0:
            break


@njit(cache=True)
def _clear_ask(st: _State, out: _Out, cnt: np.ndarray, top_only: bool, g: int, v: int) -> None:
    """The venue pulls its whole offer: one cancel per level, all at one ts_event."""
    px, sz, ct, nlev = st[8], st[9], st[10], st[11]
    while nlev[v, _ASK]:
        p, q = px[v, _ASK, 0], sz[v, _ASK, 0]
        _remove(px, sz, ct, nlev, v, _ASK, 0, False, 0, 0, 0)
        _emit(st, out, cnt, top_only, g, v, _C, _A, 0, p, q)


@njit(cache=True)
def _requote_ask(
    st: _State,
    out: _Out,
    cnt: np.ndarray,
    top_only: bool,
    g: int,
    v: int,
    f: int,
) -> None:
    """The offer comes back: a few one-order levels from the target ask outwards."""
    pu, cur = st[0], st[7]
    px, sz, ct, nlev = st[8], st[9], st[10], st[11]
    _, ta = _targets(st, v, f)
    p = max(ta, px[v, _BID, 0] + 1)
    levels = 3 + int(_u(pu, cur) * 4)
    for d in range(levels):
        q = _ord(st, v)
        _put(px, sz, ct, nlev, v, _ASK, d, p, q, 1)
        _emit(st, out, cnt, top_only, g, v, _A, _A, d, p, q)
        p += _gap(st)


# --- CSV bytes ----------------------------------------------------------------------------------


@njit(cache=True)
def _put_ts(buf: np.ndarray, pos: int, t: int, pretty: bool) -> int:
    """NumPy's datetime_as_string(t, unit="ns") + "Z" (pretty), else str(t)."""
    if not pretty:
        return put_int(buf, pos, t)
    days = t // 86_400_000_000_000
    ns = t - days * 86_400_000_000_000
    # Civil date of a day count since 1970-01-01 (H. Hinnant's days_from_civil inverse).
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    pos = put_fixed(buf, pos, year, 4)
    buf[pos] = 45
    pos = put_fixed(buf, pos + 1, month, 2)
    buf[pos] = 45
    pos = put_fixed(buf, pos + 1, day, 2)
    buf[pos] = 84  # T
    return put_clock(buf, pos + 1, ns)


@njit(cache=True)
def _put_table(buf: np.ndarray, pos: int, tab: np.ndarray, off: np.ndarray, i: int) -> int:
    for j in range(off[i], off[i + 1]):
        buf[pos] = tab[j]
        pos += 1
    return pos


@njit(cache=True)
def _put_px(buf: np.ndarray, pos: int, k: int, px_keys: np.ndarray, dense: bool,
            px_tab: np.ndarray, px_off: np.ndarray) -> int:  # fmt: skip
    """The text of price k ticks from the table (its last entry: the missing price, k <= 0)."""
    if k <= 0:
        i = len(px_off) - 2
    elif dense:
        i = k - px_keys[0]
    else:
        i = int(np.searchsorted(px_keys, k))
    return _put_table(buf, pos, px_tab, px_off, i)


@njit(cache=True)
def _put_qty(buf: np.ndarray, pos: int, x: int) -> int:
    if x <= 0:
        buf[pos] = 48
        return pos + 1
    return put_uint(buf, pos, x)


@njit(cache=True, nogil=True)
def format_rows(
    buf: np.ndarray,
    width: int,
    rows: np.ndarray,
    pretty: bool,
    rtype: np.ndarray,
    instrument: np.ndarray,
    symbol: np.ndarray,
    pub: np.ndarray,
    px_keys: np.ndarray,
    dense: bool,
    px_tab: np.ndarray,
    px_off: np.ndarray,
    ts_recv: np.ndarray,
    ts_event: np.ndarray,
    venue: np.ndarray,
    action: np.ndarray,
    side: np.ndarray,
    depth: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    flags: np.ndarray,
    sequence: np.ndarray,
    book: np.ndarray,
    n_lv: int,
) -> tuple[int, int]:
    """Write the CSV lines of `rows` (indices into the columns, in file order) into `buf`,
    while a line of at most `width` bytes fits; return (bytes written, lines written).

    The columns are those of `generate`'s table; `book` holds LEVELS levels of which the first
    `n_lv` are written. rtype, instrument, symbol: the bytes of those columns; pub: int64[V]
    publisher_ids; px_keys, dense, px_tab, px_off: the price texts (`generate._price_table`).
    """
    pos = 0
    for i in range(len(rows)):
        if pos + width > len(buf):
            return pos, i
        r = rows[i]
        pos = _put_ts(buf, pos, ts_recv[r], pretty)
        buf[pos] = 44
        pos = _put_ts(buf, pos + 1, ts_event[r], pretty)
        buf[pos] = 44
        pos = put_bytes(buf, pos + 1, rtype)
        buf[pos] = 44
        pos = _put_qty(buf, pos + 1, pub[venue[r]])
        buf[pos] = 44
        pos = put_bytes(buf, pos + 1, instrument)
        buf[pos] = 44
        pos += 1
        buf[pos] = action[r]
        buf[pos + 1] = 44
        buf[pos + 2] = side[r]
        buf[pos + 3] = 44
        pos = put_int(buf, pos + 4, depth[r])
        buf[pos] = 44
        pos = _put_px(buf, pos + 1, price[r], px_keys, dense, px_tab, px_off)
        buf[pos] = 44
        pos = _put_qty(buf, pos + 1, size[r])
        buf[pos] = 44
        pos = _put_qty(buf, pos + 1, flags[r])
        buf[pos] = 44
        pos = put_int(buf, pos + 1, ts_recv[r] - ts_event[r])
        buf[pos] = 44
        pos = put_int(buf, pos + 1, sequence[r])
        for k in range(n_lv):
            for f in range(6):
                buf[pos] = 44
                if f < 2:
                    pos = _put_px(buf, pos + 1, book[r, f, k], px_keys, dense, px_tab, px_off)
                else:
                    pos = _put_qty(buf, pos + 1, book[r, f, k])
        buf[pos] = 44
        pos = put_bytes(buf, pos + 1, symbol)
        buf[pos] = 10
        pos += 1
    return pos, len(rows)
