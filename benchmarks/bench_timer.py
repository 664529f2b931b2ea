"""timer: what a Go 1.23 timer costs, beside a channel operation.

    timer_create_stop   pg.Timer(3600) then stop(), in a loop: ns per pair
                        (the create arms a heap entry, the stop takes the
                        channel lock to bump the seq and drain the slot)
    timer_reset         t.reset(3600) on one pending timer, in a loop: ns each
    chan_op             one send or one receive on a buffered pg.Chan(1)
                        (a send-receive pair, halved): the unit the two
                        timer rows are compared with (ratios below)
    chan_new            pg.Chan(1) made and dropped: object creation alone
                        (a Timer is two arena objects, its channel and the
                        timer, made in one call, and one handle until its
                        c is used)

Each in one goroutine of pg.run at procs=1 (timers are per P; nothing
crosses Ps), median of --repeat runs; Go's time.NewTimer+Stop, Reset and a
buffered channel op when `go` is on PATH (benchmarks/go/timer.go).

Run: python3 benchmarks/bench_timer.py [--quick] [--repeat N]
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402

NAMES = ["timer_create_stop", "timer_reset", "chan_op", "chan_new"]


def _measure(n: int) -> dict:
    """ns per operation of each loop, in one goroutine (pg.run's main)."""
    out: dict = {}
    t0 = time.perf_counter()
    for _ in range(n):
        t = pg.Timer(3600)
        t.stop()
    out["timer_create_stop"] = (time.perf_counter() - t0) / n * 1e9
    t = pg.Timer(3600)
    t0 = time.perf_counter()
    for _ in range(n):
        t.reset(3600)
    out["timer_reset"] = (time.perf_counter() - t0) / n * 1e9
    out["timer_reset_ok"] = t.stop()  # still pending: every reset re-armed it
    c = pg.Chan(1)
    t0 = time.perf_counter()
    for i in range(n):
        c.send(i)
        c.recv()
    out["chan_op"] = (time.perf_counter() - t0) / (2 * n) * 1e9
    t0 = time.perf_counter()
    for _ in range(n):
        pg.Chan(1)
    out["chan_new"] = (time.perf_counter() - t0) / n * 1e9
    return out


def bench_timer(b: h.Bench) -> None:
    n = b.size(200_000, 5_000)
    impl = "parago procs=1"
    runs = []
    for _ in range(b.repeat):
        r = b.guard("timer", impl, h.pg_run, _measure, n, procs=1)
        if r is None:
            return
        b.check(r["timer_reset_ok"] is True, "timer_reset", impl, "the timer is pending after the resets")
        runs.append(r)
    rows = {}
    for name in NAMES:
        if b.want(name):
            rows[name] = b.add_samples(name, impl, "op", [r[name] for r in runs], "ns/op", note=f"{n} ops")
    go_n = str(b.size(2_000_000, 100_000))
    for name in NAMES:
        if b.want(name):
            b.add_go(name, "timer", ["-n", go_n])
    # the target: timer create+stop <= 2x a channel op
    b.compare("timer vs a channel op (parago)", rows.get("timer_create_stop"), rows.get("chan_op"))
    b.compare("timer vs a channel op (parago)", rows.get("timer_reset"), rows.get("chan_op"))
    gomap = {r["name"]: r for r in b.rows if r["impl"] == "go"}
    b.compare("timer vs a channel op (Go)", gomap.get("timer_create_stop"), gomap.get("chan_op"))
    b.compare("timer vs a channel op (Go)", gomap.get("timer_reset"), gomap.get("chan_op"))
    b.compare("timer vs making a channel (parago)", rows.get("timer_create_stop"), rows.get("chan_new"))
    b.compare("timer vs making a channel (Go)", gomap.get("timer_create_stop"), gomap.get("chan_new"))
    chan = rows.get("chan_op")
    if chan and chan["value"]:
        for name in ("timer_create_stop", "timer_reset"):
            if name in rows:
                b.add(
                    f"{name}_per_chan_op",
                    impl,
                    "ratio",
                    rows[name]["value"] / chan["value"],
                    "x",
                    note="ns per timer op / ns per channel op (issue 19's target for create+stop: <= 2)",
                    better="lower",
                )
    b.flush()


def main(argv: list[str] | None = None) -> int:
    b = h.Bench("timer", __doc__.splitlines()[0], NAMES, argv)
    bench_timer(b)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
