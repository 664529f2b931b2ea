"""The command line and the diagnostics: parago run/env/demo/trace,
PARAGO_DEBUG=schedtrace, --race, --trace, --cpuprofile, goroutine dumps."""

from __future__ import annotations

import json
import os
import pstats
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def parago(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parago", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or ENV, cwd=ROOT)


def script(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "prog.py"
    p.write_text(textwrap.dedent(body))
    return p


PROG = """
    import os
    import parago as pg

    def worker(i, out):
        s = 0
        for k in range(20000):
            s += k
        out.send((i, os.getpid()))

    def main():
        out = pg.Chan(64)
        for i in range(64):
            pg.go(worker, i, out)
        got = sorted(out.recv()[0] for _ in range(64))
        assert got == list(range(64))
        print("procs", pg.gomaxprocs(), "ok")

    if __name__ == "__main__":
        pg.run(main)
"""


@pytest.mark.timeout(60)
def test_run_uses_procs_flag(tmp_path: Path) -> None:
    r = parago("run", "--procs", "2", str(script(tmp_path, PROG)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "procs 2 ok"


@pytest.mark.timeout(60)
def test_run_passes_script_arguments_and_exit_status(tmp_path: Path) -> None:
    p = script(tmp_path, """
        import sys
        import parago as pg
        def main():
            print(sys.argv[1:])
            raise SystemExit(4)
        if __name__ == "__main__":
            pg.run(main, procs=1)
    """)
    r = parago("run", str(p), "a", "b")
    assert r.stdout.strip() == "['a', 'b']"
    assert r.returncode == 4


@pytest.mark.timeout(60)
def test_race_reports_mutation_of_a_copied_argument_and_exits_66(tmp_path: Path) -> None:
    p = script(tmp_path, """
        import parago as pg
        def worker(lst, done):
            lst.append(1)
            done.send(len(lst))
        def main():
            done = pg.Chan(1)
            pg.go(worker, [0], done)
            print(done.recv())
        if __name__ == "__main__":
            pg.run(main, procs=1)
    """)
    r = parago("run", "--race", str(p))
    assert r.returncode == 66, r.stderr
    assert "ISOLATION VIOLATION" in r.stderr
    assert re.search(r"goroutine \d+ \(worker\) wrote to argument 0", r.stderr)
    assert "prog.py:8" in r.stderr  # the pg.go call site
    clean = parago("run", str(p))
    assert clean.returncode == 0 and "ISOLATION" not in clean.stderr


@pytest.mark.timeout(60)
def test_race_is_quiet_for_a_goroutine_that_shares_through_channels(tmp_path: Path) -> None:
    p = script(tmp_path, """
        import parago as pg
        def worker(n, done):
            done.send(n * 2)
        def main():
            done = pg.Chan(1)
            pg.go(worker, 21, done)
            print(done.recv())
        if __name__ == "__main__":
            pg.run(main, procs=1)
    """)
    r = parago("run", "--race", str(p))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "42"


@pytest.mark.timeout(60)
def test_schedtrace_prints_go_format_lines(tmp_path: Path) -> None:
    p = script(tmp_path, """
        import parago as pg
        def main():
            pg.sleep(0.35)
        if __name__ == "__main__":
            pg.run(main, procs=2)
    """)
    r = parago("run", "--schedtrace", "100", "--scheddetail", str(p))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^SCHED \d+ms: gomaxprocs=2 idleprocs=\d+ threads=\d+ spinningthreads=\d+ "
                     r"needspinning=0 idlethreads=\d+ runqueue=\d+ \[\d+ \d+\]$", r.stderr, re.M), r.stderr
    assert re.search(r"^  P1: status=\d schedtick=\d+ syscalltick=\d+ m=1 runqsize=\d+ .* pid=\d+ cpu=\d+% rss=",
                     r.stderr, re.M), r.stderr


@pytest.mark.timeout(90)
def test_trace_writes_a_perfetto_json_with_a_track_per_p(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    r = parago("run", "--procs", "2", "--trace", str(out), str(script(tmp_path, PROG)))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    ev = data["traceEvents"]
    slices = [e for e in ev if e["ph"] == "X"]
    assert len(slices) >= 65  # main + 64 workers ran at least once each
    assert {e["pid"] for e in ev if e["ph"] == "M"} == {0, 1}
    assert any(e["ph"] == "s" for e in ev) and any(e["ph"] == "f" for e in ev)  # spawn flows
    assert not list(tmp_path.glob("t.json.p*")), "the per-P parts are merged and removed"
    html = tmp_path / "t.html"
    r2 = parago("trace", str(out), "--html", str(html))
    assert r2.returncode == 0, r2.stderr
    assert "<svg" in html.read_text()


@pytest.mark.timeout(90)
def test_cpuprofile_merges_every_p_into_pstats_and_a_flame_graph(tmp_path: Path) -> None:
    out = tmp_path / "cpu.prof"
    busy = PROG.replace("range(20000)", "range(200000)")
    r = parago("run", "--procs", "2", "--cpuprofile", str(out), str(script(tmp_path, busy)))
    assert r.returncode == 0, r.stderr
    st = pstats.Stats(str(out))
    names = {fn[2] for fn in st.stats}  # type: ignore[attr-defined]
    assert "worker" in names
    assert (tmp_path / "cpu.prof.svg").read_text().startswith("<svg")


@pytest.mark.timeout(60)
def test_env_lists_what_parago_sees() -> None:
    r = parago("env")
    assert r.returncode == 0
    assert re.search(r"^usable CPUs\s+\d+$", r.stdout, re.M)
    assert re.search(r"^shim ABI / layout\s+\d+ / 0x[0-9a-f]{8}$", r.stdout, re.M)


@pytest.mark.timeout(120)
def test_demo_prints_a_speedup_table() -> None:
    r = parago("demo", "--procs", "2", "--n", "18", "--goroutines", "8", timeout=100)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\s+1\s+[\d.]+\s+1\.00x\s+P0:", r.stdout, re.M), r.stdout
    assert re.search(r"^\s+2\s+[\d.]+\s+[\d.]+x\s+P0:\s*\d+%\s+P1:", r.stdout, re.M), r.stdout


DUMP_PROG = r"""
    import os, re, sys
    import parago as pg
    def waiter(ch):
        ch.recv()
    def main():
        ch = pg.Chan()
        pg.go(waiter, ch)
        pg.sleep(0.1)
        print("dump:", len(re.findall(r"^goroutine \d+ \[chan receive\]:$", pg.debug.dump(), re.M)), flush=True)
        print("ready", flush=True)
        pg.sleep(30)
    if __name__ == "__main__":
        pg.run(main, procs=2)
"""


@pytest.mark.timeout(60)
def test_debug_dump_and_sigquit_dump_every_goroutine_then_exit_2(tmp_path: Path) -> None:
    p = script(tmp_path, DUMP_PROG)
    proc = subprocess.Popen([sys.executable, str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.strip() == "dump: 1"
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGUSR1)  # dump, keep running
    time.sleep(0.5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGQUIT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert re.search(r"^goroutine 1 \[sleep", err, re.M), err
    assert re.search(r"^goroutine \d+ \[chan receive", err, re.M), err
    assert "created by" in err


@pytest.mark.timeout(90)
def test_unguarded_script_under_spawn_is_detected_and_explained(tmp_path: Path) -> None:
    p = script(tmp_path, """
        import parago as pg
        def main():
            return 1
        print(pg.run(main, procs=2, start_method="spawn"))
    """)
    r = subprocess.run([sys.executable, str(p)], capture_output=True, text=True, timeout=80, env=ENV)
    assert r.returncode != 0
    assert "pg.run was called while a P process imported the main module" in r.stderr
    assert re.search(r"WorkerLost: fatal error: P1 died \(exit status 1 while starting; .*__name__ == '__main__'", r.stderr)
