"""NumPy's huge-page advice is off in the command line's process and the processes it starts."""

from __future__ import annotations

import importlib
import os
import sys

import pytest

from sor.cli.pages import HUGE_PAGE_ENV, _numpy_setter, avoid_huge_page_stalls

cli = importlib.import_module("sor.cli.main")
_set_madvise_hugepage = _numpy_setter()


@pytest.fixture
def advice_restored():
    before = _set_madvise_hugepage(True)
    _set_madvise_hugepage(before)
    yield
    _set_madvise_hugepage(before)


def test_the_advice_is_turned_off_here_and_for_child_processes(monkeypatch, advice_restored):
    monkeypatch.delenv(HUGE_PAGE_ENV, raising=False)
    _set_madvise_hugepage(True)
    assert avoid_huge_page_stalls()
    assert _set_madvise_hugepage(False) is False  # it was off
    assert os.environ[HUGE_PAGE_ENV] == "0"


def test_a_users_choice_is_kept(monkeypatch, advice_restored):
    monkeypatch.setenv(HUGE_PAGE_ENV, "1")
    _set_madvise_hugepage(True)
    assert not avoid_huge_page_stalls()
    assert _set_madvise_hugepage(True) is True  # left on
    assert os.environ[HUGE_PAGE_ENV] == "1"


def test_the_command_line_turns_it_off_on_entry(monkeypatch, tmp_path, advice_restored):
    monkeypatch.delenv(HUGE_PAGE_ENV, raising=False)
    _set_madvise_hugepage(True)
    out = tmp_path / "d.csv"
    monkeypatch.setattr(sys, "argv", ["sor", "-q", "generate", str(out), "--rows", "2000"])
    assert cli.main() == 0
    assert out.exists() and _set_madvise_hugepage(True) is False
