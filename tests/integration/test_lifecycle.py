"""How a parago program ends (DESIGN §1 "Failure", "Teardown", "Signals",
"Errors"): panics, os.Exit, deadlock, unwinding at teardown, a lost P,
Ctrl-C and a killed parent -- never a hang, never a leftover process.

Scenarios that need a whole program (stdout of every P, signals, killing
the parent) run a small script in a subprocess with the same interpreter.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import parago as pg

pytestmark = pytest.mark.integration

REPO = pathlib.Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------
# goroutine bodies (module level)


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _boom() -> None:
    raise ValueError("boom")


def _boom_on_other_p(main_pid, stamp_path) -> None:
    _busy(0.002)
    if os.getpid() != main_pid:
        with open(stamp_path, "w") as f:
            f.write(repr(time.time()))
        raise ValueError("boom")


def _spawn_until_other_p(fn, main_pid, stamp_path, report) -> None:
    """Spawn short CPU-bound probes; the idle P steals some of them."""
    for i in range(2000):
        pg.go(fn, main_pid, stamp_path)
        if i % 8 == 7:
            pg.sleep(0.01)
    report.send("no probe ever ran on P1")


async def _async_boom() -> None:
    await pg.sleep_async(0.01)
    raise KeyError("async-k")


class _Unpicklable(Exception):
    """Pickling fails: its __dict__ holds a lock."""

    def __init__(self, msg):
        super().__init__(msg)
        import threading

        self.lock = threading.Lock()


class _NeedsTwo(Exception):
    """Pickles, but cannot be rebuilt: args has one item, __init__ needs two."""

    def __init__(self, a, b):
        super().__init__(f"{a}+{b}")


def _raise_unpicklable() -> None:
    raise _Unpicklable("cannot pickle me")


def _raise_needs_two() -> None:
    raise _NeedsTwo("x", "y")


def _exit3() -> None:
    raise SystemExit(3)


def _stuck_sender(ids, ch) -> None:
    ids.send(pg.goid())
    _busy(0.005)
    ch.send("nobody receives this")


def _sleep_then_send(ch) -> None:
    pg.sleep(0.3)
    ch.send("slept")


def _block_then_send(ch) -> None:
    pg.blocking(time.sleep, 0.3)
    ch.send("blocked")


def _kill_self_on_other_p(main_pid, stamp_path) -> None:
    _busy(0.002)
    if os.getpid() != main_pid:
        with open(stamp_path, "w") as f:
            f.write(repr(time.time()))
        os.kill(os.getpid(), signal.SIGKILL)


def _double(ch, x) -> None:
    ch.send(2 * x)


# ----------------------------------------------------------------------
# helpers for whole-program scenarios


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # PYTHONUNBUFFERED off: stdout of each P is block-buffered, as in a plain run
    for k in ("PARAGO_MAXPROCS", "PARAGO_START_METHOD", "PARAGO_DEBUG", "PYTHONUNBUFFERED"):
        env.pop(k, None)
    return env


def _script(tmp_path: pathlib.Path, code: str) -> str:
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(code))
    return str(path)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if not _gone(p)]
        if not left:
            return []
        time.sleep(0.02)
    return [p for p in pids if not _gone(p)]


def _kill_leftovers(pids) -> None:
    """Only the P processes this test started (via its subprocess), by pid."""
    for pid in pids:
        if not _gone(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ----------------------------------------------------------------------
# Panic


@pytest.mark.timeout(30)
def test_uncaught_exception_in_goroutine_raises_panic_from_run(run):
    def main():
        pg.go(_boom)
        pg.Chan().recv()  # blocked: the panic must interrupt it (not Deadlock)

    t0 = time.monotonic()
    with pytest.raises(pg.Panic) as ei:
        run(main)
    assert time.monotonic() - t0 < 5
    p = ei.value
    assert p.goid > 1
    assert "ValueError" in p.exc_type
    assert p.message == "boom"
    assert "_boom" in p.remote_traceback
    assert isinstance(p.__cause__, ValueError) and p.__cause__.args == ("boom",)
    assert re.match(rf"panic: ValueError: boom\n\ngoroutine {p.goid} \[running\]:\n", str(p)), str(p)


@pytest.mark.timeout(60)
def test_panic_on_the_other_p_interrupts_blocked_main(tmp_path):
    stamp = str(tmp_path / "raised_at")

    def main():
        report = pg.Chan(1)
        pg.go(_spawn_until_other_p, _boom_on_other_p, os.getpid(), stamp, report)
        return report.recv()

    with pytest.raises(pg.Panic) as ei:
        pg.run(main, procs=2)
    raised_at = float(pathlib.Path(stamp).read_text())
    assert time.time() - raised_at < 3, "the panic took too long to reach main"
    p = ei.value
    assert p.goid > 1
    assert "ValueError" in p.exc_type and p.message == "boom"
    assert "_boom_on_other_p" in p.remote_traceback
    assert isinstance(p.__cause__, ValueError) and str(p.__cause__) == "boom"


def _panic_main():
    pg.go(_boom)
    pg.Chan().recv()


@pytest.mark.timeout(30)
def test_panic_reaches_blocked_main_every_time():
    # a panic recorded while P0 is still running (about to park main) must
    # not be lost when P0 then goes to sleep (a lost one is a hang: the timeout)
    for i in range(100):
        for procs in (1, 2):
            t0 = time.monotonic()
            with pytest.raises(pg.Panic):
                pg.run(_panic_main, procs=procs)
            elapsed = time.monotonic() - t0
            assert elapsed < 4, f"iteration {i}, procs={procs}: the panic reached main after {elapsed:.1f} s"


@pytest.mark.timeout(30)
def test_uncaught_exception_in_async_goroutine_is_a_panic(run):
    def main():
        pg.go(_async_boom)
        pg.Chan().recv()

    with pytest.raises(pg.Panic) as ei:
        run(main)
    assert ei.value.goid > 1
    assert "KeyError" in ei.value.exc_type
    assert "_async_boom" in ei.value.remote_traceback
    assert isinstance(ei.value.__cause__, KeyError)


@pytest.mark.timeout(30)
def test_unpicklable_exception_still_panics_with_type_and_message(run):
    def main():
        pg.go(_raise_unpicklable)
        pg.Chan().recv()

    with pytest.raises(pg.Panic) as ei:
        run(main)
    p = ei.value
    assert p.exc_type.endswith("_Unpicklable")
    assert p.message == "cannot pickle me"
    assert "_raise_unpicklable" in p.remote_traceback
    assert not isinstance(p.__cause__, _Unpicklable)


@pytest.mark.timeout(30)
def test_exception_that_cannot_be_rebuilt_still_panics_with_type_and_message(run):
    def main():
        pg.go(_raise_needs_two)
        pg.Chan().recv()

    with pytest.raises(pg.Panic) as ei:
        run(main)
    p = ei.value
    assert p.exc_type.endswith("_NeedsTwo")
    assert p.message == "x+y"
    assert "_raise_needs_two" in p.remote_traceback


@pytest.mark.timeout(30)
def test_system_exit_in_goroutine_ends_program_with_its_code(run):
    def main():
        pg.go(_exit3)
        pg.Chan().recv()

    with pytest.raises(SystemExit) as ei:
        run(main)
    assert ei.value.code == 3


@pytest.mark.timeout(30)
def test_runtime_is_usable_after_a_panic(run):
    def bad():
        pg.go(_boom)
        pg.Chan().recv()

    with pytest.raises(pg.Panic):
        run(bad)

    def good():
        ch = pg.Chan(1)
        pg.go(_double, ch, 21)
        return ch.recv()

    assert run(good) == 42


# ----------------------------------------------------------------------
# Deadlock


@pytest.mark.timeout(30)
def test_main_blocked_on_channel_nobody_sends_to_is_a_deadlock(run):
    def main():
        pg.Chan().recv()

    t0 = time.monotonic()
    with pytest.raises(pg.Deadlock) as ei:
        run(main)
    assert time.monotonic() - t0 < 10
    text = str(ei.value)
    assert text.startswith("fatal error: all goroutines are asleep - deadlock!\n\n")
    assert re.search(r"^goroutine 1 \[chan receive", text, re.M), text


@pytest.mark.timeout(30)
def test_deadlock_dump_lists_goroutines_on_every_p(run):
    k = 4

    def main():
        ids = pg.Chan(k)
        stuck = pg.Chan()
        for _ in range(k):
            pg.go(_stuck_sender, ids, stuck)
        goids = [ids.recv() for _ in range(k)]
        main_list.extend(goids)
        pg.Chan().recv()

    main_list: list[int] = []
    t0 = time.monotonic()
    with pytest.raises(pg.Deadlock) as ei:
        run(main)
    assert time.monotonic() - t0 < 10
    text = str(ei.value)
    assert text.startswith("fatal error: all goroutines are asleep - deadlock!\n\n")
    assert re.search(r"^goroutine 1 \[chan receive", text, re.M), text
    assert len(main_list) == k
    for g in main_list:
        assert re.search(rf"^goroutine {g} \[chan send", text, re.M), (g, text)


@pytest.mark.timeout(30)
def test_sleeping_timer_or_blocking_goroutines_are_not_a_deadlock(run):
    def main():
        ch = pg.Chan()
        pg.go(_sleep_then_send, ch)
        pg.go(_block_then_send, ch)
        got = sorted([ch.recv(), ch.recv()])
        fired = pg.after(0.3).recv()  # only a timer is pending meanwhile
        return got, fired

    t0 = time.monotonic()
    got, fired = run(main)
    assert got == ["blocked", "slept"]
    assert isinstance(fired, float)
    assert time.monotonic() - t0 < 10


# ----------------------------------------------------------------------
# WorkerLost


@pytest.mark.timeout(60)
def test_killed_p_raises_worker_lost_never_a_hang(tmp_path):
    stamp = str(tmp_path / "killed_at")

    def main():
        report = pg.Chan(1)
        pg.go(_spawn_until_other_p, _kill_self_on_other_p, os.getpid(), stamp, report)
        return report.recv()

    with pytest.raises(pg.WorkerLost) as ei:
        pg.run(main, procs=2)
    killed_at = float(pathlib.Path(stamp).read_text())
    assert time.time() - killed_at < 3, "WorkerLost took too long"
    e = ei.value
    assert e.p == 1
    assert re.match(r"fatal error: P1 died \(killed by signal SIGKILL\)\n", str(e)), str(e)

    # a lost P does not poison later programs
    def good():
        ch = pg.Chan(1)
        pg.go(_double, ch, 5)
        return ch.recv()

    assert pg.run(good, procs=2) == 10


# ----------------------------------------------------------------------
# Teardown (whole program: every P's stdout)

_TEARDOWN_PROG = """
import os, sys, time
import parago as pg

