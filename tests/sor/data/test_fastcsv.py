"""The fast reader (`sor.data.fastcsv`) against the precise one (`sor.data.csvfile.Cells`).

Where the fast reader answers, every array and the summary equal the precise reader's; where it
cannot vouch for a file or a cell it declines, and `load_updates` answers as the precise reader
does, errors word for word.
"""

from __future__ import annotations

import gzip
import itertools
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sor.data.fastcsv import Declined, _cells, _iso_ns
from sor.data.loader import load_updates
from sor.data.snapshots import QuoteUpdates, build_snapshots
from sor.errors import DataError
from sor.synth.generate import generate
from tests.csvdata import SHARED_DATA, row, to_raw_style, write_csv
from tests.sor.data.test_loader_fuzz import bases, damages, encode  # noqa: F401 (a fixture)

SHARED_FILES = sorted((SHARED_DATA / "real").glob("*.csv.gz")) + [SHARED_DATA / "l1_day_head5.csv"]


def assert_same_updates(a: QuoteUpdates, b: QuoteUpdates) -> None:
    for f in fields(QuoteUpdates):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        else:
            assert x == y, f.name


def assert_readers_agree(path: Path, **options) -> None:
    """The fast reader answers (no fallback) with exactly the precise reader's arrays."""
    fast, fast_summary = load_updates(path, reader="fast", **options)
    precise, precise_summary = load_updates(path, reader="precise", **options)
    assert_same_updates(fast, precise)
    assert build_snapshots(fast).equals(build_snapshots(precise))
    assert fast_summary == precise_summary


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("generated")
    files = {}
    for schema, style in itertools.product(("mbp-1", "mbp-10"), ("pretty", "raw")):
        name = f"{schema}_{style}"
        files[name] = folder / f"{name}.csv"
        generate(files[name], n_events=20_000, schema=schema, style=style, seed=3)
    files["mbp-10_pretty_gz"] = folder / "mbp-10_pretty.csv.gz"
    generate(files["mbp-10_pretty_gz"], n_events=20_000, schema="mbp-10", seed=3)
    return files


@pytest.mark.parametrize(
    "name", ["mbp-1_pretty", "mbp-1_raw", "mbp-10_pretty", "mbp-10_raw", "mbp-10_pretty_gz"]
)
def test_fast_and_precise_readers_give_identical_arrays_on_generated_files(generated, name):
    assert_readers_agree(generated[name])


@pytest.mark.parametrize("options", [{"clock": "ts_recv"}, {"start": "13:37", "end": "13:38"}])
def test_fast_and_precise_readers_agree_with_the_other_options(generated, options):
    assert_readers_agree(generated["mbp-10_pretty"], **options)
    assert_readers_agree(generated["mbp-1_raw"], **options)


@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_fast_and_precise_readers_give_identical_arrays_on_real_files(path):
    if not path.exists():
        pytest.skip(f"{path} is not present")
    assert_readers_agree(path)


def test_raw_timestamps_of_real_data_read_alike(tmp_path):
    src = SHARED_DATA / "real" / "taq_2018-01-02_mbp1_trades.csv.gz"
    if not src.exists():
        pytest.skip(f"{src} is not present")
    plain = tmp_path / "taq.csv"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    assert_readers_agree(to_raw_style(plain, tmp_path / "taq_raw.csv"))


def outcome(path: Path, reader: str) -> tuple[str, object]:
    """("error", message), ("declined", None) or ("loaded", (updates, summary))."""
    try:
        return "loaded", load_updates(path, reader=reader)
    except DataError as exc:
        return "error", str(exc)
    except Declined:
        return "declined", None


def assert_same_outcome(a: tuple[str, object], b: tuple[str, object]) -> None:
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a[1] == b[1]
    elif a[0] == "loaded":
        (ua, sa), (ub, sb) = a[1], b[1]  # type: ignore[misc]
        assert_same_updates(ua, ub)
        assert sa == sb


_names = itertools.count()


