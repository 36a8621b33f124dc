"""Tests of the calibrated generator profiles and multi-day files (sor.synth.profiles)."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sor.synth.facts import compare, measure_days, read_tape
from sor.synth.generate import generate, header
from sor.synth.profiles import DEFAULT_PROFILE, PROFILES, write
from tests.csvdata import SHARED_DATA

DAY_NS = 86_400 * 1_000_000_000


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- the calibrated facts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rows_per_day", "days", "seed"),
    [("xnas-aapl", 5000, 12, 3), ("taq-2018", 92_697, 2, 1)],
)
def test_calibrated_profile_reproduces_the_real_facts(tmp_path, name, rows_per_day, days, seed):
    """Every fact with a tolerance lies within it, the real file's rows per day generated."""
    prof = PROFILES[name]
    assert prof is not None
    path = tmp_path / f"{name}.csv"
    write(path, profile=name, rows=rows_per_day * days, days=days, seed=seed)
    facts = measure_days(read_tape(path))
    assert compare(prof.facts, facts, prof.tolerances) == []


@pytest.mark.parametrize("name", ["xnas-aapl", "taq-2018"])
def test_prints_carry_adverse_selection(tmp_path, name):
    """After a sell-aggressor print the reference mid falls, after a buy print it rises: a
    resting buy order filled by a seller is adversely selected (zero in the legacy market).

    The book mechanics alone (queues emptied by prints, quotes picked off) give part of this
    sign; the size, which needs the prints' information in the fair price, is pinned by
    `test_calibrated_profile_reproduces_the_real_facts` (it fails with zero impact)."""
    prof = PROFILES[name]
    assert prof is not None
    path = tmp_path / "g.csv"
    write(path, profile=name, rows=40_000, days=4, seed=7)
    facts = measure_days(read_tape(path))
    for h in ("1s", "5s"):
        assert facts[f"drift_sell_{h}"] < -3 * facts[f"drift_sell_{h}_se"]
        assert facts[f"drift_buy_{h}"] > 3 * facts[f"drift_buy_{h}_se"]


@pytest.mark.skipif(not (SHARED_DATA / "real").is_dir(), reason="needs ../shared/data/real")
@pytest.mark.parametrize(
    ("name", "file", "session"),
    [
        ("xnas-aapl", "xnas_aapl_2024-10-21_mbp10_5000rows.csv.gz", None),
        ("taq-2018", "taq_2018-01-02_mbp1_trades.csv.gz", (14.5 * 3600, 21 * 3600)),
    ],
)
def test_stored_real_facts_are_those_of_the_real_file(name, file, session):
    """The numbers the profiles are checked against are measured, not typed in."""
    from sor.synth.facts import measure, session_mask

    prof = PROFILES[name]
    assert prof is not None
    tape = read_tape(SHARED_DATA / "real" / file)
    if session:
        tape = tape.take(session_mask(tape.ts, *session))
    real = measure(tape)
    for k, v in prof.facts.items():
        assert real[k] == pytest.approx(v, rel=1e-5), k


# --- multi-day files -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "schema"), [("taq-2018", "mbp-1"), ("xnas-aapl", "mbp-10")])
def test_multi_day_file_has_one_session_per_date(tmp_path, name, schema):
    prof = PROFILES[name]
    assert prof is not None
    path = tmp_path / "days.csv.gz"
    summary = write(path, profile=name, rows=9001, days=3, seed=2)
    with gzip.open(path, "rt") as f:
        assert f.readline().rstrip("\n") == header(schema)
    df = pd.read_csv(path, usecols=["ts_event", "ts_recv", "publisher_id"])
    ts = pd.to_datetime(df["ts_event"]).to_numpy("datetime64[ns]").astype(np.int64)
    assert summary.rows == len(df) == 9001
    assert (np.diff(ts) >= 0).all()
    day = ts // DAY_NS
    days, counts = np.unique(day, return_counts=True)
    assert list(np.diff(days)) == [1, 1]  # consecutive dates
    assert list(counts) == [3001, 3000, 3000]  # rows spread evenly, remainder first
    first_date = np.datetime64(prof.first_date, "D").astype(np.int64)
    assert days[0] == first_date
    for d in days:
        tod = (ts[day == d] - d * DAY_NS) / 1e9
        assert tod.min() >= prof.open_s  # each day opens at the session start
        assert tod.min() < prof.open_s + 60
    # The overnight gap: the last event of a day and the first of the next are hours apart.
    gaps = np.diff(ts) / 1e9
    assert (np.sort(gaps)[-2:] > 3600).all()
    recv = pd.to_datetime(df["ts_recv"]).to_numpy("datetime64[ns]").astype(np.int64)
    assert (recv > ts).all()


