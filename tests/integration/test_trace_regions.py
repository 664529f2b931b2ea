"""pg.trace.region / pg.trace.log (Go's trace.WithRegion / trace.Log) in the
``--trace`` timeline and its HTML picture; no-ops when the run is not traced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import parago as pg

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
ENV.pop("PARAGO_TRACE", None)

PROG = """
    import parago as pg

    def worker(i, out):
        with pg.trace.region("outer"):
            with pg.trace.region(f"inner {i}"):
                pg.sleep(0.002)  # a region spans parks
            pg.trace.log("progress", f"worker {i} done")
        out.send((i, pg.goid()))

    def main():
        out = pg.Chan(8)
        for i in range(8):
            pg.go(worker, i, out)
        got = [out.recv() for _ in range(8)]
        assert sorted(i for i, _ in got) == list(range(8))
        print("goids", " ".join(str(g) for _, g in sorted(got)))

    if __name__ == "__main__":
        pg.run(main)
"""


def _run(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    p = tmp_path / "prog.py"
    p.write_text(textwrap.dedent(PROG))
    return subprocess.run([sys.executable, "-m", "parago", "run", *flags, str(p)], capture_output=True,
                          text=True, timeout=60, env=ENV, cwd=ROOT)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("procs", [1, 2])
def test_regions_and_logs_appear_on_the_goroutines_row_of_its_p(tmp_path: Path, procs: int) -> None:
    out = tmp_path / "t.json"
    r = _run(tmp_path, "--procs", str(procs), "--trace", str(out))
    assert r.returncode == 0, r.stderr
    goids = [int(g) for g in r.stdout.split("goids", 1)[1].split()]
    ev = json.loads(out.read_text())["traceEvents"]
    regions = [e for e in ev if e.get("cat") == "region"]
    logs = [e for e in ev if e.get("cat") == "log"]
    assert sorted(e["name"] for e in regions) == sorted(["outer"] * 8 + [f"inner {i}" for i in range(8)])
    assert len(logs) == 8 and {e["name"] for e in logs} == {"progress"}
    assert sorted(e["args"]["message"] for e in logs) == sorted(f"worker {i} done" for i in range(8))
    for i, goid in enumerate(goids):
        inner = next(e for e in regions if e["name"] == f"inner {i}")
        assert inner["args"]["goid"] == goid and inner["tid"] == goid
        outer = next(e for e in regions if e["name"] == "outer" and e["args"]["goid"] == goid)
        assert outer["pid"] == inner["pid"] and outer["tid"] == goid
        # nesting: the inner region lies within the outer one, and spans the sleep
        assert outer["ts"] <= inner["ts"] and inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"] + 1
        assert inner["dur"] >= 1500  # us: the 2 ms sleep is inside it
        log = next(e for e in logs if e["args"]["goid"] == goid)
        assert log["pid"] == outer["pid"] and log["tid"] == goid and log["ph"] == "i"
        # each goroutine's row is named
        assert any(e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == outer["pid"]
                   and e["tid"] == goid and e["args"]["name"] == f"G{goid}" for e in ev)
    html = tmp_path / "t.html"
    r2 = subprocess.run([sys.executable, "-m", "parago", "trace", str(out), "--html", str(html)],
                        capture_output=True, text=True, timeout=60, env=ENV, cwd=ROOT)
    assert r2.returncode == 0, r2.stderr
    page = html.read_text()
    assert "16 regions" in page and "8 log events" in page
    assert "region inner 3" in page and "log progress: worker 5 done" in page


@pytest.mark.timeout(60)
def test_untraced_run_regions_and_logs_are_inert(run) -> None:
    def main():
        with pg.trace.region("r") as v:
            pg.trace.log("c", "m")
        assert v is None and not pg.trace.is_enabled()
        assert pg.trace.region("a") is pg.trace.region("b")  # one shared no-op object: nothing allocated
        return 7

    os.environ.pop("PARAGO_TRACE", None)
    assert run(main) == 7


@pytest.mark.timeout(30)
def test_bad_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match=r"^pg\.trace\.region: name must be a str, got int$"):
        pg.trace.region(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^pg\.trace\.log: message must be a str, got bytes$"):
        pg.trace.log("c", b"m")  # type: ignore[arg-type]
    with pg.trace.region("outside a run"):  # outside pg.run: nothing to trace, not an error
        pg.trace.log("c", "m")
