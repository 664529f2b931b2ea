"""Teardown never hangs (issue 15): a timer due while Ps leave, a stalled
sysmon and SIGTERM / SIGINT.

The hang this pins down: a P's intern table kept the entry of a handle that
died by refcount (its weakref still answers the dying handle inside
``__del__``), so when the P left, ``Refs.release`` dropped that reference a
second time -- stealing the only reference of whatever object reused the
block.  A ``pg.after`` timer of main's, due during teardown, was freed under
its heap entry; P0's sysmon fired it, sent on "channel 0" (the arena header)
and spun for ever in the lock slow path; main sat in pthread_join and
SIGTERM could not end it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import parago as pg
from parago._runtime import state

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# P1 makes timers whose handles die there (fired, dropped, freed); main's
# pg.after timers then reuse those blocks, due 0.3 s later -- while P1 leaves
# and P0 is held in teardown (teardownhold) with its sysmon still running
_WINDOW = textwrap.dedent(
    """
    import sys
    import parago as pg
    from parago._runtime import state
    from tests.helpers import go_on

    N = 20

    def toff(t):  # the timer's offset (a Timer is its own handle, or holds one)
        return getattr(t, "_t", t)._off

    def on_p1(done):
        rt = state.rt
        offs = []
        for _ in range(N):
            t = pg.Timer(0)
            t.c.recv()
            offs.append(toff(t))
            del t  # P1's handle dies: its reference is dropped (once)
        rt.flush_decrefs()  # freed now: the fire dropped its entry's reference
        done.send((rt.p, offs))

    def main():
        done = pg.Chan(1)
        go_on(1, on_p1, done)
        p, offs = done.recv()
        mine = {toff(pg.Timer(0.3)) for _ in range(N)}  # main's timers, due in teardown
        for _ in range(N):
            pg.after(0.3)
        print("reused", len(mine & set(offs)), "on P", p, flush=True)
        return "done"

    if __name__ == "__main__":
        print(pg.run(main, procs=2, start_method=sys.argv[1]), flush=True)
    """
)

_STALL = textwrap.dedent(
    """
    import parago as pg

    def main():
        pg.after(0.01)
        print("main returns", flush=True)
        return 7

    if __name__ == "__main__":
        print(pg.run(main, procs=2))
    """
)


# P0's sysmon is held at a timer's send: the channel's lock word says "P0
# holds it" and nobody ever releases it (a stand-in for a lock whose owner
# will not come back); main then fails (no clean end: nothing is freed)
_HELD = textwrap.dedent(
    """
    import time
    import parago as pg
    from parago._runtime import state
    from parago._shim import lib, offset

    def main():
        rt = state.rt
        t = pg.Timer(0.05)
        w = t.c._off + offset("pg_objhdr", "lock")
        rt.arena.u32[w // 4] = lib.pg_lock_tag(0)
        n0 = lib.pg_lock_nslow()
        deadline = time.monotonic() + 10
        while lib.pg_lock_nslow() == n0 and time.monotonic() < deadline:
            time.sleep(0.01)  # the hub is held: no goroutine, no timer of main's
        print("held", lib.pg_lock_nslow() > n0, flush=True)
        raise ValueError("main ends")

    if __name__ == "__main__":
        try:
            pg.run(main, procs=1)
        except ValueError as e:
            print(e, flush=True)
    """
)


def _env(debug: str) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, PARAGO_DEBUG=debug)
    env.pop("PARAGO_STRESS_SEED", None)
    return env


def _script(tmp_path, text: str) -> str:
    path = tmp_path / "prog.py"
    path.write_text(text)
    return str(path)


def test_a_handle_that_dies_leaves_no_entry_in_its_ps_table(run):
    """The mechanism: a dead handle's table entry goes with its reference,
    so the P's leave (Refs.release) never drops that reference again."""

    def main():
        rt = state.rt
        c = pg.Chan(1)
        t = pg.Timer(3600)
        offs = (c._off, getattr(t, "_t", t)._off)
        assert all(o in rt.handles for o in offs)
        t.stop()
        del c, t
        rt.flush_decrefs()
        return [o for o in offs if o in rt.handles]

    left = run(main)
    assert left == [], f"dead handles still in the P's table: {left}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_timer_due_while_a_p_leaves_never_hangs_teardown(tmp_path, start_method):
    """The forced window: main's timers reuse blocks P1's dead handles named,
    and are due while P1 leaves; P0 is held in teardown with its sysmon
    running.  Before the fix: P1's leave freed them, the sysmon fired a freed
    timer and P0 never returned (every time, both start methods)."""
    path = _script(tmp_path, _WINDOW)
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            [sys.executable, path, start_method],
            env=_env("teardownhold=800"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=40,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"teardown hung (a timer fired while P1 left): {e.stdout!r} {e.stderr!r}")
    assert r.returncode == 0, r.stderr
    assert "did not stop" not in r.stderr, r.stderr  # the sysmon ended when asked, not abandoned
    lines = r.stdout.split()
    assert lines[-1] == "done", r.stdout
    assert "reused" in lines and int(lines[lines.index("reused") + 1]) > 0, (
        f"the window was not forced (no block reused): {r.stdout}"
    )
    assert time.monotonic() - t0 < 30


@pytest.mark.timeout(60)
def test_a_sysmon_held_at_a_send_on_a_lock_nobody_releases_still_stops(tmp_path):
    """The sysmon waits on a channel lock whose owner will never unlock it
    when teardown asks it to stop: its wait gives up (PG_LOST, the send
    dropped) and the join returns.  Before: pthread_join for ever."""
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            [sys.executable, _script(tmp_path, _HELD)],
            env=_env(""),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"teardown hung on the sysmon's lock wait: {e.stdout!r} {e.stderr!r}")
    assert r.stdout.split("\n")[:2] == ["held True", "main ends"], (r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    assert "did not stop" not in r.stderr, r.stderr  # it ended when asked, not abandoned
    assert time.monotonic() - t0 < 8


def _stalled(tmp_path, sig: int) -> tuple[subprocess.Popen, float, str]:
    """Start _STALL with P0's sysmon stalled in teardown, send sig once the
    stall began; (the process, seconds from the signal to its end, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, _script(tmp_path, _STALL)],
        env=_env("sysmonstall=60000"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the hook says so once the stop was asked for
        assert "sysmonstall" in line, f"the stall did not begin: {line!r}"
        time.sleep(0.2)
        assert proc.poll() is None, "the program ended by itself: no stall was forced"
        t0 = time.monotonic()
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - t0
        err = proc.stderr.read() if proc.poll() is not None else ""
        return proc, took, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_a_stalled_teardown_within_2s(tmp_path, sig):
    """DESIGN "Signals" in teardown: main returned, P0's sysmon will not end
    (test hook); SIGTERM / SIGINT still end the program, within 2 s, with
    KeyboardInterrupt from pg.run.  Before: main sat in pthread_join in a
    foreign call and its handler never ran (still there 16 minutes later)."""
    proc, took, err = _stalled(tmp_path, sig)
    assert proc.returncode is not None and took < 2.0, f"still running {took:.1f} s after the signal"
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err, err


# ----------------------------------------------------------------------
# goroutines never started when main returns


def _sender(ch, i):
    ch.send(i)


def _spawn_and_return(n):
    ch, mu, wg = pg.Chan(), pg.Mutex(), pg.WaitGroup()
    for i in range(n):
        pg.go(_sender, ch, i)  # queued everywhere (runnext, rings, inboxes): most never start
        pg.go(pg.Mutex.lock, mu)  # a handle of another kind in the payload
    pg.go_local(wg.wait)  # unstarted, pinned (its arguments never left this P)
    return n


@pytest.mark.timeout(60)
def test_goroutines_never_started_when_main_returns_leave_nothing_in_the_arena(procs):
    """Like Go, goroutines not started when main returns never run; their
    records, payloads and the references their payloads hold go back (each
    payload keeps its channel alive): the arena is empty after every run."""
    for _ in range(5):
        assert pg.run(_spawn_and_return, 300, procs=procs) == 300
        assert state.last_inuse == 0, f"the run left {state.last_inuse} bytes in its arena"
