"""`--venues FILE`: the venues section (fees and rebates) of another YAML file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sor.synth.generate import generate

ROOT = Path(__file__).resolve().parents[3]
SCHEDULE = ROOT / "configs" / "venues-us-equities.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("venues") / "d.csv"
    generate(path, n_events=1500, schema="mbp-10", seed=3)  # venues 2, 5, 9, 38, 43
    return path


def backtest(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sor",
            "-q",
            "backtest",
            "--data",
            str(data),
            "--out",
            str(out),
            *extra,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )


def economics(out: Path) -> dict[int, tuple[float, float]]:
    rows = json.loads(out.read_text())["venue_economics"]
    return {row["publisher_id"]: (row["fee"], row["rebate"]) for row in rows}


def test_the_fee_schedule_applies_and_set_still_wins(data, tmp_path):
    done = backtest(data, tmp_path / "a.json", "--venues", str(SCHEDULE))
    assert done.returncode == 0, done.stderr
    got = economics(tmp_path / "a.json")
    assert got[2] == (0.003, 0.002)  # XNAS in the schedule
    assert got[5] == (0.003, 0.0016)  # Cboe BZX
    done = backtest(data, tmp_path / "b.json", "--venues", str(SCHEDULE),
                    "--set", "venues.overrides={2: {fee: 0.001, rebate: 0.0}}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert economics(tmp_path / "b.json")[2] == (0.001, 0.0)
    plain = backtest(data, tmp_path / "c.json")
    assert plain.returncode == 0 and economics(tmp_path / "c.json")[5] != (0.003, 0.0016)


def test_a_file_without_a_venues_section_is_refused(data, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("order:\n  size: 100\n")
    done = backtest(data, tmp_path / "r.json", "--venues", str(other))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"sor: error: {other}: expected a 'venues' section (a mapping) at the top level"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("venues:\n  fee: [\n")
    done = backtest(data, tmp_path / "r.json", "--venues", str(bad))
    assert done.returncode == 2 and f"{bad}: not valid YAML" in done.stderr
