"""Crash reports read as Go's (DESIGN §1 "Diagnostics", "Command line"):
``panic: ...`` / ``fatal error: ...``, then each goroutine as
``goroutine N [state]:`` with the user's frames only (parago's hidden unless
PARAGO_TRACEBACK=system) and ``created by``, the failing goroutine first;
``parago run`` prints just that report and exits as ``go run`` does."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import parago as pg

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RUNTIME_FRAME = re.compile(r"/parago/|greenlet|runpy|Traceback \(most recent")


def parago_run(tmp_path: Path, body: str, *flags: str, **env: str) -> subprocess.CompletedProcess:
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(body))
    e = {k: v for k, v in os.environ.items() if k != "PARAGO_TRACEBACK"}
    e.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "parago", "run", *flags, str(prog)],
                          capture_output=True, text=True, timeout=60, env=e, cwd=tmp_path)


def line_of(body: str, needle: str) -> int:
    """The line number of the (single) line of the dedented program that contains needle."""
    lines = textwrap.dedent(body).splitlines()
    hits = [i + 1 for i, s in enumerate(lines) if needle in s]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def sections(report: str) -> list[str]:
    """The goroutine sections of a report, in order."""
    return [s for s in report.split("\n\n") if s.startswith("goroutine ")]


PANIC = """
    import parago as pg

    def work(i, out):
        if i == 3:
            raise ValueError(f"bad item {i}")
        out.send(i)

    def main():
        out = pg.Chan()
        for i in range(5):
            pg.go(work, i, out)  # spawn site
        for _ in range(5):
            out.recv()

    if __name__ == "__main__":
        pg.run(main)
"""


@pytest.mark.timeout(90)
def test_panic_report_shows_the_failing_goroutine_first_with_user_frames_only(tmp_path, procs):
    r = parago_run(tmp_path, PANIC, "--procs", str(procs))
    assert r.returncode == 2, r.stderr
    err = r.stderr
    raise_line = line_of(PANIC, "raise ValueError")
    spawn_line = line_of(PANIC, "# spawn site")
    m = re.match(
        r"panic: ValueError: bad item 3\n"
        r"\n"
        r"goroutine (\d+) \[running\]:\n"
        r"__main__\.work\(\.\.\.\)\n"
        rf"\t/\S+/prog\.py:{raise_line}\n"
        r"\t    raise ValueError\(f\"bad item \{i\}\"\)\n"
        r"created by __main__\.main in goroutine 1\n"
        rf"\t/\S+/prog\.py:{spawn_line}\n"
        r"\n",
        err,
    )
    assert m, err
    failing = int(m.group(1))
    assert failing > 1
    assert not RUNTIME_FRAME.search(err), err
    assert err.count("panic:") == 1, "the report is printed once"
    # every other goroutine follows, by id, main first; none is the failing one again
    ids = [int(re.match(r"goroutine (\d+) ", s).group(1)) for s in sections(err)]
    assert ids[0] == failing and ids[1] == 1 and ids[1:] == sorted(ids[1:]) and failing not in ids[1:], err
    assert re.search(r"^goroutine 1 \[(chan receive|runnable)\]:\n__main__\.main\(\.\.\.\)\n\t/\S+/prog\.py:\d+$",
                     err, re.M), err


@pytest.mark.timeout(60)
def test_traceback_system_shows_runtime_frames_each_goroutines_p_and_the_python_chain(tmp_path):
    r = parago_run(tmp_path, PANIC, "--procs", "2", PARAGO_TRACEBACK="system")
    assert r.returncode == 2, r.stderr
    assert re.match(r"panic: ValueError: bad item 3\n\ngoroutine \d+ p=\d pid=\d+ \[running\]:\n", r.stderr), r.stderr
    assert "/parago/_runtime/sched.py" in r.stderr
    assert re.search(r"^Traceback \(most recent call last\):$", r.stderr, re.M), r.stderr
    assert re.search(r"^goroutine 1 p=0 pid=\d+ \[", r.stderr, re.M), r.stderr


@pytest.mark.timeout(60)
def test_traceback_single_shows_only_the_failing_goroutine(tmp_path):
    r = parago_run(tmp_path, PANIC, "--procs", "2", PARAGO_TRACEBACK="single")
    assert r.returncode == 2, r.stderr
    secs = sections(r.stderr)
    assert len(secs) == 1 and re.match(r"goroutine \d+ \[running\]:\n__main__\.work", secs[0]), r.stderr


def _bad_item(i):
    raise ValueError(f"bad item {i}")


@pytest.mark.timeout(30)
def test_panic_from_pg_run_carries_the_report_as_its_text(run):
    def main():
        pg.go(_bad_item, 3)
        pg.Chan().recv()

    with pytest.raises(pg.Panic) as ei:
        run(main)
    p = ei.value
    text = str(p)
    assert re.match(
        rf"panic: ValueError: bad item 3\n\ngoroutine {p.goid} \[running\]:\n"
        r"\S*\._bad_item\(\.\.\.\)\n\t\S+/test_crash_reports\.py:\d+\n"
        r"\t    raise ValueError\(f\"bad item \{i\}\"\)\n"
        r"created by \S*test_panic_from_pg_run_carries_the_report_as_its_text\.<locals>\.main in goroutine 1\n",
        text,
    ), text
    assert text.startswith(f"panic: {p.exc_type}: {p.message}\n\n{p.stack}\n\n")
    assert re.search(r"^goroutine 1 \[chan receive\]:$", p.dump, re.M), p.dump
    assert "/parago/_runtime/" not in text
    # the Python traceback keeps every frame, for whoever wants them
    assert "_bad_item" in p.remote_traceback and "Traceback (most recent call last)" in p.remote_traceback
    assert isinstance(p.__cause__, ValueError) and p.__cause__.args == ("bad item 3",)


DEADLOCK = """
    import parago as pg
    from tests.helpers import go_on

    def waiter(ch):
        ch.recv()  # waiter parks

    def main():
        ch = pg.Chan()
        go_on(1, waiter, ch)
        pg.sleep(0.05)
        pg.Chan().recv()  # main parks

    if __name__ == "__main__":
        pg.run(main)
