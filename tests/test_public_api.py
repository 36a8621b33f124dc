"""The public API: every name in `sor.__all__` resolves, and to the object its module defines."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import sor

INIT = Path(sor.__file__)


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(INIT.read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    )
    return {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_all_names_have_one_home_and_type_checkers_see_the_same():
    static = _type_checking_imports()
    assert set(sor.__all__) == set(static) == set(sor._HOME)
    assert static == sor._HOME


@pytest.mark.parametrize("name", sor.__all__)
def test_each_public_name_is_its_modules_object(name):
    assert getattr(sor, name) is getattr(importlib.import_module(sor._HOME[name]), name)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sor.nope  # noqa: B018


def test_importing_sor_loads_no_numeric_stack():
    code = (
        "import sys, sor, sor.errors; "
        "print(sorted(m for m in ('numba', 'pandas', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_library_example_from_the_readme(tmp_path):
    path = tmp_path / "small.csv"
    sor.generate(path, n_events=2000, schema="mbp-1", seed=5)
    config = sor.load_config(None, {"order.size": 2000})
    snaps, summary = sor.load_snapshots(path, **config.load_options())
    evaluation = sor.prepare(snaps, config)
    params = {"lambda_over": 0.4, "lambda_under": 0.6, "theta_queue": 0.3}
    outcome = evaluation.evaluate(params)
    report = evaluation.report(params)
    assert isinstance(outcome, sor.TrialOutcome)
    assert outcome.value == report["optimized"]["completed_cash"]
    assert set(report["baselines"]) == {"best_ask", "twap", "vwap"}