def busy(s):
    end = time.perf_counter() + s
    while time.perf_counter() < end:
        pass

def blocker(i, ready, never):
    busy(0.003)
    ready.send((i, os.getpid()))
    try:
        never.recv()
    finally:
        # one write per line (Ps share the pipe); no flush: every P flushes at exit
        print(f"FINALLY {i} {os.getpid()}\\n", end="")

def main(procs):
    me = os.getpid()
    ready = pg.Chan(4096)
    never = pg.Chan()
    seen = []
    i = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for _ in range(4):
            pg.go(blocker, i, ready, never)
            i += 1
        seen.extend(ready.recv() for _ in range(4))
        remote = sum(1 for _, pid in seen if pid != me)
        if procs == 1 or remote >= 2:
            break
    print(f"SPAWNED {i} MAIN {me}", flush=True)
    return "main-done"

if __name__ == "__main__":
    procs = int(sys.argv[1])
    print("RESULT", pg.run(main, procs, procs=procs), flush=True)
"""


@pytest.mark.timeout(60)
def test_teardown_unwinds_blocked_goroutines_on_every_p(tmp_path, procs):
    prog = _script(tmp_path, _TEARDOWN_PROG)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, prog, str(procs)], capture_output=True, text=True, env=_env(), timeout=45)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    out = r.stdout
    m = re.search(r"^SPAWNED (\d+) MAIN (\d+)$", out, re.M)
    assert m, out
    spawned, main_pid = int(m.group(1)), int(m.group(2))
    finals = re.findall(r"^FINALLY (\d+) (\d+)$", out, re.M)
    # every blocked goroutine ran its finally block exactly once
    assert sorted(int(i) for i, _ in finals) == list(range(spawned)), out
    if procs == 2:
        remote = [pid for _, pid in finals if int(pid) != main_pid]
        assert len(remote) >= 2, out
    assert re.search(r"^RESULT main-done$", out, re.M)
    assert "Traceback" not in r.stderr, r.stderr
    assert elapsed < 30


_BUFFERED_PROG = """
import sys
import parago as pg