@settings(max_examples=400, deadline=None, database=None)
@given(data=st.data())
def test_fuzz_fast_reader_answers_as_the_precise_one_or_declines(bases, data):  # noqa: F811
    """On randomly damaged files: the default load answers exactly as the precise reader (the
    same error message, or the same arrays), and the fast reader alone either declines or
    loads those same arrays; it never loads a file the precise reader refuses."""
    base, damage, encoding = data.draw(damages(bases))
    path = base.path.parent / f"diff{next(_names)}.csv"
    raw = encode(damage.lines, final_newline=damage.final_newline, **encoding)
    path.write_bytes(raw[: len(raw) // 2] if damage.gzip_cut else raw)
    precise = outcome(path, "precise")
    assert_same_outcome(outcome(path, "auto"), precise)
    fast = outcome(path, "fast")
    event(f"fast reader: {fast[0]}")
    if fast[0] != "declined":
        assert_same_outcome(fast, precise)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("ask_sz_00", "0x10"),  # pyarrow alone would read hexadecimal
        ("bid_sz_00", "+5"),
        ("publisher_id", " 2"),
        ("ask_px_00", "-1.5"),
        ("ask_px_00", "1e400"),
        ("ts_event", "2024-02-30T13:36:32.000000000Z"),
        ("ts_event", "2024-08-01T25:61:61.000000000Z"),
        ("sequence", "9223372036854775808"),
    ],
)
def test_cells_the_fast_reader_cannot_vouch_for_are_named_by_the_precise_reader(
    tmp_path, column, value
):
    lines = [row(t, 2 + t % 3, 100.0, 100.01, 100, 200, seq=t + 1) for t in range(10)]
    path = write_csv(tmp_path / "bad.csv", lines)
    text = path.read_text().splitlines()
    header = text[0].split(",")
    cells = text[5].split(",")
    cells[header.index(column)] = value
    text[5] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(Declined):
        load_updates(path, reader="fast")
    with pytest.raises(DataError, match=f"^{path}:6: column '{column}': "):
        load_updates(path)


def test_a_decimal_with_an_exponent_is_read_by_the_precise_reader(tmp_path):
    lines = [row(t, 2, 100.0, 100.01, 100, 200, seq=t + 1) for t in range(5)]
    path = write_csv(tmp_path / "exp.csv", [*lines, row(9, 3, "1.0001e2", "1.0002E+2", 1, 1)])
    with pytest.raises(Declined):
        load_updates(path, reader="fast")
    updates, _ = load_updates(path)
    assert updates.bid_px[-1] == 100.01 and updates.ask_px[-1] == 100.02


def iso_text(ns: np.ndarray) -> list[str]:
    stamps = pd.to_datetime(ns, unit="ns", utc=True)
    return [
        s.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{n % 1000:03d}Z"
        for s, n in zip(stamps, ns, strict=True)
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.integers(
            int(pd.Timestamp("2000-01-01", tz="UTC").value),
            int(pd.Timestamp("2100-01-01", tz="UTC").value) - 1,
        ),
        min_size=1,
        max_size=50,
    )
)
def test_iso_parser_gives_pandas_ns(values):
    import pyarrow as pa

    ns = np.array(values, dtype=np.int64)
    text = iso_text(ns)
    got = _iso_ns(*_cells(pa.array(text)))
    expected = pd.to_datetime(pd.Series(text), format="ISO8601", utc=True).astype("int64")
    assert np.array_equal(got, ns) and np.array_equal(got, expected.to_numpy())


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30T00:00:00.000000000Z",
        "2023-02-29T00:00:00.000000000Z",
        "2100-02-29T00:00:00.000000000Z",
        "2024-13-01T00:00:00.000000000Z",
        "2024-00-01T00:00:00.000000000Z",
        "2024-04-31T00:00:00.000000000Z",
        "2024-08-01T24:00:00.000000000Z",
        "2024-08-01T23:60:00.000000000Z",
        "2024-08-01T23:59:60.000000000Z",
        "1999-12-31T23:59:59.999999999Z",
        "2024-08-01T13:36:32.000000000+00:00",
        "2024-08-01 13:36:32.000000000Z",
    ],
)
def test_iso_parser_declines_what_is_not_a_time_it_can_vouch_for(text):
    import pyarrow as pa

    with pytest.raises(Declined):
        _iso_ns(*_cells(pa.array([text])))


def test_leap_day_is_read():
    import pyarrow as pa

    got = _iso_ns(*_cells(pa.array(["2024-02-29T12:00:00.000000001Z"])))
    assert got[0] == pd.Timestamp("2024-02-29T12:00:00.000000001Z").value
