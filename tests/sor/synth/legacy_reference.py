"""The legacy generator's book simulation in pure Python, as it was before it was compiled.

`sor.synth.legacy_nb.simulate` must record the same rows from the same plan and pools;
`test_legacy_nb.py` compares the two. Kept here as the readable statement of the mechanics.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from sor.synth.generate import LEVELS, _order_sizes, _Params, _Plan

_BID, _ASK = 0, 1
_SIGN = (-1, 1)
_KIND_SINGLE, _KIND_BURST, _KIND_TRADE = 0, 1, 2


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
