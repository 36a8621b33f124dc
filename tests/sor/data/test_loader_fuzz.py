"""The CSV loader on damaged Databento MBP files (model.md §1-§2): fuzz and targeted tests.

The rule: bad input raises `DataError` naming the file, and the line and column where there is
one; repairable data is repaired as documented and counted in the summary; no other exception
type reaches the user and no number is loaded silently wrong.

"""

from __future__ import annotations

import gzip
import itertools
import math
import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from sor.data.csvfile import UNDEF_PRICE
from sor.data.loader import DataSummary, load_snapshots, load_updates
from sor.data.snapshots import Snapshots, build_snapshots
from sor.errors import DataError
from sor.synth.generate import generate
from sor.vocabulary import MAX_SIZE
from tests.csvdata import BASE_NS, iso, row, write_csv

N_EVENTS, SEED = 60, 0  # 60 rows, five venues and a few trades in both schemas
SCHEMAS, STYLES = ("mbp-1", "mbp-10"), ("pretty", "raw")
MAX_PRICE = UNDEF_PRICE / 1e9  #: Databento's largest price in dollars (int64 of 1e-9)
MAX_PUBLISHER = 65_535  #: publisher_id is a u16
TS_MIN, TS_MAX = (
    pd.Timestamp("2000-01-01", tz="UTC").value,
    pd.Timestamp("2100-01-01", tz="UTC").value,
)
TICK = {"pretty": 0.01, "raw": 10_000_000}
KIND = {
    "ask_px_00": "price",
    "bid_px_00": "price",
    "ask_sz_00": "size",
    "bid_sz_00": "size",
    "ts_event": "ts",
    "publisher_id": "venue",
}
UNREAD = ("ts_recv", "rtype", "flags", "ts_in_delta", "bid_ct_00", "ask_ct_00")
LEVELS = 10  #: ask levels of an MBP-10 file, all read (model.md §1)
ASK_DEPTH = {
    f"ask_{field}_{k:02d}": kind
    for k in range(1, LEVELS)
    for field, kind in (("px", "price"), ("sz", "size"))
}
GARBAGE = (
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "",
    "-5",
    "1.5",
    str(10**15),
    str(10**20),
    "2024/08/01 13:36:32",
    "1722519392.5",
    "now",
)
DIGITS = re.compile(r"\d+")
PRETTY_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:?\d\d)")


# --- the undamaged files ---------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Base:
    """An undamaged generated file, what it loads to, and every number it holds."""

    path: Path
    schema: str
    style: str
    lines: tuple[str, ...]
    snaps: Snapshots
    summary: DataSummary
    known: dict[str, np.ndarray]  # every price, size, ts_event and publisher_id in the file
    trade_lines: frozenset[int]  # file lines (header = 1) of trade rows
    quote_lines: tuple[int, ...]  # non-trade lines quoting both sides, alone at (ts_event, venue)
    deep_lines: tuple[int, ...]  # the quote lines showing every ask level

    def __repr__(self) -> str:
        return f"Base({self.schema}, {self.style})"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis: short, not every field
        printer.text(repr(self))

    @property
    def columns(self) -> list[str]:
        return self.lines[0].split(",")

    @property
    def line(self) -> int:
        """A data line whose every read cell is kept: the place for cell damage."""
        return next(n for n in self.quote_lines if n >= 6)

    @property
    def deep_line(self) -> int:
        """A data line like `line` that shows all ten ask levels (MBP-10 files)."""
        return next(n for n in self.deep_lines if n >= 6)

    def cell(self, line: int, column: str) -> str:
        return self.lines[line - 1].split(",")[self.columns.index(column)]

    def with_cell(self, line: int, column: str, value: str) -> list[str]:
        """The file's lines with one cell replaced."""
        return self.with_cells(line, {column: value})

    def with_cells(self, line: int, values: dict[str, str]) -> list[str]:
        """The file's lines with cells of one line replaced: column -> new text."""
        cells = self.lines[line - 1].split(",")
        for column, value in values.items():
            cells[self.columns.index(column)] = value
        return [*self.lines[: line - 1], ",".join(cells), *self.lines[line:]]


def price_numbers(column: pd.Series, style: str) -> np.ndarray:
    """Dollars per cell, NaN where the cell means no quote."""
    values = pd.to_numeric(column.replace("", np.nan)).to_numpy(np.float64)
    if style == "raw":
        values = np.where(values >= float(UNDEF_PRICE), np.nan, values) / 1e9
    return np.where(values > 0, values, np.nan)


def ts_numbers(column: pd.Series, style: str) -> np.ndarray:
    if style == "raw":
        return column.astype(np.int64).to_numpy()
    return pd.to_datetime(column, format="ISO8601", utc=True).astype("int64").to_numpy()


