"""Goroutine leak checks: pg.run(main, leaks=...), PARAGO_DEBUG=leakcheck=1,
pg.debug.leaks() (goroutines that can never wake, from the arena's reference
counts), pg.debug.goroutine_profile(), the pytest plugin (-p parago.testing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import parago as pg
from tests.helpers import wait_parked

ROOT = Path(__file__).resolve().parents[2]
# what each _debug_main kind's goroutines wait on, once they reach their
# waits (waited for, not slept: a loaded machine may start them late)
WAITS = {
    "chan": [("chan receive", 3)],
    "main_holds": [("chan receive", 1), ("chan send", 1)],
    "select": [("chan receive", 1), ("select", 2)],
    "mutex": [("chan receive", 1), ("sync.Mutex.Lock", 2)],
    "waitgroup": [("chan receive", 1), ("sync.WaitGroup.Wait", 1)],
    "async": [("chan receive", 2)],
    "sleep": [("chan receive", 1), ("sleep", 1)],
}


def recv_forever(ch):
    ch.recv()


def send_forever(ch):
    ch.send("x")


async def recv_forever_async(ch):
    await ch.recv_async()


def select_forever(a, b):
    pg.select(pg.Recv(a), pg.Recv(b))


def lock_forever(mu):
    mu.lock()


def wait_forever(wg):
    wg.wait()


def sleep_then_exit(t):
    pg.sleep(t)


def keeper(ch, done):
    """Holds ch (could send on it) while it waits for done."""
    done.recv()
    ch.send(1)


# ----------------------------------------------------------------------
# at exit: pg.run(main, leaks=...)


def _leaky_main():
    ch = pg.Chan()
    pg.go(recv_forever, ch)
    pg.go(sleep_then_exit, 0.05)  # exits within the grace: not a leak
    pg.sleep(0.02)
    return "done"


@pytest.mark.timeout(60)
def test_leaks_error_lists_each_goroutine_still_blocked_when_main_returns(run) -> None:
    with pytest.raises(pg.GoroutineLeak) as ei:
        run(_leaky_main, leaks="error")
    e = ei.value
    assert isinstance(e, pg.ParagoError)
    assert len(e.goroutines) == 1
    (g,) = e.goroutines
    assert g.goid > 1 and g.wait_reason == "chan receive"
    assert re.search(r"^\S*recv_forever\(\.\.\.\)\n\t\S*test_leaks\.py:\d+", g.stack, re.M), g.stack
    assert re.match(r"created by \S*_leaky_main in goroutine 1\n\t\S*test_leaks\.py:\d+", g.created_by), g.created_by
    assert re.match(r"^found unexpected goroutines: 1 still alive after main returned\n\n"
                    rf"goroutine {g.goid} \[chan receive\]:\n", str(e)), str(e)


@pytest.mark.timeout(60)
def test_leaks_warn_prints_the_list_and_returns(run, capfd) -> None:
    assert run(_leaky_main, leaks="warn") == "done"
    err = capfd.readouterr().err
    assert re.search(r"^parago: found unexpected goroutines: 1 still alive after main returned$", err, re.M), err
    assert re.search(r"^goroutine \d+ \[chan receive\]:$", err, re.M), err


def _tidy_main():
    ch = pg.Chan()
    pg.go(recv_forever, ch)
    for _ in range(4):
        pg.go(sleep_then_exit, 0.1)  # still sleeping when main returns: the grace lets them finish
    ch.send(1)
    return 5


@pytest.mark.timeout(60)
def test_goroutines_that_finish_within_the_grace_are_no_leak(run) -> None:
    assert run(_tidy_main, leaks="error") == 5


@pytest.mark.timeout(60)
def test_leakcheck_from_parago_debug(run, monkeypatch) -> None:
    monkeypatch.setenv("PARAGO_DEBUG", "leakcheck=1")
    with pytest.raises(pg.GoroutineLeak):
        run(_leaky_main)
    assert run(_leaky_main, leaks="warn") == "done"  # an explicit leaks= wins


@pytest.mark.timeout(60)
def test_no_check_by_default(run) -> None:
    assert run(_leaky_main) == "done"


def _failing_main():
    pg.go(recv_forever, pg.Chan())
    raise KeyError("main's own")


@pytest.mark.timeout(60)
def test_main_s_exception_wins_over_the_leak_check(run) -> None:
    with pytest.raises(KeyError, match="main's own"):
        run(_failing_main, leaks="error")


@pytest.mark.timeout(30)
def test_bad_leaks_value() -> None:
    with pytest.raises(ValueError, match=r"^leaks must be None, 'error' or 'warn', got 'yes'$"):
        pg.run(_leaky_main, procs=1, leaks="yes")
    with pytest.raises(ValueError, match=r"^pg\.run: leaks= checks the Ps of one machine; it cannot be used with cluster=$"):
        pg.run(_leaky_main, cluster="ray", leaks="error")  # said before Ray is imported


# ----------------------------------------------------------------------
# while running: pg.debug.leaks()


def _debug_main(kind):
    out = {}
    held = pg.Chan()
    done = pg.Chan()
    ch = pg.Chan()
    # positive control: parked on a channel only it can reach -> reported
    pg.go(recv_forever, ch)
    if kind == "chan":
        pg.go(recv_forever, held)
        pg.go(keeper, held, done)  # another goroutine holds `held`
    elif kind == "main_holds":
        pg.go(send_forever, held)  # main holds `held`
    elif kind == "select":
        a, b = pg.Chan(), pg.Chan()
        pg.go(select_forever, a, b)
        pg.go(select_forever, held, pg.Chan())  # one of its channels is held by main
        del a, b
    elif kind == "mutex":
        mu = pg.Mutex()
        mu.lock()
        pg.go(lock_forever, mu)  # the only other holder (main) drops it, locked
        pg.go(lock_forever, held_mu := pg.Mutex())
        held_mu.lock()
        del mu
    elif kind == "waitgroup":
        wg = pg.WaitGroup()
        wg.add(1)
        pg.go(wait_forever, wg)
        del wg
    elif kind == "async":
        a = pg.Chan()
        pg.go(recv_forever_async, a)
        del a
    elif kind == "sleep":
        pg.go(sleep_then_exit, 3600)
    del ch
    for reason, n in WAITS[kind]:
        wait_parked(reason, n)
    report = pg.debug.leaks()
    text = pg.debug.dump()
    if kind == "chan":
        done.send(1)
    out["leaks"] = [(r.goid, r.wait_reason, r.stack, r.created_by) for r in report]
    out["dump"] = text
    if kind == "main_holds":
        out["held_alive"] = held.recv()  # main could still wake it
    if kind == "mutex":
        held_mu.unlock()
    return out


def _by_func(leaks, func):
    return [g for g, _, stack, _ in leaks if re.search(r"\b" + func + r"\(", stack)]


@pytest.mark.timeout(60)
def test_debug_leaks_reports_a_goroutine_on_a_dropped_channel_not_one_another_goroutine_holds(run) -> None:
    out = run(_debug_main, "chan")
    leaks = out["leaks"]
    assert len(leaks) == 1, leaks
    goid, reason, stack, created = leaks[0]
    assert reason == "chan receive" and "recv_forever(" in stack and created.startswith("created by ")
    # the goroutine on `held` is parked too (the dump shows it), but keeper can still send
    assert len(re.findall(r"\[chan receive\]:\n\S*recv_forever\(", out["dump"])) == 2


@pytest.mark.timeout(60)
def test_debug_leaks_does_not_report_a_goroutine_main_can_still_wake(run) -> None:
    out = run(_debug_main, "main_holds")
    assert [r[1] for r in out["leaks"]] == ["chan receive"] and out["held_alive"] == "x"
    assert _by_func(out["leaks"], "send_forever") == []


@pytest.mark.timeout(60)
def test_debug_leaks_select_is_leaked_only_when_every_case_is_unreachable(run) -> None:
    out = run(_debug_main, "select")
    reasons = sorted(r[1] for r in out["leaks"])
    assert reasons == ["chan receive", "select"], out["leaks"]
    assert len(re.findall(r"\[select\]:", out["dump"])) == 2, out["dump"]


@pytest.mark.timeout(60)
def test_debug_leaks_sync_objects(run) -> None:
    out = run(_debug_main, "mutex")
    assert sorted(r[1] for r in out["leaks"]) == ["chan receive", "sync.Mutex.Lock"], out["leaks"]
    assert len(re.findall(r"\[sync\.Mutex\.Lock\]:", out["dump"])) == 2
    out = run(_debug_main, "waitgroup")
    assert sorted(r[1] for r in out["leaks"]) == ["chan receive", "sync.WaitGroup.Wait"], out["leaks"]


@pytest.mark.timeout(60)
def test_debug_leaks_async_goroutine(run) -> None:
    out = run(_debug_main, "async")
    assert len(out["leaks"]) == 2, out["leaks"]
    assert len(_by_func(out["leaks"], "recv_forever_async")) == 1, out["leaks"]


@pytest.mark.timeout(60)
def test_debug_leaks_ignores_sleepers(run) -> None:
    out = run(_debug_main, "sleep")
    assert [r[1] for r in out["leaks"]] == ["chan receive"], out["leaks"]
    assert re.search(r"\[sleep\]:", out["dump"])


@pytest.mark.timeout(30)
def test_debug_leaks_outside_a_run() -> None:
    with pytest.raises(pg.NotInRuntime, match=r"^pg\.debug\.leaks needs the parago runtime"):
        pg.debug.leaks()
    with pytest.raises(pg.NotInRuntime, match=r"^pg\.debug\.goroutine_profile needs the parago runtime"):
        pg.debug.goroutine_profile()


# ----------------------------------------------------------------------
# the goroutine profile


def _profile_main():
    ch = pg.Chan()
    for _ in range(3):
        pg.go(recv_forever, ch)
    pg.go(sleep_then_exit, 3600)
    wait_parked("chan receive", 3)
    wait_parked("sleep")
    text = pg.debug.goroutine_profile()
    for _ in range(3):
        ch.send(0)
    return text


@pytest.mark.timeout(60)
def test_goroutine_profile_groups_every_p_s_goroutines_by_stack(run) -> None:
    text = run(_profile_main)
    assert text.startswith("goroutine profile: total 5\n"), text
    blocks = [b for b in text.split("\n\n")[0:] if b.strip()]
    head = blocks[0].split("\n", 1)[1]  # the first block follows the total line
    m = re.match(r"^3 @ (0x[0-9a-f]+)\n#\t(0x[0-9a-f]+)\t\S*recv_forever\+0x[0-9a-f]+\t\S*test_leaks\.py:\d+$",
                 head)
    assert m and m.group(1) == m.group(2), text
    assert re.search(r"^1 @ 0x[0-9a-f]+\n#\t0x[0-9a-f]+\t\S*sleep_then_exit\+0x[0-9a-f]+\t", text, re.M), text
    assert re.search(r"^1 @ 0x[0-9a-f]+\n#\t0x[0-9a-f]+\t\S*_profile_main\+0x[0-9a-f]+\t", text, re.M), text


# ----------------------------------------------------------------------
# the pytest plugin


PLUGIN_TESTS = """
    import pytest
    import parago as pg

    def block(ch):
        ch.recv()

    def leaky():
        pg.go(block, pg.Chan())

    def test_fixture(pg_leakcheck):
        pg.run(leaky, procs=1)

    @pytest.mark.pg_leakcheck
    def test_marker():
        pg.run(leaky, procs=1)

    def test_unchecked():
        pg.run(leaky, procs=1)

    def test_explicit_wins(pg_leakcheck):
        pg.run(leaky, procs=1, leaks="warn")

    @pytest.mark.pg_leakcheck(False)
    def test_opted_out():
        pg.run(leaky, procs=1)