def test_calibrated_files_are_a_function_of_the_seed(tmp_path):
    a, b, c = (tmp_path / f"{k}.csv" for k in "abc")
    write(a, profile="taq-2018", rows=3000, days=2, seed=5)
    write(b, profile="taq-2018", rows=3000, days=2, seed=5)
    write(c, profile="taq-2018", rows=3000, days=2, seed=6)
    assert _md5(a) == _md5(b) != _md5(c)


def test_raw_and_pretty_styles_hold_the_same_market(tmp_path):
    pretty, raw = tmp_path / "p.csv", tmp_path / "r.csv"
    write(pretty, profile="xnas-aapl", rows=2000, seed=4, style="pretty")
    write(raw, profile="xnas-aapl", rows=2000, seed=4, style="raw")
    tp, tr = read_tape(pretty), read_tape(raw)
    assert (tp.ts == tr.ts).all()
    np.testing.assert_allclose(tp.bid_px, tr.bid_px)
    np.testing.assert_allclose(tp.ask_px, tr.ask_px)
    assert (tp.bid_px < tp.ask_px).all()


def test_legacy_profile_is_the_unchanged_generator(tmp_path):
    """`--profile legacy` writes the bytes of `generate`: the earlier demo data stays."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    generate(a, n_events=3000, schema="mbp-1", seed=3)
    write(b, profile="legacy", rows=3000, schema="mbp-1", seed=3)
    assert _md5(a) == _md5(b) == "0f3a0ba80f7ee7241661d944b56e6c51"


def test_write_defaults_to_the_calibrated_taq_2018_profile(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write(a, rows=3000, seed=2)
    write(b, profile="taq-2018", rows=3000, seed=2)
    assert DEFAULT_PROFILE == "taq-2018" and _md5(a) == _md5(b)


def test_session_rows_fill_one_session_at_the_calibrated_rates(tmp_path):
    prof = PROFILES["taq-2018"]
    assert prof is not None and prof.session_rows() == 92_219
    path = tmp_path / "day.csv"
    summary = write(path, profile=prof, rows=prof.session_rows(), seed=0)
    span_s = (summary.ts_event_last - summary.ts_event_first) / 1e9
    assert 0.8 * prof.session_s < span_s <= prof.session_s  # the day's rows, at the real pace


def test_legacy_profile_writes_days_too(tmp_path):
    path = tmp_path / "legacy_days.csv"
    summary = write(path, profile="legacy", rows=3000, days=2, schema="mbp-1", seed=1)
    df = pd.read_csv(path, usecols=["ts_event"])
    day = pd.to_datetime(df["ts_event"]).dt.date
    assert summary.rows == len(df) == 3000
    assert day.nunique() == 2


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"profile": "nyse"}, "`profile` must be one of"),
        ({"days": 0}, "`days >= 1`"),
        ({"rows": 2, "days": 3}, "`rows >= days`"),
        ({"schema": "mbp-2", "profile": "taq-2018"}, "`schema` must be one of"),
    ],
)
def test_write_refuses_bad_arguments(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        write(tmp_path / "x.csv", **kw)
