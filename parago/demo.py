"""parago demo: pure-Python CPU work on goroutines, all cores busy.

Runs the same batch of fib(n) goroutines at procs=1 and at every core
count up to the usable CPUs, and prints wall time, speedup and how busy
each P process was -- the GIL of one P never holds back another.
"""

from __future__ import annotations

import os
import time

import psutil

import parago as pg


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def worker(n: int, results: pg.Chan) -> None:
    results.send((fib(n), os.getpid()))


def batch(n: int, goroutines: int) -> tuple[float, dict[int, int], int]:
    results = pg.Chan(goroutines)
    from parago._runtime import state

    a = state.rt.arena
    pids = [a.u32[a.p_field(p, "pid") // 4] for p in range(pg.gomaxprocs())]
    procs = {}
    for pid in pids:
        try:
            procs[pid] = psutil.Process(pid)
        except psutil.Error:
            pass
    cpu0 = {pid: sum(p.cpu_times()[:2]) for pid, p in procs.items()}
    t0 = time.perf_counter()
    for _ in range(goroutines):
        pg.go(worker, n, results)
    per_pid: dict[int, int] = {}
    total = 0
    for _ in range(goroutines):
        v, pid = results.recv()
        total += v
        per_pid[pid] = per_pid.get(pid, 0) + 1
    wall = time.perf_counter() - t0
    busy = {}
    for pid, p in procs.items():
        try:
            busy[pid] = round(100 * (sum(p.cpu_times()[:2]) - cpu0[pid]) / wall)
        except psutil.Error:
            busy[pid] = 0
    return wall, busy, total


def main(procs: int | None = None, n: int = 27, goroutines: int = 32) -> int:
    from ._runtime.procs import usable_cpus

    top = procs or usable_cpus()
    counts = sorted({1, *[c for c in (2, 4, 8, 16, 32, 64) if c < top], top})
    print(f"parago demo: {goroutines} goroutines computing fib({n}) in pure Python, on 1..{top} Ps")
    print(f"{'procs':>5}  {'wall s':>7}  {'speedup':>7}  CPU busy per P (% of one core)")
    base = None
    expected = None
    for c in counts:
        wall, busy, total = pg.run(batch, n, goroutines, procs=c)
        if expected is None:
            expected = total
        assert total == expected, "every goroutine's result arrived exactly once"
        base = base or wall
        cpus = "  ".join(f"P{i}:{v:>3}%" for i, v in enumerate(busy.values()))
        print(f"{c:>5}  {wall:>7.2f}  {base / wall:>6.2f}x  {cpus}")
    print("every P is a process with its own GIL: pure-Python goroutines use every core.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
