"""pg.run ends when main ends, whatever P0's other goroutines do (Go: "when
main returns, the program exits; it does not wait for other goroutines").

The hang this pins down (issue 15, the fault tier's seed 1000049): main
finished -- returned, raised, or was interrupted by a WorkerLost -- and P0's
hub resumed the next goroutine of its own, one that never parks (a busy
loop, a select that always has a ready case).  Nothing else was runnable on
P0, so its sysmon never asked that goroutine to yield, the hub never got
back to its loop, and the loop's stop never took effect: pg.run waited for
ever with P0 busy.  Now P0 marks main's end in the arena (pg_p.exiting) and
its sysmon preempts a goroutine that keeps the hub, then unwinds it with
Shutdown when it does not yield (async preemption off).

Each program runs in a child process with a time limit: the hang would be
the pytest process's own main thread otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIMIT = 20.0  # s for a child run (start-up included); the hang never ends
WITHIN = 1.0  # s from main's end to pg.run's

_PROG = textwrap.dedent(
    """
    import os, signal, sys, time
    import parago as pg
    from tests.helpers import go_on

    kind, procs, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    T = {}

    def select_spin(a):  # Send(a) or Recv(a) is always ready: it never parks
        while True:
            pg.select(pg.Send(a, 1), pg.Recv(a))

    def busy():  # never calls parago at all
        x = 0
        while True:
            x += 1

    def die_soon():
        time.sleep(0.2)  # blocks this P only (no cooperative I/O)
        os.kill(os.getpid(), signal.SIGKILL)

    def spin_after(done, a):
        done.recv()  # main's deferred close: runnable only as main ends
        select_spin(a) if kind == "select" else busy()

    def main():
        a = pg.Chan(4)
        if how == "lost":
            done = pg.Chan()
            go_on(0, spin_after, done, a)
            go_on(1, die_soon)
            try:
                # main itself never parks, and nothing else on P0 is runnable:
                # the WorkerLost reaches it from sysmon's signal
                select_spin(a) if kind == "select" else busy()
            finally:
                done.close()  # Go's defer close(done)
        # one spinner: a second would preempt it (each has the other runnable)
        go_on(0, select_spin, a) if kind == "select" else go_on(0, busy)
        if how == "blocked":
            time.sleep(0.05)  # P0 blocked: the spinners start once main has returned
        else:
            pg.sleep(0.05)  # the spinners run; main preempts them when its timer fires
        T["end"] = time.monotonic()
        if how == "raise":
            raise ValueError("main fails")
        return 42

    try:
        r = pg.run(main, procs=procs)
        print("RESULT", r, time.monotonic() - T["end"], flush=True)
    except BaseException as e:
        print("RAISED", type(e).__name__, time.monotonic() - T.get("end", time.monotonic()), flush=True)
    """
)


def _run(kind: str, procs: int, how: str, env: dict | None = None) -> tuple[str, str, float]:
    e = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    e.pop("PARAGO_START_METHOD", None)
    e.update(env or {})
    p = subprocess.Popen(
        [sys.executable, "-c", _PROG, kind, str(procs), how],
        cwd=ROOT,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # one process group: the child and its Ps
    )
    try:
        out, err = p.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.communicate()
        pytest.fail(f"pg.run did not end within {LIMIT:.0f} s of starting ({kind}, procs={procs}, {how})")
    lines = [ln for ln in out.splitlines() if ln.startswith(("RESULT", "RAISED"))]
    assert lines, f"no result line: rc={p.returncode}\n{out}\n{err[-3000:]}"
    what, value, dt = lines[-1].split()
    return what, value, float(dt)


def _ends_soon(expect: tuple[str, str], kind: str, procs: int, how: str, env: dict | None = None) -> None:
    """The run ends as expected (main's result or exception), within WITHIN of main's end."""
    what, value, dt = _run(kind, procs, how, env)
    assert (what, value) == expect
    assert dt < WITHIN, f"pg.run ended {dt * 1000:.0f} ms after main did"


@pytest.mark.timeout(LIMIT + 30)
@pytest.mark.parametrize("procs", [1, 2])
@pytest.mark.parametrize("kind", ["select", "busy"])
@pytest.mark.parametrize("how", ["return", "blocked"])
def test_run_returns_when_main_returns_while_p0_runs_a_goroutine_that_never_parks(kind, procs, how):
    _ends_soon(("RESULT", "42"), kind, procs, how)


@pytest.mark.timeout(LIMIT + 30)
def test_a_goroutine_that_cannot_be_preempted_is_unwound_once_main_returned():
    # async preemption off: a busy loop never yields, so the sysmon unwinds it
    _ends_soon(("RESULT", "42"), "busy", 1, "blocked", {"PARAGO_DEBUG": "asyncpreemptoff=1"})


@pytest.mark.timeout(LIMIT + 30)
@pytest.mark.parametrize("kind", ["select", "busy"])
def test_main_raising_while_p0_runs_a_goroutine_that_never_parks_raises_from_run(kind):
    _ends_soon(("RAISED", "ValueError"), kind, 2, "raise")


@pytest.mark.timeout(LIMIT + 30)
@pytest.mark.parametrize("kind", ["select", "busy"])
def test_a_lost_p_ends_in_workerlost_while_p0_runs_goroutines_that_never_park(kind):
    # main never parks; P1 dies; the WorkerLost is raised in main by
    # sysmon's signal, and main's deferred close starts a spinner as it ends
    what, value, _ = _run(kind, 2, "lost")
    assert (what, value) == ("RAISED", "WorkerLost")