def say(ch, i):
    print(f"GOROUTINE {i}\\n", end="")  # one write per line: Ps share the pipe
    ch.send(i)

def main():
    ch = pg.Chan(8)
    for i in range(8):
        pg.go(say, ch, i)
    return sorted(ch.recv() for _ in range(8))

if __name__ == "__main__":
    print("BEFORE-RUN")  # still in the buffer (stdout is a pipe) when the Ps start
    print("RESULT", pg.run(main, procs=int(sys.argv[1])))
"""


@pytest.mark.timeout(60)
def test_stdout_is_neither_lost_nor_duplicated(tmp_path, procs):
    prog = _script(tmp_path, _BUFFERED_PROG)
    r = subprocess.run([sys.executable, prog, str(procs)], capture_output=True, text=True, env=_env(), timeout=45)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines.count("BEFORE-RUN") == 1, r.stdout
    assert sorted(x for x in lines if x.startswith("GOROUTINE")) == [f"GOROUTINE {i}" for i in range(8)], r.stdout
    assert lines.count("RESULT [0, 1, 2, 3, 4, 5, 6, 7]") == 1, r.stdout


# ----------------------------------------------------------------------
# Signals

_SIGINT_PROG = """
import multiprocessing, sys
import parago as pg

def idle(ch):
    ch.recv()

