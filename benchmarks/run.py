"""Run every benchmark file in sequence (what `parago bench` runs).

    python3 benchmarks/run.py [--quick] [--repeat N] [--procs N] [--only spawn,chan] [--no-go]

Each file runs in its own interpreter (a crash or a hang in one does not
stop the others), prints its tables and writes its own JSON under
benchmarks/results/ (or --results-dir).  Exit status: 0 when every file
exited 0; 1 otherwise (a wrong result, a failed measurement, a timeout).
Benchmarks are data: no time is ever asserted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
BENCHES = ["spawn", "chan", "sync"]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="parago bench", description="Run the parago benchmark suite (parago beside its peers, as ratios)."
    )
    ap.add_argument("--quick", action="store_true", help="small sizes: each file runs in seconds")
    ap.add_argument("--repeat", type=int, default=None, help="runs per measurement, median reported (default 3)")
    ap.add_argument(
        "--procs",
        type=int,
        default=None,
        help="Ps for the multi-P benchmarks (default: nproc for spawn, 2 for chan/sync)",
    )
    ap.add_argument("--only", default=None, help=f"comma-separated subset of the files: {', '.join(BENCHES)}")
    ap.add_argument("--no-go", action="store_true", help="skip the Go baselines")
    ap.add_argument("--results-dir", default=None, help="write each file's JSON here (default benchmarks/results/)")
    ap.add_argument(
        "--timeout", type=float, default=None, help="seconds per file (default 600 with --quick, else 7200)"
    )
    args = ap.parse_args(argv)

    files = BENCHES
    if args.only:
        files = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [f for f in files if f not in BENCHES]
        if bad:
            ap.error(f"unknown benchmark file(s) {', '.join(bad)}; known: {', '.join(BENCHES)}")
    fwd: list[str] = []
    if args.quick:
        fwd.append("--quick")
    if args.repeat is not None:
        fwd += ["--repeat", str(args.repeat)]
    if args.procs is not None:
        fwd += ["--procs", str(args.procs)]
    if args.no_go:
        fwd.append("--no-go")
    timeout = args.timeout or (600.0 if args.quick else 7200.0)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")

    summary = []
    for name in files:
        cmd = [sys.executable, os.path.join(BENCH_DIR, f"bench_{name}.py"), *fwd]
        if args.results_dir:
            cmd += ["--json", os.path.join(os.path.abspath(args.results_dir), f"{name}-{stamp}.json")]
        print(
            f"\n{'=' * 78}\n$ {' '.join(os.path.relpath(c, ROOT) if c.startswith(BENCH_DIR) else c for c in cmd)}\n",
            flush=True,
        )
        t0 = time.perf_counter()
        # its own process group, so that a timeout also ends the Ps and peer processes it started
        proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
            status = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            status = f"timed out after {timeout:.0f} s"
        except KeyboardInterrupt:
            _kill_group(proc)
            raise
        summary.append((name, status, time.perf_counter() - t0))

    print(f"\n{'=' * 78}\nbenchmark files:")
    for name, status, dt in summary:
        print(f"  bench_{name}.py  {status:<24} {dt:7.1f} s")
    return 0 if all(s == "ok" for _, s, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