"""


@pytest.mark.timeout(120)
def test_pytest_plugin_fixture_marker_and_option(tmp_path: Path) -> None:
    (tmp_path / "test_prog.py").write_text(textwrap.dedent(PLUGIN_TESTS))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PARAGO_DEBUG", None)

    def pytest_run(*args: str, env: dict = env) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-o", "addopts=", *args, "test_prog.py"], capture_output=True, text=True,
                              timeout=100, cwd=tmp_path, env=env)

    # without -p: the fixture and the marker, from the plugin pytest loads wherever parago is installed
    r = pytest_run()
    assert re.search(r"2 failed, 3 passed", r.stdout), r.stdout + r.stderr
    assert "FAILED test_prog.py::test_fixture - parago._errors.GoroutineLeak" in r.stdout, r.stdout
    assert "FAILED test_prog.py::test_marker - parago._errors.GoroutineLeak" in r.stdout, r.stdout
    r = pytest_run("--pg-leakcheck")
    assert re.search(r"3 failed, 2 passed", r.stdout), r.stdout + r.stderr
    # -p parago.testing: every test is checked (pg_leakcheck(False) and an explicit leaks= excepted)
    r = pytest_run("-p", "parago.testing")
    assert re.search(r"3 failed, 2 passed", r.stdout), r.stdout + r.stderr
    assert "FAILED test_prog.py::test_unchecked - parago._errors.GoroutineLeak" in r.stdout, r.stdout
    # and on its own, with plugin autoloading off
    r = pytest_run("-p", "parago.testing", env=dict(env, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert re.search(r"3 failed, 2 passed", r.stdout), r.stdout + r.stderr


@pytest.mark.timeout(60)
def test_parago_run_with_leakcheck_prints_the_report_and_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "prog.py"
    p.write_text(textwrap.dedent("""
        import parago as pg

        def block(ch):
            ch.recv()

        def main():
            pg.go(block, pg.Chan())
            print("main done")

        if __name__ == "__main__":
            pg.run(main)
    """))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PARAGO_DEBUG="leakcheck=1")
    r = subprocess.run([sys.executable, "-m", "parago", "run", str(p)], capture_output=True, text=True,
                       timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stdout == "main done\n"
    assert re.match(r"^found unexpected goroutines: 1 still alive after main returned\n\n"
                    r"goroutine \d+ \[chan receive\]:\n__main__\.block\(\.\.\.\)\n\t\S*prog\.py:5\n", r.stderr), r.stderr
    assert re.search(r"^created by __main__\.main in goroutine 1\n\t\S*prog\.py:8$", r.stderr, re.M), r.stderr