"""


@pytest.mark.timeout(90)
def test_deadlock_report_lists_every_goroutine_main_first(tmp_path, procs):
    r = parago_run(tmp_path, DEADLOCK, "--procs", str(procs))
    assert r.returncode == 2, r.stderr
    err = r.stderr
    main_line = line_of(DEADLOCK, "# main parks")
    assert re.match(
        r"fatal error: all goroutines are asleep - deadlock!\n"
        r"\n"
        r"goroutine 1 \[chan receive\]:\n"
        r"__main__\.main\(\.\.\.\)\n"
        rf"\t/\S+/prog\.py:{main_line}\n"
        r"\t    pg\.Chan\(\)\.recv\(\)  # main parks\n"
        r"\n"
        r"goroutine \d+ \[",
        err,
    ), err
    waiter = [s for s in sections(err) if "__main__.waiter" in s]
    assert len(waiter) == 1, err
    assert re.match(
        rf"goroutine \d+ \[chan receive\]:\n__main__\.waiter\(\.\.\.\)\n\t/\S+/prog\.py:{line_of(DEADLOCK, '# waiter parks')}\n",
        waiter[0],
    ), waiter[0]
    # it was started by a helper goroutine of go_on, itself created by main
    assert re.search(r"^created by \S+ in goroutine \d+\n\t/\S+\.py:\d+$", waiter[0], re.M), waiter[0]
    assert not RUNTIME_FRAME.search(err), err


LOST = """
    import os, signal
    import parago as pg
    from tests.helpers import go_on

    def victim(pids):
        pids.send(os.getpid())
        pg.Chan().recv()

    def main():
        pids = pg.Chan()
        go_on(1, victim, pids)
        pid = pids.recv()
        print(pid, flush=True)
        os.kill(pid, signal.SIGKILL)
        pg.Chan().recv()  # main waits
"""
LOST_RUN = """
    if __name__ == "__main__":
        pg.run(main, procs=2)
"""
LOST_CATCH = """
    if __name__ == "__main__":
        try:
            pg.run(main, procs=2)
        except pg.WorkerLost as e:
            print(e.p, e.how, repr(str(e).splitlines()[0]))
