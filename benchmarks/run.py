"""Run every benchmark file in sequence (what `parago bench` runs).

    python3 benchmarks/run.py [--full] [--repeat N] [--procs N] [--only spawn,chan] [--no-go] [-v]

Quick sizes by default (a smoke run: every file in seconds, noisy numbers);
``--full`` for the real sizes (minutes; use an idle machine).  Each file runs
in its own interpreter and process group (a crash or a hang in one does not
stop the others; a timeout ends the Ps and peer processes it started),
writes its JSON into the run's directory, and its output goes to the run's
log (``-v`` prints it too).  A progress bar follows the files and the
benchmarks inside them (redrawn in place on a terminal, a line per step
otherwise).  At the end: one table of parago against every peer with the
ratios, ``summary.json`` (every file's rows and ratios, with the machine and
the command) and, with matplotlib (``pip install 'parago[chart]'``), a chart
(``chart.png`` / ``chart.svg``: ratio bars and scaling curves)::

    benchmarks/results/run-<timestamp>/   <file>.json  summary.json  log.txt  chart.png  chart.svg
    benchmarks/results/latest -> run-<timestamp>

(``parago bench``, the installed suite, writes ``./parago-bench/`` of the
current directory instead: ``$PARAGO_BENCH_RESULTS``, see _harness.)

Exit status: 0 when every file exited 0; 1 otherwise (a wrong result, a
failed measurement, a timeout).  Benchmarks are data: no time is asserted.

Adding a file: put ``benchmarks/bench_<name>.py`` (built on _harness.Bench,
with a module-level ``NAMES``) and append ``"<name>"`` to BENCHES.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
import _harness as h  # noqa: E402

# the benchmark files, in the order they run: benchmarks/bench_<name>.py
BENCHES = ["spawn", "chan", "sync", "map", "patterns", "cluster", "synctest", "crawl", "net", "timer"]


def bench_names(name: str) -> list[str]:
    """The benchmark names a file declares (its module-level ``NAMES``), read
    without importing it; [] when they cannot be read statically."""
    try:
        with open(os.path.join(BENCH_DIR, f"bench_{name}.py")) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError):
        return []
    literals: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        # literals, names of earlier literals and *-unpacking only (NAMES = [*PATTERNS, "peers"])
        if not all(
            isinstance(n, (ast.Constant, ast.List, ast.Tuple, ast.Name, ast.Starred, ast.Load, ast.expr_context))
            for n in ast.walk(node.value)
        ):
            continue
        try:
            literals[node.targets[0].id] = eval(  # noqa: S307 - constants and names only, checked above
                compile(ast.Expression(node.value), "<NAMES>", "eval"), {"__builtins__": {}}, dict(literals)
            )
        except Exception:  # noqa: BLE001 - a name we did not keep
            continue
    names = literals.get("NAMES")
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else []


class Progress:
    """A bar over the files and the benchmarks inside them.

    On a terminal it is one line redrawn in place (with the elapsed time, by
    a ticking thread); otherwise each step is a plain line.  ``say`` prints a
    line above the bar."""

    WIDTH = 30

    def __init__(self, files: list[str], out: IO[str]) -> None:
        self.out = out
        self.tty = out.isatty()
        self.weights = {f: max(1, len(bench_names(f))) for f in files}
        self.total = sum(self.weights.values())
        self.done = 0  # units of finished files
        self.file = ""
        self.in_file = 0
        self.label = ""
        self.t0 = time.monotonic()
        self.t_file = self.t0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        if self.tty:
            self.thread = threading.Thread(target=self._tick, daemon=True)
            self.thread.start()

    def _tick(self) -> None:
        while not self.stop.wait(0.5):
            with self.lock:
                self._draw()

    def _line(self) -> str:
        units = self.done + min(self.in_file, self.weights.get(self.file, 1))
        frac = units / self.total if self.total else 1.0
        fill = round(frac * self.WIDTH)
        bar = "#" * fill + "-" * (self.WIDTH - fill)
        el = time.monotonic() - self.t0
        what = f"{self.file}: {self.label}" if self.file else self.label
        return f"[{bar}] {100 * frac:3.0f}%  {el:5.0f} s  {what}"

    def _draw(self) -> None:
        cols = 0
        try:
            cols = os.get_terminal_size(self.out.fileno()).columns
        except (OSError, ValueError):
            pass
        cols = cols if cols >= 40 else 120  # a pty may report 0 columns
        self.out.write("\r\x1b[2K" + self._line()[: cols - 1])
        self.out.flush()

    def _show(self) -> None:
        if self.tty:
            self._draw()
        else:
            print(self._line(), file=self.out, flush=True)

    def step(self, file: str, label: str, in_file: int) -> None:
        with self.lock:
            self.file, self.label, self.in_file = file, label, in_file
            self._show()

    def finish_file(self, file: str, status: str) -> None:
        with self.lock:
            self.done += self.weights.get(file, 1)
            self.in_file = 0
            self.file, self.label = "", f"bench_{file}.py {status} ({time.monotonic() - self.t_file:.1f} s)"
            self.t_file = time.monotonic()
            self._show()

    def say(self, text: str) -> None:
        with self.lock:
            if self.tty:
                self.out.write("\r\x1b[2K" + text + "\n")
                self._draw()
            else:
                print(text, file=self.out, flush=True)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
            with self.lock:
                self.out.write("\n")
                self.out.flush()


def _shown(path: str) -> str:
    """A path as the user can use it from here: relative inside the cwd, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_file(
    name: str, cmd: list[str], timeout: float, log: IO[str], bar: Progress, verbose: bool
) -> tuple[str, float]:
    """Run one bench file, its output into ``log`` (and the bar); (status, seconds)."""
    names = bench_names(name)
    t0 = time.perf_counter()
    shown = " ".join(os.path.relpath(c, ROOT) if c.startswith(BENCH_DIR) else c for c in cmd)
    log.write(f"\n{'=' * 78}\n$ {shown}\n\n")
    log.flush()
    bar.step(name, "starting", 0)
    # its own process group, so that a timeout also ends the Ps and peer processes it started
    proc = subprocess.Popen(
        cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    seen = 0
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail = [*tail[-19:], line.rstrip("\n")]
            text = line.strip()
            if verbose:
                bar.say(line.rstrip("\n"))
            elif text.startswith("!!") or text.startswith("note:"):
                bar.say(f"  bench_{name}.py: {text}")
            if line.startswith("## "):
                head = line[3:].split(":", 1)[0].strip()
                seen = max(seen + 1, names.index(head) + 1) if head in names else seen + 1
                bar.step(name, head, seen - 1)
        rc = proc.wait()
    except KeyboardInterrupt:
        _kill_group(proc)
        raise
    finally:
        timer.cancel()
        log.flush()
    if timed_out.is_set():
        status = f"timed out after {timeout:.0f} s"
    else:
        status = "ok" if rc == 0 else f"exit {rc}"
    if status != "ok" and not verbose:
        bar.say(f"  bench_{name}.py {status}; its last lines:\n    " + "\n    ".join(tail[-8:]))
    return status, time.perf_counter() - t0


# ----------------------------------------------------------------------
# the summary: one table of parago against every peer


def _row_index(doc: dict) -> dict[tuple, dict]:
    return {(r["name"], r["impl"], r["metric"]): r for r in doc.get("rows", [])}


def peer_ratios(docs: dict[str, dict]) -> list[dict]:
    """Every ratio of parago against a peer (not against another parago
    variant), with both values: the table's and the chart's rows."""
    out = []
    for file, doc in docs.items():
        rows = _row_index(doc)
        for ra in doc.get("ratios", []):
            if ra["peer"].startswith("parago"):
                continue
            base = rows.get((ra["name"], ra["parago"], ra["metric"]))
            peer = rows.get((ra["name"], ra["peer"], ra["metric"]))
            adv = ra.get("parago_better_by")
            if base is None or peer is None or not isinstance(adv, (int, float)) or not 0 < adv < float("inf"):
                continue
            out.append(
                {
                    "file": file,
                    "name": ra["name"],
                    "metric": ra["metric"],
                    "parago": ra["parago"],
                    "peer": ra["peer"],
                    "unit": base["unit"],
                    "parago_value": base["value"],
                    "peer_value": peer["value"],
                    "parago_better_by": ra["parago_better_by"],
                    "verdict": h._adv_text(ra["parago_better_by"], base),
                }
            )
    return out


def format_summary(ratios: list[dict]) -> str:
    """One table, a section per bench file, a benchmark's rows together."""
    order: dict[tuple[str, str], int] = {}
    for r in ratios:
        order.setdefault((r["file"], r["name"]), len(order))
    files = list(dict.fromkeys(r["file"] for r in ratios))
    ratios = sorted(ratios, key=lambda r: (files.index(r["file"]), order[(r["file"], r["name"])]))  # stable
    header = ("benchmark", "metric", "parago", "peer", "peer value", "parago vs peer")
    table = [
        (
            r["name"],
            r["metric"],
            f"{h.fmt_num(r['parago_value'])} {r['unit']}" + ("" if r["parago"] == "parago" else f" [{r['parago']}]"),
            r["peer"],
            f"{h.fmt_num(r['peer_value'])} {r['unit']}",
            r["verdict"],
        )
        for r in ratios
    ]
    if not table:
        return "(no ratios: no file wrote results)\n"
    widths = [max(len(hd), *(len(t[i]) for t in table)) for i, hd in enumerate(header)]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(header)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    prev: tuple[str, str] | None = None
    for r, t in zip(ratios, table, strict=True):
        if prev is None or r["file"] != prev[0]:
            lines.append(f"{'' if prev is None else chr(10)}bench_{r['file']}.py")
        elif t[0] != prev[1]:
            lines.append("")
        prev = (r["file"], t[0])
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(t)).rstrip())
    return "\n".join(lines) + "\n"


