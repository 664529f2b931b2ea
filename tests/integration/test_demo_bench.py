"""`parago demo` and `parago bench`: the README's first command and the suite runner.

Both run as a user runs them (``python -m parago ...`` from the checkout),
at their quick sizes.  The demo checks its own results (every value once,
the primes right) and exits non-zero otherwise; here we check what it
shows: the per-P work of every act, the speedup table and the trace
picture it says it wrote.  For bench we check the files a run leaves: the
summary JSON with every ratio's two values and, with matplotlib, the chart.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def parago(*args: str, tmp_path: Path, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-m", "parago", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def _per_p(line_label: str, out: str) -> list[int]:
    m = re.search(rf"^\s+{re.escape(line_label)}: ((?:P\d+: [\d,]+\s*)+)$", out, re.M)
    assert m, f"no {line_label!r} line in:\n{out}"
    return [int(v.replace(",", "")) for v in re.findall(r"P\d+: ([\d,]+)", m.group(1))]


@pytest.mark.timeout(90)
def test_demo_runs_every_act_and_prints_the_speedup_table(tmp_path: Path) -> None:
    r = parago("demo", "--quick", "--procs", "2", tmp_path=tmp_path, timeout=80)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    # act 1: not a terminal, so plain CPU lines; every burner reported once.  (Whether
    # each P got a burner depends on the OS giving both P processes time: on an
    # oversubscribed machine the runtime rightly moves unstarted work to the P that runs.)
    assert re.search(r"^\s+t=\s*[\d.]+s\s+P0:\s+\d+%\s+P1:\s+\d+%$", out, re.M), out
    assert sum(_per_p("goroutines per P", out)) == 4, out
    assert len(_per_p("work done per P (fib(16) chunks)", out)) == 2, out
    # act 2: every pipeline item counted once, across both Ps; the sieve's filters spread over the Ps
    m = re.search(r"pipeline source -> (\d+) workers -> sink: ([\d,]+) items", out)
    assert m, out
    items = _per_p("items per P", out)
    assert len(items) == 2 and sum(items) == int(m.group(2).replace(",", "")), out
    assert re.search(r"prime sieve up to 500: 95 primes \(\.\.\., 487, 491, 499\)", out), out
    filters = _per_p("filters per P", out)
    assert sum(filters) == 95 and len(filters) == 2, out
    assert min(filters) > 0, f"95 filter goroutines, all on one P:\n{out}"  # placement spreads the chain
    # act 3: the speedup table, then the same job beside threads and multiprocessing
    assert re.search(r"^\s+1\s+[\d.]+\s+1\.00x\s+P0:\s*\d+%$", out, re.M), out
    assert re.search(r"^\s+2\s+[\d.]+\s+[\d.]+x\s+P0:\s*\d+%\s+P1:\s*\d+%$", out, re.M), out
    for peer in (r"parago, 2 Ps", r"threads \(ThreadPoolExecutor\(2\)\)", r"multiprocessing\.Pool\(2\)\.map"):
        assert re.search(rf"^\s+{peer}.*\s[\d.]+x\s", out, re.M), out
    # act 4: the trace picture exists where it says, with a lane per P
    m = re.search(r"^4\. trace of act 2: (\S+\.html)$", out, re.M)
    assert m, out
    html = Path(m.group(1))
    assert html.is_relative_to(tmp_path) and html.exists(), out
    text = html.read_text()
    assert "P0 (pid" in text and "P1 (pid" in text
    assert len(re.findall(r"<rect [^>]*><title>G\d+ ", text)) > 95  # at least one run per sieve filter


def test_bench_names_are_read_from_each_file_without_importing_it() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run
    finally:
        sys.path.pop(0)
    assert run.bench_names("sync")[:3] == ["mutex_counter", "atomic_counter", "sharded_counter"]
    for name in run.BENCHES:
        assert run.bench_names(name), f"bench_{name}.py: no module-level NAMES the progress bar can read"
    assert run.bench_names("no_such_file") == []


@pytest.mark.timeout(120)
def test_bench_quick_writes_the_summary_json_and_the_chart(tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    r = parago(
        "bench",
        "--quick",
        "--only",
        "sync",
        "--repeat",
        "1",
        "--no-go",
        "--results-dir",
        str(out_dir),
        tmp_path=tmp_path,
        timeout=110,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    # the progress bar (plain lines into a pipe) reached the end of the file
    assert re.search(r"^\[#{30}\] 100% .* bench_sync\.py ok", r.stdout, re.M), r.stdout

    def no_nan(c: str) -> None:
        pytest.fail(f"summary.json is not strict JSON: {c}")

    summary = json.loads((out_dir / "summary.json").read_text(), parse_constant=no_nan)
    per_file = json.loads((out_dir / "sync.json").read_text())
    assert summary["files"]["sync"]["status"] == "ok"
    assert summary["meta"]["quick"] is True and summary["meta"]["machine"]["usable_cpus"] >= 1
    assert len(summary["rows"]) == len(per_file["rows"]) > 0
    assert summary["ratios"], "no parago-vs-peer ratio"
    rows = {(x["name"], x["impl"], x["metric"]): x for x in per_file["rows"]}
    for ra in summary["ratios"]:
        assert not ra["peer"].startswith("parago")
        base, peer = rows[(ra["name"], ra["parago"], ra["metric"])], rows[(ra["name"], ra["peer"], ra["metric"])]
        p, q = base["value"], peer["value"]
        assert (ra["parago_value"], ra["peer_value"]) == (p, q)
        assert ra["parago_better_by"] == pytest.approx(q / p if base["better"] == "lower" else p / q)
    # the table: one line per ratio with the peer and the verdict
    for ra in summary["ratios"]:
        assert re.search(
            rf"^{re.escape(ra['name'])}\s.*{re.escape(ra['peer'])}\s.*{re.escape(ra['verdict'])}$", r.stdout, re.M
        ), (ra, r.stdout)
    assert (out_dir / "log.txt").read_text().count("## ") >= 4
    if importlib.util.find_spec("matplotlib") is None:
        assert "pip install 'parago[chart]'" in r.stdout
        pytest.skip("matplotlib is not installed: the chart is not drawn")
    png, svg = out_dir / "chart.png", out_dir / "chart.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert b"<svg" in svg.read_bytes()[:1000]
    assert f"chart: {png}, {svg}" in r.stdout


@pytest.mark.timeout(600)
def test_bench_works_after_pip_install_in_an_empty_directory(tmp_path: Path) -> None:
    """What a new user does: install the wheel into a fresh venv, run `parago bench`
    in an empty directory; the run lands under ./parago-bench/ there, says so,
    and skips a peer that is not installed with a line saying how to add it."""
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PARAGO_SHIM", "PARAGO_BENCH_RESULTS")}
    env["TMPDIR"] = str(tmp_path)
    pip = dict(capture_output=True, text=True, timeout=300, env=env)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)], **pip)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "venv", str(venv)], **pip)
    assert r.returncode == 0, r.stderr
    (whl,) = wheels.glob("parago-*.whl")
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(whl)], **pip)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [str(venv / "bin" / "parago"), "bench", "--quick", "--only", "chan", "--no-go", "--no-chart"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=work,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out_dir = work / "parago-bench"
    assert f"results go under {out_dir}/" in r.stdout
    (run_dir,) = [p for p in out_dir.glob("run-*") if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    doc = json.loads((run_dir / "chan.json").read_text())
    assert doc["errors"] == [] and summary["errors"] == []
    names = {row["name"] for row in doc["rows"] if row["impl"] == "parago"}
    assert {"chan_sync", "chan_buffered", "ping_pong"} <= names, names
    assert any("faster_fifo is not installed (pip install 'parago[bench]'" in n for n in doc["notes"]), doc["notes"]
    assert not (ROOT / "benchmarks" / "results" / run_dir.name).exists()