def main(catch):
    ch = pg.Chan()
    for _ in range(4):
        pg.go(idle, ch)
    pids = [p.pid for p in multiprocessing.active_children()]
    if catch:
        try:
            print("ready", *pids, flush=True)
            ch.recv()
        except KeyboardInterrupt:
            return "caught"
    print("ready", *pids, flush=True)
    ch.recv()

if __name__ == "__main__":
    print("RESULT", pg.run(main, sys.argv[1] == "catch", procs=2), flush=True)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("target", ["process", "group"])
def test_sigint_raises_keyboard_interrupt_and_leaves_nothing(tmp_path, target):
    prog = _script(tmp_path, _SIGINT_PROG)
    proc = subprocess.Popen(
        [sys.executable, prog, "nocatch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(), start_new_session=True,
    )
    pids: list[int] = []
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), (line, proc.stderr.read() if proc.poll() is not None else "")
        pids = [int(x) for x in line.split()[1:]]
        assert len(pids) == 1  # P1
        t0 = time.monotonic()
        if target == "group":  # what a terminal's Ctrl-C does
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        elapsed = time.monotonic() - t0
        assert proc.returncode != 0
        assert "KeyboardInterrupt" in err, err
        assert "RESULT" not in out
        assert elapsed < 3, f"took {elapsed:.2f} s to stop after SIGINT"
        assert _wait_gone(pids, 2) == [], "a P outlived the program"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        _kill_leftovers(pids)


@pytest.mark.timeout(60)
def test_main_may_catch_keyboard_interrupt(tmp_path):
    prog = _script(tmp_path, _SIGINT_PROG)
    proc = subprocess.Popen(
        [sys.executable, prog, "catch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(), start_new_session=True,
    )
    pids: list[int] = []
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), line
        pids = [int(x) for x in line.split()[1:]]
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert re.search(r"^RESULT caught$", out, re.M), (out, err)
        assert _wait_gone(pids, 2) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        _kill_leftovers(pids)


_ORPHAN_PROG = """
import os, sys, time
import parago as pg

def busy(s):
    end = time.perf_counter() + s
    while time.perf_counter() < end:
        pass

def spin_if_other(main_pid, ready):
    busy(0.002)
    if os.getpid() != main_pid:
        ready.send(os.getpid())
        while True:  # P1 stays busy in Python code for ever
            pass

def idle(ch):
    ch.recv()

def main(busy_p1):
    me = os.getpid()
    never = pg.Chan()
    for _ in range(4):
        pg.go(idle, never)
    p1 = None
    if busy_p1:
        ready = pg.Chan(1)
        deadline = time.monotonic() + 20
        while p1 is None and time.monotonic() < deadline:
            for _ in range(4):
                pg.go(spin_if_other, me, ready)
            i, v, ok = pg.select(pg.Recv(ready), pg.Recv(pg.after(0.02)))
            if i == 0:
                p1 = v
    import multiprocessing
    pids = [p.pid for p in multiprocessing.active_children()]
    print("pids", *pids, flush=True)
    never.recv()

if __name__ == "__main__":
    pg.run(main, sys.argv[1] == "busy", procs=2)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("p1", ["idle", "busy"])
def test_ps_exit_by_themselves_when_the_parent_is_killed(tmp_path, p1):
    prog = _script(tmp_path, _ORPHAN_PROG)
    proc = subprocess.Popen(
        [sys.executable, prog, p1], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(), start_new_session=True,
    )
    pids: list[int] = []
    try:
        line = proc.stdout.readline()
        assert line.startswith("pids"), (line, proc.stderr.read() if proc.poll() is not None else "")
        pids = [int(x) for x in line.split()[1:]]
        assert len(pids) == 1
        assert not _gone(pids[0])
        proc.kill()
        proc.communicate(timeout=10)
        left = _wait_gone(pids, 2)
        assert left == [], f"P processes outlived their killed parent: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        _kill_leftovers(pids)


def _interrupt_as_if_just_parked() -> None:
    """A hub callback standing in for a signal handler that runs in the hub
    between main's switch back (main has parked) and ``current = None``."""
    from parago._runtime import state

    rt = state.rt
    saved, rt.current = rt.current, rt.main_gs
    try:
        rt.sup.interrupt_main(KeyboardInterrupt())
    finally:
        rt.current = saved


def test_an_interrupt_reaches_main_that_has_just_parked_while_still_the_current_g(run):
    # Ctrl-C right after main printed and went to sleep was once lost this way:
    # the interrupt saw main as "current", did not cancel its park, and main
    # slept on (1 in ~30 runs of `parago run` under load)
    def main():
        from parago._runtime import state

        state.rt.loop.call_later(0.05, _interrupt_as_if_just_parked)
        t0 = time.monotonic()
        try:
            pg.sleep(10)
        except KeyboardInterrupt:
            return time.monotonic() - t0
        return None

    waited = run(main)
    assert waited is not None and waited < 2, f"main slept on with the interrupt pending ({waited})"
