"""The generated files are byte for byte those of the pure-Python generators.

The digests were computed with the generators before their formatting and (legacy) simulation
were compiled: the same arguments must keep giving the same file, whatever the chunking, the
writer thread or the formatter. A gzip file is checked as its text (pinned) and as the gzip of
that text written in one piece with the same settings, which is what the generators wrote
before (the compressed bytes themselves depend on the zlib build).
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import pytest

from sor.synth.generate import VenueProfile, generate
from sor.synth.profiles import write

# (profile, rows, days, seed, style, schema, suffix) ->
#     (sha256 of the text, (trades, distinct ts_event, first ts_event, last ts_event))
WRITE_CASES = {
    ("taq-2018", 150000, 2, 1, "pretty", None, "csv"): (
        "5abe84ab31ce040daab16a742ad4eb3da8fc57bf7d0e8d4eaaa98bf2b0d221ab",
        (38592, 150000, 1514903400030245188, 1515006940794375867),
    ),
    ("taq-2018", 5000, 3, 2, "raw", None, "csv"): (
        "bca068c0019140a9f413f394852125c119aa8b1962faf3f87dfac79ce3e476d5",
        (1372, 5000, 1514903400028576837, 1515076567453956444),
    ),
    ("taq-2018", 4000, 2, 3, "pretty", "mbp-10", "csv"): (
        "5e11d849ddc0b5629b6da52b284d7d259320705a1ec3afbbf6dee72ac5483c36",
        (1051, 4000, 1514903400099685169, 1514990240730607717),
    ),
    ("taq-2018", 4000, 2, 3, "raw", None, "csv.gz"): (
        "29aa2b82dec325ecf65299c73e6220196d1f5b47ad1da241244c1c9d59d073ec",
        (990, 4000, 1514903400099685169, 1514990263273504373),
    ),
    ("xnas-aapl", 70000, 1, 4, "pretty", None, "csv"): (
        "a0bdafe7e5b4c18c846bae62a71f576d243a17f63df6f847ba0369a1d2bd16ae",
        (4026, 70000, 1729511640028181815, 1729515780926280183),
    ),
    ("xnas-aapl", 6000, 3, 5, "raw", None, "csv.gz"): (
        "9c6c57bbf2b7393970e1c38d93efc5d499a98dc8a030dcacf477f9e6ea35f15b",
        (336, 6000, 1729511643217216374, 1729686121786333196),
    ),
    ("xnas-aapl", 3000, 1, 6, "pretty", "mbp-1", "csv"): (
        "122a5d9f53c7f7015a8f1a7628a12c597e1d6ecce8daa53895ef2e0b54a0bf65",
        (160, 3000, 1729511641062356573, 1729514161622193186),
    ),
    ("legacy", 3000, 1, 3, "pretty", "mbp-1", "csv"): (
        "9c88436b004645e025ee0ee018474b200863f1d49e20f54e8d7471659bcabd12",
        (370, 2656, 1722519392000000000, 1722519431952346245),
    ),
    ("legacy", 6000, 3, 7, "pretty", None, "csv"): (
        "c9d48fbdf8ea0c1b8525fa3dc8d0876d05e3e64a613481108804f46f48bd27a6",
        (251, 5441, 1722519392000000000, 1722692206116083554),
    ),
    ("legacy", 5000, 2, 8, "raw", "mbp-1", "csv.gz"): (
        "06c62e63c4591be17c170a4b5a79e7302b45c36a55507865eb79b651aaaa8d8b",
        (407, 4526, 1722519392000000000, 1722605826027999903),
    ),
    ("legacy", 4000, 1, 9, "raw", None, "csv.gz"): (
        "be1e27e604b022374d2c013e873d42969a5d781d3f5dc6fdce404a3766f05a27",
        (152, 3602, 1722519392000000000, 1722519416934617615),
    ),
    ("legacy", 70000, 1, 10, "pretty", None, "csv"): (
        "19c175f9767538bf258a93c6fb3cf5ce8460c3123db0280602ebfe4310d26e4e",
        (3653, 62965, 1722519392000000000, 1722519865677001050),
    ),
    ("legacy", 70000, 2, 11, "raw", "mbp-1", "csv"): (
        "cc7b332ae2531d0bd9272763d162fddf22a9f09716579cb156e4f86128176a6f",
        (6929, 62776, 1722519392000000000, 1722606263872365283),
    ),
}

_VENUES = (
    VenueProfile(2, spread_ticks=1.5, depth_shares=200, rate_hz=50),
    VenueProfile(
        11,
        spread_ticks=3.0,
        depth_shares=80,
        odd_lot_prob=0.6,
        rate_hz=10,
        lag_ms=20,
        empty_ask_per_min=6.0,
    ),
)
GENERATE_ARGS = {
    "tick4": (dict(n_events=5000, tick=0.0001, price=12.3456, seed=13), "csv"),
    "tick5c": (
        dict(n_events=5000, tick=0.05, price=100.0, seed=14, style="raw", schema="mbp-1"),
        "csv",
    ),
    "gz70k": (dict(n_events=70_000, seed=15), "csv.gz"),
    "venues": (
        dict(
            n_events=8000,
            seed=16,
            venues=_VENUES,
            symbol="MSFT",
            instrument_id=7,
            start="2023-12-31T23:59:50Z",
        ),
        "csv",
    ),
}
# name -> (sha256 of the text, (rows, trades, distinct ts_event, first and last ts_event))
GENERATE_CASES = {
    "tick4": (
        "3574a68243e4cab5cfa744682d17c932bb7b280be8ca4107eda67f92558bc610",
        (5000, 270, 4424, 1722519392000000000, 1722519425272267915),
    ),
    "tick5c": (
        "599e2ba5f1d585f4816cf3b8bcfb115ebfd4bb827100eb5afca829a393c814b7",
        (5000, 502, 4497, 1722519392000000000, 1722519460200622699),
    ),
    "gz70k": (
        "f65dad4743ba6db54bdbd5ea482fe77204dfbb94c4bc41ba2ac7e2a2b43cf84d",
        (70000, 3469, 62955, 1722519392000000000, 1722519859838412134),
    ),
    "venues": (
        "a84f309a1907c9804f62e6b877305c820ea680b25a56b69848bbdd19d2f609d5",
        (8000, 350, 7151, 1704067190000000000, 1704067325372142852),
    ),
}


def _text(path: Path, level: int) -> bytes:
    """The file's text; a gzip file must be the gzip of its text written in one piece."""
    data = path.read_bytes()
    if not path.name.endswith(".gz"):
        return data
    text = gzip.decompress(data)
    once = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=once, mtime=0, compresslevel=level) as gz:
        gz.write(text)
    assert data == once.getvalue()
    return text