"""


@pytest.mark.timeout(60)
def test_worker_lost_report_names_the_p_the_signal_and_what_it_held(tmp_path):
    r = parago_run(tmp_path, LOST + LOST_RUN)
    assert r.returncode == 2, r.stderr
    pid = int(r.stdout.strip())
    assert re.match(
        r"fatal error: P1 died \(killed by signal SIGKILL\)\n"
        rf"\[P1 \(pid {pid}\) held \d+ started goroutines? \(their state died with the process\)\]\n"
        r"\n"
        r"goroutine 1 \[chan receive\]:\n"
        r"__main__\.main\(\.\.\.\)\n"
        rf"\t/\S+/prog\.py:{line_of(LOST, '# main waits')}\n",
        r.stderr,
    ), r.stderr
    assert not RUNTIME_FRAME.search(r.stderr), r.stderr


@pytest.mark.timeout(60)
def test_worker_lost_from_pg_run_keeps_its_attributes(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(LOST) + textwrap.dedent(LOST_CATCH))
    r = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True, timeout=50,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "1 killed by signal SIGKILL 'fatal error: P1 died (killed by signal SIGKILL)'"


# ----------------------------------------------------------------------
# parago run's exit statuses


@pytest.mark.timeout(60)
def test_run_exits_0_for_a_clean_program(tmp_path):
    r = parago_run(tmp_path, """
        import parago as pg
        def main():
            ch = pg.Chan(1)
            pg.go(ch.send, 5)
            print(ch.recv())
        if __name__ == "__main__":
            pg.run(main, procs=2)
    """)
    assert (r.returncode, r.stdout, r.stderr) == (0, "5\n", "")


@pytest.mark.timeout(60)
def test_run_exits_with_a_goroutines_system_exit_code(tmp_path):
    r = parago_run(tmp_path, """
        import parago as pg
        def quit():
            raise SystemExit(7)
        def main():
            pg.go(quit)
            pg.Chan().recv()
        if __name__ == "__main__":
            pg.run(main, procs=2)
    """)
    assert (r.returncode, r.stderr) == (7, "")


@pytest.mark.timeout(60)
def test_run_exits_66_for_race_findings_and_2_for_a_panic_even_then(tmp_path):
    body = """
        import parago as pg
        def worker(lst, done):
            lst.append(1)
            done.send(len(lst))
        def main():
            done = pg.Chan(1)
            pg.go(worker, [0], done)
            done.recv()
            PANIC
        if __name__ == "__main__":
            pg.run(main, procs=1)
    """
    r = parago_run(tmp_path, body.replace("PANIC", "pass"), "--race")
    assert r.returncode == 66, r.stderr
    assert "ISOLATION VIOLATION" in r.stderr
    r = parago_run(tmp_path, body.replace("PANIC", "pg.go(worker, None, done); pg.Chan().recv()"), "--race")
    assert r.returncode == 2, r.stderr
    assert re.search(r"^panic: AttributeError: 'NoneType' object has no attribute 'append'$", r.stderr, re.M)


@pytest.mark.timeout(60)
def test_run_exits_1_with_the_users_traceback_for_an_exception_escaping_main(tmp_path):
    body = """
        import parago as pg

        def helper():
            return {}["missing"]

        def main():
            try:
                helper()
            except KeyError as e:
                raise RuntimeError("main failed") from e

        if __name__ == "__main__":
            pg.run(main, procs=2)
    """
    r = parago_run(tmp_path, body)
    assert r.returncode == 1, r.stderr
    assert re.match(r"Traceback \(most recent call last\):\n  File \"/\S+/prog\.py\", line \d+, in main\n",
                    r.stderr), r.stderr
    assert re.search(r"\nThe above exception was the direct cause of the following exception:\n", r.stderr)
    # 3.13+ may underline the call (`~~~~~~^^^^`): a line of carets and tildes only
    assert re.search(r"^  File \"/\S+/prog\.py\", line \d+, in <module>\n    pg\.run\(main, procs=2\)\n"
                     r"(?:    [~^ ]+\n)?"
                     r"  File \"/\S+/prog\.py\", line \d+, in main\n", r.stderr, re.M), r.stderr
    assert r.stderr.endswith("RuntimeError: main failed\n"), r.stderr
    assert not re.search(r"/parago/|runpy", r.stderr), r.stderr


@pytest.mark.timeout(60)
def test_run_exits_130_for_ctrl_c(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent("""
        import parago as pg
        def main():
            print("ready", flush=True)
            pg.sleep(30)
        if __name__ == "__main__":
            pg.run(main, procs=2)
    """))
    proc = subprocess.Popen([sys.executable, "-m", "parago", "run", str(prog)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (130, "signal: interrupt\n")


@pytest.mark.timeout(60)
def test_created_by_keeps_the_creator_and_the_file_name_of_a_long_path(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    r = parago_run(deep, PANIC, "--procs", "1")
    assert r.returncode == 2, r.stderr
    spawn_line = line_of(PANIC, "# spawn site")
    assert re.search(rf"^created by __main__\.main in goroutine 1\n\t\.\.\.d*/e{{60}}/prog\.py:{spawn_line}$",
                     r.stderr, re.M), r.stderr