def make_base(folder: Path, schema: str, style: str) -> Base:
    path = folder / f"{schema}_{style}.csv"
    generate(path, n_events=N_EVENTS, schema=schema, style=style, seed=SEED)
    snaps, summary = load_snapshots(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    ask, bid = price_numbers(df.ask_px_00, style), price_numbers(df.bid_px_00, style)
    ask_sz, bid_sz = df.ask_sz_00.astype(np.int64), df.bid_sz_00.astype(np.int64)
    n_levels = LEVELS if schema == "mbp-10" else 1
    depth_px = [price_numbers(df[f"ask_px_{k:02d}"], style) for k in range(1, n_levels)]
    depth_sz = [df[f"ask_sz_{k:02d}"].astype(np.int64).to_numpy() for k in range(1, n_levels)]
    full_ladder = np.ones(len(df), dtype=bool)
    for px, sz in zip([ask, *depth_px], [ask_sz.to_numpy(), *depth_sz], strict=True):
        full_ladder &= np.isfinite(px) & (sz > 0)
    ts, venue = ts_numbers(df.ts_event, style), df.publisher_id.astype(np.int64).to_numpy()
    alone = ~pd.DataFrame({"ts": ts, "venue": venue}).duplicated(keep=False).to_numpy()
    trade = (df.action == "T").to_numpy()
    two_sided = np.isfinite(ask) & np.isfinite(bid) & (ask_sz > 0) & (bid_sz > 0)
    lines = df.index.to_numpy() + 2
    prices = np.concatenate([ask, bid, *depth_px])
    return Base(
        path=path,
        schema=schema,
        style=style,
        lines=tuple(path.read_text().splitlines()),
        snaps=snaps,
        summary=summary,
        known={
            "price": np.unique(prices[np.isfinite(prices)]),
            "size": np.unique(np.concatenate([ask_sz, bid_sz, *depth_sz, [0]])),
            "ts": np.unique(ts),
            "venue": np.unique(venue),
        },
        trade_lines=frozenset(lines[trade].tolist()),
        quote_lines=tuple(lines[two_sided & alone & ~trade].tolist()),
        deep_lines=tuple(lines[two_sided & alone & ~trade & full_ladder].tolist()),
    )


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[tuple[str, str], Base]:
    folder = tmp_path_factory.mktemp("bases")
    return {(sc, st_): make_base(folder, sc, st_) for sc in SCHEMAS for st_ in STYLES}


# --- writing and checking damaged files -------------------------------------------------------


def encode(
    lines: list[str],
    *,
    final_newline: bool = True,
    crlf: bool = False,
    bom: bool = False,
    gz: bool = False,
) -> bytes:
    """File bytes of `lines`, optionally with CRLF endings, a UTF-8 BOM, gzip."""
    eol = "\r\n" if crlf else "\n"
    text = eol.join(lines) + (eol if final_newline and lines else "")
    data = ("\ufeff" if bom else "").encode() + text.encode()
    return gzip.compress(data, mtime=0) if gz else data


def write(path: Path, lines: list[str], **options) -> Path:
    path.write_bytes(encode(lines, **options))
    return path


def at(path: Path, line: int, column: str | None = None) -> str:
    """Regex of a DataError message prefix naming `path`, `line` and `column`."""
    return re.escape(f"{path}:{line}: " + (f"column '{column}': " if column else ""))


def assert_well_formed(snaps: Snapshots) -> None:
    """Strictly increasing time; a price is finite and positive exactly where its size is > 0;
    ask ladders start at the best ask, rise, and end in their empty levels."""
    assert np.all(np.diff(snaps.ts) > 0)
    assert snaps.ask_depth_px is not None and snaps.ask_depth_sz is not None
    ladder_px, ladder_sz = snaps.ask_ladder()
    sides = ((snaps.ask_px, snaps.ask_sz), (snaps.bid_px, snaps.bid_sz), (ladder_px, ladder_sz))
    for px, sz in sides:
        assert np.all((sz >= 0) & (sz <= MAX_SIZE))
        np.testing.assert_array_equal(np.isfinite(px), sz > 0)
        assert np.all(px[sz > 0] > 0)
    np.testing.assert_array_equal(ladder_px[:, :, 0], snaps.ask_px)
    np.testing.assert_array_equal(ladder_sz[:, :, 0], snaps.ask_sz)
    empty = (ladder_sz == 0).astype(np.int8)
    assert np.all(np.diff(empty, axis=2) >= 0), "an empty ask level before a shown one"
    steps = np.diff(ladder_px, axis=2)
    assert np.all(steps[np.isfinite(steps)] >= 0), "ask levels out of price order"


def assert_only_known(snaps: Snapshots, known: dict, own: dict, what: str) -> None:
    """Every number loaded is in the undamaged file or was written by the damage itself."""
    ladder_px, ladder_sz = snaps.ask_ladder()
    found = {
        "price": np.concatenate([snaps.ask_px.ravel(), snaps.bid_px.ravel(), ladder_px.ravel()]),
        "size": np.concatenate([snaps.ask_sz.ravel(), snaps.bid_sz.ravel(), ladder_sz.ravel()]),
        "ts": snaps.ts,
        "venue": snaps.venues,
    }
    for kind, values in found.items():
        extra = np.array([own[kind]] if kind in own else [], dtype=known[kind].dtype)
        allowed = np.concatenate([known[kind], extra])
        if kind == "price":
            values = np.unique(values[np.isfinite(values)])
            ok = np.isclose(values[:, None], allowed[None, :], rtol=1e-12, atol=0).any(axis=1)
        else:  # integers: compare exactly (float64 would blur ns timestamps)
            values = np.unique(values).astype(np.int64)
            ok = np.isin(values, allowed)
        assert ok.all(), f"{what}: invented {kind} {values[~ok]}"


# --- what a damaged cell must do --------------------------------------------------------------


def as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def reading(style: str, kind: str, value: str) -> tuple[bool, float | None]:
    """Whether the right loader accepts `value` in a column of `kind`, and the number it reads.

    The number is None where the value means "no quote" (an empty, zero or undefined price).
    """
    number = as_float(value)
    finite = number is not None and math.isfinite(number)
    if kind == "price":
        if value == "":
            return True, None
        if style == "raw":
            ok = DIGITS.fullmatch(value) is not None and int(value) <= UNDEF_PRICE
            number = int(value) / 1e9 if ok and int(value) < UNDEF_PRICE else 0.0
        else:
            ok = finite and 0 <= number < MAX_PRICE
        return ok, (number or None) if ok else None
    if kind in ("size", "venue"):
        top = MAX_SIZE if kind == "size" else MAX_PUBLISHER
        ok = finite and number == int(number) and 0 <= number <= top
        return ok, number if ok else None
    if style == "raw":
        ns = int(value) if DIGITS.fullmatch(value) else None
    else:
        ns = pd.Timestamp(value).value if PRETTY_TS.fullmatch(value) else None
    ok = ns is not None and TS_MIN <= ns < TS_MAX
    return ok, ns if ok else None


def first_ladder_break(base: Base, lines: list[str], line: int) -> int | None:
    """The first ask level of `line` (in `lines`) breaking the ladder rules, None if none does.

    A plain reading of the rules (model.md §1), independent of the loader's: a level is empty
    where its price reads as no quote or its size is 0; an empty level is followed only by empty
    levels, and the levels shown are in non-decreasing price order.
    """
    if base.schema != "mbp-10":
        return None
    cells = lines[line - 1].split(",")
    after_empty, last = False, -math.inf
    for k in range(LEVELS):
        px = reading(base.style, "price", cells[base.columns.index(f"ask_px_{k:02d}")])[1]
        sz = reading(base.style, "size", cells[base.columns.index(f"ask_sz_{k:02d}")])[1]
        if px is None or not sz:
            after_empty = True
        elif after_empty or px < last:
            return k
        else:
            last = px
    return None


def pandas_reads_timestamp(value: str) -> bool:
    """Whether pandas takes `value` for a time in a column of Databento timestamps."""
    column = pd.Series([iso(BASE_NS), value])
    return not pd.to_datetime(column, format="ISO8601", utc=True, errors="coerce").isna().iat[1]


# --- fuzz: random damage ---------------------------------------------------------------------


@dataclass(repr=False)
class Damage:
    """A damaged copy of a base file and what the loader must do with it."""

    what: str
    lines: list[str]
    line: int | None = None  # file line of line-level damage: an error must name it
    expect: str = "error"  # "error", "equal" (to the undamaged load), "loads" or "either"
    own: dict = field(default_factory=dict)  # numbers the damage itself wrote, by kind
    final_newline: bool = True
    trades_change: bool = False
    gzip_cut: bool = False

    def __repr__(self) -> str:
        return f"Damage({self.what!r}, expect={self.expect!r})"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis: short, not every line
        printer.text(repr(self))


def symbol_cut(text: str, cut: int) -> dict:
    """What cutting a line after `cut` characters means: the symbol is the last field."""
    last_comma = text.rindex(",")
    if cut == 1:
        return {}
    if cut <= last_comma:
        return {}
    if cut == last_comma + 1:  # empty symbol: the row's numbers are intact
        return {"expect": "loads"}
    # A shortened symbol ("AA") is another symbol: refused beside the full one, but a file whose
    # every line is cut alike cannot be told from a file of symbol "AA".
    return {"expect": "either"}


def plausible(base: Base, kind: str | None, old: str) -> st.SearchStrategy[str]:
    """Values a real file could hold in such a cell."""
    if kind == "price":
        ticks = st.integers(22_250, 22_310)
        if base.style == "raw":
            return ticks.map(lambda k: str(k * TICK["raw"]))
        return ticks.map(lambda k: repr(round(k * 0.01, 2)))
    if kind == "size":
        return st.integers(0, 5_000).map(str)
    if kind == "venue":
        return st.sampled_from(["2", "5", "7", "9"])
    if kind == "ts":
        ns = int(old) if base.style == "raw" else pd.Timestamp(old).value
        shifted = st.integers(-(10**9), 10**9).map(lambda d: ns + d)
        return shifted.map(str) if base.style == "raw" else shifted.map(iso)
    return st.just("x")


@st.composite
def damaged_cell(draw, base: Base) -> Damage:
    mbp10 = ("ask_px_01", "ask_sz_01", "ask_px_05", "ask_sz_09", "bid_px_05", "bid_sz_09")
    column = draw(st.sampled_from([*KIND, *UNREAD, *(mbp10 if base.schema == "mbp-10" else ())]))
    line = draw(st.integers(2, len(base.lines)))
    old = base.cell(line, column)
    kind = {**KIND, **ASK_DEPTH}.get(column)
    letters = st.text(string.ascii_letters, min_size=1, max_size=6)
    value = draw(st.one_of(st.sampled_from(GARBAGE), letters, plausible(base, kind, old)))
    assume(value != old)
    what = f"{base.path.name} line {line} {column}={value!r}"
    lines = base.with_cell(line, column, value)
    if kind is None:
        return Damage(what, lines, line, "equal")
    ok, number = reading(base.style, kind, value)
    own = {} if number is None else {kind: number}
    if ok and column.startswith("ask_") and first_ladder_break(base, lines, line) is not None:
        ok = False  # a readable cell that breaks the ask ladder's rules
    return Damage(what, lines, line, "either" if ok else "error", own)


@st.composite
def damaged_line(draw, base: Base) -> Damage:
    n = len(base.lines)
    line = draw(st.integers(2, n))
    text, lines = base.lines[line - 1], list(base.lines)
    how = draw(st.sampled_from(["truncate", "drop", "add", "swap", "duplicate", "cross", "cut"]))
    fields = text.split(",")
    k = draw(st.integers(0, len(fields) - 1))
    if how == "truncate":
        cut = draw(st.integers(1, len(text) - 1))
        lines[line - 1] = text[:cut]
        return Damage(f"line {line} cut at {cut}", lines, line, **symbol_cut(text, cut))
    if how == "cut":  # the file ends inside this line, without a newline
        cut = draw(st.integers(1, len(text) - 1))
        damage = Damage(
            f"file cut in line {line} at {cut}",
            [*lines[: line - 1], text[:cut]],
            line,
            final_newline=False,
            trades_change=True,
        )
        return replace(damage, **symbol_cut(text, cut))
    if how in ("drop", "add"):
        lines[line - 1] = ",".join(
            fields[:k] + fields[k + 1 :] if how == "drop" else fields[:k] + ["7"] + fields[k:]
        )
        return Damage(f"{how} field {k} of line {line}", lines, line)
    if how == "swap":
        other = draw(st.integers(2, n).filter(lambda m: m != line))
        lines[line - 1], lines[other - 1] = lines[other - 1], lines[line - 1]
        return Damage(f"swap lines {line} and {other}", lines, None, "equal")
    if how == "duplicate":
        return Damage(f"duplicate line {line}", [*lines[:line], text, *lines[line:]], None, "equal")
    line = draw(st.sampled_from(base.quote_lines))
    ask = base.cell(line, "ask_px_00")
    bid = str(int(ask) + TICK["raw"]) if base.style == "raw" else repr(round(float(ask) + 0.01, 2))
    return Damage(f"crossed quote at line {line}", base.with_cell(line, "bid_px_00", bid), line)


@st.composite
def damaged_file(draw, base: Base) -> Damage:
    how = draw(st.sampled_from(["venue-silent", "empty", "header-only", "gzip-cut"]))
    if how == "venue-silent":
        venue = draw(st.sampled_from(base.known["venue"].tolist()))
        after = draw(st.sampled_from(base.known["ts"].tolist()))
        df = pd.read_csv(base.path, dtype=str, keep_default_na=False)
        gone = (df.publisher_id.astype(int) == venue) & (
            ts_numbers(df.ts_event, base.style) > after
        )
        lines = [base.lines[0]] + [t for t, g in zip(base.lines[1:], gone, strict=True) if not g]
        return Damage(
            f"venue {venue} silent after {after}", lines, None, "loads", trades_change=True
        )
    if how == "empty":
        return Damage("empty file", [])
    if how == "header-only":
        return Damage("header only", [base.lines[0]])
    return Damage("truncated gzip", list(base.lines), gzip_cut=True)


@st.composite
def damages(draw, bases: dict) -> tuple[Base, Damage, dict]:
    base = bases[draw(st.sampled_from(sorted(bases)))]
    damage = draw(st.one_of(damaged_cell(base), damaged_line(base), damaged_file(base)))
    encoding = {
        "crlf": draw(st.booleans()),
        "bom": draw(st.booleans()),
        "gz": draw(st.booleans()) or damage.gzip_cut,
    }
    return base, damage, encoding


_names = itertools.count()


@settings(max_examples=1500, deadline=None, database=None)
@given(data=st.data())
def test_fuzz_damage_is_rejected_with_its_place_or_loaded_faithfully(bases, data):
    """Random damage: a DataError naming file and line, or snapshots holding no invented number."""
    base, damage, encoding = data.draw(damages(bases))
    path = base.path.parent / f"fuzz{next(_names)}.csv"
    raw = encode(damage.lines, final_newline=damage.final_newline, **encoding)
    path.write_bytes(raw[: len(raw) // 2] if damage.gzip_cut else raw)
    what = f"{damage.what} {encoding}"
    try:
        snaps, summary = load_snapshots(path)
    except DataError as exc:
        assert damage.expect in ("error", "either"), f"{what}: unexpected {exc}"
        assert str(path) in str(exc), f"{what}: {exc}"
        if damage.line is not None:
            assert f"{path}:{damage.line}: " in str(exc), f"{what}: {exc}"
        return
    assert damage.expect != "error", f"{what}: loaded, expected a DataError"
    assert_well_formed(snaps)
    if damage.expect == "equal":
        assert snaps.equals(base.snaps), what
    assert_only_known(snaps, base.known, damage.own, what)
    if not damage.trades_change:
        assert summary.traded_shares == base.summary.traded_shares, what


# --- targeted: one damaged cell ---------------------------------------------------------------


def damaged(tmp_path: Path, base: Base, column: str, value: str) -> tuple[Path, int]:
    """Write `base` with one cell of its `line` replaced; return the path and that line."""
    path = write(tmp_path / "bad.csv", base.with_cell(base.line, column, value))
    return path, base.line


def cell_cases(styles, columns, values) -> list:
    """pytest params (style, column, value)."""
    return [
        pytest.param(s, c, v, id=f"{s}-{c}-{v!r}") for s in styles for c in columns for v in values
    ]


def assert_cell_rejected(bases, tmp_path, style: str, column: str, value: str) -> None:
    """Loading the mbp-10 file of `style` with that cell damaged names file, line and column."""
    path, line = damaged(tmp_path, bases["mbp-10", style], column, value)
    with pytest.raises(DataError, match=at(path, line, column)):
        load_snapshots(path)


PRICES, SIZES = ("ask_px_00", "bid_px_00"), ("ask_sz_00", "bid_sz_00")
PRICE_GARBAGE = ("abc", "NaN", "inf", "-inf", "1e400", "-5")
SIZE_GARBAGE = ("abc", "NaN", "inf", "-inf", "1e400", "-5", "1.5", str(10**15), str(10**20), "")
TS_GARBAGE = ("abc", "NaN", "", "-5", "1.5", "1722519392.5", str(10**15), str(10**20))
OTHER_TS_FORMATS = ("2024/08/01 13:36:32", "2024-08-01 13:36:32.1", "2024-08-01", "now")


@pytest.mark.parametrize(("style", "column", "value"), cell_cases(STYLES, PRICES, PRICE_GARBAGE))
def test_bad_price_cell_names_file_line_and_column(bases, tmp_path, style, column, value):
    """A non-number, non-finite or negative price is a DataError at its line and column."""
    assert_cell_rejected(bases, tmp_path, style, column, value)


@pytest.mark.parametrize(
    ("style", "column", "value"), cell_cases(["raw"], PRICES, ["1.5", "222.81", "1e5"])
)
def test_decimal_price_in_raw_file_names_file_line_and_column(
    bases, tmp_path, style, column, value
):
    """A raw-style file holds integer prices in 1e-9 dollars: a decimal cell is an error."""
    assert_cell_rejected(bases, tmp_path, style, column, value)


@pytest.mark.parametrize(
    ("style", "column", "value"),
    # ask only: in bid_px_00 such a price is caught, by luck, as a crossed quote
    cell_cases(["pretty"], ["ask_px_00"], [str(10**15), "222810000000"])
    + cell_cases(["raw"], PRICES, [str(10**20)]),
)
def test_price_beyond_databento_range_names_file_line_and_column(
    bases, tmp_path, style, column, value
):
    """No Databento price exceeds int64 max in 1e-9 dollars: such a cell is corrupt."""
    assert_cell_rejected(bases, tmp_path, style, column, value)


@pytest.mark.parametrize(("schema", "column"), [("mbp-1", "ask_px_00"), ("mbp-10", "ask_px_09")])
def test_raw_price_is_read_in_units_of_1e9(bases, tmp_path, schema, column):
    """A large but valid raw price (10**15 = 1,000,000.00 dollars) is taken as written (at the
    deepest ask level of an MBP-10 line, where it keeps the ladder in order)."""
    base = bases[schema, "raw"]
    path = write(tmp_path / "big.csv", base.with_cell(base.deep_line, column, str(10**15)))
    snaps, _ = load_snapshots(path)
    assert np.nanmax(snaps.ask_ladder()[0]) == 1e6
    assert_only_known(snaps, base.known, {"price": 1e6}, "raw 10**15")


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("side", ["ask", "bid"])
def test_empty_zero_or_undefined_price_means_no_quote(bases, tmp_path, style, side):
    """An empty, zero or undefined price and a zero size all load as "no quote on that side".

    On the ask side every level is emptied: an empty level is followed only by empty levels.
    """
    base = bases["mbp-10", style]
    levels = range(LEVELS if side == "ask" else 1)
    variants = [("px", ""), ("px", "0"), ("sz", "0")]
    if style == "raw":
        variants.append(("px", str(UNDEF_PRICE)))
    loaded = [
        load_snapshots(
            write(
                tmp_path / f"v{i}.csv",
                base.with_cells(base.deep_line, {f"{side}_{c}_{k:02d}": v for k in levels}),
            )
        )[0]
        for i, (c, v) in enumerate(variants)
    ]
    assert all(snaps.equals(loaded[0]) for snaps in loaded)
    assert not loaded[0].equals(base.snaps)


# --- targeted and fuzz: the ask ladder of MBP-10 files ----------------------------------------


def level_cell(base: Base, line: int, k: int, field: str = "px") -> str:
    return base.cell(line, f"ask_{field}_{k:02d}")


def price_text(base: Base, dollars: float) -> str:
    """A price cell in the file's style."""
    if base.style == "raw":
        return str(round(dollars * 1e9))
    return repr(round(dollars, 2))


def level_price(base: Base, line: int, k: int) -> float:
    text = level_cell(base, line, k)
    return int(text) / 1e9 if base.style == "raw" else float(text)


def kept_row(updates, base: Base, line: int) -> int:
    """Index in `updates` of the row of a quote line (alone at its ts_event and venue)."""
    ts = ts_numbers(pd.Series([base.cell(line, "ts_event")]), base.style)[0]
    venue = int(base.cell(line, "publisher_id"))
    (rows,) = np.nonzero((updates.ts == ts) & (updates.venue == venue))
    assert len(rows) == 1
    return int(rows[0])


def test_mbp10_ladder_loads_as_written(bases):
    """Every ask level of a line showing all ten, as the updates and snapshots hold it."""
    for style in STYLES:
        base = bases["mbp-10", style]
        updates, _ = load_updates(base.path)
        assert updates.n_levels == LEVELS
        for line in base.deep_lines:
            i = kept_row(updates, base, line)
            want_px = [level_price(base, line, k) for k in range(LEVELS)]
            want_sz = [int(level_cell(base, line, k, "sz")) for k in range(LEVELS)]
            assert updates.ask_depth_px[i].tolist() == want_px
            assert updates.ask_depth_sz[i].tolist() == want_sz
            assert updates.ask_px[i] == want_px[0] and updates.ask_sz[i] == want_sz[0]
        assert base.snaps.n_levels == LEVELS
    assert bases["mbp-1", "raw"].snaps.n_levels == 1


@pytest.mark.parametrize("style", STYLES)
def test_ask_level_below_the_one_before_names_file_line_and_column(bases, tmp_path, style):
    """Levels must be in non-decreasing price order: a level priced below the one above is
    refused at its line, in its price column."""
    base = bases["mbp-10", style]
    line = base.deep_line
    lower = price_text(base, level_price(base, line, 2) - 0.01)
    path = write(tmp_path / "order.csv", base.with_cell(line, "ask_px_03", lower))
    with pytest.raises(DataError, match=at(path, line, "ask_px_03") + "ask level 3 shows .* below "
                       "level 2's price .*non-decreasing price order"):  # fmt: skip
        load_snapshots(path)


@pytest.mark.parametrize("level", [0, 2, 8])
@pytest.mark.parametrize(
    ("style", "how"),
    [(style, how) for style in STYLES for how in ("size 0", "price empty", "price 0")]
    + [("raw", "price undefined")],  # pretty files leave an undefined price empty
)
def test_ask_level_after_an_empty_level_names_file_line_and_column(
    bases, tmp_path, style, level, how
):
    """An empty level (empty, zero or undefined price, or size 0) is followed only by empty
    levels: the first level shown after one is refused at its line, in its price column."""
    base = bases["mbp-10", style]
    column, value = {
        "size 0": (f"ask_sz_{level:02d}", "0"),
        "price empty": (f"ask_px_{level:02d}", ""),
        "price 0": (f"ask_px_{level:02d}", "0"),
        "price undefined": (f"ask_px_{level:02d}", str(UNDEF_PRICE)),
    }[how]
    line = base.deep_line
    path = write(tmp_path / "gap.csv", base.with_cell(line, column, value))
    after = level + 1
    pattern = at(path, line, f"ask_px_{after:02d}") + f"ask level {after} shows .* after an "
    with pytest.raises(DataError, match=pattern + f"empty level {level}: an empty ask level"):
        load_snapshots(path)


@pytest.mark.parametrize("style", STYLES)
def test_ask_ladder_may_repeat_a_price_and_end_early(bases, tmp_path, style):
    """Two levels at one price load (non-decreasing order), and so do levels emptied from the
    bottom of the ladder up: NaN price and size 0 there."""
    base = bases["mbp-10", style]
    line = base.deep_line
    repeat = level_cell(base, line, 2)
    lines = base.with_cells(
        line, {"ask_px_03": repeat, "ask_sz_07": "0", "ask_px_08": "", "ask_sz_09": "0"}
    )
    updates, _ = load_updates(write(tmp_path / "short.csv", lines))
    i = kept_row(updates, base, line)
    px, sz = updates.ask_depth_px[i], updates.ask_depth_sz[i]
    assert px[3] == px[2] == level_price(base, line, 2)
    assert np.isnan(px[7:]).all() and (sz[7:] == 0).all()
    assert np.isfinite(px[:7]).all() and (sz[:7] > 0).all()
    assert_well_formed(build_snapshots(updates))


@pytest.mark.parametrize(
    "header_change",
    [("ask_sz_04,", ""), ("ask_px_00,", "")],
    ids=["a level's size", "level 0's price"],
)
def test_header_missing_a_ladder_column_is_refused(bases, tmp_path, header_change):
    base = bases["mbp-10", "pretty"]
    old, new = header_change
    column = old.rstrip(",")
    # the same column left out of every line keeps the field counts right
    k = base.columns.index(column)
    lines = [",".join(c for j, c in enumerate(t.split(",")) if j != k) for t in base.lines]
    assert column not in lines[0].split(",")
    path = write(tmp_path / "header.csv", lines)
    with pytest.raises(DataError, match=re.escape(f"{path}: missing columns ['{column}']")):
        load_snapshots(path)


@st.composite
def ladder_damage(draw, bases: dict) -> tuple[Base, int, str, str]:
    """A quote line of an MBP-10 file and one of its ask cells with a value a real book could
    show there, or an empty one: (base, line, column, value)."""
    base = bases["mbp-10", draw(st.sampled_from(STYLES))]
    line = draw(st.sampled_from(base.quote_lines))
    k = draw(st.integers(0, LEVELS - 1))
    if draw(st.booleans()):
        column = f"ask_px_{k:02d}"
        shown = [level_price(base, line, j) for j in range(LEVELS) if level_cell(base, line, j)]
        lo, hi = round(min(shown) * 100), round(max(shown) * 100)
        ticks = st.integers(lo - 3, hi + 3).map(lambda t: price_text(base, t / 100))
        value = draw(st.one_of(ticks, st.sampled_from(["", "0"])))
    else:
        column = f"ask_sz_{k:02d}"
        value = str(draw(st.one_of(st.just(0), st.integers(1, 900))))
    return base, line, column, value


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_fuzz_ask_ladder_is_refused_at_its_break_or_loaded_as_written(bases, data):
    """One ask cell of a quote line changed: refused at the first level breaking the ladder
    rules (by a plain reading of them), or at level 0 for a crossed quote, else loaded with the
    line's whole ladder as written."""
    base, line, column, value = data.draw(ladder_damage(bases))
    lines = base.with_cell(line, column, value)
    path = write(base.path.parent / f"ladder{next(_names)}.csv", lines)
    what = f"{base} line {line} {column}={value!r}"
    broken = first_ladder_break(base, lines, line)
    cells = lines[line - 1].split(",")
    ask = reading(base.style, "price", cells[base.columns.index("ask_px_00")])[1]
    ask_sz = int(cells[base.columns.index("ask_sz_00")])
    bid = reading(base.style, "price", base.cell(line, "bid_px_00"))[1]
    if broken is not None:
        event("ladder broken")
        with pytest.raises(DataError, match=at(path, line, f"ask_px_{broken:02d}")):
            load_updates(path)
        return
    if ask is not None and ask_sz > 0 and bid is not None and bid > ask:
        event("crossed")
        with pytest.raises(DataError, match=at(path, line, "bid_px_00") + "crossed quote"):
            load_updates(path)
        return
    event("loaded")
    updates, _ = load_updates(path)
    i = kept_row(updates, base, line)
    for k in range(LEVELS):
        px = reading(base.style, "price", cells[base.columns.index(f"ask_px_{k:02d}")])[1]
        sz = int(cells[base.columns.index(f"ask_sz_{k:02d}")])
        got_px, got_sz = updates.ask_depth_px[i, k], updates.ask_depth_sz[i, k]
        if px is None or sz == 0:
            assert np.isnan(got_px) and got_sz == 0, (what, k)
        else:
            assert got_px == px and got_sz == sz, (what, k)
    assert_well_formed(build_snapshots(updates))


@pytest.mark.parametrize(("style", "column", "value"), cell_cases(STYLES, SIZES, SIZE_GARBAGE))
def test_bad_size_cell_names_file_line_and_column(bases, tmp_path, style, column, value):
    """A size that is not a whole number of shares in [0, MAX_SIZE], or empty, is a DataError."""
    assert_cell_rejected(bases, tmp_path, style, column, value)


@pytest.mark.parametrize(
    ("style", "column", "value"),
    cell_cases(["pretty"], ["ts_event"], TS_GARBAGE + ("1722519392000000000",))
    + cell_cases(["raw"], ["ts_event"], TS_GARBAGE + ("2024-08-01T13:36:32Z",)),
)
def test_bad_timestamp_names_file_line_and_column(bases, tmp_path, style, column, value):
    """A ts_event that is no timestamp of the file's style, or before 2000, is a DataError."""
    assert_cell_rejected(bases, tmp_path, style, column, value)


@pytest.mark.parametrize(
    ("style", "column", "value"), cell_cases(["pretty"], ["ts_event"], OTHER_TS_FORMATS)
)
def test_timestamp_in_another_format_names_file_line_and_column(
    bases, tmp_path, style, column, value
):
    """Databento writes 2024-08-01T13:36:32.491911683Z: other forms (no zone, 'now') are errors."""
    assert_cell_rejected(bases, tmp_path, style, column, value)


@pytest.mark.parametrize(
    ("style", "column", "value"),
    cell_cases(STYLES, ["publisher_id"], ["abc", "", "inf", "-5", "1.5", str(10**15)]),
)
def test_bad_publisher_id_names_file_line_and_column(bases, tmp_path, style, column, value):
    """publisher_id must be a whole number in [0, 65535]: anything else is a DataError."""
    assert_cell_rejected(bases, tmp_path, style, column, value)


# --- targeted: damaged lines and files --------------------------------------------------------

BOTH = pytest.mark.parametrize(("schema", "style"), [(s, t) for s in SCHEMAS for t in STYLES])


@BOTH
@pytest.mark.parametrize("how", ["truncate", "drop", "add"])
def test_wrong_field_count_names_the_line(bases, tmp_path, schema, style, how):
    """A truncated line, a dropped or an added field: 'malformed line' at that line."""
    base = bases[schema, style]
    line, lines = base.line, list(base.lines)
    fields = lines[line - 1].split(",")
    lines[line - 1] = {
        "truncate": lines[line - 1][: len(lines[line - 1]) // 2],
        "drop": ",".join(fields[:3] + fields[4:]),
        "add": ",".join([*fields, "x"]),
    }[how]
    path = write(tmp_path / "cut.csv", lines)
    pattern = at(path, line) + rf"malformed line: \d+ fields, expected {len(base.columns)}"
    with pytest.raises(DataError, match=pattern):
        load_snapshots(path)


@pytest.mark.parametrize("final_newline", [True, False])
def test_line_of_one_character_names_the_line(bases, tmp_path, final_newline):
    """A line cut to its first character is a malformed line, not a blank one."""
    base, line = bases["mbp-1", "raw"], 20
    lines = [*base.lines[: line - 1], base.lines[line - 1][:1]]
    lines += list(base.lines[line:]) if final_newline else []
    path = write(tmp_path / "one.csv", lines, final_newline=final_newline)
    with pytest.raises(DataError, match=at(path, line) + "malformed line: 1 fields"):
        load_snapshots(path)


@BOTH
def test_file_cut_mid_line_names_the_last_line(bases, tmp_path, schema, style):
    """A file that ends inside a line (no newline) is a DataError at that line."""
    base, line = bases[schema, style], 20
    text = base.lines[line - 1]
    path = write(
        tmp_path / "cut.csv", [*base.lines[: line - 1], text[: len(text) // 2]], final_newline=False
    )
    with pytest.raises(DataError, match=at(path, line) + "malformed line"):
        load_snapshots(path)


def test_file_cut_inside_the_symbol_names_the_line(bases, tmp_path):
    """A file ending in 'SYNTH-AA' instead of 'SYNTH-AAPL': the error names that line, not just
    two symbols."""
    base, line = bases["mbp-1", "pretty"], 20
    path = write(
        tmp_path / "cut.csv",
        [*base.lines[: line - 1], base.lines[line - 1][:-2]],
        final_newline=False,
    )
    with pytest.raises(DataError, match=rf"'SYNTH-AA' \(1 rows from line {line}\)"):
        load_snapshots(path)


def test_swapped_lines_are_sorted_and_counted(tmp_path):
    """Two lines out of ts_event order load as if in order and count one repair."""
    rows = [row(t, 2, 10.0, 10.1 + t / 100, 100, 100, seq=t) for t in range(4)]
    in_order, _ = load_snapshots(write_csv(tmp_path / "a.csv", rows))
    swapped, summary = load_snapshots(
        write_csv(tmp_path / "b.csv", [rows[0], rows[2], rows[1], rows[3]])
    )
    assert swapped.equals(in_order)
    assert summary.repaired == {"rows_out_of_ts_event_order_sorted": 1}


@BOTH
def test_swapped_generated_lines_load_unchanged(bases, tmp_path, schema, style):
    """Swapping the first and last data lines of a generated file changes no snapshot."""
    base = bases[schema, style]
    lines = list(base.lines)
    lines[1], lines[-1] = lines[-1], lines[1]
    snaps, summary = load_snapshots(write(tmp_path / "swap.csv", lines))
    assert snaps.equals(base.snaps)
    assert summary.repaired["rows_out_of_ts_event_order_sorted"] >= 1


@BOTH
def test_duplicate_quote_line_is_dropped_and_counted(bases, tmp_path, schema, style):
    """A repeated quote line changes no snapshot and is counted as skipped."""
    base, line = bases[schema, style], bases[schema, style].line
    lines = [*base.lines[:line], base.lines[line - 1], *base.lines[line:]]
    snaps, summary = load_snapshots(write(tmp_path / "dup.csv", lines))
    assert snaps.equals(base.snaps)
    assert sum(summary.skipped.values()) == sum(base.summary.skipped.values()) + 1


@BOTH
def test_duplicate_trade_line_is_not_counted_twice(bases, tmp_path, schema, style):
    """A repeated trade line (same sequence) must not add its shares to traded volume again."""
    base = bases[schema, style]
    line = min(base.trade_lines)
    lines = [*base.lines[:line], base.lines[line - 1], *base.lines[line:]]
    snaps, summary = load_snapshots(write(tmp_path / "dup.csv", lines))
    assert summary.traded_shares == base.summary.traded_shares
    assert snaps.equals(base.snaps)


@BOTH
def test_crossed_quote_names_line_or_is_skipped_and_counted(bases, tmp_path, schema, style):
    """Bid above ask in one row: DataError at its line, or with crossed='skip' one skipped row."""
    base, line = bases[schema, style], bases[schema, style].line
    ask = base.cell(line, "ask_px_00")
    bid = str(int(ask) + TICK["raw"]) if style == "raw" else repr(round(float(ask) + 0.01, 2))
    path = write(tmp_path / "x.csv", base.with_cell(line, "bid_px_00", bid))
    with pytest.raises(DataError, match=at(path, line, "bid_px_00") + "crossed quote"):
        load_snapshots(path)
    with pytest.warns(UserWarning, match="skipped 1 crossed"):
        _, summary = load_snapshots(path, crossed="skip")
    assert summary.skipped["crossed_quote"] == 1


@pytest.mark.parametrize("schema", SCHEMAS)
def test_venue_going_silent_keeps_its_last_quote(bases, tmp_path, schema):
    """A venue whose rows stop keeps its last quote (model.md §2 rule 4); others are unchanged."""
    base, venue = bases[schema, "pretty"], 2
    df = pd.read_csv(base.path, dtype=str, keep_default_na=False)
    ts = ts_numbers(df.ts_event, "pretty")
    after = int(np.median(ts))
    gone = (df.publisher_id.astype(int) == venue).to_numpy() & (ts > after)
    lines = [base.lines[0]] + [t for t, g in zip(base.lines[1:], gone, strict=True) if not g]
    snaps, summary = load_snapshots(write(tmp_path / "silent.csv", lines))
    assert venue in summary.venues and snaps.venues.tolist() == base.snaps.venues.tolist()
    rows = np.searchsorted(base.snaps.ts, snaps.ts)
    assert np.array_equal(base.snaps.ts[rows], snaps.ts)
    j = snaps.venues.tolist().index(venue)
    others = [k for k in range(snaps.n_venues) if k != j]
    last = np.searchsorted(base.snaps.ts, after, side="right") - 1
    expected = np.where(snaps.ts <= after, rows, last)  # venue j: frozen after `after`
    for name in ("ask_px", "ask_sz", "bid_px", "bid_sz"):
        got, want = getattr(snaps, name), getattr(base.snaps, name)
        np.testing.assert_array_equal(got[:, others], want[rows][:, others])
        np.testing.assert_array_equal(got[:, j], want[expected, j])


ENCODINGS = [
    pytest.param(enc, clock)
    for enc in ("gz", "crlf", "bom", "crlf+bom+gz")
    for clock in ("ts_event", "ts_recv")
]


@BOTH
@pytest.mark.parametrize(("encoding", "clock"), ENCODINGS)
def test_encodings_load_like_the_plain_file(bases, tmp_path, schema, style, encoding, clock):
    """gzip, CRLF line endings and a UTF-8 BOM change nothing that is loaded, on either clock."""
    base = bases[schema, style]
    options = {k: k in encoding.split("+") for k in ("gz", "crlf", "bom")}
    path = write(tmp_path / "enc.csv", list(base.lines), **options)
    assert load_snapshots(path, clock=clock)[0].equals(load_snapshots(base.path, clock=clock)[0])


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_gzip_is_a_data_error(bases, tmp_path, keep):
    """A gzip file cut short is a DataError naming the file."""
    data = encode(list(bases["mbp-10", "pretty"].lines), gz=True)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match=re.escape(str(path))):
        load_snapshots(path)


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        ([], "the file is empty"),
        (["HEADER"], "the file has a header but no rows"),
        (["HEADER", ""], "the file has a header but no rows"),
    ],
)
def test_empty_and_header_only_files(bases, tmp_path, lines, pattern):
    """An empty file and a header without rows are DataErrors naming the file."""
    header = bases["mbp-10", "raw"].lines[0]
    path = write(tmp_path / "e.csv", [header if x == "HEADER" else x for x in lines])
    with pytest.raises(DataError, match=re.escape(f"{path}: ") + pattern):
        load_snapshots(path)


def test_line_numbers_count_blank_lines(bases, tmp_path):
    """After a blank line, an error still names the file line of the bad cell."""
    base = bases["mbp-1", "pretty"]
    lines = base.with_cell(base.line, "ask_sz_00", "-5")
    lines.insert(2, "")
    path = write(tmp_path / "blank.csv", lines)
    with pytest.raises(DataError, match=at(path, base.line + 1, "ask_sz_00")):
        load_snapshots(path)


def test_line_numbers_with_a_chosen_symbol(tmp_path):
    """With symbol= chosen in a two-symbol file, an error names the file line of the bad cell."""
    path = write_csv(
        tmp_path / "two.csv",
        [
            row(0, 2, 10.0, 10.1, 1, 1, symbol="AAPL"),
            row(1, 2, 10.0, 10.1, 1, 1, symbol="AAPL"),
            row(2, 2, 20.0, 20.1, 1, 1, symbol="MSFT"),
            row(3, 2, 20.0, 20.1, 1, -5, symbol="MSFT"),
        ],
    )
    with pytest.raises(DataError, match=at(path, 5, "ask_sz_00")):
        load_snapshots(path, symbol="MSFT")


def test_header_with_spaces_after_commas(bases, tmp_path):
    """'ts_recv, ts_event, ...' is read like the plain header (names are stripped)."""
    base = bases["mbp-1", "pretty"]
    path = write(tmp_path / "spaces.csv", [", ".join(base.columns), *base.lines[1:]])
    assert load_snapshots(path)[0].equals(base.snaps)


def test_fuzz_helpers_agree_with_the_undamaged_files(bases):
    """The fuzz oracle's known numbers cover every undamaged snapshot: no false alarms."""
    for base in bases.values():
        assert_well_formed(base.snaps)
        assert_only_known(base.snaps, base.known, {}, base.path.name)
        assert base.snaps.ts[0] >= BASE_NS and len(base.quote_lines) > 5 and base.trade_lines
