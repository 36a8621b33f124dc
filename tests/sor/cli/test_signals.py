"""Ctrl-C wherever it lands: one line, exit 130, nothing more, even where Python cannot raise.

Python runs a signal handler between bytecodes of the main thread, wherever that is. Some of
those places are callbacks from native code, where the `KeyboardInterrupt` the handler raises
does not reach the command as itself: ctypes prints and drops it (llvmlite's JIT calls back into
Python this way while Numba compiles), and a Numba kernel calling back into Python (to unpickle
the class of an array it returns) turns it into a `SystemError`, or crashes the process. Each
script runs `sor`'s real entry (`main()` without arguments, as the console script does) and
sends the signal from such a place, so the moment is exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sor.synth.generate import generate

ROOT = Path(__file__).resolve().parents[3]

PRELUDE = """
import os, signal, sys, types
import sor.cli.main
cli = sys.modules["sor.cli.main"]
MARKER = sys.argv[1]

def as_module(function, module):
    '''`function`, running as code of `module` (the frames a signal handler sees).'''
    return types.FunctionType(function.__code__, {**function.__globals__, "__name__": module})
"""

#: The Ctrl-C lands in a ctypes callback of the command's own: Python prints the
#: KeyboardInterrupt (to the silenced stderr), drops it, and the command goes on to its end.
DROPPED = """
import ctypes

def command(args):
    ctypes.CFUNCTYPE(None)(lambda: signal.raise_signal(signal.SIGINT))()
    print("results printed after the interruption", flush=True)
    return 0

cli.cmd_backtest = command
sys.argv = ["sor", "backtest", "--data", "x.csv"]
"""

#: The Ctrl-C lands in llvmlite's callback while Numba compiles (a ctypes callback, where the
#: KeyboardInterrupt would be dropped and the command would go on).
IN_THE_JIT = """
import ctypes

def notify():
    signal.raise_signal(signal.SIGINT)

def command(args):
    ctypes.CFUNCTYPE(None)(as_module(notify, "llvmlite.binding.executionengine"))()
    with open(MARKER + ".went_on", "w") as f:
        f.write("the command went on after the interruption")
    return 0

cli.cmd_backtest = command
sys.argv = ["sor", "backtest", "--data", "x.csv"]
"""

#: The Ctrl-C lands while sor's compiled kernels have called back into Python: boxing the arrays
#: they return, they have `numba.core.serialize` unpickle the class `numpy.ndarray` on every call.
IN_A_KERNEL = """
import numba.core.serialize as serialize

real = serialize._numba_unpickle

def interrupted_unpickle(address, bytedata, hashed):
    signal.raise_signal(signal.SIGINT)
    return real(address, bytedata, hashed)

serialize._numba_unpickle = as_module(interrupted_unpickle, serialize.__name__)
sys.argv = ["sor", "backtest", "--data", MARKER + ".csv", "--out", MARKER + ".json", "--schedule",
            "--set", "schedule.interval_s=4", "--set", "schedule.horizon_s=4"]
"""


def run_script(body: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(PRELUDE + body + "sys.exit(cli.main())\n"))
    marker = tmp_path / "marker"
    result = subprocess.run(
        [sys.executable, str(script), str(marker)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    return result, marker


def test_a_dropped_interrupt_still_ends_in_one_line_and_130(tmp_path):
    result, _ = run_script(DROPPED, tmp_path)
    assert result.returncode == 130, result
    assert result.stderr == "sor: interrupted\n"
    assert result.stdout == ""  # nothing printed after the one line, on either stream


def test_an_interrupt_in_the_jit_ends_the_command_at_once(tmp_path):
    result, marker = run_script(IN_THE_JIT, tmp_path)
    assert result.returncode == 130, result
    assert result.stderr == "sor: interrupted\n" and result.stdout == ""
    assert not Path(str(marker) + ".went_on").exists()  # the command did not go on


def test_an_interrupt_in_a_compiled_kernel_is_one_line_and_130(tmp_path):
    generate(tmp_path / "marker.csv", n_events=3000, schema="mbp-1", seed=3)
    result, marker = run_script(IN_A_KERNEL, tmp_path)
    assert result.returncode == 130, result
    assert result.stderr == "sor: interrupted\n" and result.stdout == ""
    assert not Path(str(marker) + ".json").exists()


#: The Ctrl-C lands while the command's own modules are still being imported, before `main`
#: has set up its handlers: as `python -m sor` (runpy) and as the console script start it.
WHILE_STARTING = """
import importlib.abc, runpy, signal, sys

class InterruptOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "sor.cli.backtest":
            signal.raise_signal(signal.SIGINT)
        return None

sys.meta_path.insert(0, InterruptOnImport())
sys.argv = ["sor", "backtest", "--data", "x.csv"]
if sys.argv[0] and "{how}" == "console script":
    from sor.__main__ import run
    sys.exit(run())
runpy.run_module("sor", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("how", ["python -m sor", "console script"])
def test_an_interrupt_while_sor_starts_is_one_line_and_130(tmp_path, how):
    script = tmp_path / "start.py"
    script.write_text(textwrap.dedent(WHILE_STARTING.replace("{how}", how)))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    assert result.returncode == 130, result
    assert result.stderr == "sor: interrupted\n" and result.stdout == ""
