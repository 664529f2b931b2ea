"""The seed's §4.2 work-stealing scheduler -- it is parago's own runtime.

One goroutine spawns uneven tasks; idle Ps steal half of the spawner's run
queue (Go's runqsteal), so the work spreads over every core.  The output
shows how many tasks each P (process) ran.

Run: python examples/work_stealing.py
"""

import os
import time

import parago as pg


def task(i, results):
    n = 2000 * (1 + i % 7)  # uneven work
    s = 0
    for k in range(n):
        s += k * k
    results.send(os.getpid())


def spawner(n, results):
    for i in range(n):
        pg.go(task, i, results)


def main(n=2000):
    results = pg.Chan(n)
    t = time.perf_counter()
    pg.go(spawner, n, results)
    per_p = {}
    for _ in range(n):
        pid = results.recv()
        per_p[pid] = per_p.get(pid, 0) + 1
    return per_p, time.perf_counter() - t


if __name__ == "__main__":
    per_p, secs = pg.run(main)
    print(f"{sum(per_p.values())} tasks in {secs:.2f} s on {len(per_p)} P(s):")
    for pid, n in sorted(per_p.items()):
        print(f"  pid {pid}: {n} tasks")