def write_summary(path: str, docs: dict[str, dict], files: dict[str, dict], argv: list[str], quick: bool) -> dict:
    machine = next((d["meta"].get("machine") for d in docs.values() if d.get("meta")), None) or h.machine_info()
    first = next(iter(docs.values()), {}).get("meta", {})
    summary = {
        "meta": {
            "command": "parago bench " + " ".join(argv),
            "timestamp": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "quick": quick,
            "commit": first.get("commit"),
            "dirty": first.get("dirty"),
            "python": first.get("python"),
            "go": next((d["meta"]["go"] for d in docs.values() if d.get("meta", {}).get("go")), None),
            "machine": machine,
        },
        "files": files,
        "rows": [{"file": f, **r} for f, d in docs.items() for r in d.get("rows", [])],
        "ratios": peer_ratios(docs),
        "comparisons": [{"file": f, **c} for f, d in docs.items() for c in d.get("comparisons", [])],
        "notes": [f"{f}: {n}" for f, d in docs.items() for n in d.get("notes", [])],
        "errors": [f"{f}: {e}" for f, d in docs.items() for e in d.get("errors", [])],
    }
    summary = _finite(summary)
    with open(path, "w") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")
    return summary


def _finite(x: Any) -> Any:
    """NaN and infinities (a measurement that failed part-way) as null: summary.json stays strict JSON."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def _link_latest(results: str, run_dir: str) -> None:
    latest = os.path.join(results, "latest")
    try:
        if os.path.islink(latest):
            os.unlink(latest)
        if not os.path.exists(latest):
            os.symlink(os.path.basename(run_dir), latest)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="parago bench", description="Run the parago benchmark suite (parago beside its peers, as ratios)."
    )
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the real sizes (minutes; use an idle machine)")
    size.add_argument("--quick", action="store_true", help="small sizes, each file in seconds (the default)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per measurement, median reported (default 3)")
    ap.add_argument(
        "--procs",
        type=int,
        default=None,
        help="Ps for the multi-P benchmarks (default: nproc for spawn, 2 for chan/sync)",
    )
    ap.add_argument("--only", default=None, help=f"comma-separated subset of the files: {', '.join(BENCHES)}")
    ap.add_argument("--no-go", action="store_true", help="skip the Go baselines")
    ap.add_argument(
        "--results-dir",
        default=None,
        help="write the run here (default: benchmarks/results/run-<timestamp>/, linked as results/latest)",
    )
    ap.add_argument("--timeout", type=float, default=None, help="seconds per file (default 600 quick, 7200 --full)")
    ap.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every file's tables as they come")
    args = ap.parse_args(argv)
    quick = not args.full

    files = BENCHES
    if args.only:
        files = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [f for f in files if f not in BENCHES]
        if bad:
            ap.error(f"unknown benchmark file(s) {', '.join(bad)}; known: {', '.join(BENCHES)}")
    fwd: list[str] = []
    if quick:
        fwd.append("--quick")
    if args.repeat is not None:
        fwd += ["--repeat", str(args.repeat)]
    if args.procs is not None:
        fwd += ["--procs", str(args.procs)]
    if args.no_go:
        fwd.append("--no-go")
    timeout = args.timeout or (600.0 if quick else 7200.0)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if args.results_dir:
        run_dir = os.path.abspath(args.results_dir)
    else:
        run_dir = os.path.join(h.RESULTS_DIR, f"run-{stamp}")
    os.makedirs(run_dir, exist_ok=True)
    log_path = os.path.join(run_dir, "log.txt")
    m = h.machine_info()
    print(
        f"parago bench: {'QUICK sizes (a smoke run: noisy numbers; --full for the real sizes)' if quick else 'full sizes'}"
        f", {len(files)} file(s): {', '.join(files)}\n"
        f"# {m['cpu_model']}, {m['usable_cpus']} CPUs, load {m.get('loadavg_at_start')}; "
        f"every file's tables: {_shown(log_path)}{'' if args.verbose else ' (-v prints them)'}",
        flush=True,
    )

    bar = Progress(files, sys.stdout)
    statuses: dict[str, dict] = {}
    try:
        with open(log_path, "w") as log:
            for name in files:
                json_path = os.path.join(run_dir, f"{name}.json")
                cmd = [sys.executable, os.path.join(BENCH_DIR, f"bench_{name}.py"), *fwd, "--json", json_path]
                status, dt = run_file(name, cmd, timeout, log, bar, args.verbose)
                statuses[name] = {"status": status, "seconds": round(dt, 1), "json": f"{name}.json"}
                bar.finish_file(name, status)
    finally:
        bar.close()

    docs: dict[str, dict] = {}
    for name in files:
        try:
            with open(os.path.join(run_dir, f"{name}.json")) as f:
                docs[name] = json.load(f)
        except (OSError, ValueError):
            statuses[name]["json"] = None
    summary_path = os.path.join(run_dir, "summary.json")
    summary = write_summary(summary_path, docs, statuses, argv, quick)
    if args.results_dir is None:
        _link_latest(h.RESULTS_DIR, run_dir)

    print(f"\nparago against every peer ({'quick sizes' if quick else 'full sizes'}; medians):\n")
    print(format_summary(summary["ratios"]))
    for c in summary["comparisons"]:
        print(f"  {c['text']}")
    print("\nbenchmark files:")
    width = max(len(n) for n in statuses) + 9
    for name, st in statuses.items():
        print(f"  {'bench_' + name + '.py':<{width}}  {st['status']:<24} {st['seconds']:7.1f} s")
    if summary["errors"]:
        print(f"\n{len(summary['errors'])} problem(s):")
        for e in summary["errors"]:
            print(f"  {e}")
    print(f"\nJSON:  {_shown(summary_path)} (and one file per bench beside it)")
    if not args.no_chart:
        import chart

        try:
            paths = chart.draw(summary, os.path.join(run_dir, "chart"))
        except ImportError:
            print("chart: skipped, matplotlib is not installed (pip install 'parago[chart]' draws chart.png/.svg)")
        else:
            print(f"chart: {', '.join(_shown(p) for p in paths)}")
    return 0 if all(s["status"] == "ok" for s in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