@pytest.mark.parametrize("case", list(WRITE_CASES))
def test_write_gives_the_pinned_bytes(tmp_path, case):
    """`sor generate` (`write`): several chunks, days, styles and schemas, plain and gzip."""
    profile, rows, days, seed, style, schema, suffix = case
    digest, (trades, distinct, first, last) = WRITE_CASES[case]
    path = tmp_path / f"out.{suffix}"
    got = write(path, profile=profile, rows=rows, days=days, seed=seed, style=style, schema=schema)
    # One legacy day is `generate`'s file (gzip level 6); the rest stream at level 1.
    level = 6 if profile == "legacy" and days == 1 else 1
    assert hashlib.sha256(_text(path, level)).hexdigest() == digest
    assert (got.rows, got.trades, got.distinct_ts_event) == (rows, trades, distinct)
    assert (got.ts_event_first, got.ts_event_last) == (first, last)


@pytest.mark.parametrize("name", list(GENERATE_CASES))
def test_generate_gives_the_pinned_bytes(tmp_path, name):
    """`generate` with other ticks (prices of 4 decimals, a 5-cent grid), other venues, a
    symbol, and timestamps across a new year."""
    kwargs, suffix = GENERATE_ARGS[name]
    digest, summary = GENERATE_CASES[name]
    path = tmp_path / f"out.{suffix}"
    got = generate(path, **kwargs)
    assert hashlib.sha256(_text(path, 6)).hexdigest() == digest
    fields = (got.rows, got.trades, got.distinct_ts_event, got.ts_event_first, got.ts_event_last)
    assert fields == summary


@pytest.mark.filterwarnings("ignore:the plan ran out of events")
@pytest.mark.parametrize(
    ("kwargs", "digest", "rows", "venues"),
    [
        (
            dict(profile="legacy", rows=10, seed=0),
            "4530db185348250f1fcee0aab13bce0c88c5a47a1d62190983368ae89db42c45",
            10,
            (2, 5, 9, 43),
        ),
        # days so short that the plan runs out of events: fewer rows, as before
        (
            dict(profile="legacy", rows=12, days=3, seed=5, schema="mbp-1"),
            "2979fe218ab4b78fc13a6f517f85a33922cb8688d8be264bdf347bc72f5aa4b3",
            10,
            (2, 5, 9, 43),
        ),
    ],
)
def test_tiny_legacy_files_keep_their_bytes_and_venues(tmp_path, kwargs, digest, rows, venues):
    """A file too short to show every venue: the summary lists only the venues written."""
    path = tmp_path / "tiny.csv"
    got = write(path, **kwargs)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert (got.rows, got.venues) == (rows, venues)
