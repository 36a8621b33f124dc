"""After a signal `sor` ends, even with its main thread stuck, and kills every process it
started, even one being started meanwhile; after a run that succeeded, it does not wait for Ray's
graceful stop either."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

#: A process that starts children as fast as it can: a parent killed while it forks orphans
#: the child it was starting, which then leaves the tree of the process doing the killing.
SCRIPT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from sor.cli.main import _kill_descendants

    real_kill = os.kill
    def slow_kill(pid, signum):  # a busy machine: the killing takes a while
        time.sleep(0.002)
        real_kill(pid, signum)
    os.kill = slow_kill

    spawner = subprocess.Popen([sys.executable, "-c", '''
    import os, time
    while True:
        if os.fork() == 0:
            time.sleep(120)
            os._exit(0)
        time.sleep(0.002)
    '''])
    time.sleep(1.0)
    _kill_descendants()
    os._exit(0)
    """
)


def session_alive(sid: int) -> list[int]:
    """The live (not zombie) processes whose session id is `sid`."""
    alive = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != b"Z" and int(fields[3]) == sid:
                alive.append(int(entry))
    return alive


def leftovers(sid: int, grace_s: float = 5.0) -> list[int]:
    """The processes of session `sid` still alive `grace_s` after its leader exited, killed."""
    deadline = time.monotonic() + grace_s
    while session_alive(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = session_alive(sid)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process tree from /proc")
def test_no_process_escapes_while_its_parent_is_forking():
    for _ in range(3):  # the escape is a race: a few tries make a miss near-certain to show
        run = subprocess.Popen([sys.executable, "-c", SCRIPT], start_new_session=True)
        assert run.wait(timeout=60) == 0
        assert leftovers(run.pid) == []


#: A main thread stuck in native code without the GIL (here a compiled loop that never checks
#: for signals, as Ray's client waiting on a GCS the same signal stopped) cannot run Python's
#: signal handler until it returns.
STUCK = textwrap.dedent(
    """
    import importlib, sys
    from numba import njit

    main = importlib.import_module("sor.cli.main")

    @njit(nogil=True)
    def spin(n):
        x = 0.0
        for i in range(n):
            x += (i % 7) * 1e-9
        return x

    spin(10)
    main._install_signal_handlers()
    print("ready", flush=True)
    try:
        spin(60_000_000_000)  # minutes
    except BaseException:  # the signal came before the loop started: it raised here instead
        spin(60_000_000_000)
    sys.exit(0)
    """
)


def test_a_signal_ends_the_process_even_while_the_main_thread_is_stuck():
    run = subprocess.Popen(
        [sys.executable, "-c", STUCK], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert run.stdout.readline().strip() == "ready", run.stderr.read()
        run.send_signal(signal.SIGTERM)
        code = run.wait(timeout=60)  # the wind-down deadline is a few seconds
    finally:
        if run.poll() is None:
            run.kill()
    assert code == 128 + signal.SIGTERM


#: A run that succeeded, whose Ray runtime's graceful stop never ends (a stand-in for the
#: second or more `ray.shutdown()` takes), with a process of that runtime still running.
SLOW_STOP = textwrap.dedent(
    """
    import subprocess, sys, threading
    import sor.cli.main, sor.cli.run
    cli, run = sys.modules["sor.cli.main"], sys.modules["sor.cli.run"]

    class NeverStopping:
        stopping = True
        def wait(self):
            return 0.0
        def stop_soon(self):
            pass
        def stop(self):
            threading.Event().wait()  # the graceful stop, waited for, would never end

    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    run.RAY = NeverStopping()
    cli._leave(0)
    """
)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process tree from /proc")
def test_a_run_that_succeeded_does_not_wait_for_rays_stop_and_leaves_no_process():
    run = subprocess.Popen([sys.executable, "-c", SLOW_STOP], start_new_session=True)
    try:
        code = run.wait(timeout=30)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    left = leftovers(run.pid)
    assert code == 0
    assert left == []
