"""synctest: one timer-heavy program in real time and in virtual time.

    synctest     ten goroutines on timers -- six sleepers (periods 2..7
                 units), two tickers (3 and 5 units), a with_timeout
                 context loop (7 units) and a pg.after loop (4 units) --
                 for 60 units, logging every event with its time in units.
                 Run once with pg.run (unit = 1 s: a minute; --quick 0.05 s;
                 --unit S) and --repeat times with pg.synctest.run (the
                 same unit: virtual), at procs=1 and --procs.  Rows: the
                 wall time of each, and the speedup of virtual time (x).
                 The event logs must be identical (a difference is an
                 error).

Run: python3 benchmarks/bench_synctest.py [--quick] [--unit S] [--repeat N] [--procs N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402
from parago import synctest  # noqa: E402

NAMES = ["synctest"]
UNITS = 60  # the program's length, in units


def _log(out: pg.Chan, name: str, t0: float, unit: float) -> None:
    out.send((round((pg.now() - t0) / unit), name))


def _sleeper(out: pg.Chan, t0: float, unit: float, period: int) -> None:
    for _ in range(UNITS // period):
        pg.sleep(period * unit)
        _log(out, f"sleep{period}", t0, unit)


def _ticker(out: pg.Chan, t0: float, unit: float, period: int) -> None:
    tk = pg.Ticker(period * unit)
    for _ in range(UNITS // period):
        tk.c.recv()
        _log(out, f"tick{period}", t0, unit)
    tk.stop()


def _deadlines(out: pg.Chan, t0: float, unit: float) -> None:
    for _ in range(UNITS // 7):
        ctx, cancel = pg.context.with_timeout(pg.context.background(), 7 * unit)
        ctx.done().recv_ok()
        _log(out, "deadline", t0, unit)
        cancel()


def _afters(out: pg.Chan, t0: float, unit: float, never: pg.Chan) -> None:
    for _ in range(UNITS // 4):
        pg.select(pg.Recv(pg.after(4 * unit)), pg.Recv(never))
        _log(out, "after", t0, unit)


def _program(unit: float) -> list:
    t0 = pg.now()
    out = pg.Chan(64)
    never = pg.Chan()
    n = 0
    for period in range(2, 8):
        pg.go(_sleeper, out, t0, unit, period)
        n += UNITS // period
    for period in (3, 5):
        pg.go(_ticker, out, t0, unit, period)
        n += UNITS // period
    pg.go(_deadlines, out, t0, unit)
    n += UNITS // 7
    pg.go(_afters, out, t0, unit, never)
    n += UNITS // 4
    events = [out.recv() for _ in range(n)]
    # ties (two events in the same unit) are ordered by name: the log is
    # then one deterministic text in real time too
    return sorted(events)


def _timed(runner, unit: float, procs: int) -> tuple[float, list]:
    t0 = time.perf_counter()
    events = runner(_program, unit, procs=procs)
    return time.perf_counter() - t0, events


def bench_synctest(b: h.Bench) -> None:
    unit = b.args.unit or (0.05 if b.quick else 1.0)
    name = "synctest"
    for procs in sorted({1, b.procs}):
        real = b.guard(name, f"pg.run procs={procs}", _timed, pg.run, unit, procs)
        if real is None:
            continue
        real_s, want = real
        b.add(name, f"pg.run procs={procs}", "wall", real_s, "s", note=f"{UNITS} units of {unit} s, {len(want)} events")
        runs = []
        for _ in range(b.repeat):
            got = b.guard(name, f"pg.synctest.run procs={procs}", _timed, synctest.run, unit, procs)
            if got is None or not b.check(
                got[1] == want, name, f"pg.synctest.run procs={procs}", "the same event log as the real-time run"
            ):
                break
            runs.append(got[0])
        else:
            virt = h.median(runs)
            impl = f"pg.synctest.run procs={procs}"
            b.add(name, impl, "wall", virt, "s", samples=runs, note="virtual time: the same program and unit")
            b.add(name, impl, "speedup", real_s / virt, "x", note="real-time wall / virtual-time wall")


def main(argv: list[str] | None = None) -> int:
    def extra(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--unit", type=float, default=None, help="seconds per unit (default 1.0; --quick 0.05)")

    b = h.Bench("synctest", __doc__.splitlines()[0], NAMES, argv, extra=extra)
    if b.want("synctest"):
        bench_synctest(b)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
